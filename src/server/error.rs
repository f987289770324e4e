//! The server-side error: keeps internal causes for the logs and turns into the
//! user-safe [`AppError`] (and an HTTP response) at the edge.
//!
//! Policy: services and repositories return [`Error`]; `?` converts sqlx errors.
//! Handlers answer with `Error`'s `IntoResponse`; server functions convert it to
//! `AppError`. Causes are logged once, where the conversion happens, never shown.

use crate::error::AppError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A failure inside the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something the caller can see and act on.
    #[error(transparent)]
    App(#[from] AppError),
    /// The database failed; 503 when unreachable, 500 otherwise.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed at start-up.
    #[error("migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Anything else that is our fault; the text is logged, never shown.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// An internal error with a cause for the log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Error::Internal(cause.to_string())
    }
}

impl From<Error> for AppError {
    fn from(error: Error) -> Self {
        match error {
            Error::App(app) => app,
            Error::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
            ) => {
                tracing::error!(%error, "database unavailable");
                AppError::Unavailable
            }
            other => {
                tracing::error!(error = %other, "internal error");
                AppError::Internal
            }
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        AppError::from(self).into_response()
    }
}

/// The body of every JSON API error: the error itself (its `code` and
/// fields), its message, and the field it is about, if any.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// The error, tagged by `code`.
    pub error: AppError,
    /// What happened and what to do, in words.
    pub message: String,
    /// The field it is about (camelCase JSON path), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after();
        let body = ErrorBody {
            message: self.to_string(),
            field: self.field().map(str::to_owned),
            error: self,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// Shorthand for server results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
