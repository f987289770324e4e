//! The conversation part of the JSON API: start, list and read conversations,
//! ask a question (the answer as JSON, or as server-sent events when the
//! request accepts `text/event-stream`), draw a picture in a GPT
//! conversation, and rate answers.

use crate::model::chat::{
    ChatAnswer, ChatEvent, ConversationDetail, ConversationSummary, ImageExchange, NewImage,
    NewMessage, Rating,
};
use crate::server::auth::needs::Chat;
use crate::server::auth::ProjectCaller;
use crate::server::error::Result;
use crate::server::rest::{ApiJson, PageQuery};
use crate::server::services::{chat, images};
use crate::server::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;

/// The conversation routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/projects/{id}/conversations",
            get(list_conversations).post(create_conversation),
        )
        .route(
            "/api/projects/{id}/conversations/{conversation_id}",
            get(get_conversation),
        )
        .route(
            "/api/projects/{id}/conversations/{conversation_id}/messages",
            post(send_message),
        )
        .route(
            "/api/projects/{id}/conversations/{conversation_id}/images",
            post(draw_image),
        )
        .route(
            "/api/projects/{id}/conversations/{conversation_id}/messages/{message_id}/rating",
            put(rate_answer),
        )
}

/// `GET …/conversations`: one page.
#[derive(Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationList {
    /// Most recently active first.
    conversations: Vec<ConversationSummary>,
    /// Pass as `cursor` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

async fn list_conversations(
    State(state): State<AppState>,
    access: ProjectCaller<Chat>,
    PageQuery(page): PageQuery,
) -> Result<Json<ConversationList>> {
    let (conversations, next_cursor) = chat::list(&state, &access.project_id, &page).await?;
    Ok(Json(ConversationList {
        conversations,
        next_cursor,
    }))
}

async fn create_conversation(
    State(state): State<AppState>,
    access: ProjectCaller<Chat>,
) -> Result<(StatusCode, Json<ConversationSummary>)> {
    let summary = chat::create(&state, &access.project_id, access.caller.user_id()).await?;
    Ok((StatusCode::CREATED, Json(summary)))
}

async fn get_conversation(
    State(state): State<AppState>,
    access: ProjectCaller<Chat>,
    Path((_, conversation_id)): Path<(String, String)>,
) -> Result<Json<ConversationDetail>> {
    Ok(Json(
        chat::get(&state, &access.project_id, &conversation_id).await?,
    ))
}

fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

/// One SSE frame: `event: <name>` and the event's fields as JSON `data:`.
fn sse_event(event: &ChatEvent) -> Event {
    let data = serde_json::to_value(event)
        .ok()
        .and_then(|mut v| v.get_mut("data").map(serde_json::Value::take))
        .unwrap_or_default();
    Event::default().event(event.name()).data(data.to_string())
}

async fn send_message(
    State(state): State<AppState>,
    access: ProjectCaller<Chat>,
    Path((_, conversation_id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiJson(message): ApiJson<NewMessage>,
) -> Result<Response> {
    if wants_event_stream(&headers) {
        let events =
            chat::answer_stream(&state, &access.project_id, &conversation_id, message).await?;
        let frames = receiver_stream(events).map(|event| Ok::<_, Infallible>(sse_event(&event)));
        return Ok(Sse::new(frames)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let answer: ChatAnswer =
        chat::answer(&state, &access.project_id, &conversation_id, message).await?;
    Ok(Json(answer).into_response())
}

async fn draw_image(
    State(state): State<AppState>,
    access: ProjectCaller<Chat>,
    Path((_, conversation_id)): Path<(String, String)>,
    ApiJson(asked): ApiJson<NewImage>,
) -> Result<(StatusCode, Json<ImageExchange>)> {
    let drawn =
        images::draw_in_conversation(&state, &access.project_id, &conversation_id, asked).await?;
    Ok((StatusCode::CREATED, Json(drawn)))
}

/// A receiver as a stream; dropping the stream (the client left) drops the
/// receiver, which stops the answer.
fn receiver_stream<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// Body of `PUT …/rating`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RatingBody {
    /// `up`, `down`, or null to clear.
    rating: Option<Rating>,
}

async fn rate_answer(
    State(state): State<AppState>,
    access: ProjectCaller<Chat>,
    Path((_, conversation_id, message_id)): Path<(String, String, String)>,
    ApiJson(body): ApiJson<RatingBody>,
) -> Result<StatusCode> {
    chat::rate(
        &state,
        &access.project_id,
        &conversation_id,
        &message_id,
        body.rating,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
