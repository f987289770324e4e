//! The workspace admin's overview.

use crate::error::AppError;
use crate::model::account::ProjectView;
use leptos::prelude::*;

/// Every project in the workspace (admins only; 403 for members).
#[server(prefix = "/sfn", endpoint = "admin/projects")]
pub async fn workspace_projects() -> Result<Vec<ProjectView>, AppError> {
    use crate::model::account::WorkspaceRole;
    let (state, user) = crate::server::auth::server_fn_user().await?;
    if user.role != WorkspaceRole::Admin {
        return Err(AppError::Forbidden {
            message: "only workspace admins can open the admin area".into(),
        });
    }
    Ok(crate::server::services::projects::list(&state.db.pool, &user).await?)
}
