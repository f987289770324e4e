//! Conversations over the JSON API against the provider simulator: pinned
//! configurations, exact costs, streaming, retry and fallback with the notice,
//! the fault matrix for every provider, Stop, and the usage ledger (one row per
//! attempt, complete under load, flushed on shutdown).

use crate::both_engines;
use crate::helpers::{
    clear_faults, error_of, every_page, fail_model, fallback_to, messages_by_role_and_status,
    messages_path, Engine, TestApp, TestOptions, GOOD_KEY,
};
use cover::model::chat::MessageStatus;
use cover::server::db::conversations::{AnswerUpdate, Exchange};
use cover::server::ledger::{Opening, Settlement};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

const SONNET: &str = "claude-3-5-sonnet-20241022";

/// A signed-in user with a project; returns the project id.
async fn project(app: &TestApp) -> String {
    app.sign_up("chat@example.com").await;
    app.new_project("Chatbot").await
}

/// Asks with `Accept: text/event-stream` and returns every event (name, data).
async fn ask_streamed(
    app: &TestApp,
    project: &str,
    conversation: &str,
    text: &str,
) -> Vec<(String, Value)> {
    let response = app
        .client
        .post(app.url(&messages_path(project, conversation)))
        .header("accept", "text/event-stream")
        .json(&json!({ "content": text }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    parse_events(&response.text().await.unwrap())
}

fn parse_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|frame| {
            let mut name = None;
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(value) = line.strip_prefix("event:") {
                    name = Some(value.trim().to_owned());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push_str(value.trim_start());
                }
            }
            Some((name?, serde_json::from_str(&data).unwrap()))
        })
        .collect()
}

fn last_event<'a>(events: &'a [(String, Value)], name: &str) -> &'a Value {
    events
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} event in {events:?}"))
}

/// One stored attempt, as the ledger has it.
#[derive(Debug, Clone)]
struct Attempt {
    attempt: i64,
    provider: String,
    model: String,
    role: String,
    success: bool,
    error_class: Option<String>,
    cost_nanos: Option<i64>,
    price_version: Option<String>,
    usage_estimated: bool,
    input_tokens: i64,
    output_tokens: i64,
    config_version: Option<i64>,
    is_fallback: bool,
}

/// The ledger rows of one answer, after the writer has caught up.
async fn attempts(app: &TestApp, message_id: &str) -> Vec<Attempt> {
    app.state.ledger.flush().await;
    sqlx::query(
        "select attempt, provider, model, role, success, error_class, cost_nanos, price_version, \
           usage_estimated, input_tokens, output_tokens, config_version, is_fallback \
         from llm_usage where message_id = $1 order by attempt",
    )
    .bind(message_id)
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap()
    .iter()
    .map(|row| Attempt {
        attempt: row.get("attempt"),
        provider: row.get("provider"),
        model: row.get("model"),
        role: row.get("role"),
        success: row.get::<i64, _>("success") == 1,
        error_class: row.get("error_class"),
        cost_nanos: row.get("cost_nanos"),
        price_version: row.get("price_version"),
        usage_estimated: row.get::<i64, _>("usage_estimated") == 1,
        input_tokens: row.get("input_tokens"),
        output_tokens: row.get("output_tokens"),
        config_version: row.get("config_version"),
        is_fallback: row.get::<i64, _>("is_fallback") == 1,
    })
    .collect()
}

