//! Conversations as the chat page and programs see them: summaries, messages with
//! the facts of each answer (provider, model, tokens, cost, latency, fallback
//! notice), and the events of a streamed answer. Shared with the browser.

use crate::model::catalog::ProviderId;
use crate::model::knowledge::Citation;
use serde::{Deserialize, Serialize};

/// Longest message text accepted, in characters.
pub const MAX_MESSAGE_CHARS: usize = 100_000;
/// Most images one message may carry.
pub const MAX_IMAGES: usize = 4;
/// Largest image accepted, in bytes (decoded).
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;
/// Image types every vision model accepts.
pub const IMAGE_MEDIA_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

/// A conversation in the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    /// Conversation id.
    pub id: String,
    /// Title (the start of the first message, or "New conversation").
    pub title: String,
    /// The provider the conversation is pinned to.
    pub provider: ProviderId,
    /// The catalog model id it is pinned to.
    pub model: String,
    /// The model's display name.
    pub model_name: String,
    /// The project configuration version it is pinned to.
    pub config_version: i64,
    /// Messages so far (questions and answers).
    pub message_count: i64,
    /// What its answers cost so far, in nano-dollars (every attempt counted).
    pub cost_nanos: i64,
    /// True when some answer used a model without a known price: `cost_nanos`
    /// is then a lower bound and is shown as such.
    pub has_unpriced: bool,
    /// When it started (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

/// A conversation with its messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ConversationDetail {
    /// The summary.
    #[serde(flatten)]
    pub summary: ConversationSummary,
    /// Whether the pinned model accepts images.
    pub vision: bool,
    /// What the conversation's provider can draw (FR-005); `None` where
    /// image generation is unavailable (every provider but GPT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_generation: Option<ImageGeneration>,
    /// Messages, oldest first.
    pub messages: Vec<ChatMessage>,
}

/// The image model a conversation draws with and what it offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ImageGeneration {
    /// Catalog id of the image model.
    pub model: String,
    /// Its display name.
    pub model_name: String,
    /// Sizes it draws (`1024x1024`, …), the default first.
    pub sizes: Vec<String>,
    /// Qualities it draws (`low`, `medium`, `high`), the default first.
    pub qualities: Vec<String>,
}

impl ImageGeneration {
    /// What a conversation of `provider` can draw (`None`: image generation
    /// is unavailable there), defaults first.
    pub fn of_provider(
        catalog: &crate::model::catalog::Catalog,
        provider: ProviderId,
    ) -> Option<ImageGeneration> {
        let model = catalog.project_image_model(provider)?;
        let spec = model.image.as_ref()?;
        let first = |default: &str, all: Vec<&str>| {
            std::iter::once(default.to_owned())
                .chain(all.into_iter().filter(|o| *o != default).map(str::to_owned))
                .collect()
        };
        Some(ImageGeneration {
            model: model.id.clone(),
            model_name: model.name.clone(),
            sizes: first(&spec.default_size, spec.sizes()),
            qualities: first(&spec.default_quality, spec.qualities()),
        })
    }
}

/// What `POST …/conversations/:cid/images` takes: a picture to draw in the
/// conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewImage {
    /// What to draw.
    pub prompt: String,
    /// `WIDTHxHEIGHT`; the model's default when absent.
    #[serde(default)]
    pub size: Option<String>,
    /// `low`, `medium` or `high`; the model's default when absent.
    #[serde(default)]
    pub quality: Option<String>,
}

/// A drawn picture's question and answer, as stored in the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ImageExchange {
    /// The prompt, as the user's message.
    pub question: ChatMessage,
    /// The answer: the picture in `images`, its facts and cost.
    pub answer: ChatMessage,
}

crate::model::text_enum! {
    /// Who wrote a message.
    pub enum ChatRole {
        /// The person chatting.
        User = "user",
        /// The model.
        Assistant = "assistant",
    }
}

crate::model::text_enum! {
    /// Where an answer stands.
    pub enum MessageStatus {
        /// Still being generated.
        Pending = "pending",
        /// Answered in full.
        Complete = "complete",
        /// Stopped by the user (or the server shutting down); the text is partial.
        Stopped = "stopped",
        /// Failed; `error` says why, the text (if any) is partial.
        Error = "error",
    }
}

crate::model::text_enum! {
    /// A thumbs up or down on an answer.
    pub enum Rating {
        /// Thumbs up.
        Up = "up",
        /// Thumbs down.
        Down = "down",
    }
}

crate::model::text_enum! {
    /// Why a provider call failed, as the router classes it: what drives
    /// retries and fallbacks, and what the ledger, notices and errors name.
    pub enum ErrorClass {
        /// 429: retry after the provider's wait.
        RateLimited = "rateLimited",
        /// The account's quota or credit is exhausted.
        QuotaExhausted = "quotaExhausted",
        /// The provider is overloaded (e.g. Anthropic 529).
        Overloaded = "overloaded",
        /// 5xx, connection failures, timeouts, broken streams.
        Transient = "transient",
        /// The key was refused.
        Auth = "auth",
        /// The provider refused the request as malformed.
        InvalidRequest = "invalidRequest",
        /// The prompt does not fit the model's context window.
        ContextTooLong = "contextTooLong",
        /// The provider's safety filter refused the content.
        ContentFiltered = "contentFiltered",
        /// The caller went away (Stop, shutdown).
        Cancelled = "cancelled",
        /// A parameter out of the provider's range, caught before sending.
        InvalidParameter = "invalidParameter",
    }
}

/// An image attached to a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ImageAttachment {
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
    pub media_type: String,
    /// Base64 of the image bytes.
    pub data: String,
}

