//! Compare on a sample (`POST /api/llm/compare`) against the simulator: one
//! answer per model side by side, exact costs, billed in the ledger, failures
//! per model, and the usual 422/404 rules.

use crate::helpers::{error_of, Engine, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn compare(app: &TestApp, body: Value) -> reqwest::Response {
    app.post("/api/llm/compare", body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_is_answered_by_every_chosen_model_with_its_cost() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    app.sign_up("compare@example.com").await;
    let project = app.new_project("Compare").await;
    let models = ["claude-3-5-sonnet-20241022", "gpt-4o-mini", "llama-3.1-70b"];
    let response = compare(
        &app,
        json!({"projectId": project, "prompt": "How do I reset my password?", "models": models}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let results: Vec<Value> = response.json().await.unwrap();
    let got: Vec<&str> = results
        .iter()
        .map(|r| r["model"].as_str().unwrap())
        .collect();
    assert_eq!(got, models, "answers come back in the order asked");
    for result in &results {
        assert_eq!(
            result["content"], "This is a simulated answer to: How do I reset my password?",
            "{result}"
        );
        assert!(result["error"].is_null());
    }
    // Claude 3.5 Sonnet: $3 / $15 per 1M tokens; Llama self-hosted: $0.
    let sonnet = &results[0];
    let expected = sonnet["inputTokens"].as_i64().unwrap() * 3_000
        + sonnet["outputTokens"].as_i64().unwrap() * 15_000;
    assert_eq!(sonnet["costNanos"].as_i64(), Some(expected));
    assert_eq!(results[2]["costNanos"].as_i64(), Some(0));

    app.state.ledger.flush().await;
    let (rows, billed): (i64, i64) = sqlx::query_as(
        "select count(*), cast(coalesce(sum(cost_nanos), 0) as bigint) from llm_usage \
         where project_id = $1 and conversation_id is null",
    )
    .bind(&project)
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    let answered: i64 = results
        .iter()
        .map(|r| r["costNanos"].as_i64().unwrap())
        .sum();
    assert_eq!((rows, billed), (3, answered), "every attempt is billed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_model_does_not_spoil_the_comparison() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    app.sign_up("compare@example.com").await;
    let project = app.new_project("Compare").await;
    let scheduled = crate::helpers::new_client()
        .post(format!("{}/_sim/faults", app.simulator))
        .json(&json!({"model": "gpt-4o", "fault": "unauthorized", "times": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(scheduled.status(), StatusCode::CREATED);
    let results: Vec<Value> = compare(
        &app,
        json!({"projectId": project, "prompt": "Hi", "models": ["gpt-4o", "claude-3-5-haiku-20241022"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        results[0]["error"]
            .as_str()
            .unwrap()
            .contains("authentication"),
        "{results:?}"
    );
    assert_eq!(results[0]["content"], "");
    assert!(results[1]["error"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_comparisons_name_the_field_and_strangers_get_404() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    app.sign_up("compare@example.com").await;
    let project = app.new_project("Compare").await;
    let cases = [
        (
            json!({"projectId": project, "prompt": " ", "models": ["gpt-4o"]}),
            "prompt",
        ),
        (
            json!({"projectId": project, "prompt": "Hi", "models": []}),
            "models",
        ),
        (
            json!({"projectId": project, "prompt": "Hi", "models": ["gpt-5"]}),
            "models[0]",
        ),
        (
            json!({"projectId": project, "prompt": "Hi", "models": ["gpt-4o", "gpt-4o"]}),
            "models[1]",
        ),
    ];
    for (body, field) in cases {
        let (status, got, message) = error_of(compare(&app, body).await).await;
        assert_eq!(
            (status, got.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{message}"
        );
    }
    let stranger = app.other_user("stranger@example.com").await;
    let response = stranger
        .post(app.url("/api/llm/compare"))
        .json(&json!({"projectId": project, "prompt": "Hi", "models": ["gpt-4o"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
