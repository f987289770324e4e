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

crate::model::text_enum! {
    /// A parameter a configuration may set, by its JSON name: with [`Param::providers`]
    /// and [`Param::range`] the one table of which provider takes which parameter
    /// within which range, read by validation, the provider switch, the settings
    /// page and its form parser, and the adapters.
    pub enum Param {
        /// Sampling temperature.
        Temperature = "temperature",
        /// Maximum output tokens.
        MaxTokens = "maxTokens",
        /// Nucleus sampling.
        TopP = "topP",
        /// Top-k sampling.
        TopK = "topK",
        /// OpenAI frequency penalty.
        FrequencyPenalty = "frequencyPenalty",
        /// OpenAI presence penalty.
        PresencePenalty = "presencePenalty",
        /// Stop sequences.
        Stop = "stop",
        /// Gemini safety settings.
        SafetySettings = "safetySettings",
        /// Gemini grounding with Google Search.
        GoogleSearch = "googleSearch",
    }
}

impl Param {
    /// The providers that take it.
    pub fn providers(self) -> &'static [ProviderId] {
        use ProviderId::{Claude, Gemini, Llama, OpenAi};
        match self {
            Param::Temperature | Param::MaxTokens | Param::TopP | Param::Stop => {
                &[Claude, OpenAi, Gemini, Llama]
            }
            Param::TopK => &[Claude, Gemini, Llama],
            Param::FrequencyPenalty | Param::PresencePenalty => &[OpenAi],
            Param::SafetySettings | Param::GoogleSearch => &[Gemini],
        }
    }

    /// Whether `provider` takes it.
    pub fn supported_by(self, provider: ProviderId) -> bool {
        self.providers().contains(&provider)
    }

    /// The range of a decimal parameter on `provider`.
    pub fn range(self, provider: ProviderId) -> Option<(f64, f64)> {
        match self {
            Param::Temperature if provider == ProviderId::Claude => Some((0.0, 1.0)),
            Param::Temperature => Some((0.0, 2.0)),
            Param::TopP => Some((0.0, 1.0)),
            Param::FrequencyPenalty | Param::PresencePenalty => Some((-2.0, 2.0)),
            _ => None,
        }
    }

    /// The most stop sequences `provider` takes, when it limits them.
    pub fn max_items(self, provider: ProviderId) -> Option<usize> {
        match (self, provider) {
            (Param::Stop, ProviderId::Gemini) => Some(5),
            (Param::Stop, ProviderId::OpenAi) => Some(4),
            _ => None,
        }
    }

    /// Whether it is a whole number (the form parser's check).
    pub fn is_integer(self) -> bool {
        matches!(self, Param::MaxTokens | Param::TopK)
    }

    /// The providers that take it, for a sentence: "Claude, Gemini and Llama".
    fn providers_text(self) -> String {
        let names: Vec<&str> = self.providers().iter().map(|p| p.label()).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => names.concat(),
        }
    }

    /// Its decimal value in `params`, for the ranged parameters.
    fn decimal(self, params: &Parameters) -> Option<f64> {
        match self {
            Param::Temperature => params.temperature,
            Param::TopP => params.top_p,
            Param::FrequencyPenalty => params.frequency_penalty,
            Param::PresencePenalty => params.presence_penalty,
            _ => None,
        }
    }

    /// Whether `params` sets it.
    pub fn is_set(self, params: &Parameters) -> bool {
        match self {
            Param::MaxTokens => params.max_tokens.is_some(),
            Param::TopK => params.top_k.is_some(),
            Param::Stop => !params.stop.is_empty(),
            Param::SafetySettings => !params.safety_settings.is_empty(),
            Param::GoogleSearch => params.google_search,
            decimal => decimal.decimal(params).is_some(),
        }
    }

    /// Unsets it in `params`.
    pub fn clear(self, params: &mut Parameters) {
        match self {
            Param::Temperature => params.temperature = None,
            Param::MaxTokens => params.max_tokens = None,
            Param::TopP => params.top_p = None,
            Param::TopK => params.top_k = None,
            Param::FrequencyPenalty => params.frequency_penalty = None,
            Param::PresencePenalty => params.presence_penalty = None,
            Param::Stop => params.stop.clear(),
            Param::SafetySettings => params.safety_settings.clear(),
            Param::GoogleSearch => params.google_search = false,
        }
    }
}

impl Parameters {
    /// These parameters as `provider` takes them: the ones it does not take
    /// dropped, the temperature clamped to its range (a provider switch, and a
    /// fallback to another provider, send only what the new provider accepts).
    pub fn keep_supported(&mut self, provider: ProviderId) {
        for param in Param::ALL {
            if !param.supported_by(provider) {
                param.clear(self);
            }
        }
        if let Some((_, hi)) = Param::Temperature.range(provider) {
            self.temperature = self.temperature.map(|t| t.min(hi));
        }
    }
}

