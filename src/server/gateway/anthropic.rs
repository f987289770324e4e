//! Anthropic's Messages format (`POST /v1/messages`, and `GET /v1/models`
//! when the request carries `anthropic-version`): the official Anthropic SDK
//! pointed at Cover reaches Claude, and GPT, Gemini or Llama too, through
//! the same routing, budget and ledger as every other path.
//!
//! Errors are `{"type": "error", "error": {"type", "message"}}` (the message
//! names the field), a stream's failure after its first token is an `error`
//! event. The usage object carries `cost_usd`, the exact cost as a decimal
//! string (`null` when a price is unknown); the `x-cover-*` headers are the
//! OpenAI format's.

use super::{FormatError, Program, StreamWriter};
use crate::error::AppError;
use crate::model::catalog::ModelInfo;
use crate::model::chat::{IMAGE_MEDIA_TYPES, MAX_IMAGE_BYTES};
use crate::model::money::format_decimal;
use crate::server::error::Error;
use crate::server::llm::{
    ContentPart, ErrorKind, FinishReason, Message, ResponseFormat, Role, ToolCall, ToolChoice,
    ToolDefinition, Usage,
};
use crate::server::services::completions::{
    Completion, CompletionEvent, CompletionFailure, CompletionRequest, Overrides,
};
use crate::server::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use schemars::{json_schema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

/// The Anthropic-format routes (`/v1/models` is shared, see [`models_body`]).
pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/messages", post(messages))
}

/// An error as Anthropic's API writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct AnthropicError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    retry_after_secs: Option<u64>,
    should_retry: bool,
}

impl AnthropicError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        AnthropicError {
            status,
            kind,
            message: message.into(),
            retry_after_secs: None,
            should_retry: false,
        }
    }

    /// A 400 about `field` (its name leads the message, as Anthropic's do).
    fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        AnthropicError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("{field}: {message}"),
        )
    }

    fn body(&self) -> Value {
        json!({"type": "error", "error": {"type": self.kind, "message": self.message}})
    }
}

/// Anthropic's own status for "overloaded".
fn overloaded_status() -> StatusCode {
    StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

/// Cover's camelCase parameter names as this format spells them.
fn wire_field(field: &str) -> &str {
    match field {
        "maxTokens" => "max_tokens",
        "topP" => "top_p",
        "topK" => "top_k",
        "stop" => "stop_sequences",
        other => other,
    }
}

impl FormatError for AnthropicError {
    /// Every model failed (Cover already retried and fell back: no retry).
    fn from_failure(failure: &CompletionFailure) -> Self {
        let error = &failure.error;
        let (status, kind) = match error.kind {
            ErrorKind::RateLimited { .. } | ErrorKind::QuotaExhausted => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error")
            }
            ErrorKind::Overloaded { .. } => (overloaded_status(), "overloaded_error"),
            ErrorKind::ContextTooLong
            | ErrorKind::ContentFiltered
            | ErrorKind::InvalidRequest
            | ErrorKind::InvalidParameter { .. } => {
                (StatusCode::BAD_REQUEST, "invalid_request_error")
            }
            ErrorKind::Auth | ErrorKind::Transient | ErrorKind::Cancelled => {
                (StatusCode::BAD_GATEWAY, "api_error")
            }
        };
        AnthropicError::new(status, kind, error.to_string())
    }
}

impl From<Error> for AnthropicError {
    fn from(error: Error) -> Self {
        let error = AppError::from(error);
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = error.to_string();
        let mut mapped = match &error {
            AppError::Invalid { field, message } => {
                AnthropicError::invalid(wire_field(field), message)
            }
            AppError::InvalidFields { errors } => match errors.first() {
                Some(first) => AnthropicError::invalid(wire_field(&first.field), &first.message),
                None => {
                    AnthropicError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
                }
            },
            AppError::BadRequest { .. } | AppError::Conflict { .. } => {
                AnthropicError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
            }
            AppError::TooLarge { .. } => AnthropicError::new(status, "request_too_large", message),
            AppError::Unauthenticated { .. } => {
                AnthropicError::new(status, "authentication_error", message)
            }
            AppError::Forbidden { .. } => AnthropicError::new(status, "permission_error", message),
            AppError::NotFound => AnthropicError::new(status, "not_found_error", message),
            AppError::BudgetExceeded { .. } => {
                AnthropicError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", message)
            }
            AppError::TooManyRequests { .. } | AppError::Busy { .. } | AppError::Unavailable => {
                AnthropicError {
                    should_retry: true,
                    ..AnthropicError::new(status, "overloaded_error", message)
                }
            }
            AppError::ProviderFailed { .. } | AppError::Internal | AppError::Transport { .. } => {
                AnthropicError::new(status, "api_error", message)
            }
        };
        mapped.retry_after_secs = error.retry_after();
        mapped
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        super::error_response(
            self.status,
            self.body(),
            self.should_retry,
            self.retry_after_secs,
        )
    }
}

