//! The `provider_key` table: a project's BYOK key per provider, sealed with
//! AES-256-GCM. Only ciphertext, nonce, key version and the masked form are
//! stored.

use crate::server::crypto::Sealed;
use crate::server::db::{col, now_ms};
use crate::server::error::Result;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool};

/// A stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The project.
    pub project_id: String,
    /// The provider.
    pub provider: String,
    /// The sealed key.
    pub sealed: Sealed,
    /// The masked form shown to people.
    pub masked: String,
}

fn from_row(row: &AnyRow) -> Result<StoredKey> {
    Ok(StoredKey {
        project_id: col(row, "project_id")?,
        provider: col(row, "provider")?,
        sealed: Sealed {
            ciphertext: col(row, "ciphertext")?,
            nonce: col(row, "nonce")?,
            key_version: col(row, "key_version")?,
        },
        masked: col(row, "masked")?,
    })
}

const COLUMNS: &str = "project_id, provider, ciphertext, nonce, key_version, masked";

/// Stores (or replaces) a project's key for a provider.
pub async fn upsert<'e, E>(executor: E, key: &StoredKey) -> Result<()>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let now = now_ms();
    sqlx::query(
        "insert into provider_key (project_id, provider, ciphertext, nonce, key_version, masked, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $7) \
         on conflict (project_id, provider) do update set ciphertext = excluded.ciphertext, \
             nonce = excluded.nonce, key_version = excluded.key_version, masked = excluded.masked, \
             updated_at = excluded.updated_at",
    )
    .bind(&key.project_id)
    .bind(&key.provider)
    .bind(&key.sealed.ciphertext)
    .bind(&key.sealed.nonce)
    .bind(key.sealed.key_version)
    .bind(&key.masked)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(())
}

/// A project's key for a provider.
pub async fn get(pool: &AnyPool, project_id: &str, provider: &str) -> Result<Option<StoredKey>> {
    let sql = format!("select {COLUMNS} from provider_key where project_id = $1 and provider = $2");
    let row = sqlx::query(&sql)
        .bind(project_id)
        .bind(provider)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every stored key (for `cover keys rotate`).
pub async fn all<'e, E>(executor: E) -> Result<Vec<StoredKey>>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let sql = format!("select {COLUMNS} from provider_key order by project_id, provider");
    let rows = sqlx::query(&sql).fetch_all(executor).await?;
    rows.iter().map(from_row).collect()
}
