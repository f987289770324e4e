//! Simulated OpenAI Chat Completions (`/v1/chat/completions`, JSON and SSE) and `/v1/models`
//! (`/v1/embeddings` is in [`super::embeddings`]).
//! Llama models on this route answer like an OpenAI-compatible server (Ollama `/v1`) and need no key.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::answer::{self, ForcedTool, JsonAnswer, Plan, Prompt};
use super::streaming::{sse, Script};
use super::{
    header_key, json_response, overloaded_retry_after, rate_limit_retry_after, Api, Dialect,
    DialectName, Fault, Sim, BAD_REQUEST_MESSAGE,
};

/// The OpenAI dialect.
pub(super) struct OpenAi;

const MODELS: &[&str] = &[
    "gpt-4o-2024-08-06",
    "gpt-4o-mini-2024-07-18",
    "gpt-4-turbo-2024-04-09",
    "gpt-3.5-turbo-0125",
];
const CREATED: u64 = 1_727_346_142;

/// An OpenAI error answer: `{"error": {"message", "type", "param", "code"}}`.
pub(super) fn error(
    status: u16,
    kind: &str,
    code: Option<&str>,
    message: &str,
    headers: &[(&'static str, String)],
) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body.to_string(),
        headers,
    )
}

/// Masks a key the way OpenAI echoes it (`sk-abc***xyz`).
fn masked(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 8 {
        return "***".to_owned();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 3..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 6))
}

fn unauthorized(key: Option<&str>) -> Response {
    let message = match key {
        Some(k) if !k.is_empty() => format!("Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.", masked(k)),
        _ => "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).".to_owned(),
    };
    error(
        401,
        "invalid_request_error",
        Some("invalid_api_key"),
        &message,
        &[],
    )
}

fn usage(prompt: &Prompt, plan: &Plan) -> Value {
    json!({
        "prompt_tokens": prompt.input_tokens, "completion_tokens": plan.output_tokens,
        "total_tokens": prompt.input_tokens + plan.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    })
}

/// OpenAI's 429 for a token rate limit, advising a wait of `retry_after_secs` (or the default).
fn rate_limited(retry_after_secs: Option<u64>) -> Response {
    let retry_after = rate_limit_retry_after(retry_after_secs);
    let wait = format!("{}s", retry_after.1);
    let message = format!("Rate limit reached for gpt-4o in organization org-sim on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000. Please try again in {wait}. Visit https://platform.openai.com/account/rate-limits to learn more.");
    let headers = [
        ("x-ratelimit-limit-tokens", "30000".to_owned()),
        ("x-ratelimit-remaining-tokens", "0".to_owned()),
        ("x-ratelimit-reset-tokens", wait),
        retry_after,
    ];
    error(
        429,
        "tokens",
        Some("rate_limit_exceeded"),
        &message,
        &headers,
    )
}

fn finish_reason(plan: &Plan) -> &'static str {
    match plan.finish {
        answer::Finish::Stop => "stop",
        answer::Finish::Length => "length",
        answer::Finish::ToolCall => "tool_calls",
    }
}

fn completion_id(prompt: &Prompt) -> String {
    format!(
        "chatcmpl-sim{:012x}",
        prompt.input_tokens * 7919 + prompt.last_user.len() as u64
    )
}

/// The id of tool call `index` of the answer to `prompt`.
fn call_id(prompt: &Prompt, index: usize) -> String {
    format!(
        "call_sim{:012x}",
        prompt.last_user.len() as u64 * 104_729 + prompt.input_tokens + index as u64
    )
}

/// Llama models (chat, and Nomic embeddings) are served like Ollama's OpenAI-compatible
/// surface, which ignores keys.
fn keyless(body: &Value) -> bool {
    body["model"]
        .as_str()
        .is_some_and(|m| m.starts_with("llama") || m.starts_with("nomic-embed"))
}

impl Api for OpenAi {
    fn name(&self) -> DialectName {
        DialectName::OpenAi
    }

    fn authorize(
        &self,
        sim: &Sim,
        headers: &HeaderMap,
        _query: Option<&str>,
        body: &Value,
    ) -> Result<(), Response> {
        let key = header_key(headers, "authorization");
        if keyless(body) || sim.key_ok(key) {
            Ok(())
        } else {
            Err(unauthorized(key))
        }
    }

    fn fault(&self, fault: Fault, retry_after_secs: Option<u64>) -> Response {
        match fault {
            Fault::RateLimit => rate_limited(retry_after_secs),
            Fault::Overloaded => error(503, "server_error", None, "The engine is currently overloaded, please try again later", &overloaded_retry_after(retry_after_secs)),
            Fault::BadRequest => self.bad_request(BAD_REQUEST_MESSAGE),
            Fault::Unavailable => error(503, "server_error", None, "Service Unavailable", &[]),
            Fault::Unauthorized => unauthorized(Some("sk-simulated-invalid-key")),
            Fault::Quota => error(429, "insufficient_quota", Some("insufficient_quota"), "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.", &[]),
            Fault::ContextTooLong => error(400, "invalid_request_error", Some("context_length_exceeded"), "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.", &[]),
            _ => error(500, "server_error", None, "The server had an error while processing your request. Sorry about that!", &[]),
        }
    }

    fn bad_request(&self, message: &str) -> Response {
        error(400, "invalid_request_error", None, message, &[])
    }
}

