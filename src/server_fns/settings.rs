//! The settings page's calls: load everything the page shows, save the form,
//! Test Connection, Compare's Select, and API tokens. Each calls the same service
//! as the JSON API, so the page and programs follow one set of rules.

use crate::error::AppError;
use crate::model::access::Scope;
use crate::model::account::{ProjectRole, UseCase};
use crate::model::api_token::{ApiToken, CreatedApiToken};
use crate::model::catalog::{Catalog, ProviderId};
use crate::model::knowledge::KnowledgeStatus;
use crate::model::llm_config::{KeyCheck, LlmConfig};
use crate::model::recommend::Observations;
use crate::model::settings_form::SettingsForm;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Everything the settings page needs, in one round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsData {
    /// The current configuration (key masked).
    pub config: LlmConfig,
    /// The model catalog.
    pub catalog: Catalog,
    /// Providers with a Cover-managed key on this server.
    pub managed: Vec<ProviderId>,
    /// The project's use case (for recommendations).
    pub use_case: UseCase,
    /// The project's API tokens.
    pub tokens: Vec<ApiToken>,
    /// The viewer's role: members see the settings read-only.
    pub role: ProjectRole,
    /// Where the knowledge index stands (its model, chunks, progress).
    pub knowledge: KnowledgeStatus,
    /// What the project measured of each model over the last 30 days, for
    /// the "Recommended" marker.
    pub observed: Observations,
}

/// Loads the settings page.
#[server(prefix = "/sfn", endpoint = "settings/get")]
pub async fn get_settings(project_id: String) -> Result<SettingsData, AppError> {
    use crate::server::services::{api_tokens, knowledge, llm_settings, performance, projects};
    let (state, user) = crate::server::auth::server_fn_user().await?;
    let project = projects::get(&state.db.pool, &user, &project_id).await?;
    let observed = performance::observations(
        &state,
        &project_id,
        &crate::model::costs::UsageFilter::default(),
    )
    .await?;
    Ok(SettingsData {
        role: project.role,
        config: llm_settings::get(&state, &project_id).await?,
        catalog: state.catalog.as_ref().clone(),
        managed: state.managed_keys.available(),
        use_case: project.use_case,
        tokens: api_tokens::list(&state.db.pool, &project_id).await?,
        knowledge: knowledge::status(&state, &project_id).await?,
        observed,
    })
}

/// Saves the settings form as a new configuration version.
#[server(prefix = "/sfn", endpoint = "settings/save")]
pub async fn save_settings(project_id: String, form: SettingsForm) -> Result<LlmConfig, AppError> {
    use crate::server::services::llm_settings;
    let (state, user) =
        crate::server::auth::server_fn_project_user(&project_id, Scope::Manage).await?;
    let patch = form
        .to_patch(&state.catalog)
        .map_err(|errors| AppError::InvalidFields { errors })?;
    let config = llm_settings::update(&state, &project_id, Some(&user.user_id), patch).await?;
    leptos_axum::redirect(&format!(
        "/projects/{project_id}/settings?saved={}",
        config.version
    ));
    Ok(config)
}

/// Test Connection: checks the key the project would use (or the one typed).
#[server(prefix = "/sfn", endpoint = "settings/test")]
pub async fn test_connection(
    project_id: String,
    provider: String,
    api_key: String,
) -> Result<KeyCheck, AppError> {
    let (state, _) =
        crate::server::auth::server_fn_project_user(&project_id, Scope::Manage).await?;
    let provider = ProviderId::parse(&provider)
        .ok_or_else(|| AppError::invalid("provider", "unknown provider"))?;
    Ok(crate::server::services::llm_settings::test_connection(
        &state,
        &project_id,
        Some(provider),
        Some(api_key),
    )
    .await?)
}

/// Compare's Select button: switches the project's model (a new version).
#[server(prefix = "/sfn", endpoint = "settings/select-model")]
pub async fn select_model(project_id: String, model: String) -> Result<LlmConfig, AppError> {
    let (state, user) =
        crate::server::auth::server_fn_project_user(&project_id, Scope::Manage).await?;
    Ok(crate::server::services::llm_settings::select_model(
        &state,
        &project_id,
        Some(&user.user_id),
        &model,
    )
    .await?)
}

/// Creates a project API token (its secret is in the answer, once).
#[server(prefix = "/sfn", endpoint = "settings/tokens/create")]
pub async fn create_api_token(
    project_id: String,
    name: String,
    #[server(default)] scopes: Vec<Scope>,
) -> Result<CreatedApiToken, AppError> {
    let (state, user) =
        crate::server::auth::server_fn_project_user(&project_id, Scope::Manage).await?;
    Ok(crate::server::services::api_tokens::create(
        &state.db,
        &project_id,
        &user.user_id,
        &name,
        &scopes,
    )
    .await?)
}

/// Revokes a project API token.
#[server(prefix = "/sfn", endpoint = "settings/tokens/revoke")]
pub async fn revoke_api_token(project_id: String, token_id: String) -> Result<(), AppError> {
    let (state, _) =
        crate::server::auth::server_fn_project_user(&project_id, Scope::Manage).await?;
    Ok(crate::server::services::api_tokens::revoke(&state, &project_id, &token_id).await?)
}
