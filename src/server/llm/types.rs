//! Unified, provider-neutral types (spec FR-004): messages, tools, parameters,
//! requests, responses, stream events and normalised usage.
//!
//! Every adapter translates to and from these; nothing here knows a wire format.

use serde::{Deserialize, Serialize};

use super::error::LlmError;
pub use crate::model::parameters::{ModelLimits, Parameters, SafetySetting};

/// Who wrote a message; providers spell these differently, adapters translate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// Instructions for the model (Anthropic `system`, Gemini `systemInstruction`).
    System,
    /// The human side of the conversation.
    User,
    /// The model's earlier turns, including its tool calls.
    Assistant,
    /// The result of a tool call, answering `tool_call_id`.
    Tool,
}

/// One piece of a message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ContentPart {
    /// Plain text.
    Text {
        /// The text itself.
        text: String,
    },
    /// An inline image, base64-encoded, as every provider accepts.
    #[serde(rename_all = "camelCase")]
    Image {
        /// MIME type such as `image/png`.
        media_type: String,
        /// Base64 data without a `data:` prefix.
        data: String,
    },
}

impl ContentPart {
    /// Builds a text part; the most common case deserves a short constructor.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text { text: text.into() }
    }
}

/// A tool call made by the model, with its arguments already parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolCall {
    /// Provider's call id (synthesised when the provider has none, e.g. Gemini, Ollama).
    pub id: String,
    /// Name of the tool being called.
    pub name: String,
    /// Arguments as a JSON object.
    pub arguments: serde_json::Value,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Author of the message.
    pub role: Role,
    /// Text and image parts.
    #[serde(default)]
    pub content: Vec<ContentPart>,
    /// Tool calls made in an assistant message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For `Role::Tool`: the id of the call this message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A text-only message; used by tests, the simulator and simple callers.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self::parts(role, vec![ContentPart::text(text)])
    }

    /// A message with the given parts (e.g. an image and a question).
    pub fn parts(role: Role, content: Vec<ContentPart>) -> Self {
        Self {
            role,
            content,
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// An assistant turn that called tools; sent back with the results that follow it.
    pub fn tool_calls(calls: Vec<ToolCall>) -> Self {
        Self {
            tool_calls: calls,
            ..Self::parts(Role::Assistant, Vec::new())
        }
    }

    /// The result of the tool call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(call_id.into()),
            ..Self::parts(Role::Tool, vec![ContentPart::text(text)])
        }
    }

    /// All text parts joined; providers that take a single string need this.
    pub fn joined_text(&self) -> String {
        self.content
            .iter()
            .filter_map(|p| match p {
                ContentPart::Text { text } => Some(text.as_str()),
                ContentPart::Image { .. } => None,
            })
            .collect::<Vec<_>>()
            .join("")
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolDefinition {
    /// Function name.
    pub name: String,
    /// What the tool does, for the model.
    #[serde(default)]
    pub description: String,
    /// JSON Schema (type object) of the arguments.
    pub parameters: serde_json::Value,
}

/// How the model must use the tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// The model must not call a tool.
    None,
    /// The model must call some tool.
    Required,
    /// The model must call this tool.
    Tool {
        /// Name of the forced tool.
        name: String,
    },
}

/// A request to any provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateRequest {
    /// Provider model id, e.g. `claude-3-5-sonnet-20241022`.
    pub model: String,
    /// The conversation, system messages included.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolDefinition>,
    /// How tools must be used (ignored without tools).
    #[serde(default)]
    pub tool_choice: ToolChoice,
    /// Sampling and output parameters.
    #[serde(default)]
    pub parameters: Parameters,
    /// Model facts for validation; when absent only static ranges are checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ModelLimits>,
    /// The shape the answer's text must take.
    #[serde(default)]
    pub response_format: ResponseFormat,
}

/// The shape an answer's text must take: free text, any JSON object, or JSON
/// matching a schema (OpenAI's `response_format`, Gemini's `responseMimeType`
/// and `responseJsonSchema`, Ollama's `format`). Only models whose catalog
/// [`JsonOutput`](crate::model::catalog::JsonOutput) allows it are sent one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ResponseFormat {
    /// Free text.
    #[default]
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching `schema`.
    JsonSchema {
        /// The schema's name (OpenAI requires one).
        name: String,
        /// A JSON Schema.
        schema: serde_json::Value,
        /// OpenAI's strict mode.
        strict: bool,
    },
}