impl Dialect for OpenAi {
    fn prompt(&self, body: &Value, _stream: Option<bool>) -> Result<Prompt, String> {
        let model = body["model"]
            .as_str()
            .ok_or("you must provide a model parameter")?;
        let messages = body["messages"]
            .as_array()
            .filter(|m| !m.is_empty())
            .ok_or("'messages' must contain at least one message")?;
        let last = messages.last().ok_or("'messages' is empty")?;
        let last_user = if last["role"] == "user" {
            answer::text_content(&last["content"])
        } else {
            None
        };
        let forced = last_user.is_some().then(|| forced_tool(body)).flatten();
        let stream = body["stream"].as_bool().unwrap_or(false);
        let json = match body["response_format"]["type"].as_str() {
            None | Some("text") => None,
            Some("json_object") => {
                // OpenAI's own rule for JSON mode.
                if !body["messages"].to_string().to_ascii_lowercase().contains("json") {
                    return Err("'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.".into());
                }
                Some(JsonAnswer::Object)
            }
            Some("json_schema") => Some(JsonAnswer::Schema(
                body["response_format"]["json_schema"]["schema"].clone(),
            )),
            Some(other) => {
                return Err(format!(
                    "Invalid value: '{other}'. Supported values are: 'json_object', 'json_schema', and 'text'."
                ))
            }
        };
        Ok(Prompt {
            model: model.to_owned(),
            last_user: last_user.unwrap_or_default(),
            input_tokens: super::input_tokens(body),
            max_tokens: body["max_completion_tokens"]
                .as_u64()
                .or(body["max_tokens"].as_u64()),
            forced_tool: forced,
            json,
            stream,
            include_usage: body["stream_options"]["include_usage"]
                .as_bool()
                .unwrap_or(false),
        })
    }

    fn response(&self, prompt: &Prompt, plan: &Plan) -> Value {
        let message = if plan.tools.is_empty() {
            json!({"role": "assistant", "content": plan.text(), "refusal": null})
        } else {
            let calls: Vec<Value> = plan.tools
                .iter()
                .enumerate()
                .map(|(i, (name, args))| {
                    json!({"id": call_id(prompt, i), "type": "function", "function": {"name": name, "arguments": args.to_string()}})
                })
                .collect();
            json!({"role": "assistant", "content": null, "refusal": null, "tool_calls": calls})
        };
        json!({
            "id": completion_id(prompt), "object": "chat.completion", "created": CREATED, "model": prompt.model,
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(plan)}],
            "usage": usage(prompt, plan), "system_fingerprint": "fp_sim",
        })
    }

    fn script(&self, prompt: &Prompt, plan: &Plan) -> Script {
        let chunk = |choices: Value| {
            let c = json!({"id": completion_id(prompt), "object": "chat.completion.chunk", "created": CREATED, "model": prompt.model, "system_fingerprint": "fp_sim", "choices": choices});
            sse(None, &c.to_string())
        };
        let choice = |delta: Value| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}]);
        let call_delta = |fields: Value| chunk(choice(json!({"tool_calls": [fields]})));
        let (first, tokens): (Value, Vec<String>) = if plan.tools.is_empty() {
            (
                json!({"role": "assistant", "content": "", "refusal": null}),
                plan.pieces
                    .iter()
                    .map(|p| chunk(choice(json!({"content": p}))))
                    .collect(),
            )
        } else {
            // Parallel calls: each opens with its id and name, then its arguments,
            // every delta carrying the call's index.
            let mut tokens = Vec::new();
            for (i, (name, _)) in plan.tools.iter().enumerate() {
                if i > 0 {
                    tokens.push(call_delta(
                        json!({"index": i, "id": call_id(prompt, i), "type": "function", "function": {"name": name, "arguments": ""}}),
                    ));
                }
                tokens.extend(
                    plan.argument_fragments(i)
                        .iter()
                        .map(|f| call_delta(json!({"index": i, "function": {"arguments": f}}))),
                );
            }
            let (name, _) = &plan.tools[0];
            (
                json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": call_id(prompt, 0), "type": "function", "function": {"name": name, "arguments": ""}}], "refusal": null}),
                tokens,
            )
        };
        let mut tail = vec![chunk(
            json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish_reason(plan)}]),
        )];
        if prompt.include_usage {
            let c = json!({"id": completion_id(prompt), "object": "chat.completion.chunk", "created": CREATED, "model": prompt.model, "system_fingerprint": "fp_sim", "choices": [], "usage": usage(prompt, plan)});
            tail.push(sse(None, &c.to_string()));
        }
        tail.push(sse(None, "[DONE]"));
        Script {
            content_type: "text/event-stream; charset=utf-8",
            head: vec![chunk(choice(first))],
            tokens,
            tail,
            malformed: sse(
                None,
                r#"{"id":"chatcmpl-sim","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"oo"#,
            ),
        }
    }
}

fn forced_tool(body: &Value) -> Option<ForcedTool> {
    let tools = body["tools"].as_array()?;
    let choice = &body["tool_choice"];
    let chosen = match choice.as_str() {
        Some("required") => tools.first()?,
        Some(_) => return None,
        None => tools
            .iter()
            .find(|t| t["function"]["name"] == choice["function"]["name"])?,
    };
    Some(ForcedTool {
        name: chosen["function"]["name"].as_str()?.to_owned(),
        schema: chosen["function"]["parameters"].clone(),
    })
}

/// `GET /v1/models` without `anthropic-version`.
pub(super) async fn list_models(sim: Arc<Sim>, headers: HeaderMap) -> Response {
    if let Err(response) = sim.gate(&OpenAi, &headers, None, &Value::Null).await {
        return response;
    }
    let data: Vec<Value> = MODELS
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": CREATED, "owned_by": "system"}))
        .collect();
    json_response(
        StatusCode::OK,
        json!({"object": "list", "data": data}).to_string(),
        &[],
    )
}
