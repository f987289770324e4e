//! OpenAI's Chat Completions format (`POST /v1/chat/completions`,
//! `GET /v1/models`): requests read as OpenAI's SDKs send them, answers and
//! stream chunks written as they expect, errors as `{"error": {"message",
//! "type", "param", "code"}}`.
//!
//! Cover's own facts ride along where the format leaves room: the headers
//! `x-cover-provider`, `x-cover-model`, `x-cover-fallback` (`none`, or the
//! model asked for and why another answered), `x-cover-cost-usd` and
//! `x-cover-overhead-ms` (whole answers; a stream's headers go out with its
//! first token, before the cost is known), and `usage.cost_usd`, the exact
//! cost as a decimal string (`null` when a price is unknown), in the usage
//! object and the stream's usage chunk.

use super::{unix_now, FormatError, Program, StreamWriter};
use crate::error::AppError;
use crate::model::chat::{IMAGE_MEDIA_TYPES, MAX_IMAGE_BYTES};
use crate::model::money::format_decimal;
use crate::server::error::Error;
use crate::server::llm::{
    ContentPart, ErrorKind, FinishReason, GenerateResponse, Message, ResponseFormat, Role,
    ToolCall, ToolChoice, ToolDefinition, Usage,
};
use crate::server::services::completions::{
    self, Completion, CompletionEvent, CompletionFailure, CompletionRequest, Overrides,
};
use crate::server::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use schemars::{json_schema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

/// The OpenAI-format routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(list_models))
}

/// An error as OpenAI's API writes it, with its status and retry advice.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<String>,
    retry_after_secs: Option<u64>,
    should_retry: bool,
}

impl OpenAiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        OpenAiError {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
            retry_after_secs: None,
            should_retry: false,
        }
    }

    /// A 400 naming the request parameter at fault.
    pub(crate) fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        OpenAiError {
            param: Some(param.into()),
            ..OpenAiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
        }
    }

    fn code(mut self, code: &str) -> Self {
        self.code = Some(code.to_owned());
        self
    }

    /// The `{"error": …}` object (also a stream's last event).
    fn body(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

/// Cover's camelCase parameter names as this format spells them.
fn wire_param(field: &str) -> &str {
    match field {
        "maxTokens" => "max_tokens",
        "topP" => "top_p",
        "topK" => "top_k",
        "frequencyPenalty" => "frequency_penalty",
        "presencePenalty" => "presence_penalty",
        other => other,
    }
}

impl FormatError for OpenAiError {
    /// Every model failed: the status says how, and the SDK must not retry
    /// (Cover already retried and fell back).
    fn from_failure(failure: &CompletionFailure) -> Self {
        let error = &failure.error;
        let (status, kind, code) = match error.kind {
            ErrorKind::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "rate_limited",
            ),
            ErrorKind::QuotaExhausted => (
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                "insufficient_quota",
            ),
            ErrorKind::ContextTooLong => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "context_length_exceeded",
            ),
            ErrorKind::ContentFiltered => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "content_filter",
            ),
            ErrorKind::InvalidRequest | ErrorKind::InvalidParameter { .. } => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_request",
            ),
            ErrorKind::Overloaded { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "api_error", "overloaded")
            }
            ErrorKind::Auth => (StatusCode::BAD_GATEWAY, "api_error", "upstream_auth"),
            ErrorKind::Transient | ErrorKind::Cancelled => {
                (StatusCode::BAD_GATEWAY, "api_error", "upstream_error")
            }
        };
        let param = match &error.kind {
            ErrorKind::InvalidParameter { param, .. } => Some(wire_param(param).to_owned()),
            _ => None,
        };
        OpenAiError {
            param,
            ..OpenAiError::new(status, kind, error.to_string()).code(code)
        }
    }
}

