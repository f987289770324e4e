//! OpenAI GPT adapter (Chat Completions): translation only. The same translation serves
//! Llama behind any OpenAI-compatible server (llama.cpp, vLLM, Ollama `/v1`).
//!
//! API: <https://platform.openai.com/docs/api-reference/chat>,
//! streaming: <https://platform.openai.com/docs/api-reference/chat-streaming>,
//! errors: <https://platform.openai.com/docs/guides/error-codes>,
//! models: <https://platform.openai.com/docs/models>,
//! pricing: <https://openai.com/api/pricing/>,
//! Ollama compatibility: <https://github.com/ollama/ollama/blob/main/docs/openai.md>.

use secrecy::SecretString;
use serde_json::{json, Map, Value};

use super::error::{ErrorDetail, LlmError};
use super::executor::{DetailExtractor, HttpRequest};
use super::stream::{Frame, Framing, StreamDecoder};
use super::types::{
    ContentPart, FinishReason, GenerateRequest, GenerateResponse, ModelInfo, ResponseFormat, Role,
    StreamEvent, ToolCall, ToolChoice, Usage,
};
use super::wire::{
    in_band_error, parse_json, parse_model_list, push_text, put_parameters, require_end, str_at,
    trim_base, u64_at, ParamNames,
};
use super::{Adapter, ProviderId};

const OPENAI_PARAMS: ParamNames = ParamNames {
    temperature: "temperature",
    top_p: "top_p",
    top_k: None,
    max_tokens: "max_completion_tokens",
    stop: "stop",
    penalties: Some(("frequency_penalty", "presence_penalty")),
};

const COMPATIBLE_PARAMS: ParamNames = ParamNames {
    top_k: Some("top_k"),
    max_tokens: "max_tokens",
    ..OPENAI_PARAMS
};

/// Translates unified requests to Chat Completions and back.
pub struct OpenAiAdapter {
    provider: ProviderId,
    base_url: String,
    api_key: Option<SecretString>,
}

impl OpenAiAdapter {
    /// Adapter for `provider` (OpenAI itself, or Llama on a compatible server) at `base_url`.
    pub fn new(provider: ProviderId, base_url: &str, api_key: Option<SecretString>) -> Self {
        Self {
            provider,
            base_url: trim_base(base_url, "/v1"),
            api_key,
        }
    }

    fn request(&self, req: HttpRequest) -> HttpRequest {
        req.secret_header("authorization", "Bearer ", self.api_key.as_ref())
    }

    fn body(&self, req: &GenerateRequest, stream: bool) -> Value {
        let messages: Vec<Value> = req.messages.iter().map(message).collect();
        let mut body = Map::new();
        body.insert("model".into(), json!(req.model));
        body.insert("messages".into(), json!(messages));
        // NOTE: OpenAI deprecated `max_tokens` for `max_completion_tokens`; compatible servers
        // (Ollama /v1, llama.cpp, vLLM) only know `max_tokens`, and accept `top_k`.
        let names = if self.provider == ProviderId::OpenAi {
            &OPENAI_PARAMS
        } else {
            &COMPATIBLE_PARAMS
        };
        put_parameters(&mut body, self.provider, &req.parameters, names);
        if !req.tools.is_empty() {
            let tools: Vec<Value> = req
                .tools
                .iter()
                .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
                .collect();
            body.insert("tools".into(), json!(tools));
            let choice = match &req.tool_choice {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Tool { name } => {
                    json!({"type": "function", "function": {"name": name}})
                }
            };
            body.insert("tool_choice".into(), choice);
        }
        match &req.response_format {
            ResponseFormat::Text => {}
            ResponseFormat::JsonObject => {
                body.insert("response_format".into(), json!({"type": "json_object"}));
            }
            ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            } => {
                body.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}}),
                );
            }
        }
        if stream {
            body.insert("stream".into(), json!(true));
            body.insert("stream_options".into(), json!({"include_usage": true}));
        }
        Value::Object(body)
    }
}

fn message(m: &super::types::Message) -> Value {
    match m.role {
        Role::System => json!({"role": "system", "content": m.joined_text()}),
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": m.tool_call_id.clone().unwrap_or_default(),
            "content": m.joined_text(),
        }),
        Role::Assistant => {
            let mut msg = json!({"role": "assistant", "content": m.joined_text()});
            if !m.tool_calls.is_empty() {
                if m.content.is_empty() {
                    msg["content"] = Value::Null;
                }
                msg["tool_calls"] = m
                    .tool_calls
                    .iter()
                    .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments.to_string()}}))
                    .collect();
            }
            msg
        }
        Role::User => {
            let has_image = m
                .content
                .iter()
                .any(|p| matches!(p, ContentPart::Image { .. }));
            if !has_image {
                return json!({"role": "user", "content": m.joined_text()});
            }
            let parts: Vec<Value> = m
                .content
                .iter()
                .map(|p| match p {
                    ContentPart::Text { text } => json!({"type": "text", "text": text}),
                    ContentPart::Image { media_type, data } => json!({
                        "type": "image_url",
                        "image_url": {"url": format!("data:{media_type};base64,{data}")},
                    }),
                })
                .collect();
            json!({"role": "user", "content": parts})
        }
    }
}

/// Maps OpenAI `finish_reason` to the unified finish reason.
fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

