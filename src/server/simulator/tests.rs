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

/// A client whose every request gives up after ten seconds.
fn timed_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client builds")
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("a vector")
        .iter()
        .map(|x| x.as_f64().expect("a number") as f32)
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn openai_embeddings_answer_in_openai_s_list_with_the_catalog_or_asked_size() {
    let sim = start_simulator(SimulatorOptions::default()).await;
    let http = timed_client();
    let url = format!("{}/v1/embeddings", sim.url);
    let (status, _, body) = send(http.post(&url).bearer_auth("k").json(&json!({
        "model": "text-embedding-3-small",
        "input": ["How do I get a refund?", "Refunds are issued within 14 days.", "Shipping takes 3 days."]
    })))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["object"].as_str(), body["model"].as_str()),
        (Some("list"), Some("text-embedding-3-small"))
    );
    let data = body["data"].as_array().expect("data");
    assert_eq!(data.len(), 3);
    assert_eq!(
        (data[2]["object"].as_str(), data[2]["index"].as_u64()),
        (Some("embedding"), Some(2))
    );
    let vectors: Vec<Vec<f32>> = data.iter().map(|d| floats(&d["embedding"])).collect();
    assert!(vectors.iter().all(|v| v.len() == 1536));
    assert!(dot(&vectors[0], &vectors[1]) > dot(&vectors[0], &vectors[2]));
    // 22 + 34 + 22 characters: 6 + 9 + 6 tokens.
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 21, "total_tokens": 21})
    );
    let (_, _, sized) = send(http.post(&url).bearer_auth("k").json(&json!({
        "model": "text-embedding-3-large", "input": "refunds", "dimensions": 64, "encoding_format": "base64"
    })))
    .await;
    let encoded = sized["data"][0]["embedding"].as_str().expect("base64 text");
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    assert_eq!(bytes.len(), 64 * 4, "64 little-endian f32");
    let (status, _, missing) = send(
        http.post(&url)
            .bearer_auth("k")
            .json(&json!({"model": "gpt-4o", "input": "x"})),
    )
    .await;
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (404, Some("model_not_found"))
    );
    let (status, _, empty) = send(
        http.post(&url)
            .bearer_auth("k")
            .json(&json!({"model": "text-embedding-3-small", "input": [""]})),
    )
    .await;
    assert_eq!(
        (status, empty["error"]["type"].as_str()),
        (400, Some("invalid_request_error"))
    );
}

