//! Ollama adapter tests on recorded bodies from Ollama's API docs.

use serde_json::json;

use super::OllamaAdapter;
use crate::server::llm::testkit::{decode_every_split, rich_request, text_of};
use crate::server::llm::{Adapter, ErrorKind, FinishReason, GenerateRequest, StreamEvent};

const STREAM: &str = include_str!("fixtures/chat_stream.ndjson");
const TOOL_RESPONSE: &str = include_str!("fixtures/tool_call_response.json");

fn adapter() -> OllamaAdapter {
    OllamaAdapter::new("http://127.0.0.1:11434", None)
}

fn req() -> GenerateRequest {
    GenerateRequest::simple("llama3.2", "Why is the sky blue?")
}

#[test]
fn the_recorded_ndjson_stream_gives_text_and_eval_counts_however_split() {
    let events = decode_every_split(&adapter(), &req(), STREAM);
    assert_eq!(
        events[0],
        StreamEvent::Start {
            id: None,
            model: "llama3.2".into()
        }
    );
    assert_eq!(text_of(&events), "The sky");
    let n = events.len();
    let StreamEvent::Usage { usage } = &events[n - 2] else {
        panic!("usage expected: {events:?}")
    };
    assert_eq!((usage.input_tokens, usage.output_tokens), (169, 15));
    assert_eq!(usage.raw["eval_duration"], 115959084);
    assert_eq!(
        events[n - 1],
        StreamEvent::Finish {
            reason: FinishReason::Stop
        }
    );
}

#[test]
fn a_stream_without_the_done_line_is_cut_and_an_error_line_is_classified() {
    let cut_at = STREAM.rfind("{\"model\"").expect("has lines");
    let events = decode_every_split(&adapter(), &req(), &STREAM[..cut_at]);
    assert!(
        matches!(events.last(), Some(StreamEvent::Error { error }) if error.kind == ErrorKind::Transient)
    );
    let events = decode_every_split(
        &adapter(),
        &req(),
        "{\"error\":\"model \\\"llama3.9\\\" not found, try pulling it first\"}\n",
    );
    let [StreamEvent::Error { error }] = events.as_slice() else {
        panic!("one error expected: {events:?}")
    };
    assert_eq!(
        error.message,
        "model \"llama3.9\" not found, try pulling it first"
    );
}

#[test]
fn the_recorded_tool_call_response_parses_with_synthetic_ids_and_exact_counts() {
    let resp = adapter()
        .parse_response(&req(), TOOL_RESPONSE.as_bytes())
        .expect("parses");
    assert_eq!(resp.finish_reason, FinishReason::ToolCalls);
    assert_eq!(resp.tool_calls[0].id, "call_0");
    assert_eq!(
        resp.tool_calls[0].arguments,
        json!({"format": "celsius", "location": "Paris, FR"})
    );
    assert_eq!(
        (resp.usage.input_tokens, resp.usage.output_tokens),
        (122, 33)
    );
}

#[test]
fn the_request_maps_max_tokens_to_num_predict_sends_raw_base64_images_and_no_auth() {
    let mut r = rich_request("llama3.2");
    r.parameters.max_tokens = Some(128);
    r.parameters.top_k = Some(40);
    let http = adapter().chat_request(&r, false).expect("builds");
    assert_eq!(http.url, "http://127.0.0.1:11434/api/chat");
    assert!(http.headers.is_empty());
    let body = http.body.expect("body");
    assert_eq!(body["stream"], false);
    assert_eq!(body["options"], json!({"top_k": 40, "num_predict": 128}));
    assert_eq!(
        body["messages"][1],
        json!({"role": "user", "content": "What is this?", "images": ["/9j/4AAQ"]})
    );
}
