//! The user-safe error shared by the browser, server functions and the JSON API.
//! It carries what a person or program can act on (which field, what to do) and
//! never an internal cause: those stay in the server's logs (`server::error`).

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// Every failure a caller can see. Each variant's doc names its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum AppError {
    /// 422: a value is invalid; `field` names it (camelCase, as in the JSON).
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// 422: several values are invalid; each names its field and what is allowed.
    #[error("{}", summarise(errors))]
    InvalidFields {
        /// Every invalid field, in the order checked.
        errors: Vec<FieldError>,
    },
    /// 400: the request itself is malformed (not JSON, wrong shape).
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
    },
    /// 401: not signed in, or wrong credentials.
    #[error("{message}")]
    Unauthenticated {
        /// What to do.
        message: String,
    },
    /// 402: the project's monthly budget cannot pay for the answer, even from
    /// its cheapest model with a shorter answer; nothing was sent or stored.
    #[error("{message}")]
    BudgetExceeded {
        /// What is spent, what the limit is and what to do.
        message: String,
    },
    /// 403: signed in but not allowed (e.g. an admin-only page).
    #[error("{message}")]
    Forbidden {
        /// Why.
        message: String,
    },
    /// 404: does not exist, or belongs to someone else.
    #[error("not found")]
    NotFound,
    /// 409: conflicts with what is stored (e.g. the email is taken).
    #[error("{field}: {message}")]
    Conflict {
        /// The conflicting field.
        field: String,
        /// What conflicts.
        message: String,
    },
    /// 413: the body is larger than this route takes.
    #[error("{message}")]
    TooLarge {
        /// The limit, in words.
        message: String,
    },
    /// 429: slow down; try again after `retry_after_secs`.
    #[error("{message}")]
    TooManyRequests {
        /// What happened.
        message: String,
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// 502: every provider the request could go to failed; `class` is the
    /// failure class (`rateLimited`, `auth`, `transient`, …). The failed answer
    /// is stored in the conversation as `message_id`.
    #[error("{message}")]
    #[serde(rename_all = "camelCase")]
    ProviderFailed {
        /// The failure class.
        class: String,
        /// What happened, in words.
        message: String,
        /// The stored (failed) answer.
        message_id: String,
    },
    /// 503: this server is answering as many questions as it may at once and
    /// this one waited its turn too long; nothing was stored or sent. Try
    /// again after `retry_after_secs`.
    #[error("{message}")]
    Busy {
        /// What happened.
        message: String,
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// 503: a dependency (the database) is unavailable.
    #[error("the service is temporarily unavailable; please retry")]
    Unavailable,
    /// 500: our fault; details are in the server log.
    #[error("something went wrong on our side; it has been logged")]
    Internal,
    /// The browser could not reach the server or read its answer.
    #[error("could not reach the server: {message}")]
    Transport {
        /// The transport's description.
        message: String,
    },
}

/// One invalid field of a form or JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct FieldError {
    /// The field (camelCase JSON path, e.g. `parameters.temperature`).
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

fn summarise(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl AppError {
    /// A 422 for one field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        AppError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Invalid { .. } | AppError::InvalidFields { .. } => 422,
            AppError::BadRequest { .. } => 400,
            AppError::Unauthenticated { .. } => 401,
            AppError::BudgetExceeded { .. } => 402,
            AppError::Forbidden { .. } => 403,
            AppError::NotFound => 404,
            AppError::Conflict { .. } => 409,
            AppError::TooLarge { .. } => 413,
            AppError::TooManyRequests { .. } => 429,
            AppError::ProviderFailed { .. } => 502,
            AppError::Busy { .. } | AppError::Unavailable => 503,
            AppError::Internal => 500,
            AppError::Transport { .. } => 502,
        }
    }

    /// Seconds the caller should wait before trying again (`Retry-After`), for
    /// the errors that pass with time.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AppError::TooManyRequests {
                retry_after_secs, ..
            }
            | AppError::Busy {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            AppError::Unavailable => Some(1),
            _ => None,
        }
    }

    /// Every invalid field with its message (for forms that show them in place).
    pub fn field_errors(&self) -> Vec<FieldError> {
        match self {
            AppError::InvalidFields { errors } => errors.clone(),
            AppError::Invalid { field, message } => vec![FieldError {
                field: field.clone(),
                message: message.clone(),
            }],
            _ => Vec::new(),
        }
    }

    /// The field this error is about, if any, so forms can show it in place.
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::Invalid { field, .. } | AppError::Conflict { field, .. } => Some(field),
            AppError::InvalidFields { errors } => errors.first().map(|e| e.field.as_str()),
            _ => None,
        }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(message) | ServerFnErrorErr::MissingArg(message) => {
                AppError::BadRequest { message }
            }
            // On the server this only ever means the request body could not be
            // read (not UTF-8, cut off): the caller's mistake, not a transport
            // failure. In the browser it stays a transport error (an unreadable answer).
            ServerFnErrorErr::Deserialization(message) if cfg!(feature = "ssr") => {
                AppError::BadRequest {
                    message: format!("the request body could not be read: {message}"),
                }
            }
            other => AppError::Transport {
                message: other.to_string(),
            },
        }
    }
}
