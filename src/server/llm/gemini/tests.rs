//! Gemini adapter tests on recorded bodies from Google's cookbook and captured streams.

use secrecy::SecretString;
use serde_json::json;

use super::GeminiAdapter;
use crate::server::llm::testkit::{decode_every_split, rich_request, text_of};
use crate::server::llm::{
    Adapter, ErrorKind, FinishReason, GenerateRequest, SafetySetting, StreamEvent,
};

const TEXT_STREAM: &str = include_str!("fixtures/text_stream.txt");
const FUNCTION_CALL: &str = include_str!("fixtures/function_call_response.json");
const BLOCKED: &str = include_str!("fixtures/prompt_blocked_response.json");

fn adapter() -> GeminiAdapter {
    GeminiAdapter::new(
        "https://generativelanguage.googleapis.com",
        Some(SecretString::from("AIza-test-gemini-key")),
    )
}

fn req() -> GenerateRequest {
    GenerateRequest::simple("gemini-1.5-flash-002", "Do a flip")
}

fn expected_text() -> &'static str {
    "I can't physically do a flip.  I'm a large language model, existing only as code and data on a computer.  But I can imagine doing a flip!\n"
}

#[test]
fn the_recorded_stream_with_lf_separators_gives_text_usage_and_finish_however_split() {
    let events = decode_every_split(&adapter(), &req(), TEXT_STREAM);
    assert_eq!(
        events[0],
        StreamEvent::Start {
            id: None,
            model: "gemini-1.5-flash-002".into()
        }
    );
    assert_eq!(text_of(&events), expected_text());
    let n = events.len();
    let StreamEvent::Usage { usage } = &events[n - 2] else {
        panic!("usage expected: {events:?}")
    };
    assert_eq!((usage.input_tokens, usage.output_tokens), (20, 41));
    assert_eq!(
        events[n - 1],
        StreamEvent::Finish {
            reason: FinishReason::Stop
        }
    );
}

#[test]
fn the_same_stream_with_crlf_separators_gives_identical_events() {
    let lf = decode_every_split(&adapter(), &req(), TEXT_STREAM);
    let crlf = decode_every_split(&adapter(), &req(), &TEXT_STREAM.replace('\n', "\r\n"));
    assert_eq!(lf, crlf);
}

#[test]
fn a_stream_that_ends_without_a_finish_reason_is_cut() {
    let cut_at = TEXT_STREAM.rfind("data: ").expect("fixture has chunks");
    let events = decode_every_split(&adapter(), &req(), &TEXT_STREAM[..cut_at]);
    let Some(StreamEvent::Error { error }) = events.last() else {
        panic!("expected an error: {events:?}")
    };
    assert_eq!(error.kind, ErrorKind::Transient);
}

#[test]
fn a_function_call_response_finishes_with_tool_calls_and_object_arguments() {
    let resp = adapter()
        .parse_response(&req(), FUNCTION_CALL.as_bytes())
        .expect("parses");
    assert_eq!(resp.finish_reason, FinishReason::ToolCalls);
    assert_eq!(resp.tool_calls[0].name, "find_theaters");
    assert_eq!(resp.tool_calls[0].id, "call_0");
    assert_eq!(
        resp.tool_calls[0].arguments,
        json!({"movie": "Barbie", "location": "Mountain View, CA"})
    );
    assert_eq!(
        resp.model, "gemini-1.5-flash-002",
        "falls back to the requested model"
    );
}

#[test]
fn a_prompt_blocked_for_safety_is_a_content_filtered_error() {
    let err = adapter()
        .parse_response(&req(), BLOCKED.as_bytes())
        .expect_err("blocked");
    assert_eq!(err.kind, ErrorKind::ContentFiltered);
}

#[test]
fn cached_tokens_leave_the_prompt_bucket_and_thoughts_are_added_to_output() {
    let body = json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 323388, "candidatesTokenCount": 397, "totalTokenCount": 323805, "cachedContentTokenCount": 323383, "thoughtsTokenCount": 20}});
    let u = adapter()
        .parse_response(&req(), body.to_string().as_bytes())
        .expect("parses")
        .usage;
    assert_eq!(
        (
            u.input_tokens,
            u.cache_read_tokens,
            u.output_tokens,
            u.reasoning_tokens
        ),
        (5, 323383, 417, 20)
    );
}

#[test]
fn the_key_goes_in_a_header_never_the_url_and_the_body_has_gemini_shapes() {
    let mut r = rich_request("gemini-1.5-flash-002");
    r.parameters.temperature = Some(1.5);
    r.parameters.max_tokens = Some(800);
    r.parameters.safety_settings = vec![SafetySetting {
        category: "HARM_CATEGORY_HARASSMENT".into(),
        threshold: "BLOCK_ONLY_HIGH".into(),
    }];
    r.parameters.google_search = true;
    let http = adapter().chat_request(&r, true).expect("builds");
    assert_eq!(http.url, "https://generativelanguage.googleapis.com/v1beta/models/gemini-1.5-flash-002:streamGenerateContent?alt=sse");
    assert!(!http.url.contains("key="));
    assert!(http.headers["x-goog-api-key"].is_sensitive());
    let body = http.body.expect("body");
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "Be terse."}]})
    );
    assert_eq!(
        body["contents"][0]["parts"][1],
        json!({"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}})
    );
    assert_eq!(
        body["contents"][1],
        json!({"role": "model", "parts": [{"functionCall": {"name": "lookup", "args": {"q": 1}}}]})
    );
    assert_eq!(
        body["contents"][2]["parts"][0],
        json!({"functionResponse": {"name": "lookup", "response": {"result": "42"}}})
    );
    assert_eq!(
        body["generationConfig"],
        json!({"temperature": 1.5, "maxOutputTokens": 800})
    );
    assert_eq!(body["safetySettings"][0]["threshold"], "BLOCK_ONLY_HIGH");
    assert_eq!(
        body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}})
    );
    assert_eq!(body["tools"][1], json!({"googleSearch": {}}));
}

#[test]
fn a_resource_exhausted_body_yields_its_retry_delay_and_a_per_day_quota_is_exhaustion() {
    let extract = adapter().error_extractor();
    let rate = extract(&serde_json::from_str(r#"{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "23s"}]}}"#).expect("json")).expect("detail");
    assert_eq!(rate.retry_delay, Some(std::time::Duration::from_secs(23)));
    let quota = extract(&serde_json::from_str(r#"{"error": {"code": 429, "message": "You exceeded your current quota", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]}]}}"#).expect("json")).expect("detail");
    let err = crate::server::llm::error::classify(
        crate::server::llm::ProviderId::Gemini,
        Some(429),
        None,
        quota,
        "",
    );
    assert_eq!(err.kind, ErrorKind::QuotaExhausted);
}
