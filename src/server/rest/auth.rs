//! The account part of the JSON API: sign up, log in, log out, who am I.

use crate::model::account::UserView;
use crate::server::auth::{self, CurrentUser};
use crate::server::db::now_ms;
use crate::server::error::Result;
use crate::server::rest::ApiJson;
use crate::server::services::accounts;
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
}

/// Credentials for sign-up and log-in.
#[derive(Deserialize, schemars::JsonSchema)]
pub struct Credentials {
    /// The account's email.
    email: String,
    /// At least 8 characters.
    password: String,
}

async fn sign_up(
    State(state): State<AppState>,
    session: Session,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<(StatusCode, Json<UserView>)> {
    let user = accounts::sign_up(&state.db, &body.email, &body.password).await?;
    auth::sign_in(&session, &user).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

async fn log_in(
    State(state): State<AppState>,
    session: Session,
    ApiJson(body): ApiJson<Credentials>,
) -> Result<Json<UserView>> {
    let user = accounts::log_in(&state.db, &body.email, &body.password, now_ms()).await?;
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
