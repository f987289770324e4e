//! The LLM layer's one error type and the one shared classifier.
//!
//! Classes follow the design (retry what can succeed on retry, fall back on what another
//! provider can serve). Per-provider code only extracts an [`ErrorDetail`] from a body;
//! [`classify`] turns status + headers + detail into an [`LlmError`]. No error ever holds
//! an API key: errors are built from status, headers we read by name, and response bodies.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use serde::Serialize;

use super::ProviderId;
use crate::model::chat::ErrorClass;

/// What kind of failure happened; drives retry and fallback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "class", rename_all = "camelCase")]
pub enum ErrorKind {
    /// Too many requests; wait `retry_after` (when the provider said) and retry.
    #[serde(rename_all = "camelCase")]
    RateLimited {
        /// Provider-advised wait.
        retry_after: Option<Duration>,
    },
    /// Billing quota used up; retrying will not help, another provider may.
    QuotaExhausted,
    /// Provider overloaded (Anthropic 529, 503); retry later or fall back.
    #[serde(rename_all = "camelCase")]
    Overloaded {
        /// Provider-advised wait.
        retry_after: Option<Duration>,
    },
    /// 5xx, refused connection, timeout, stall, cut or malformed stream; retryable.
    Transient,
    /// Key missing, wrong or without permission.
    Auth,
    /// The request itself is wrong (bad field, unknown model).
    InvalidRequest,
    /// The prompt does not fit the model's context window.
    ContextTooLong,
    /// The provider refused the content.
    ContentFiltered,
    /// The caller gave up (dropped or cancelled the request).
    Cancelled,
    /// A parameter is out of range; raised before any network call.
    InvalidParameter {
        /// camelCase parameter name, e.g. `temperature`.
        param: String,
        /// The allowed range or values, e.g. `0–1`.
        allowed: String,
    },
}

/// An error from the LLM layer, with the provider, the HTTP status and a message.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[error("{provider} {kind_name}{status_text}: {message}", kind_name = self.kind_name(), status_text = self.status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
#[serde(rename_all = "camelCase")]
pub struct LlmError {
    /// The failure class.
    #[serde(flatten)]
    pub kind: ErrorKind,
    /// Provider that failed.
    pub provider: ProviderId,
    /// HTTP status, when a response was received.
    pub status: Option<u16>,
    /// Human-readable message (from the provider body when there was one).
    pub message: String,
    /// Raw body kept for parse errors and unknown shapes, so provider drift is debuggable.
    #[serde(skip)]
    pub raw_body: Option<String>,
}

impl LlmError {
    /// Builds an error without an HTTP response (connect errors, stream faults, validation).
    pub fn new(provider: ProviderId, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            provider,
            status: None,
            message: message.into(),
            raw_body: None,
        }
    }

    /// A response or chunk we could not parse; keeps the raw text.
    pub fn malformed(
        provider: ProviderId,
        what: &str,
        err: impl std::fmt::Display,
        raw: &str,
    ) -> Self {
        Self {
            raw_body: Some(raw.to_owned()),
            ..Self::new(
                provider,
                ErrorKind::Transient,
                format!("malformed {what}: {err}"),
            )
        }
    }

    /// Short name of the class, for display and metrics.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ErrorKind::RateLimited { .. } => "rate limited",
            ErrorKind::QuotaExhausted => "quota exhausted",
            ErrorKind::Overloaded { .. } => "overloaded",
            ErrorKind::Transient => "transient error",
            ErrorKind::Auth => "authentication error",
            ErrorKind::InvalidRequest => "invalid request",
            ErrorKind::ContextTooLong => "context too long",
            ErrorKind::ContentFiltered => "content filtered",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::InvalidParameter { .. } => "invalid parameter",
        }
    }

    /// The class as the API and the ledger name it (`rateLimited`, `auth`, …).
    pub fn class(&self) -> ErrorClass {
        match self.kind {
            ErrorKind::RateLimited { .. } => ErrorClass::RateLimited,
            ErrorKind::QuotaExhausted => ErrorClass::QuotaExhausted,
            ErrorKind::Overloaded { .. } => ErrorClass::Overloaded,
            ErrorKind::Transient => ErrorClass::Transient,
            ErrorKind::Auth => ErrorClass::Auth,
            ErrorKind::InvalidRequest => ErrorClass::InvalidRequest,
            ErrorKind::ContextTooLong => ErrorClass::ContextTooLong,
            ErrorKind::ContentFiltered => ErrorClass::ContentFiltered,
            ErrorKind::Cancelled => ErrorClass::Cancelled,
            ErrorKind::InvalidParameter { .. } => ErrorClass::InvalidParameter,
        }
    }

    /// True when the same request may succeed if sent again (after `retry_after`).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::RateLimited { .. } | ErrorKind::Overloaded { .. } | ErrorKind::Transient
        )
    }

    /// True when another provider/model could serve the request.
    pub fn can_fall_back(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::RateLimited { .. }
                | ErrorKind::QuotaExhausted
                | ErrorKind::Overloaded { .. }
                | ErrorKind::Transient
                | ErrorKind::Auth
                | ErrorKind::ContextTooLong
        )
    }

    /// Wait advised by the provider, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self.kind {
            ErrorKind::RateLimited { retry_after } | ErrorKind::Overloaded { retry_after } => {
                retry_after
            }
            _ => None,
        }
    }
}