/// OpenAI usage: `cached_tokens` and `reasoning_tokens` are *inside* the prompt/completion totals.
fn usage(raw: &Value) -> Usage {
    let prompt = u64_at(raw, "/prompt_tokens");
    let cached = u64_at(raw, "/prompt_tokens_details/cached_tokens");
    Usage {
        input_tokens: prompt.saturating_sub(cached),
        cache_read_tokens: cached,
        cache_write_tokens: 0,
        output_tokens: u64_at(raw, "/completion_tokens"),
        reasoning_tokens: u64_at(raw, "/completion_tokens_details/reasoning_tokens"),
        raw: raw.clone(),
    }
}

/// Reads `{"error":{"message","type","param","code"}}`, or `{"error":"..."}` from compatible servers.
fn error_detail(v: &Value) -> Option<ErrorDetail> {
    let err = v.get("error")?;
    if let Some(message) = err.as_str() {
        return Some(ErrorDetail {
            message: message.to_owned(),
            ..ErrorDetail::default()
        });
    }
    Some(ErrorDetail {
        codes: ["/type", "/code"]
            .iter()
            .filter_map(|p| str_at(err, p).map(str::to_owned))
            .collect(),
        message: str_at(err, "/message").unwrap_or_default().to_owned(),
        retry_delay: None,
    })
}

fn tool_call(provider: ProviderId, call: &Value) -> Result<ToolCall, LlmError> {
    let raw_args = str_at(call, "/function/arguments").unwrap_or("{}");
    let arguments = serde_json::from_str(raw_args)
        .map_err(|err| LlmError::malformed(provider, "tool call arguments", err, raw_args))?;
    Ok(ToolCall {
        id: str_at(call, "/id").unwrap_or_default().to_owned(),
        name: str_at(call, "/function/name")
            .unwrap_or_default()
            .to_owned(),
        arguments,
    })
}

impl Adapter for OpenAiAdapter {
    fn id(&self) -> ProviderId {
        self.provider
    }

    fn chat_request(&self, req: &GenerateRequest, stream: bool) -> Result<HttpRequest, LlmError> {
        Ok(self.request(HttpRequest::post(
            format!("{}/v1/chat/completions", self.base_url),
            self.body(req, stream),
        )))
    }

    fn parse_response(
        &self,
        _req: &GenerateRequest,
        body: &[u8],
    ) -> Result<GenerateResponse, LlmError> {
        let v = parse_json(self.provider, "response", body)?;
        let Some(choice) = v.pointer("/choices/0") else {
            return Err(LlmError::malformed(
                self.provider,
                "response",
                "no choices",
                &String::from_utf8_lossy(body),
            ));
        };
        let content = str_at(choice, "/message/content")
            .filter(|t| !t.is_empty())
            .map(|t| vec![ContentPart::text(t)])
            .unwrap_or_default();
        let tool_calls = choice
            .pointer("/message/tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| tool_call(self.provider, c))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GenerateResponse {
            id: str_at(&v, "/id").map(str::to_owned),
            model: str_at(&v, "/model").unwrap_or_default().to_owned(),
            content,
            tool_calls,
            finish_reason: finish_reason(str_at(choice, "/finish_reason").unwrap_or_default()),
            usage: usage(&v["usage"]),
        })
    }

    fn framing(&self) -> Framing {
        Framing::Sse
    }

    fn stream_decoder(&self, _req: &GenerateRequest) -> Box<dyn StreamDecoder> {
        Box::new(Decoder {
            provider: self.provider,
            started: false,
            finish: None,
            usage: None,
            done: false,
        })
    }

    fn error_extractor(&self) -> DetailExtractor {
        error_detail
    }

    fn models_request(&self) -> HttpRequest {
        self.request(HttpRequest::get(format!("{}/v1/models", self.base_url)))
    }

    fn parse_models(&self, body: &[u8]) -> Result<Vec<ModelInfo>, LlmError> {
        parse_model_list(self.provider, body, "/data", "/id", None)
    }
}

/// Chat Completions SSE decoder: data-only chunks ending with `data: [DONE]`.
struct Decoder {
    provider: ProviderId,
    started: bool,
    finish: Option<FinishReason>,
    usage: Option<Value>,
    done: bool,
}

impl StreamDecoder for Decoder {
    fn frame(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        if frame.data.trim() == "[DONE]" {
            self.done = true;
            if let Some(raw) = self.usage.take() {
                out.push(StreamEvent::Usage { usage: usage(&raw) });
            }
            out.push(StreamEvent::Finish {
                reason: self.finish.unwrap_or(FinishReason::Other),
            });
            return Ok(());
        }
        let v = parse_json(self.provider, "stream chunk", frame.data.as_bytes())?;
        in_band_error(self.provider, error_detail(&v), &frame.data)?;
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: str_at(&v, "/id").map(str::to_owned),
                model: str_at(&v, "/model").unwrap_or_default().to_owned(),
            });
        }
        if let Some(choice) = v.pointer("/choices/0") {
            push_text(out, str_at(choice, "/delta/content"));
            for call in choice
                .pointer("/delta/tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.push(StreamEvent::ToolCallDelta {
                    index: u64_at(call, "/index") as u32,
                    id: str_at(call, "/id").map(str::to_owned),
                    name: str_at(call, "/function/name").map(str::to_owned),
                    arguments: str_at(call, "/function/arguments")
                        .unwrap_or_default()
                        .to_owned(),
                });
            }
            if let Some(reason) = str_at(choice, "/finish_reason") {
                self.finish = Some(finish_reason(reason));
            }
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(u.clone());
        }
        Ok(())
    }

    fn end(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), LlmError> {
        require_end(self.done, self.provider, "[DONE]")
    }
}

#[cfg(test)]
mod tests;