/// A parameter's new value in a [`ParametersPatch`].
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// Temperature, top P, the penalties.
    Decimal(f64),
    /// Max tokens, top K.
    Count(u32),
    /// Stop sequences.
    Texts(Vec<String>),
    /// Gemini safety settings.
    Safety(Vec<SafetySetting>),
    /// Gemini grounding.
    Flag(bool),
}

impl Param {
    /// Reads this parameter's value from JSON, or says what it should be.
    fn read(self, value: &serde_json::Value) -> Result<ParamValue, String> {
        let wrong = |what: &str| format!("wrong type: {self} must be {what}");
        match self {
            Param::Temperature | Param::TopP | Param::FrequencyPenalty | Param::PresencePenalty => {
                value
                    .as_f64()
                    .filter(|v| v.is_finite())
                    .map(ParamValue::Decimal)
                    .ok_or_else(|| wrong("a number"))
            }
            Param::MaxTokens | Param::TopK => value
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .map(ParamValue::Count)
                .ok_or_else(|| wrong("a whole number")),
            Param::Stop => serde_json::from_value(value.clone())
                .map(ParamValue::Texts)
                .map_err(|_| wrong("a list of texts")),
            Param::SafetySettings => serde_json::from_value(value.clone())
                .map(ParamValue::Safety)
                .map_err(|_| wrong("a list of {category, threshold}")),
            Param::GoogleSearch => value
                .as_bool()
                .map(ParamValue::Flag)
                .ok_or_else(|| wrong("true or false")),
        }
    }

    /// Sets it in `params` (`None` clears it); a value of another kind is ignored.
    fn set(self, params: &mut Parameters, value: Option<&ParamValue>) {
        let Some(value) = value else {
            self.clear(params);
            return;
        };
        match (self, value) {
            (Param::Temperature, ParamValue::Decimal(v)) => params.temperature = Some(*v),
            (Param::TopP, ParamValue::Decimal(v)) => params.top_p = Some(*v),
            (Param::FrequencyPenalty, ParamValue::Decimal(v)) => {
                params.frequency_penalty = Some(*v)
            }
            (Param::PresencePenalty, ParamValue::Decimal(v)) => params.presence_penalty = Some(*v),
            (Param::MaxTokens, ParamValue::Count(v)) => params.max_tokens = Some(*v),
            (Param::TopK, ParamValue::Count(v)) => params.top_k = Some(*v),
            (Param::Stop, ParamValue::Texts(v)) => params.stop = v.clone(),
            (Param::SafetySettings, ParamValue::Safety(v)) => params.safety_settings = v.clone(),
            (Param::GoogleSearch, ParamValue::Flag(v)) => params.google_search = *v,
            _ => {}
        }
    }

    fn to_json(value: &ParamValue) -> serde_json::Value {
        match value {
            ParamValue::Decimal(v) => serde_json::json!(v),
            ParamValue::Count(v) => serde_json::json!(v),
            ParamValue::Texts(v) => serde_json::json!(v),
            ParamValue::Safety(v) => serde_json::json!(v),
            ParamValue::Flag(v) => serde_json::json!(v),
        }
    }
}

/// A change to the parameters, typed: each parameter it names is set (or,
/// as `null`, cleared); the others keep their values. What could not be read
/// (an unknown name, a value of the wrong type) stays with the patch as its
/// problems, so the answer names them with every other invalid field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParametersPatch {
    /// The parameters it changes, in the order given.
    pub changes: Vec<(Param, Option<ParamValue>)>,
    /// What could not be read, by field (`parameters.<name>` or `parameters`).
    pub problems: Vec<crate::error::FieldError>,
}

impl ParametersPatch {
    /// Sets (or with `None` clears) one parameter.
    pub fn change(&mut self, param: Param, value: Option<ParamValue>) {
        self.changes.retain(|(p, _)| *p != param);
        self.changes.push((param, value));
    }

    /// Whether it changes `param`.
    pub fn changes(&self, param: Param) -> bool {
        self.changes.iter().any(|(p, _)| *p == param)
    }

    /// `params` with the changes made.
    pub fn apply_to(&self, params: &mut Parameters) {
        for (param, value) in &self.changes {
            param.set(params, value.as_ref());
        }
    }

