//! The settings page's form as it is posted (every value a string) and its one
//! parser into a configuration patch, shared by the page's server function and
//! anything else that takes the form.

use crate::error::FieldError;
use crate::model::catalog::{Catalog, ProviderId};
use crate::model::llm_config::{ApiKeyInput, KeySource, LlmConfigPatch};
use crate::model::parameters::{
    Param, ParamValue, ParametersPatch, SafetySetting, GEMINI_SAFETY_CATEGORIES,
};
use serde::{Deserialize, Serialize};

/// The Gemini harm categories the page offers (the civic-integrity one is left
/// at Gemini's default): API name, label, form field.
pub const SAFETY_CATEGORIES: [(&str, &str, &str); 4] = [
    (
        GEMINI_SAFETY_CATEGORIES[0],
        "Harassment",
        "safety_harassment",
    ),
    (
        GEMINI_SAFETY_CATEGORIES[1],
        "Hate speech",
        "safety_hate_speech",
    ),
    (
        GEMINI_SAFETY_CATEGORIES[2],
        "Sexually explicit",
        "safety_sexually_explicit",
    ),
    (
        GEMINI_SAFETY_CATEGORIES[3],
        "Dangerous content",
        "safety_dangerous_content",
    ),
];

/// The settings form as posted (every value a string, as forms send them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SettingsForm {
    /// Provider id.
    pub provider: String,
    /// Model id.
    pub model: String,
    /// Temperature.
    pub temperature: String,
    /// Max tokens.
    pub max_tokens: String,
    /// Top P.
    pub top_p: String,
    /// Top K (Claude, Gemini, Llama); empty = provider default.
    pub top_k: Option<String>,
    /// OpenAI frequency penalty; empty = none.
    pub frequency_penalty: Option<String>,
    /// OpenAI presence penalty; empty = none.
    pub presence_penalty: Option<String>,
    /// Gemini threshold for harassment; empty = Gemini's default.
    pub safety_harassment: Option<String>,
    /// Gemini threshold for hate speech.
    pub safety_hate_speech: Option<String>,
    /// Gemini threshold for sexually explicit content.
    pub safety_sexually_explicit: Option<String>,
    /// Gemini threshold for dangerous content.
    pub safety_dangerous_content: Option<String>,
    /// Gemini grounding checkbox.
    pub google_search: Option<String>,
    /// System prompt.
    pub system_prompt: String,
    /// `managed` or `byok`.
    pub api_key_source: String,
    /// A new key (empty keeps the stored one).
    pub api_key: Option<ApiKeyInput>,
    /// Fallback checkbox.
    pub fallback_enabled: Option<String>,
    /// Fallback model id.
    pub fallback_model: String,
    /// Retry attempts.
    pub retry_attempts: String,
    /// Llama server URL.
    pub base_url: Option<String>,
    /// `ollama` or `openAiCompatible`.
    pub llama_flavour: Option<String>,
    /// The knowledge base's embedding model; empty follows the provider.
    #[serde(default)]
    pub embedding_model: Option<String>,
}

