//! Projects: list, create, open, rename.

use crate::error::AppError;
use crate::model::account::{CreatedInvitation, MemberView, ProjectView};
use leptos::prelude::*;

/// The projects the caller may open.
#[server(prefix = "/sfn", endpoint = "projects/list")]
pub async fn list_projects() -> Result<Vec<ProjectView>, AppError> {
    let (state, user) = crate::server::auth::server_fn_user().await?;
    let first = crate::server::db::paging::Page::FIRST_FULL;
    let (projects, _) =
        crate::server::services::projects::list(&state.db.pool, &user, &first).await?;
    Ok(projects)
}

/// Creates a project owned by the caller.
#[server(prefix = "/sfn", endpoint = "projects/create")]
pub async fn create_project(name: String, use_case: String) -> Result<ProjectView, AppError> {
    use crate::server::services::projects;
    let (state, user) = crate::server::auth::server_fn_user().await?;
    let use_case = projects::parse_use_case(&use_case)?;
    Ok(projects::create(&state.db, &state.catalog, &user, &name, use_case).await?)
}

/// One project the caller may act on (404 otherwise).
#[server(prefix = "/sfn", endpoint = "projects/get")]
pub async fn get_project(id: String) -> Result<ProjectView, AppError> {
    let (state, user) = crate::server::auth::server_fn_user().await?;
    Ok(crate::server::services::projects::get(&state.db.pool, &user, &id).await?)
}

/// Renames a project.
#[server(prefix = "/sfn", endpoint = "projects/rename")]
pub async fn rename_project(id: String, name: String) -> Result<ProjectView, AppError> {
    let (state, user) = crate::server::auth::server_fn_user().await?;
    Ok(crate::server::services::projects::update(&state.db, &user, &id, Some(&name), None).await?)
}

/// The project's members (its members may see them).
#[server(prefix = "/sfn", endpoint = "projects/members")]
pub async fn list_members(project_id: String) -> Result<Vec<MemberView>, AppError> {
    let (state, user) = crate::server::auth::server_fn_user().await?;
    Ok(crate::server::services::projects::members(&state.db, &user, &project_id).await?)
}

/// Invites an email to the project; the answer carries the one-time link.
#[server(prefix = "/sfn", endpoint = "projects/invite")]
pub async fn invite_member(
    project_id: String,
    email: String,
) -> Result<CreatedInvitation, AppError> {
    let (state, user) = crate::server::auth::server_fn_user().await?;
    Ok(
        crate::server::services::invitations::create(&state.db, &user, Some(&project_id), &email)
            .await?,
    )
}

/// Removes a member (owners; anyone may remove themselves).
#[server(prefix = "/sfn", endpoint = "projects/remove-member")]
pub async fn remove_member(project_id: String, user_id: String) -> Result<(), AppError> {
    let (state, user) = crate::server::auth::server_fn_user().await?;
    Ok(
        crate::server::services::projects::remove_member(&state.db, &user, &project_id, &user_id)
            .await?,
    )
}
