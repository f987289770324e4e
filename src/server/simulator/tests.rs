//! Tests of the simulator's routing, auth, validation and fault injection over real HTTP.

use std::sync::atomic::Ordering;

use futures::StreamExt;
use serde_json::{json, Value};

use super::faults::{DialectName, FaultSchedule, Injected, ScheduledFault};
use super::{Fault, SimulatorOptions};
use crate::server::llm::testkit::start_simulator;

async fn send(req: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = req.send().await.expect("simulator answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json().await.expect("JSON body");
    (status, headers, body)
}

fn anthropic_body() -> Value {
    json!({"model": "claude-3-5-sonnet-20241022", "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]})
}

#[tokio::test]
async fn the_two_v1_models_lists_are_told_apart_by_the_anthropic_version_header() {
    let sim = start_simulator(SimulatorOptions::default()).await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/models", sim.url);
    let (_, _, anthropic) = send(
        http.get(&url)
            .header("x-api-key", "k")
            .header("anthropic-version", "2023-06-01"),
    )
    .await;
    assert_eq!(anthropic["data"][0]["type"], "model");
    assert_eq!(anthropic["has_more"], false);
    let (_, _, openai) = send(http.get(&url).bearer_auth("k")).await;
    assert_eq!(openai["object"], "list");
    assert_eq!(openai["data"][0]["owned_by"], "system");
}

#[tokio::test]
async fn gemini_is_served_under_v1beta_and_v1_with_the_key_in_a_header_or_the_query() {
    let sim = start_simulator(SimulatorOptions::default()).await;
    let http = reqwest::Client::new();
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]});
    for version in ["v1beta", "v1"] {
        let url = format!(
            "{}/{version}/models/gemini-1.5-flash-002:generateContent",
            sim.url
        );
        let (status, _, resp) =
            send(http.post(&url).header("x-goog-api-key", "k").json(&body)).await;
        assert_eq!(status, 200, "{version}");
        assert_eq!(
            resp["candidates"][0]["content"]["parts"][0]["text"],
            "This is a simulated answer to: Hi"
        );
        let (status, _, _) = send(http.post(format!("{url}?key=k")).json(&body)).await;
        assert_eq!(status, 200, "{version} with ?key=");
    }
    let (_, _, list) = send(
        http.get(format!("{}/v1/models", sim.url))
            .header("x-goog-api-key", "k"),
    )
    .await;
    assert_eq!(list["models"][0]["name"], "models/gemini-1.5-pro-002");
}

#[tokio::test]
async fn each_provider_answers_a_wrong_or_missing_key_in_its_own_format() {
    let sim = start_simulator(SimulatorOptions {
        accept_key: Some("right".into()),
        ..SimulatorOptions::default()
    })
    .await;
    let http = reqwest::Client::new();
    let (status, _, body) = send(
        http.post(format!("{}/v1/messages", sim.url))
            .header("x-api-key", "wrong")
            .json(&anthropic_body()),
    )
    .await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (401, Some("authentication_error"))
    );
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]});
    let (status, _, body) = send(
        http.post(format!("{}/v1/chat/completions", sim.url))
            .bearer_auth("wrong-key-123")
            .json(&chat),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_api_key"))
    );
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("wrong-key-123"),
        "the key is echoed masked"
    );
    let gem = format!(
        "{}/v1beta/models/gemini-1.5-flash-002:generateContent",
        sim.url
    );
    let contents = json!({"contents": [{"parts": [{"text": "Hi"}]}]});
    let (status, _, body) = send(http.post(&gem).json(&contents)).await;
    assert_eq!(
        (status, body["error"]["status"].as_str()),
        (403, Some("PERMISSION_DENIED"))
    );
    let (status, _, body) = send(
        http.post(&gem)
            .header("x-goog-api-key", "wrong")
            .json(&contents),
    )
    .await;
    assert_eq!(
        (status, body["error"]["details"][0]["reason"].as_str()),
        (400, Some("API_KEY_INVALID"))
    );
}

