//! OpenAI embeddings (`POST /v1/embeddings`): translation only. The same wire serves
//! Llama embedding models behind an OpenAI-compatible server (Ollama `/v1`, llama.cpp, vLLM).
//!
//! API: <https://platform.openai.com/docs/api-reference/embeddings/create>,
//! guide and limits: <https://platform.openai.com/docs/guides/embeddings>,
//! models: <https://developers.openai.com/api/docs/models/text-embedding-3-small>,
//! pricing: <https://openai.com/api/pricing/>.

use secrecy::SecretString;
use serde_json::{json, Map, Value};

use super::super::executor::{DetailExtractor, HttpRequest};
use super::super::openai::OpenAiAdapter;
use super::super::wire::{parse_json, trim_base};
use super::super::{Adapter, LlmError, ProviderId};
use super::{indexed_vectors, response, EmbeddingAdapter, EmbeddingRequest, EmbeddingResponse};

/// Translates embedding requests to OpenAI's `/v1/embeddings` and back.
pub struct OpenAiEmbeddings {
    provider: ProviderId,
    base_url: String,
    api_key: Option<SecretString>,
    errors: DetailExtractor,
}

impl OpenAiEmbeddings {
    /// Adapter for `provider` (OpenAI itself, or Llama on a compatible server) at `base_url`.
    pub fn new(provider: ProviderId, base_url: &str, api_key: Option<SecretString>) -> Self {
        // Embedding errors come in the chat API's shape: the chat adapter reads them.
        let errors = OpenAiAdapter::new(provider, base_url, None).error_extractor();
        Self {
            provider,
            base_url: trim_base(base_url, "/v1"),
            api_key,
            errors,
        }
    }
}

impl EmbeddingAdapter for OpenAiEmbeddings {
    fn provider(&self) -> ProviderId {
        self.provider
    }

    fn embed_request(&self, req: &EmbeddingRequest) -> Result<HttpRequest, LlmError> {
        let mut body = Map::new();
        body.insert("model".into(), json!(req.model));
        body.insert("input".into(), json!(req.inputs));
        // NOTE: the official SDKs ask for base64 by default; plain floats keep the body
        // readable and are what every compatible server supports.
        body.insert("encoding_format".into(), json!("float"));
        // NOTE: compatible servers (llama.cpp, vLLM) may refuse `dimensions`; their models
        // have one size, which the answer is still checked against.
        if let (Some(dimensions), ProviderId::OpenAi) = (req.dimensions, self.provider) {
            body.insert("dimensions".into(), json!(dimensions));
        }
        Ok(HttpRequest::post(
            format!("{}/v1/embeddings", self.base_url),
            Value::Object(body),
        )
        .secret_header("authorization", "Bearer ", self.api_key.as_ref()))
    }

    fn parse_embeddings(
        &self,
        req: &EmbeddingRequest,
        body: &[u8],
    ) -> Result<EmbeddingResponse, LlmError> {
        let v = parse_json(self.provider, "embeddings", body)?;
        let vectors = indexed_vectors(self.provider, req, &v, body)?;
        // NOTE: some compatible servers leave usage out; Cover counts the tokens then.
        let tokens = v["usage"]["prompt_tokens"].as_u64();
        Ok(response(req, vectors, tokens, v["usage"].clone()))
    }

    fn error_extractor(&self) -> DetailExtractor {
        self.errors
    }
}
