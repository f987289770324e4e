//! Sign up, log in, log out, and who is signed in.

use crate::error::AppError;
use crate::model::account::{InvitationView, SignupMode, UserView};
use leptos::prelude::*;

/// Creates an account, signs it in and goes to the projects page.
#[server(prefix = "/sfn", endpoint = "auth/signup")]
pub async fn sign_up(
    email: String,
    password: String,
    #[server(default)] invitation: String,
    #[server(default)] setup_token: String,
) -> Result<UserView, AppError> {
    use crate::server::{auth, services::accounts, state::AppState};
    let state = AppState::from_context()?;
    let session = auth::server_fn_session().await?;
    let form = accounts::SignUp {
        email: &email,
        password: &password,
        invitation: Some(invitation.as_str()),
        setup_token: Some(setup_token.as_str()),
    };
    let user = accounts::sign_up(&state.db, state.access.signup, form).await?;
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
    let address = auth::server_fn_client_address(&state).await;
    let now = crate::server::db::now_ms();
    let user = accounts::log_in(&state.db, &email, &password, address, now).await?;
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

/// What the sign-up page needs: whether sign-up is open, and what an
/// invitation link in its address says (an error when the link is dead).
#[server(prefix = "/sfn", endpoint = "auth/signup-info")]
pub async fn signup_info(
    #[server(default)] invitation: String,
) -> Result<(SignupMode, Option<InvitationView>), AppError> {
    use crate::server::{services::invitations, state::AppState};
    let state = AppState::from_context()?;
    let view = match invitation.trim() {
        "" => None,
        secret => Some(invitations::view(&state.db, secret).await?),
    };
    Ok((state.access.signup, view))
}

/// A signed-in person accepts an invitation for their email and lands on
/// the project it opened.
#[server(prefix = "/sfn", endpoint = "auth/accept-invitation")]
pub async fn accept_invitation(invitation: String) -> Result<(), AppError> {
    let (state, user) = crate::server::auth::server_fn_user().await?;
    let project =
        crate::server::services::invitations::accept(&state.db, &user, &invitation).await?;
    leptos_axum::redirect(&match project {
        Some(id) => format!("/projects/{id}/settings"),
        None => "/projects".to_owned(),
    });
    Ok(())
}
