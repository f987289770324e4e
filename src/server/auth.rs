//! Authentication: argon2id password hashes, the server-side session that holds
//! the signed-in user, and the extractor that turns a request into that user.

use crate::error::AppError;
use crate::model::access::Scope;
use crate::model::account::{ProjectView, WorkspaceRole};
use crate::server::db::api_tokens::TokenRow;
use crate::server::db::users::{self, UserRecord};
use crate::server::error::{Error, Result};
use crate::server::services::{api_tokens, projects};
use crate::server::state::AppState;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use std::collections::HashMap;
use std::marker::PhantomData;
use tower_sessions::Session;

mod passwords;
pub use passwords::{hash_password, verify_password, PASSWORD_QUEUE_LIMIT};

/// The session key holding the signed-in user's id.
const USER_ID_KEY: &str = "user_id";

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
        if user.role != WorkspaceRole::Admin {
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

    /// Who the caller is, for per-caller rate limits.
    pub fn limit_key(&self) -> String {
        match self {
            Caller::User(user) => format!("user:{}", user.user_id),
            Caller::Token(token) => format!("token:{}", token.api_token_id),
        }
    }

    /// Checks the caller may act on `project_id` with `scope`. Strangers and
    /// other projects' tokens get 404 (ids cannot be probed); a member without
    /// the right (see [`crate::model::account::ProjectRole::grants`]) or a token without the scope 403.
    pub async fn check_project(
        &self,
        state: &AppState,
        project_id: &str,
        scope: Scope,
    ) -> Result<()> {
        match self {
            Caller::Token(token) if token.project_id != project_id => {
                Err(AppError::NotFound.into())
            }
            Caller::Token(token) if !token.scopes.contains(&scope) => Err(AppError::Forbidden {
                message: format!("this API token lacks the `{scope}` scope"),
            }
            .into()),
            Caller::Token(_) => Ok(()),
            Caller::User(user) => check_role(&state.db.pool, user, project_id, scope)
                .await
                .map(|_| ()),
        }
    }

    /// Checks the caller may change some project's settings: a workspace
    /// admin, an owner of at least one project, or a `manage` token. What
    /// reaches out to a server the caller names (a key check) needs it.
    pub async fn check_manages_some_project(&self, state: &AppState) -> Result<()> {
        let allowed = match self {
            Caller::Token(token) => token.scopes.contains(&Scope::Manage),
            Caller::User(user) => {
                user.role == WorkspaceRole::Admin
                    || projects::owns_any(&state.db.pool, &user.user_id).await?
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(AppError::Forbidden {
                message: "only project owners (or a token with the `manage` scope) can check keys"
                    .into(),
            }
            .into())
        }
    }
}

/// A user's view of a project, checked against `scope`: 404 for strangers,
/// 403 when their role does not grant it.
pub async fn check_role(
    pool: &sqlx::AnyPool,
    user: &UserRecord,
    project_id: &str,
    scope: Scope,
) -> Result<ProjectView> {
    let project = projects::get(pool, user, project_id).await?;
    if project.role.grants(scope) {
        Ok(project)
    } else {
        Err(AppError::Forbidden {
            message: "only the project's owners can change this; members may chat and read".into(),
        }
        .into())
    }
}

/// The scope a route needs, as a type, so the route's extractor says it:
/// `ProjectCaller<needs::Manage>`.
pub mod needs {
    use crate::model::access::Scope;

    /// A scope named by a marker type.
    pub trait Needs: Send + Sync + 'static {
        /// The scope the route needs.
        const SCOPE: Scope;
    }

    /// The route needs [`Scope::Chat`].
    pub struct Chat;
    /// The route needs [`Scope::Read`].
    pub struct Read;
    /// The route needs [`Scope::Manage`].
    pub struct Manage;

    impl Needs for Chat {
        const SCOPE: Scope = Scope::Chat;
    }
    impl Needs for Read {
        const SCOPE: Scope = Scope::Read;
    }
    impl Needs for Manage {
        const SCOPE: Scope = Scope::Manage;
    }
}

/// Extractor for `/api/projects/{id}/…`: resolves the caller and checks they may
/// act on that project with the route's scope `N`. Strangers and other
/// projects' tokens get 404; unknown or revoked tokens 401; a member or token
/// without the scope 403.
pub struct ProjectCaller<N: needs::Needs> {
    /// The project in the path.
    pub project_id: String,
    /// Who is calling.
    pub caller: Caller,
    scope: PhantomData<N>,
}

fn bearer_token(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

impl<N: needs::Needs> FromRequestParts<AppState> for ProjectCaller<N> {
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
        caller.check_project(state, &project_id, N::SCOPE).await?;
        Ok(ProjectCaller {
            project_id,
            caller,
            scope: PhantomData,
        })
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
        return api_tokens::authenticate(state, token)
            .await
            .map(Caller::Token);
    }
    let session = Session::from_request_parts(parts, state)
        .await
        .map_err(|(_, message)| Error::internal(message))?;
    require_user(state, &session).await.map(Caller::User)
}

/// The client's address, for the login throttles: the connection's peer, or
/// with `COVER_TRUST_PROXY` the last `X-Forwarded-For` entry (the one the
/// trusted proxy wrote; earlier entries are the client's own claims).
pub fn client_address(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    peer: Option<std::net::SocketAddr>,
) -> Option<std::net::IpAddr> {
    if state.access.trust_proxy {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.rsplit(',').next())
            .and_then(|entry| entry.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    peer.map(|peer| peer.ip())
}

/// Extractor for the client's address (see [`client_address`]).
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0);
        Ok(ClientAddress(client_address(state, &parts.headers, peer)))
    }
}

/// The client's address inside a server function.
pub async fn server_fn_client_address(state: &AppState) -> Option<std::net::IpAddr> {
    let headers = leptos_axum::extract::<axum::http::HeaderMap>().await.ok()?;
    let peer = leptos_axum::extract::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .await
        .ok()
        .map(|info| info.0);
    client_address(state, &headers, peer)
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
/// and the scope the function needs (404 for strangers, 403 without the
/// right, as in the JSON API).
pub async fn server_fn_project_user(
    project_id: &str,
    scope: Scope,
) -> Result<(AppState, UserRecord), AppError> {
    let (state, user) = server_fn_user().await?;
    check_role(&state.db.pool, &user, project_id, scope).await?;
    Ok((state, user))
}
