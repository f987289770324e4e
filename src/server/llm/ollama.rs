//! Meta Llama through Ollama's native API (`/api/chat`, NDJSON): translation only.
//! No key is required and nothing is called besides the configured base URL. Llama on
//! OpenAI-compatible servers uses [`super::openai::OpenAiAdapter`] instead.
//!
//! API: <https://github.com/ollama/ollama/blob/main/docs/api.md#generate-a-chat-completion>,
//! models: <https://ollama.com/library/llama3.2>, <https://www.llama.com/docs/model-cards-and-prompt-formats/>,
//! pricing: self-hosted (no per-token price); hosted prices vary by provider, see
//! <https://www.llama.com/docs/getting-the-models/>.

use secrecy::SecretString;
use serde_json::{json, Map, Value};

use super::error::{ErrorDetail, LlmError};
use super::executor::{DetailExtractor, HttpRequest};
use super::stream::{Frame, Framing, StreamDecoder};
use super::types::{
    ContentPart, FinishReason, GenerateRequest, GenerateResponse, ModelInfo, ResponseFormat, Role,
    StreamEvent, ToolCall, Usage,
};
use super::wire::{
    in_band_error, parse_json, parse_model_list, push_text, put_parameters, require_end, str_at,
    synthetic_call_id, trim_base, u64_at, ParamNames,
};
use super::{Adapter, ProviderId};

const ID: ProviderId = ProviderId::Llama;

const PARAMS: ParamNames = ParamNames {
    temperature: "temperature",
    top_p: "top_p",
    top_k: Some("top_k"),
    max_tokens: "num_predict",
    stop: "stop",
    penalties: None,
};

/// Translates unified requests to Ollama `/api/chat` and back.
pub struct OllamaAdapter {
    base_url: String,
    api_key: Option<SecretString>,
}

impl OllamaAdapter {
    /// Adapter for `base_url` (e.g. `http://127.0.0.1:11434`); a key is only sent if given
    /// (for deployments behind an authenticating proxy).
    pub fn new(base_url: &str, api_key: Option<SecretString>) -> Self {
        Self {
            base_url: trim_base(base_url, "/api"),
            api_key,
        }
    }

    fn request(&self, req: HttpRequest) -> HttpRequest {
        req.secret_header("authorization", "Bearer ", self.api_key.as_ref())
    }
}

fn body(req: &GenerateRequest, stream: bool) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
                Role::Tool => "tool",
            };
            let mut msg = json!({"role": role, "content": m.joined_text()});
            let images: Vec<&str> = m
                .content
                .iter()
                .filter_map(|p| match p {
                    ContentPart::Image { data, .. } => Some(data.as_str()),
                    ContentPart::Text { .. } => None,
                })
                .collect();
            if !images.is_empty() {
                msg["images"] = json!(images);
            }
            if !m.tool_calls.is_empty() {
                msg["tool_calls"] = m
                    .tool_calls
                    .iter()
                    .map(|c| json!({"function": {"name": c.name, "arguments": c.arguments}}))
                    .collect();
            }
            msg
        })
        .collect();
    let mut options = Map::new();
    put_parameters(&mut options, ProviderId::Llama, &req.parameters, &PARAMS);
    let mut body = json!({"model": req.model, "messages": messages, "stream": stream});
    if !options.is_empty() {
        body["options"] = Value::Object(options);
    }
    // Ollama's `format`: "json", or a JSON Schema (structured outputs).
    match &req.response_format {
        ResponseFormat::Text => {}
        ResponseFormat::JsonObject => body["format"] = json!("json"),
        ResponseFormat::JsonSchema { schema, .. } => body["format"] = schema.clone(),
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
            .collect();
    }
    body
}

/// Maps Ollama `done_reason`; tool calls end with `stop`, so calls made decide.
fn finish_reason(reason: &str, called_tools: bool) -> FinishReason {
    match reason {
        _ if called_tools => FinishReason::ToolCalls,
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        _ => FinishReason::Other,
    }
}