/// Token counts of an answer, in the ledger's disjoint buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TokenUsage {
    /// Prompt tokens at the normal input rate.
    pub input_tokens: u64,
    /// Prompt tokens read from the provider's cache.
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the provider's cache.
    pub cache_write_tokens: u64,
    /// Output tokens (reasoning included).
    pub output_tokens: u64,
    /// Of the output, reasoning tokens.
    pub reasoning_tokens: u64,
    /// True when some figure is our estimate (a cut or stopped stream), not the provider's.
    pub estimated: bool,
}

/// Why and how another model answered (FR-006: the user is told).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct FallbackNotice {
    /// The model that failed (catalog id).
    pub from: String,
    /// Its provider.
    pub from_provider: ProviderId,
    /// The model that answered (catalog id).
    pub to: String,
    /// Its provider.
    pub to_provider: ProviderId,
    /// The failure class, e.g. `rateLimited`, `overloaded`, `transient`.
    pub reason: String,
    /// The sentence shown in the conversation, e.g. "Claude 3.5 Sonnet was
    /// rate-limited — answered by GPT-4o mini".
    pub message: String,
}

/// A streamed answer that broke after it had started (shown struck out, above
/// the answer that replaced it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct InterruptedAnswer {
    /// The model whose stream broke.
    pub model: String,
    /// Its provider.
    pub provider: ProviderId,
    /// The text received before it broke.
    pub text: String,
    /// What went wrong.
    pub error: String,
}

/// The facts of one answer: who answered, what it cost, how long it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct AnswerFacts {
    /// Provider that answered.
    pub provider: ProviderId,
    /// Model that answered (catalog id).
    pub model: String,
    /// Its display name.
    pub model_name: String,
    /// Tokens of the answering attempt.
    pub usage: TokenUsage,
    /// Cost of every attempt of this answer in nano-dollars; `None` when a
    /// model without a known price was used.
    pub cost_nanos: Option<i64>,
    /// From the question to the last token, in milliseconds.
    pub latency_ms: u64,
    /// From the question to the first token, in milliseconds (streams).
    pub ttft_ms: Option<u64>,
    /// Older messages left out to fit the model's context window.
    pub trimmed_messages: u32,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    /// Message id.
    pub id: String,
    /// Who wrote it.
    pub role: ChatRole,
    /// The text (partial for stopped or failed answers).
    pub content: String,
    /// Attached images (questions) or the pictures drawn (image answers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageAttachment>,
    /// Where an answer stands (questions are always complete).
    pub status: MessageStatus,
    /// Facts of an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<AnswerFacts>,
    /// Set when a fallback answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<FallbackNotice>,
    /// Set when a stream broke mid-answer and another model took over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<InterruptedAnswer>,
    /// Why the answer failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The user's thumbs up/down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<Rating>,
    /// The knowledge base chunks an answer was given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub citations: Vec<Citation>,
    /// When it was written (RFC 3339).
    pub created_at: String,
}

/// What `POST …/messages` takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewMessage {
    /// The question.
    pub content: String,
    /// Images, for models with vision.
    #[serde(default)]
    pub images: Vec<ImageAttachment>,
}

/// A finished answer: the JSON answer of `POST …/messages`, and the last event
/// of a streamed one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChatAnswer {
    /// The answer's message id.
    pub message_id: String,
    /// The question's message id.
    pub question_id: String,
    /// The answer text.
    pub content: String,
    /// Provider that answered.
    pub provider: ProviderId,
    /// Model that answered.
    pub model: String,
    /// Tokens of the answering attempt.
    pub usage: TokenUsage,
    /// Cost of every attempt, in US dollars as an exact decimal string
    /// (`"0.000123"`); `None` when a model without a known price was used.
    pub cost_usd: Option<String>,
    /// The same in nano-dollars.
    pub cost_nanos: Option<i64>,
    /// From the question to the last token.
    pub latency_ms: u64,
    /// From the question to the first token (streams).
    pub ttft_ms: Option<u64>,
    /// Set when a fallback answered.
    pub fallback: Option<FallbackNotice>,
    /// Set when a stream broke and the fallback took over.
    pub interrupted: Option<InterruptedAnswer>,
    /// Older messages left out to fit the context window.
    pub trimmed_messages: u32,
    /// The knowledge base chunks the answer was given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub citations: Vec<Citation>,
}

/// One event of a streamed answer (server-sent events: the variant is the
/// `event:` name, the fields the JSON `data:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(tag = "event", content = "data", rename_all = "camelCase")]
pub enum ChatEvent {
    /// The question was stored; the answer has an id.
    #[serde(rename_all = "camelCase")]
    Started {
        /// The question's id.
        question_id: String,
        /// The answer's id.
        message_id: String,
    },
    /// A piece of answer text.
    Delta {
        /// The new text.
        text: String,
    },
    /// Another model is answering (before any token of the first one).
    Fallback(FallbackNotice),
    /// The stream broke after it had started; what follows (if anything) comes
    /// from the fallback, from its first token.
    Interrupted(InterruptedAnswer),
    /// The answer is complete.
    Done(Box<ChatAnswer>),
    /// The answer failed (or was stopped); nothing follows.
    #[serde(rename_all = "camelCase")]
    Error {
        /// The answer's id (its partial text is stored).
        message_id: String,
        /// The error class, e.g. `rateLimited`, `auth`, `budget`.
        error: String,
        /// What happened, in words.
        message: String,
    },
}

impl ChatEvent {
    /// The SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            ChatEvent::Started { .. } => "started",
            ChatEvent::Delta { .. } => "delta",
            ChatEvent::Fallback(_) => "fallback",
            ChatEvent::Interrupted(_) => "interrupted",
            ChatEvent::Done(_) => "done",
            ChatEvent::Error { .. } => "error",
        }
    }
}
