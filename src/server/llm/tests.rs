//! End-to-end tests: every adapter over real HTTP against the in-process simulator —
//! text, tools, images, usage figures, every error class, stream faults and secrets.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::CONTENT_TYPE;
use secrecy::SecretString;
use serde_json::json;

use super::executor::MAX_BODY_BYTES;
use super::stream::MAX_ANSWER_BYTES;
use super::testkit::{quick_executor, start_simulator, test_executor, text_of};
use super::{
    build_provider, ContentPart, ErrorKind, Executor, FinishReason, GenerateRequest, LlamaFlavour,
    LlmError, Message, Provider, ProviderId, Role, StreamEvent, Timeouts, TokenCount, ToolChoice,
    ToolDefinition,
};
use crate::server::simulator::{Fault, SimulatorOptions};

const KEY: &str = "sk-secret-test-key-0123456789";

/// The five ways Cover reaches a model.
fn targets() -> Vec<(ProviderId, LlamaFlavour, &'static str)> {
    vec![
        (
            ProviderId::Claude,
            LlamaFlavour::Ollama,
            "claude-3-5-sonnet-20241022",
        ),
        (
            ProviderId::OpenAi,
            LlamaFlavour::Ollama,
            "gpt-4o-2024-08-06",
        ),
        (
            ProviderId::Gemini,
            LlamaFlavour::Ollama,
            "gemini-1.5-flash-002",
        ),
        (ProviderId::Llama, LlamaFlavour::Ollama, "llama3.2"),
        (
            ProviderId::Llama,
            LlamaFlavour::OpenAiCompatible,
            "llama3.2",
        ),
    ]
}

fn provider(
    executor: &Executor,
    url: &str,
    id: ProviderId,
    flavour: LlamaFlavour,
    key: &str,
) -> Arc<dyn Provider> {
    build_provider(executor, id, url, Some(SecretString::from(key)), flavour)
}

async fn sim_with(opts: SimulatorOptions) -> super::testkit::Sim {
    start_simulator(opts).await
}

async fn sim_fault(fault: Fault) -> super::testkit::Sim {
    sim_with(SimulatorOptions {
        fault_rate: 1.0,
        fault,
        ..SimulatorOptions::default()
    })
    .await
}

fn weather_request(model: &str) -> GenerateRequest {
    let mut req = GenerateRequest::simple(model, "Paris");
    req.tools = vec![ToolDefinition {
        name: "get_weather".into(),
        description: "Current weather in a city".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    }];
    req.tool_choice = ToolChoice::Required;
    req
}

async fn collect(stream: super::EventStream) -> Vec<StreamEvent> {
    stream.collect().await
}

fn last_error(events: &[StreamEvent]) -> &LlmError {
    match events.last() {
        Some(StreamEvent::Error { error }) => error,
        other => panic!("expected the stream to end with an error, got {other:?} in {events:?}"),
    }
}

#[tokio::test]
async fn every_adapter_generates_the_simulated_answer_with_exact_usage() {
    let sim = sim_with(SimulatorOptions::default()).await;
    let executor = test_executor();
    for (id, flavour, model) in targets() {
        let p = provider(&executor, &sim.url, id, flavour, KEY);
        let resp = p
            .generate(&GenerateRequest::simple(model, "Hello there"))
            .await
            .unwrap_or_else(|e| panic!("{id} {flavour:?}: {e}"));
        assert_eq!(
            resp.text(),
            "This is a simulated answer to: Hello there",
            "{id} {flavour:?}"
        );
        assert_eq!(resp.finish_reason, FinishReason::Stop, "{id} {flavour:?}");
        assert_eq!(
            (resp.usage.input_tokens, resp.usage.output_tokens),
            (3, 8),
            "{id} {flavour:?}"
        );
        assert_eq!(
            (
                resp.usage.cache_read_tokens,
                resp.usage.cache_write_tokens,
                resp.usage.reasoning_tokens
            ),
            (0, 0, 0)
        );
    }
}

