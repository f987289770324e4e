//! Simulated Gemini API (`/v1beta` and `/v1`): generateContent, streamGenerateContent
//! (SSE with CRLF separators), countTokens and models. Requests are read in camelCase or
//! snake_case, as the real API accepts both.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::answer::{self, ForcedTool, JsonAnswer, Plan, Prompt};
use super::streaming::Script;
use super::{
    header_key, json_response, rate_limit_retry_after, Api, Dialect, DialectName, Fault, Sim,
    BAD_REQUEST_MESSAGE,
};

/// The Gemini dialect for one model (the model is in the URL).
pub(super) struct Gemini {
    pub(super) model: String,
}

impl Gemini {
    /// Dialect for the model named in the path.
    pub(super) fn new(model: &str) -> Self {
        Self {
            model: model.strip_prefix("models/").unwrap_or(model).to_owned(),
        }
    }
}

const MODELS: &[(&str, &str, u64)] = &[
    ("gemini-1.5-pro-002", "Gemini 1.5 Pro 002", 2_000_000),
    ("gemini-1.5-flash-002", "Gemini 1.5 Flash 002", 1_000_000),
    ("gemini-2.0-flash", "Gemini 2.0 Flash", 1_048_576),
];

fn error(code: u16, status: &str, message: &str, details: Value) -> Response {
    let mut err = json!({"code": code, "message": message, "status": status});
    if details.as_array().is_some_and(|d| !d.is_empty()) {
        err["details"] = details;
    }
    json_response(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"error": err}).to_string(),
        &[],
    )
}

/// A camelCase field or its snake_case spelling (Gemini's API takes both).
pub(super) fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> &'a Value {
    match v.get(camel) {
        Some(found) => found,
        None => &v[snake],
    }
}

fn model_json(id: &str, name: &str, input: u64) -> Value {
    json!({"name": format!("models/{id}"), "version": "002", "displayName": name, "description": format!("Simulated {name}"),
           "inputTokenLimit": input, "outputTokenLimit": 8192,
           "supportedGenerationMethods": ["generateContent", "countTokens"],
           "temperature": 1, "topP": 0.95, "topK": 40, "maxTemperature": 2})
}

/// The 404 for unknown models or methods (`method`: what the model was called for).
pub(super) fn not_found(what: &str, method: &str) -> Response {
    error(404, "NOT_FOUND", &format!("models/{what} is not found for API version v1beta, or is not supported for {method}. Call ListModels to see the list of available models and their supported methods."), json!([]))
}

fn usage(prompt: &Prompt, plan: &Plan) -> Value {
    json!({"promptTokenCount": prompt.input_tokens, "candidatesTokenCount": plan.output_tokens,
           "totalTokenCount": prompt.input_tokens + plan.output_tokens})
}

fn finish_reason(plan: &Plan) -> &'static str {
    match plan.finish {
        answer::Finish::Length => "MAX_TOKENS",
        answer::Finish::Stop | answer::Finish::ToolCall => "STOP",
    }
}

fn key_from_query(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|pair| pair.strip_prefix("key="))
}

impl Api for Gemini {
    fn name(&self) -> DialectName {
        DialectName::Gemini
    }

    fn model<'a>(&'a self, _body: &'a Value) -> Option<&'a str> {
        Some(self.model.as_str()).filter(|m| !m.is_empty())
    }

    fn authorize(
        &self,
        sim: &Sim,
        headers: &HeaderMap,
        query: Option<&str>,
        _body: &Value,
    ) -> Result<(), Response> {
        match header_key(headers, "x-goog-api-key").or_else(|| key_from_query(query)) {
            None => Err(error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.", json!([]))),
            Some(key) if sim.key_ok(Some(key)) => Ok(()),
            Some(_) => Err(self.fault(Fault::Unauthorized, None)),
        }
    }

    fn fault(&self, fault: Fault, retry_after_secs: Option<u64>) -> Response {
        match fault {
            Fault::RateLimit => error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", json!([
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{}s", rate_limit_retry_after(retry_after_secs).1)}])),
            Fault::Quota => error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.", json!([
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
                {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]}])),
            Fault::Overloaded => {
                let retry: Vec<Value> = retry_after_secs
                    .map(|s| json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{s}s")}))
                    .into_iter()
                    .collect();
                error(503, "UNAVAILABLE", "The model is overloaded. Please try again later.", json!(retry))
            }
            Fault::BadRequest => self.bad_request(BAD_REQUEST_MESSAGE),
            Fault::Unavailable => error(503, "UNAVAILABLE", "The service is currently unavailable.", json!([])),
            Fault::Unauthorized => error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", json!([
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}])),
            Fault::ContextTooLong => error(400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).", json!([])),
            _ => error(500, "INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting", json!([])),
        }
    }

    fn bad_request(&self, message: &str) -> Response {
        error(400, "INVALID_ARGUMENT", message, json!([]))
    }
}

