//! A project's LLM configuration (spec `LLMConfiguration`) as the settings page
//! and the JSON API see it. The API key itself never appears here: only its
//! masked form.

use crate::error::FieldError;
use crate::model::catalog::ProviderId;
use crate::model::parameters::{Parameters, ParametersPatch};
use serde::{Deserialize, Serialize};

crate::model::text_enum! {
    /// Where the provider key comes from.
    #[derive(Default)]
    pub enum KeySource {
        /// Cover's own key for the provider (from the server's environment).
        #[default]
        Managed = "managed",
        /// The project's own key ("bring your own key"), stored encrypted.
        Byok = "byok",
    }
}

crate::model::text_enum! {
    /// How a self-hosted Llama server is spoken to.
    #[derive(Default)]
    pub enum LlamaFlavour {
        /// Ollama's native `/api/chat` (NDJSON).
        #[default]
        Ollama = "ollama",
        /// Any OpenAI-compatible server (llama.cpp, vLLM, Ollama `/v1`).
        OpenAiCompatible = "openAiCompatible",
    }
}

/// What to do when the primary provider fails (spec `fallbackConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct FallbackConfig {
    /// Whether to fall back at all.
    pub enabled: bool,
    /// The fallback provider.
    pub provider: ProviderId,
    /// The fallback model (of that provider).
    pub model: String,
    /// Attempts on the primary before falling back.
    pub retry_attempts: u32,
}

/// Most attempts a project may configure on one provider.
pub const MAX_RETRY_ATTEMPTS: u32 = 10;

/// The fallback's own rules, shared by the settings page (inline errors) and
/// the settings service (422): its retries within range and, when it is on, a
/// model other than the primary.
pub fn fallback_problems(
    enabled: bool,
    fallback_model: &str,
    retry_attempts: u32,
    primary_model: &str,
) -> Vec<FieldError> {
    let mut problems = Vec::new();
    if retry_attempts > MAX_RETRY_ATTEMPTS {
        problems.push(FieldError {
            field: "fallbackConfig.retryAttempts".into(),
            message: format!("must be between 0 and {MAX_RETRY_ATTEMPTS}"),
        });
    }
    if enabled && fallback_model == primary_model {
        problems.push(FieldError {
            field: "fallbackConfig.model".into(),
            message: "must differ from the primary model".into(),
        });
    }
    problems
}
/// Longest system prompt accepted, in characters.
pub const MAX_SYSTEM_PROMPT_CHARS: usize = 20_000;

/// One saved version of a project's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct LlmConfig {
    /// The project.
    pub project_id: String,
    /// 1 for the project's first configuration, +1 for every saved change.
    pub version: i64,
    /// Active provider.
    pub provider: ProviderId,
    /// Active model (an id of the catalog).
    pub model: String,
    /// Sampling and output parameters.
    pub parameters: Parameters,
    /// Instructions sent with every conversation.
    pub system_prompt: String,
    /// Managed or BYOK key.
    pub api_key_source: KeySource,
    /// The project's stored key for the active provider, masked (`sk-ant-...k4j2`).
    pub api_key_masked: Option<String>,
    /// Fallback settings.
    pub fallback_config: FallbackConfig,
    /// Self-hosted Llama server (the server's default when `None`).
    pub base_url: Option<String>,
    /// How the Llama server is spoken to.
    pub llama_flavour: LlamaFlavour,
    /// The knowledge base's embedding model when fixed; `None` follows the
    /// provider (Claude → Voyage, GPT → OpenAI, Gemini → Gemini, Llama → Ollama).
    #[serde(default)]
    pub embedding_model: Option<String>,
    /// The embedding model in use: the fixed one, or the provider's.
    #[serde(default)]
    pub embedding_model_in_use: String,
    /// When this version was saved (RFC 3339).
    pub updated_at: String,
}

/// A provider key as a user typed it, on its way to be checked and sealed.
///
/// On the wire it is a plain string; `Debug` never shows it, so a request or
/// patch logged whole (or in a panic message) cannot leak the key. The type
/// is shared with the browser, hence a newtype rather than `secrecy`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(transparent)]
pub struct ApiKeyInput(String);

