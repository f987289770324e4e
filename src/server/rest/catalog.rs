//! The catalog part of the JSON API: the providers and their models.

use crate::error::AppError;
use crate::model::catalog::{ModelInfo, ProviderId, ProviderInfo};
use crate::server::error::{Error, Result};
use crate::server::state::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

/// The catalog routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/llm/providers", get(list_providers))
        .route("/api/llm/providers/{id}/models", get(list_models))
}

/// `GET /api/llm/providers`: every provider with its models.
#[derive(Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderList<'a> {
    /// The model a new project starts on.
    default_model: &'a str,
    /// Every provider, in display order.
    providers: Vec<ProviderWithModels<'a>>,
}

/// A provider and its models.
#[derive(Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderWithModels<'a> {
    #[serde(flatten)]
    provider: &'a ProviderInfo,
    /// Whether this server has a Cover-managed key for it (Llama: always).
    managed_key_available: bool,
    /// Its models.
    models: Vec<&'a ModelInfo>,
}

/// `GET /api/llm/providers/:id/models`: one provider's models.
#[derive(Serialize, schemars::JsonSchema)]
pub struct ModelList<'a> {
    /// The provider.
    provider: ProviderId,
    /// Its models.
    models: Vec<&'a ModelInfo>,
}

async fn list_providers(State(state): State<AppState>) -> Response {
    let catalog = &state.catalog;
    let managed = state.managed_keys.available();
    let list = ProviderList {
        default_model: &catalog.default_model,
        providers: catalog
            .providers
            .iter()
            .map(|provider| ProviderWithModels {
                provider,
                managed_key_available: managed.contains(&provider.id),
                models: catalog.models_of(provider.id).collect(),
            })
            .collect(),
    };
    Json(list).into_response()
}

async fn list_models(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    let kind = ProviderId::parse(&id).ok_or_else(|| {
        Error::App(AppError::invalid(
            "id",
            format!("unknown provider `{id}`; use claude, openai, gemini or llama"),
        ))
    })?;
    let list = ModelList {
        provider: kind,
        models: state.catalog.models_of(kind).collect(),
    };
    Ok(Json(list).into_response())
}