impl From<Error> for OpenAiError {
    fn from(error: Error) -> Self {
        let error = AppError::from(error);
        let message = error.to_string();
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let base = |kind| OpenAiError::new(status, kind, message.clone());
        let mut mapped = match &error {
            AppError::Invalid { field, message } => {
                OpenAiError::invalid(wire_param(field), message.clone())
            }
            AppError::InvalidFields { errors } => {
                let param = errors.first().map(|e| wire_param(&e.field).to_owned());
                OpenAiError {
                    param,
                    ..OpenAiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
                }
            }
            AppError::BadRequest { .. } | AppError::Conflict { .. } | AppError::TooLarge { .. } => {
                base("invalid_request_error")
            }
            AppError::Unauthenticated { .. } => {
                base("authentication_error").code("invalid_api_key")
            }
            AppError::Forbidden { .. } => base("permission_error"),
            AppError::NotFound => base("invalid_request_error").code("not_found"),
            // The budget will not pass this until the month ends or the limit
            // rises: a 429 the SDKs know, and no retry.
            AppError::BudgetExceeded { .. } => OpenAiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "insufficient_quota",
                message.clone(),
            )
            .code("budget_exceeded"),
            AppError::TooManyRequests { .. } | AppError::Busy { .. } | AppError::Unavailable => {
                OpenAiError {
                    should_retry: true,
                    ..base("rate_limit_error").code("busy")
                }
            }
            AppError::ProviderFailed { class, .. } => base("api_error").code(class),
            AppError::Internal | AppError::Transport { .. } => base("api_error"),
        };
        mapped.retry_after_secs = error.retry_after();
        mapped
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        super::error_response(
            self.status,
            self.body(),
            self.should_retry,
            self.retry_after_secs,
        )
    }
}

/// `GET /v1/models`: exactly the models this project can route to, in
/// Anthropic's list format when the request carries `anthropic-version`
/// (the Anthropic SDK always does), OpenAI's otherwise.
async fn list_models(
    State(state): State<AppState>,
    program: Program<OpenAiError>,
    headers: HeaderMap,
) -> Result<Json<Value>, OpenAiError> {
    let models = completions::routable_models(&state, &program.project_id).await?;
    if headers.contains_key("anthropic-version") {
        return Ok(Json(super::anthropic::models_body(&models)));
    }
    let data: Vec<Value> = models
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "object": "model",
                "owned_by": m.provider.as_str(),
                "name": m.name,
                "context_window": m.context_window,
                "max_output_tokens": m.max_output,
            })
        })
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

/// `POST /v1/chat/completions`.
async fn chat_completions(
    State(state): State<AppState>,
    program: Program<OpenAiError>,
    body: Bytes,
) -> Result<Response, OpenAiError> {
    let body: Value = serde_json::from_slice(&body).map_err(|error| {
        OpenAiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("the body is not valid JSON: {error}"),
        )
    })?;
    let read = read_request(&body)?;
    if read.stream {
        let include_usage = read.include_usage;
        return super::streamed(
            &state,
            &program.project_id,
            read.request,
            move |request_id: &str, model: &str| ChunkWriter::new(request_id, model, include_usage),
        )
        .await;
    }
    super::whole(&state, &program.project_id, read.request, completion_body).await
}

fn finish_reason(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::Stop | FinishReason::Other => "stop",
    }
}

/// OpenAI's usage object: `prompt_tokens` counts cached tokens too.
fn usage_body(usage: &Usage, cost_nanos: Option<i64>) -> Value {
    let prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "cost_usd": cost_nanos.map(format_decimal),
    })
}

fn tool_calls_body(calls: &[ToolCall]) -> Value {
    calls
        .iter()
        .map(|call| {
            json!({
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments.to_string()},
            })
        })
        .collect()
}

fn completion_id(request_id: &str) -> String {
    format!("chatcmpl-{request_id}")
}

