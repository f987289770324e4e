//! The account part of the JSON API: sign up (by invitation, setup token or
//! open sign-up), log in, log out, who am I, workspace invitations.

use crate::model::account::{CreatedInvitation, UserView};
use crate::server::auth::{self, AdminUser, ClientAddress, CurrentUser};
use crate::server::db::now_ms;
use crate::server::error::Result;
use crate::server::rest::ApiJson;
use crate::server::services::{accounts, invitations};
use crate::server::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tower_sessions::Session;

/// The account routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/auth/signup", post(sign_up))
        .route("/api/auth/login", post(log_in))
        .route("/api/auth/logout", post(log_out))
        .route("/api/auth/me", get(me))
        .route("/api/invitations", post(invite_to_workspace))
        .route("/api/invitations/accept", post(accept_invitation))
}

/// Credentials for log-in.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct Credentials {
    /// The account's email.
    email: String,
    /// Its password.
    password: String,
}

/// Body of `POST /api/auth/signup`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignUpBody {
    /// The account's email.
    email: String,
    /// At least 8 characters.
    password: String,
    /// The secret of an invitation link (`inv_…`), needed unless sign-up is open.
    invitation: Option<String>,
    /// The one-time setup token the server printed (makes the workspace admin).
    setup_token: Option<String>,
}

async fn sign_up(
    State(state): State<AppState>,
    session: Session,
    ApiJson(body): ApiJson<SignUpBody>,
) -> Result<(StatusCode, Json<UserView>)> {
    let form = accounts::SignUp {
        email: &body.email,
        password: &body.password,
        invitation: body.invitation.as_deref(),
        setup_token: body.setup_token.as_deref(),
    };
    let user = accounts::sign_up(&state.db, state.access.signup, form).await?;
    auth::sign_in(&session, &user).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

async fn log_in(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    session: Session,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Json<UserView>> {
    let user = accounts::log_in(&state.db, &body.email, &body.password, address, now_ms()).await?;
    auth::sign_in(&session, &user).await?;
    Ok(Json(UserView::from(&user)))
}

async fn log_out(session: Session) -> Result<StatusCode> {
    auth::sign_out(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn me(CurrentUser(user): CurrentUser) -> Json<UserView> {
    Json(UserView::from(&user))
}

/// Body of `POST /api/invitations` and `POST /api/projects/:id/members`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Invitee {
    /// The email to invite (whether it has an account or not).
    pub email: String,
}

async fn invite_to_workspace(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ApiJson(body): ApiJson<Invitee>,
) -> Result<(StatusCode, Json<CreatedInvitation>)> {
    let created = invitations::create(&state.db, &admin, None, &body.email).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Body of `POST /api/invitations/accept`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Acceptance {
    /// The invitation link's secret (`inv_…`).
    pub invitation: String,
}

/// The project an accepted invitation opened.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// The project joined, if the invitation was to one.
    pub project_id: Option<String>,
}

async fn accept_invitation(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    ApiJson(body): ApiJson<Acceptance>,
) -> Result<Json<Accepted>> {
    let project_id = invitations::accept(&state.db, &user, &body.invitation).await?;
    Ok(Json(Accepted { project_id }))
}
