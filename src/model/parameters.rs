//! Sampling and output parameters, and their per-provider validation: a pure
//! function shared by the settings page (inline errors, before any request),
//! the settings API (422 naming the field and its range) and the LLM layer
//! (checked before any network call).

use crate::model::catalog::{ModelInfo, ProviderId};
use serde::{Deserialize, Serialize};

/// A Gemini safety setting (category + threshold), validated against the API enums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SafetySetting {
    /// e.g. `HARM_CATEGORY_HARASSMENT`.
    pub category: String,
    /// e.g. `BLOCK_ONLY_HIGH`.
    pub threshold: String,
}

/// Sampling and output parameters; each provider accepts a subset (see `params`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Parameters {
    /// Sampling temperature (Claude 0–1, OpenAI/Gemini 0–2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling, 0–1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling (Claude, Gemini, Ollama).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Maximum output tokens; at most the model's max output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// OpenAI frequency penalty, −2…2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    /// OpenAI presence penalty, −2…2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Gemini safety settings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub safety_settings: Vec<SafetySetting>,
    /// Gemini: ground answers with Google Search.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub google_search: bool,
}

/// Facts about the model that validation needs; fed by the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ModelLimits {
    /// Largest `maxTokens` the model accepts.
    pub max_output_tokens: u32,
    /// Largest prompt + output the model accepts.
    pub context_window: u32,
}

impl From<&ModelInfo> for ModelLimits {
    fn from(model: &ModelInfo) -> Self {
        ModelLimits {
            max_output_tokens: u32::try_from(model.max_output).unwrap_or(u32::MAX),
            context_window: u32::try_from(model.context_window).unwrap_or(u32::MAX),
        }
    }
}

/// One invalid parameter: its camelCase field name and a message with the allowed range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ssr", derive(schemars::JsonSchema))]
pub struct ParamError {
    /// camelCase field name, e.g. `temperature`.
    pub field: String,
    /// The allowed range or values.
    pub allowed: String,
    /// A sentence for the user.
    pub message: String,
}

/// Gemini harm categories accepted in `safetySettings`.
pub const GEMINI_SAFETY_CATEGORIES: &[&str] = &[
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
];

/// Gemini block thresholds accepted in `safetySettings`.
pub const GEMINI_SAFETY_THRESHOLDS: &[&str] = &[
    "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
    "BLOCK_LOW_AND_ABOVE",
    "BLOCK_MEDIUM_AND_ABOVE",
    "BLOCK_ONLY_HIGH",
    "BLOCK_NONE",
    "OFF",
];

