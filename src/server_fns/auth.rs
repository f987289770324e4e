//! Sign up, log in, log out, and who is signed in.

use crate::error::AppError;
use crate::model::account::UserView;
use leptos::prelude::*;

/// Creates an account, signs it in and goes to the projects page.
#[server(prefix = "/sfn", endpoint = "auth/signup")]
pub async fn sign_up(email: String, password: String) -> Result<UserView, AppError> {
    use crate::server::{auth, services::accounts, state::AppState};
    let state = AppState::from_context()?;
    let session = auth::server_fn_session().await?;
    let user = accounts::sign_up(&state.db, &email, &password).await?;
    auth::sign_in(&session, &user).await?;
    leptos_axum::redirect("/projects");
    Ok(UserView::from(&user))
}

/// Checks credentials, signs in and goes to the projects page.
#[server(prefix = "/sfn", endpoint = "auth/login")]
pub async fn log_in(email: String, password: String) -> Result<UserView, AppError> {
    use crate::server::{auth, services::accounts, state::AppState};
    let state = AppState::from_context()?;
    let session = auth::server_fn_session().await?;
    let user = accounts::log_in(&state.db, &email, &password, crate::server::db::now_ms()).await?;
    auth::sign_in(&session, &user).await?;
    leptos_axum::redirect("/projects");
    Ok(UserView::from(&user))
}

/// Ends the session and goes to the log-in page.
#[server(prefix = "/sfn", endpoint = "auth/logout")]
pub async fn log_out() -> Result<(), AppError> {
    let session = crate::server::auth::server_fn_session().await?;
    crate::server::auth::sign_out(&session).await?;
    leptos_axum::redirect("/");
    Ok(())
}

/// The signed-in user, if any.
#[server(prefix = "/sfn", endpoint = "auth/me")]
pub async fn current_user() -> Result<Option<UserView>, AppError> {
    use crate::server::{auth, state::AppState};
    let state = AppState::from_context()?;
    let session = auth::server_fn_session().await?;
    Ok(auth::session_user(&state, &session)
        .await?
        .as_ref()
        .map(UserView::from))
}
