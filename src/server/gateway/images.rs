//! `POST /v1/images/generations` in OpenAI's format (FR-005): `model` a catalog
//! image model (`gpt-image-2`, `gpt-image-1`) or `cover/default` for the
//! project's; `prompt`, `n`, `size`, `quality` as OpenAI takes them. Pictures
//! come back as `b64_json` PNGs (GPT Image models return no URLs). The budget
//! gate holds the pictures' whole cost first; every try is a ledger row of
//! operation `images`; the answer carries `x-cover-provider`, `x-cover-model`,
//! `x-cover-cost-usd` and `x-cover-overhead-ms`.

use super::openai::OpenAiError;
use super::{single_call_headers, unix_now, Program};
use crate::model::money::format_decimal;
use crate::server::services::images;
use crate::server::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::{json_schema, Schema, SchemaGenerator};
use serde_json::{json, Value};
use std::time::Instant;

fn invalid(param: &str, message: impl Into<String>) -> OpenAiError {
    OpenAiError::invalid(param, message)
}

/// An optional text field, refused when present with another type.
fn text<'a>(body: &'a Value, field: &str) -> Result<Option<&'a str>, OpenAiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(invalid(field, format!("'{field}' must be a string"))),
    }
}

/// `POST /v1/images/generations`.
pub async fn create(
    State(state): State<AppState>,
    program: Program<OpenAiError>,
    body: Bytes,
) -> Result<Response, OpenAiError> {
    let started = Instant::now();
    let body: Value = serde_json::from_slice(&body)
        .map_err(|error| invalid("body", format!("the body is not valid JSON: {error}")))?;
    let model = text(&body, "model")?.unwrap_or(images::PROJECT_IMAGE_MODEL);
    let prompt = text(&body, "prompt")?
        .ok_or_else(|| invalid("prompt", "'prompt' is required: what to draw"))?;
    let n = match body.get("n") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| invalid("n", "'n' must be a positive integer"))?,
        ),
    };
    match text(&body, "response_format")? {
        None | Some("b64_json") => {}
        Some(other) => {
            return Err(invalid(
                "response_format",
                format!("'{other}' is not offered: GPT Image models answer b64_json only"),
            ))
        }
    }
    match text(&body, "output_format")? {
        None | Some("png") => {}
        Some(other) => {
            return Err(invalid(
                "output_format",
                format!("'{other}' is not offered: Cover stores and returns PNG"),
            ))
        }
    }
    let (ask, drawn) = images::draw_for_program(
        &state,
        &program.project_id,
        model,
        prompt,
        n,
        text(&body, "size")?,
        text(&body, "quality")?,
    )
    .await?;
    let data: Vec<Value> = drawn
        .images
        .iter()
        .map(|image| match &image.revised_prompt {
            Some(revised) => json!({"b64_json": image.png_base64, "revised_prompt": revised}),
            None => json!({"b64_json": image.png_base64}),
        })
        .collect();
    let usage = &drawn.usage;
    let mut response = Json(json!({
        "created": unix_now(),
        "background": "opaque",
        "data": data,
        "output_format": "png",
        "quality": ask.quality,
        "size": ask.size,
        "usage": {
            "input_tokens": usage.input_tokens,
            "input_tokens_details": {"text_tokens": usage.input_tokens, "image_tokens": 0},
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "cost_usd": drawn.cost_nanos.map(format_decimal),
        },
    }))
    .into_response();
    single_call_headers(
        response.headers_mut(),
        ask.model.provider,
        &ask.model.id,
        drawn.cost_nanos,
        started.elapsed().saturating_sub(drawn.upstream),
    );
    Ok(response)
}

/// The OpenAPI schema of the request.
pub fn request_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "OpenAI's image generation request",
        "required": ["prompt"],
        "properties": {
            "model": {"type": "string", "description": "a catalog image model id (gpt-image-2, gpt-image-1), or `cover/default` for the project's"},
            "prompt": {"type": "string", "minLength": 1},
            "n": {"type": "integer", "minimum": 1},
            "size": {"type": "string", "description": "WIDTHxHEIGHT the model draws, or auto"},
            "quality": {"enum": ["low", "medium", "high", "auto"]},
            "response_format": {"const": "b64_json"},
            "output_format": {"const": "png"},
            "user": {"type": "string"}
        }
    })
}

/// The OpenAPI schema of the answer.
pub fn response_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "required": ["created", "data", "usage"],
        "properties": {
            "created": {"type": "integer"},
            "data": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["b64_json"],
                "properties": {
                    "b64_json": {"type": "string", "description": "base64 of a PNG file"},
                    "revised_prompt": {"type": "string"}
                }
            }},
            "size": {"type": "string"},
            "quality": {"type": "string"},
            "output_format": {"const": "png"},
            "usage": {"type": "object", "required": ["input_tokens", "output_tokens", "total_tokens"]}
        }
    })
}
