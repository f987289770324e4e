//! `GET /metrics`: the Prometheus exposition (`server::metrics`) for the
//! operator's monitoring: 404 without a configured `COVER_METRICS_TOKEN`,
//! 401 (with `WWW-Authenticate: Bearer`) without that token as the bearer.

use crate::error::AppError;
use crate::server::error::Error;
use crate::server::metrics::{Live, CONTENT_TYPE};
use crate::server::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// The `/metrics` route.
pub fn routes() -> Router<AppState> {
    Router::new().route("/metrics", axum::routing::get(exposition))
}

async fn exposition(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match state.metrics.admits(presented) {
        None => Error::App(AppError::NotFound).into_response(),
        Some(false) => {
            let mut refused = Error::App(AppError::Unauthenticated {
                message: "send the operator's metrics token (COVER_METRICS_TOKEN) as `Authorization: Bearer`".into(),
            })
            .into_response();
            refused
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            refused
        }
        Some(true) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, CONTENT_TYPE)],
            state.metrics.encode(&Live {
                ledger_queue_depth: state.ledger.queued(),
                answers_in_flight: state.answer_slots.in_flight(),
                circuits: state.router.circuits_not_closed(),
            }),
        )
            .into_response(),
    }
}