/// `GET /v1/models` in this format.
pub fn models_body(models: &[ModelInfo]) -> Value {
    let data: Vec<Value> = models
        .iter()
        .map(|m| json!({"type": "model", "id": m.id, "display_name": m.name}))
        .collect();
    json!({
        "data": data,
        "has_more": false,
        "first_id": models.first().map(|m| &m.id),
        "last_id": models.last().map(|m| &m.id),
    })
}

/// `POST /v1/messages`.
async fn messages(
    State(state): State<AppState>,
    program: Program<AnthropicError>,
    body: Bytes,
) -> Result<Response, AnthropicError> {
    let body: Value = serde_json::from_slice(&body).map_err(|error| {
        AnthropicError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("the body is not valid JSON: {error}"),
        )
    })?;
    let (request, stream) = read_request(&body)?;
    if stream {
        return super::streamed(&state, &program.project_id, request, BlockWriter::new).await;
    }
    super::whole(&state, &program.project_id, request, message_body).await
}

fn message_id(request_id: &str) -> String {
    format!("msg_{request_id}")
}

fn stop_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
        FinishReason::Stop | FinishReason::Other => "end_turn",
    }
}

/// Anthropic's usage object: `input_tokens` leaves the cached tokens out.
fn usage_body(usage: &Usage, cost_nanos: Option<i64>) -> Value {
    json!({
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
        "cost_usd": cost_nanos.map(format_decimal),
    })
}

/// A whole answer as a `message`.
fn message_body(completion: &Completion) -> Value {
    let response = &completion.response;
    let mut content = Vec::new();
    let text = response.text();
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in &response.tool_calls {
        content.push(
            json!({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}),
        );
    }
    json!({
        "id": message_id(&completion.request_id),
        "type": "message",
        "role": "assistant",
        "model": completion.answerer.model,
        "content": content,
        "stop_reason": stop_reason(response.finish_reason),
        "stop_sequence": null,
        "usage": usage_body(&response.usage, completion.cost_nanos),
    })
}

/// The block a stream has open.
#[derive(Debug, Clone, Copy, PartialEq)]
enum OpenBlock {
    Text,
    /// A tool call (the router's call index).
    Tool(u32),
}

/// Writes one stream's events: `message_start`, content blocks (text and
/// `tool_use`, each started, filled by deltas and stopped), `message_delta`
/// with the stop reason and usage, `message_stop`.
struct BlockWriter {
    id: String,
    model: String,
    /// The block being written and its index.
    open: Option<(OpenBlock, usize)>,
    next_index: usize,
    ended: bool,
}

impl BlockWriter {
    fn new(request_id: &str, model: &str) -> Self {
        BlockWriter {
            id: message_id(request_id),
            model: model.to_owned(),
            open: None,
            next_index: 0,
            ended: false,
        }
    }

    fn event(name: &'static str, data: &Value) -> Event {
        Event::default().event(name).data(data.to_string())
    }

