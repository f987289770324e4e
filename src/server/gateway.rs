//! The gateway for programs: SDK-compatible endpoints that reach every
//! provider through a project's routing, keys, budget and ledger
//! (`services::completions`), so a program written for OpenAI's SDK can
//! point its base URL at Cover (`…/v1`) and reach Claude, Gemini or Llama.
//!
//! Callers authenticate with one of the project's API tokens carrying the
//! `chat` scope (`Authorization: Bearer cov_…`); the token names the project.
//! Errors come in the format's own shape (one error type per format), with
//! `x-should-retry: false` wherever Cover already retried or retrying cannot
//! help, so SDKs do not retry on top of Cover's own retries and fallbacks.
//!
//! Each format (`openai`, `anthropic`) reads its requests into a
//! [`CompletionRequest`] and writes answers, stream events and errors; the
//! flow between (whole or streamed, headers, the first-token rule) is here.

pub mod anthropic;
pub mod embeddings;
pub mod images;
pub mod openai;

use crate::error::AppError;
use crate::model::access::Scope;
use crate::model::money::format_decimal;
use crate::server::db::api_tokens::TokenRow;
use crate::server::error::{Error, Result};
use crate::server::services::api_tokens;
use crate::server::services::completions::{
    self, Answerer, Completion, CompletionError, CompletionEvent, CompletionFailure,
    CompletionRequest, FallbackUsed,
};
use crate::server::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use futures::StreamExt;
use serde_json::Value;
use std::convert::Infallible;
use std::marker::PhantomData;
use std::time::{SystemTime, UNIX_EPOCH};

/// The gateway's routes.
pub fn routes() -> Router<AppState> {
    openai::routes()
        .merge(anthropic::routes())
        .route("/v1/embeddings", axum::routing::post(embeddings::create))
        .route(
            "/v1/images/generations",
            axum::routing::post(images::create),
        )
}

/// Where a token comes from: OpenAI's SDKs send `Authorization: Bearer`,
/// Anthropic's `x-api-key`.
fn presented_token(parts: &Parts) -> Option<&str> {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| header("x-api-key"))
        .map(str::trim)
}

/// The project a gateway call acts for: the live token's, checked for the
/// `chat` scope (401 without a live token, 403 without the scope). Sessions
/// do not reach the gateway: it is for programs.
pub async fn token_project(state: &AppState, parts: &Parts) -> Result<TokenRow> {
    let Some(token) = presented_token(parts) else {
        return Err(Error::App(AppError::Unauthenticated {
            message: "send a project API token (cov_…) as `Authorization: Bearer`".into(),
        }));
    };
    let token = api_tokens::authenticate(state, token).await?;
    if !token.scopes.contains(&Scope::Chat) {
        return Err(Error::App(AppError::Forbidden {
            message: "this API token lacks the `chat` scope".into(),
        }));
    }
    Ok(token)
}

/// The calling program's project (from its token), refused in the format
/// `E` of the route that asked.
pub struct Program<E> {
    /// The token's project.
    pub project_id: String,
    format: PhantomData<fn() -> E>,
}

impl<E: From<Error> + IntoResponse> FromRequestParts<AppState> for Program<E> {
    type Rejection = E;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, E> {
        let token = token_project(state, parts).await?;
        Ok(Program {
            project_id: token.project_id,
            format: PhantomData,
        })
    }
}

/// A format's error, as the shared flow needs it.
pub trait FormatError: From<Error> + IntoResponse {
    /// Every model failed, after Cover's retries and fallbacks.
    fn from_failure(failure: &CompletionFailure) -> Self;
}

/// The format's error for a completion that gave no answer.
fn format_error<E: FormatError>(error: CompletionError) -> E {
    match error {
        CompletionError::App(error) => error.into(),
        CompletionError::Failed(failure) => E::from_failure(&failure),
    }
}

