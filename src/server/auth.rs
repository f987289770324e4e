//! Authentication: argon2id password hashes, the server-side session that holds
//! the signed-in user, and the extractor that turns a request into that user.

use crate::error::AppError;
use crate::server::db::users::{self, UserRecord};
use crate::server::error::{Error, Result};
use crate::server::state::AppState;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::sync::OnceLock;
use tower_sessions::Session;

/// The session key holding the signed-in user's id.
const USER_ID_KEY: &str = "user_id";

/// Hashes a password with argon2id (default parameters), off the async runtime.
pub async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(Error::internal)
    })
    .await
    .map_err(Error::internal)?
}

/// Checks a password against a stored hash, off the async runtime. An unknown
/// account is checked against a fixed dummy hash, so both cost the same time.
pub async fn verify_password(password: String, stored: Option<String>) -> Result<bool> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let parsed = PasswordHash::new(&hash).map_err(Error::internal)?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(known && matches)
    })
    .await
    .map_err(Error::internal)?
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"not a real password", &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

/// Marks the session as signed in as `user`, with a fresh session id (so a
/// session id planted before login is worthless afterwards).
pub async fn sign_in(session: &Session, user: &UserRecord) -> Result<()> {
    session.cycle_id().await.map_err(Error::internal)?;
    session
        .insert(USER_ID_KEY, &user.user_id)
        .await
        .map_err(Error::internal)
}

/// Ends the session (deletes it from the store and clears the cookie).
pub async fn sign_out(session: &Session) -> Result<()> {
    session.flush().await.map_err(Error::internal)
}

/// The signed-in user, if the session names one that still exists.
pub async fn session_user(state: &AppState, session: &Session) -> Result<Option<UserRecord>> {
    let user_id: Option<String> = session.get(USER_ID_KEY).await.map_err(Error::internal)?;
    match user_id {
        Some(id) => users::find_by_id(&state.db.pool, &id).await,
        None => Ok(None),
    }
}

/// The signed-in user or 401.
pub async fn require_user(state: &AppState, session: &Session) -> Result<UserRecord> {
    session_user(state, session).await?.ok_or_else(|| {
        Error::App(AppError::Unauthenticated {
            message: "please log in".into(),
        })
    })
}

/// Axum extractor for JSON handlers that need a signed-in user.
pub struct CurrentUser(pub UserRecord);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, message)| Error::internal(message))?;
        require_user(state, &session).await.map(CurrentUser)
    }
}

/// The session and user inside a server function.
pub async fn server_fn_user() -> Result<(AppState, UserRecord), AppError> {
    let state = AppState::from_context()?;
    let session = server_fn_session().await?;
    let user = require_user(&state, &session).await?;
    Ok((state, user))
}

/// The session inside a server function.
pub async fn server_fn_session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>().await.map_err(|e| {
        tracing::error!(error = %e, "session layer missing");
        AppError::Internal
    })
}
