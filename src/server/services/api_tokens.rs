//! Project API tokens for programs: created on the settings page, shown once,
//! stored as a SHA-256 hash, revocable. A token opens one project's JSON API
//! within its scopes.

use crate::error::AppError;
use crate::model::access::{Scope, DEFAULT_TOKEN_SCOPES};
use crate::model::api_token::{ApiToken, CreatedApiToken};
use crate::server::crypto::{one_time_secret, sha256_hex};
use crate::server::db::api_tokens::{self, NewTokenRow, TokenRow};
use crate::server::db::{now_ms, rfc3339, Db};
use crate::server::error::{Error, Result};
use crate::server::state::AppState;
use sqlx::AnyPool;

/// Every token starts with this, so leaked tokens are easy to recognise.
pub const TOKEN_PREFIX: &str = "cov_";
/// Characters shown to tell tokens apart.
const SHOWN_PREFIX_LEN: usize = 12;
/// Longest token name accepted.
pub const MAX_NAME_LEN: usize = 60;
/// Live tokens a project may hold: a bound on what a list shows and what an
/// owner (or a stolen session) can mint.
pub const MAX_LIVE_TOKENS: i64 = 100;
/// Tokens a list shows at most: every live one, then the latest revoked.
const TOKENS_LISTED: i64 = 2 * MAX_LIVE_TOKENS;
/// How stale `last_used_at` may be before a use is written down.
const TOUCH_INTERVAL_MS: i64 = 60_000;

fn view(row: TokenRow) -> ApiToken {
    ApiToken {
        id: row.api_token_id,
        name: row.name,
        prefix: row.token_prefix,
        created_at: rfc3339(row.created_at),
        last_used_at: row.last_used_at.map(rfc3339),
        revoked: row.revoked_at.is_some(),
        scopes: row.scopes,
    }
}

/// Creates a token for a project with `scopes` (the default set when none
/// are named); the answer is the only time it is shown.
pub async fn create(
    db: &Db,
    project_id: &str,
    user_id: &str,
    name: &str,
    scopes: &[Scope],
) -> Result<CreatedApiToken> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
        return Err(
            AppError::invalid("name", format!("must be 1 to {MAX_NAME_LEN} characters")).into(),
        );
    }
    let scopes = if scopes.is_empty() {
        &DEFAULT_TOKEN_SCOPES[..]
    } else {
        scopes
    };
    let token = one_time_secret(TOKEN_PREFIX);
    let prefix: String = token.chars().take(SHOWN_PREFIX_LEN).collect();
    let new = NewTokenRow {
        project_id,
        name,
        token_hash: &sha256_hex(&token),
        token_prefix: &prefix,
        created_by: user_id,
        scopes,
    };
    let row = api_tokens::insert(&db.writer, new, MAX_LIVE_TOKENS)
        .await?
        .ok_or_else(|| AppError::Conflict {
            field: "name".to_owned(),
            message: format!(
            "a project has at most {MAX_LIVE_TOKENS} live tokens; revoke one it no longer needs"
        ),
        })?;
    Ok(CreatedApiToken {
        token: view(row),
        secret: token,
    })
}

/// A project's tokens: every live one, then the latest revoked ones (the
/// list is [`TOKENS_LISTED`] long at most).
pub async fn list(pool: &AnyPool, project_id: &str) -> Result<Vec<ApiToken>> {
    Ok(api_tokens::list(pool, project_id, TOKENS_LISTED)
        .await?
        .into_iter()
        .map(view)
        .collect())
}

/// Revokes a token (404 when the project has no such live token).
pub async fn revoke(state: &AppState, project_id: &str, token_id: &str) -> Result<()> {
    if api_tokens::revoke(&state.db.writer, project_id, token_id).await? {
        state
            .hot
            .tokens
            .forget_where(|_, row| row.api_token_id == token_id);
        Ok(())
    } else {
        Err(AppError::NotFound.into())
    }
}

/// The project a bearer token opens; 401 for unknown or revoked tokens.
pub async fn authenticate(state: &AppState, token: &str) -> Result<TokenRow> {
    let hash = sha256_hex(token.trim());
    let db = &state.db;
    let row = state
        .hot
        .tokens
        .get_or_load(&hash, || async {
            api_tokens::find_live(&db.pool, &hash)
                .await?
                .ok_or_else(|| {
                    Error::App(AppError::Unauthenticated {
                        message: "invalid or revoked API token".into(),
                    })
                })
        })
        .await?;
    if row
        .last_used_at
        .is_none_or(|at| now_ms() - at > TOUCH_INTERVAL_MS)
    {
        api_tokens::touch(&db.writer, &row.api_token_id).await?;
        state.hot.tokens.forget(&hash);
    }
    Ok(row)
}