impl Dialect for Gemini {
    fn prompt(&self, body: &Value, stream: Option<bool>) -> Result<Prompt, String> {
        let contents = body["contents"]
            .as_array()
            .filter(|c| !c.is_empty())
            .ok_or("* GenerateContentRequest.contents: contents is not specified")?;
        let last = contents.last().ok_or("contents is empty")?;
        let texts: Vec<&str> = last["parts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["text"].as_str())
            .collect();
        let is_user = last["role"].as_str().is_none_or(|r| r == "user");
        let last_user = (is_user && !texts.is_empty()).then(|| texts.join(""));
        let config = field(body, "generationConfig", "generation_config");
        let forced = last_user.is_some().then(|| forced_tool(body)).flatten();
        let json = (field(config, "responseMimeType", "response_mime_type").as_str()
            == Some("application/json"))
        .then(|| {
            let schema = field(config, "responseJsonSchema", "response_json_schema");
            let schema = if schema.is_null() {
                field(config, "responseSchema", "response_schema")
            } else {
                schema
            };
            if schema.is_null() {
                JsonAnswer::Object
            } else {
                JsonAnswer::Schema(schema.clone())
            }
        });
        Ok(Prompt {
            model: self.model.clone(),
            last_user: last_user.unwrap_or_default(),
            input_tokens: super::input_tokens(body),
            max_tokens: field(config, "maxOutputTokens", "max_output_tokens").as_u64(),
            forced_tool: forced,
            json,
            stream: stream.unwrap_or(false),
            include_usage: true,
        })
    }

    fn response(&self, prompt: &Prompt, plan: &Plan) -> Value {
        let parts = if plan.tools.is_empty() {
            json!([{"text": plan.text()}])
        } else {
            function_calls(plan)
        };
        json!({
            "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": finish_reason(plan), "index": 0,
                            "safetyRatings": safety_ratings()}],
            "usageMetadata": usage(prompt, plan), "modelVersion": prompt.model,
        })
    }

    fn script(&self, prompt: &Prompt, plan: &Plan) -> Script {
        let partial = json!({"promptTokenCount": prompt.input_tokens, "totalTokenCount": prompt.input_tokens});
        let chunk = |parts: Value, last: bool| {
            let mut candidate = json!({"content": {"parts": parts, "role": "model"}});
            let mut usage_block = partial.clone();
            if last {
                candidate["finishReason"] = json!(finish_reason(plan));
                candidate["safetyRatings"] = safety_ratings();
                usage_block = usage(prompt, plan);
            }
            // NOTE: Google's server separates events with CRLF; clients must accept it.
            format!(
                "data: {}\r\n\r\n",
                json!({"candidates": [candidate], "usageMetadata": usage_block, "modelVersion": prompt.model})
            )
        };
        let mut parts: Vec<Value> = if plan.tools.is_empty() {
            plan.pieces.iter().map(|p| json!([{"text": p}])).collect()
        } else {
            // Gemini sends a turn's function calls whole, together.
            vec![function_calls(plan)]
        };
        let last = parts.pop().unwrap_or_else(|| json!([{"text": ""}]));
        Script {
            content_type: "text/event-stream",
            head: Vec::new(),
            tokens: parts.into_iter().map(|p| chunk(p, false)).collect(),
            tail: vec![chunk(last, true)],
            malformed: "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"oo\r\n\r\n"
                .to_owned(),
        }
    }
}

/// The answer's function calls as Gemini parts, parallel calls side by side.
fn function_calls(plan: &Plan) -> Value {
    plan.tools
        .iter()
        .map(|(name, args)| json!({"functionCall": {"name": name, "args": args}}))
        .collect()
}

fn safety_ratings() -> Value {
    json!([{"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
           {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
           {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
           {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "NEGLIGIBLE"}])
}

fn forced_tool(body: &Value) -> Option<ForcedTool> {
    let calling = field(
        field(body, "toolConfig", "tool_config"),
        "functionCallingConfig",
        "function_calling_config",
    );
    if calling["mode"].as_str()? != "ANY" {
        return None;
    }
    let allowed = field(calling, "allowedFunctionNames", "allowed_function_names").as_array();
    let decls: Vec<&Value> = body["tools"]
        .as_array()?
        .iter()
        .flat_map(|t| {
            field(t, "functionDeclarations", "function_declarations")
                .as_array()
                .into_iter()
                .flatten()
        })
        .collect();
    let chosen = decls
        .into_iter()
        .find(|d| allowed.is_none_or(|names| names.contains(&d["name"])))?;
    Some(ForcedTool {
        name: chosen["name"].as_str()?.to_owned(),
        schema: chosen["parameters"].clone(),
    })
}

/// `POST models/{model}:countTokens` (either `contents` or `generateContentRequest`).
pub(super) async fn count_tokens(
    sim: Arc<Sim>,
    model: &str,
    headers: HeaderMap,
    query: Option<String>,
    body: Bytes,
) -> Response {
    let dialect = Gemini::new(model);
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(err) => return dialect.bad_request(&format!("Invalid JSON payload received. {err}")),
    };
    if let Err(response) = sim.gate(&dialect, &headers, query.as_deref(), &value).await {
        return response;
    }
    let inner = field(&value, "generateContentRequest", "generate_content_request");
    let request = if inner.is_object() { inner } else { &value };
    json_response(
        StatusCode::OK,
        json!({"totalTokens": super::input_tokens(request)}).to_string(),
        &[],
    )
}

/// `GET models`.
pub(super) async fn list_models(
    State(sim): State<Arc<Sim>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = sim
        .gate(&Gemini::new(""), &headers, query.as_deref(), &Value::Null)
        .await
    {
        return response;
    }
    let models: Vec<Value> = MODELS
        .iter()
        .map(|(id, name, input)| model_json(id, name, *input))
        .collect();
    json_response(StatusCode::OK, json!({"models": models}).to_string(), &[])
}

/// `GET models/{model}`.
pub(super) async fn get_model(
    State(sim): State<Arc<Sim>>,
    Path(model): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let dialect = Gemini::new(&model);
    if let Err(response) = sim
        .gate(&dialect, &headers, query.as_deref(), &Value::Null)
        .await
    {
        return response;
    }
    match MODELS.iter().find(|(id, _, _)| *id == dialect.model) {
        Some((id, name, input)) => json_response(
            StatusCode::OK,
            model_json(id, name, *input).to_string(),
            &[],
        ),
        None => not_found(&dialect.model, "generateContent"),
    }
}
