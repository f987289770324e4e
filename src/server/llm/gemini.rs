//! Google Gemini adapter (Generative Language API `generateContent`): translation only.
//! The key travels in the `x-goog-api-key` header, never in the URL.
//!
//! API: <https://ai.google.dev/api/generate-content>,
//! streaming: <https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent>,
//! errors: <https://ai.google.dev/gemini-api/docs/troubleshooting>,
//! models: <https://ai.google.dev/gemini-api/docs/models>,
//! pricing: <https://ai.google.dev/gemini-api/docs/pricing>.

use std::collections::HashMap;

use secrecy::SecretString;
use serde_json::{json, Map, Value};

use super::error::{parse_proto_duration, ErrorDetail, ErrorKind, LlmError};
use super::executor::{DetailExtractor, HttpRequest};
use super::stream::{Frame, Framing, StreamDecoder};
use super::types::{
    ContentPart, FinishReason, GenerateRequest, GenerateResponse, ModelInfo, ResponseFormat, Role,
    StreamEvent, TokenCount, ToolCall, ToolChoice, Usage,
};
use super::wire::{
    ended_early, in_band_error, parse_json, parse_model_list, push_text, put_parameters, str_at,
    synthetic_call_id, trim_base, u64_at, ParamNames,
};
use super::{Adapter, ProviderId};

const ID: ProviderId = ProviderId::Gemini;

const PARAMS: ParamNames = ParamNames {
    temperature: "temperature",
    top_p: "topP",
    top_k: Some("topK"),
    max_tokens: "maxOutputTokens",
    stop: "stopSequences",
    penalties: None,
};

/// Translates unified requests to `generateContent` and back.
pub struct GeminiAdapter {
    base_url: String,
    api_key: Option<SecretString>,
}

impl GeminiAdapter {
    /// Adapter for `base_url` (e.g. `https://generativelanguage.googleapis.com`).
    pub fn new(base_url: &str, api_key: Option<SecretString>) -> Self {
        Self {
            base_url: trim_base(base_url, "/v1beta"),
            api_key,
        }
    }

    fn request(&self, req: HttpRequest) -> HttpRequest {
        req.secret_header("x-goog-api-key", "", self.api_key.as_ref())
    }

    fn model_url(&self, model: &str, method: &str) -> String {
        let model = model.strip_prefix("models/").unwrap_or(model);
        format!("{}/v1beta/models/{model}:{method}", self.base_url)
    }

    fn body(req: &GenerateRequest) -> Value {
        let mut body = Map::new();
        body.insert("contents".into(), json!(contents(req)));
        let system: Vec<Value> = req
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| json!({"text": m.joined_text()}))
            .collect();
        if !system.is_empty() {
            body.insert("systemInstruction".into(), json!({"parts": system}));
        }
        let p = &req.parameters;
        let mut config = Map::new();
        put_parameters(&mut config, ProviderId::Gemini, p, &PARAMS);
        // JSON output: the MIME type, and a schema in `responseJsonSchema` (plain
        // JSON Schema, unlike `responseSchema`'s OpenAPI subset).
        match &req.response_format {
            ResponseFormat::Text => {}
            ResponseFormat::JsonObject => {
                config.insert("responseMimeType".into(), json!("application/json"));
            }
            ResponseFormat::JsonSchema { schema, .. } => {
                config.insert("responseMimeType".into(), json!("application/json"));
                config.insert("responseJsonSchema".into(), schema.clone());
            }
        }
        if !config.is_empty() {
            body.insert("generationConfig".into(), Value::Object(config));
        }
        if !p.safety_settings.is_empty() {
            let settings: Vec<Value> = p
                .safety_settings
                .iter()
                .map(|s| json!({"category": s.category, "threshold": s.threshold}))
                .collect();
            body.insert("safetySettings".into(), json!(settings));
        }
        let mut tools = Vec::new();
        if !req.tools.is_empty() {
            let decls: Vec<Value> = req
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters}))
                .collect();
            tools.push(json!({"functionDeclarations": decls}));
            let config = match &req.tool_choice {
                ToolChoice::Auto => json!({"mode": "AUTO"}),
                ToolChoice::None => json!({"mode": "NONE"}),
                ToolChoice::Required => json!({"mode": "ANY"}),
                ToolChoice::Tool { name } => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
            };
            body.insert(
                "toolConfig".into(),
                json!({"functionCallingConfig": config}),
            );
        }
        if p.google_search {
            tools.push(json!({"googleSearch": {}}));
        }
        if !tools.is_empty() {
            body.insert("tools".into(), json!(tools));
        }
        Value::Object(body)
    }
}