/// What a provider adapter extracts from an error body: codes and a message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ErrorDetail {
    /// Machine-readable codes found in the body (`type`, `code`, `status`, `reason`).
    pub codes: Vec<String>,
    /// Human-readable message.
    pub message: String,
    /// A retry delay carried in the body (Gemini `RetryInfo.retryDelay`).
    pub retry_delay: Option<Duration>,
}

/// The shared classifier: status (if any) + headers + extracted detail → [`LlmError`].
///
/// `status` is `None` for errors that arrive inside a stream after HTTP 200.
pub fn classify(
    provider: ProviderId,
    status: Option<u16>,
    headers: Option<&HeaderMap>,
    detail: ErrorDetail,
    raw_body: &str,
) -> LlmError {
    let retry_after = headers
        .and_then(retry_after_from_headers)
        .or(detail.retry_delay);
    let has = |code: &str| detail.codes.iter().any(|c| c.eq_ignore_ascii_case(code));
    let msg = detail.message.to_ascii_lowercase();
    let context_too_long = has("context_length_exceeded")
        || msg.contains("prompt is too long")
        || msg.contains("context length")
        || msg.contains("context window")
        || msg.contains("maximum context")
        || (msg.contains("exceeds the maximum number of tokens"));
    let out_of_credit = msg.contains("credit balance is too low");
    let kind = if has("insufficient_quota") || has("billing_error") || out_of_credit {
        ErrorKind::QuotaExhausted
    } else if context_too_long {
        ErrorKind::ContextTooLong
    } else if has("api_key_invalid")
        || has("invalid_api_key")
        || has("authentication_error")
        || has("permission_error")
        || has("PERMISSION_DENIED")
        || has("UNAUTHENTICATED")
    {
        ErrorKind::Auth
    } else if has("content_filter") || has("content_policy_violation") {
        ErrorKind::ContentFiltered
    } else if has("overloaded_error") || has("UNAVAILABLE") || matches!(status, Some(503 | 529)) {
        ErrorKind::Overloaded { retry_after }
    } else if has("rate_limit_error")
        || has("rate_limit_exceeded")
        || has("RESOURCE_EXHAUSTED")
        || status == Some(429)
    {
        ErrorKind::RateLimited { retry_after }
    } else {
        match status {
            Some(401 | 403) => ErrorKind::Auth,
            Some(408 | 409) => ErrorKind::Transient,
            Some(s) if s >= 500 => ErrorKind::Transient,
            Some(_) => ErrorKind::InvalidRequest,
            // In-stream error without a status: a server-side failure unless the code says otherwise.
            None if has("invalid_request_error") || has("INVALID_ARGUMENT") => {
                ErrorKind::InvalidRequest
            }
            None => ErrorKind::Transient,
        }
    };
    let message = if detail.message.is_empty() {
        format!("HTTP {}", status.unwrap_or_default())
    } else {
        detail.message
    };
    LlmError {
        kind,
        provider,
        status,
        message,
        raw_body: Some(raw_body.to_owned()),
    }
}

