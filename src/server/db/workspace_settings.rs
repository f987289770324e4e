//! The `workspace_setting` table: named workspace-wide values an admin (or
//! the first start) sets at run time, shared by every app server.

use crate::server::db::now_ms;
use crate::server::error::Result;
use sqlx::AnyPool;

/// A setting's value, if it was ever set.
pub async fn get(pool: &AnyPool, name: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("select value from workspace_setting where name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?,
    )
}

/// Sets (or replaces) a setting.
pub async fn set(pool: &AnyPool, name: &str, value: &str) -> Result<()> {
    sqlx::query(
        "insert into workspace_setting (name, value, updated_at) values ($1, $2, $3) \
         on conflict (name) do update set value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(value)
    .bind(now_ms())
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes a setting (nothing when it is not set).
pub async fn remove(pool: &AnyPool, name: &str) -> Result<()> {
    sqlx::query("delete from workspace_setting where name = $1")
        .bind(name)
        .execute(pool)
        .await?;
    Ok(())
}

/// Removes a setting, inside the caller's transaction; `true` when it was
/// there with exactly `value` (so a one-time value is used once).
pub async fn take(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    name: &str,
    value: &str,
) -> Result<bool> {
    let done = sqlx::query("delete from workspace_setting where name = $1 and value = $2")
        .bind(name)
        .bind(value)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}
