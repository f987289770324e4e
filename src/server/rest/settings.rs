//! The LLM-settings part of the JSON API: a project's configuration, key checks,
//! Test Connection and API tokens (managed by people only: a token never
//! makes or revokes tokens), and the admin's allow-list of private hosts.

use crate::error::AppError;
use crate::model::access::{PrivateHosts, Scope};
use crate::model::api_token::{ApiToken, CreatedApiToken};
use crate::model::catalog::ProviderId;
use crate::model::costs::{CompareRequest, CompareResult};
use crate::model::llm_config::{KeyCheck, LlamaFlavour, LlmConfig, LlmConfigPatch};
use crate::server::auth::needs::{Manage, Read};
use crate::server::auth::{check_role, AdminUser, AnyCaller, CurrentUser, ProjectCaller};
use crate::server::error::{Error, Result};
use crate::server::rest::ApiJson;
use crate::server::services::{api_tokens, compare, llm_settings, private_hosts};
use crate::server::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// The settings routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/llm/providers/{id}/validate", post(validate_key))
        .route("/api/llm/compare", post(compare_sample))
        .route(
            "/api/projects/{id}/llm-config",
            get(get_config).patch(update_config),
        )
        .route("/api/projects/{id}/llm-config/test", post(test_connection))
        .route(
            "/api/projects/{id}/tokens",
            get(list_tokens).post(create_token),
        )
        .route("/api/projects/{id}/tokens/{token_id}", delete(revoke_token))
        .route(
            "/api/admin/private-hosts",
            get(get_private_hosts).put(set_private_hosts),
        )
}

async fn get_private_hosts(State(state): State<AppState>, _admin: AdminUser) -> Json<PrivateHosts> {
    Json(private_hosts::view(&state.outbound))
}

/// `PUT /api/admin/private-hosts`: the admin's list, replaced whole.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivateHostsChange {
    /// Host names (`gpu.internal`), addresses (`10.0.0.7`) and networks
    /// (`10.0.0.0/8`, `fd00::/8`); empty for none. At most 100.
    pub hosts: Vec<String>,
}

async fn set_private_hosts(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiJson(body): ApiJson<PrivateHostsChange>,
) -> Result<Json<PrivateHosts>> {
    if let Some(entry) = body.hosts.iter().find(|entry| entry.contains([',', '\n'])) {
        return Err(AppError::invalid("hosts", format!("`{entry}`: one entry per item")).into());
    }
    let hosts = body.hosts.join("\n");
    Ok(Json(
        private_hosts::set(&state.db, &state.outbound, &hosts).await?,
    ))
}

async fn get_config(
    State(state): State<AppState>,
    access: ProjectCaller<Read>,
) -> Result<Json<LlmConfig>> {
    Ok(Json(llm_settings::get(&state, &access.project_id).await?))
}

async fn update_config(
    State(state): State<AppState>,
    access: ProjectCaller<Manage>,
    ApiJson(patch): ApiJson<LlmConfigPatch>,
) -> Result<Json<LlmConfig>> {
    let config =
        llm_settings::update(&state, &access.project_id, access.caller.user_id(), patch).await?;
    Ok(Json(config))
}

/// `POST /api/llm/compare`: the caller must be able to act on the project named
/// in the body (its members, admins, or that project's token).
async fn compare_sample(
    State(state): State<AppState>,
    AnyCaller(caller): AnyCaller,
    ApiJson(request): ApiJson<CompareRequest>,
) -> Result<Json<Vec<CompareResult>>> {
    caller
        .check_project(&state, &request.project_id, Scope::Chat)
        .await?;
    Ok(Json(compare::sample(&state, &request).await?))
}

/// Body of `POST /api/llm/providers/:id/validate`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyToCheck {
    /// The key to check (not needed for Llama).
    api_key: Option<String>,
    /// A self-hosted Llama server.
    base_url: Option<String>,
    /// How that server is spoken to.
    llama_flavour: Option<LlamaFlavour>,
}

async fn validate_key(
    State(state): State<AppState>,
    AnyCaller(caller): AnyCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<KeyToCheck>,
) -> Result<Json<KeyCheck>> {
    caller.check_manages_some_project(&state).await?;
    state.key_checks.admit(caller.limit_key())?;
    let provider = ProviderId::parse(&id).ok_or_else(|| {
        Error::App(AppError::invalid(
            "id",
            format!("unknown provider `{id}`; use claude, openai, gemini or llama"),
        ))
    })?;
    let key = body.api_key.unwrap_or_default();
    if key.trim().is_empty() && provider != ProviderId::Llama {
        return Err(AppError::invalid("apiKey", "is required").into());
    }
    let base_url = match (provider, body.base_url.filter(|u| !u.trim().is_empty())) {
        (ProviderId::Llama, Some(url)) => url,
        _ => state.base_urls.base_url(provider).to_owned(),
    };
    let check = llm_settings::check_key(
        &state,
        provider,
        SecretString::from(key.trim().to_owned()),
        &base_url,
        body.llama_flavour.unwrap_or_default(),
    )
    .await;
    Ok(Json(check))
}

/// Body of `POST /api/projects/:id/llm-config/test`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionToTest {
    /// The provider to test (default: the configured one).
    provider: Option<ProviderId>,
    /// A key to test instead of the one the project would use.
    api_key: Option<String>,
}

async fn test_connection(
    State(state): State<AppState>,
    access: ProjectCaller<Manage>,
    ApiJson(body): ApiJson<ConnectionToTest>,
) -> Result<Json<KeyCheck>> {
    let check =
        llm_settings::test_connection(&state, &access.project_id, body.provider, body.api_key)
            .await?;
    Ok(Json(check))
}

/// The tokens list answer.
#[derive(Serialize, schemars::JsonSchema)]
pub struct TokenList {
    /// The project's tokens, revoked ones included.
    tokens: Vec<ApiToken>,
}

/// Body of `POST /api/projects/:id/tokens`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// 1 to 60 characters.
    name: String,
    /// What it may do: any of `chat`, `read`, `manage` (default `chat` and `read`).
    scopes: Option<Vec<Scope>>,
}

async fn list_tokens(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<TokenList>> {
    check_role(&state.db.pool, &user, &id, Scope::Read).await?;
    let tokens = api_tokens::list(&state.db.pool, &id).await?;
    Ok(Json(TokenList { tokens }))
}

async fn create_token(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewToken>,
) -> Result<(StatusCode, Json<CreatedApiToken>)> {
    check_role(&state.db.pool, &user, &id, Scope::Manage).await?;
    let scopes = body.scopes.unwrap_or_default();
    let created = api_tokens::create(&state.db, &id, &user.user_id, &body.name, &scopes).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn revoke_token(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path((id, token_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_role(&state.db.pool, &user, &id, Scope::Manage).await?;
    api_tokens::revoke(&state, &id, &token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
