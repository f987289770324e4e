//! The JSON API for programs (`/api/...`): thin handlers that validate input, call
//! a service and answer JSON. Errors answer `{"error": {...}, "message", "field"}`
//! with the status named on each [`AppError`] variant.

use crate::error::AppError;
use crate::model::account::{ProjectView, UserView};
use crate::model::catalog::{ModelInfo, ProviderId, ProviderInfo};
use crate::server::auth::{self, CurrentUser};
use crate::server::db::now_ms;
use crate::server::error::{Error, Result};
use crate::server::services::{accounts, projects};
use crate::server::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

pub mod budgets;
pub mod chat;
pub mod costs;
pub mod openapi;
pub mod prices;
pub mod settings;

/// Every JSON route.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(settings::routes())
        .merge(chat::routes())
        .merge(costs::routes())
        .merge(budgets::routes())
        .merge(prices::routes())
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/auth/signup", post(sign_up))
        .route("/api/auth/login", post(log_in))
        .route("/api/auth/logout", post(log_out))
        .route("/api/auth/me", get(me))
        .route("/api/projects", get(list_projects).post(create_project))
        .route("/api/projects/{id}", get(get_project).patch(update_project))
        .route("/api/projects/{id}/members", post(add_member))
        .route("/api/llm/providers", get(list_providers))
        .route("/api/llm/providers/{id}/models", get(list_models))
}

/// A JSON body whose rejection is a 400 naming what is wrong (missing field,
/// wrong type), in the API's error shape rather than axum's plain text.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(AppError::BadRequest {
                message: rejection.body_text(),
            }
            .into()),
        }
    }
}

/// Credentials for sign-up and log-in.
#[derive(Deserialize)]
pub struct Credentials {
    email: String,
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

/// The projects list answer.
#[derive(Serialize)]
struct ProjectList {
    projects: Vec<ProjectView>,
}

async fn list_projects(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<ProjectList>> {
    let projects = projects::list(&state.db.pool, &user).await?;
    Ok(Json(ProjectList { projects }))
}

/// Body of `POST /api/projects`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewProject {
    name: String,
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
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProjectPatch {
    name: Option<String>,
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

/// Body of `POST /api/projects/:id/members`.
#[derive(Deserialize)]
struct NewMember {
    email: String,
}

async fn add_member(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewMember>,
) -> Result<StatusCode> {
    let added = projects::add_member(&state.db, &user, &id, &body.email).await?;
    Ok(if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    })
}

/// `GET /api/llm/providers`: every provider with its models.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProviderList<'a> {
    default_model: &'a str,
    providers: Vec<ProviderWithModels<'a>>,
}

/// A provider and its models.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProviderWithModels<'a> {
    #[serde(flatten)]
    provider: &'a ProviderInfo,
    /// Whether this server has a Cover-managed key for it (Llama: always).
    managed_key_available: bool,
    models: Vec<&'a ModelInfo>,
}

async fn list_providers(State(state): State<AppState>) -> Json<serde_json::Value> {
    let catalog = &state.catalog;
    let managed = state.managed_keys.available();
    let list = ProviderList {
        default_model: &catalog.default_model,
        providers: catalog
            .providers
            .iter()
            .map(|provider| ProviderWithModels {
                provider,
                managed_key_available: managed.contains(&provider.id),
                models: catalog.models_of(provider.id).collect(),
            })
            .collect(),
    };
    Json(serde_json::to_value(list).unwrap_or_default())
}

async fn list_models(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>> {
    let kind = ProviderId::parse(&id).ok_or_else(|| {
        Error::App(AppError::invalid(
            "id",
            format!("unknown provider `{id}`; use claude, openai, gemini or llama"),
        ))
    })?;
    let models: Vec<&ModelInfo> = state.catalog.models_of(kind).collect();
    Ok(Json(
        serde_json::json!({ "provider": kind, "models": models }),
    ))
}
