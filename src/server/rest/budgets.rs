//! The budget part of the JSON API: a project's monthly budget, where it
//! stands, and the notifications its alerts leave.

use crate::model::costs::{BudgetStatus, Notification};
use crate::server::auth::needs::{Manage, Read};
use crate::server::auth::ProjectCaller;
use crate::server::error::Result;
use crate::server::rest::ApiJson;
use crate::server::services::budgets;
use crate::server::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// The budget routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/projects/{id}/budget", get(get_budget).put(put_budget))
        .route("/api/projects/{id}/notifications", get(list_notifications))
        .route("/api/projects/{id}/notifications/read", post(mark_read))
}

async fn get_budget(
    State(state): State<AppState>,
    access: ProjectCaller<Read>,
) -> Result<Json<BudgetStatus>> {
    Ok(Json(budgets::status(&state, &access.project_id).await?))
}

/// Body of `PUT …/budget`: the whole budget; a null or absent limit removes it.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BudgetChange {
    /// Exact decimal dollars per calendar month (UTC), e.g. `250.00`; null removes the budget.
    limit_usd: Option<String>,
    /// An http(s) URL called with `{projectId, threshold, spentUsd, limitUsd, month}` on each alert.
    webhook_url: Option<String>,
}

async fn put_budget(
    State(state): State<AppState>,
    access: ProjectCaller<Manage>,
    ApiJson(body): ApiJson<BudgetChange>,
) -> Result<Json<BudgetStatus>> {
    let status = budgets::save(
        &state,
        &access.project_id,
        body.limit_usd.as_deref().unwrap_or_default(),
        body.webhook_url.as_deref().unwrap_or_default(),
    )
    .await?;
    Ok(Json(status))
}

/// `GET …/notifications`.
#[derive(Serialize, schemars::JsonSchema)]
pub struct NotificationList {
    /// The latest 100, newest first.
    notifications: Vec<Notification>,
}

async fn list_notifications(
    State(state): State<AppState>,
    access: ProjectCaller<Read>,
) -> Result<Json<NotificationList>> {
    let notifications = budgets::notifications(&state, &access.project_id).await?;
    Ok(Json(NotificationList { notifications }))
}

async fn mark_read(
    State(state): State<AppState>,
    access: ProjectCaller<Read>,
) -> Result<StatusCode> {
    budgets::mark_read(&state, &access.project_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
