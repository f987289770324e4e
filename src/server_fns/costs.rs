//! The cost and performance pages' and the admin dashboard's calls: the same services as
//! `GET /api/projects/:id/llm-usage` and `GET /api/admin/llm-usage`, so the
//! page and the API agree to the nano-dollar.

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::model::access::Scope;
use crate::model::costs::{CostReport, UsageFilter, WorkspaceCosts};
use crate::model::performance::PerformanceReport;
use leptos::prelude::*;

/// A project's cost analysis for a period (default: the last 30 days).
#[server(prefix = "/sfn", endpoint = "costs/report")]
pub async fn get_cost_report(
    project_id: String,
    filter: UsageFilter,
) -> Result<CostReport, AppError> {
    use crate::server::services::{costs, performance};
    let (state, _) = crate::server::auth::server_fn_project_user(&project_id, Scope::Read).await?;
    let observed = performance::observations(&state, &project_id, &filter).await?;
    Ok(costs::report(&state, &project_id, &filter, &observed).await?)
}

/// Spend across every project (workspace admins only; 403 for members).
#[server(prefix = "/sfn", endpoint = "costs/workspace")]
pub async fn get_workspace_costs(filter: UsageFilter) -> Result<WorkspaceCosts, AppError> {
    let (state, _) = crate::server_fns::admin::admin_user().await?;
    Ok(crate::server::services::costs::workspace(&state, &filter).await?)
}

/// The workspace's performance report for a period (the admin page; admins
/// only): the same service as `GET /api/admin/llm-performance`.
#[server(prefix = "/sfn", endpoint = "performance/workspace")]
pub async fn get_workspace_performance(filter: UsageFilter) -> Result<PerformanceReport, AppError> {
    let (state, _) = crate::server_fns::admin::admin_user().await?;
    Ok(crate::server::services::performance::report(&state, None, &filter).await?)
}

/// A project's performance report for a period (the Performance screen):
/// the same service as `GET /api/projects/:id/llm-performance`.
#[server(prefix = "/sfn", endpoint = "performance/report")]
pub async fn get_performance_report(
    project_id: String,
    filter: UsageFilter,
) -> Result<PerformanceReport, AppError> {
    let (state, _) = crate::server::auth::server_fn_project_user(&project_id, Scope::Read).await?;
    Ok(crate::server::services::performance::report(&state, Some(&project_id), &filter).await?)
}