async fn ledger_count(app: &TestApp) -> i64 {
    app.state.ledger.flush().await;
    sqlx::query_scalar("select count(*) from llm_usage")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

/// The log lines of answers in `project` (its span names it), joined.
fn logs_of(project: &str) -> String {
    let marker = format!("project={project}");
    crate::helpers::captured_logs()
        .lines()
        .filter(|line| line.contains(&marker))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Claude 3.5 Sonnet list prices: $3 in, $15 out per 1M tokens = 3,000 and
/// 15,000 nano-dollars per token.
fn sonnet_cost(input: i64, output: i64) -> i64 {
    input * 3_000 + output * 15_000
}

both_engines!(
    an_answer_is_priced_exactly_and_recorded_once,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let project = project(&app).await;
        let conversation = app.conversation(&project).await;
        assert_eq!(conversation["provider"], "claude");
        assert_eq!(conversation["model"], SONNET);
        let id = conversation["id"].as_str().unwrap();

        let answer = app
            .ask_ok(&project, id, "What are your opening hours?")
            .await;
        assert_eq!(
            answer["content"],
            "This is a simulated answer to: What are your opening hours?"
        );
        assert_eq!(answer["provider"], "claude");
        assert_eq!(answer["model"], SONNET);
        assert!(answer["fallback"].is_null());
        let input = answer["usage"]["inputTokens"].as_i64().unwrap();
        let output = answer["usage"]["outputTokens"].as_i64().unwrap();
        assert!(input > 0 && output > 0, "{answer}");
        let nanos = sonnet_cost(input, output);
        assert_eq!(answer["costNanos"], nanos);
        assert_eq!(
            answer["costUsd"],
            cover::model::money::format_decimal(nanos)
        );
        assert!(answer["latencyMs"].as_u64().is_some());

        let rows = attempts(&app, answer["messageId"].as_str().unwrap()).await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        let row = &rows[0];
        assert!(row.success && !row.is_fallback && !row.usage_estimated);
        assert_eq!((row.attempt, row.role.as_str()), (1, "primary"));
        assert_eq!((row.input_tokens, row.output_tokens), (input, output));
        assert_eq!(row.cost_nanos, Some(nanos));
        assert_eq!(
            row.price_version.as_deref(),
            Some("claude-3-5-sonnet-20241022@2024-10-22")
        );
        assert_eq!(row.config_version, Some(1));

        // The conversation's cost is the sum of its answers, exactly.
        let second = app.ask_ok(&project, id, "And on Sundays?").await;
        assert!(
            second["usage"]["inputTokens"].as_i64().unwrap() > input,
            "the history is sent with the next question"
        );
        let detail: Value = app
            .get(&format!("/api/projects/{project}/conversations/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            detail["costNanos"].as_i64().unwrap(),
            nanos + second["costNanos"].as_i64().unwrap()
        );
        assert_eq!(detail["messageCount"], 4);
        assert_eq!(detail["title"], "What are your opening hours?");
        let roles: Vec<&str> = detail["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
        assert_eq!(detail["messages"][1]["facts"]["costNanos"], nanos);
    }
);

both_engines!(
    conversations_keep_the_configuration_they_started_with,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let project = project(&app).await;
        let old = app.conversation(&project).await;
        let old_id = old["id"].as_str().unwrap();
        app.ask_ok(&project, old_id, "Hello").await;

        app.configure(&project, json!({"provider": "openai", "model": "gpt-4o"}))
            .await;

        let again = app.ask_ok(&project, old_id, "Still there?").await;
        assert_eq!(
            (again["provider"].as_str(), again["model"].as_str()),
            (Some("claude"), Some(SONNET)),
            "an existing conversation keeps its model (AC-002)"
        );
        let new = app.conversation(&project).await;
        assert_eq!(
            (new["provider"].as_str(), new["configVersion"].as_i64()),
            (Some("openai"), Some(2))
        );
        let answer = app
            .ask_ok(&project, new["id"].as_str().unwrap(), "Hi")
            .await;
        assert_eq!(answer["model"], "gpt-4o");

        // Nothing was lost by the switch (AC-004).
        let list: Value = app
            .get(&format!("/api/projects/{project}/conversations"))
            .await
            .json()
            .await
            .unwrap();
        let counts: Vec<(String, i64)> = list["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["model"].as_str().unwrap().to_owned(),
                    c["messageCount"].as_i64().unwrap(),
                )
            })
            .collect();
        assert_eq!(counts, [("gpt-4o".to_owned(), 2), (SONNET.to_owned(), 4)]);
    }
);

