//! The embedding layer of the knowledge base: one [`Embedder`] trait over four
//! wire-exact adapters that only translate, sent by the shared [`Executor`].
//!
//! ```text
//! knowledge ──EmbeddingRequest──► EmbeddingClient<A: EmbeddingAdapter> ──HttpRequest──► Executor
//!                                      ▲                                                  │
//!            EmbeddingResponse ◄───────┴── A::parse_embeddings (order, count, size) ◄── bytes
//! ```
//!
//! * [`openai`] — `POST /v1/embeddings` (OpenAI, and Llama on an OpenAI-compatible server).
//! * [`gemini`] — `models/{model}:batchEmbedContents`.
//! * [`ollama`] — `POST /api/embed`.
//! * [`voyage`] — Voyage AI `POST /v1/embeddings`: Anthropic has no embedding model and
//!   recommends Voyage, so Claude projects embed with it.
//!
//! Every adapter checks the answer the same way ([`checked_vectors`]): one vector per
//! input, in input order, all of one size (the asked size when one was asked).
//! Failures are classified by the one shared [`super::error::classify`], through the
//! executor, exactly as chat failures are.

pub mod gemini;
pub mod ollama;
pub mod openai;
pub mod voyage;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;
use serde_json::Value;

use super::executor::{DetailExtractor, Executor, HttpRequest};
use super::tokens::count_text_tokens;
use super::{EmbeddingService, LlmError, ProviderId, Usage};

/// What a text is embedded for: Voyage and Gemini embed documents and queries differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingPurpose {
    /// A chunk stored in the index.
    Document,
    /// A question searched against the index.
    Query,
}

/// A batch of texts to embed with one model.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingRequest {
    /// The API id to send (the Ollama tag for Ollama).
    pub model: String,
    /// The texts, each within the model's input limit (none is ever cut).
    pub inputs: Vec<String>,
    /// Documents or a query.
    pub purpose: EmbeddingPurpose,
    /// The vector size to ask for; `None` takes the API's default.
    pub dimensions: Option<u32>,
}

/// The vectors of one [`EmbeddingRequest`] and what they cost.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingResponse {
    /// One vector per input, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// `input_tokens` set; `raw` is the provider's usage object or `Value::Null`.
    pub usage: Usage,
    /// True when the provider reported no usage and `usage` is Cover's count.
    pub usage_estimated: bool,
}

/// What every embedding API can do; object-safe so the knowledge service holds
/// `Arc<dyn Embedder>`.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// Which provider's projects this serves (labels errors and the ledger).
    fn provider(&self) -> ProviderId;
    /// Embeds the request's texts with one API call.
    async fn embed(&self, req: &EmbeddingRequest) -> Result<EmbeddingResponse, LlmError>;
}

/// Pure translation between embedding requests and one API's wire format; no I/O
/// (mirrors [`super::Adapter`]).
pub trait EmbeddingAdapter: Send + Sync + 'static {
    /// Which provider this adapter speaks for.
    fn provider(&self) -> ProviderId;
    /// Builds the embedding request.
    fn embed_request(&self, req: &EmbeddingRequest) -> Result<HttpRequest, LlmError>;
    /// Parses an answer body into checked vectors in input order.
    fn parse_embeddings(
        &self,
        req: &EmbeddingRequest,
        body: &[u8],
    ) -> Result<EmbeddingResponse, LlmError>;
    /// Extracts codes and message from an error body.
    fn error_extractor(&self) -> DetailExtractor;
}

/// An [`Embedder`] made of an adapter and the shared executor.
pub struct EmbeddingClient<A> {
    adapter: A,
    executor: Executor,
}

impl<A: EmbeddingAdapter> EmbeddingClient<A> {
    /// Pairs an adapter with the shared executor.
    pub fn new(adapter: A, executor: Executor) -> Self {
        Self { adapter, executor }
    }
}

#[async_trait]
impl<A: EmbeddingAdapter> Embedder for EmbeddingClient<A> {
    fn provider(&self) -> ProviderId {
        self.adapter.provider()
    }

    async fn embed(&self, req: &EmbeddingRequest) -> Result<EmbeddingResponse, LlmError> {
        let http = self.adapter.embed_request(req)?;
        let body = self
            .executor
            .send(self.provider(), http, self.adapter.error_extractor())
            .await?;
        self.adapter.parse_embeddings(req, &body)
    }
}