#[tokio::test]
async fn rate_limits_carry_retry_after_in_each_providers_way() {
    let sim = start_simulator(SimulatorOptions::default()).await;
    let http = reqwest::Client::new();
    let (status, headers, body) = send(
        http.post(format!("{}/v1/messages", sim.url))
            .header("x-api-key", "k")
            .header("x-sim-fault", "rate_limit")
            .json(&anthropic_body()),
    )
    .await;
    assert_eq!(
        (
            status,
            &headers["retry-after"],
            body["error"]["type"].as_str()
        ),
        (429, &"1".parse().expect("header"), Some("rate_limit_error"))
    );
    let gem = format!(
        "{}/v1beta/models/gemini-1.5-flash-002:generateContent",
        sim.url
    );
    let (status, _, body) = send(
        http.post(&gem)
            .header("x-goog-api-key", "k")
            .header("x-sim-fault", "rate_limit")
            .json(&json!({"contents": [{"parts": [{"text": "Hi"}]}]})),
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["details"][1]["retryDelay"], "1s");
    let (status, _, body) = send(
        http.post(format!("{}/v1/messages", sim.url))
            .header("x-api-key", "k")
            .header("x-sim-fault", "overloaded")
            .json(&anthropic_body()),
    )
    .await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (529, Some("overloaded_error"))
    );
}

#[tokio::test]
async fn anthropic_requires_max_tokens_like_the_real_api() {
    let sim = start_simulator(SimulatorOptions::default()).await;
    let mut body = anthropic_body();
    body.as_object_mut().expect("object").remove("max_tokens");
    let (status, _, resp) = send(
        reqwest::Client::new()
            .post(format!("{}/v1/messages", sim.url))
            .header("x-api-key", "k")
            .json(&body),
    )
    .await;
    assert_eq!(
        (status, resp["error"]["message"].as_str()),
        (400, Some("max_tokens: Field required"))
    );
}

#[tokio::test]
async fn a_fault_rate_of_one_faults_every_request_and_unknown_fault_headers_are_ignored() {
    let sim = start_simulator(SimulatorOptions {
        fault_rate: 1.0,
        fault: Fault::ServerError,
        ..SimulatorOptions::default()
    })
    .await;
    let (status, _, _) = send(reqwest::Client::new().post(format!("{}/api/chat", sim.url)).json(&json!({"model": "llama3.2", "stream": false, "messages": [{"role": "user", "content": "Hi"}]}))).await;
    assert_eq!(status, 500);
    let clean = start_simulator(SimulatorOptions::default()).await;
    let (status, _, _) = send(reqwest::Client::new().post(format!("{}/api/chat", clean.url)).header("x-sim-fault", "no_such_fault").json(&json!({"model": "llama3.2", "stream": false, "messages": [{"role": "user", "content": "Hi"}]}))).await;
    assert_eq!(status, 200);
}

#[test]
fn fault_names_parse_from_snake_case_header_values() {
    assert_eq!(
        "context_too_long".parse::<Fault>(),
        Ok(Fault::ContextTooLong)
    );
    assert_eq!(" rate_limit ".parse::<Fault>(), Ok(Fault::RateLimit));
    assert!("nope".parse::<Fault>().is_err());
}

fn scheduled(value: Value) -> ScheduledFault {
    serde_json::from_value(value).expect("a valid schedule entry")
}

#[test]
fn scheduled_faults_match_by_model_and_dialect_in_order() {
    let mut schedule = FaultSchedule::default();
    schedule.add(scheduled(
        json!({"model": "gpt-4o", "dialect": "openai", "fault": "quota"}),
    ));
    schedule.add(scheduled(
        json!({"dialect": "anthropic", "fault": "overloaded", "retryAfterSecs": 3}),
    ));
    schedule.add(scheduled(json!({"fault": "server_error"})));
    assert_eq!(
        schedule.take(DialectName::Anthropic, Some("claude-3-5-haiku-20241022")),
        Some(Injected {
            fault: Fault::Overloaded,
            retry_after_secs: Some(3)
        })
    );
    // The model filter compares the request's model exactly; the catch-all entry answers.
    assert_eq!(
        schedule.take(DialectName::OpenAi, Some("gpt-4o-mini")),
        Some(Fault::ServerError.into())
    );
    assert_eq!(
        schedule.take(DialectName::OpenAi, Some("gpt-4o")),
        Some(Fault::Quota.into())
    );
    assert_eq!(schedule.take(DialectName::OpenAi, Some("gpt-4o")), None);
}

