//! Gemini embeddings (`models/{model}:batchEmbedContents`): translation only. The key
//! travels in the `x-goog-api-key` header, never in the URL.
//!
//! API: <https://ai.google.dev/api/embeddings#method:-models.batchembedcontents>,
//! guide (task types, output sizes, normalisation): <https://ai.google.dev/gemini-api/docs/embeddings>,
//! pricing: <https://ai.google.dev/gemini-api/docs/pricing>.

use secrecy::SecretString;
use serde_json::{json, Map, Value};

use super::super::executor::{DetailExtractor, HttpRequest};
use super::super::gemini::GeminiAdapter;
use super::super::wire::{parse_json, trim_base};
use super::super::{Adapter, LlmError, ProviderId};
use super::{
    checked_vectors, response, vector, EmbeddingAdapter, EmbeddingPurpose, EmbeddingRequest,
    EmbeddingResponse,
};

const ID: ProviderId = ProviderId::Gemini;

/// Translates embedding requests to `batchEmbedContents` and back.
pub struct GeminiEmbeddings {
    base_url: String,
    api_key: Option<SecretString>,
    errors: DetailExtractor,
}

impl GeminiEmbeddings {
    /// Adapter for `base_url` (e.g. `https://generativelanguage.googleapis.com`).
    pub fn new(base_url: &str, api_key: Option<SecretString>) -> Self {
        // Embedding errors are the generateContent API's google.rpc errors.
        let errors = GeminiAdapter::new(base_url, None).error_extractor();
        Self {
            base_url: trim_base(base_url, "/v1beta"),
            api_key,
            errors,
        }
    }
}

fn task_type(purpose: EmbeddingPurpose) -> &'static str {
    match purpose {
        EmbeddingPurpose::Document => "RETRIEVAL_DOCUMENT",
        EmbeddingPurpose::Query => "RETRIEVAL_QUERY",
    }
}

/// Scales a vector to length 1 (a zero vector stays as it is).
fn normalised(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

impl EmbeddingAdapter for GeminiEmbeddings {
    fn provider(&self) -> ProviderId {
        ID
    }

    fn embed_request(&self, req: &EmbeddingRequest) -> Result<HttpRequest, LlmError> {
        let model = req.model.strip_prefix("models/").unwrap_or(&req.model);
        let requests: Vec<Value> = req
            .inputs
            .iter()
            .map(|text| {
                let mut one = Map::new();
                one.insert("model".into(), json!(format!("models/{model}")));
                one.insert("content".into(), json!({"parts": [{"text": text}]}));
                one.insert("taskType".into(), json!(task_type(req.purpose)));
                if let Some(dimensions) = req.dimensions {
                    one.insert("outputDimensionality".into(), json!(dimensions));
                }
                Value::Object(one)
            })
            .collect();
        Ok(HttpRequest::post(
            format!("{}/v1beta/models/{model}:batchEmbedContents", self.base_url),
            json!({"requests": requests}),
        )
        .secret_header("x-goog-api-key", "", self.api_key.as_ref()))
    }

    fn parse_embeddings(
        &self,
        req: &EmbeddingRequest,
        body: &[u8],
    ) -> Result<EmbeddingResponse, LlmError> {
        let v = parse_json(ID, "embeddings", body)?;
        let malformed =
            |why: &str| LlmError::malformed(ID, "embeddings", why, &String::from_utf8_lossy(body));
        let items = v["embeddings"]
            .as_array()
            .ok_or_else(|| malformed("no embeddings"))?;
        // NOTE: only the full 3072-dimension output comes normalised; smaller ones
        // (Cover asks for 768) must be scaled to length 1 by the caller.
        let vectors = items
            .iter()
            .map(|item| vector(&item["values"]).map(normalised))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| malformed("a non-numeric vector"))?;
        let vectors = checked_vectors(ID, req, vectors, body)?;
        // NOTE: the answers come in request order, without an index. Usage metadata is
        // recent and not on every API surface, so Cover counts when it is missing.
        let tokens = v["usageMetadata"]["promptTokenCount"].as_u64();
        Ok(response(req, vectors, tokens, v["usageMetadata"].clone()))
    }

    fn error_extractor(&self) -> DetailExtractor {
        self.errors
    }
}
