//! Storage: one pool over SQLite (the embedded default, WAL mode) or PostgreSQL,
//! chosen by the `DATABASE_URL` scheme. Queries are written once, portably
//! (`$1` placeholders, `RETURNING`, `ON CONFLICT`), and run through sqlx's `Any`
//! driver, so every repository serves both engines. Sessions use the published
//! tower-sessions store for the same engine.
//!
//! Portability rules for queries: ids are UUID text, times are Unix milliseconds
//! in `bigint`, flags are `bigint` 0/1 (the `Any` driver cannot decode SQLite
//! integers as `bool`), money is `bigint` nano-dollars.

pub mod api_tokens;
pub mod budgets;
pub mod conversations;
pub mod internal_rates;
pub mod llm_configs;
pub mod llm_usage;
pub mod login_attempts;
pub mod projects;
pub mod provider_keys;
pub mod usage_reports;
pub mod users;

use crate::server::error::{Error, Result};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AnyPool, PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

/// Which engine a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server (several app servers may share it).
    Postgres,
}

/// The engine-specific pool behind the session store.
#[derive(Debug, Clone)]
pub enum NativePool {
    /// SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// The database handle: a portable pool for queries and the native one for sessions.
#[derive(Debug, Clone)]
pub struct Db {
    /// Portable pool used by every repository.
    pub pool: AnyPool,
    /// Native pool for the tower-sessions store.
    pub native: NativePool,
}

impl Db {
    /// Connects (creating the SQLite file on first run) and applies migrations.
    pub async fn connect(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let native = if is_postgres(url) {
            NativePool::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(url)
                    .await?,
            )
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10));
            NativePool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options)
                    .await?,
            )
        } else {
            return Err(Error::internal(
                "DATABASE_URL must start with sqlite: or postgres://",
            ));
        };
        let engine = match native {
            NativePool::Sqlite(_) => Engine::Sqlite,
            NativePool::Postgres(_) => Engine::Postgres,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if engine == Engine::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if engine == Engine::Sqlite {
                        sqlx::query("pragma busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("pragma synchronous = normal")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("pragma foreign_keys = on")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        let db = Db { pool, native };
        db.migrate().await?;
        Ok(db)
    }

    /// Applies the schema for this engine (idempotent) and the session table.
    pub async fn migrate(&self) -> Result<()> {
        match &self.native {
            NativePool::Sqlite(pool) => {
                sqlx::migrate!("migrations/sqlite").run(pool).await?;
                tower_sessions_sqlx_store::SqliteStore::new(pool.clone())
                    .migrate()
                    .await?;
            }
            NativePool::Postgres(pool) => {
                sqlx::migrate!("migrations/postgres").run(pool).await?;
                tower_sessions_sqlx_store::PostgresStore::new(pool.clone())
                    .migrate()
                    .await?;
            }
        }
        Ok(())
    }

    /// Closes both pools (graceful shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
        match &self.native {
            NativePool::Sqlite(pool) => pool.close().await,
            NativePool::Postgres(pool) => pool.close().await,
        }
    }
}

/// Whether a database URL names PostgreSQL.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The current time in Unix milliseconds, as stored.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Formats stored Unix milliseconds as RFC 3339 (UTC).
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Reads a column, turning a decode failure into an internal error.
pub fn col<'r, T>(row: &'r AnyRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row;
    row.try_get(name).map_err(Error::from)
}