#[tokio::test]
async fn every_adapter_streams_text_then_usage_then_finish() {
    let sim = sim_with(SimulatorOptions::default()).await;
    let executor = test_executor();
    for (id, flavour, model) in targets() {
        let p = provider(&executor, &sim.url, id, flavour, KEY);
        let events = collect(
            p.stream(&GenerateRequest::simple(model, "Hello there"))
                .await
                .expect("stream opens"),
        )
        .await;
        assert!(
            matches!(&events[0], StreamEvent::Start { model: m, .. } if m == model),
            "{id} {flavour:?}: {events:?}"
        );
        assert_eq!(
            text_of(&events),
            "This is a simulated answer to: Hello there",
            "{id} {flavour:?}"
        );
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, StreamEvent::TextDelta { .. }))
                .count(),
            8,
            "{id} {flavour:?}"
        );
        let n = events.len();
        let StreamEvent::Usage { usage } = &events[n - 2] else {
            panic!("{id} {flavour:?}: {events:?}")
        };
        assert_eq!(
            (usage.input_tokens, usage.output_tokens),
            (3, 8),
            "{id} {flavour:?}"
        );
        assert_eq!(
            events[n - 1],
            StreamEvent::Finish {
                reason: FinishReason::Stop
            },
            "{id} {flavour:?}"
        );
    }
}

#[tokio::test]
async fn max_tokens_cuts_the_answer_and_finishes_for_length() {
    let sim = sim_with(SimulatorOptions::default()).await;
    let executor = test_executor();
    for (id, flavour, model) in targets() {
        let p = provider(&executor, &sim.url, id, flavour, KEY);
        let mut req = GenerateRequest::simple(model, "Hello there");
        req.parameters.max_tokens = Some(3);
        let resp = p.generate(&req).await.expect("generates");
        assert_eq!(
            (resp.text().as_str(), resp.finish_reason),
            ("This is a", FinishReason::Length),
            "{id} {flavour:?}"
        );
    }
}

#[tokio::test]
async fn forced_tools_come_back_as_tool_calls_whole_and_streamed() {
    let sim = sim_with(SimulatorOptions::default()).await;
    let executor = test_executor();
    for (id, flavour, model) in targets() {
        let p = provider(&executor, &sim.url, id, flavour, KEY);
        let resp = p
            .generate(&weather_request(model))
            .await
            .expect("generates");
        assert_eq!(
            resp.finish_reason,
            FinishReason::ToolCalls,
            "{id} {flavour:?}"
        );
        assert_eq!(resp.tool_calls.len(), 1, "{id} {flavour:?}");
        assert_eq!(resp.tool_calls[0].name, "get_weather");
        assert_eq!(
            resp.tool_calls[0].arguments,
            json!({"city": "Paris"}),
            "{id} {flavour:?}"
        );
        assert!(!resp.tool_calls[0].id.is_empty());

        let events = collect(
            p.stream(&weather_request(model))
                .await
                .expect("stream opens"),
        )
        .await;
        let args: String = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCallDelta { arguments, .. } => Some(arguments.as_str()),
                _ => None,
            })
            .collect();
        let parsed: serde_json::Value =
            serde_json::from_str(&args).unwrap_or_else(|e| panic!("{id} {flavour:?}: {e}: {args}"));
        assert_eq!(parsed, json!({"city": "Paris"}), "{id} {flavour:?}");
        assert!(events.iter().any(
            |e| matches!(e, StreamEvent::ToolCallDelta { name: Some(n), .. } if n == "get_weather")
        ));
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Finish {
                reason: FinishReason::ToolCalls
            }),
            "{id} {flavour:?}"
        );
    }
}

