//! The model catalog (spec FR-001/FR-002): every supported provider and model with
//! its context window, prices, speed, capabilities and rate limits. The data lives
//! in `catalog.json` beside this file; the server loads and checks it at start-up
//! and serves it to pages and programs in this shape.

use crate::model::money::PricePerMTok;
use serde::{Deserialize, Serialize};

crate::model::text_enum! {
    /// The four provider families of the spec, with the spec's ids (in
    /// display order).
    pub enum ProviderId {
        /// Anthropic Claude (Messages API).
        Claude = "claude",
        /// OpenAI GPT (Chat Completions API).
        OpenAi = "openai",
        /// Google Gemini (Generative Language API).
        Gemini = "gemini",
        /// Meta Llama, self-hosted (Ollama or any OpenAI-compatible server).
        Llama = "llama",
    }
}

impl ProviderId {
    /// The family's name in a sentence: "Claude", "OpenAI", "Gemini", "Llama".
    pub fn label(self) -> &'static str {
        match self {
            ProviderId::Claude => "Claude",
            ProviderId::OpenAi => "OpenAI",
            ProviderId::Gemini => "Gemini",
            ProviderId::Llama => "Llama",
        }
    }
}

/// A provider's facts as shown on the settings and compare pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ProviderInfo {
    /// Spec id.
    pub id: ProviderId,
    /// Display name.
    pub name: String,
    /// The company behind the models.
    pub vendor: String,
    /// API reference.
    pub api_docs: String,
    /// Official pricing page, if the provider sells tokens.
    pub pricing_page: Option<String>,
    /// The model a project gets when it switches to this provider.
    pub default_model: String,
    /// The embedding model a project's knowledge base starts with when it
    /// uses this provider (an id in [`Catalog::embedding_models`]); kept in
    /// the data, not in code, so the choice changes with the catalog.
    #[serde(default)]
    pub default_embedding_model: Option<String>,
    /// How the provider's keys start, for masking and early checks.
    pub key_prefix: Option<String>,
    /// Runs on the customer's own hardware.
    pub self_hosted: bool,
    /// Whether an API key is needed at all.
    pub key_required: bool,
    /// Provider-specific features (spec FR-005).
    pub features: Vec<String>,
}

/// How quickly a model answers, relative to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum SpeedClass {
    /// The quickest tier (Haiku, mini, Flash, small Llamas).
    Fastest,
    /// Quick.
    Fast,
    /// Noticeably slower.
    Medium,
    /// The slowest tier (largest models).
    Slow,
}

impl SpeedClass {
    /// A human label.
    pub fn label(self) -> &'static str {
        match self {
            SpeedClass::Fastest => "Fastest",
            SpeedClass::Fast => "Fast",
            SpeedClass::Medium => "Medium",
            SpeedClass::Slow => "Slow",
        }
    }
}

/// What a model can do (spec FR-005); the UI shows what is missing as unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Text in, text out.
    pub text: bool,
    /// Image input.
    pub vision: bool,
    /// Tool use / function calling.
    pub tools: bool,
    /// Token streaming.
    pub streaming: bool,
    /// Grounding with Google Search.
    pub grounding: bool,
    /// Runs self-hosted: no data leaves the customer's servers.
    pub self_hosted: bool,
    /// Whether answers can be held to JSON (a gateway's `response_format`).
    #[serde(default)]
    pub json_output: JsonOutput,
}

/// How far a model's answers can be held to JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum JsonOutput {
    /// Free text only (Claude 3.x, Gemini 1.0).
    #[default]
    None,
    /// Any JSON object (OpenAI's JSON mode).
    Object,
    /// JSON that matches a given schema (structured outputs), objects too.
    Schema,
}

/// The higher price tier some models charge for long prompts (Gemini 1.5 above
/// 128k prompt tokens: the whole request is billed at these rates).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct LongContextPricing {
    /// Prompt size above which the tier applies.
    pub threshold_tokens: u64,
    /// Input price in the tier.
    pub input_per_m_tok: PricePerMTok,
    /// Output price in the tier.
    pub output_per_m_tok: PricePerMTok,
    /// Cached-input price in the tier.
    pub cache_read_per_m_tok: Option<PricePerMTok>,
}

/// A model's list prices, USD per one million tokens, with where they come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Pricing {
    /// Uncached input tokens.
    pub input_per_m_tok: PricePerMTok,
    /// Output tokens (reasoning included).
    pub output_per_m_tok: PricePerMTok,
    /// Input tokens read from the provider's prompt cache, if it has one.
    pub cache_read_per_m_tok: Option<PricePerMTok>,
    /// Input tokens written to the prompt cache, if billed separately.
    pub cache_write_per_m_tok: Option<PricePerMTok>,
    /// Long-prompt tier, if any.
    pub long_context: Option<LongContextPricing>,
    /// Where the figures come from.
    pub source: String,
    /// The date from which these prices apply (YYYY-MM-DD).
    pub effective_date: String,
}

