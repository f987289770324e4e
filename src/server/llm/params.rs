//! Per-provider parameter validation, a pure function shared by the settings API and by
//! every request before it touches the network.

use serde::Serialize;

use super::error::{ErrorKind, LlmError};
use super::types::{ModelLimits, Parameters};
use super::ProviderId;

/// One invalid parameter: its camelCase field name and a message with the allowed range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

/// The same check as [`validate_parameters`], as the first [`LlmError`] (request path).
pub fn check_parameters(
    provider: ProviderId,
    params: &Parameters,
    limits: Option<&ModelLimits>,
) -> Result<(), LlmError> {
    validate_parameters(provider, params, limits).map_err(|errors| {
        let first = errors.into_iter().next().unwrap_or(ParamError {
            field: String::new(),
            allowed: String::new(),
            message: String::new(),
        });
        LlmError::new(
            provider,
            ErrorKind::InvalidParameter {
                param: first.field,
                allowed: first.allowed,
            },
            first.message,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::llm::types::SafetySetting;

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

    #[test]
    fn the_request_path_reports_the_first_invalid_parameter_as_an_llm_error() {
        let p = Parameters {
            top_p: Some(-0.1),
            ..Parameters::default()
        };
        let err = check_parameters(ProviderId::Gemini, &p, None).expect_err("invalid");
        assert_eq!(
            err.kind,
            ErrorKind::InvalidParameter {
                param: "topP".into(),
                allowed: "0–1".into()
            }
        );
    }
}
