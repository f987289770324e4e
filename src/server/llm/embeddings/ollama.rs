//! Ollama embeddings (`POST /api/embed`): translation only. No key is required; one is
//! sent only if given (for a server behind an authenticating proxy).
//!
//! API: <https://github.com/ollama/ollama/blob/main/docs/api.md#generate-embeddings>,
//! model: <https://ollama.com/library/nomic-embed-text>,
//! pricing: self-hosted (no per-token price).

use secrecy::SecretString;
use serde_json::{json, Map, Value};

use super::super::executor::{DetailExtractor, HttpRequest};
use super::super::ollama::OllamaAdapter;
use super::super::wire::{parse_json, trim_base};
use super::super::{Adapter, LlmError, ProviderId};
use super::{
    checked_vectors, response, vector, EmbeddingAdapter, EmbeddingRequest, EmbeddingResponse,
};

const ID: ProviderId = ProviderId::Llama;

/// Translates embedding requests to Ollama's `/api/embed` and back.
pub struct OllamaEmbeddings {
    base_url: String,
    api_key: Option<SecretString>,
    errors: DetailExtractor,
}

impl OllamaEmbeddings {
    /// Adapter for `base_url` (e.g. `http://127.0.0.1:11434`).
    pub fn new(base_url: &str, api_key: Option<SecretString>) -> Self {
        // Embedding errors are the chat API's `{"error": "..."}`.
        let errors = OllamaAdapter::new(base_url, None).error_extractor();
        Self {
            base_url: trim_base(base_url, "/api"),
            api_key,
            errors,
        }
    }
}

impl EmbeddingAdapter for OllamaEmbeddings {
    fn provider(&self) -> ProviderId {
        ID
    }

    fn embed_request(&self, req: &EmbeddingRequest) -> Result<HttpRequest, LlmError> {
        let mut body = Map::new();
        body.insert("model".into(), json!(req.model));
        body.insert("input".into(), json!(req.inputs));
        // NOTE: Ollama cuts over-long inputs silently by default; refused, the chunker
        // learns its chunk is too long instead of indexing half of it.
        body.insert("truncate".into(), json!(false));
        if let Some(dimensions) = req.dimensions {
            body.insert("dimensions".into(), json!(dimensions));
        }
        Ok(
            HttpRequest::post(format!("{}/api/embed", self.base_url), Value::Object(body))
                .secret_header("authorization", "Bearer ", self.api_key.as_ref()),
        )
    }

    fn parse_embeddings(
        &self,
        req: &EmbeddingRequest,
        body: &[u8],
    ) -> Result<EmbeddingResponse, LlmError> {
        let v = parse_json(ID, "embeddings", body)?;
        let vectors = v["embeddings"]
            .as_array()
            .and_then(|items| items.iter().map(vector).collect::<Option<Vec<_>>>())
            .ok_or_else(|| {
                LlmError::malformed(
                    ID,
                    "embeddings",
                    "no embeddings list of numbers",
                    &String::from_utf8_lossy(body),
                )
            })?;
        let vectors = checked_vectors(ID, req, vectors, body)?;
        // NOTE: Ollama has no usage object; its count sits beside the vectors.
        let tokens = v["prompt_eval_count"].as_u64();
        Ok(response(
            req,
            vectors,
            tokens,
            json!({"prompt_eval_count": tokens}),
        ))
    }

    fn error_extractor(&self) -> DetailExtractor {
        self.errors
    }
}