impl ApiKeyInput {
    /// Wraps a key as typed.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the code that checks or seals it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when nothing but whitespace was typed (the stored key stays).
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl std::fmt::Debug for ApiKeyInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKeyInput(<redacted>)")
    }
}

/// A partial update (`PATCH /api/projects/:id/llm-config`); absent fields keep
/// their value. `apiKey` is write-only: validated with the provider, encrypted,
/// and never returned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LlmConfigPatch {
    /// New provider; the model defaults to the provider's default model.
    pub provider: Option<ProviderId>,
    /// New model.
    pub model: Option<String>,
    /// Parameters to change (others keep their value).
    pub parameters: Option<ParametersPatch>,
    /// New system prompt.
    pub system_prompt: Option<String>,
    /// Managed or BYOK.
    pub api_key_source: Option<KeySource>,
    /// A new key for the (new) active provider; implies BYOK.
    pub api_key: Option<ApiKeyInput>,
    /// New fallback settings.
    pub fallback_config: Option<FallbackConfig>,
    /// New Llama server URL; an empty string goes back to the server default.
    pub base_url: Option<String>,
    /// New Llama API style.
    pub llama_flavour: Option<LlamaFlavour>,
    /// Fixes the knowledge base's embedding model (a catalog embedding model
    /// id); an empty string follows the provider again.
    pub embedding_model: Option<String>,
}

/// The answer of a key check (`POST /api/llm/providers/:id/validate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct KeyCheck {
    /// Whether the provider accepted the key.
    pub valid: bool,
    /// What the provider said, in words.
    pub message: String,
    /// How long the check took.
    pub latency_ms: u64,
}

/// A configuration preset for a use case (FR-003): sampling values and a
/// starting system prompt. The page applies it to the form; saving stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    /// Temperature (valid for every provider).
    pub temperature: f64,
    /// Max tokens (capped by the model's maximum when applied).
    pub max_tokens: u32,
    /// Top P.
    pub top_p: f64,
    /// Starting system prompt.
    pub system_prompt: &'static str,
}

/// The preset for a use case.
pub fn preset(use_case: crate::model::account::UseCase) -> Preset {
    use crate::model::account::UseCase;
    match use_case {
        UseCase::CustomerSupport | UseCase::Other => Preset {
            temperature: 0.3,
            max_tokens: 1024,
            top_p: 1.0,
            system_prompt: "You are a friendly, concise customer-support assistant. Answer from the knowledge base; when unsure, say so and offer to connect a person.",
        },
        UseCase::Sales => Preset {
            temperature: 0.7,
            max_tokens: 1024,
            top_p: 1.0,
            system_prompt: "You are a helpful sales assistant. Learn what the visitor needs, explain how the product helps, and suggest a clear next step.",
        },
        UseCase::TechnicalDocs => Preset {
            temperature: 0.2,
            max_tokens: 4096,
            top_p: 0.9,
            system_prompt: "You are a precise technical-documentation assistant. Quote the relevant documentation, include code where useful, and never invent APIs.",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-ant-api03-very-secret-key";

    #[test]
    fn a_patch_formatted_for_debugging_never_shows_its_key() {
        let patch = LlmConfigPatch {
            api_key: Some(ApiKeyInput::new(KEY)),
            ..LlmConfigPatch::default()
        };
        let printed = format!("{patch:?} {patch:#?}");
        assert!(!printed.contains(KEY), "{printed}");
        assert!(
            printed.contains("api_key: Some(ApiKeyInput(<redacted>))"),
            "{printed}"
        );
    }

    #[test]
    fn the_key_travels_as_a_plain_string_both_ways() {
        let patch: LlmConfigPatch =
            serde_json::from_value(serde_json::json!({ "apiKey": KEY })).expect("a patch");
        assert_eq!(patch.api_key.as_ref().map(ApiKeyInput::expose), Some(KEY));
        assert_eq!(
            serde_json::to_value(&patch).expect("JSON")["apiKey"],
            serde_json::json!(KEY)
        );
    }
}