/// A whole answer as `chat.completion`.
fn completion_body(completion: &Completion) -> Value {
    let response: &GenerateResponse = &completion.response;
    let text = response.text();
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !response.tool_calls.is_empty() { Value::Null } else { json!(text) },
        "refusal": null,
    });
    if !response.tool_calls.is_empty() {
        message["tool_calls"] = tool_calls_body(&response.tool_calls);
    }
    json!({
        "id": completion_id(&completion.request_id),
        "object": "chat.completion",
        "created": unix_now(),
        "model": completion.answerer.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(response.finish_reason),
        }],
        "usage": usage_body(&response.usage, completion.cost_nanos),
        "system_fingerprint": null,
    })
}

/// Writes one stream's `chat.completion.chunk` events.
struct ChunkWriter {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    /// Set once the stream has ended (its last event is written).
    ended: bool,
}

impl ChunkWriter {
    fn new(request_id: &str, model: &str, include_usage: bool) -> Self {
        ChunkWriter {
            id: completion_id(request_id),
            model: model.to_owned(),
            created: unix_now(),
            include_usage,
            ended: false,
        }
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Event {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
            "system_fingerprint": null,
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        Event::default().data(chunk.to_string())
    }

    /// The closing chunks of a finished answer: its finish reason, its usage
    /// (when asked for, with `choices: []`), then `[DONE]`.
    fn closing(&mut self, completion: &Completion) -> Vec<Event> {
        self.ended = true;
        let mut frames = vec![self.chunk(
            json!({}),
            Some(finish_reason(completion.response.finish_reason)),
        )];
        if self.include_usage {
            let usage = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": usage_body(&completion.response.usage, completion.cost_nanos),
                "system_fingerprint": null,
            });
            frames.push(Event::default().data(usage.to_string()));
        }
        frames.push(Event::default().data("[DONE]"));
        frames
    }
}

impl StreamWriter for ChunkWriter {
    /// The first chunk: the assistant's role.
    fn opening(&mut self) -> Vec<Event> {
        vec![self.chunk(json!({"role": "assistant", "content": ""}), None)]
    }

    fn frames(&mut self, event: CompletionEvent) -> Vec<Event> {
        if self.ended {
            return Vec::new();
        }
        match event {
            CompletionEvent::Started { .. } => Vec::new(),
            CompletionEvent::TextDelta(text) => vec![self.chunk(json!({"content": text}), None)],
            CompletionEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                let mut call = json!({"index": index, "function": {"arguments": arguments}});
                if let Some(id) = id {
                    call["id"] = json!(id);
                    call["type"] = json!("function");
                }
                if let Some(name) = name {
                    call["function"]["name"] = json!(name);
                }
                vec![self.chunk(json!({"tool_calls": [call]}), None)]
            }
            CompletionEvent::Finished(completion) => self.closing(&completion),
            CompletionEvent::Failed(failure) => {
                self.ended = true;
                let error = OpenAiError::from_failure(&failure);
                vec![Event::default().data(error.body().to_string())]
            }
        }
    }
}

/// A request as read: what the completion service runs, and how to answer.
struct ReadRequest {
    request: CompletionRequest,
    stream: bool,
    include_usage: bool,
}

/// Fields the SDKs send that change nothing here (accepted and ignored).
const IGNORED_FIELDS: &[&str] = &[
    "metadata",
    "store",
    "seed",
    "service_tier",
    "parallel_tool_calls",
    "logit_bias",
    "prompt_cache_key",
    "safety_identifier",
];