    fn close(&mut self, frames: &mut Vec<Event>) {
        if let Some((_, index)) = self.open.take() {
            frames.push(Self::event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    /// Opens `block` (closing the open one) unless it is the open one.
    fn open(&mut self, block: OpenBlock, start: Value, frames: &mut Vec<Event>) -> usize {
        if let Some((open, index)) = self.open {
            if open == block {
                return index;
            }
        }
        self.close(frames);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((block, index));
        frames.push(Self::event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        index
    }
}

impl StreamWriter for BlockWriter {
    fn opening(&mut self) -> Vec<Event> {
        let start = json!({"type": "message_start", "message": {
            "id": self.id, "type": "message", "role": "assistant", "content": [],
            "model": self.model, "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }});
        vec![
            Self::event("message_start", &start),
            Self::event("ping", &json!({"type": "ping"})),
        ]
    }

    fn frames(&mut self, event: CompletionEvent) -> Vec<Event> {
        let mut frames = Vec::new();
        if self.ended {
            return frames;
        }
        match event {
            CompletionEvent::Started { .. } => {}
            CompletionEvent::TextDelta(text) => {
                let index = self.open(
                    OpenBlock::Text,
                    json!({"type": "text", "text": ""}),
                    &mut frames,
                );
                frames.push(Self::event(
                    "content_block_delta",
                    &json!({"type": "content_block_delta", "index": index,
                        "delta": {"type": "text_delta", "text": text}}),
                ));
            }
            CompletionEvent::ToolCallDelta {
                index: call,
                id,
                name,
                arguments,
            } => {
                let start = json!({"type": "tool_use", "id": id.unwrap_or_default(),
                    "name": name.unwrap_or_default(), "input": {}});
                let index = self.open(OpenBlock::Tool(call), start, &mut frames);
                if !arguments.is_empty() {
                    frames.push(Self::event(
                        "content_block_delta",
                        &json!({"type": "content_block_delta", "index": index,
                            "delta": {"type": "input_json_delta", "partial_json": arguments}}),
                    ));
                }
            }
            CompletionEvent::Finished(completion) => {
                self.ended = true;
                self.close(&mut frames);
                let response = &completion.response;
                frames.push(Self::event(
                    "message_delta",
                    &json!({"type": "message_delta",
                        "delta": {"stop_reason": stop_reason(response.finish_reason), "stop_sequence": null},
                        "usage": usage_body(&response.usage, completion.cost_nanos)}),
                ));
                frames.push(Self::event(
                    "message_stop",
                    &json!({"type": "message_stop"}),
                ));
            }
            CompletionEvent::Failed(failure) => {
                self.ended = true;
                frames.push(Self::event(
                    "error",
                    &AnthropicError::from_failure(&failure).body(),
                ));
            }
        }
        frames
    }
}

/// Fields the SDK may send that change nothing here (accepted and ignored).
const IGNORED_FIELDS: &[&str] = &["service_tier", "container"];

/// Reads a Messages request; the first problem is a 400 naming its field.
fn read_request(body: &Value) -> Result<(CompletionRequest, bool), AnthropicError> {
    let object = body
        .as_object()
        .ok_or_else(|| AnthropicError::invalid("body", "must be a JSON object"))?;
    for key in object.keys() {
        let known = matches!(
            key.as_str(),
            "model"
                | "messages"
                | "system"
                | "max_tokens"
                | "temperature"
                | "top_p"
                | "top_k"
                | "stop_sequences"
                | "stream"
                | "tools"
                | "tool_choice"
                | "thinking"
                | "metadata"
        ) || IGNORED_FIELDS.contains(&key.as_str());
        if !known {
            return Err(AnthropicError::invalid(
                key,
                "Extra inputs are not permitted",
            ));
        }
    }
    let model = match object.get("model") {
        Some(Value::String(model)) if !model.trim().is_empty() => model.trim().to_owned(),
        _ => return Err(AnthropicError::invalid("model", "Field required")),
    };
    let max_tokens = match object.get("max_tokens") {
        Some(value) => value
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v > 0)
            .ok_or_else(|| {
                AnthropicError::invalid("max_tokens", "must be a positive whole number")
            })?,
        None => return Err(AnthropicError::invalid("max_tokens", "Field required")),
    };
    if let Some(thinking) = object.get("thinking") {
        if thinking.get("type").and_then(Value::as_str) != Some("disabled") {
            return Err(AnthropicError::invalid(
                "thinking",
                "extended thinking is not routed through Cover yet",
            ));
        }
    }
    let stream = match object.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => *stream,
        Some(_) => return Err(AnthropicError::invalid("stream", "must be a boolean")),
    };
    let mut messages = Vec::new();
    if let Some(system) = object.get("system").filter(|v| !v.is_null()) {
        messages.push(Message::text(Role::System, text_of("system", system)?));
    }
    let turns = object
        .get("messages")
        .and_then(Value::as_array)
        .filter(|turns| !turns.is_empty())
        .ok_or_else(|| AnthropicError::invalid("messages", "must be a non-empty list"))?;
    for (i, turn) in turns.iter().enumerate() {
        read_turn(&format!("messages.{i}"), turn, &mut messages)?;
    }
    let tools = read_tools(object.get("tools"))?;
    let tool_choice = read_tool_choice(object.get("tool_choice"), &tools)?;
    let number = |key: &str| -> Result<Option<f64>, AnthropicError> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_f64()
                .map(Some)
                .ok_or_else(|| AnthropicError::invalid(key, "must be a number")),
        }
    };
    let top_k = match object.get("top_k") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| AnthropicError::invalid("top_k", "must be a whole number"))?,
        ),
    };
    let stop = match object.get("stop_sequences") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    AnthropicError::invalid("stop_sequences", "must be a list of strings")
                })?,
        ),
        Some(_) => {
            return Err(AnthropicError::invalid(
                "stop_sequences",
                "must be a list of strings",
            ))
        }
    };
    let overrides = Overrides {
        temperature: number("temperature")?,
        top_p: number("top_p")?,
        top_k,
        max_tokens: Some(max_tokens),
        frequency_penalty: None,
        presence_penalty: None,
        stop,
    };
    // Anthropic's `metadata.user_id` names the end user: the unit an
    // experiment assigns.
    let end_user = match object.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(metadata)) => match metadata.get("user_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(user)) => Some(user.clone()).filter(|u| !u.is_empty()),
            Some(_) => {
                return Err(AnthropicError::invalid(
                    "metadata.user_id",
                    "must be a string",
                ))
            }
        },
        Some(_) => return Err(AnthropicError::invalid("metadata", "must be an object")),
    };
    Ok((
        CompletionRequest {
            model,
            messages,
            tools,
            tool_choice,
            response_format: ResponseFormat::Text,
            overrides,
            end_user,
        },
        stream,
    ))
}