#[tokio::test]
async fn parallel_tool_calls_come_back_in_order_with_their_index_from_every_adapter() {
    let sim = sim_with(SimulatorOptions::default()).await;
    let executor = test_executor();
    let asked = |model: &str| {
        let mut req = weather_request(model);
        req.messages = vec![super::Message::text(super::Role::User, "Paris and London")];
        req
    };
    for (id, flavour, model) in targets() {
        let p = provider(&executor, &sim.url, id, flavour, KEY);
        let resp = p.generate(&asked(model)).await.expect("generates");
        let cities: Vec<&serde_json::Value> = resp
            .tool_calls
            .iter()
            .map(|c| &c.arguments["city"])
            .collect();
        assert_eq!(
            cities,
            [&json!("Paris"), &json!("London")],
            "{id} {flavour:?}"
        );

        let events = collect(p.stream(&asked(model)).await.expect("stream opens")).await;
        let mut arguments = [String::new(), String::new()];
        let mut named = [0, 0];
        for event in &events {
            if let StreamEvent::ToolCallDelta {
                index,
                name,
                arguments: piece,
                ..
            } = event
            {
                let slot = *index as usize;
                assert!(slot < 2, "{id} {flavour:?}: index {index}");
                named[slot] += usize::from(name.is_some());
                arguments[slot].push_str(piece);
            }
        }
        assert_eq!(named, [1, 1], "{id} {flavour:?}: {events:?}");
        let streamed: Vec<serde_json::Value> = arguments
            .iter()
            .map(|a| serde_json::from_str::<serde_json::Value>(a).unwrap()["city"].clone())
            .collect();
        assert_eq!(
            streamed,
            [json!("Paris"), json!("London")],
            "{id} {flavour:?}"
        );
    }
}

#[tokio::test]
async fn json_output_is_asked_for_in_each_providers_own_form() {
    let sim = sim_with(SimulatorOptions::default()).await;
    let executor = test_executor();
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city", "days"]});
    // Claude 3.x has no JSON mode: the gateway never sends it one.
    for (id, flavour, model) in targets().into_iter().filter(|t| t.0 != ProviderId::Claude) {
        let p = provider(&executor, &sim.url, id, flavour, KEY);
        let mut req = GenerateRequest::simple(model, "Paris, as JSON");
        req.response_format = super::ResponseFormat::JsonObject;
        let resp = p.generate(&req).await.expect("generates");
        let answer: serde_json::Value = serde_json::from_str(&resp.text())
            .unwrap_or_else(|e| panic!("{id} {flavour:?}: {e}: {}", resp.text()));
        assert_eq!(
            answer,
            json!({"answer": "This is a simulated answer to: Paris, as JSON"}),
            "{id} {flavour:?}"
        );
        req.response_format = super::ResponseFormat::JsonSchema {
            name: "forecast".into(),
            schema: schema.clone(),
            strict: true,
        };
        let events = collect(p.stream(&req).await.expect("stream opens")).await;
        let streamed: serde_json::Value = serde_json::from_str(&text_of(&events))
            .unwrap_or_else(|e| panic!("{id} {flavour:?}: {e}: {}", text_of(&events)));
        assert_eq!(
            streamed,
            json!({"city": "Paris, as JSON", "days": 42}),
            "{id} {flavour:?}"
        );
    }
}

#[tokio::test]
async fn images_are_accepted_by_every_adapter() {
    let sim = sim_with(SimulatorOptions::default()).await;
    let executor = test_executor();
    for (id, flavour, model) in targets() {
        let p = provider(&executor, &sim.url, id, flavour, KEY);
        let mut req = GenerateRequest::simple(model, "");
        req.messages = vec![Message::parts(
            Role::User,
            vec![
                ContentPart::Image {
                    media_type: "image/png".into(),
                    data: "iVBORw0KGgo=".into(),
                },
                ContentPart::text("Describe it"),
            ],
        )];
        let resp = p
            .generate(&req)
            .await
            .unwrap_or_else(|e| panic!("{id} {flavour:?}: {e}"));
        assert_eq!(
            resp.text(),
            "This is a simulated answer to: Describe it",
            "{id} {flavour:?}"
        );
    }
}