/// Reads a Chat Completions request; the first problem is a 400 naming its
/// parameter the way OpenAI does (`messages[2].content[0].image_url.url`).
fn read_request(body: &Value) -> Result<ReadRequest, OpenAiError> {
    let object = body
        .as_object()
        .ok_or_else(|| OpenAiError::invalid("body", "the body must be a JSON object"))?;
    for key in object.keys() {
        let known = matches!(
            key.as_str(),
            "model"
                | "messages"
                | "stream"
                | "stream_options"
                | "temperature"
                | "top_p"
                | "top_k"
                | "max_tokens"
                | "max_completion_tokens"
                | "stop"
                | "frequency_penalty"
                | "presence_penalty"
                | "tools"
                | "tool_choice"
                | "response_format"
                | "n"
                | "logprobs"
                | "top_logprobs"
                | "user"
        ) || IGNORED_FIELDS.contains(&key.as_str());
        if !known {
            return Err(OpenAiError::invalid(
                key.clone(),
                format!("Unrecognized request argument supplied: {key}"),
            ));
        }
    }
    let model = match object.get("model") {
        Some(Value::String(model)) if !model.trim().is_empty() => model.trim().to_owned(),
        _ => {
            return Err(OpenAiError::invalid(
                "model",
                "you must provide a model: a catalog id (GET /v1/models) or `cover/default`",
            ))
        }
    };
    let stream = optional_bool(object, "stream")?.unwrap_or(false);
    let include_usage = match object.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(options)) => optional_bool(options, "include_usage")
            .map_err(|e| OpenAiError::invalid("stream_options.include_usage", e.message))?
            .unwrap_or(false),
        Some(_) => return Err(OpenAiError::invalid("stream_options", "must be an object")),
    };
    if let Some(n) = object.get("n").filter(|v| !v.is_null()) {
        if n.as_u64() != Some(1) {
            return Err(OpenAiError::invalid(
                "n",
                "Cover returns one choice per request: `n` must be 1",
            ));
        }
    }
    if optional_bool(object, "logprobs")?.unwrap_or(false) {
        return Err(OpenAiError::invalid(
            "logprobs",
            "log probabilities are not available through Cover",
        ));
    }
    let response_format = read_response_format(object.get("response_format"))?;
    let messages = read_messages(object.get("messages"))?;
    let tools = read_tools(object.get("tools"))?;
    let tool_choice = read_tool_choice(object.get("tool_choice"), &tools)?;
    let max_tokens = match optional_u32(object, "max_completion_tokens")? {
        Some(max) => Some(max),
        None => optional_u32(object, "max_tokens")?,
    };
    let overrides = Overrides {
        temperature: optional_f64(object, "temperature")?,
        top_p: optional_f64(object, "top_p")?,
        top_k: optional_u32(object, "top_k")?,
        max_tokens,
        frequency_penalty: optional_f64(object, "frequency_penalty")?,
        presence_penalty: optional_f64(object, "presence_penalty")?,
        stop: read_stop(object.get("stop"))?,
    };
    let end_user = match object.get("user") {
        None | Some(Value::Null) => None,
        Some(Value::String(user)) => Some(user.clone()).filter(|u| !u.is_empty()),
        Some(_) => return Err(OpenAiError::invalid("user", "must be a string")),
    };
    Ok(ReadRequest {
        request: CompletionRequest {
            model,
            messages,
            tools,
            tool_choice,
            response_format,
            overrides,
            end_user,
        },
        stream,
        include_usage,
    })
}

/// `response_format`: `text`, `json_object`, or `json_schema` with its named
/// schema (whether the model can honour it is the completion's check).
fn read_response_format(value: Option<&Value>) -> Result<ResponseFormat, OpenAiError> {
    let Some(format) = value.filter(|v| !v.is_null()) else {
        return Ok(ResponseFormat::Text);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let spec = format
                .get("json_schema")
                .and_then(Value::as_object)
                .ok_or_else(|| {
                    OpenAiError::invalid(
                        "response_format.json_schema",
                        "must be an object with `name` and `schema`",
                    )
                })?;
            let name = spec
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    OpenAiError::invalid(
                        "response_format.json_schema.name",
                        "a schema needs a name",
                    )
                })?;
            let schema = match spec.get("schema") {
                Some(schema @ Value::Object(_)) => schema.clone(),
                None | Some(Value::Null) => serde_json::json!({"type": "object"}),
                Some(_) => {
                    return Err(OpenAiError::invalid(
                        "response_format.json_schema.schema",
                        "must be a JSON Schema object",
                    ))
                }
            };
            Ok(ResponseFormat::JsonSchema {
                name: name.to_owned(),
                schema,
                strict: spec.get("strict").and_then(Value::as_bool).unwrap_or(false),
            })
        }
        _ => Err(OpenAiError::invalid(
            "response_format",
            "`type` must be text, json_object or json_schema",
        )),
    }
}