#[test]
fn a_scheduled_fault_is_consumed_times_times_and_zero_means_until_cleared() {
    let mut schedule = FaultSchedule::default();
    schedule.add(scheduled(json!({"fault": "cut", "times": 2})));
    assert_eq!(
        schedule.take(DialectName::Gemini, None),
        Some(Fault::Cut.into())
    );
    assert_eq!(
        schedule.take(DialectName::Gemini, None),
        Some(Fault::Cut.into())
    );
    assert_eq!(schedule.take(DialectName::Gemini, None), None);
    schedule.add(scheduled(json!({"fault": "silent", "times": 0})));
    for _ in 0..5 {
        assert_eq!(
            schedule.take(DialectName::Ollama, Some("llama3.2")),
            Some(Fault::Silent.into())
        );
    }
    schedule.clear();
    assert_eq!(schedule.take(DialectName::Ollama, Some("llama3.2")), None);
}

#[test]
fn schedule_entries_with_unknown_faults_or_fields_are_rejected() {
    let bad = |v: Value| serde_json::from_value::<ScheduledFault>(v).is_err();
    assert!(bad(json!({"fault": "nope"})));
    assert!(bad(json!({"fault": "cut", "dialect": "mistral"})));
    assert!(bad(json!({"fault": "cut", "tims": 2})));
}

#[tokio::test]
async fn the_control_api_schedules_faults_per_model_counts_requests_and_clears() {
    let sim = start_simulator(SimulatorOptions::default()).await;
    let http = reqwest::Client::new();
    let faults = format!("{}/_sim/faults", sim.url);
    let scheduled = http
        .post(&faults)
        .json(&json!({"model": "claude-3-5-sonnet-20241022", "fault": "rate_limit", "times": 0, "retryAfterSecs": 7}))
        .send()
        .await
        .expect("schedule");
    assert_eq!(scheduled.status().as_u16(), 201);
    let rejected = http
        .post(&faults)
        .json(&json!({"fault": "no_such_fault"}))
        .send()
        .await
        .expect("schedule");
    assert_eq!(rejected.status().as_u16(), 400);
    let messages = format!("{}/v1/messages", sim.url);
    let ask = |model: &str| {
        let mut body = anthropic_body();
        body["model"] = json!(model);
        http.post(&messages).header("x-api-key", "k").json(&body)
    };
    for _ in 0..2 {
        let (status, headers, _) = send(ask("claude-3-5-sonnet-20241022")).await;
        assert_eq!(
            (status, &headers["retry-after"]),
            (429, &"7".parse().expect("header"))
        );
    }
    let (status, _, _) = send(ask("claude-3-5-haiku-20241022")).await;
    assert_eq!(status, 200, "another model is not affected");
    let cleared = http.delete(&faults).send().await.expect("clear");
    assert_eq!(cleared.status().as_u16(), 204);
    let (status, _, _) = send(ask("claude-3-5-sonnet-20241022")).await;
    assert_eq!(status, 200);
    let (_, _, stats) = send(http.get(format!("{}/_sim/stats", sim.url))).await;
    assert_eq!(stats["requests"], 4, "control calls are not counted");
}

#[tokio::test]
async fn the_silent_fault_sends_stream_headers_and_then_nothing() {
    let sim = start_simulator(SimulatorOptions::default()).await;
    let mut body = anthropic_body();
    body["stream"] = json!(true);
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/messages", sim.url))
        .header("x-api-key", "k")
        .header("x-sim-fault", "silent")
        .json(&body)
        .send()
        .await
        .expect("headers arrive");
    assert_eq!(resp.status().as_u16(), 200);
    let mut bytes = resp.bytes_stream();
    let next = tokio::time::timeout(std::time::Duration::from_millis(200), bytes.next()).await;
    assert!(next.is_err(), "no frame is ever sent");
    assert_eq!(sim.stats.open_streams.load(Ordering::Relaxed), 1);
    drop(bytes);
}

#[tokio::test]
async fn the_bad_request_fault_is_each_providers_invalid_request_answer() {
    let sim = start_simulator(SimulatorOptions::default()).await;
    let (status, _, body) = send(
        reqwest::Client::new()
            .post(format!("{}/v1/messages", sim.url))
            .header("x-api-key", "k")
            .header("x-sim-fault", "bad_request")
            .json(&anthropic_body()),
    )
    .await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
}