impl SettingsForm {
    /// The four Gemini harm categories with the thresholds chosen for them.
    pub fn safety_thresholds(&self) -> [(&'static str, Option<&String>); 4] {
        [
            (SAFETY_CATEGORIES[0].0, self.safety_harassment.as_ref()),
            (SAFETY_CATEGORIES[1].0, self.safety_hate_speech.as_ref()),
            (
                SAFETY_CATEGORIES[2].0,
                self.safety_sexually_explicit.as_ref(),
            ),
            (
                SAFETY_CATEGORIES[3].0,
                self.safety_dangerous_content.as_ref(),
            ),
        ]
    }

    /// The parameters this form sets (only those its provider takes; an
    /// empty field clears one), or the fields that are not numbers. The one
    /// parser of the form's numbers: the page's inline check uses it too.
    pub fn parameters_patch(&self) -> (ParametersPatch, Vec<FieldError>) {
        let mut errors = Vec::new();
        let mut parameters = ParametersPatch::default();
        let provider = ProviderId::parse(&self.provider);
        let takes = |param: Param| provider.is_some_and(|p| param.supported_by(p));
        for (param, text) in [
            (Param::Temperature, Some(&self.temperature)),
            (Param::MaxTokens, Some(&self.max_tokens)),
            (Param::TopP, Some(&self.top_p)),
            (Param::TopK, self.top_k.as_ref()),
            (Param::FrequencyPenalty, self.frequency_penalty.as_ref()),
            (Param::PresencePenalty, self.presence_penalty.as_ref()),
        ] {
            if !takes(param) {
                continue;
            }
            let text = text.map(|t| t.trim()).unwrap_or_default();
            let value = if text.is_empty() {
                Ok(None)
            } else if param.is_integer() {
                text.parse::<u32>()
                    .map(|v| Some(ParamValue::Count(v)))
                    .map_err(|_| "whole number")
            } else {
                text.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .map(|v| Some(ParamValue::Decimal(v)))
                    .ok_or("number")
            };
            match value {
                Ok(value) => parameters.change(param, value),
                Err(kind) => errors.push(FieldError {
                    field: format!("parameters.{param}"),
                    message: format!("`{text}` is not a {kind}"),
                }),
            }
        }
        if takes(Param::SafetySettings) {
            let safety: Vec<SafetySetting> = self
                .safety_thresholds()
                .into_iter()
                .filter_map(|(category, threshold)| {
                    let threshold = threshold?.trim().to_owned();
                    (!threshold.is_empty()).then(|| SafetySetting {
                        category: category.to_owned(),
                        threshold,
                    })
                })
                .collect();
            parameters.change(Param::SafetySettings, Some(ParamValue::Safety(safety)));
            parameters.change(
                Param::GoogleSearch,
                Some(ParamValue::Flag(self.google_search.is_some())),
            );
        }
        (parameters, errors)
    }

    /// The JSON-API patch this form means, or the fields that are not numbers.
    pub fn to_patch(&self, catalog: &Catalog) -> Result<LlmConfigPatch, Vec<FieldError>> {
        let (parameters, mut errors) = self.parameters_patch();
        let provider = ProviderId::parse(&self.provider);
        let retry_attempts = match self.retry_attempts.trim().parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                errors.push(FieldError {
                    field: "fallbackConfig.retryAttempts".into(),
                    message: "must be a whole number".into(),
                });
                0
            }
        };
        let fallback_provider = catalog.model(&self.fallback_model).map(|m| m.provider);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(LlmConfigPatch {
            provider,
            model: Some(self.model.clone()),
            parameters: Some(parameters),
            system_prompt: Some(self.system_prompt.clone()),
            api_key_source: Some(if self.api_key_source == "byok" {
                KeySource::Byok
            } else {
                KeySource::Managed
            }),
            api_key: self.api_key.clone().filter(|k| !k.is_blank()),
            fallback_config: Some(crate::model::llm_config::FallbackConfig {
                enabled: self.fallback_enabled.is_some(),
                provider: fallback_provider.unwrap_or(ProviderId::OpenAi),
                model: self.fallback_model.clone(),
                retry_attempts,
            }),
            base_url: self.base_url.clone(),
            llama_flavour: self
                .llama_flavour
                .as_deref()
                .and_then(crate::model::llm_config::LlamaFlavour::parse),
            embedding_model: self.embedding_model.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_formatted_for_debugging_never_shows_its_key() {
        let key = "AIzaSy-very-secret-key";
        let form = SettingsForm {
            api_key: Some(ApiKeyInput::new(key)),
            ..SettingsForm::default()
        };
        let printed = format!("{form:?}");
        assert!(!printed.contains(key), "{printed}");
    }
}