fn optional_bool(object: &Map<String, Value>, key: &str) -> Result<Option<bool>, OpenAiError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(*value)),
        Some(_) => Err(OpenAiError::invalid(
            key,
            format!("`{key}` must be a boolean"),
        )),
    }
}

fn optional_f64(object: &Map<String, Value>, key: &str) -> Result<Option<f64>, OpenAiError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_f64()
            .map(Some)
            .ok_or_else(|| OpenAiError::invalid(key, format!("`{key}` must be a number"))),
    }
}

fn optional_u32(object: &Map<String, Value>, key: &str) -> Result<Option<u32>, OpenAiError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v > 0)
            .map(Some)
            .ok_or_else(|| {
                OpenAiError::invalid(key, format!("`{key}` must be a positive whole number"))
            }),
    }
}

fn read_stop(value: Option<&Value>) -> Result<Option<Vec<String>>, OpenAiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(stop)) => Ok(Some(vec![stop.clone()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| {
                OpenAiError::invalid("stop", "`stop` must be a string or a list of strings")
            }),
        Some(_) => Err(OpenAiError::invalid(
            "stop",
            "`stop` must be a string or a list of strings",
        )),
    }
}

fn read_messages(value: Option<&Value>) -> Result<Vec<Message>, OpenAiError> {
    let items = value
        .and_then(Value::as_array)
        .filter(|items| !items.is_empty())
        .ok_or_else(|| OpenAiError::invalid("messages", "`messages` must be a non-empty list"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| read_message(&format!("messages[{i}]"), item))
        .collect()
}

fn read_message(at: &str, value: &Value) -> Result<Message, OpenAiError> {
    let object = value
        .as_object()
        .ok_or_else(|| OpenAiError::invalid(at, "each message must be an object"))?;
    let role = object
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let content = object.get("content");
    match role {
        "system" | "developer" => Ok(Message::text(
            Role::System,
            text_content(&format!("{at}.content"), content)?,
        )),
        "user" => Ok(Message::parts(
            Role::User,
            user_content(&format!("{at}.content"), content)?,
        )),
        "assistant" => {
            let text = match content {
                None | Some(Value::Null) => String::new(),
                Some(content) => text_content(&format!("{at}.content"), Some(content))?,
            };
            let tool_calls =
                read_tool_calls(&format!("{at}.tool_calls"), object.get("tool_calls"))?;
            Ok(Message {
                role: Role::Assistant,
                content: if text.is_empty() {
                    Vec::new()
                } else {
                    vec![ContentPart::text(text)]
                },
                tool_calls,
                tool_call_id: None,
            })
        }
        "tool" => {
            let call_id = object
                .get("tool_call_id")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    OpenAiError::invalid(
                        format!("{at}.tool_call_id"),
                        "a tool message must name the `tool_call_id` it answers",
                    )
                })?;
            Ok(Message::tool_result(
                call_id,
                text_content(&format!("{at}.content"), content)?,
            ))
        }
        other => Err(OpenAiError::invalid(
            format!("{at}.role"),
            format!("unknown role `{other}`: use system, developer, user, assistant or tool"),
        )),
    }
}

