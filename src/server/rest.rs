//! The JSON API for programs (`/api/...`): thin handlers that validate input, call
//! a service and answer JSON. Errors answer `{"error": {...}, "message", "field"}`
//! with the status named on each [`AppError`] variant.

use crate::error::AppError;
use crate::server::db::paging::Page;
use crate::server::error::{Error, Result};
use crate::server::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::routing::get;
use axum::{Json, Router};

pub mod auth;
pub mod budgets;
pub mod catalog;
pub mod chat;
pub mod costs;
pub mod experiments;
pub mod knowledge;
pub mod metrics;
pub mod openapi;
pub mod prices;
pub mod projects;
pub mod settings;

/// Every JSON route.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(auth::routes())
        .merge(projects::routes())
        .merge(catalog::routes())
        .merge(settings::routes())
        .merge(chat::routes())
        .merge(costs::routes())
        .merge(budgets::routes())
        .merge(knowledge::routes())
        .merge(experiments::routes())
        .merge(metrics::routes())
        .merge(prices::routes())
        .route("/api/openapi.json", get(openapi::document))
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
            Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(crate::server::protections::too_large().into())
            }
            Err(rejection) => Err(AppError::BadRequest {
                message: rejection.body_text(),
            }
            .into()),
        }
    }
}

/// The page a list route's query asks for (`limit` 1–100, default 50;
/// `cursor`, a `nextCursor` of the previous page), each value checked with a
/// 422 naming it.
pub struct PageQuery(pub Page);

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        #[derive(serde::Deserialize)]
        struct Raw {
            limit: Option<String>,
            cursor: Option<String>,
        }
        let Query(raw) =
            Query::<Raw>::try_from_uri(&parts.uri).map_err(|rejection| AppError::BadRequest {
                message: rejection.body_text(),
            })?;
        Ok(PageQuery(Page::parse(
            raw.limit.as_deref(),
            raw.cursor.as_deref(),
        )?))
    }
}
