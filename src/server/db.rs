//! Storage: one pool over SQLite (the embedded default, WAL mode) or PostgreSQL,
//! chosen by the `DATABASE_URL` scheme. Queries are written once, portably
//! (`$1` placeholders, `RETURNING`, `ON CONFLICT`), and run through sqlx's `Any`
//! driver, so every repository serves both engines. Sessions use the published
//! tower-sessions store for the same engine.
//!
//! Portability rules for queries: ids are UUID text, times are Unix milliseconds
//! in `bigint`, flags are `bigint` 0/1 (the `Any` driver cannot decode SQLite
//! integers as `bool`), money is `bigint` nano-dollars.
//!
//! Reads use [`Db::pool`]; writes use [`Db::writer`]. On SQLite the writer is
//! one connection, so writes queue in the pool (first come, first served)
//! instead of colliding on the file lock and sleeping in SQLite's busy
//! handler; readers never wait for it (WAL). On PostgreSQL both are the same
//! pool, and the ledger's writer has connections of its own
//! ([`Db::ledger_pool`]).

pub mod api_tokens;
pub mod batch;
pub mod budgets;
pub mod conversations;
pub mod experiments;
pub mod internal_rates;
pub mod invitations;
pub mod knowledge;
pub mod llm_configs;
pub mod login_throttle;
pub mod paging;
pub mod projects;
pub mod provider_keys;
pub mod users;
pub mod workspace_settings;

use crate::server::error::{Error, Result};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AnyConnection, AnyPool, PgPool, SqlitePool};
use std::fmt::Write;
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

/// The database handle: portable pools for reads and writes, and the native
/// one for sessions.
#[derive(Debug, Clone)]
pub struct Db {
    /// Portable pool for reads (and, on PostgreSQL, writes).
    pub pool: AnyPool,
    /// Portable pool for writes: one connection on SQLite, [`Db::pool`] on PostgreSQL.
    pub writer: AnyPool,
    /// Which engine this is.
    pub engine: Engine,
    /// Native pool for the tower-sessions store.
    pub native: NativePool,
}

/// The connections the ledger's writer commits with ([`Db::ledger_pool`]).
pub struct LedgerPool {
    /// The pool.
    pub pool: AnyPool,
    /// Whether it is the writer's alone, to be closed when the writer stops.
    pub own: bool,
}

/// Connections of the read pool.
const SQLITE_READERS: u32 = 8;
/// Connections shared by reads and writes on PostgreSQL (per app server).
const POSTGRES_CONNECTIONS: u32 = 16;
/// Connections of the ledger writer's own pool on PostgreSQL: it commits one
/// group at a time.
const LEDGER_CONNECTIONS: u32 = 1;
/// How long a query waits for a connection before the request answers 503.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl Db {
    /// Connects (creating the SQLite file on first run) and applies migrations.
    pub async fn connect(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let native = if is_postgres(url) {
            NativePool::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect(url)
                    .await?,
            )
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10));
            let file = options.get_filename().to_owned();
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await?;
            owner_only(&file)?;
            NativePool::Sqlite(pool)
        } else {
            return Err(Error::internal(
                "DATABASE_URL must start with sqlite: or postgres://",
            ));
        };
        let engine = match native {
            NativePool::Sqlite(_) => Engine::Sqlite,
            NativePool::Postgres(_) => Engine::Postgres,
        };
        let pool = any_pool(engine, url, engine_connections(engine)).await?;
        let writer = match engine {
            Engine::Sqlite => any_pool(engine, url, 1).await?,
            Engine::Postgres => pool.clone(),
        };
        let db = Db {
            pool,
            writer,
            engine,
            native,
        };
        db.migrate().await?;
        Ok(db)
    }

    /// The pool the ledger's writer commits with (`url`: this database's).
    /// Called on the writer's own runtime: on PostgreSQL it opens
    /// connections of their own there, so a reply wakes the writer at once
    /// instead of waiting for a request-serving thread to poll the socket;
    /// on SQLite it is [`Db::writer`], the one connection every write shares.
    pub async fn ledger_pool(&self, url: &str) -> Result<LedgerPool> {
        Ok(match self.engine {
            Engine::Sqlite => LedgerPool {
                pool: self.writer.clone(),
                own: false,
            },
            Engine::Postgres => LedgerPool {
                pool: any_pool(self.engine, url, LEDGER_CONNECTIONS).await?,
                own: true,
            },
        })
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

    /// Closes every pool (graceful shutdown).
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
        match &self.native {
            NativePool::Sqlite(pool) => pool.close().await,
            NativePool::Postgres(pool) => pool.close().await,
        }
    }
}

fn engine_connections(engine: Engine) -> u32 {
    match engine {
        Engine::Sqlite => SQLITE_READERS,
        Engine::Postgres => POSTGRES_CONNECTIONS,
    }
}

