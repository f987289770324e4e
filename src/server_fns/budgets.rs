//! The cost page's budget form and notifications: the same service as
//! `GET`/`PUT /api/projects/:id/budget` and `GET /api/projects/:id/notifications`.

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::model::access::Scope;
use crate::model::costs::{BudgetStatus, Notification};
use leptos::prelude::*;

/// Sets (or, with an empty limit, removes) the project's monthly budget.
/// `limit_usd` is a dollar amount such as `"250"` or `"99.50"`; `webhook_url`
/// (optional, `https://` or `http://`) is called on each alert.
#[server(prefix = "/sfn", endpoint = "budgets/save")]
pub async fn save_budget(
    project_id: String,
    limit_usd: String,
    webhook_url: String,
) -> Result<BudgetStatus, AppError> {
    let (state, _) =
        crate::server::auth::server_fn_project_user(&project_id, Scope::Manage).await?;
    Ok(
        crate::server::services::budgets::save(&state, &project_id, &limit_usd, &webhook_url)
            .await?,
    )
}

/// The project's notifications (budget alerts), newest first.
#[server(prefix = "/sfn", endpoint = "budgets/notifications")]
pub async fn list_notifications(project_id: String) -> Result<Vec<Notification>, AppError> {
    let (state, _) = crate::server::auth::server_fn_project_user(&project_id, Scope::Read).await?;
    Ok(crate::server::services::budgets::notifications(&state, &project_id).await?)
}

/// Marks every notification of the project as read.
#[server(prefix = "/sfn", endpoint = "budgets/read")]
pub async fn mark_notifications_read(project_id: String) -> Result<(), AppError> {
    let (state, _) = crate::server::auth::server_fn_project_user(&project_id, Scope::Read).await?;
    Ok(crate::server::services::budgets::mark_read(&state, &project_id).await?)
}
