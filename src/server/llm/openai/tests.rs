//! OpenAI adapter tests on recorded bodies from the official SDK fixtures.

use secrecy::SecretString;
use serde_json::json;

use super::OpenAiAdapter;
use crate::server::llm::testkit::{decode_every_split, rich_request, text_of};
use crate::server::llm::{
    Adapter, ErrorKind, FinishReason, GenerateRequest, ProviderId, StreamEvent, Usage,
};

const TOOL_STREAM: &str = include_str!("fixtures/tool_call_stream.txt");
const TEXT_STREAM: &str = include_str!("fixtures/text_stream.txt");
const TEXT_RESPONSE: &str = include_str!("fixtures/text_response.json");
const TOOL_RESPONSE: &str = include_str!("fixtures/tool_call_response.json");

fn adapter() -> OpenAiAdapter {
    OpenAiAdapter::new(
        ProviderId::OpenAi,
        "https://api.openai.com",
        Some(SecretString::from("sk-test-openai-key")),
    )
}

fn req() -> GenerateRequest {
    GenerateRequest::simple("gpt-4o", "Hello")
}

#[test]
fn the_recorded_tool_stream_reassembles_fragmented_arguments_however_it_is_split() {
    let events = decode_every_split(&adapter(), &req(), TOOL_STREAM);
    assert_eq!(
        events[0],
        StreamEvent::Start {
            id: Some("chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62".into()),
            model: "gpt-4o-2024-08-06".into()
        }
    );
    assert_eq!(
        events[1],
        StreamEvent::ToolCallDelta {
            index: 0,
            id: Some("call_4XzlGBLtUe9dy3GVNV4jhq7h".into()),
            name: Some("get_weather".into()),
            arguments: String::new()
        }
    );
    let args: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCallDelta { arguments, .. } => Some(arguments.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(args, r#"{"city":"New York City"}"#);
    let n = events.len();
    let StreamEvent::Usage { usage } = &events[n - 2] else {
        panic!("usage expected: {events:?}")
    };
    assert_eq!(
        (
            usage.input_tokens,
            usage.cache_read_tokens,
            usage.output_tokens,
            usage.reasoning_tokens
        ),
        (44, 0, 16, 0)
    );
    assert_eq!(
        events[n - 1],
        StreamEvent::Finish {
            reason: FinishReason::ToolCalls
        }
    );
}

#[test]
fn the_recorded_text_stream_yields_text_then_the_usage_chunk_then_finish() {
    let events = decode_every_split(&adapter(), &req(), TEXT_STREAM);
    assert_eq!(text_of(&events), "I'm unable");
    let n = events.len();
    assert_eq!(
        events[n - 2],
        StreamEvent::Usage {
            usage: Usage {
                input_tokens: 14,
                cache_read_tokens: 0,
                cache_write_tokens: 0,
                output_tokens: 30,
                reasoning_tokens: 0,
                raw: json!({"prompt_tokens": 14, "completion_tokens": 30, "total_tokens": 44, "completion_tokens_details": {"reasoning_tokens": 0}})
            }
        }
    );
    assert_eq!(
        events[n - 1],
        StreamEvent::Finish {
            reason: FinishReason::Stop
        }
    );
}

#[test]
fn a_stream_without_done_is_an_error_even_after_finish_reason() {
    let cut_at = TEXT_STREAM.find("data: [DONE]").expect("fixture has DONE");
    let events = decode_every_split(&adapter(), &req(), &TEXT_STREAM[..cut_at]);
    let Some(StreamEvent::Error { error }) = events.last() else {
        panic!("expected an error: {events:?}")
    };
    assert_eq!(error.kind, ErrorKind::Transient);
}

#[test]
fn a_mid_stream_error_chunk_is_classified() {
    let recorded = "data: {\"error\": {\"message\": \"The server had an error\", \"type\": \"server_error\", \"param\": null, \"code\": null}}\n\n";
    let events = decode_every_split(&adapter(), &req(), recorded);
    let [StreamEvent::Error { error }] = events.as_slice() else {
        panic!("expected one error: {events:?}")
    };
    assert_eq!(error.kind, ErrorKind::Transient);
    assert_eq!(error.message, "The server had an error");
}

#[test]
fn a_broken_json_chunk_is_an_error_that_keeps_the_raw_text() {
    let events = decode_every_split(
        &adapter(),
        &req(),
        "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"oo\n\n",
    );
    let [StreamEvent::Error { error }] = events.as_slice() else {
        panic!("expected one error: {events:?}")
    };
    assert!(
        error.message.starts_with("malformed stream chunk"),
        "{}",
        error.message
    );
    assert_eq!(
        error.raw_body.as_deref(),
        Some("{\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"oo")
    );
}

#[test]
fn recorded_responses_parse_with_exact_usage_and_parsed_tool_arguments() {
    let text = adapter()
        .parse_response(&req(), TEXT_RESPONSE.as_bytes())
        .expect("parses");
    assert!(text
        .text()
        .starts_with("I'm unable to provide real-time weather updates."));
    assert_eq!(
        (text.usage.input_tokens, text.usage.output_tokens),
        (14, 37)
    );
    let tool = adapter()
        .parse_response(&req(), TOOL_RESPONSE.as_bytes())
        .expect("parses");
    assert_eq!(tool.finish_reason, FinishReason::ToolCalls);
    assert_eq!(tool.tool_calls[0].id, "call_Y6qJ7ofLgOrBnMD5WbVAeiRV");
    assert_eq!(
        tool.tool_calls[0].arguments,
        json!({"city": "Edinburgh", "country": "UK", "units": "c"})
    );
    assert_eq!(
        (tool.usage.input_tokens, tool.usage.output_tokens),
        (76, 24)
    );
}

#[test]
fn cached_tokens_are_moved_out_of_prompt_tokens_and_reasoning_stays_inside_output() {
    let body = json!({"id": "c", "model": "o1", "choices": [{"message": {"content": "x"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
                  "prompt_tokens_details": {"cached_tokens": 1920}, "completion_tokens_details": {"reasoning_tokens": 128}}});
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
        (86, 1920, 300, 128)
    );
}

#[test]
fn the_request_uses_bearer_auth_include_usage_image_urls_penalties_and_string_arguments() {
    let mut r = rich_request("gpt-4o");
    r.parameters.frequency_penalty = Some(0.5);
    r.parameters.presence_penalty = Some(-0.5);
    r.parameters.max_tokens = Some(100);
    let http = adapter().chat_request(&r, true).expect("builds");
    assert_eq!(http.url, "https://api.openai.com/v1/chat/completions");
    assert!(http.headers["authorization"].is_sensitive());
    let body = http.body.expect("body");
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["frequency_penalty"], 0.5);
    assert_eq!(body["presence_penalty"], -0.5);
    assert_eq!(body["max_completion_tokens"], 100);
    assert_eq!(
        body["messages"][1]["content"][1],
        json!({"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}})
    );
    assert_eq!(body["messages"][2]["content"], serde_json::Value::Null);
    assert_eq!(
        body["messages"][2]["tool_calls"][0]["function"]["arguments"],
        r#"{"q":1}"#
    );
    assert_eq!(
        body["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "42"})
    );
    assert_eq!(
        body["tool_choice"],
        json!({"type": "function", "function": {"name": "lookup"}})
    );
}

#[test]
fn llama_on_an_openai_compatible_server_reuses_the_translation_with_max_tokens_and_no_key() {
    let llama = OpenAiAdapter::new(ProviderId::Llama, "http://127.0.0.1:11434/v1/", None);
    let mut r = GenerateRequest::simple("llama3.2", "Hi");
    r.parameters.max_tokens = Some(64);
    r.parameters.top_k = Some(20);
    let http = llama.chat_request(&r, false).expect("builds");
    assert_eq!(http.url, "http://127.0.0.1:11434/v1/chat/completions");
    assert!(http.headers.get("authorization").is_none());
    let body = http.body.expect("body");
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["top_k"], 20);
    assert!(body.get("max_completion_tokens").is_none());
}