/// A portable pool of `connections` on `url`, with SQLite's per-connection
/// settings (busy timeout for the session store's writes, foreign keys).
async fn any_pool(engine: Engine, url: &str, connections: u32) -> Result<AnyPool> {
    Ok(AnyPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
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
        .await?)
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

/// Reads a text column holding one of a closed set of names (a
/// [`text_enum`](crate::model) value); an unknown name is an internal error.
pub fn parsed<T>(row: &AnyRow, name: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    let text: String = col(row, name)?;
    parse(&text).ok_or_else(|| Error::internal(format!("column {name}: unknown value `{text}`")))
}

/// [`parsed`] for a nullable column.
pub fn parsed_optional<T>(
    row: &AnyRow,
    name: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>> {
    let text: Option<String> = col(row, name)?;
    text.map(|text| {
        parse(&text)
            .ok_or_else(|| Error::internal(format!("column {name}: unknown value `{text}`")))
    })
    .transpose()
}

/// How a multi-row statement writes its parameters. Queries are written with
/// `$1`, `$2`, … (PostgreSQL needs them), but SQLite looks such names up in a
/// list, so binding a statement with thousands of them takes quadratic time;
/// there the statements with one parameter per value use `?` (bound in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholders {
    /// `$1`, `$2`, …
    Numbered,
    /// `?`, `?`, …
    Anonymous,
}

impl Placeholders {
    /// The style for `conn`'s engine.
    pub fn of(conn: &AnyConnection) -> Placeholders {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Placeholders::Anonymous
        } else {
            Placeholders::Numbered
        }
    }

    /// The `…, …` list of `count` parameters (for `in (…)`).
    pub fn list(self, count: usize) -> String {
        let mut sql = String::with_capacity(count * 5);
        for i in 1..=count {
            if i > 1 {
                sql.push_str(", ");
            }
            match self {
                Placeholders::Numbered => {
                    let _ = write!(sql, "${i}");
                }
                Placeholders::Anonymous => sql.push('?'),
            }
        }
        sql
    }

    /// The `(…), (…)` list of a multi-row statement: `rows` tuples of `width`
    /// parameters.
    pub fn values_list(self, rows: usize, width: usize) -> String {
        let mut sql = String::with_capacity(rows * width * 7);
        for i in 0..rows {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for c in 1..=width {
                if c > 1 {
                    sql.push_str(", ");
                }
                match self {
                    Placeholders::Numbered => {
                        let _ = write!(sql, "${}", i * width + c);
                    }
                    Placeholders::Anonymous => sql.push('?'),
                }
            }
            sql.push(')');
        }
        sql
    }
}

/// Makes the SQLite file and its journal files readable by their owner only
/// (0600), whatever mode they had: they hold sealed keys and conversations.
fn owner_only(database: &std::path::Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut path = database.as_os_str().to_owned();
            path.push(suffix);
            let path = std::path::PathBuf::from(path);
            if path.exists() {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(
                    |e| Error::internal(format!("making {} private: {e}", path.display())),
                )?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = database;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// A PostgreSQL statement spelled the SQLite way: identity keys as
    /// `integer primary key`, `cast(… as bigint)` (PostgreSQL's `sum` of
    /// bigints is numeric) dropped.
    fn as_sqlite_spells_it(postgres: &str) -> String {
        let text = postgres
            .replace(
                "bigint generated by default as identity primary key",
                "integer primary key",
            )
            .replace(" bytea ", " blob ");
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(start) = rest.find("cast(") {
            out.push_str(&rest[..start]);
            let inner = &rest[start + "cast(".len()..];
            let mut depth = 1;
            let end = inner
                .char_indices()
                .find_map(|(i, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    (depth == 0).then_some(i)
                })
                .expect("a cast( is closed");
            let cast = &inner[..end];
            let value = cast
                .strip_suffix(" as bigint")
                .unwrap_or_else(|| panic!("only casts to bigint differ, not `cast({cast})`"));
            out.push_str(&as_sqlite_spells_it(value));
            rest = &inner[end + 1..];
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn the_two_migration_folders_differ_only_where_the_engines_must() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let names = |engine: &str| {
            let mut names: Vec<String> = std::fs::read_dir(root.join(engine))
                .expect("the migrations folder")
                .map(|entry| {
                    entry
                        .expect("an entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            names.sort();
            names
        };
        let sqlite = names("sqlite");
        assert_eq!(
            sqlite,
            names("postgres"),
            "the same migrations on both engines"
        );
        assert!(!sqlite.is_empty());
        for name in sqlite {
            let read = |engine: &str| {
                std::fs::read_to_string(root.join(engine).join(&name)).expect("a migration")
            };
            let (sqlite_sql, postgres_sql) = (read("sqlite"), read("postgres"));
            for (line, (a, b)) in sqlite_sql
                .lines()
                .zip(as_sqlite_spells_it(&postgres_sql).lines())
                .enumerate()
            {
                assert_eq!(a, b, "{name}:{}: the engines' migrations drifted", line + 1);
            }
            assert_eq!(
                sqlite_sql.lines().count(),
                postgres_sql.lines().count(),
                "{name}: the engines' migrations drifted"
            );
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_sqlite_files_are_owner_only_whatever_mode_they_had() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cover.db");
        std::fs::write(&file, b"").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let url = format!("sqlite://{}", file.display());
        let db = super::Db::connect(&url).await.unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let path = dir.path().join(format!("cover.db{suffix}"));
            if path.exists() {
                let mode = std::fs::metadata(&path).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", path.display());
            }
        }
        drop(db);
    }

    #[test]
    fn the_engine_rewrite_removes_only_bigint_casts() {
        assert_eq!(
            as_sqlite_spells_it(
                "select cast(coalesce(sum(x), 0) as bigint), cast(sum(y) as bigint)"
            ),
            "select coalesce(sum(x), 0), sum(y)"
        );
    }
}