/// Reads `retry-after-ms` (float ms), then `retry-after` (seconds, float allowed, or an HTTP date).
pub fn retry_after_from_headers(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::from_secs_f64(ms / 1000.0));
        }
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Parses a protobuf JSON duration such as `"23s"` or `"1.5s"` (Gemini `retryDelay`).
pub fn parse_proto_duration(value: &str) -> Option<Duration> {
    let secs = value.strip_suffix('s')?.parse::<f64>().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).expect("valid header"));
        }
        map
    }

    fn detail(codes: &[&str], message: &str) -> ErrorDetail {
        ErrorDetail {
            codes: codes.iter().map(|c| (*c).to_owned()).collect(),
            message: message.to_owned(),
            retry_delay: None,
        }
    }

    #[test]
    fn retry_after_is_read_as_seconds() {
        let h = headers(&[("retry-after", "20")]);
        assert_eq!(retry_after_from_headers(&h), Some(Duration::from_secs(20)));
    }

    #[test]
    fn retry_after_ms_wins_over_retry_after() {
        let h = headers(&[("retry-after", "20"), ("retry-after-ms", "1500")]);
        assert_eq!(
            retry_after_from_headers(&h),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn retry_after_is_read_as_an_http_date() {
        let when = SystemTime::now() + Duration::from_secs(120);
        let h = headers(&[("retry-after", &httpdate::fmt_http_date(when))]);
        let got = retry_after_from_headers(&h).expect("a duration");
        assert!(
            got > Duration::from_secs(115) && got <= Duration::from_secs(120),
            "{got:?}"
        );
    }

    #[test]
    fn a_past_http_date_means_retry_now() {
        let h = headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]);
        assert_eq!(retry_after_from_headers(&h), Some(Duration::ZERO));
    }

    #[test]
    fn openai_insufficient_quota_is_not_a_rate_limit() {
        let e = classify(
            ProviderId::OpenAi,
            Some(429),
            None,
            detail(&["insufficient_quota"], "You exceeded your current quota"),
            "",
        );
        assert_eq!(e.kind, ErrorKind::QuotaExhausted);
        assert!(!e.is_retryable());
        assert!(e.can_fall_back());
    }

    #[test]
    fn a_429_with_retry_after_is_rate_limited_with_that_wait() {
        let h = headers(&[("retry-after", "7")]);
        let e = classify(
            ProviderId::Claude,
            Some(429),
            Some(&h),
            detail(&["rate_limit_error"], "slow down"),
            "",
        );
        assert_eq!(
            e.kind,
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert!(e.is_retryable());
    }

    #[test]
    fn anthropic_529_is_overloaded() {
        let e = classify(
            ProviderId::Claude,
            Some(529),
            None,
            detail(&["overloaded_error"], "Overloaded"),
            "",
        );
        assert_eq!(e.kind, ErrorKind::Overloaded { retry_after: None });
    }

    #[test]
    fn gemini_resource_exhausted_takes_its_retry_delay_from_the_body() {
        let mut d = detail(&["RESOURCE_EXHAUSTED"], "Resource has been exhausted");
        d.retry_delay = parse_proto_duration("23s");
        let e = classify(ProviderId::Gemini, Some(429), None, d, "");
        assert_eq!(
            e.kind,
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(23))
            }
        );
    }

    #[test]
    fn context_length_errors_are_told_apart_from_other_bad_requests() {
        let e = classify(
            ProviderId::OpenAi,
            Some(400),
            None,
            detail(&["context_length_exceeded"], "too long"),
            "",
        );
        assert_eq!(e.kind, ErrorKind::ContextTooLong);
        let e = classify(
            ProviderId::Claude,
            Some(400),
            None,
            detail(
                &["invalid_request_error"],
                "prompt is too long: 210000 tokens > 200000 maximum",
            ),
            "",
        );
        assert_eq!(e.kind, ErrorKind::ContextTooLong);
        let e = classify(
            ProviderId::Claude,
            Some(400),
            None,
            detail(&["invalid_request_error"], "bad field"),
            "",
        );
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
    }

    #[test]
    fn gemini_invalid_key_reported_as_400_is_an_auth_error() {
        let e = classify(
            ProviderId::Gemini,
            Some(400),
            None,
            detail(
                &["INVALID_ARGUMENT", "API_KEY_INVALID"],
                "API key not valid.",
            ),
            "",
        );
        assert_eq!(e.kind, ErrorKind::Auth);
    }

    #[test]
    fn statuses_alone_classify_when_the_body_says_nothing() {
        let kind = |s| classify(ProviderId::Llama, Some(s), None, ErrorDetail::default(), "").kind;
        assert_eq!(kind(401), ErrorKind::Auth);
        assert_eq!(kind(403), ErrorKind::Auth);
        assert_eq!(kind(500), ErrorKind::Transient);
        assert_eq!(kind(503), ErrorKind::Overloaded { retry_after: None });
        assert_eq!(kind(404), ErrorKind::InvalidRequest);
    }
}