/// Published request and token limits at the lowest paid tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct RateLimits {
    /// Requests per minute.
    pub requests_per_minute: u32,
    /// Input tokens per minute (Anthropic counts input and output apart).
    pub input_tokens_per_minute: Option<u64>,
    /// Output tokens per minute.
    pub output_tokens_per_minute: Option<u64>,
    /// Tokens per minute (OpenAI and Gemini count them together).
    pub tokens_per_minute: Option<u64>,
    /// Which tier and date the figures describe.
    pub note: String,
}

/// One model of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    /// The exact API id sent to the provider (Cover's id for Llama).
    pub id: String,
    /// Which provider serves it.
    pub provider: ProviderId,
    /// Display name.
    pub name: String,
    /// Generation, e.g. "3.5".
    pub family: String,
    /// Other API ids that resolve to this model.
    pub aliases: Vec<String>,
    /// The Ollama tag, for Llama models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ollama_tag: Option<String>,
    /// Maximum prompt size in tokens.
    pub context_window: u64,
    /// Maximum tokens one answer may have.
    pub max_output: u64,
    /// List prices; `None` means there is no per-token price (self-hosted).
    pub pricing: Option<Pricing>,
    /// Earlier price lists, each from its effective date until the next one:
    /// usage is priced with the list in force on its day, so a price change
    /// never rewrites history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub price_history: Vec<Pricing>,
    /// Relative speed.
    pub speed: SpeedClass,
    /// What it can do.
    pub capabilities: Capabilities,
    /// Published limits; `None` for self-hosted models.
    pub rate_limits: Option<RateLimits>,
    /// A previous generation, kept for existing projects; never recommended.
    #[serde(default)]
    pub legacy: bool,
    /// What an embedding model produces and accepts; `None` for chat models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<EmbeddingSpec>,
    /// What an image model draws and what each picture bills; `None` for
    /// chat and embedding models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,
}

/// One size and quality an image model draws, and the output tokens one
/// picture of it bills: GPT Image models are billed per token (prompt text at
/// the input price, the picture at the output price), and a picture's output
/// tokens are fixed by its size and quality, so the budget gate can hold a
/// generation's whole cost before it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ImageOption {
    /// `WIDTHxHEIGHT`, as the API takes it (`1024x1024`).
    pub size: String,
    /// `low`, `medium` or `high`.
    pub quality: String,
    /// Output tokens one picture bills.
    pub output_tokens: u64,
}

/// What an image model draws and accepts (OpenAI's Images API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Every size and quality it draws, with what each bills.
    pub options: Vec<ImageOption>,
    /// The size taken when a request names none.
    pub default_size: String,
    /// The quality taken when a request names none.
    pub default_quality: String,
    /// Most pictures one request may ask for (`n`).
    pub max_images: u32,
    /// Longest prompt it takes, in characters.
    pub max_prompt_chars: u32,
}

impl ImageSpec {
    /// The option of `size` and `quality`, if the model draws it.
    pub fn option(&self, size: &str, quality: &str) -> Option<&ImageOption> {
        self.options
            .iter()
            .find(|o| o.size == size && o.quality == quality)
    }

    /// The sizes it draws, each once, in catalog order.
    pub fn sizes(&self) -> Vec<&str> {
        let mut sizes: Vec<&str> = Vec::new();
        for option in &self.options {
            if !sizes.contains(&option.size.as_str()) {
                sizes.push(&option.size);
            }
        }
        sizes
    }

    /// The qualities it draws, each once, in catalog order.
    pub fn qualities(&self) -> Vec<&str> {
        let mut qualities: Vec<&str> = Vec::new();
        for option in &self.options {
            if !qualities.contains(&option.quality.as_str()) {
                qualities.push(&option.quality);
            }
        }
        qualities
    }
}

/// Which HTTP API serves an embedding model: the embedder to build for it
/// (a model's provider says which projects it serves, not how it is called:
/// Voyage serves Claude projects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum EmbeddingService {
    /// OpenAI `POST /v1/embeddings` (and OpenAI-compatible servers).
    OpenAi,
    /// Gemini `models/{model}:batchEmbedContents`.
    Gemini,
    /// Ollama `POST /api/embed`.
    Ollama,
    /// Voyage AI `POST /v1/embeddings` (Anthropic's recommended provider).
    Voyage,
}

/// An embedding model's vector size and request limits, so the knowledge
/// base can size its index and split its batches before calling the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct EmbeddingSpec {
    /// The API that serves it.
    pub service: EmbeddingService,
    /// The vector size Cover asks for and stores. Send it as the request's
    /// dimensions: some APIs answer larger vectors by default (Gemini: 3072).
    pub dimensions: u32,
    /// Most texts one request may carry.
    pub max_batch_inputs: u32,
    /// Most tokens one request may carry, all its texts together.
    pub max_batch_tokens: u64,
    /// Most tokens one text may have (longer texts are refused, never cut).
    pub max_input_tokens: u64,
}