#[tokio::test]
async fn every_status_fault_maps_to_its_error_class_for_every_provider() {
    use ErrorKind::*;
    let one_second = Some(Duration::from_secs(1));
    // (fault, [claude, openai, gemini, ollama, llama-openai-compatible])
    let table: Vec<(Fault, [ErrorKind; 5])> = vec![
        (
            Fault::RateLimit,
            std::array::from_fn(|_| RateLimited {
                retry_after: one_second,
            }),
        ),
        (
            Fault::Overloaded,
            std::array::from_fn(|_| Overloaded { retry_after: None }),
        ),
        (
            Fault::Unavailable,
            std::array::from_fn(|_| Overloaded { retry_after: None }),
        ),
        (Fault::ServerError, std::array::from_fn(|_| Transient)),
        (Fault::Unauthorized, std::array::from_fn(|_| Auth)),
        (
            Fault::Quota,
            [
                QuotaExhausted,
                QuotaExhausted,
                QuotaExhausted,
                RateLimited {
                    retry_after: one_second,
                },
                QuotaExhausted,
            ],
        ),
        (
            Fault::ContextTooLong,
            std::array::from_fn(|_| ContextTooLong),
        ),
    ];
    let executor = test_executor();
    for (fault, expected) in table {
        let sim = sim_fault(fault).await;
        for ((id, flavour, model), want) in targets().into_iter().zip(expected) {
            let p = provider(&executor, &sim.url, id, flavour, KEY);
            let req = GenerateRequest::simple(model, "Hi");
            let err = p.generate(&req).await.expect_err("the fault is an error");
            assert_eq!(err.kind, want, "{fault:?} on {id} {flavour:?}: {err}");
            assert!(err.status.is_some(), "{fault:?} on {id}: status kept");
            let err = match p.stream(&req).await {
                Err(err) => err,
                Ok(_) => panic!(
                    "{fault:?} on {id} {flavour:?}: a failed status must not become a stream"
                ),
            };
            assert_eq!(err.kind, want, "{fault:?} streamed on {id} {flavour:?}");
        }
    }
}

#[tokio::test]
async fn stream_faults_end_in_an_error_event_after_the_first_tokens() {
    let executor = quick_executor();
    for fault in [Fault::Stall, Fault::Cut, Fault::Malformed] {
        let sim = sim_fault(fault).await;
        for (id, flavour, model) in targets() {
            let p = provider(&executor, &sim.url, id, flavour, KEY);
            let events = collect(
                p.stream(&GenerateRequest::simple(
                    model,
                    "Tell me a long story please",
                ))
                .await
                .expect("headers arrive"),
            )
            .await;
            assert!(
                !text_of(&events).is_empty(),
                "{fault:?} {id} {flavour:?}: some tokens first: {events:?}"
            );
            let err = last_error(&events);
            assert_eq!(
                err.kind,
                ErrorKind::Transient,
                "{fault:?} {id} {flavour:?}: {err}"
            );
            assert!(
                !events
                    .iter()
                    .any(|e| matches!(e, StreamEvent::Finish { .. })),
                "{fault:?} {id}: never a success"
            );
            if fault == Fault::Stall {
                assert!(err.message.contains("stalled"), "{}", err.message);
            }
            if fault == Fault::Malformed {
                assert!(err.message.contains("malformed"), "{}", err.message);
            }
        }
    }
}