/// Builds `contents`, merging consecutive turns of the same role (Gemini wants alternation)
/// and naming each `functionResponse` after the call it answers.
fn contents(req: &GenerateRequest) -> Vec<Value> {
    let names: HashMap<&str, &str> = req
        .messages
        .iter()
        .flat_map(|m| m.tool_calls.iter())
        .map(|c| (c.id.as_str(), c.name.as_str()))
        .collect();
    let mut out: Vec<(&str, Vec<Value>)> = Vec::new();
    for m in req.messages.iter().filter(|m| m.role != Role::System) {
        let role = if m.role == Role::Assistant {
            "model"
        } else {
            "user"
        };
        let mut parts: Vec<Value> = Vec::new();
        if m.role == Role::Tool {
            let id = m.tool_call_id.as_deref().unwrap_or_default();
            let text = m.joined_text();
            let result = serde_json::from_str::<Value>(&text)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({"result": text}));
            parts.push(json!({"functionResponse": {"name": names.get(id).copied().unwrap_or(id), "response": result}}));
        } else {
            parts.extend(m.content.iter().map(|p| match p {
                ContentPart::Text { text } => json!({"text": text}),
                ContentPart::Image { media_type, data } => {
                    json!({"inlineData": {"mimeType": media_type, "data": data}})
                }
            }));
            parts.extend(
                m.tool_calls
                    .iter()
                    .map(|c| json!({"functionCall": {"name": c.name, "args": c.arguments}})),
            );
        }
        match out.last_mut() {
            Some((last_role, last_parts)) if *last_role == role => last_parts.extend(parts),
            _ => out.push((role, parts)),
        }
    }
    out.into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect()
}

/// Maps Gemini `finishReason`; a `STOP` after function calls means tool calls.
fn finish_reason(reason: &str, called_tools: bool) -> FinishReason {
    match reason {
        "STOP" if called_tools => FinishReason::ToolCalls,
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            FinishReason::ContentFilter
        }
        _ => FinishReason::Other,
    }
}

/// Gemini usage: `cachedContentTokenCount` is inside `promptTokenCount`, while
/// `thoughtsTokenCount` is *outside* `candidatesTokenCount` (both billed as output).
fn usage(raw: &Value) -> Usage {
    let prompt = u64_at(raw, "/promptTokenCount") + u64_at(raw, "/toolUsePromptTokenCount");
    let cached = u64_at(raw, "/cachedContentTokenCount");
    let thoughts = u64_at(raw, "/thoughtsTokenCount");
    Usage {
        input_tokens: prompt.saturating_sub(cached),
        cache_read_tokens: cached,
        cache_write_tokens: 0,
        output_tokens: u64_at(raw, "/candidatesTokenCount") + thoughts,
        reasoning_tokens: thoughts,
        raw: raw.clone(),
    }
}

/// Reads `{"error":{"code","message","status","details":[…]}}`, including `RetryInfo.retryDelay`
/// and `ErrorInfo.reason`.
fn error_detail(v: &Value) -> Option<ErrorDetail> {
    let err = v.get("error")?;
    let mut detail = ErrorDetail {
        codes: str_at(err, "/status")
            .map(str::to_owned)
            .into_iter()
            .collect(),
        message: str_at(err, "/message").unwrap_or_default().to_owned(),
        retry_delay: None,
    };
    for d in err["details"].as_array().into_iter().flatten() {
        if let Some(reason) = str_at(d, "/reason") {
            detail.codes.push(reason.to_owned());
        }
        // NOTE: a per-day quota will not reset within a retry; name it like OpenAI does.
        let per_day = d["violations"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| str_at(v, "/quotaId").is_some_and(|q| q.contains("PerDay")));
        if per_day {
            detail.codes.push("insufficient_quota".to_owned());
        }
        if let Some(delay) = str_at(d, "/retryDelay") {
            detail.retry_delay = parse_proto_duration(delay);
        }
    }
    Some(detail)
}

/// A prompt blocked by safety comes back as HTTP 200 with `promptFeedback.blockReason`.
fn blocked(v: &Value, raw: &str) -> Option<LlmError> {
    let reason = str_at(v, "/promptFeedback/blockReason")?;
    Some(LlmError {
        raw_body: Some(raw.to_owned()),
        ..LlmError::new(
            ID,
            ErrorKind::ContentFiltered,
            format!("prompt blocked: {reason}"),
        )
    })
}

/// Text parts and function calls of the first candidate; `first_index` numbers the calls.
fn parts(v: &Value, first_index: usize) -> (Vec<String>, Vec<ToolCall>) {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    for part in v
        .pointer("/candidates/0/content/parts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(text) = str_at(part, "/text") {
            texts.push(text.to_owned());
        }
        if let Some(call) = part.get("functionCall") {
            calls.push(ToolCall {
                id: str_at(call, "/id")
                    .map(str::to_owned)
                    .unwrap_or_else(|| synthetic_call_id(first_index + calls.len())),
                name: str_at(call, "/name").unwrap_or_default().to_owned(),
                arguments: call.get("args").cloned().unwrap_or_else(|| json!({})),
            });
        }
    }
    (texts, calls)
}

