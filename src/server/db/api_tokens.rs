//! The `api_token` table: project API tokens for programs. Only a SHA-256 of
//! each token is stored; the token itself is shown once, at creation.

use crate::model::access::{scopes_from_text, scopes_to_text, Scope};
use crate::server::db::{col, now_ms};
use crate::server::error::{Error, Result};
use sqlx::any::AnyRow;
use sqlx::AnyPool;

/// A stored token (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Token id.
    pub api_token_id: String,
    /// The project it opens.
    pub project_id: String,
    /// A name to recognise it by.
    pub name: String,
    /// The first characters, to tell tokens apart.
    pub token_prefix: String,
    /// Creation time (Unix ms).
    pub created_at: i64,
    /// Last use (Unix ms).
    pub last_used_at: Option<i64>,
    /// Revocation time (Unix ms).
    pub revoked_at: Option<i64>,
    /// What it may do.
    pub scopes: Vec<Scope>,
}

const COLUMNS: &str =
    "api_token_id, project_id, name, token_prefix, created_at, last_used_at, revoked_at, scopes";

fn from_row(row: &AnyRow) -> Result<TokenRow> {
    Ok(TokenRow {
        api_token_id: col(row, "api_token_id")?,
        project_id: col(row, "project_id")?,
        name: col(row, "name")?,
        token_prefix: col(row, "token_prefix")?,
        created_at: col(row, "created_at")?,
        last_used_at: col(row, "last_used_at")?,
        revoked_at: col(row, "revoked_at")?,
        scopes: scopes_from_text(&col::<String>(row, "scopes")?)
            .map_err(|name| Error::internal(format!("api_token.scopes holds `{name}`")))?,
    })
}

/// A token to store.
#[derive(Debug, Clone, Copy)]
pub struct NewTokenRow<'a> {
    /// Its project.
    pub project_id: &'a str,
    /// The name its maker gave it.
    pub name: &'a str,
    /// SHA-256 (hex) of the secret.
    pub token_hash: &'a str,
    /// The first characters of the secret, shown to tell tokens apart.
    pub token_prefix: &'a str,
    /// Its maker.
    pub created_by: &'a str,
    /// What it may do.
    pub scopes: &'a [Scope],
}

/// Stores a new token's hash, unless the project already has `max_live`
/// live tokens (then `None`, and nothing is stored): one conditional
/// statement, so concurrent creations cannot pass the bound together.
pub async fn insert(
    pool: &AnyPool,
    token: NewTokenRow<'_>,
    max_live: i64,
) -> Result<Option<TokenRow>> {
    let sql = format!(
        "insert into api_token (api_token_id, project_id, name, token_hash, token_prefix, created_by, created_at, scopes) \
         select $1, $2, $3, $4, $5, $6, $7, $8 \
         where (select count(*) from api_token where project_id = $2 and revoked_at is null) < $9 \
         returning {COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(token.project_id)
        .bind(token.name)
        .bind(token.token_hash)
        .bind(token.token_prefix)
        .bind(token.created_by)
        .bind(now_ms())
        .bind(scopes_to_text(token.scopes))
        .bind(max_live)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// A project's tokens: the live ones, then the latest revoked, newest first
/// within each, `limit` at most.
pub async fn list(pool: &AnyPool, project_id: &str, limit: i64) -> Result<Vec<TokenRow>> {
    let sql = format!(
        "select {COLUMNS} from api_token where project_id = $1 \
         order by case when revoked_at is null then 0 else 1 end, created_at desc limit $2"
    );
    let rows = sqlx::query(&sql)
        .bind(project_id)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Revokes a token of a project; `false` when there is no such live token.
pub async fn revoke(pool: &AnyPool, project_id: &str, api_token_id: &str) -> Result<bool> {
    let done = sqlx::query(
        "update api_token set revoked_at = $1 \
         where project_id = $2 and api_token_id = $3 and revoked_at is null",
    )
    .bind(now_ms())
    .bind(project_id)
    .bind(api_token_id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes every live token `user_id` made for a project (when they leave
/// it), inside the caller's transaction.
pub async fn revoke_made_by(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    project_id: &str,
    user_id: &str,
) -> Result<u64> {
    let done = sqlx::query(
        "update api_token set revoked_at = $1 \
         where project_id = $2 and created_by = $3 and revoked_at is null",
    )
    .bind(now_ms())
    .bind(project_id)
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// The live (not revoked) token with this hash.
pub async fn find_live(pool: &AnyPool, token_hash: &str) -> Result<Option<TokenRow>> {
    let sql =
        format!("select {COLUMNS} from api_token where token_hash = $1 and revoked_at is null");
    let row = sqlx::query(&sql)
        .bind(token_hash)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Records that a token was used (callers do it at most once a minute).
pub async fn touch(pool: &AnyPool, api_token_id: &str) -> Result<()> {
    sqlx::query("update api_token set last_used_at = $1 where api_token_id = $2")
        .bind(now_ms())
        .bind(api_token_id)
        .execute(pool)
        .await?;
    Ok(())
}
