//! The A/B experiments part of the JSON API: list and create (owners),
//! read one with its results, change its weights, stop it, promote an arm.

use crate::model::experiments::{
    ExperimentList, ExperimentView, ExperimentWeights, NewExperiment, PromoteArm,
};
use crate::model::llm_config::LlmConfig;
use crate::server::auth::needs::{Manage, Read};
use crate::server::auth::ProjectCaller;
use crate::server::error::Result;
use crate::server::rest::ApiJson;
use crate::server::services::experiments;
use crate::server::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

/// The experiment routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/projects/{id}/experiments", get(list).post(create))
        .route(
            "/api/projects/{id}/experiments/{experiment_id}",
            get(show).patch(reweigh),
        )
        .route(
            "/api/projects/{id}/experiments/{experiment_id}/stop",
            post(stop),
        )
        .route(
            "/api/projects/{id}/experiments/{experiment_id}/promote",
            post(promote),
        )
}

async fn list(
    State(state): State<AppState>,
    access: ProjectCaller<Read>,
) -> Result<Json<ExperimentList>> {
    Ok(Json(experiments::list(&state, &access.project_id).await?))
}

async fn create(
    State(state): State<AppState>,
    access: ProjectCaller<Manage>,
    ApiJson(asked): ApiJson<NewExperiment>,
) -> Result<(StatusCode, Json<ExperimentView>)> {
    let created =
        experiments::create(&state, &access.project_id, access.caller.user_id(), asked).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn show(
    State(state): State<AppState>,
    access: ProjectCaller<Read>,
    Path((_, experiment_id)): Path<(String, String)>,
) -> Result<Json<ExperimentView>> {
    Ok(Json(
        experiments::get(&state, &access.project_id, &experiment_id).await?,
    ))
}

async fn reweigh(
    State(state): State<AppState>,
    access: ProjectCaller<Manage>,
    Path((_, experiment_id)): Path<(String, String)>,
    ApiJson(asked): ApiJson<ExperimentWeights>,
) -> Result<Json<ExperimentView>> {
    Ok(Json(
        experiments::set_weights(&state, &access.project_id, &experiment_id, asked).await?,
    ))
}

async fn stop(
    State(state): State<AppState>,
    access: ProjectCaller<Manage>,
    Path((_, experiment_id)): Path<(String, String)>,
) -> Result<Json<ExperimentView>> {
    Ok(Json(
        experiments::stop(&state, &access.project_id, &experiment_id).await?,
    ))
}

/// `POST …/promote`: the stopped experiment and the project's new configuration.
#[derive(Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Promoted {
    /// The experiment, stopped, with the arm promoted.
    experiment: ExperimentView,
    /// The project's configuration now.
    configuration: LlmConfig,
}

async fn promote(
    State(state): State<AppState>,
    access: ProjectCaller<Manage>,
    Path((_, experiment_id)): Path<(String, String)>,
    ApiJson(asked): ApiJson<PromoteArm>,
) -> Result<Json<Promoted>> {
    let (experiment, configuration) = experiments::promote(
        &state,
        &access.project_id,
        &experiment_id,
        access.caller.user_id(),
        &asked.arm,
    )
    .await?;
    Ok(Json(Promoted {
        experiment,
        configuration,
    }))
}
