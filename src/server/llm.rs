//! The LLM provider layer: one [`Provider`] trait over four wire-exact adapters.
//!
//! ```text
//! caller ──GenerateRequest──► Client<A: Adapter> ──HttpRequest──► Executor (one reqwest::Client)
//!                                 ▲        │                          │
//!                                 │        └─ params::check (no I/O)  │ status/body classified
//!        GenerateResponse / ◄─────┴── A::parse_response / StreamDecoder ◄──── bytes / SSE / NDJSON
//!        EventStream
//! ```
//!
//! * [`types`] — unified messages, tools, parameters, responses, stream events, usage.
//! * [`error`] — [`LlmError`] with the design's classes and the one shared classifier.
//! * [`executor`] — the only code that does HTTP.
//! * [`stream`] — shared SSE/NDJSON framing and the decoding loop.
//! * [`params`] — per-provider parameter validation (also used by the settings API).
//! * [`tokens`] — local token counting (tiktoken for OpenAI, estimates elsewhere).
//! * [`anthropic`], [`openai`], [`gemini`], [`ollama`] — adapters that only translate.
//! * [`router`] — retry with backoff, fallback chain, circuit breakers, time limits and
//!   stream failover over any [`Provider`]s; reports every attempt to a sink (the ledger).
//! * [`embeddings`] — the knowledge base's [`embeddings::Embedder`]: OpenAI, Gemini, Ollama
//!   and Voyage embedding adapters that only translate, on the same executor.
//! * [`images`] — image generation with OpenAI's Images API (GPT Image models), on the
//!   same executor.

pub mod anthropic;
pub mod embeddings;
pub mod error;
pub mod executor;
pub mod gemini;
pub mod images;
pub mod ollama;
pub mod openai;
pub mod params;
pub mod router;
pub mod stream;
pub mod tokens;
pub mod types;
mod wire;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

pub use error::{ErrorKind, LlmError};
pub use executor::{Executor, HttpRequest, Timeouts};
pub use params::{validate_parameters, ParamError};
pub use stream::{EventStream, Framing, StreamDecoder};
pub use types::*;

/// The HTTP API an embedding model is served by (the catalog's).
pub use crate::model::catalog::EmbeddingService;
/// The provider ids are the catalog's (`claude`, `openai`, `gemini`, `llama`).
pub use crate::model::catalog::ProviderId;
/// How a Llama server is spoken to (shared with the settings page).
pub use crate::model::llm_config::LlamaFlavour;

/// What every provider can do; object-safe so the router holds `Arc<dyn Provider>`.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Which provider this is.
    fn id(&self) -> ProviderId;
    /// Sends a request and waits for the whole answer.
    async fn generate(&self, req: &GenerateRequest) -> Result<GenerateResponse, LlmError>;
    /// Starts a streamed answer; errors before the first byte come back as `Err`,
    /// later ones as a final [`StreamEvent::Error`].
    async fn stream(&self, req: &GenerateRequest) -> Result<EventStream, LlmError>;
    /// Counts the request's prompt tokens (exact where the provider allows).
    async fn count_tokens(&self, req: &GenerateRequest) -> Result<TokenCount, LlmError>;
    /// Lists the models the key can use.
    async fn models(&self) -> Result<Vec<ModelInfo>, LlmError>;
    /// Checks the key with a cheap authenticated call (the models list).
    async fn validate_api_key(&self) -> Result<(), LlmError>;
}

/// Pure translation between unified types and one provider's wire format; no I/O.
pub trait Adapter: Send + Sync + 'static {
    /// Which provider this adapter speaks for (used to label errors).
    fn id(&self) -> ProviderId;
    /// Builds the chat request (streamed or not).
    fn chat_request(&self, req: &GenerateRequest, stream: bool) -> Result<HttpRequest, LlmError>;
    /// Parses a non-streamed answer body.
    fn parse_response(
        &self,
        req: &GenerateRequest,
        body: &[u8],
    ) -> Result<GenerateResponse, LlmError>;
    /// How the stream is framed.
    fn framing(&self) -> Framing;
    /// A fresh decoder for one stream.
    fn stream_decoder(&self, req: &GenerateRequest) -> Box<dyn StreamDecoder>;
    /// Extracts codes and message from an error body.
    fn error_extractor(&self) -> executor::DetailExtractor;
    /// Builds the models-list request.
    fn models_request(&self) -> HttpRequest;
    /// Parses the models list.
    fn parse_models(&self, body: &[u8]) -> Result<Vec<ModelInfo>, LlmError>;
    /// Builds a token-count request, or `None` (the default) to count locally.
    fn count_tokens_request(
        &self,
        _req: &GenerateRequest,
    ) -> Option<Result<HttpRequest, LlmError>> {
        None
    }
    /// Parses a token-count answer; only called when `count_tokens_request` gave a request.
    fn parse_token_count(&self, body: &[u8]) -> Result<TokenCount, LlmError> {
        Err(LlmError::malformed(
            self.id(),
            "token count",
            "no token-count endpoint",
            &String::from_utf8_lossy(body),
        ))
    }
}

/// A [`Provider`] made of an adapter and the shared executor.
pub struct Client<A> {
    adapter: A,
    executor: Executor,
}

impl<A: Adapter> Client<A> {
    /// Pairs an adapter with the shared executor.
    pub fn new(adapter: A, executor: Executor) -> Self {
        Self { adapter, executor }
    }
}

#[async_trait]
impl<A: Adapter> Provider for Client<A> {
    fn id(&self) -> ProviderId {
        self.adapter.id()
    }