#[tokio::test]
async fn a_broken_non_streamed_answer_is_an_error_with_the_raw_body() {
    let executor = test_executor();
    for fault in [Fault::Cut, Fault::Malformed] {
        let sim = sim_fault(fault).await;
        for (id, flavour, model) in targets() {
            let p = provider(&executor, &sim.url, id, flavour, KEY);
            let err = p
                .generate(&GenerateRequest::simple(model, "Hi"))
                .await
                .expect_err("broken");
            assert_eq!(err.kind, ErrorKind::Transient, "{fault:?} {id}: {err}");
            assert!(err.raw_body.is_some(), "{fault:?} {id}: raw body kept");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_non_streamed_answer_that_stalls_halfway_times_out_as_transient() {
    let sim = sim_fault(Fault::Stall).await;
    let executor = quick_executor();
    for (id, flavour, model) in targets() {
        let p = provider(&executor, &sim.url, id, flavour, KEY);
        let err = p
            .generate(&GenerateRequest::simple(model, "Hi"))
            .await
            .expect_err("stalls");
        assert_eq!(err.kind, ErrorKind::Transient, "{id}: {err}");
        assert!(
            err.message.starts_with("timed out"),
            "{id}: {}",
            err.message
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_sends_headers_times_out_as_transient() {
    let sim = sim_fault(Fault::Hang).await;
    let executor = quick_executor();
    for (id, flavour, model) in targets() {
        let p = provider(&executor, &sim.url, id, flavour, KEY);
        let started = tokio::time::Instant::now();
        let err = p
            .generate(&GenerateRequest::simple(model, "Hi"))
            .await
            .expect_err("hangs");
        assert_eq!(err.kind, ErrorKind::Transient, "{id}: {err}");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(
            p.stream(&GenerateRequest::simple(model, "Hi"))
                .await
                .is_err(),
            "{id}: a hung stream never opens"
        );
    }
}

#[tokio::test]
async fn dropping_a_stream_closes_the_upstream_request() {
    let sim = sim_with(SimulatorOptions {
        tokens_per_second: 20.0,
        ..SimulatorOptions::default()
    })
    .await;
    let executor = test_executor();
    for (id, flavour, model) in targets() {
        let p = provider(&executor, &sim.url, id, flavour, KEY);
        let mut stream = p
            .stream(&GenerateRequest::simple(model, "Hello there"))
            .await
            .expect("opens");
        let _first = stream.next().await;
        assert_eq!(
            sim.stats.open_streams.load(Ordering::SeqCst),
            1,
            "{id}: the simulator is streaming"
        );
        drop(stream);
        let mut closed = false;
        for _ in 0..50 {
            if sim.stats.open_streams.load(Ordering::SeqCst) == 0 {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            closed,
            "{id} {flavour:?}: the upstream stream was not closed after the consumer dropped it"
        );
    }
}

#[tokio::test]
async fn a_wrong_key_is_an_auth_error_and_the_right_key_validates() {
    let sim = sim_with(SimulatorOptions {
        accept_key: Some(KEY.into()),
        ..SimulatorOptions::default()
    })
    .await;
    let executor = test_executor();
    for (id, flavour) in [
        (ProviderId::Claude, LlamaFlavour::Ollama),
        (ProviderId::OpenAi, LlamaFlavour::Ollama),
        (ProviderId::Gemini, LlamaFlavour::Ollama),
    ] {
        let wrong = provider(
            &executor,
            &sim.url,
            id,
            flavour,
            "sk-wrong-key-that-must-not-leak",
        );
        let err = wrong.validate_api_key().await.expect_err("wrong key");
        assert_eq!(err.kind, ErrorKind::Auth, "{id}: {err}");
        let text = format!(
            "{err} {err:?} {}",
            serde_json::to_string(&err).expect("serialises")
        );
        assert!(
            !text.contains("sk-wrong-key-that-must-not-leak"),
            "{id}: key leaked in {text}"
        );
        provider(&executor, &sim.url, id, flavour, KEY)
            .validate_api_key()
            .await
            .expect("right key");
    }
}

#[tokio::test]
async fn llama_needs_no_key_on_either_flavour() {
    let sim = sim_with(SimulatorOptions {
        accept_key: Some(KEY.into()),
        ..SimulatorOptions::default()
    })
    .await;
    let executor = test_executor();
    for flavour in [LlamaFlavour::Ollama, LlamaFlavour::OpenAiCompatible] {
        let p = build_provider(&executor, ProviderId::Llama, &sim.url, None, flavour);
        let resp = p
            .generate(&GenerateRequest::simple("llama3.2", "Hi"))
            .await
            .expect("no key needed");
        assert_eq!(resp.text(), "This is a simulated answer to: Hi");
    }
}

#[tokio::test]
async fn keys_never_appear_in_requests_urls_or_errors() {
    let sim = sim_fault(Fault::ServerError).await;
    let executor = test_executor();
    let secret = "sk-very-secret-value-987654321";
    for (id, flavour, model) in targets() {
        let p = provider(&executor, &sim.url, id, flavour, secret);
        let err = p
            .generate(&GenerateRequest::simple(model, "Hi"))
            .await
            .expect_err("fault");
        let text = format!(
            "{err} {err:?} {}",
            serde_json::to_string(&err).expect("serialises")
        );
        assert!(!text.contains(secret), "{id}: {text}");
    }
    let adapters: Vec<Box<dyn super::Adapter>> = vec![
        Box::new(super::anthropic::AnthropicAdapter::new(
            &sim.url,
            Some(SecretString::from(secret)),
        )),
        Box::new(super::openai::OpenAiAdapter::new(
            ProviderId::OpenAi,
            &sim.url,
            Some(SecretString::from(secret)),
        )),
        Box::new(super::gemini::GeminiAdapter::new(
            &sim.url,
            Some(SecretString::from(secret)),
        )),
        Box::new(super::ollama::OllamaAdapter::new(
            &sim.url,
            Some(SecretString::from(secret)),
        )),
    ];
    for adapter in adapters {
        let http = adapter
            .chat_request(&GenerateRequest::simple("m", "Hi"), true)
            .expect("builds");
        assert!(!http.url.contains(secret));
        assert!(
            !format!("{http:?}").contains(secret),
            "{}: Debug of the request shows the key",
            adapter.id()
        );
        assert!(!format!("{:?}", adapter.models_request()).contains(secret));
    }
}

#[tokio::test]
async fn invalid_parameters_fail_before_any_network_call() {
    let sim = sim_with(SimulatorOptions::default()).await;
    let executor = test_executor();
    let p = provider(
        &executor,
        &sim.url,
        ProviderId::Claude,
        LlamaFlavour::Ollama,
        KEY,
    );
    let mut req = GenerateRequest::simple("claude-3-5-sonnet-20241022", "Hi");
    req.parameters.temperature = Some(1.2);
    let err = p.generate(&req).await.expect_err("invalid");
    assert_eq!(
        err.kind,
        ErrorKind::InvalidParameter {
            param: "temperature".into(),
            allowed: "0–1".into()
        }
    );
    assert!(p.stream(&req).await.is_err());
    assert_eq!(
        sim.stats.requests.load(Ordering::SeqCst),
        0,
        "nothing reached the provider"
    );
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let p = provider(
        &test_executor(),
        &url,
        ProviderId::OpenAi,
        LlamaFlavour::Ollama,
        KEY,
    );
    let err = p
        .generate(&GenerateRequest::simple("gpt-4o", "Hi"))
        .await
        .expect_err("refused");
    assert_eq!(err.kind, ErrorKind::Transient);
    assert!(
        err.message.starts_with("connection failed"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn token_counts_are_exact_where_the_provider_allows_and_marked_estimates_elsewhere() {
    let sim = sim_with(SimulatorOptions::default()).await;
    let executor = test_executor();
    let count = |id, flavour, model: &'static str| {
        let p = provider(&executor, &sim.url, id, flavour, KEY);
        async move {
            p.count_tokens(&GenerateRequest::simple(model, "Hello there"))
                .await
                .expect("counts")
        }
    };
    assert_eq!(
        count(
            ProviderId::Claude,
            LlamaFlavour::Ollama,
            "claude-3-5-sonnet-20241022"
        )
        .await,
        TokenCount {
            tokens: 3,
            exact: true
        }
    );
    assert_eq!(
        count(
            ProviderId::Gemini,
            LlamaFlavour::Ollama,
            "gemini-1.5-flash-002"
        )
        .await,
        TokenCount {
            tokens: 3,
            exact: true
        }
    );
    // o200k: "Hello there" = 2, "user" = 1, +3 per message, +3 priming.
    assert_eq!(
        count(ProviderId::OpenAi, LlamaFlavour::Ollama, "gpt-4o").await,
        TokenCount {
            tokens: 9,
            exact: true
        }
    );
    assert!(
        !count(ProviderId::Llama, LlamaFlavour::Ollama, "llama3.2")
            .await
            .exact
    );
}

#[tokio::test]
async fn models_are_listed_by_every_provider() {
    let sim = sim_with(SimulatorOptions::default()).await;
    let executor = test_executor();
    let expected = [
        "claude-3-5-sonnet-20241022",
        "gpt-4o-2024-08-06",
        "gemini-1.5-pro-002",
        "llama3.2:latest",
        "gpt-4o-2024-08-06",
    ];
    for ((id, flavour, _), first) in targets().into_iter().zip(expected) {
        let models = provider(&executor, &sim.url, id, flavour, KEY)
            .models()
            .await
            .expect("lists");
        assert_eq!(models[0].id, first, "{id} {flavour:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn the_simulator_paces_tokens_and_the_first_token_waits_for_ttft() {
    let sim = sim_with(SimulatorOptions {
        ttft: Duration::from_millis(150),
        tokens_per_second: 100.0,
        ..SimulatorOptions::default()
    })
    .await;
    let executor = Executor::new(Timeouts::default()).expect("client");
    let p = provider(
        &executor,
        &sim.url,
        ProviderId::OpenAi,
        LlamaFlavour::Ollama,
        KEY,
    );
    let started = tokio::time::Instant::now();
    let mut stream = p
        .stream(&GenerateRequest::simple("gpt-4o", "Hello there"))
        .await
        .expect("opens");
    let mut first_text = None;
    while let Some(event) = stream.next().await {
        if matches!(event, StreamEvent::TextDelta { .. }) && first_text.is_none() {
            first_text = Some(started.elapsed());
        }
    }
    let total = started.elapsed();
    let ttft = first_text.expect("text arrived");
    assert!(ttft >= Duration::from_millis(150), "ttft {ttft:?}");
    // 8 tokens at 100/s add at least 70 ms after the first one.
    assert!(
        total >= ttft + Duration::from_millis(60),
        "total {total:?}, ttft {ttft:?}"
    );
}

#[test]
fn base_urls_come_from_the_environment_with_the_public_endpoints_as_defaults() {
    let config = super::BaseUrls::from_lookup(|name| {
        (name == "COVER_GEMINI_BASE_URL").then(|| "http://127.0.0.1:8089".to_owned())
    });
    assert_eq!(config.base_url(ProviderId::Gemini), "http://127.0.0.1:8089");
    assert_eq!(
        config.base_url(ProviderId::Claude),
        "https://api.anthropic.com"
    );
    assert_eq!(
        config.base_url(ProviderId::OpenAi),
        "https://api.openai.com"
    );
    assert_eq!(config.base_url(ProviderId::Llama), "http://127.0.0.1:11434");
}

/// Serves `piece` over and over, without end, as the body of every request to a loopback
/// port: a provider gone wrong. Returns its base URL.
async fn serve_endless_body(content_type: &'static str, piece: Bytes) -> String {
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let app = axum::Router::new().fallback(move || {
        let piece = piece.clone();
        async move {
            let body = futures::stream::repeat_with(move || Ok::<_, Infallible>(piece.clone()));
            (
                [(CONTENT_TYPE, content_type)],
                axum::body::Body::from_stream(body),
            )
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn an_endless_answer_is_refused_once_it_passes_the_body_cap_without_echoing_it() {
    let url = serve_endless_body("application/json", Bytes::from_static(b"{\"x\":1}")).await;
    let p = provider(
        &test_executor(),
        &url,
        ProviderId::OpenAi,
        LlamaFlavour::Ollama,
        KEY,
    );
    let err = tokio::time::timeout(
        Duration::from_secs(30),
        p.generate(&GenerateRequest::simple("gpt-4o", "Hi")),
    )
    .await
    .expect("refused before the test's timeout")
    .expect_err("too large");
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    assert_eq!(
        err.message,
        format!("malformed response: the body is larger than {MAX_BODY_BYTES} bytes")
    );
    assert_eq!(err.raw_body.as_deref(), Some(""), "no body text kept");
}

#[tokio::test]
async fn an_endless_streamed_answer_ends_with_an_error_once_it_passes_the_answer_cap() {
    let chunk = format!(
        "data: {{\"id\":\"c\",\"model\":\"gpt-4o\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
        "t".repeat(1000)
    );
    let url = serve_endless_body("text/event-stream", Bytes::from(chunk)).await;
    let p = provider(
        &test_executor(),
        &url,
        ProviderId::OpenAi,
        LlamaFlavour::Ollama,
        KEY,
    );
    let events = tokio::time::timeout(Duration::from_secs(30), async {
        collect(
            p.stream(&GenerateRequest::simple("gpt-4o", "Hi"))
                .await
                .expect("opens"),
        )
        .await
    })
    .await
    .expect("cut before the test's timeout");
    let err = last_error(&events);
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    assert_eq!(
        err.message,
        format!("malformed stream: an answer longer than {MAX_ANSWER_BYTES} bytes")
    );
    let text = text_of(&events);
    assert_eq!(
        text.len(),
        MAX_ANSWER_BYTES / 1000 * 1000,
        "every whole delta under the cap"
    );
}