/// A string, or a list of `text` blocks.
fn text_of(at: &str, value: &Value) -> Result<String, AnthropicError> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Array(blocks) => blocks
            .iter()
            .enumerate()
            .map(
                |(j, block)| match block.get("type").and_then(Value::as_str) {
                    Some("text") => block
                        .get("text")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            AnthropicError::invalid(&format!("{at}.{j}.text"), "Field required")
                        }),
                    _ => Err(AnthropicError::invalid(
                        &format!("{at}.{j}.type"),
                        "only text blocks are allowed here",
                    )),
                },
            )
            .collect::<Result<Vec<_>, _>>()
            .map(|texts| texts.concat()),
        _ => Err(AnthropicError::invalid(
            at,
            "must be a string or a list of blocks",
        )),
    }
}

/// One turn: a user turn's `tool_result` blocks become tool messages (in
/// order, before its other content), an assistant turn's `tool_use` blocks
/// its tool calls.
fn read_turn(at: &str, turn: &Value, messages: &mut Vec<Message>) -> Result<(), AnthropicError> {
    let role = match turn.get("role").and_then(Value::as_str) {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        _ => {
            return Err(AnthropicError::invalid(
                &format!("{at}.role"),
                "must be `user` or `assistant`",
            ))
        }
    };
    let blocks = match turn.get("content") {
        Some(Value::String(text)) => {
            messages.push(Message::text(role, text.clone()));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return Err(AnthropicError::invalid(
                &format!("{at}.content"),
                "must be a string or a list of blocks",
            ))
        }
    };
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let here = format!("{at}.content.{j}");
        match (role, block.get("type").and_then(Value::as_str)) {
            (_, Some("text")) => parts.push(ContentPart::text(
                block
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            )),
            (Role::User, Some("image")) => parts.push(image(&here, block)?),
            (Role::User, Some("tool_result")) => {
                let id = block
                    .get("tool_use_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        AnthropicError::invalid(&format!("{here}.tool_use_id"), "Field required")
                    })?;
                let text = match block.get("content") {
                    None | Some(Value::Null) => String::new(),
                    Some(content) => text_of(&format!("{here}.content"), content)?,
                };
                messages.push(Message::tool_result(id, text));
            }
            (Role::Assistant, Some("tool_use")) => {
                let text = |key: &str| block.get(key).and_then(Value::as_str);
                let (Some(id), Some(name)) = (text("id"), text("name")) else {
                    return Err(AnthropicError::invalid(
                        &here,
                        "a tool_use block needs `id` and `name`",
                    ));
                };
                calls.push(ToolCall {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    arguments: block.get("input").cloned().unwrap_or_else(|| json!({})),
                });
            }
            (_, other) => {
                return Err(AnthropicError::invalid(
                    &format!("{here}.type"),
                    format!(
                        "`{}` blocks are not supported here",
                        other.unwrap_or("untyped")
                    ),
                ))
            }
        }
    }
    if !parts.is_empty() || !calls.is_empty() {
        messages.push(Message {
            role,
            content: parts,
            tool_calls: calls,
            tool_call_id: None,
        });
    }
    Ok(())
}

