//! Authentication: argon2id password hashes, the server-side session that holds
//! the signed-in user, and the extractor that turns a request into that user.

use crate::error::AppError;
use crate::server::db::api_tokens::TokenRow;
use crate::server::db::users::{self, UserRecord};
use crate::server::error::{Error, Result};
use crate::server::services::{api_tokens, projects};
use crate::server::state::AppState;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use std::collections::HashMap;
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

/// Axum extractor for the workspace admin's JSON endpoints: 401 when signed
/// out, 403 for members.
pub struct AdminUser(pub UserRecord);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, state).await?;
        if user.role != crate::model::account::WorkspaceRole::Admin {
            return Err(AppError::Forbidden {
                message: "only workspace admins can do this".into(),
            }
            .into());
        }
        Ok(AdminUser(user))
    }
}

/// Who is calling a project's JSON API: a signed-in member (or workspace admin)
/// or a program with one of the project's API tokens.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A person, through the session cookie.
    User(UserRecord),
    /// A program, through `Authorization: Bearer cov_…`.
    Token(TokenRow),
}

impl Caller {
    /// The acting user's id (none for tokens).
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Caller::User(user) => Some(&user.user_id),
            Caller::Token(_) => None,
        }
    }

    /// Checks the caller may act on `project_id`: a member or workspace admin,
    /// or that project's token. Everyone else gets 404 (ids cannot be probed).
    pub async fn check_project(&self, state: &AppState, project_id: &str) -> Result<()> {
        match self {
            Caller::Token(token) if token.project_id != project_id => {
                Err(AppError::NotFound.into())
            }
            Caller::Token(_) => Ok(()),
            Caller::User(user) => projects::get(&state.db.pool, user, project_id)
                .await
                .map(|_| ()),
        }
    }
}

/// Extractor for `/api/projects/{id}/…`: resolves the caller and checks they may
/// act on that project. Strangers and other projects' tokens get 404; unknown
/// or revoked tokens 401.
pub struct ProjectCaller {
    /// The project in the path.
    pub project_id: String,
    /// Who is calling.
    pub caller: Caller,
}

fn bearer_token(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

impl FromRequestParts<AppState> for ProjectCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| {
                Error::App(AppError::BadRequest {
                    message: e.body_text(),
                })
            })?;
        let project_id = params
            .get("id")
            .cloned()
            .ok_or(Error::App(AppError::NotFound))?;
        let caller = caller(parts, state).await?;
        caller.check_project(state, &project_id).await?;
        Ok(ProjectCaller { project_id, caller })
    }
}

/// Extractor for endpoints any authenticated caller may use (session or token).
pub struct AnyCaller(pub Caller);

impl FromRequestParts<AppState> for AnyCaller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        caller(parts, state).await.map(AnyCaller)
    }
}

async fn caller(parts: &mut Parts, state: &AppState) -> Result<Caller> {
    if let Some(token) = bearer_token(parts) {
        return api_tokens::authenticate(&state.db, token)
            .await
            .map(Caller::Token);
    }
    let session = Session::from_request_parts(parts, state)
        .await
        .map_err(|(_, message)| Error::internal(message))?;
    require_user(state, &session).await.map(Caller::User)
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

/// Inside a server function: the signed-in user, checked against a project
/// (404 for strangers, as in the JSON API).
pub async fn server_fn_project_user(project_id: &str) -> Result<(AppState, UserRecord), AppError> {
    let (state, user) = server_fn_user().await?;
    projects::get(&state.db.pool, &user, project_id).await?;
    Ok((state, user))
}
