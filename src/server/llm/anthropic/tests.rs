//! Anthropic adapter tests on recorded bodies from the official SDK fixtures.

use secrecy::SecretString;
use serde_json::json;

use super::AnthropicAdapter;
use crate::server::llm::testkit::{decode_every_split, rich_request};
use crate::server::llm::{
    Adapter, ErrorKind, FinishReason, GenerateRequest, StreamEvent, ToolCall, Usage,
};

const BASIC_STREAM: &str = include_str!("fixtures/basic_stream.txt");
const TOOL_STREAM: &str = include_str!("fixtures/tool_use_stream.txt");
const TOOL_RESPONSE: &str = include_str!("fixtures/tool_use_response.json");
const TEXT_RESPONSE: &str = include_str!("fixtures/text_response.json");

fn adapter() -> AnthropicAdapter {
    AnthropicAdapter::new(
        "https://api.anthropic.com/",
        Some(SecretString::from("sk-ant-test-key")),
    )
}

fn req() -> GenerateRequest {
    GenerateRequest::simple("claude-3-5-sonnet-20241022", "Hello")
}

fn usage(input: u64, read: u64, write: u64, output: u64, raw: serde_json::Value) -> StreamEvent {
    StreamEvent::Usage {
        usage: Usage {
            input_tokens: input,
            cache_read_tokens: read,
            cache_write_tokens: write,
            output_tokens: output,
            reasoning_tokens: 0,
            raw,
        },
    }
}

#[test]
fn the_recorded_text_stream_gives_the_same_events_however_it_is_split() {
    let events = decode_every_split(&adapter(), &req(), BASIC_STREAM);
    assert_eq!(
        events,
        vec![
            StreamEvent::Start {
                id: Some("msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK".into()),
                model: "claude-3-opus-latest".into()
            },
            StreamEvent::TextDelta {
                text: "Hello".into()
            },
            StreamEvent::TextDelta {
                text: " there".into()
            },
            StreamEvent::TextDelta { text: "!".into() },
            usage(11, 0, 0, 6, json!({"input_tokens": 11, "output_tokens": 6})),
            StreamEvent::Finish {
                reason: FinishReason::Stop
            },
        ]
    );
}

#[test]
fn the_recorded_tool_stream_yields_the_call_and_its_streamed_json_arguments() {
    let events = decode_every_split(&adapter(), &req(), TOOL_STREAM);
    let tool_events: Vec<&StreamEvent> = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::ToolCallDelta { .. }))
        .collect();
    assert_eq!(
        tool_events[0],
        &StreamEvent::ToolCallDelta {
            index: 0,
            id: Some("toolu_01NRLabsLyVHZPKxbKvkfSMn".into()),
            name: Some("get_weather".into()),
            arguments: String::new()
        }
    );
    let args: String = tool_events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCallDelta { arguments, .. } => Some(arguments.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(args, r#"{"location": "Paris"}"#);
    let n = events.len();
    assert_eq!(
        events[n - 2],
        usage(
            377,
            0,
            0,
            65,
            json!({"input_tokens": 377, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 65, "service_tier": "standard"})
        )
    );
    assert_eq!(
        events[n - 1],
        StreamEvent::Finish {
            reason: FinishReason::ToolCalls
        }
    );
}

#[test]
fn a_mid_stream_overloaded_error_event_ends_the_stream_with_an_overloaded_error() {
    let cut_at = BASIC_STREAM
        .find("event: content_block_stop")
        .expect("fixture has a block stop");
    let recorded = format!(
        "{}event: error\ndata: {{\"type\": \"error\", \"error\": {{\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}}}\n\n",
        &BASIC_STREAM[..cut_at]
    );
    let events = decode_every_split(&adapter(), &req(), &recorded);
    let Some(StreamEvent::Error { error }) = events.last() else {
        panic!("expected an error, got {events:?}")
    };
    assert_eq!(error.kind, ErrorKind::Overloaded { retry_after: None });
    assert_eq!(error.message, "Overloaded");
    assert_eq!(events.len(), 5, "start + 3 text deltas + error: {events:?}");
}

#[test]
fn a_stream_that_closes_before_message_stop_ends_with_an_error_not_a_finish() {
    let cut_at = BASIC_STREAM
        .find("event: message_stop")
        .expect("fixture has a stop");
    let events = decode_every_split(&adapter(), &req(), &BASIC_STREAM[..cut_at]);
    let Some(StreamEvent::Error { error }) = events.last() else {
        panic!("expected an error, got {events:?}")
    };
    assert_eq!(error.kind, ErrorKind::Transient);
    assert!(!events
        .iter()
        .any(|e| matches!(e, StreamEvent::Finish { .. })));
}

#[test]
fn the_recorded_tool_response_parses_to_a_tool_call_with_exact_usage() {
    let resp = adapter()
        .parse_response(&req(), TOOL_RESPONSE.as_bytes())
        .expect("parses");
    assert_eq!(resp.model, "claude-haiku-4-5-20251001");
    assert_eq!(resp.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        resp.tool_calls,
        vec![ToolCall {
            id: "toolu_01A9HHF5Ezy3oBrKmSgfASm9".into(),
            name: "get_weather".into(),
            arguments: json!({"location": "San Francisco, CA", "units": "f"})
        }]
    );
    assert_eq!(
        (resp.usage.input_tokens, resp.usage.output_tokens),
        (656, 74)
    );
}

#[test]
fn the_recorded_text_response_parses_with_its_usage() {
    let resp = adapter()
        .parse_response(&req(), TEXT_RESPONSE.as_bytes())
        .expect("parses");
    assert_eq!(resp.text(), "Hi! My name is Claude.");
    assert_eq!(resp.finish_reason, FinishReason::Stop);
    assert_eq!(
        (resp.usage.input_tokens, resp.usage.output_tokens),
        (2095, 503)
    );
}

#[test]
fn cache_reads_and_writes_land_in_their_own_buckets_because_input_tokens_excludes_them() {
    let body = json!({"id": "msg_1", "model": "claude-3-5-sonnet-20241022", "content": [], "stop_reason": "end_turn",
                      "usage": {"input_tokens": 50, "cache_creation_input_tokens": 1200, "cache_read_input_tokens": 3000, "output_tokens": 20}});
    let u = adapter()
        .parse_response(&req(), body.to_string().as_bytes())
        .expect("parses")
        .usage;
    assert_eq!(
        (
            u.input_tokens,
            u.cache_write_tokens,
            u.cache_read_tokens,
            u.output_tokens
        ),
        (50, 1200, 3000, 20)
    );
}

#[test]
fn the_request_puts_system_at_top_level_always_sends_max_tokens_and_translates_images_and_tools() {
    let mut r = rich_request("claude-3-5-sonnet-20241022");
    r.parameters.top_k = Some(40);
    let http = adapter().chat_request(&r, true).expect("builds");
    assert_eq!(http.url, "https://api.anthropic.com/v1/messages");
    assert_eq!(http.headers["anthropic-version"], "2023-06-01");
    assert!(http.headers["x-api-key"].is_sensitive());
    let body = http.body.expect("body");
    assert_eq!(body["system"], "Be terse.");
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["stream"], true);
    assert_eq!(body["top_k"], 40);
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "lookup"})
    );
    assert_eq!(body["tools"][0]["input_schema"], json!({"type": "object"}));
    assert_eq!(
        body["messages"][0]["content"][1],
        json!({"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}})
    );
    assert_eq!(
        body["messages"][1]["content"][0],
        json!({"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"q": 1}})
    );
    assert_eq!(
        body["messages"][2],
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "42"}]})
    );
}