    async fn generate(&self, req: &GenerateRequest) -> Result<GenerateResponse, LlmError> {
        params::check_parameters(self.id(), &req.parameters, req.limits.as_ref())?;
        let http = self.adapter.chat_request(req, false)?;
        let body = self
            .executor
            .send(self.id(), http, self.adapter.error_extractor())
            .await?;
        self.adapter.parse_response(req, &body)
    }

    async fn stream(&self, req: &GenerateRequest) -> Result<EventStream, LlmError> {
        params::check_parameters(self.id(), &req.parameters, req.limits.as_ref())?;
        let http = self.adapter.chat_request(req, true)?;
        let bytes = self
            .executor
            .stream(self.id(), http, self.adapter.error_extractor())
            .await?;
        Ok(stream::decode(
            self.id(),
            bytes,
            self.adapter.framing(),
            self.adapter.stream_decoder(req),
        ))
    }

    async fn count_tokens(&self, req: &GenerateRequest) -> Result<TokenCount, LlmError> {
        match self.adapter.count_tokens_request(req) {
            None => Ok(tokens::count_request_tokens(req)),
            Some(http) => {
                let body = self
                    .executor
                    .send(self.id(), http?, self.adapter.error_extractor())
                    .await?;
                self.adapter.parse_token_count(&body)
            }
        }
    }

    async fn models(&self) -> Result<Vec<ModelInfo>, LlmError> {
        let body = self
            .executor
            .send(
                self.id(),
                self.adapter.models_request(),
                self.adapter.error_extractor(),
            )
            .await?;
        self.adapter.parse_models(&body)
    }

    async fn validate_api_key(&self) -> Result<(), LlmError> {
        self.models().await.map(|_| ())
    }
}

/// Base URLs of the four providers and of Voyage AI (Claude projects' embeddings),
/// overridable by environment (tests, simulator, proxies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrls {
    /// `COVER_ANTHROPIC_BASE_URL`, default `https://api.anthropic.com`.
    pub anthropic_base_url: String,
    /// `COVER_OPENAI_BASE_URL`, default `https://api.openai.com`.
    pub openai_base_url: String,
    /// `COVER_GEMINI_BASE_URL`, default `https://generativelanguage.googleapis.com`.
    pub gemini_base_url: String,
    /// `COVER_OLLAMA_BASE_URL`, default `http://127.0.0.1:11434`.
    pub ollama_base_url: String,
    /// `COVER_VOYAGE_BASE_URL`, default `https://api.voyageai.com`.
    pub voyage_base_url: String,
}

impl Default for BaseUrls {
    fn default() -> Self {
        Self {
            anthropic_base_url: "https://api.anthropic.com".into(),
            openai_base_url: "https://api.openai.com".into(),
            gemini_base_url: "https://generativelanguage.googleapis.com".into(),
            ollama_base_url: "http://127.0.0.1:11434".into(),
            voyage_base_url: "https://api.voyageai.com".into(),
        }
    }
}

impl BaseUrls {
    /// Reads the base URLs from the environment, falling back to the public endpoints.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Same as [`BaseUrls::from_env`] with an injectable lookup (testable without env mutation).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let d = Self::default();
        let pick = |name: &str, default: String| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .unwrap_or(default)
        };
        Self {
            anthropic_base_url: pick("COVER_ANTHROPIC_BASE_URL", d.anthropic_base_url),
            openai_base_url: pick("COVER_OPENAI_BASE_URL", d.openai_base_url),
            gemini_base_url: pick("COVER_GEMINI_BASE_URL", d.gemini_base_url),
            ollama_base_url: pick("COVER_OLLAMA_BASE_URL", d.ollama_base_url),
            voyage_base_url: pick("COVER_VOYAGE_BASE_URL", d.voyage_base_url),
        }
    }

    /// The configured base URL of a provider.
    pub fn base_url(&self, provider: ProviderId) -> &str {
        match provider {
            ProviderId::Claude => &self.anthropic_base_url,
            ProviderId::OpenAi => &self.openai_base_url,
            ProviderId::Gemini => &self.gemini_base_url,
            ProviderId::Llama => &self.ollama_base_url,
        }
    }

    /// The configured base URL of the API serving an embedding model.
    pub fn embedding_base_url(&self, service: EmbeddingService) -> &str {
        match service {
            EmbeddingService::OpenAi => &self.openai_base_url,
            EmbeddingService::Gemini => &self.gemini_base_url,
            EmbeddingService::Ollama => &self.ollama_base_url,
            EmbeddingService::Voyage => &self.voyage_base_url,
        }
    }
}

/// Builds a provider from its id, base URL, optional key and Llama flavour, on the shared executor.
pub fn build_provider(
    executor: &Executor,
    provider: ProviderId,
    base_url: &str,
    api_key: Option<SecretString>,
    flavour: LlamaFlavour,
) -> Arc<dyn Provider> {
    let executor = executor.clone();
    match (provider, flavour) {
        (ProviderId::Claude, _) => Arc::new(Client::new(
            anthropic::AnthropicAdapter::new(base_url, api_key),
            executor,
        )),
        (ProviderId::OpenAi, _) => Arc::new(Client::new(
            openai::OpenAiAdapter::new(ProviderId::OpenAi, base_url, api_key),
            executor,
        )),
        (ProviderId::Gemini, _) => Arc::new(Client::new(
            gemini::GeminiAdapter::new(base_url, api_key),
            executor,
        )),
        (ProviderId::Llama, LlamaFlavour::Ollama) => Arc::new(Client::new(
            ollama::OllamaAdapter::new(base_url, api_key),
            executor,
        )),
        (ProviderId::Llama, LlamaFlavour::OpenAiCompatible) => Arc::new(Client::new(
            openai::OpenAiAdapter::new(ProviderId::Llama, base_url, api_key),
            executor,
        )),
    }
}
