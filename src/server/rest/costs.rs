//! The cost and performance part of the JSON API (FR-007, FR-008): a
//! project's usage and cost report, its ledger as CSV and its performance
//! report, and the same across the workspace for admins.
//! Filters come as query parameters (`from`, `to`, `provider`, `model`,
//! `granularity`); a bad one is a 422 naming it.

use crate::error::AppError;
use crate::model::account::WorkspaceRole;
use crate::model::catalog::ProviderId;
use crate::model::costs::{CostReport, Granularity, UsageFilter, WorkspaceCosts};
use crate::model::performance::PerformanceReport;
use crate::server::auth::needs::Read;
use crate::server::auth::{CurrentUser, ProjectCaller};
use crate::server::db::users::UserRecord;
use crate::server::error::{Error, Result};
use crate::server::services::costs::{self, CsvExport};
use crate::server::services::performance;
use crate::server::state::AppState;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

/// The cost routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/projects/{id}/llm-usage", get(project_report))
        .route("/api/projects/{id}/llm-usage.csv", get(project_csv))
        .route("/api/admin/llm-usage", get(workspace_report))
        .route("/api/admin/llm-usage.csv", get(workspace_csv))
        .route(
            "/api/projects/{id}/llm-performance",
            get(project_performance),
        )
        .route("/api/admin/llm-performance", get(workspace_performance))
}

/// The query string, as text: each value is checked with a 422 naming it.
#[derive(Debug, Default, Deserialize)]
struct UsageQuery {
    from: Option<String>,
    to: Option<String>,
    provider: Option<String>,
    model: Option<String>,
    granularity: Option<String>,
}

/// A query value, blank meaning "not given".
fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// The filter a query asks for (dates and model are checked by the service).
fn usage_filter(query: Result<Query<UsageQuery>, QueryRejection>) -> Result<UsageFilter> {
    let Query(query) = query.map_err(|rejection| AppError::BadRequest {
        message: rejection.body_text(),
    })?;
    let provider = present(query.provider)
        .map(|id| {
            ProviderId::parse(id.trim()).ok_or_else(|| {
                AppError::invalid(
                    "provider",
                    format!("unknown provider `{id}`; use claude, openai, gemini or llama"),
                )
            })
        })
        .transpose()?;
    let granularity = match present(query.granularity).as_deref().map(str::trim) {
        None | Some("day") => Granularity::Day,
        Some("week") => Granularity::Week,
        Some("month") => Granularity::Month,
        Some(other) => {
            return Err(AppError::invalid(
                "granularity",
                format!("unknown granularity `{other}`; use day, week or month"),
            )
            .into())
        }
    };
    Ok(UsageFilter {
        from: present(query.from),
        to: present(query.to),
        provider,
        model: present(query.model),
        granularity,
    })
}

/// Workspace spend is for workspace admins only.
fn require_admin(user: &UserRecord) -> Result<()> {
    if user.role == WorkspaceRole::Admin {
        Ok(())
    } else {
        Err(Error::App(AppError::Forbidden {
            message: "only workspace admins can see workspace spend".into(),
        }))
    }
}

/// A CSV download.
fn csv_response(export: CsvExport) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", export.filename),
            ),
        ],
        Body::from_stream(export.body),
    )
        .into_response()
}

async fn project_report(
    State(state): State<AppState>,
    access: ProjectCaller<Read>,
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Json<CostReport>> {
    let filter = usage_filter(query)?;
    let observed = performance::observations(&state, &access.project_id, &filter).await?;
    Ok(Json(
        costs::report(&state, &access.project_id, &filter, &observed).await?,
    ))
}

async fn project_csv(
    State(state): State<AppState>,
    access: ProjectCaller<Read>,
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Response> {
    let filter = usage_filter(query)?;
    let export = costs::csv(&state, Some(&access.project_id), &filter).await?;
    Ok(csv_response(export))
}

async fn workspace_report(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Json<WorkspaceCosts>> {
    require_admin(&user)?;
    let filter = usage_filter(query)?;
    Ok(Json(costs::workspace(&state, &filter).await?))
}

async fn project_performance(
    State(state): State<AppState>,
    access: ProjectCaller<Read>,
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Json<PerformanceReport>> {
    let filter = usage_filter(query)?;
    Ok(Json(
        performance::report(&state, Some(&access.project_id), &filter).await?,
    ))
}

async fn workspace_performance(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Json<PerformanceReport>> {
    require_admin(&user)?;
    let filter = usage_filter(query)?;
    Ok(Json(performance::report(&state, None, &filter).await?))
}

async fn workspace_csv(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Response> {
    require_admin(&user)?;
    let filter = usage_filter(query)?;
    Ok(csv_response(costs::csv(&state, None, &filter).await?))
}