impl Adapter for GeminiAdapter {
    fn id(&self) -> ProviderId {
        ID
    }

    fn chat_request(&self, req: &GenerateRequest, stream: bool) -> Result<HttpRequest, LlmError> {
        let url = if stream {
            format!(
                "{}?alt=sse",
                self.model_url(&req.model, "streamGenerateContent")
            )
        } else {
            self.model_url(&req.model, "generateContent")
        };
        Ok(self.request(HttpRequest::post(url, Self::body(req))))
    }

    fn parse_response(
        &self,
        req: &GenerateRequest,
        body: &[u8],
    ) -> Result<GenerateResponse, LlmError> {
        let v = parse_json(ID, "response", body)?;
        if let Some(err) = blocked(&v, &String::from_utf8_lossy(body)) {
            return Err(err);
        }
        let (texts, tool_calls) = parts(&v, 0);
        let reason = str_at(&v, "/candidates/0/finishReason").unwrap_or_default();
        Ok(GenerateResponse {
            id: str_at(&v, "/responseId").map(str::to_owned),
            model: str_at(&v, "/modelVersion").unwrap_or(&req.model).to_owned(),
            content: texts
                .into_iter()
                .filter(|t| !t.is_empty())
                .map(ContentPart::text)
                .collect(),
            finish_reason: finish_reason(reason, !tool_calls.is_empty()),
            tool_calls,
            usage: usage(&v["usageMetadata"]),
        })
    }

    fn framing(&self) -> Framing {
        Framing::Sse
    }

    fn stream_decoder(&self, req: &GenerateRequest) -> Box<dyn StreamDecoder> {
        Box::new(Decoder {
            model: req.model.clone(),
            started: false,
            calls: 0,
            finish: None,
            usage: Value::Null,
        })
    }

    fn error_extractor(&self) -> DetailExtractor {
        error_detail
    }

    fn models_request(&self) -> HttpRequest {
        self.request(HttpRequest::get(format!(
            "{}/v1beta/models?pageSize=1000",
            self.base_url
        )))
    }

    fn parse_models(&self, body: &[u8]) -> Result<Vec<ModelInfo>, LlmError> {
        parse_model_list(ID, body, "/models", "/name", Some("/displayName"))
    }

    fn count_tokens_request(&self, req: &GenerateRequest) -> Option<Result<HttpRequest, LlmError>> {
        let mut inner = Self::body(req);
        inner["model"] = json!(format!(
            "models/{}",
            req.model.strip_prefix("models/").unwrap_or(&req.model)
        ));
        let body = json!({"generateContentRequest": inner});
        Some(Ok(self.request(HttpRequest::post(
            self.model_url(&req.model, "countTokens"),
            body,
        ))))
    }

    fn parse_token_count(&self, body: &[u8]) -> Result<TokenCount, LlmError> {
        let v = parse_json(ID, "token count", body)?;
        match v["totalTokens"].as_u64() {
            Some(tokens) => Ok(TokenCount {
                tokens,
                exact: true,
            }),
            None => Err(LlmError::malformed(
                ID,
                "token count",
                "no totalTokens",
                &v.to_string(),
            )),
        }
    }
}

/// Gemini SSE decoder: every chunk is a full `GenerateContentResponse`; the stream has no
/// end marker, so a stream that closes without any `finishReason` counts as cut.
struct Decoder {
    model: String,
    started: bool,
    calls: usize,
    finish: Option<String>,
    usage: Value,
}

impl StreamDecoder for Decoder {
    fn frame(&mut self, frame: &Frame, out: &mut Vec<StreamEvent>) -> Result<(), LlmError> {
        let v = parse_json(ID, "stream chunk", frame.data.as_bytes())?;
        in_band_error(ID, error_detail(&v), &frame.data)?;
        if let Some(err) = blocked(&v, &frame.data) {
            return Err(err);
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: str_at(&v, "/responseId").map(str::to_owned),
                model: str_at(&v, "/modelVersion")
                    .unwrap_or(&self.model)
                    .to_owned(),
            });
        }
        let (texts, calls) = parts(&v, self.calls);
        for text in &texts {
            push_text(out, Some(text));
        }
        for call in calls {
            out.push(StreamEvent::ToolCallDelta {
                index: self.calls as u32,
                id: Some(call.id),
                name: Some(call.name),
                arguments: call.arguments.to_string(),
            });
            self.calls += 1;
        }
        if let Some(reason) = str_at(&v, "/candidates/0/finishReason") {
            self.finish = Some(reason.to_owned());
        }
        if v["usageMetadata"].is_object() {
            self.usage = v["usageMetadata"].clone();
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), LlmError> {
        let Some(reason) = self.finish.take() else {
            return Err(ended_early(ID, "a finishReason"));
        };
        out.push(StreamEvent::Usage {
            usage: usage(&self.usage),
        });
        out.push(StreamEvent::Finish {
            reason: finish_reason(&reason, self.calls > 0),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