fn image(at: &str, block: &Value) -> Result<ContentPart, AnthropicError> {
    let source = block.get("source").cloned().unwrap_or_default();
    if source.get("type").and_then(Value::as_str) != Some("base64") {
        return Err(AnthropicError::invalid(
            &format!("{at}.source.type"),
            "send images as base64 sources; Cover does not fetch images from addresses",
        ));
    }
    let media_type = source
        .get("media_type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !IMAGE_MEDIA_TYPES.contains(&media_type) {
        return Err(AnthropicError::invalid(
            &format!("{at}.source.media_type"),
            format!("use one of {}", IMAGE_MEDIA_TYPES.join(", ")),
        ));
    }
    let data = source
        .get("data")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if data.is_empty() || data.len() / 4 * 3 > MAX_IMAGE_BYTES {
        return Err(AnthropicError::invalid(
            &format!("{at}.source.data"),
            format!(
                "an image of at most {} MiB, base64-encoded",
                MAX_IMAGE_BYTES / (1024 * 1024)
            ),
        ));
    }
    Ok(ContentPart::Image {
        media_type: media_type.to_owned(),
        data: data.to_owned(),
    })
}

fn read_tools(value: Option<&Value>) -> Result<Vec<ToolDefinition>, AnthropicError> {
    let Some(items) = value.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let items = items
        .as_array()
        .ok_or_else(|| AnthropicError::invalid("tools", "must be a list"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let at = format!("tools.{i}");
            if tool
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t != "custom")
            {
                return Err(AnthropicError::invalid(
                    &format!("{at}.type"),
                    "Anthropic's server tools are not routed through Cover; define a custom tool",
                ));
            }
            let name = tool
                .get("name")
                .and_then(Value::as_str)
                .filter(|name| !name.is_empty())
                .ok_or_else(|| AnthropicError::invalid(&format!("{at}.name"), "Field required"))?;
            let schema: &Map<String, Value> = tool
                .get("input_schema")
                .and_then(Value::as_object)
                .ok_or_else(|| {
                AnthropicError::invalid(&format!("{at}.input_schema"), "Field required")
            })?;
            Ok(ToolDefinition {
                name: name.to_owned(),
                description: tool
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                parameters: Value::Object(schema.clone()),
            })
        })
        .collect()
}

fn read_tool_choice(
    value: Option<&Value>,
    tools: &[ToolDefinition],
) -> Result<ToolChoice, AnthropicError> {
    let Some(choice) = value.filter(|v| !v.is_null()) else {
        return Ok(ToolChoice::Auto);
    };
    let choice = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => ToolChoice::Auto,
        Some("none") => ToolChoice::None,
        Some("any") => ToolChoice::Required,
        Some("tool") => {
            let name = choice
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| AnthropicError::invalid("tool_choice.name", "Field required"))?;
            if !tools.iter().any(|t| t.name == name) {
                return Err(AnthropicError::invalid(
                    "tool_choice.name",
                    format!("`{name}` is not one of the request's tools"),
                ));
            }
            ToolChoice::Tool {
                name: name.to_owned(),
            }
        }
        _ => {
            return Err(AnthropicError::invalid(
                "tool_choice.type",
                "must be `auto`, `any`, `tool` or `none`",
            ))
        }
    };
    if matches!(choice, ToolChoice::Required) && tools.is_empty() {
        return Err(AnthropicError::invalid(
            "tool_choice",
            "`any` needs at least one tool",
        ));
    }
    Ok(choice)
}

