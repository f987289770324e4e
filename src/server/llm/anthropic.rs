//! Anthropic Claude adapter (Messages API): translation only.
//!
//! API: <https://docs.anthropic.com/en/api/messages>,
//! streaming: <https://docs.anthropic.com/en/api/messages-streaming>,
//! errors: <https://docs.anthropic.com/en/api/errors>,
//! models: <https://docs.anthropic.com/en/docs/about-claude/models>,
//! pricing: <https://www.anthropic.com/pricing#anthropic-api>.

use secrecy::SecretString;
use serde_json::{json, Map, Value};

use super::error::{ErrorDetail, LlmError};
use super::executor::{DetailExtractor, HttpRequest};
use super::stream::{Frame, Framing, StreamDecoder};
use super::types::{
    ContentPart, FinishReason, GenerateRequest, GenerateResponse, ModelInfo, Role, StreamEvent,
    TokenCount, ToolCall, ToolChoice, Usage,
};
use super::wire::{
    in_band_error, parse_json, parse_model_list, push_text, put_parameters, require_end, str_at,
    trim_base, u64_at, ParamNames,
};
use super::{Adapter, ProviderId};

/// The API version header value every request carries.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// `max_tokens` is mandatory on Anthropic; used when neither the request nor the limits give one.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

const ID: ProviderId = ProviderId::Claude;

const PARAMS: ParamNames = ParamNames {
    temperature: "temperature",
    top_p: "top_p",
    top_k: Some("top_k"),
    max_tokens: "max_tokens",
    stop: "stop_sequences",
    penalties: None,
};

/// Translates unified requests to the Messages API and back.
pub struct AnthropicAdapter {
    base_url: String,
    api_key: Option<SecretString>,
}

impl AnthropicAdapter {
    /// Adapter for `base_url` (e.g. `https://api.anthropic.com`) with an optional key.
    pub fn new(base_url: &str, api_key: Option<SecretString>) -> Self {
        Self {
            base_url: trim_base(base_url, "/v1"),
            api_key,
        }
    }

    fn request(&self, req: HttpRequest) -> HttpRequest {
        req.secret_header("x-api-key", "", self.api_key.as_ref())
            .header("anthropic-version", ANTHROPIC_VERSION)
    }

    fn body(req: &GenerateRequest) -> Value {
        let system: Vec<String> = req
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.joined_text())
            .collect();
        let messages: Vec<Value> = req
            .messages
            .iter()
            .filter(|m| m.role != Role::System)
            .map(|m| {
                let mut blocks: Vec<Value> = m.content.iter().map(content_block).collect();
                let role = match m.role {
                    Role::Assistant => "assistant",
                    _ => "user",
                };
                if m.role == Role::Tool {
                    blocks = vec![json!({
                        "type": "tool_result",
                        "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                        "content": m.joined_text(),
                    })];
                }
                blocks.extend(m.tool_calls.iter().map(|c| {
                    json!({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})
                }));
                json!({"role": role, "content": blocks})
            })
            .collect();
        let mut body = Map::new();
        body.insert("model".into(), json!(req.model));
        if !system.is_empty() {
            body.insert("system".into(), json!(system.join("\n\n")));
        }
        body.insert("messages".into(), json!(messages));
        put_parameters(&mut body, ProviderId::Claude, &req.parameters, &PARAMS);
        // NOTE: `max_tokens` is required by the Messages API.
        let default_max = req
            .limits
            .map_or(DEFAULT_MAX_TOKENS, |l| l.max_output_tokens);
        body.entry("max_tokens").or_insert(json!(default_max));
        if !req.tools.is_empty() {
            let tools: Vec<Value> = req
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
                .collect();
            body.insert("tools".into(), json!(tools));
            let choice = match &req.tool_choice {
                ToolChoice::Auto => json!({"type": "auto"}),
                ToolChoice::None => json!({"type": "none"}),
                ToolChoice::Required => json!({"type": "any"}),
                ToolChoice::Tool { name } => json!({"type": "tool", "name": name}),
            };
            body.insert("tool_choice".into(), choice);
        }
        Value::Object(body)
    }
}

