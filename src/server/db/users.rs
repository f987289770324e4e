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

/// Inserts an account. The first account of the workspace becomes its admin
/// (decided inside the insert, so two concurrent first sign-ups cannot both win),
/// unless `force_admin` is set. A taken email is `Ok(None)`.
pub async fn insert(
    pool: &AnyPool,
    email: &str,
    password_hash: &str,
    force_admin: bool,
) -> Result<Option<UserRecord>> {
    let user_id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    let sql = format!(
        "insert into app_user (user_id, email, password_hash, role, created_at, updated_at) \
         select $1, $2, $3, \
                case when $4 = 1 or not exists (select 1 from app_user) then 'admin' else 'member' end, \
                $5, $5 \
         on conflict (email) do nothing \
         returning {COLUMNS}"
    );
    let mut tx = pool.begin().await?;
    // NOTE: SQLite runs one writer at a time, so the statement alone is atomic;
    // PostgreSQL needs the table lock or two first sign-ups could both see an
    // empty table. Sign-ups are rare, so serialising them costs nothing.
    if tx.backend_name() == "PostgreSQL" {
        sqlx::query("lock table app_user in share row exclusive mode")
            .execute(&mut *tx)
            .await?;
    }
    let row = sqlx::query(&sql)
        .bind(&user_id)
        .bind(email)
        .bind(password_hash)
        .bind(i64::from(force_admin))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    row.as_ref().map(from_row).transpose()
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