/// Checks `params` against `provider`'s ranges and the model's limits.
pub fn validate_parameters(
    provider: ProviderId,
    params: &Parameters,
    limits: Option<&ModelLimits>,
) -> Result<(), Vec<ParamError>> {
    let mut errors = Vec::new();
    let mut push = |field: &str, allowed: String, message: String| {
        errors.push(ParamError {
            field: field.to_owned(),
            allowed,
            message,
        });
    };
    let mut range = |field: &str, value: Option<f64>, lo: f64, hi: f64| {
        if let Some(v) = value {
            if !(lo..=hi).contains(&v) {
                let allowed = format!("{lo}–{hi}");
                push(
                    field,
                    allowed.clone(),
                    format!("{field} must be between {lo} and {hi} for {provider}, got {v}"),
                );
            }
        }
    };
    let max_temperature = match provider {
        ProviderId::Claude => 1.0,
        ProviderId::OpenAi | ProviderId::Gemini | ProviderId::Llama => 2.0,
    };
    range("temperature", params.temperature, 0.0, max_temperature);
    range("topP", params.top_p, 0.0, 1.0);
    if provider == ProviderId::OpenAi {
        range("frequencyPenalty", params.frequency_penalty, -2.0, 2.0);
        range("presencePenalty", params.presence_penalty, -2.0, 2.0);
    }
    let mut unsupported = |field: &str, set: bool, providers: &str| {
        if set {
            errors_push_unsupported(&mut errors, field, provider, providers);
        }
    };
    if provider != ProviderId::OpenAi {
        unsupported(
            "frequencyPenalty",
            params.frequency_penalty.is_some(),
            "OpenAI",
        );
        unsupported(
            "presencePenalty",
            params.presence_penalty.is_some(),
            "OpenAI",
        );
    }
    if provider == ProviderId::OpenAi {
        unsupported("topK", params.top_k.is_some(), "Claude, Gemini and Llama");
    }
    if provider != ProviderId::Gemini {
        unsupported(
            "safetySettings",
            !params.safety_settings.is_empty(),
            "Gemini",
        );
        unsupported("googleSearch", params.google_search, "Gemini");
    }
    if let Some(max) = params.max_tokens {
        let limit = limits.map_or(u32::MAX, |l| l.max_output_tokens);
        if max == 0 || max > limit {
            let allowed = format!("1–{limit}");
            errors.push(ParamError {
                field: "maxTokens".into(),
                message: format!(
                    "maxTokens must be between 1 and {limit} for this model, got {max}"
                ),
                allowed,
            });
        }
    }
    if provider == ProviderId::Gemini {
        for s in &params.safety_settings {
            if !GEMINI_SAFETY_CATEGORIES.contains(&s.category.as_str()) {
                errors.push(ParamError {
                    field: "safetySettings".into(),
                    allowed: GEMINI_SAFETY_CATEGORIES.join(", "),
                    message: format!("unknown safety category {}", s.category),
                });
            }
            if !GEMINI_SAFETY_THRESHOLDS.contains(&s.threshold.as_str()) {
                errors.push(ParamError {
                    field: "safetySettings".into(),
                    allowed: GEMINI_SAFETY_THRESHOLDS.join(", "),
                    message: format!("unknown safety threshold {}", s.threshold),
                });
            }
        }
        if params.stop.len() > 5 {
            errors.push(ParamError {
                field: "stop".into(),
                allowed: "at most 5 sequences".into(),
                message: "Gemini accepts at most 5 stop sequences".into(),
            });
        }
    }
    if provider == ProviderId::OpenAi && params.stop.len() > 4 {
        errors.push(ParamError {
            field: "stop".into(),
            allowed: "at most 4 sequences".into(),
            message: "OpenAI accepts at most 4 stop sequences".into(),
        });
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn errors_push_unsupported(
    errors: &mut Vec<ParamError>,
    field: &str,
    provider: ProviderId,
    providers: &str,
) {
    errors.push(ParamError {
        field: field.to_owned(),
        allowed: format!("only on {providers}"),
        message: format!("{field} is not supported by {provider}; only on {providers}"),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ModelLimits = ModelLimits {
        max_output_tokens: 8192,
        context_window: 200_000,
    };

    fn fields(provider: ProviderId, params: &Parameters) -> Vec<String> {
        validate_parameters(provider, params, Some(&LIMITS))
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn claude_rejects_a_temperature_above_one_that_openai_accepts() {
        let p = Parameters {
            temperature: Some(1.5),
            ..Parameters::default()
        };
        let errors =
            validate_parameters(ProviderId::Claude, &p, Some(&LIMITS)).expect_err("invalid");
        assert_eq!(errors[0].field, "temperature");
        assert_eq!(errors[0].allowed, "0–1");
        assert!(fields(ProviderId::OpenAi, &p).is_empty());
        assert!(fields(ProviderId::Gemini, &p).is_empty());
    }

    #[test]
    fn max_tokens_above_the_model_maximum_is_rejected_with_the_range() {
        let p = Parameters {
            max_tokens: Some(8193),
            ..Parameters::default()
        };
        let errors =
            validate_parameters(ProviderId::OpenAi, &p, Some(&LIMITS)).expect_err("invalid");
        assert_eq!(errors[0].field, "maxTokens");
        assert_eq!(errors[0].allowed, "1–8192");
    }

    #[test]
    fn penalties_are_ranged_on_openai_and_refused_elsewhere() {
        let p = Parameters {
            frequency_penalty: Some(2.5),
            presence_penalty: Some(-1.0),
            ..Parameters::default()
        };
        assert_eq!(fields(ProviderId::OpenAi, &p), vec!["frequencyPenalty"]);
        assert_eq!(
            fields(ProviderId::Claude, &p),
            vec!["frequencyPenalty", "presencePenalty"]
        );
    }

    #[test]
    fn top_p_and_top_k_follow_each_provider() {
        let p = Parameters {
            top_p: Some(1.1),
            top_k: Some(40),
            ..Parameters::default()
        };
        assert_eq!(fields(ProviderId::OpenAi, &p), vec!["topP", "topK"]);
        assert_eq!(fields(ProviderId::Gemini, &p), vec!["topP"]);
    }

    #[test]
    fn gemini_safety_settings_must_use_known_categories_and_thresholds() {
        let p = Parameters {
            safety_settings: vec![
                SafetySetting {
                    category: "HARM_CATEGORY_HARASSMENT".into(),
                    threshold: "BLOCK_ONLY_HIGH".into(),
                },
                SafetySetting {
                    category: "HARM_CATEGORY_RUDENESS".into(),
                    threshold: "BLOCK_SOMETIMES".into(),
                },
            ],
            ..Parameters::default()
        };
        assert_eq!(
            fields(ProviderId::Gemini, &p),
            vec!["safetySettings", "safetySettings"]
        );
        assert_eq!(fields(ProviderId::OpenAi, &p), vec!["safetySettings"]);
    }
}