fn content_block(part: &ContentPart) -> Value {
    match part {
        ContentPart::Text { text } => json!({"type": "text", "text": text}),
        ContentPart::Image { media_type, data } => json!({
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }),
    }
}

/// Maps Anthropic `stop_reason` to the unified finish reason.
fn finish_reason(stop_reason: &str) -> FinishReason {
    match stop_reason {
        "end_turn" | "stop_sequence" | "pause_turn" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

/// Anthropic usage: `input_tokens` already excludes cache reads and writes.
fn usage(raw: &Value) -> Usage {
    Usage {
        input_tokens: u64_at(raw, "/input_tokens"),
        cache_read_tokens: u64_at(raw, "/cache_read_input_tokens"),
        cache_write_tokens: u64_at(raw, "/cache_creation_input_tokens"),
        output_tokens: u64_at(raw, "/output_tokens"),
        reasoning_tokens: 0,
        raw: raw.clone(),
    }
}

/// Reads `{"type":"error","error":{"type","message"}}`.
fn error_detail(v: &Value) -> Option<ErrorDetail> {
    let err = v.get("error")?;
    Some(ErrorDetail {
        codes: str_at(err, "/type")
            .map(str::to_owned)
            .into_iter()
            .collect(),
        message: str_at(err, "/message").unwrap_or_default().to_owned(),
        retry_delay: None,
    })
}

impl Adapter for AnthropicAdapter {
    fn id(&self) -> ProviderId {
        ID
    }

    fn chat_request(&self, req: &GenerateRequest, stream: bool) -> Result<HttpRequest, LlmError> {
        let mut body = Self::body(req);
        if stream {
            body["stream"] = json!(true);
        }
        Ok(self.request(HttpRequest::post(
            format!("{}/v1/messages", self.base_url),
            body,
        )))
    }

    fn parse_response(
        &self,
        _req: &GenerateRequest,
        body: &[u8],
    ) -> Result<GenerateResponse, LlmError> {
        let v = parse_json(ID, "response", body)?;
        let mut content = Vec::new();
        let mut tool_calls = Vec::new();
        for block in v["content"].as_array().into_iter().flatten() {
            match str_at(block, "/type") {
                Some("text") => content.push(ContentPart::text(
                    str_at(block, "/text").unwrap_or_default(),
                )),
                Some("tool_use") => tool_calls.push(ToolCall {
                    id: str_at(block, "/id").unwrap_or_default().to_owned(),
                    name: str_at(block, "/name").unwrap_or_default().to_owned(),
                    arguments: block["input"].clone(),
                }),
                _ => {}
            }
        }
        let Some(model) = str_at(&v, "/model") else {
            return Err(LlmError::malformed(
                ID,
                "response",
                "no model",
                &String::from_utf8_lossy(body),
            ));
        };
        Ok(GenerateResponse {
            id: str_at(&v, "/id").map(str::to_owned),
            model: model.to_owned(),
            content,
            tool_calls,
            finish_reason: finish_reason(str_at(&v, "/stop_reason").unwrap_or_default()),
            usage: usage(&v["usage"]),
        })
    }

    fn framing(&self) -> Framing {
        Framing::Sse
    }

    fn stream_decoder(&self, _req: &GenerateRequest) -> Box<dyn StreamDecoder> {
        Box::<Decoder>::default()
    }

    fn error_extractor(&self) -> DetailExtractor {
        error_detail
    }

    fn models_request(&self) -> HttpRequest {
        self.request(HttpRequest::get(format!(
            "{}/v1/models?limit=1000",
            self.base_url
        )))
    }

    fn parse_models(&self, body: &[u8]) -> Result<Vec<ModelInfo>, LlmError> {
        parse_model_list(ID, body, "/data", "/id", Some("/display_name"))
    }

    fn count_tokens_request(&self, req: &GenerateRequest) -> Option<Result<HttpRequest, LlmError>> {
        let mut body = Self::body(req);
        if let Some(obj) = body.as_object_mut() {
            obj.retain(|k, _| {
                matches!(
                    k.as_str(),
                    "model" | "messages" | "system" | "tools" | "tool_choice"
                )
            });
        }
        Some(Ok(self.request(HttpRequest::post(
            format!("{}/v1/messages/count_tokens", self.base_url),
            body,
        ))))
    }

    fn parse_token_count(&self, body: &[u8]) -> Result<TokenCount, LlmError> {
        let v = parse_json(ID, "token count", body)?;
        match v["input_tokens"].as_u64() {
            Some(tokens) => Ok(TokenCount {
                tokens,
                exact: true,
            }),
            None => Err(LlmError::malformed(
                ID,
                "token count",
                "no input_tokens",
                &v.to_string(),
            )),
        }
    }
}

/// Anthropic SSE decoder: `message_start` … `message_stop`, with `ping` and `error` events.
#[derive(Default)]
struct Decoder {
    usage: Map<String, Value>,
    stop_reason: Option<String>,
    /// Content-block index → tool-call ordinal.
    tool_index: Vec<(u64, u32)>,
    done: bool,
}

impl StreamDecoder for Decoder {
    fn frame(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<(), LlmError> {
        if matches!(frame.event.as_str(), "ping") || self.done {
            return Ok(());
        }
        let v = parse_json(ID, "stream event", frame.data.as_bytes())?;
        if frame.event == "error" {
            in_band_error(ID, error_detail(&v), &frame.data)?;
            return Err(LlmError::malformed(
                ID,
                "error event",
                "unknown shape",
                &frame.data,
            ));
        }
        match str_at(&v, "/type").unwrap_or(frame.event.as_str()) {
            "message_start" => {
                if let Some(u) = v.pointer("/message/usage").and_then(Value::as_object) {
                    self.usage.extend(u.clone());
                }
                out.push(StreamEvent::Start {
                    id: str_at(&v, "/message/id").map(str::to_owned),
                    model: str_at(&v, "/message/model").unwrap_or_default().to_owned(),
                });
            }
            "content_block_start" => {
                let block = &v["content_block"];
                match str_at(block, "/type") {
                    Some("tool_use") => {
                        let ordinal = self.tool_index.len() as u32;
                        self.tool_index.push((u64_at(&v, "/index"), ordinal));
                        out.push(StreamEvent::ToolCallDelta {
                            index: ordinal,
                            id: str_at(block, "/id").map(str::to_owned),
                            name: str_at(block, "/name").map(str::to_owned),
                            arguments: String::new(),
                        });
                    }
                    Some("text") => push_text(out, str_at(block, "/text")),
                    _ => {}
                }
            }
            "content_block_delta" => match str_at(&v, "/delta/type") {
                Some("text_delta") => push_text(out, str_at(&v, "/delta/text")),
                Some("input_json_delta") => {
                    let block = u64_at(&v, "/index");
                    let partial = str_at(&v, "/delta/partial_json").unwrap_or_default();
                    let ordinal = self
                        .tool_index
                        .iter()
                        .find(|(b, _)| *b == block)
                        .map(|(_, o)| *o);
                    if let (Some(index), false) = (ordinal, partial.is_empty()) {
                        out.push(StreamEvent::ToolCallDelta {
                            index,
                            id: None,
                            name: None,
                            arguments: partial.to_owned(),
                        });
                    }
                }
                _ => {}
            },
            "message_delta" => {
                if let Some(reason) = str_at(&v, "/delta/stop_reason") {
                    self.stop_reason = Some(reason.to_owned());
                }
                // NOTE: message_delta usage figures are cumulative totals, so they replace.
                if let Some(u) = v.get("usage").and_then(Value::as_object) {
                    self.usage.extend(u.clone());
                }
            }
            "message_stop" => {
                self.done = true;
                out.push(StreamEvent::Usage {
                    usage: usage(&Value::Object(std::mem::take(&mut self.usage))),
                });
                out.push(StreamEvent::Finish {
                    reason: finish_reason(self.stop_reason.as_deref().unwrap_or_default()),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), LlmError> {
        require_end(self.done, ID, "message_stop")
    }
}

#[cfg(test)]
mod tests;