    /// Reads a patch from its JSON object (the API's shape).
    pub fn from_json(object: &serde_json::Map<String, serde_json::Value>) -> ParametersPatch {
        let mut patch = ParametersPatch::default();
        for (name, value) in object {
            let problem =
                |field: String, message: String| crate::error::FieldError { field, message };
            match Param::parse(name) {
                None => {
                    let known: Vec<&str> = Param::ALL.iter().map(|p| p.as_str()).collect();
                    patch.problems.push(problem(
                        format!("parameters.{name}"),
                        format!("unknown parameter; known: {}", known.join(", ")),
                    ));
                }
                Some(param) if value.is_null() => patch.change(param, None),
                Some(param) => match param.read(value) {
                    Ok(read) => patch.change(param, Some(read)),
                    Err(message) => patch.problems.push(problem("parameters".into(), message)),
                },
            }
        }
        patch
    }
}

impl Serialize for ParametersPatch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.changes.len()))?;
        for (param, value) in &self.changes {
            map.serialize_entry(param.as_str(), &value.as_ref().map(Param::to_json))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ParametersPatch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let object = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        Ok(ParametersPatch::from_json(&object))
    }
}

#[cfg(feature = "ssr")]
impl schemars::JsonSchema for ParametersPatch {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ParametersPatch".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let safety = generator.subschema_for::<Vec<SafetySetting>>();
        let properties: serde_json::Map<String, serde_json::Value> = Param::ALL
            .iter()
            .map(|param| {
                let value = match param {
                    Param::Temperature
                    | Param::TopP
                    | Param::FrequencyPenalty
                    | Param::PresencePenalty => serde_json::json!({"type": "number"}),
                    Param::MaxTokens | Param::TopK => {
                        serde_json::json!({"type": "integer", "minimum": 0})
                    }
                    Param::Stop => {
                        serde_json::json!({"type": "array", "items": {"type": "string"}})
                    }
                    Param::SafetySettings => safety.clone().to_value(),
                    Param::GoogleSearch => serde_json::json!({"type": "boolean"}),
                };
                let nullable = serde_json::json!({"anyOf": [value, {"type": "null"}]});
                (param.as_str().to_owned(), nullable)
            })
            .collect();
        schemars::json_schema!({
            "type": "object",
            "description": "The parameters to change: null clears one, absent ones keep their values",
            "properties": properties,
            "additionalProperties": false,
        })
    }
}

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
    for param in Param::ALL.into_iter().filter(|p| p.is_set(params)) {
        let field = param.as_str();
        if !param.supported_by(provider) {
            let providers = param.providers_text();
            push(
                field,
                format!("only on {providers}"),
                format!("{field} is not supported by {provider}; only on {providers}"),
            );
            continue;
        }
        if let (Some((lo, hi)), Some(v)) = (param.range(provider), param.decimal(params)) {
            if !(lo..=hi).contains(&v) {
                push(
                    field,
                    format!("{lo}–{hi}"),
                    format!("{field} must be between {lo} and {hi} for {provider}, got {v}"),
                );
            }
        }
        if let Some(most) = param.max_items(provider) {
            if params.stop.len() > most {
                push(
                    field,
                    format!("at most {most} sequences"),
                    format!("{} accepts at most {most} stop sequences", provider.label()),
                );
            }
        }
    }
    if let Some(max) = params.max_tokens {
        let limit = limits.map_or(u32::MAX, |l| l.max_output_tokens);
        if max == 0 || max > limit {
            push(
                "maxTokens",
                format!("1–{limit}"),
                format!("maxTokens must be between 1 and {limit} for this model, got {max}"),
            );
        }
    }
    if Param::SafetySettings.supported_by(provider) {
        for s in &params.safety_settings {
            if !GEMINI_SAFETY_CATEGORIES.contains(&s.category.as_str()) {
                push(
                    "safetySettings",
                    GEMINI_SAFETY_CATEGORIES.join(", "),
                    format!("unknown safety category {}", s.category),
                );
            }
            if !GEMINI_SAFETY_THRESHOLDS.contains(&s.threshold.as_str()) {
                push(
                    "safetySettings",
                    GEMINI_SAFETY_THRESHOLDS.join(", "),
                    format!("unknown safety threshold {}", s.threshold),
                );
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
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

    #[test]
    fn a_provider_switch_keeps_only_what_the_new_provider_takes() {
        let mut p = Parameters {
            temperature: Some(1.5),
            top_k: Some(40),
            frequency_penalty: Some(0.5),
            google_search: true,
            ..Parameters::default()
        };
        p.keep_supported(ProviderId::Claude);
        assert_eq!(
            p,
            Parameters {
                temperature: Some(1.0),
                top_k: Some(40),
                ..Parameters::default()
            }
        );
        assert!(fields(ProviderId::Claude, &p).is_empty());
    }
}