/// An error response in any format: its status and JSON body, with
/// `x-should-retry` (so SDKs do not retry on top of Cover's own retries
/// unless retrying can help) and `Retry-After` when there is a wait to advise.
pub fn error_response(
    status: StatusCode,
    body: Value,
    should_retry: bool,
    retry_after_secs: Option<u64>,
) -> Response {
    let mut response = (status, Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "x-should-retry",
        HeaderValue::from_static(if should_retry { "true" } else { "false" }),
    );
    if let Some(secs) = retry_after_secs {
        headers.insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Writes one format's stream: its opening events, then what each
/// completion event becomes (its last event included: the end marker, or
/// the error a broken stream ends with).
pub trait StreamWriter: Send + 'static {
    /// What opens the stream, before the first delta.
    fn opening(&mut self) -> Vec<Event>;
    /// The events `event` becomes.
    fn frames(&mut self, event: CompletionEvent) -> Vec<Event>;
}

/// A whole answer in a format: `body` writes it; the headers say who
/// answered, whether it was a fallback, what it cost and Cover's overhead.
pub async fn whole<E: FormatError>(
    state: &AppState,
    project_id: &str,
    request: CompletionRequest,
    body: fn(&Completion) -> Value,
) -> std::result::Result<Response, E> {
    let completion = completions::complete(state, project_id, request)
        .await
        .map_err(format_error::<E>)?;
    let mut response = Json(body(&completion)).into_response();
    let headers = response.headers_mut();
    answerer_headers(headers, &completion.answerer, completion.fallback.as_ref());
    let cost = completion
        .cost_nanos
        .map_or_else(|| "unknown".to_owned(), format_decimal);
    put_header(headers, "x-cover-cost-usd", &cost);
    let overhead = format!("{:.3}", completion.overhead.as_secs_f64() * 1000.0);
    put_header(headers, "x-cover-overhead-ms", &overhead);
    Ok(response)
}

/// A streamed answer in a format. The response (its headers naming who
/// answers) starts with the first token, so a failure before it is a plain
/// error response and the fallback chain is invisible; a failure after it is
/// the stream's last event.
pub async fn streamed<E, W>(
    state: &AppState,
    project_id: &str,
    request: CompletionRequest,
    writer: impl FnOnce(&str, &str) -> W,
) -> std::result::Result<Response, E>
where
    E: FormatError,
    W: StreamWriter,
{
    let mut events = completions::complete_stream(state, project_id, request).await?;
    let (answerer, fallback, early) = match events.recv().await {
        Some(CompletionEvent::Started {
            answerer,
            fallback,
            request_id,
        }) => (answerer, fallback, (request_id, Vec::new())),
        Some(CompletionEvent::Failed(failed)) => return Err(E::from_failure(&failed)),
        // An answer that streamed nothing (no text, no tool call): sent as
        // the stream it would have been.
        Some(CompletionEvent::Finished(completion)) => {
            let answerer = completion.answerer.clone();
            let fallback = completion.fallback.clone();
            let request_id = completion.request_id.clone();
            (answerer, fallback, (request_id, replay(*completion)))
        }
        Some(_) | None => {
            return Err(Error::internal("a completion stream ended before it started").into())
        }
    };
    let (request_id, replayed) = early;
    let mut writer = writer(&request_id, &answerer.model);
    let opening = writer.opening();
    let rest = futures::stream::iter(replayed)
        .chain(futures::stream::poll_fn(move |cx| events.poll_recv(cx)))
        .flat_map(move |event| futures::stream::iter(writer.frames(event)));
    let frames = futures::stream::iter(opening)
        .chain(rest)
        .map(Ok::<_, Infallible>);
    let mut response = Sse::new(frames)
        .keep_alive(KeepAlive::default())
        .into_response();
    answerer_headers(response.headers_mut(), &answerer, fallback.as_ref());
    Ok(response)
}

/// A finished completion as the events a stream of it would have carried.
fn replay(completion: Completion) -> Vec<CompletionEvent> {
    let mut events = Vec::new();
    let text = completion.response.text();
    if !text.is_empty() {
        events.push(CompletionEvent::TextDelta(text));
    }
    for (index, call) in completion.response.tool_calls.iter().enumerate() {
        events.push(CompletionEvent::ToolCallDelta {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            id: Some(call.id.clone()),
            name: Some(call.name.clone()),
            arguments: call.arguments.to_string(),
        });
    }
    events.push(CompletionEvent::Finished(Box::new(completion)));
    events
}

/// The headers of a single call's answer (embeddings, pictures): who served
/// it, what it cost (`unknown` without a price) and Cover's own time, all of
/// the request's time but what the provider took.
pub fn single_call_headers(
    headers: &mut HeaderMap,
    provider: crate::model::catalog::ProviderId,
    model: &str,
    cost_nanos: Option<i64>,
    overhead: std::time::Duration,
) {
    put_header(headers, "x-cover-provider", provider.as_str());
    put_header(headers, "x-cover-model", model);
    let cost = cost_nanos.map_or_else(|| "unknown".to_owned(), format_decimal);
    put_header(headers, "x-cover-cost-usd", &cost);
    let overhead = format!("{:.3}", overhead.as_secs_f64() * 1000.0);
    put_header(headers, "x-cover-overhead-ms", &overhead);
}

fn put_header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// The headers naming who answered, and whether it was a fallback (`none`,
/// or the model asked for and why another answered).
fn answerer_headers(headers: &mut HeaderMap, answerer: &Answerer, fallback: Option<&FallbackUsed>) {
    put_header(headers, "x-cover-provider", answerer.provider.as_str());
    put_header(headers, "x-cover-model", &answerer.model);
    let fallback = fallback.map_or_else(
        || "none".to_owned(),
        |f| format!("from={}; reason={}", f.from, f.reason),
    );
    put_header(headers, "x-cover-fallback", &fallback);
}

/// Seconds since the epoch, for the formats' `created` fields.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
