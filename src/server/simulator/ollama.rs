//! Simulated Ollama native API: `/api/chat` (NDJSON stream by default) and `/api/tags`
//! (`/api/embed` is in [`super::embeddings`]).
//! Ollama has no keys; every request is accepted.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::answer::{self, ForcedTool, JsonAnswer, Plan, Prompt};
use super::streaming::Script;
use super::{
    json_response, overloaded_retry_after, rate_limit_retry_after, Api, Dialect, DialectName,
    Fault, Sim, BAD_REQUEST_MESSAGE,
};

/// The Ollama dialect.
pub(super) struct Ollama;

/// Ollama's answer when its request queue is full.
const SERVER_BUSY: &str = "server busy, please try again.  maximum pending requests exceeded";
const CREATED_AT: &str = "2024-12-06T00:46:58.265747Z";
const MODELS: &[&str] = &["llama3.2:latest", "llama3.1:8b", "llama3.1:70b"];

/// An Ollama error answer: `{"error": "..."}`.
pub(super) fn error(status: u16, message: &str, headers: &[(&'static str, String)]) -> Response {
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({"error": message}).to_string(),
        headers,
    )
}

fn done_reason(plan: &Plan) -> &'static str {
    match plan.finish {
        answer::Finish::Length => "length",
        answer::Finish::Stop | answer::Finish::ToolCall => "stop",
    }
}

fn final_line(prompt: &Prompt, plan: &Plan, message: Value) -> Value {
    json!({"model": prompt.model, "created_at": CREATED_AT, "message": message, "done_reason": done_reason(plan), "done": true,
           "total_duration": 885_095_291u64, "load_duration": 3_753_500u64,
           "prompt_eval_count": prompt.input_tokens, "prompt_eval_duration": 328_493_000u64,
           "eval_count": plan.output_tokens, "eval_duration": 552_222_000u64})
}

fn tool_calls(plan: &Plan) -> Option<Value> {
    (!plan.tools.is_empty()).then(|| {
        plan.tools
            .iter()
            .map(|(name, args)| json!({"function": {"name": name, "arguments": args}}))
            .collect()
    })
}

impl Api for Ollama {
    fn name(&self) -> DialectName {
        DialectName::Ollama
    }

    fn authorize(
        &self,
        _sim: &Sim,
        _headers: &HeaderMap,
        _query: Option<&str>,
        _body: &Value,
    ) -> Result<(), Response> {
        Ok(())
    }

    fn fault(&self, fault: Fault, retry_after_secs: Option<u64>) -> Response {
        match fault {
            Fault::RateLimit | Fault::Quota => error(
                429,
                "too many requests",
                &[rate_limit_retry_after(retry_after_secs)],
            ),
            Fault::Overloaded => error(503, SERVER_BUSY, &overloaded_retry_after(retry_after_secs)),
            Fault::Unavailable => error(503, SERVER_BUSY, &[]),
            Fault::BadRequest => self.bad_request(BAD_REQUEST_MESSAGE),
            Fault::Unauthorized => error(401, "unauthorized", &[]),
            Fault::ContextTooLong => error(400, "input length exceeds the context length", &[]),
            _ => error(
                500,
                "llama runner process has terminated: exit status 2",
                &[],
            ),
        }
    }

    fn bad_request(&self, message: &str) -> Response {
        error(400, message, &[])
    }
}

impl Dialect for Ollama {
    fn prompt(&self, body: &Value, _stream: Option<bool>) -> Result<Prompt, String> {
        let model = body["model"].as_str().ok_or("model is required")?;
        let messages = body["messages"]
            .as_array()
            .filter(|m| !m.is_empty())
            .ok_or("messages are required")?;
        let last = messages.last().ok_or("messages are required")?;
        let last_user = (last["role"] == "user")
            .then(|| last["content"].as_str().unwrap_or_default().to_owned());
        // NOTE: Ollama has no tool_choice; the simulator calls the first tool whenever tools are
        // offered and the user spoke last, which makes tool tests deterministic.
        let forced = last_user.is_some().then(|| {
            let tool = body["tools"].as_array()?.first()?;
            Some(ForcedTool {
                name: tool["function"]["name"].as_str()?.to_owned(),
                schema: tool["function"]["parameters"].clone(),
            })
        });
        Ok(Prompt {
            model: model.to_owned(),
            last_user: last_user.unwrap_or_default(),
            input_tokens: super::input_tokens(body),
            max_tokens: body["options"]["num_predict"].as_u64(),
            forced_tool: forced.flatten(),
            json: match &body["format"] {
                Value::String(format) if format == "json" => Some(JsonAnswer::Object),
                schema @ Value::Object(_) => Some(JsonAnswer::Schema(schema.clone())),
                _ => None,
            },
            stream: body["stream"].as_bool().unwrap_or(true),
            include_usage: true,
        })
    }

    fn response(&self, prompt: &Prompt, plan: &Plan) -> Value {
        let mut message = json!({"role": "assistant", "content": plan.text()});
        if let Some(calls) = tool_calls(plan) {
            message["tool_calls"] = calls;
        }
        final_line(prompt, plan, message)
    }

    fn script(&self, prompt: &Prompt, plan: &Plan) -> Script {
        let line = |message: Value| {
            format!(
                "{}\n",
                json!({"model": prompt.model, "created_at": CREATED_AT, "message": message, "done": false})
            )
        };
        let tokens = match tool_calls(plan) {
            Some(calls) => vec![line(
                json!({"role": "assistant", "content": "", "tool_calls": calls}),
            )],
            None => plan
                .pieces
                .iter()
                .map(|p| line(json!({"role": "assistant", "content": p})))
                .collect(),
        };
        Script {
            content_type: "application/x-ndjson",
            head: Vec::new(),
            tokens,
            tail: vec![format!(
                "{}\n",
                final_line(prompt, plan, json!({"role": "assistant", "content": ""}))
            )],
            malformed: format!(
                "{{\"model\":\"{}\",\"message\":{{\"content\"\n",
                prompt.model
            ),
        }
    }
}

/// `GET /api/tags`.
pub(super) async fn tags(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    if let Err(response) = sim.gate(&Ollama, &headers, None, &Value::Null).await {
        return response;
    }
    let models: Vec<Value> = MODELS
        .iter()
        .map(|name| json!({"name": name, "model": name, "modified_at": "2024-12-07T09:32:18.757212583-08:00", "size": 2_019_393_189u64,
            "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
            "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"], "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}}))
        .collect();
    json_response(StatusCode::OK, json!({"models": models}).to_string(), &[])
}
