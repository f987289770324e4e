//! The `app_user` table.

use crate::model::account::WorkspaceRole;
use crate::server::db::{col, now_ms, parsed};
use crate::server::error::{Error, Result};
use sqlx::any::AnyRow;
use sqlx::AnyPool;

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// UUID.
    pub user_id: String,
    /// Lower-cased email.
    pub email: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Workspace role.
    pub role: WorkspaceRole,
    /// Creation time (Unix ms).
    pub created_at: i64,
}

fn from_row(row: &AnyRow) -> Result<UserRecord> {
    Ok(UserRecord {
        user_id: col(row, "user_id")?,
        email: col(row, "email")?,
        password_hash: col(row, "password_hash")?,
        role: parsed(row, "role", WorkspaceRole::parse)?,
        created_at: col(row, "created_at")?,
    })
}

const COLUMNS: &str = "user_id, email, password_hash, role, created_at";

/// Inserts an account with `role`, inside the caller's transaction (so an
/// invitation or the setup token is used in the same commit). A taken email
/// is `Ok(None)`.
pub async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    email: &str,
    password_hash: &str,
    role: WorkspaceRole,
) -> Result<Option<UserRecord>> {
    let sql = format!(
        "insert into app_user (user_id, email, password_hash, role, created_at, updated_at) \
         values ($1, $2, $3, $4, $5, $5) on conflict (email) do nothing returning {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(email)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now_ms())
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Whether the workspace has an admin yet (a fresh deployment has none, and
/// prints a setup token until it does).
pub async fn admin_exists(pool: &AnyPool) -> Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("select 1 from app_user where role = 'admin' limit 1")
            .fetch_optional(pool)
            .await?;
    Ok(found.is_some())
}

/// Finds an account by (lower-cased) email.
pub async fn find_by_email(pool: &AnyPool, email: &str) -> Result<Option<UserRecord>> {
    let sql = format!("select {COLUMNS} from app_user where email = $1");
    let row = sqlx::query(&sql).bind(email).fetch_optional(pool).await?;
    row.as_ref().map(from_row).transpose()
}

/// Finds an account by id.
pub async fn find_by_id(pool: &AnyPool, user_id: &str) -> Result<Option<UserRecord>> {
    let sql = format!("select {COLUMNS} from app_user where user_id = $1");
    let row = sqlx::query(&sql).bind(user_id).fetch_optional(pool).await?;
    row.as_ref().map(from_row).transpose()
}

/// Changes an account's password hash (used by `cover user create` on an existing email).
pub async fn set_password_and_role(
    pool: &AnyPool,
    user_id: &str,
    password_hash: &str,
    role: WorkspaceRole,
) -> Result<()> {
    let done = sqlx::query(
        "update app_user set password_hash = $1, role = $2, updated_at = $3 where user_id = $4",
    )
    .bind(password_hash)
    .bind(role.as_str())
    .bind(now_ms())
    .bind(user_id)
    .execute(pool)
    .await?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "user {user_id} vanished during update"
        )))
    }
}