/// Text content: a string, or a list of `text` parts.
fn text_content(at: &str, value: Option<&Value>) -> Result<String, OpenAiError> {
    match value {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => parts
            .iter()
            .enumerate()
            .map(|(j, part)| match part.get("type").and_then(Value::as_str) {
                Some("text") => part
                    .get("text")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        OpenAiError::invalid(format!("{at}[{j}].text"), "must be a string")
                    }),
                _ => Err(OpenAiError::invalid(
                    format!("{at}[{j}].type"),
                    "only `text` parts are allowed here",
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|texts| texts.concat()),
        _ => Err(OpenAiError::invalid(
            at,
            "must be a string or a list of parts",
        )),
    }
}

/// A user message's content: text, or parts of text and `image_url` images
/// (as `data:` URLs: Cover does not fetch images from addresses).
fn user_content(at: &str, value: Option<&Value>) -> Result<Vec<ContentPart>, OpenAiError> {
    let parts = match value {
        Some(Value::String(text)) => return Ok(vec![ContentPart::text(text.clone())]),
        Some(Value::Array(parts)) => parts,
        _ => {
            return Err(OpenAiError::invalid(
                at,
                "must be a string or a list of parts",
            ))
        }
    };
    parts
        .iter()
        .enumerate()
        .map(|(j, part)| {
            let here = format!("{at}[{j}]");
            match part.get("type").and_then(Value::as_str) {
                Some("text") => part
                    .get("text")
                    .and_then(Value::as_str)
                    .map(ContentPart::text)
                    .ok_or_else(|| {
                        OpenAiError::invalid(format!("{here}.text"), "must be a string")
                    }),
                Some("image_url") => {
                    let url = part
                        .pointer("/image_url/url")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    data_url_image(&format!("{here}.image_url.url"), url)
                }
                _ => Err(OpenAiError::invalid(
                    format!("{here}.type"),
                    "only `text` and `image_url` parts are supported",
                )),
            }
        })
        .collect()
}

fn data_url_image(at: &str, url: &str) -> Result<ContentPart, OpenAiError> {
    let Some((header, data)) = url
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(','))
    else {
        return Err(OpenAiError::invalid(
            at,
            "send images as data: URLs (data:image/png;base64,…); Cover does not fetch images from addresses",
        ));
    };
    let Some(media_type) = header.strip_suffix(";base64") else {
        return Err(OpenAiError::invalid(
            at,
            "the data: URL must be base64 (…;base64,…)",
        ));
    };
    if !IMAGE_MEDIA_TYPES.contains(&media_type) {
        return Err(OpenAiError::invalid(
            at,
            format!(
                "unsupported image type `{media_type}`; use one of {}",
                IMAGE_MEDIA_TYPES.join(", ")
            ),
        ));
    }
    if data.len() / 4 * 3 > MAX_IMAGE_BYTES {
        return Err(OpenAiError::invalid(
            at,
            format!(
                "an image may be at most {} MiB",
                MAX_IMAGE_BYTES / (1024 * 1024)
            ),
        ));
    }
    Ok(ContentPart::Image {
        media_type: media_type.to_owned(),
        data: data.to_owned(),
    })
}

fn read_tool_calls(at: &str, value: Option<&Value>) -> Result<Vec<ToolCall>, OpenAiError> {
    let Some(items) = value.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let items = items
        .as_array()
        .ok_or_else(|| OpenAiError::invalid(at, "must be a list"))?;
    items
        .iter()
        .enumerate()
        .map(|(k, call)| {
            let here = format!("{at}[{k}]");
            let text = |pointer: &str| call.pointer(pointer).and_then(Value::as_str);
            let (Some(id), Some(name)) = (text("/id"), text("/function/name")) else {
                return Err(OpenAiError::invalid(
                    here,
                    "a tool call needs an `id` and a `function.name`",
                ));
            };
            let raw = text("/function/arguments").unwrap_or("{}");
            let arguments = serde_json::from_str(raw).map_err(|_| {
                OpenAiError::invalid(
                    format!("{here}.function.arguments"),
                    "the arguments must be a JSON object, as a string",
                )
            })?;
            Ok(ToolCall {
                id: id.to_owned(),
                name: name.to_owned(),
                arguments,
            })
        })
        .collect()
}

