//! Simulated Anthropic Messages API: `/v1/messages` (JSON and SSE), count_tokens, models.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::answer::{self, ForcedTool, Plan, Prompt};
use super::streaming::{sse, Script};
use super::{
    header_key, json_response, overloaded_retry_after, rate_limit_retry_after, Api, Dialect,
    DialectName, Fault, Sim, BAD_REQUEST_MESSAGE,
};

/// The Anthropic dialect.
pub(super) struct Anthropic;

const MODELS: &[(&str, &str)] = &[
    ("claude-3-5-sonnet-20241022", "Claude 3.5 Sonnet (New)"),
    ("claude-3-5-haiku-20241022", "Claude 3.5 Haiku"),
    ("claude-3-opus-20240229", "Claude 3 Opus"),
    ("claude-3-haiku-20240307", "Claude 3 Haiku"),
];

fn error(status: u16, kind: &str, message: &str, headers: &[(&'static str, String)]) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body.to_string(),
        headers,
    )
}

fn usage(prompt: &Prompt, output_tokens: u64) -> Value {
    json!({"input_tokens": prompt.input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": output_tokens})
}

fn stop_reason(plan: &Plan) -> &'static str {
    match plan.finish {
        answer::Finish::Stop => "end_turn",
        answer::Finish::Length => "max_tokens",
        answer::Finish::ToolCall => "tool_use",
    }
}

fn message_id(prompt: &Prompt) -> String {
    format!(
        "msg_sim{:016x}",
        prompt.input_tokens.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ prompt.last_user.len() as u64
    )
}

/// The id of tool call `index` of the answer to `prompt`.
fn tool_id(prompt: &Prompt, index: usize) -> String {
    format!(
        "toolu_sim{:012x}",
        prompt.last_user.len() as u64 * 7919 + prompt.input_tokens + index as u64
    )
}

impl Api for Anthropic {
    fn name(&self) -> DialectName {
        DialectName::Anthropic
    }

    fn authorize(
        &self,
        sim: &Sim,
        headers: &HeaderMap,
        _query: Option<&str>,
        _body: &Value,
    ) -> Result<(), Response> {
        let key = header_key(headers, "x-api-key").or_else(|| header_key(headers, "authorization"));
        if sim.key_ok(key) {
            Ok(())
        } else {
            Err(self.fault(Fault::Unauthorized, None))
        }
    }

    fn fault(&self, fault: Fault, retry_after_secs: Option<u64>) -> Response {
        match fault {
            Fault::RateLimit => error(429, "rate_limit_error", "This request would exceed the rate limit for your organization of 40,000 input tokens per minute. Please reduce the prompt length or the maximum tokens requested, or try again later.", &[rate_limit_retry_after(retry_after_secs)]),
            Fault::Overloaded => error(529, "overloaded_error", "Overloaded", &overloaded_retry_after(retry_after_secs)),
            Fault::BadRequest => self.bad_request(BAD_REQUEST_MESSAGE),
            Fault::Unavailable => error(503, "api_error", "Service Unavailable", &[]),
            Fault::Unauthorized => error(401, "authentication_error", "invalid x-api-key", &[]),
            Fault::Quota => error(400, "invalid_request_error", "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.", &[]),
            Fault::ContextTooLong => error(400, "invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum", &[]),
            _ => error(500, "api_error", "Internal server error", &[]),
        }
    }

    fn bad_request(&self, message: &str) -> Response {
        error(400, "invalid_request_error", message, &[])
    }
}

impl Dialect for Anthropic {
    fn prompt(&self, body: &Value, _stream: Option<bool>) -> Result<Prompt, String> {
        let model = body["model"].as_str().ok_or("model: Field required")?;
        let max_tokens = body["max_tokens"]
            .as_u64()
            .ok_or("max_tokens: Field required")?;
        let messages = body["messages"]
            .as_array()
            .ok_or("messages: Field required")?;
        let last = messages
            .last()
            .ok_or("messages: at least one message is required")?;
        let last_user = if last["role"] == "user" {
            answer::text_content(&last["content"])
        } else {
            None
        };
        let forced = last_user.is_some().then(|| forced_tool(body)).flatten();
        Ok(Prompt {
            model: model.to_owned(),
            last_user: last_user.unwrap_or_default(),
            input_tokens: super::input_tokens(body),
            max_tokens: Some(max_tokens),
            forced_tool: forced,
            json: None,
            stream: body["stream"].as_bool().unwrap_or(false),
            include_usage: true,
        })
    }

    fn response(&self, prompt: &Prompt, plan: &Plan) -> Value {
        let content: Vec<Value> = if plan.tools.is_empty() {
            vec![json!({"type": "text", "text": plan.text()})]
        } else {
            plan.tools
                .iter()
                .enumerate()
                .map(|(i, (name, args))| {
                    json!({"type": "tool_use", "id": tool_id(prompt, i), "name": name, "input": args})
                })
                .collect()
        };
        json!({
            "id": message_id(prompt), "type": "message", "role": "assistant", "model": prompt.model,
            "content": content, "stop_reason": stop_reason(plan), "stop_sequence": null,
            "usage": usage(prompt, plan.output_tokens),
        })
    }

    fn script(&self, prompt: &Prompt, plan: &Plan) -> Script {
        let start = json!({"type": "message_start", "message": {
            "id": message_id(prompt), "type": "message", "role": "assistant", "content": [], "model": prompt.model,
            "stop_reason": null, "stop_sequence": null, "usage": usage(prompt, 1)}});
        let block_start = |index: usize, block: Value| {
            sse(
                Some("content_block_start"),
                &json!({"type": "content_block_start", "index": index, "content_block": block})
                    .to_string(),
            )
        };
        let block_stop = |index: usize| {
            sse(
                Some("content_block_stop"),
                &json!({"type": "content_block_stop", "index": index}).to_string(),
            )
        };
        let (block, tokens): (Value, Vec<String>) = if plan.tools.is_empty() {
            (
                json!({"type": "text", "text": ""}),
                plan.pieces
                    .iter()
                    .map(|p| delta(0, json!({"type": "text_delta", "text": p})))
                    .collect(),
            )
        } else {
            // Parallel calls: each its own block; a later block opens as the one before closes.
            let mut tokens = Vec::new();
            for (i, (name, _)) in plan.tools.iter().enumerate() {
                if i > 0 {
                    let opening = json!({"type": "tool_use", "id": tool_id(prompt, i), "name": name, "input": {}});
                    tokens.push(format!("{}{}", block_stop(i - 1), block_start(i, opening)));
                }
                tokens.extend(
                    plan.argument_fragments(i)
                        .iter()
                        .map(|f| delta(i, json!({"type": "input_json_delta", "partial_json": f}))),
                );
            }
            let (name, _) = &plan.tools[0];
            (
                json!({"type": "tool_use", "id": tool_id(prompt, 0), "name": name, "input": {}}),
                tokens,
            )
        };
        let last_block = plan.tools.len().saturating_sub(1);
        Script {
            content_type: "text/event-stream; charset=utf-8",
            head: vec![
                sse(Some("message_start"), &start.to_string()),
                block_start(0, block),
                sse(Some("ping"), r#"{"type": "ping"}"#),
            ],
            tokens,
            tail: vec![
                block_stop(last_block),
                sse(Some("message_delta"), &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason(plan), "stop_sequence": null}, "usage": {"output_tokens": plan.output_tokens}}).to_string()),
                sse(Some("message_stop"), r#"{"type":"message_stop"}"#),
            ],
            malformed: sse(Some("content_block_delta"), r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_d"#),
        }
    }
}

fn delta(index: usize, delta: Value) -> String {
    sse(
        Some("content_block_delta"),
        &json!({"type": "content_block_delta", "index": index, "delta": delta}).to_string(),
    )
}

fn forced_tool(body: &Value) -> Option<ForcedTool> {
    let tools = body["tools"].as_array()?;
    let chosen = match body["tool_choice"]["type"].as_str()? {
        "any" => tools.first()?,
        "tool" => tools
            .iter()
            .find(|t| t["name"] == body["tool_choice"]["name"])?,
        _ => return None,
    };
    Some(ForcedTool {
        name: chosen["name"].as_str()?.to_owned(),
        schema: chosen["input_schema"].clone(),
    })
}

/// `POST /v1/messages/count_tokens`.
pub(super) async fn count_tokens(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(err) => return Anthropic.bad_request(&format!("invalid JSON body: {err}")),
    };
    if let Err(response) = sim.gate(&Anthropic, &headers, None, &value).await {
        return response;
    }
    if value["model"].as_str().is_none() || value["messages"].as_array().is_none() {
        return Anthropic.bad_request("model and messages are required");
    }
    json_response(
        StatusCode::OK,
        json!({"input_tokens": super::input_tokens(&value)}).to_string(),
        &[],
    )
}

/// `GET /v1/models` with `anthropic-version`.
pub(super) async fn list_models(sim: Arc<Sim>, headers: HeaderMap) -> Response {
    if let Err(response) = sim.gate(&Anthropic, &headers, None, &Value::Null).await {
        return response;
    }
    let data: Vec<Value> = MODELS
        .iter()
        .map(|(id, name)| json!({"type": "model", "id": id, "display_name": name, "created_at": "2024-10-22T00:00:00Z"}))
        .collect();
    let body = json!({"data": data, "has_more": false, "first_id": MODELS[0].0, "last_id": MODELS[MODELS.len() - 1].0});
    json_response(StatusCode::OK, body.to_string(), &[])
}