impl ResponseFormat {
    /// What a model must offer to honour this format.
    pub fn needs(&self) -> crate::model::catalog::JsonOutput {
        use crate::model::catalog::JsonOutput;
        match self {
            ResponseFormat::Text => JsonOutput::None,
            ResponseFormat::JsonObject => JsonOutput::Object,
            ResponseFormat::JsonSchema { .. } => JsonOutput::Schema,
        }
    }
}

impl GenerateRequest {
    /// A single-user-message request; convenient for tests, probes and the bench.
    pub fn simple(model: impl Into<String>, prompt: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            messages: vec![Message::text(Role::User, prompt)],
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            parameters: Parameters::default(),
            limits: None,
            response_format: ResponseFormat::Text,
        }
    }
}

/// Why generation ended, normalised across providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    Stop,
    /// Output token limit reached.
    Length,
    /// The model called tools and waits for results.
    ToolCalls,
    /// A safety or content filter stopped the output.
    ContentFilter,
    /// Anything else the provider reported.
    Other,
}

/// Token usage in disjoint buckets (design: usage ledger).
///
/// `input + cache_read + cache_write` is the whole prompt; `output` includes `reasoning`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Prompt tokens billed at the normal input rate (neither read from nor written to a cache).
    pub input_tokens: u64,
    /// Prompt tokens read from a cache.
    pub cache_read_tokens: u64,
    /// Prompt tokens written to a cache.
    pub cache_write_tokens: u64,
    /// Output tokens, reasoning included.
    pub output_tokens: u64,
    /// Of `output_tokens`, the ones spent on reasoning/thinking.
    pub reasoning_tokens: u64,
    /// The provider's usage object exactly as received.
    pub raw: serde_json::Value,
}

/// A complete (non-streamed) answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateResponse {
    /// Provider's response id when it has one.
    pub id: Option<String>,
    /// Model that answered (often the dated snapshot of an alias).
    pub model: String,
    /// Text parts of the answer.
    pub content: Vec<ContentPart>,
    /// Tool calls requested by the model.
    pub tool_calls: Vec<ToolCall>,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// Exact usage as reported by the provider.
    pub usage: Usage,
}

impl GenerateResponse {
    /// The answer's text parts joined.
    pub fn text(&self) -> String {
        Message::parts(Role::Assistant, self.content.clone()).joined_text()
    }
}

/// One event of a normalised stream. A stream ends with `Finish` or `Error`, never silently.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum StreamEvent {
    /// The provider accepted the request and started answering.
    Start {
        /// Response id when known.
        id: Option<String>,
        /// Model that answers.
        model: String,
    },
    /// A piece of answer text.
    TextDelta {
        /// The new text.
        text: String,
    },
    /// A piece of a tool call; `id`/`name` arrive on the first piece of each call.
    #[serde(rename_all = "camelCase")]
    ToolCallDelta {
        /// Position of the call in the answer.
        index: u32,
        /// Call id, on the first piece.
        id: Option<String>,
        /// Tool name, on the first piece.
        name: Option<String>,
        /// A fragment of the JSON-encoded arguments; concatenate all fragments.
        arguments: String,
    },
    /// Final usage totals, sent once just before `Finish`.
    Usage {
        /// The totals.
        usage: Usage,
    },
    /// Normal end of the stream.
    Finish {
        /// Why generation ended.
        reason: FinishReason,
    },
    /// Abnormal end of the stream (upstream error, cut, stall, malformed data).
    Error {
        /// What went wrong.
        error: LlmError,
    },
}

/// A token count and whether it is exact or an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenCount {
    /// Number of prompt tokens.
    pub tokens: u64,
    /// True when counted with the provider's tokenizer or endpoint.
    pub exact: bool,
}

/// A model as listed by a provider's models endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    /// Id to put in requests.
    pub id: String,
    /// Human-readable name when the provider gives one.
    pub display_name: Option<String>,
}