fn read_tools(value: Option<&Value>) -> Result<Vec<ToolDefinition>, OpenAiError> {
    let Some(items) = value.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let items = items
        .as_array()
        .ok_or_else(|| OpenAiError::invalid("tools", "`tools` must be a list"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let at = format!("tools[{i}]");
            if tool.get("type").and_then(Value::as_str) != Some("function") {
                return Err(OpenAiError::invalid(
                    format!("{at}.type"),
                    "only `function` tools are supported",
                ));
            }
            let function = tool
                .get("function")
                .and_then(Value::as_object)
                .ok_or_else(|| {
                    OpenAiError::invalid(
                        format!("{at}.function"),
                        "a function tool needs `function`",
                    )
                })?;
            let name = function
                .get("name")
                .and_then(Value::as_str)
                .filter(|name| !name.is_empty())
                .ok_or_else(|| {
                    OpenAiError::invalid(format!("{at}.function.name"), "a tool needs a name")
                })?;
            Ok(ToolDefinition {
                name: name.to_owned(),
                description: function
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                parameters: function
                    .get("parameters")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            })
        })
        .collect()
}

fn read_tool_choice(
    value: Option<&Value>,
    tools: &[ToolDefinition],
) -> Result<ToolChoice, OpenAiError> {
    let choice = match value {
        None | Some(Value::Null) => return Ok(ToolChoice::Auto),
        Some(Value::String(choice)) => match choice.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => {
                return Err(OpenAiError::invalid(
                    "tool_choice",
                    "use `auto`, `none`, `required` or {\"type\": \"function\", …}",
                ))
            }
        },
        Some(object) => match object.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => ToolChoice::Tool {
                name: name.to_owned(),
            },
            None => {
                return Err(OpenAiError::invalid(
                    "tool_choice",
                    "a function choice needs `function.name`",
                ))
            }
        },
    };
    if let ToolChoice::Tool { name } = &choice {
        if !tools.iter().any(|t| &t.name == name) {
            return Err(OpenAiError::invalid(
                "tool_choice",
                format!("`{name}` is not one of the request's tools"),
            ));
        }
    }
    if matches!(choice, ToolChoice::Required) && tools.is_empty() {
        return Err(OpenAiError::invalid(
            "tool_choice",
            "`required` needs at least one tool",
        ));
    }
    Ok(choice)
}

/// The request body for the OpenAPI document: the fields Cover reads.
pub fn request_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "OpenAI's Chat Completions request; unknown fields are refused (400 naming them)",
        "required": ["model", "messages"],
        "properties": {
            "model": {"type": "string", "description": "a catalog id or alias (GET /v1/models), or `cover/default`"},
            "messages": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["role"],
                "properties": {
                    "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
                    "content": {"description": "a string, or parts: `text`, and `image_url` with a data: URL"},
                    "tool_calls": {"type": "array"},
                    "tool_call_id": {"type": "string"}
                }
            }},
            "stream": {"type": "boolean"},
            "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
            "temperature": {"type": "number"},
            "top_p": {"type": "number"},
            "top_k": {"type": "integer", "minimum": 1},
            "max_tokens": {"type": "integer", "minimum": 1},
            "max_completion_tokens": {"type": "integer", "minimum": 1},
            "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "frequency_penalty": {"type": "number"},
            "presence_penalty": {"type": "number"},
            "tools": {"type": "array", "items": {"type": "object", "required": ["type", "function"]}},
            "tool_choice": {"anyOf": [{"enum": ["auto", "none", "required"]}, {"type": "object"}]},
            "response_format": {"type": "object"},
            "n": {"const": 1}
        }
    })
}

/// The `chat.completion` answer for the OpenAPI document.
pub fn completion_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "required": ["id", "object", "created", "model", "choices", "usage"],
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "chat.completion"},
            "created": {"type": "integer"},
            "model": {"type": "string", "description": "the catalog id of the model that answered"},
            "choices": {"type": "array", "minItems": 1, "maxItems": 1, "items": {
                "type": "object", "required": ["index", "message", "finish_reason"],
                "properties": {
                    "index": {"const": 0},
                    "message": {"type": "object", "required": ["role", "content"]},
                    "finish_reason": {"enum": ["stop", "length", "tool_calls", "content_filter"]}
                }
            }},
            "usage": {"type": "object", "required": ["prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"],
                "properties": {
                    "prompt_tokens": {"type": "integer"},
                    "completion_tokens": {"type": "integer"},
                    "total_tokens": {"type": "integer"},
                    "cost_usd": {"type": ["string", "null"], "description": "the exact cost; null when a price is unknown"}
                }
            }
        }
    })
}