both_engines!(
    a_rate_limited_primary_falls_back_and_the_user_is_told,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let project = project(&app).await;
        app.configure(&project, fallback_to("openai", "gpt-4o-mini", 2))
            .await;
        let id = app.conversation(&project).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        fail_model(&app, SONNET, "rate_limit").await;

        let answer = app.ask_ok(&project, &id, "Are you there?").await;
        assert_eq!(answer["provider"], "openai");
        assert_eq!(answer["model"], "gpt-4o-mini");
        assert_eq!(answer["fallback"]["from"], SONNET);
        assert_eq!(answer["fallback"]["reason"], "rateLimited");
        assert_eq!(
            answer["fallback"]["message"],
            "Claude 3.5 Sonnet was rate-limited — answered by GPT-4o mini"
        );

        let rows = attempts(&app, answer["messageId"].as_str().unwrap()).await;
        let summary: Vec<(&str, &str, bool, Option<&str>)> = rows
            .iter()
            .map(|r| {
                (
                    r.provider.as_str(),
                    r.role.as_str(),
                    r.success,
                    r.error_class.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("claude", "primary", false, Some("rateLimited")),
                ("claude", "primary", false, Some("rateLimited")),
                ("openai", "fallback", true, None),
            ]
        );
        assert!(rows[2].is_fallback);
        // Failed attempts cost nothing; the answer costs what GPT-4o mini charged.
        assert_eq!(rows[0].cost_nanos, Some(0));
        assert_eq!(answer["costNanos"].as_i64(), rows[2].cost_nanos);

        // The notice is stored with the answer.
        let detail: Value = app
            .get(&format!("/api/projects/{project}/conversations/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(detail["messages"][1]["fallback"], answer["fallback"]);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_fallback_a_failure_is_a_clear_502_and_the_question_is_kept() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let project = project(&app).await;
    app.configure(&project,
        json!({"fallbackConfig": {"enabled": false, "provider": "openai", "model": "gpt-4o-mini", "retryAttempts": 3}}),
    )
    .await;
    let id = app.conversation(&project).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fail_model(&app, SONNET, "server_error").await;

    let response = app.ask(&project, &id, "Hello?").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["class"], "transient");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Claude 3.5 Sonnet could not answer"),
        "{body}"
    );
    let message_id = body["error"]["messageId"].as_str().unwrap();
    let rows = attempts(&app, message_id).await;
    assert_eq!(rows.len(), 3, "three attempts, no fallback: {rows:?}");
    assert!(rows.iter().all(|r| !r.success && r.provider == "claude"));
    let logged = logs_of(&project);
    assert_eq!(
        logged.matches("retrying the same model").count(),
        2,
        "each retry is logged in the answer's span: {logged}"
    );
    assert!(
        logged.contains("no model of the chain could answer"),
        "{logged}"
    );

    let detail: Value = app
        .get(&format!("/api/projects/{project}/conversations/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["messages"][0]["content"], "Hello?");
    assert_eq!(detail["messages"][1]["status"], "error");

    // The failed exchange is not sent as history: the next answer works normally.
    clear_faults(&app).await;
    let answer = app.ask_ok(&project, &id, "Hello again").await;
    assert_eq!(answer["provider"], "claude");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_answer_arrives_token_by_token_and_ends_with_its_facts() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let project = project(&app).await;
    let id = app.conversation(&project).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let events = ask_streamed(&app, &project, &id, "Tell me about pricing").await;
    assert_eq!(events[0].0, "started");
    let deltas: Vec<&str> = events
        .iter()
        .filter(|(name, _)| name == "delta")
        .map(|(_, data)| data["text"].as_str().unwrap())
        .collect();
    assert!(deltas.len() > 3, "{events:?}");
    let done = last_event(&events, "done");
    assert_eq!(events.last().unwrap().0, "done");
    assert_eq!(done["content"].as_str().unwrap(), deltas.concat());
    assert_eq!(done["provider"], "claude");
    let usage = &done["usage"];
    assert_eq!(
        done["costNanos"].as_i64().unwrap(),
        sonnet_cost(
            usage["inputTokens"].as_i64().unwrap(),
            usage["outputTokens"].as_i64().unwrap()
        )
    );
    assert!(done["ttftMs"].as_u64().is_some());
    let rows = attempts(&app, done["messageId"].as_str().unwrap()).await;
    assert_eq!(rows.len(), 1);
    assert!(rows[0].success);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_after_its_first_token_never_ends_as_a_success() {
    let app = TestApp::spawn_with(Engine::Sqlite, TestOptions::impatient()).await;
    let project = project(&app).await;
    let id = app.conversation(&project).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    fail_model(&app, SONNET, "cut").await;

    // Without fallback: an explicit error, never `done`.
    let events = ask_streamed(&app, &project, &id, "Hello").await;
    assert!(events.iter().any(|(name, _)| name == "delta"), "{events:?}");
    assert!(events.iter().all(|(name, _)| name != "done"), "{events:?}");
    let error = last_event(&events, "error");
    assert_eq!(error["error"], "transient");

    // With fallback: the broken answer is marked and the fallback answers in full.
    app.configure(&project, fallback_to("openai", "gpt-4o-mini", 1))
        .await;
    let id = app.conversation(&project).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let events = ask_streamed(&app, &project, &id, "Hello").await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    let cut = names
        .iter()
        .position(|n| *n == "interrupted")
        .expect("interrupted");
    let resumed = names
        .iter()
        .position(|n| *n == "fallback")
        .expect("fallback notice");
    assert!(
        names[..cut].contains(&"delta") && cut < resumed,
        "{names:?}"
    );
    let done = last_event(&events, "done");
    assert_eq!(done["provider"], "openai");
    assert_eq!(done["interrupted"]["model"], SONNET);
    assert!(!done["interrupted"]["text"].as_str().unwrap().is_empty());
    let rows = attempts(&app, done["messageId"].as_str().unwrap()).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(!rows[0].success && rows[0].usage_estimated && rows[0].output_tokens > 0);
    assert!(rows[0].cost_nanos.unwrap() > 0, "the cut tokens are billed");
    assert!(rows[1].success && rows[1].provider == "openai");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_stream_keeps_the_partial_answer_and_bills_its_tokens() {
    let mut options = TestOptions::default();
    options.simulator.tokens_per_second = 20.0;
    let app = TestApp::spawn_with(Engine::Sqlite, options).await;
    let project = project(&app).await;
    let id = app.conversation(&project).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut response = app
        .client
        .post(app.url(&messages_path(&project, &id)))
        .header("accept", "text/event-stream")
        .json(&json!({ "content": "a question with a rather long answer to stream slowly" }))
        .send()
        .await
        .unwrap();
    let mut seen = String::new();
    while !seen.contains("event: delta") {
        let chunk = response.chunk().await.unwrap().expect("more events");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(response); // the Stop button: the client closes the stream

    let detail = wait_for_answer(&app, &project, &id).await;
    let answer = &detail["messages"][1];
    assert_eq!(answer["status"], "stopped", "{answer}");
    let text = answer["content"].as_str().unwrap();
    assert!(
        !text.is_empty() && !text.ends_with("slowly"),
        "partial: {text}"
    );
    let rows = attempts(&app, answer["id"].as_str().unwrap()).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].error_class.as_deref(), Some("cancelled"));
    assert!(rows[0].usage_estimated && rows[0].output_tokens > 0 && rows[0].input_tokens > 0);
    // The stopped answer is billed and shows its (estimated) facts.
    assert!(rows[0].cost_nanos.unwrap() > 0);
    assert_eq!(detail["costNanos"].as_i64(), rows[0].cost_nanos, "{detail}");
    assert_eq!(answer["facts"]["usage"]["estimated"], true, "{answer}");
}

/// Polls a conversation until its last answer is no longer pending.
async fn wait_for_answer(app: &TestApp, project: &str, id: &str) -> Value {
    for _ in 0..100 {
        let detail: Value = app
            .get(&format!("/api/projects/{project}/conversations/{id}"))
            .await
            .json()
            .await
            .unwrap();
        let last = detail["messages"].as_array().unwrap().last().cloned();
        if last.is_some_and(|m| m["status"] != "pending") {
            return detail;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the answer stayed pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_questions_get_a_422_naming_the_field_and_nothing_is_stored() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let project = project(&app).await;
    let id = app.conversation(&project).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = messages_path(&project, &id);
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let cases = [
        (json!({"content": "   "}), "content"),
        (json!({"content": "x".repeat(100_001)}), "content"),
        (
            json!({"content": "hi", "images": [{"mediaType": "image/tiff", "data": png}]}),
            "images[0].mediaType",
        ),
        (
            json!({"content": "hi", "images": [{"mediaType": "image/png", "data": "not base64!"}]}),
            "images[0].data",
        ),
    ];
    for (body, field) in cases {
        let (status, got, message) = error_of(app.post(&path, body).await).await;
        assert_eq!(
            (status, got.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{message}"
        );
    }
    let (status, _, message) = error_of(app.post(&path, json!({"text": "hi"})).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{message}");

    // A model without vision refuses images, naming the model.
    app.configure(&project, json!({"provider": "llama"})).await;
    let llama = app.conversation(&project).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, field, message) = error_of(
        app.post(
            &messages_path(&project, &llama),
            json!({"content": "what is this?", "images": [{"mediaType": "image/png", "data": png}]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, field.as_deref()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("images"))
    );
    assert!(message.contains("does not accept images"), "{message}");

    // A vision model takes the image.
    let answer = app
        .post(&path, json!({"content": "what is this?", "images": [{"mediaType": "image/png", "data": png}]}))
        .await;
    assert_eq!(answer.status(), StatusCode::OK);

    let detail: Value = app
        .get(&format!("/api/projects/{project}/conversations/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        detail["messageCount"], 2,
        "only the valid question was stored"
    );
    assert_eq!(detail["messages"][0]["images"][0]["mediaType"], "image/png");
    assert_eq!(ledger_count(&app).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_projects_conversations_are_not_found_and_tokens_can_chat() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    let project = project(&app).await;
    let id = app.conversation(&project).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stranger = app.other_user("stranger@example.com").await;
    let theirs = app.new_project_as(&stranger, "Theirs").await;
    for path in [
        format!("/api/projects/{project}/conversations/{id}"),
        format!("/api/projects/{theirs}/conversations/{id}"),
    ] {
        let response = stranger.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let unknown = app.ask(&project, "no-such-conversation", "hi").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    let token = app.token(&project).await;
    let program = crate::helpers::new_client();
    let answer = program
        .post(app.url(&messages_path(&project, &id)))
        .bearer_auth(token)
        .json(&json!({"content": "from a program"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let answer: Value = answer.json().await.unwrap();

    // Thumbs up, then cleared; a question cannot be rated.
    let rating = |message: String, body: Value| {
        let url = app.url(&format!(
            "/api/projects/{project}/conversations/{id}/messages/{message}/rating"
        ));
        let client = app.client.clone();
        async move { client.put(url).json(&body).send().await.unwrap().status() }
    };
    let answer_id = answer["messageId"].as_str().unwrap().to_owned();
    assert_eq!(
        rating(answer_id.clone(), json!({"rating": "up"})).await,
        StatusCode::NO_CONTENT
    );
    let detail: Value = app
        .get(&format!("/api/projects/{project}/conversations/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["messages"][1]["rating"], "up");
    assert_eq!(
        rating(answer_id, json!({"rating": null})).await,
        StatusCode::NO_CONTENT
    );
    let question_id = answer["questionId"].as_str().unwrap().to_owned();
    assert_eq!(
        rating(question_id, json!({"rating": "down"})).await,
        StatusCode::NOT_FOUND
    );
}

/// One row of the fault matrix: the fault, whether it is seen on a stream, the
/// class the ledger records, and how many attempts the primary gets (2 for
/// retryable classes, 1 otherwise) before the fallback answers.
struct FaultCase {
    fault: &'static str,
    streamed: bool,
    class: &'static str,
    primary_attempts: usize,
}

const FAULTS: [FaultCase; 13] = [
    FaultCase {
        fault: "rate_limit",
        streamed: false,
        class: "rateLimited",
        primary_attempts: 2,
    },
    FaultCase {
        fault: "server_error",
        streamed: false,
        class: "transient",
        primary_attempts: 2,
    },
    FaultCase {
        fault: "unavailable",
        streamed: false,
        class: "overloaded",
        primary_attempts: 2,
    },
    FaultCase {
        fault: "overloaded",
        streamed: false,
        class: "overloaded",
        primary_attempts: 2,
    },
    FaultCase {
        fault: "quota",
        streamed: false,
        class: "quotaExhausted",
        primary_attempts: 1,
    },
    FaultCase {
        fault: "unauthorized",
        streamed: false,
        class: "auth",
        primary_attempts: 1,
    },
    // The question alone does not fit: nothing older can be trimmed, so the
    // primary is not asked again.
    FaultCase {
        fault: "context_too_long",
        streamed: false,
        class: "contextTooLong",
        primary_attempts: 1,
    },
    FaultCase {
        fault: "hang",
        streamed: false,
        class: "transient",
        primary_attempts: 2,
    },
    FaultCase {
        fault: "hang",
        streamed: true,
        class: "transient",
        primary_attempts: 2,
    },
    FaultCase {
        fault: "silent",
        streamed: true,
        class: "transient",
        primary_attempts: 2,
    },
    FaultCase {
        fault: "stall",
        streamed: true,
        class: "transient",
        primary_attempts: 1,
    },
    FaultCase {
        fault: "cut",
        streamed: true,
        class: "transient",
        primary_attempts: 1,
    },
    FaultCase {
        fault: "malformed",
        streamed: true,
        class: "transient",
        primary_attempts: 1,
    },
];

/// Runs every fault against `primary` (provider, catalog model, the model id
/// the provider sees) with `fallback` (provider, model) and checks the answer,
/// the notice and the ledger rows.
async fn fault_matrix(primary: (&str, &str, &str), fallback: (&str, &str), setup: Value) {
    let mut options = TestOptions::impatient();
    // Every case fails the primary: keep its circuit closed so each case is seen whole.
    options.router.breaker_threshold = u32::MAX;
    let app = TestApp::spawn_with(Engine::Sqlite, options).await;
    let project = project(&app).await;
    app.configure(&project, setup).await;
    app.configure(&project, fallback_to(fallback.0, fallback.1, 2))
        .await;
    let (provider, model, wire_model) = primary;
    // A self-hosted server has no billing quota (Ollama answers a plain 429).
    let cases = FAULTS
        .iter()
        .filter(|case| !(provider == "llama" && case.fault == "quota"));
    for case in cases {
        let label = format!("{provider} {} (streamed: {})", case.fault, case.streamed);
        clear_faults(&app).await;
        fail_model(&app, wire_model, case.fault).await;
        let id = app.conversation(&project).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let before = app.simulator_requests().await;
        let answer = if case.streamed {
            let events = ask_streamed(&app, &project, &id, "Hello there").await;
            let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
            let broke_mid_answer = case.primary_attempts == 1;
            assert_eq!(
                names.contains(&"interrupted"),
                broke_mid_answer,
                "{label}: {names:?}"
            );
            last_event(&events, "done").clone()
        } else {
            app.ask_ok(&project, &id, "Hello there").await
        };
        assert_eq!(answer["provider"], fallback.0, "{label}: {answer}");
        assert_eq!(answer["fallback"]["from"], model, "{label}");
        assert_eq!(answer["fallback"]["reason"], case.class, "{label}");
        let rows = attempts(&app, answer["messageId"].as_str().unwrap()).await;
        let failed: Vec<_> = rows.iter().filter(|r| !r.success).collect();
        assert_eq!(failed.len(), case.primary_attempts, "{label}: {rows:?}");
        assert!(
            failed.iter().all(|r| r.provider == provider
                && r.model == model
                && r.error_class.as_deref() == Some(case.class)),
            "{label}: {rows:?}"
        );
        let winner = rows.last().unwrap();
        assert!(
            winner.success && winner.is_fallback && winner.provider == fallback.0,
            "{label}"
        );
        assert_eq!(
            (app.simulator_requests().await - before) as usize,
            rows.len(),
            "{label}: one ledger row per request the provider saw"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix_claude() {
    fault_matrix(
        ("claude", SONNET, SONNET),
        ("openai", "gpt-4o-mini"),
        json!({}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix_openai() {
    fault_matrix(
        ("openai", "gpt-4o", "gpt-4o"),
        ("claude", "claude-3-5-haiku-20241022"),
        json!({"provider": "openai", "model": "gpt-4o"}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix_gemini() {
    fault_matrix(
        ("gemini", "gemini-1.5-pro", "gemini-1.5-pro"),
        ("claude", "claude-3-5-haiku-20241022"),
        json!({"provider": "gemini", "model": "gemini-1.5-pro", "apiKey": GOOD_KEY}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_matrix_llama() {
    fault_matrix(
        ("llama", "llama-3.1-70b", "llama3.1:70b"),
        ("claude", "claude-3-5-haiku-20241022"),
        json!({"provider": "llama", "model": "llama-3.1-70b"}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_circuit_skips_the_failing_provider_without_calling_it() {
    let mut options = TestOptions::default();
    options.router.breaker_threshold = 3;
    let app = TestApp::spawn_with(Engine::Sqlite, options).await;
    let project = project(&app).await;
    app.configure(&project, fallback_to("openai", "gpt-4o-mini", 1))
        .await;
    fail_model(&app, SONNET, "server_error").await;
    let id = app.conversation(&project).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        let answer = app.ask_ok(&project, &id, "Hello").await;
        assert_eq!(answer["provider"], "openai");
    }
    // Three consecutive failures opened Claude's circuit: the next answer goes
    // straight to the fallback, and Claude sees no request.
    let before = app.simulator_requests().await;
    let answer = app.ask_ok(&project, &id, "Hello").await;
    assert_eq!(answer["provider"], "openai");
    assert_eq!(answer["fallback"]["from"], SONNET);
    assert_eq!(app.simulator_requests().await - before, 1);
    let rows = attempts(&app, answer["messageId"].as_str().unwrap()).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].provider, "openai");
    let logged = logs_of(&project);
    assert!(
        logged.contains(&format!(
            "switching to the next model of the chain from={SONNET} to=gpt-4o-mini"
        )),
        "each switch is logged: {logged}"
    );
    assert_eq!(logged.matches("circuit opened").count(), 1, "{logged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_falls_back() {
    let app = TestApp::spawn_with(Engine::Sqlite, TestOptions::impatient()).await;
    let project = project(&app).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    app.configure(&project,
        json!({"provider": "llama", "model": "llama-3.1-70b", "baseUrl": format!("http://127.0.0.1:{closed}")}),
    )
    .await;
    app.configure(
        &project,
        fallback_to("claude", "claude-3-5-haiku-20241022", 2),
    )
    .await;
    let id = app.conversation(&project).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = app.ask_ok(&project, &id, "Anyone home?").await;
    assert_eq!(answer["provider"], "claude");
    assert_eq!(answer["fallback"]["reason"], "transient");
    let rows = attempts(&app, answer["messageId"].as_str().unwrap()).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0].cost_nanos, Some(0), "self-hosted attempts are free");
}

both_engines!(
    the_ledger_has_one_row_per_attempt_under_2000_concurrent_requests,
    |engine| async move {
        let mut options = TestOptions::default();
        options.simulator.fault_rate = 0.05;
        let app = TestApp::spawn_with(engine, options).await;
        let project = project(&app).await;
        let mut conversations = Vec::new();
        for _ in 0..40 {
            conversations.push(
                app.conversation(&project).await["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        let token = app.token(&project).await;
        let burst = crate::helpers::client_with_limit(crate::helpers::BURST_REQUEST_LIMIT);
        let requests = (0..2000).map(|i| {
            let client = burst.clone();
            let token = token.clone();
            let url = app.url(&messages_path(
                &project,
                &conversations[i % conversations.len()],
            ));
            async move {
                client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"content": format!("question {i}")}))
                    .send()
                    .await
                    .map(|r| r.status())
            }
        });
        let statuses = futures::future::join_all(requests).await;
        let answered = statuses
            .iter()
            .filter(|s| matches!(s, Ok(StatusCode::OK)))
            .count();
        // The burst waits in line for answer slots instead of timing out on
        // the database: the only other outcome is a provider failing every
        // retry and fallback (5 % of its requests fail).
        let mut others: Vec<String> = statuses
            .iter()
            .filter(|s| !matches!(s, Ok(StatusCode::OK) | Ok(StatusCode::BAD_GATEWAY)))
            .map(|s| format!("{s:?}"))
            .collect();
        others.dedup();
        assert!(
            others.is_empty(),
            "no 503, 500 or transport error: {others:?}"
        );
        assert!(answered >= 1990, "answered {answered} of 2000");
        let rows = ledger_count(&app).await;
        let seen = app.simulator_requests().await;
        assert_eq!(
            rows, seen,
            "every attempt the provider saw is in the ledger"
        );
        assert!(rows > 2000, "5 % faults caused retries: {rows} rows");
        let failed: i64 = sqlx::query_scalar("select count(*) from llm_usage where success = 0")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
        assert_eq!(
            rows - failed,
            answered as i64,
            "one successful attempt per answer"
        );
    }
);

both_engines!(
    a_graceful_shutdown_stops_running_answers_and_flushes_the_ledger,
    |engine| async move {
        let mut options = TestOptions::default();
        options.simulator.tokens_per_second = 2.0;
        let mut app = TestApp::spawn_with(engine, options).await;
        let project = project(&app).await;
        let mut ids = Vec::new();
        for _ in 0..10 {
            ids.push(
                app.conversation(&project).await["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        // Ten answers streaming at once (each takes about five seconds in full).
        let started = ids.iter().enumerate().map(|(i, id)| {
            let request = app
                .client
                .post(app.url(&messages_path(&project, id)))
                .header("accept", "text/event-stream")
                .json(&json!({ "content": format!("slow question number {i}") }));
            async move {
                let mut response = request.send().await.unwrap();
                let mut seen = String::new();
                while !seen.contains("event: delta") {
                    let chunk = response.chunk().await.unwrap().expect("more events");
                    seen.push_str(&String::from_utf8_lossy(&chunk));
                }
                response
            }
        });
        let streams = futures::future::join_all(started).await;
        let pool = app.state.db.pool.clone();
        let url = app.database_url();
        app.shut_down().await;
        assert!(pool.is_closed());

        // Every stream ended with an explicit stop, not silently.
        for mut response in streams {
            let mut rest = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                rest.push_str(&String::from_utf8_lossy(&chunk));
            }
            assert!(
                rest.contains("event: error") && rest.contains("cancelled"),
                "{rest}"
            );
        }
        let db = cover::server::db::Db::connect(&url).await.unwrap();
        let (rows, stopped): (i64, i64) = (
            sqlx::query_scalar("select count(*) from llm_usage where error_class = 'cancelled' and usage_estimated = 1")
                .fetch_one(&db.pool)
                .await
                .unwrap(),
            sqlx::query_scalar("select count(*) from message where status = 'stopped'")
                .fetch_one(&db.pool)
                .await
                .unwrap(),
        );
        assert_eq!((rows, stopped), (10, 10));
        db.close().await;
    }
);

both_engines!(
    the_conversation_list_pages_through_everything_once_with_checked_limits_and_cursors,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("pages@example.com").await;
        let project = app.new_project("Paged bot").await;
        let mut created = Vec::new();
        for _ in 0..7 {
            created.push(app.conversation_id(&project).await);
        }
        let path = format!("/api/projects/{project}/conversations");
        let (seen, pages) = every_page(&app, &path, "conversations", 3).await;
        assert_eq!(pages, 3);
        let whole: Value = app.get(&path).await.json().await.unwrap();
        let newest_first: Vec<String> = whole["conversations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(whole["nextCursor"], Value::Null);
        assert_eq!(
            seen, newest_first,
            "every conversation once, in the list's order"
        );
        let mut sorted = seen.clone();
        sorted.sort();
        created.sort();
        assert_eq!(sorted, created);

        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=many", "limit"),
            ("cursor=not-a-cursor", "cursor"),
        ] {
            let (status, got, message) = error_of(app.get(&format!("{path}?{query}")).await).await;
            assert_eq!(
                (status, got.as_deref()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
                "{query}: {message}"
            );
        }
    }
);

both_engines!(
    a_conversation_holds_at_most_1000_messages_then_asks_for_a_new_one,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("long@example.com").await;
        let project = app.new_project("Long talk").await;
        let conversation = app.conversation_id(&project).await;
        app.ask_ok(&project, &conversation, "first question").await;
        // 998 more stored messages (alternating questions and answers), as a
        // long conversation would have left them.
        sqlx::query(
            "with recursive n(i) as (select 3 union all select i + 1 from n where i < 1000) \
             insert into message (message_id, conversation_id, seq, role, content, status, created_at, updated_at) \
             select $1 || cast(i as text), $1, i, \
                    case when i % 2 = 1 then 'user' else 'assistant' end, 'earlier', 'complete', 0, 0 \
             from n",
        )
        .bind(&conversation)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
        let (status, field, message) =
            error_of(app.ask(&project, &conversation, "one more").await).await;
        assert_eq!(
            (status, field.as_deref()),
            (StatusCode::CONFLICT, Some("conversationId")),
            "{message}"
        );
        assert!(message.contains("start a new conversation"), "{message}");
        let stored: i64 =
            sqlx::query_scalar("select count(*) from message where conversation_id = $1")
                .bind(&conversation)
                .fetch_one(&app.state.db.pool)
                .await
                .unwrap();
        assert_eq!(stored, 1000, "the refused question was not stored");
        let fresh = app.conversation_id(&project).await;
        app.ask_ok(&project, &fresh, "a new start").await;
    }
);

/// A question queued without waiting ([`cover::server::ledger::Ledger::queue_opening`]),
/// in the conversation `conversation` (which may not exist), and its answer's id.
fn exchange(conversation: &str) -> (Exchange, String) {
    let exchange = Exchange::asked(
        conversation,
        "queued?".to_owned(),
        None,
        "queued?".to_owned(),
    );
    let answer_id = exchange.answer_id.clone();
    (exchange, answer_id)
}

/// How the answer `answer_id` ended: complete, with `text`.
fn ending(answer_id: &str, text: &str) -> Settlement {
    let update = AnswerUpdate {
        status: MessageStatus::Complete,
        content: text.to_owned(),
        facts: None,
        fallback: None,
        interrupted: None,
        error: None,
        cost_nanos: 0,
        unpriced: false,
        citations: None,
        images: None,
    };
    Settlement {
        answer: Some((answer_id.to_owned(), update)),
        ..Settlement::default()
    }
}

both_engines!(
    a_question_queued_without_waiting_is_stored_before_its_answer_ends_even_in_one_commit,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        let project = project(&app).await;
        let conversation = app.conversation_id(&project).await;
        let ledger = &app.state.ledger;
        // Queued and settled at once, many times: most land in one group.
        let mut answers = Vec::new();
        for i in 0..20 {
            let (exchange, answer_id) = exchange(&conversation);
            let opening = Opening {
                hold: None,
                exchange: Some(Arc::new(exchange)),
            };
            let queued = ledger.queue_opening(opening).await.unwrap();
            let mut settlement = ending(&answer_id, &format!("answer {i}"));
            settlement.opening = Some(queued);
            answers.push(ledger.settle(settlement));
        }
        for settled in futures::future::join_all(answers).await {
            settled.unwrap();
        }
        assert_eq!(
            messages_by_role_and_status(&app, &project).await,
            [
                ("assistant".to_owned(), "complete".to_owned(), 20),
                ("user".to_owned(), "complete".to_owned(), 20)
            ],
            "no answer ended before its question was stored"
        );

        // A question that cannot be stored fails its answer's settlement.
        let (exchange, answer_id) = exchange("no-such-conversation");
        let opening = Opening {
            hold: None,
            exchange: Some(Arc::new(exchange)),
        };
        let mut settlement = ending(&answer_id, "lost");
        settlement.opening = Some(ledger.queue_opening(opening).await.unwrap());
        assert!(
            ledger.settle(settlement).await.is_err(),
            "the settlement reports the question that was not stored"
        );
    }
);
