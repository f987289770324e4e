//! The project part of the JSON API: list, create, read, rename, members
//! (invited by link, listed, removed).

use crate::model::account::{CreatedInvitation, MemberView, ProjectView};
use crate::server::auth::CurrentUser;
use crate::server::error::Result;
use crate::server::rest::auth::Invitee;
use crate::server::rest::{ApiJson, PageQuery};
use crate::server::services::{invitations, projects};
use crate::server::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// The project routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/projects", get(list_projects).post(create_project))
        .route("/api/projects/{id}", get(get_project).patch(update_project))
        .route(
            "/api/projects/{id}/members",
            get(list_members).post(invite_member),
        )
        .route(
            "/api/projects/{id}/members/{user_id}",
            axum::routing::delete(remove_member),
        )
}

/// The projects list answer: one page.
#[derive(Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectList {
    /// Newest first.
    projects: Vec<ProjectView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

async fn list_projects(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    PageQuery(page): PageQuery,
) -> Result<Json<ProjectList>> {
    let (projects, next_cursor) = projects::list(&state.db.pool, &user, &page).await?;
    Ok(Json(ProjectList {
        projects,
        next_cursor,
    }))
}

/// Body of `POST /api/projects`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewProject {
    /// 1 to 80 characters.
    name: String,
    /// `customer_support` (default), `sales`, `technical_docs` or `other`.
    use_case: Option<String>,
}

async fn create_project(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<NewProject>,
) -> Result<(StatusCode, Json<ProjectView>)> {
    let use_case = match body.use_case.as_deref() {
        Some(value) => projects::parse_use_case(value)?,
        None => crate::model::account::UseCase::CustomerSupport,
    };
    let project = projects::create(&state.db, &state.catalog, &user, &body.name, use_case).await?;
    Ok((StatusCode::CREATED, Json(project)))
}

async fn get_project(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<ProjectView>> {
    Ok(Json(projects::get(&state.db.pool, &user, &id).await?))
}

/// Body of `PATCH /api/projects/:id`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectPatch {
    /// A new name.
    name: Option<String>,
    /// A new use case.
    use_case: Option<String>,
}

async fn update_project(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ProjectPatch>,
) -> Result<Json<ProjectView>> {
    let use_case = body
        .use_case
        .as_deref()
        .map(projects::parse_use_case)
        .transpose()?;
    let project = projects::update(&state.db, &user, &id, body.name.as_deref(), use_case).await?;
    Ok(Json(project))
}

/// The members list answer.
#[derive(Serialize, schemars::JsonSchema)]
pub struct MemberList {
    members: Vec<MemberView>,
}

async fn list_members(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<MemberList>> {
    let members = projects::members(&state.db, &user, &id).await?;
    Ok(Json(MemberList { members }))
}

/// Invites an email to the project: always a one-time link to pass on
/// (the answer does not say whether the email has an account).
async fn invite_member(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Invitee>,
) -> Result<(StatusCode, Json<CreatedInvitation>)> {
    let created = invitations::create(&state.db, &user, Some(&id), &body.email).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn remove_member(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path((id, member_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    projects::remove_member(&state.db, &user, &id, &member_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