/// The `/v1/models` list for the OpenAPI document.
pub fn models_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": {
                "type": "object", "required": ["id", "object", "owned_by"],
                "properties": {
                    "id": {"type": "string"},
                    "object": {"const": "model"},
                    "owned_by": {"enum": ["claude", "openai", "gemini", "llama"]}
                }
            }}
        }
    })
}

/// The error body of this format, for the OpenAPI document.
pub fn error_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]}
            }
        }}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: Value) -> Result<ReadRequest, OpenAiError> {
        read_request(&body)
    }

    #[test]
    fn a_request_with_every_message_kind_reads_into_the_route() {
        let read = read(json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{\"at\":\"it\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}
            ],
            "tools": [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "look"}},
            "max_completion_tokens": 50,
            "stop": "END",
            "stream": true,
            "stream_options": {"include_usage": true},
            "user": "someone"
        }))
        .expect("a valid request");
        assert!(read.stream && read.include_usage);
        let request = read.request;
        let roles: Vec<Role> = request.messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [Role::System, Role::User, Role::Assistant, Role::Tool]
        );
        assert!(matches!(
            &request.messages[1].content[1],
            ContentPart::Image { media_type, data } if media_type == "image/png" && data == "iVBORw0KGgo="
        ));
        assert_eq!(
            request.messages[2].tool_calls[0].arguments,
            json!({"at": "it"})
        );
        assert_eq!(request.messages[3].tool_call_id.as_deref(), Some("call_1"));
        assert_eq!(
            request.tool_choice,
            ToolChoice::Tool {
                name: "look".into()
            }
        );
        assert_eq!(request.overrides.max_tokens, Some(50));
        assert_eq!(request.overrides.stop, Some(vec!["END".to_owned()]));
    }

    #[test]
    fn a_bad_request_names_the_parameter_as_openai_does() {
        let cases = [
            (
                json!({"messages": [{"role": "user", "content": "hi"}]}),
                "model",
            ),
            (json!({"model": "m", "messages": []}), "messages"),
            (
                json!({"model": "m", "messages": [{"role": "robot", "content": "hi"}]}),
                "messages[0].role",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}),
                "messages[0].content[0].image_url.url",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}),
                "temperature",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 2}),
                "n",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "frobnicate": 1}),
                "frobnicate",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tool_choice": "required"}),
                "tool_choice",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                    "response_format": {"type": "xml"}}),
                "response_format",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                    "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": 3}}}),
                "response_format.json_schema.schema",
            ),
        ];
        for (body, param) in cases {
            let error = read(body.clone())
                .err()
                .unwrap_or_else(|| panic!("{body} was accepted"));
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(error.param.as_deref(), Some(param), "{body}");
            assert_eq!(error.body()["error"]["type"], "invalid_request_error");
        }
    }

    #[test]
    fn a_spent_budget_is_a_429_the_sdks_do_not_retry() {
        let error = OpenAiError::from(Error::App(AppError::BudgetExceeded {
            message: "the monthly budget is spent".into(),
        }));
        assert_eq!(error.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(!error.should_retry);
        let response = error.into_response();
        assert_eq!(response.headers()["x-should-retry"], "false");
    }

    #[test]
    fn a_parameter_out_of_range_is_named_in_this_format() {
        let error = OpenAiError::from(Error::App(AppError::invalid("maxTokens", "too many")));
        assert_eq!(error.param.as_deref(), Some("max_tokens"));
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
    }
}