/// Ollama usage: `prompt_eval_count` in, `eval_count` out; no cache figures.
fn usage(v: &Value) -> Usage {
    let raw: Map<String, Value> = v
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.ends_with("_count") || k.ends_with("_duration"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Usage {
        input_tokens: u64_at(v, "/prompt_eval_count"),
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        output_tokens: u64_at(v, "/eval_count"),
        reasoning_tokens: 0,
        raw: Value::Object(raw),
    }
}

/// Reads `{"error":"..."}`.
fn error_detail(v: &Value) -> Option<ErrorDetail> {
    Some(ErrorDetail {
        message: v.get("error")?.as_str()?.to_owned(),
        ..ErrorDetail::default()
    })
}

fn tool_calls(message: &Value, first_index: usize) -> Vec<ToolCall> {
    message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| ToolCall {
            id: synthetic_call_id(first_index + i),
            name: str_at(c, "/function/name").unwrap_or_default().to_owned(),
            arguments: c
                .pointer("/function/arguments")
                .cloned()
                .unwrap_or_else(|| json!({})),
        })
        .collect()
}

impl Adapter for OllamaAdapter {
    fn id(&self) -> ProviderId {
        ID
    }

    fn chat_request(&self, req: &GenerateRequest, stream: bool) -> Result<HttpRequest, LlmError> {
        Ok(self.request(HttpRequest::post(
            format!("{}/api/chat", self.base_url),
            body(req, stream),
        )))
    }

    fn parse_response(
        &self,
        _req: &GenerateRequest,
        body: &[u8],
    ) -> Result<GenerateResponse, LlmError> {
        let v = parse_json(ID, "response", body)?;
        let text = str_at(&v, "/message/content").unwrap_or_default();
        let calls = tool_calls(&v["message"], 0);
        Ok(GenerateResponse {
            id: None,
            model: str_at(&v, "/model").unwrap_or_default().to_owned(),
            content: (!text.is_empty())
                .then(|| ContentPart::text(text))
                .into_iter()
                .collect(),
            finish_reason: finish_reason(
                str_at(&v, "/done_reason").unwrap_or_default(),
                !calls.is_empty(),
            ),
            tool_calls: calls,
            usage: usage(&v),
        })
    }

    fn framing(&self) -> Framing {
        Framing::Ndjson
    }

    fn stream_decoder(&self, _req: &GenerateRequest) -> Box<dyn StreamDecoder> {
        Box::new(Decoder {
            started: false,
            calls: 0,
            done: false,
        })
    }

    fn error_extractor(&self) -> DetailExtractor {
        error_detail
    }

    fn models_request(&self) -> HttpRequest {
        self.request(HttpRequest::get(format!("{}/api/tags", self.base_url)))
    }

    fn parse_models(&self, body: &[u8]) -> Result<Vec<ModelInfo>, LlmError> {
        parse_model_list(ID, body, "/models", "/name", None)
    }
}

/// Ollama NDJSON decoder: lines until one with `"done": true`.
struct Decoder {
    started: bool,
    calls: usize,
    done: bool,
}

impl StreamDecoder for Decoder {
    fn frame(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<(), LlmError> {
        let v = parse_json(ID, "stream line", frame.data.as_bytes())?;
        in_band_error(ID, error_detail(&v), &frame.data)?;
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: None,
                model: str_at(&v, "/model").unwrap_or_default().to_owned(),
            });
        }
        push_text(out, str_at(&v, "/message/content"));
        for call in tool_calls(&v["message"], self.calls) {
            out.push(StreamEvent::ToolCallDelta {
                index: self.calls as u32,
                id: Some(call.id),
                name: Some(call.name),
                arguments: call.arguments.to_string(),
            });
            self.calls += 1;
        }
        if v["done"].as_bool() == Some(true) {
            self.done = true;
            out.push(StreamEvent::Usage { usage: usage(&v) });
            out.push(StreamEvent::Finish {
                reason: finish_reason(
                    str_at(&v, "/done_reason").unwrap_or_default(),
                    self.calls > 0,
                ),
            });
        }
        Ok(())
    }

    fn end(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), LlmError> {
        require_end(self.done, ID, "the done line")
    }
}

#[cfg(test)]
mod tests;