/// Builds the embedder for an embedding model's API, on the shared executor.
///
/// `provider` is whose projects it serves, which labels its errors: OpenAI for
/// OpenAI, Llama for an OpenAI-compatible Llama server. For the other services
/// it is implied (Gemini → Gemini, Ollama → Llama, Voyage → Claude) and the
/// argument is not used.
pub fn build_embedder(
    executor: &Executor,
    service: EmbeddingService,
    provider: ProviderId,
    base_url: &str,
    api_key: Option<SecretString>,
) -> Arc<dyn Embedder> {
    let executor = executor.clone();
    match service {
        EmbeddingService::OpenAi => Arc::new(EmbeddingClient::new(
            openai::OpenAiEmbeddings::new(provider, base_url, api_key),
            executor,
        )),
        EmbeddingService::Gemini => Arc::new(EmbeddingClient::new(
            gemini::GeminiEmbeddings::new(base_url, api_key),
            executor,
        )),
        EmbeddingService::Ollama => Arc::new(EmbeddingClient::new(
            ollama::OllamaEmbeddings::new(base_url, api_key),
            executor,
        )),
        EmbeddingService::Voyage => Arc::new(EmbeddingClient::new(
            voyage::VoyageEmbeddings::new(base_url, api_key),
            executor,
        )),
    }
}

/// Reads a JSON array of numbers as a vector; `None` for anything else.
fn vector(value: &Value) -> Option<Vec<f32>> {
    value
        .as_array()?
        .iter()
        .map(|x| x.as_f64().map(|f| f as f32))
        .collect()
}

/// Reads the OpenAI-style list both OpenAI and Voyage answer with,
/// `{"data": [{"index": i, "embedding": [...]}]}`, ordered by `index`.
fn indexed_vectors(
    provider: ProviderId,
    req: &EmbeddingRequest,
    v: &Value,
    raw: &[u8],
) -> Result<Vec<Vec<f32>>, LlmError> {
    let malformed =
        |why: &str| LlmError::malformed(provider, "embeddings", why, &String::from_utf8_lossy(raw));
    let items = v["data"].as_array().ok_or_else(|| malformed("no data"))?;
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; req.inputs.len()];
    for item in items {
        let index = item["index"]
            .as_u64()
            .ok_or_else(|| malformed("an embedding without its index"))?;
        let slot = usize::try_from(index)
            .ok()
            .and_then(|i| slots.get_mut(i))
            .ok_or_else(|| malformed("an index past the inputs"))?;
        if slot.is_some() {
            return Err(malformed("an index given twice"));
        }
        *slot = Some(vector(&item["embedding"]).ok_or_else(|| malformed("a non-numeric vector"))?);
    }
    if items.len() != req.inputs.len() {
        return Err(malformed(&format!(
            "{} vectors for {} inputs",
            items.len(),
            req.inputs.len()
        )));
    }
    checked_vectors(provider, req, slots.into_iter().flatten().collect(), raw)
}

/// Accepts vectors only if there is one per input, all of one non-zero size,
/// and that size is the asked one when the request asked for a size.
fn checked_vectors(
    provider: ProviderId,
    req: &EmbeddingRequest,
    vectors: Vec<Vec<f32>>,
    raw: &[u8],
) -> Result<Vec<Vec<f32>>, LlmError> {
    let malformed = |why: String| {
        LlmError::malformed(provider, "embeddings", why, &String::from_utf8_lossy(raw))
    };
    if vectors.len() != req.inputs.len() {
        return Err(malformed(format!(
            "{} vectors for {} inputs",
            vectors.len(),
            req.inputs.len()
        )));
    }
    let expected = match (req.dimensions, vectors.first()) {
        (Some(asked), _) => asked as usize,
        (None, Some(first)) => first.len(),
        (None, None) => return Ok(vectors),
    };
    if let Some(wrong) = vectors.iter().find(|v| v.len() != expected || v.is_empty()) {
        return Err(malformed(format!(
            "a vector of {} dimensions where {expected} were expected",
            wrong.len()
        )));
    }
    Ok(vectors)
}

/// The response: the usage the provider reported (`tokens`, read from its usage
/// object `raw`), or, when it reported none, Cover's count of the inputs
/// ([`count_text_tokens`]: exact for OpenAI's models, an estimate elsewhere).
fn response(
    req: &EmbeddingRequest,
    vectors: Vec<Vec<f32>>,
    tokens: Option<u64>,
    raw: Value,
) -> EmbeddingResponse {
    let (input_tokens, raw) = match tokens {
        Some(tokens) => (tokens, raw),
        None => {
            let counted = req
                .inputs
                .iter()
                .map(|text| count_text_tokens(&req.model, text).tokens)
                .sum();
            (counted, Value::Null)
        }
    };
    EmbeddingResponse {
        vectors,
        usage: Usage {
            input_tokens,
            raw,
            ..Usage::default()
        },
        usage_estimated: tokens.is_none(),
    }
}
