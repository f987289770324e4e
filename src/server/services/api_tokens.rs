//! Project API tokens for programs: created on the settings page, shown once,
//! stored as a SHA-256 hash, revocable. A token opens one project's JSON API.

use crate::error::AppError;
use crate::model::api_token::{ApiToken, CreatedApiToken};
use crate::server::db::api_tokens::{self, TokenRow};
use crate::server::db::{now_ms, rfc3339, Db};
use crate::server::error::{Error, Result};
use rand::distributions::{Alphanumeric, DistString};
use sha2::{Digest, Sha256};
use sqlx::AnyPool;

/// Every token starts with this, so leaked tokens are easy to recognise.
pub const TOKEN_PREFIX: &str = "cov_";
/// Characters shown to tell tokens apart.
const SHOWN_PREFIX_LEN: usize = 12;
/// Longest token name accepted.
pub const MAX_NAME_LEN: usize = 60;
/// How stale `last_used_at` may be before a use is written down.
const TOUCH_INTERVAL_MS: i64 = 60_000;

/// The SHA-256 (hex) stored for a token.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn view(row: TokenRow) -> ApiToken {
    ApiToken {
        id: row.api_token_id,
        name: row.name,
        prefix: row.token_prefix,
        created_at: rfc3339(row.created_at),
        last_used_at: row.last_used_at.map(rfc3339),
        revoked: row.revoked_at.is_some(),
    }
}

/// Creates a token for a project; the answer is the only time it is shown.
pub async fn create(
    db: &Db,
    project_id: &str,
    user_id: &str,
    name: &str,
) -> Result<CreatedApiToken> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
        return Err(
            AppError::invalid("name", format!("must be 1 to {MAX_NAME_LEN} characters")).into(),
        );
    }
    let token = format!(
        "{TOKEN_PREFIX}{}",
        Alphanumeric.sample_string(&mut rand::rngs::OsRng, 40)
    );
    let prefix: String = token.chars().take(SHOWN_PREFIX_LEN).collect();
    let row = api_tokens::insert(
        &db.writer,
        project_id,
        name,
        &hash_token(&token),
        &prefix,
        user_id,
    )
    .await?;
    Ok(CreatedApiToken {
        token: view(row),
        secret: token,
    })
}

/// A project's tokens.
pub async fn list(pool: &AnyPool, project_id: &str) -> Result<Vec<ApiToken>> {
    Ok(api_tokens::list(pool, project_id)
        .await?
        .into_iter()
        .map(view)
        .collect())
}

/// Revokes a token (404 when the project has no such live token).
pub async fn revoke(db: &Db, project_id: &str, token_id: &str) -> Result<()> {
    if api_tokens::revoke(&db.writer, project_id, token_id).await? {
        Ok(())
    } else {
        Err(AppError::NotFound.into())
    }
}

/// The project a bearer token opens; 401 for unknown or revoked tokens.
pub async fn authenticate(db: &Db, token: &str) -> Result<TokenRow> {
    let row = api_tokens::find_live(&db.pool, &hash_token(token.trim()))
        .await?
        .ok_or_else(|| {
            Error::App(AppError::Unauthenticated {
                message: "invalid or revoked API token".into(),
            })
        })?;
    if row
        .last_used_at
        .is_none_or(|at| now_ms() - at > TOUCH_INTERVAL_MS)
    {
        api_tokens::touch(&db.writer, &row.api_token_id).await?;
    }
    Ok(row)
}
