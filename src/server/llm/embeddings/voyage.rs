//! Voyage AI embeddings (`POST /v1/embeddings`): translation only. Anthropic offers no
//! embedding model and recommends Voyage, so Voyage serves Claude projects.
//!
//! API: <https://docs.voyageai.com/reference/embeddings-api>,
//! models: <https://docs.voyageai.com/docs/embeddings>,
//! pricing: <https://docs.voyageai.com/docs/pricing>,
//! Anthropic's recommendation: <https://docs.anthropic.com/en/docs/build-with-claude/embeddings>.

use secrecy::SecretString;
use serde_json::{json, Map, Value};

use super::super::error::ErrorDetail;
use super::super::executor::{DetailExtractor, HttpRequest};
use super::super::wire::{parse_json, str_at, trim_base};
use super::super::{LlmError, ProviderId};
use super::{
    indexed_vectors, response, EmbeddingAdapter, EmbeddingPurpose, EmbeddingRequest,
    EmbeddingResponse,
};

const ID: ProviderId = ProviderId::Claude;

/// Translates embedding requests to Voyage's `/v1/embeddings` and back.
pub struct VoyageEmbeddings {
    base_url: String,
    api_key: Option<SecretString>,
}

impl VoyageEmbeddings {
    /// Adapter for `base_url` (e.g. `https://api.voyageai.com`).
    pub fn new(base_url: &str, api_key: Option<SecretString>) -> Self {
        Self {
            base_url: trim_base(base_url, "/v1"),
            api_key,
        }
    }
}

/// Reads `{"detail": "..."}`, or the list of `{"msg", "type"}` a request that does not
/// validate gets.
fn error_detail(v: &Value) -> Option<ErrorDetail> {
    match v.get("detail")? {
        Value::String(message) => Some(ErrorDetail {
            message: message.clone(),
            ..ErrorDetail::default()
        }),
        Value::Array(problems) => Some(ErrorDetail {
            codes: problems
                .iter()
                .filter_map(|p| str_at(p, "/type").map(str::to_owned))
                .collect(),
            message: problems
                .iter()
                .filter_map(|p| str_at(p, "/msg"))
                .collect::<Vec<_>>()
                .join("; "),
            retry_delay: None,
        }),
        _ => None,
    }
}

impl EmbeddingAdapter for VoyageEmbeddings {
    fn provider(&self) -> ProviderId {
        ID
    }

    fn embed_request(&self, req: &EmbeddingRequest) -> Result<HttpRequest, LlmError> {
        let mut body = Map::new();
        body.insert("model".into(), json!(req.model));
        body.insert("input".into(), json!(req.inputs));
        let input_type = match req.purpose {
            EmbeddingPurpose::Document => "document",
            EmbeddingPurpose::Query => "query",
        };
        body.insert("input_type".into(), json!(input_type));
        if let Some(dimensions) = req.dimensions {
            body.insert("output_dimension".into(), json!(dimensions));
        }
        // NOTE: Voyage truncates over-long texts by default; refused, the chunker learns.
        body.insert("truncation".into(), json!(false));
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
        let v = parse_json(ID, "embeddings", body)?;
        let vectors = indexed_vectors(ID, req, &v, body)?;
        let tokens = v["usage"]["total_tokens"].as_u64();
        Ok(response(req, vectors, tokens, v["usage"].clone()))
    }

    fn error_extractor(&self) -> DetailExtractor {
        error_detail
    }
}
