//! `POST /v1/embeddings` in OpenAI's format, for any provider's embedding
//! model: `model` is a catalog embedding model id (`text-embedding-3-small`,
//! `gemini-embedding-001`, `voyage-3.5`, `nomic-embed-text`) or
//! `cover/default` for the project's own; `input` one text or a list;
//! `encoding_format` `float` or `base64` (little-endian `f32`s, what the
//! official SDKs ask for by default). The budget gate, retries and the
//! ledger are the knowledge base's; the answer carries `x-cover-provider`,
//! `x-cover-model`, `x-cover-cost-usd` and `x-cover-overhead-ms`.

use super::openai::OpenAiError;
use super::{single_call_headers, Program};
use crate::model::money::format_decimal;
use crate::server::knowledge::vectors;
use crate::server::services::knowledge;
use crate::server::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use schemars::{json_schema, Schema, SchemaGenerator};
use serde_json::{json, Value};
use std::time::Instant;

/// The model id that names the project's own embedding model.
const PROJECT_MODEL: &str = "cover/default";

fn invalid(param: &str, message: impl Into<String>) -> OpenAiError {
    OpenAiError::invalid(param, message)
}

/// What the request asks for.
struct Asked {
    model: Option<String>,
    inputs: Vec<String>,
    base64: bool,
}

fn read(body: &Value) -> Result<Asked, OpenAiError> {
    let model = match body.get("model").and_then(Value::as_str) {
        Some(PROJECT_MODEL) => None,
        Some(id) if !id.is_empty() => Some(id.to_owned()),
        _ => {
            return Err(invalid(
                "model",
                "'model' is required: an embedding model id or cover/default",
            ))
        }
    };
    let inputs = match body.get("input") {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                invalid(
                    "input",
                    "'input' must be a text or a list of texts (token arrays are not taken)",
                )
            })?,
        _ => {
            return Err(invalid(
                "input",
                "'input' is required: a text or a list of texts",
            ))
        }
    };
    let base64 = match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(invalid(
                "encoding_format",
                format!("'{other}' is not float or base64"),
            ))
        }
    };
    if body.get("dimensions").is_some_and(|d| !d.is_null()) {
        return Err(invalid(
            "dimensions",
            "'dimensions' is not taken: each model answers the size the catalog gives it",
        ));
    }
    Ok(Asked {
        model,
        inputs,
        base64,
    })
}

/// `POST /v1/embeddings`.
pub async fn create(
    State(state): State<AppState>,
    program: Program<OpenAiError>,
    body: Bytes,
) -> Result<Response, OpenAiError> {
    let started = Instant::now();
    let body: Value = serde_json::from_slice(&body)
        .map_err(|error| invalid("body", format!("the body is not valid JSON: {error}")))?;
    let asked = read(&body)?;
    let embedded = knowledge::embed_for_program(
        &state,
        &program.project_id,
        asked.model.as_deref(),
        asked.inputs,
    )
    .await?;
    let data: Vec<Value> = embedded
        .vectors
        .iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if asked.base64 {
                json!(base64::engine::general_purpose::STANDARD.encode(vectors::encode(vector)))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens = embedded.usage.input_tokens;
    let mut response = Json(json!({
        "object": "list",
        "data": data,
        "model": embedded.model.id,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "cost_usd": embedded.cost_nanos.map(format_decimal)},
    }))
    .into_response();
    single_call_headers(
        response.headers_mut(),
        embedded.model.provider,
        &embedded.model.id,
        embedded.cost_nanos,
        started.elapsed().saturating_sub(embedded.upstream),
    );
    Ok(response)
}

/// The OpenAPI schema of the request.
pub fn request_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "description": "OpenAI's Embeddings request",
        "required": ["model", "input"],
        "properties": {
            "model": {"type": "string", "description": "a catalog embedding model id, or `cover/default` for the project's"},
            "input": {"description": "a text, or a list of texts", "anyOf": [
                {"type": "string"},
                {"type": "array", "minItems": 1, "items": {"type": "string"}}
            ]},
            "encoding_format": {"enum": ["float", "base64"]},
            "user": {"type": "string"}
        }
    })
}

/// The OpenAPI schema of the answer.
pub fn response_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "required": ["object", "data", "model", "usage"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": {
                "type": "object", "required": ["object", "index", "embedding"],
                "properties": {
                    "object": {"const": "embedding"},
                    "index": {"type": "integer", "minimum": 0},
                    "embedding": {"description": "floats, or base64 of little-endian f32s", "anyOf": [
                        {"type": "array", "items": {"type": "number"}},
                        {"type": "string"}
                    ]}
                }
            }},
            "model": {"type": "string"},
            "usage": {"type": "object", "required": ["prompt_tokens", "total_tokens"]}
        }
    })
}
