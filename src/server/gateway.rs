//! The gateway for programs: SDK-compatible endpoints that reach every
//! provider through a project's routing, keys, budget and ledger
//! (`services::completions`), so a program written for OpenAI's SDK can
//! point its base URL at Cover (`…/v1`) and reach Claude, Gemini or Llama.
//!
//! Callers authenticate with one of the project's API tokens carrying the
//! `chat` scope (`Authorization: Bearer cov_…`); the token names the project.
//! Errors come in the format's own shape (one error type per format), with
//! `x-should-retry: false` wherever Cover already retried or retrying cannot
//! help, so SDKs do not retry on top of Cover's own retries and fallbacks.

pub mod openai;

use crate::error::AppError;
use crate::model::access::Scope;
use crate::server::db::api_tokens::TokenRow;
use crate::server::error::{Error, Result};
use crate::server::services::api_tokens;
use crate::server::state::AppState;
use axum::http::request::Parts;
use axum::Router;

/// The gateway's routes.
pub fn routes() -> Router<AppState> {
    openai::routes()
}

/// Where a token comes from: OpenAI's SDKs send `Authorization: Bearer`,
/// Anthropic's `x-api-key`.
fn presented_token(parts: &Parts) -> Option<&str> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| header("x-api-key"))
        .map(str::trim)
}

/// The project a gateway call acts for: the live token's, checked for the
/// `chat` scope (401 without a live token, 403 without the scope). Sessions
/// do not reach the gateway: it is for programs.
pub async fn token_project(state: &AppState, parts: &Parts) -> Result<TokenRow> {
    let Some(token) = presented_token(parts) else {
        return Err(Error::App(AppError::Unauthenticated {
            message: "send a project API token (cov_…) as `Authorization: Bearer`".into(),
        }));
    };
    let token = api_tokens::authenticate(&state.db, token).await?;
    if !token.scopes.contains(&Scope::Chat) {
        return Err(Error::App(AppError::Forbidden {
            message: "this API token lacks the `chat` scope".into(),
        }));
    }
    Ok(token)
}