impl ModelInfo {
    /// The price list in force on `day` (`YYYY-MM-DD`): the newest list whose
    /// effective date is not after it (the oldest known list for earlier days).
    pub fn pricing_on(&self, day: &str) -> Option<&Pricing> {
        let lists = self.pricing.iter().chain(&self.price_history);
        lists
            .clone()
            .filter(|p| p.effective_date.as_str() <= day)
            .max_by(|a, b| a.effective_date.cmp(&b.effective_date))
            .or_else(|| lists.min_by(|a, b| a.effective_date.cmp(&b.effective_date)))
    }
}

/// The whole catalog as served by `GET /api/llm/providers` and the pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    /// The model new projects start with (spec: Claude 3.5 Sonnet).
    pub default_model: String,
    /// Every provider.
    pub providers: Vec<ProviderInfo>,
    /// Every chat model.
    pub models: Vec<ModelInfo>,
    /// Every embedding model (for the knowledge base), apart from the chat
    /// models so model pickers and lists never offer one for chat.
    #[serde(default)]
    pub embedding_models: Vec<ModelInfo>,
    /// Every image generation model (FR-005: "GPT: DALL-E integration"),
    /// apart from the chat models for the same reason.
    #[serde(default)]
    pub image_models: Vec<ModelInfo>,
}

impl Catalog {
    /// A provider's facts.
    pub fn provider(&self, kind: ProviderId) -> Option<&ProviderInfo> {
        self.providers.iter().find(|p| p.id == kind)
    }

    /// A chat, embedding or image model by id or alias: what usage is
    /// priced with.
    pub fn model(&self, id: &str) -> Option<&ModelInfo> {
        self.chat_model(id)
            .or_else(|| self.embedding_model(id))
            .or_else(|| self.image_model(id))
    }

    /// An image generation model by id or alias.
    pub fn image_model(&self, id: &str) -> Option<&ModelInfo> {
        find_model(&self.image_models, id)
    }

    /// The image models a project answering with `provider` can draw with,
    /// in catalog order (none: the feature is unavailable there).
    pub fn image_models_of(&self, provider: ProviderId) -> impl Iterator<Item = &ModelInfo> {
        self.image_models
            .iter()
            .filter(move |m| m.provider == provider)
    }

    /// The image model a project answering with `provider` draws with: the
    /// catalog's first for it (the newest); `None` where it draws nothing.
    pub fn project_image_model(&self, provider: ProviderId) -> Option<&ModelInfo> {
        self.image_models_of(provider).next()
    }

    /// A chat model by id or alias: what a project may answer with.
    pub fn chat_model(&self, id: &str) -> Option<&ModelInfo> {
        find_model(&self.models, id)
    }

    /// An embedding model by id or alias.
    pub fn embedding_model(&self, id: &str) -> Option<&ModelInfo> {
        find_model(&self.embedding_models, id)
    }

    /// The embedding model a knowledge base starts with for `provider`.
    pub fn default_embedding_model(&self, provider: ProviderId) -> Option<&ModelInfo> {
        let id = self
            .provider(provider)?
            .default_embedding_model
            .as_deref()?;
        self.embedding_model(id)
    }

    /// The embedding model of a project answering with `provider`: the
    /// `fixed` one when set (and known), else the provider's own (Claude →
    /// Voyage, GPT → OpenAI, Gemini → Gemini, Llama → Ollama). The one rule,
    /// for the server's builder and the settings page's preview alike.
    pub fn embedding_model_for(
        &self,
        provider: ProviderId,
        fixed: Option<&str>,
    ) -> Option<&ModelInfo> {
        fixed
            .filter(|id| !id.is_empty())
            .and_then(|id| self.embedding_model(id))
            .or_else(|| self.default_embedding_model(provider))
    }

    /// The models one provider serves, in catalog order.
    pub fn models_of(&self, kind: ProviderId) -> impl Iterator<Item = &ModelInfo> {
        self.models.iter().filter(move |m| m.provider == kind)
    }
}

fn find_model<'a>(models: &'a [ModelInfo], id: &str) -> Option<&'a ModelInfo> {
    models
        .iter()
        .find(|m| m.id == id || m.aliases.iter().any(|a| a == id))
}

/// Formats a token count the way the mockups do: 200K, 1M, 16,385.
pub fn format_tokens(tokens: u64) -> String {
    if tokens >= 1_000_000 && tokens.is_multiple_of(1_000_000) {
        format!("{}M", tokens / 1_000_000)
    } else if tokens >= 1_000 && tokens.is_multiple_of(1_000) {
        format!("{}K", tokens / 1_000)
    } else if tokens >= 1_024 && tokens.is_multiple_of(1_024) {
        format!("{}K", tokens / 1_024)
    } else {
        let digits = tokens.to_string();
        let mut out = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(ch);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_counts_read_like_the_mockups() {
        assert_eq!(format_tokens(200_000), "200K");
        assert_eq!(format_tokens(2_000_000), "2M");
        assert_eq!(format_tokens(131_072), "128K");
        assert_eq!(format_tokens(16_385), "16,385");
        assert_eq!(format_tokens(30_720), "30K");
        assert_eq!(format_tokens(4_097), "4,097");
    }
}