/// The request body for the OpenAPI document: the fields Cover reads.
pub fn request_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "Anthropic's Messages request; unknown fields are refused (400 naming them)",
        "required": ["model", "max_tokens", "messages"],
        "properties": {
            "model": {"type": "string", "description": "a catalog id of any provider (GET /v1/models), or `cover/default`"},
            "max_tokens": {"type": "integer", "minimum": 1},
            "system": {"description": "a string, or text blocks"},
            "messages": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["role", "content"],
                "properties": {"role": {"enum": ["user", "assistant"]}, "content": {}}
            }},
            "temperature": {"type": "number"},
            "top_p": {"type": "number"},
            "top_k": {"type": "integer", "minimum": 0},
            "stop_sequences": {"type": "array", "items": {"type": "string"}},
            "stream": {"type": "boolean"},
            "tools": {"type": "array", "items": {"type": "object", "required": ["name", "input_schema"]}},
            "tool_choice": {"type": "object", "required": ["type"]}
        }
    })
}

/// The `message` answer for the OpenAPI document.
pub fn message_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "required": ["id", "type", "role", "model", "content", "stop_reason", "usage"],
        "properties": {
            "id": {"type": "string"},
            "type": {"const": "message"},
            "role": {"const": "assistant"},
            "model": {"type": "string", "description": "the catalog id of the model that answered"},
            "content": {"type": "array", "items": {"type": "object", "required": ["type"]}},
            "stop_reason": {"enum": ["end_turn", "max_tokens", "tool_use", "refusal"]},
            "usage": {"type": "object", "required": ["input_tokens", "output_tokens", "cost_usd"],
                "properties": {
                    "input_tokens": {"type": "integer"},
                    "output_tokens": {"type": "integer"},
                    "cost_usd": {"type": ["string", "null"], "description": "the exact cost; null when a price is unknown"}
                }
            }
        }
    })
}

/// The error body of this format, for the OpenAPI document.
pub fn error_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "required": ["type", "error"],
        "properties": {
            "type": {"const": "error"},
            "error": {"type": "object", "required": ["type", "message"],
                "properties": {"type": {"type": "string"}, "message": {"type": "string"}}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_with_tool_use_and_results_reads_into_the_route() {
        let (request, stream) = read_request(&json!({
            "model": "gpt-4o-mini",
            "max_tokens": 100,
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [
                {"role": "user", "content": "Where is order 42?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Looking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"id": "42"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "shipped"},
                    {"type": "text", "text": "And now?"}
                ]}
            ],
            "tools": [{"name": "lookup", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any"},
            "stop_sequences": ["END"],
            "stream": true
        }))
        .expect("a valid request");
        assert!(stream);
        let roles: Vec<Role> = request.messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [
                Role::System,
                Role::User,
                Role::Assistant,
                Role::Tool,
                Role::User
            ]
        );
        assert_eq!(
            request.messages[2].tool_calls[0].arguments,
            json!({"id": "42"})
        );
        assert_eq!(request.messages[3].tool_call_id.as_deref(), Some("toolu_1"));
        assert_eq!(request.tool_choice, ToolChoice::Required);
        assert_eq!(request.overrides.max_tokens, Some(100));
        assert_eq!(request.overrides.stop, Some(vec!["END".to_owned()]));
    }

    #[test]
    fn a_bad_request_names_its_field() {
        let cases = [
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
                "max_tokens",
            ),
            (
                json!({"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
                "model",
            ),
            (
                json!({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "hi"}]}),
                "messages.0.role",
            ),
            (
                json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}]}),
                "messages.0.content.0.source.type",
            ),
            (
                json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "extra": 1}),
                "extra",
            ),
        ];
        for (body, field) in cases {
            let error = read_request(&body)
                .err()
                .unwrap_or_else(|| panic!("{body} was accepted"));
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{body}");
            assert!(
                error.message.starts_with(&format!("{field}: ")),
                "{body}: {}",
                error.message
            );
            assert_eq!(error.body()["type"], "error");
        }
    }

    #[test]
    fn a_temperature_out_of_range_is_named_as_this_format_spells_it() {
        let error = AnthropicError::from(Error::App(AppError::invalid("stop", "at most 4")));
        assert!(
            error.message.starts_with("stop_sequences: "),
            "{}",
            error.message
        );
    }
}
