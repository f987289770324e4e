//! Small JSON helpers shared by the adapters (parsing with the raw body kept, typed reads).

use serde_json::Value;

use super::error::{classify, ErrorDetail, ErrorKind, LlmError};
use serde_json::{json, Map};

use super::types::{ModelInfo, Parameters, StreamEvent};
use super::ProviderId;
use crate::model::parameters::Param;

/// Parses JSON, keeping the raw text in the error when the provider sent something else.
pub(crate) fn parse_json(
    provider: ProviderId,
    what: &str,
    bytes: &[u8],
) -> Result<Value, LlmError> {
    serde_json::from_slice(bytes)
        .map_err(|err| LlmError::malformed(provider, what, err, &String::from_utf8_lossy(bytes)))
}

/// Reads a non-negative integer at a JSON pointer, 0 when absent.
pub(crate) fn u64_at(value: &Value, pointer: &str) -> u64 {
    value.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

/// Reads a string at a JSON pointer.
pub(crate) fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// Removes a trailing `/` and an API version suffix so base URLs may be given either way.
pub(crate) fn trim_base(base_url: &str, version_suffix: &str) -> String {
    let trimmed = base_url.trim_end_matches('/');
    trimmed
        .strip_suffix(version_suffix)
        .unwrap_or(trimmed)
        .to_owned()
}

/// A synthetic tool-call id for providers that do not send one (Gemini, Ollama).
pub(crate) fn synthetic_call_id(index: usize) -> String {
    format!("call_{index}")
}

/// Pushes a text delta unless it is empty (providers send empty deltas on block starts).
pub(crate) fn push_text(out: &mut Vec<StreamEvent>, text: Option<&str>) {
    if let Some(text) = text.filter(|t| !t.is_empty()) {
        out.push(StreamEvent::TextDelta {
            text: text.to_owned(),
        });
    }
}

/// Turns an error object found inside a stream (after HTTP 200) into a classified error.
pub(crate) fn in_band_error(
    provider: ProviderId,
    detail: Option<ErrorDetail>,
    raw: &str,
) -> Result<(), LlmError> {
    match detail {
        Some(detail) => Err(classify(provider, None, None, detail, raw)),
        None => Ok(()),
    }
}

/// The error for a stream that closed before the provider's end marker.
pub(crate) fn ended_early(provider: ProviderId, marker: &str) -> LlmError {
    LlmError::new(
        provider,
        ErrorKind::Transient,
        format!("stream ended before {marker}"),
    )
}

/// Fails with [`ended_early`] unless the end marker was seen.
pub(crate) fn require_end(done: bool, provider: ProviderId, marker: &str) -> Result<(), LlmError> {
    if done {
        Ok(())
    } else {
        Err(ended_early(provider, marker))
    }
}

/// Reads a models list: the array at `list`, each with an id at `id` (a Gemini-style
/// `models/` prefix removed) and an optional display name at `name`.
pub(crate) fn parse_model_list(
    provider: ProviderId,
    body: &[u8],
    list: &str,
    id: &str,
    name: Option<&str>,
) -> Result<Vec<ModelInfo>, LlmError> {
    let v = parse_json(provider, "models list", body)?;
    Ok(v.pointer(list)
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let raw = str_at(m, id)?;
            Some(ModelInfo {
                id: raw.strip_prefix("models/").unwrap_or(raw).to_owned(),
                display_name: name.and_then(|n| str_at(m, n)).map(str::to_owned),
            })
        })
        .collect())
}

/// The names a provider gives the common sampling parameters (`None`: not sent).
pub(crate) struct ParamNames {
    /// Temperature key.
    pub temperature: &'static str,
    /// Nucleus-sampling key.
    pub top_p: &'static str,
    /// Top-k key, when the provider has one.
    pub top_k: Option<&'static str>,
    /// Output-limit key.
    pub max_tokens: &'static str,
    /// Stop-sequences key.
    pub stop: &'static str,
    /// Frequency/presence penalty keys, when the provider has them.
    pub penalties: Option<(&'static str, &'static str)>,
}

/// Maps the parameters that are set and that `provider` takes (the table of
/// [`Param`]) onto `target` under the dialect's names.
pub(crate) fn put_parameters(
    target: &mut Map<String, Value>,
    provider: ProviderId,
    p: &Parameters,
    names: &ParamNames,
) {
    let mut put = |param: Param, key: Option<&str>, value: Option<Value>| {
        if let (true, Some(key), Some(value)) = (param.supported_by(provider), key, value) {
            target.insert(key.to_owned(), value);
        }
    };
    put(
        Param::Temperature,
        Some(names.temperature),
        p.temperature.map(Value::from),
    );
    put(Param::TopP, Some(names.top_p), p.top_p.map(Value::from));
    put(Param::TopK, names.top_k, p.top_k.map(Value::from));
    put(
        Param::MaxTokens,
        Some(names.max_tokens),
        p.max_tokens.map(Value::from),
    );
    put(
        Param::Stop,
        Some(names.stop),
        (!p.stop.is_empty()).then(|| json!(p.stop)),
    );
    put(
        Param::FrequencyPenalty,
        names.penalties.map(|(f, _)| f),
        p.frequency_penalty.map(Value::from),
    );
    put(
        Param::PresencePenalty,
        names.penalties.map(|(_, pr)| pr),
        p.presence_penalty.map(Value::from),
    );
}