#[tokio::test]
async fn voyage_models_on_v1_embeddings_get_voyage_s_answers_keys_and_errors() {
    let sim = start_simulator(SimulatorOptions {
        accept_key: Some("pa-right".into()),
        ..SimulatorOptions::default()
    })
    .await;
    let http = timed_client();
    let url = format!("{}/v1/embeddings", sim.url);
    let body = json!({"model": "voyage-3.5", "input": ["refunds"], "input_type": "document"});
    let (status, _, ok) = send(http.post(&url).bearer_auth("pa-right").json(&body)).await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["usage"], json!({"total_tokens": 2}));
    assert_eq!(floats(&ok["data"][0]["embedding"]).len(), 1024);
    assert!(ok["data"][0]["index"] == 0 && ok["object"] == "list");
    let (status, _, wrong) = send(http.post(&url).bearer_auth("pa-wrong").json(&body)).await;
    assert_eq!(
        (status, wrong["detail"].as_str()),
        (401, Some("Provided API key is invalid."))
    );
    let (status, _, bad) = send(
        http.post(&url)
            .bearer_auth("pa-right")
            .json(&json!({"model": "voyage-3.5", "input": ["x"], "input_type": "passage"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        bad["detail"]
            .as_str()
            .is_some_and(|d| d.contains("input_type")),
        "{bad}"
    );
    let (status, headers, limited) = send(
        http.post(&url)
            .bearer_auth("pa-right")
            .header("x-sim-fault", "rate_limit")
            .json(&body),
    )
    .await;
    assert_eq!(
        (status, &headers["retry-after"]),
        (429, &"1".parse().expect("header"))
    );
    assert!(limited["detail"].is_string());
}

#[tokio::test]
async fn gemini_embeds_one_text_or_a_batch_of_at_most_a_hundred() {
    let sim = start_simulator(SimulatorOptions::default()).await;
    let http = timed_client();
    let model = |method: &str| format!("{}/v1beta/models/gemini-embedding-001:{method}", sim.url);
    let one = |text: &str| {
        json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": text}]},
                                  "taskType": "RETRIEVAL_DOCUMENT", "outputDimensionality": 128})
    };
    let (status, _, batch) = send(
        http.post(model("batchEmbedContents"))
            .header("x-goog-api-key", "k")
            .json(&json!({"requests": [one("refunds"), one("shipping")]})),
    )
    .await;
    assert_eq!(status, 200, "{batch}");
    let embeddings = batch["embeddings"].as_array().expect("embeddings");
    assert_eq!(embeddings.len(), 2);
    assert_eq!(floats(&embeddings[1]["values"]).len(), 128);
    assert_eq!(batch["usageMetadata"]["promptTokenCount"], 4);
    let (status, _, single) = send(
        http.post(model("embedContent"))
            .header("x-goog-api-key", "k")
            .json(&json!({"content": {"parts": [{"text": "refunds"}]}})),
    )
    .await;
    assert_eq!(status, 200, "{single}");
    assert_eq!(
        floats(&single["embedding"]["values"]).len(),
        768,
        "the catalog's size"
    );
    let many: Vec<Value> = (0..101).map(|i| one(&format!("text {i}"))).collect();
    let (status, _, refused) = send(
        http.post(model("batchEmbedContents"))
            .header("x-goog-api-key", "k")
            .json(&json!({"requests": many})),
    )
    .await;
    assert_eq!(
        (status, refused["error"]["status"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
    let (status, _, unknown) = send(
        http.post(format!(
            "{}/v1beta/models/gemini-1.5-pro:embedContent",
            sim.url
        ))
        .header("x-goog-api-key", "k")
        .json(&json!({"content": {"parts": [{"text": "x"}]}})),
    )
    .await;
    assert_eq!(
        (status, unknown["error"]["status"].as_str()),
        (404, Some("NOT_FOUND"))
    );
}

#[tokio::test]
async fn ollama_embed_answers_with_its_embeddings_list_and_prompt_eval_count() {
    let sim = start_simulator(SimulatorOptions::default()).await;
    let http = timed_client();
    let url = format!("{}/api/embed", sim.url);
    let (status, _, body) = send(http.post(&url).json(
        &json!({"model": "nomic-embed-text", "input": ["refunds", "shipping"], "truncate": false}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["model"], "nomic-embed-text");
    assert_eq!(body["embeddings"].as_array().map(Vec::len), Some(2));
    assert_eq!(floats(&body["embeddings"][0]).len(), 768);
    assert_eq!(body["prompt_eval_count"], 4);
    let (status, _, missing) = send(
        http.post(&url)
            .json(&json!({"model": "llama3.2", "input": "x"})),
    )
    .await;
    assert_eq!(status, 404);
    assert!(missing["error"]
        .as_str()
        .is_some_and(|e| e.contains("not found")));
    let long = "word ".repeat(50_000);
    let (status, _, too_long) = send(
        http.post(&url)
            .json(&json!({"model": "nomic-embed-text", "input": long})),
    )
    .await;
    assert_eq!(
        (status, too_long["error"].as_str()),
        (400, Some("input length exceeds the context length"))
    );
}

#[tokio::test]
async fn embedding_requests_count_and_obey_the_fault_schedule_of_their_dialect() {
    let sim = start_simulator(SimulatorOptions::default()).await;
    let http = timed_client();
    let (status, _, _) = send(
        http.post(format!("{}/_sim/faults", sim.url))
            .json(&json!({"dialect": "voyage", "fault": "server_error"})),
    )
    .await;
    assert_eq!(status, 201);
    let url = format!("{}/v1/embeddings", sim.url);
    let (status, _, _) = send(
        http.post(&url)
            .bearer_auth("k")
            .json(&json!({"model": "text-embedding-3-small", "input": "x"})),
    )
    .await;
    assert_eq!(status, 200, "OpenAI's embeddings are another dialect");
    let (status, _, body) = send(
        http.post(&url)
            .bearer_auth("k")
            .json(&json!({"model": "voyage-3.5", "input": "x"})),
    )
    .await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (500, Some("Internal Server Error"))
    );
    assert_eq!(sim.requests(), 2);
}
