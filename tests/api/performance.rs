//! The performance report (`GET /api/projects/:id/llm-performance`) from real
//! answers: attempts, successes and errors by class per model, fallback
//! activation and success, satisfaction from the ratings, percentiles marked
//! when their sample is small, and a 422 naming a bad filter.

use crate::helpers::{clear_faults, fail_model, fallback_to, Engine, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

const SONNET: &str = "claude-3-5-sonnet-20241022";
const MINI: &str = "gpt-4o-mini";

fn line<'a>(report: &'a Value, model: &str) -> &'a Value {
    report["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == model)
        .unwrap_or_else(|| panic!("no line for {model}: {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_counts_attempts_fallbacks_and_ratings_per_model() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        app.sign_up("perf@example.com").await;
        let project = app.new_project("Measured").await;
        app.configure(&project, fallback_to("openai", MINI, 1))
            .await;
        let conversation = app.conversation_id(&project).await;
        let mut answers = Vec::new();
        for i in 0..3 {
            answers.push(
                app.ask_ok(&project, &conversation, &format!("Question {i}"))
                    .await,
            );
        }
        fail_model(&app, SONNET, "overloaded").await;
        for i in 0..2 {
            answers.push(
                app.ask_ok(&project, &conversation, &format!("Hard {i}"))
                    .await,
            );
        }
        clear_faults(&app).await;
        for (answer, rating) in answers.iter().zip(["up", "up", "down", "up", "down"]) {
            let id = answer["messageId"].as_str().unwrap();
            let path = format!(
                "/api/projects/{project}/conversations/{conversation}/messages/{id}/rating"
            );
            let response = app
                .client
                .put(app.url(&path))
                .json(&json!({ "rating": rating }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::NO_CONTENT);
        }
        app.state.ledger.flush().await;

        let report: Value = app
            .get(&format!("/api/projects/{project}/llm-performance"))
            .await
            .json()
            .await
            .unwrap();
        let sonnet = line(&report, SONNET);
        assert_eq!(sonnet["attempts"], 5, "{sonnet}");
        assert_eq!(sonnet["successes"], 3);
        assert_eq!(sonnet["errors"], json!({"overloaded": 2}));
        assert_eq!(sonnet["answers"], 3);
        assert_eq!(sonnet["askedFirst"], 5);
        assert_eq!(sonnet["fallbackActivationRate"], 0.4);
        assert_eq!(sonnet["fallbackSuccessRate"], 1.0);
        assert_eq!(sonnet["satisfaction"]["up"], 2);
        assert_eq!(sonnet["satisfaction"]["down"], 1);
        let low = sonnet["satisfaction"]["low"].as_f64().unwrap();
        let high = sonnet["satisfaction"]["high"].as_f64().unwrap();
        assert!(low < 2.0 / 3.0 && 2.0 / 3.0 < high, "{sonnet}");
        assert_eq!(sonnet["latency"]["n"], 3);
        assert_eq!(
            sonnet["latency"]["lowSample"], true,
            "3 values are too few to stand alone"
        );
        assert!(sonnet["latency"]["p50"].as_f64().unwrap() >= 0.0);

        let mini = line(&report, MINI);
        assert_eq!(
            (mini["attempts"].clone(), mini["answers"].clone()),
            (json!(2), json!(2))
        );
        assert_eq!(mini["satisfaction"]["up"], 1);
        assert_eq!(mini["satisfaction"]["down"], 1);
        assert_eq!(mini["askedFirst"], 0);
        assert!(mini["fallbackActivationRate"].is_null());

        let points = report["series"].as_array().unwrap();
        assert_eq!(points.len(), 30, "every day of the default period");
        let attempts: u64 = points.iter().map(|p| p["attempts"].as_u64().unwrap()).sum();
        assert_eq!(attempts, 7);

        let response = app
            .get(&format!(
                "/api/projects/{project}/llm-performance?granularity=hour"
            ))
            .await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["field"], "granularity");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_screen_charts_latency_and_the_first_token_of_streamed_answers() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        app.sign_up("charts@example.com").await;
        let project = app.new_project("Charts").await;
        let conversation = app.conversation_id(&project).await;
        app.ask_ok(&project, &conversation, "Whole").await;
        app.state.ledger.flush().await;
        let path = format!("/projects/{project}/performance");
        let html = app.get(&path).await.text().await.unwrap();
        assert!(html.contains(r#"data-test="latency-chart""#));
        // Only whole answers so far: no first token to chart.
        assert!(html.contains(r#"data-test="ttft-chart-empty""#));
        let streamed = app
            .client
            .post(app.url(&crate::helpers::messages_path(&project, &conversation)))
            .header("accept", "text/event-stream")
            .json(&json!({ "content": "Streamed" }))
            .send()
            .await
            .unwrap();
        assert_eq!(streamed.status(), StatusCode::OK);
        assert!(streamed.text().await.unwrap().contains("event: done"));
        app.state.ledger.flush().await;
        let html = app.get(&path).await.text().await.unwrap();
        assert!(html.contains(r#"data-test="ttft-chart""#), "the TTFT chart");
        assert!(html.contains("Time to first token p50 and p95 over the period, in seconds"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_page_shows_how_models_perform_across_the_workspace() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        app.sign_up_admin("admin@example.com").await;
        for name in ["One", "Two"] {
            let project = app.new_project(name).await;
            let conversation = app.conversation_id(&project).await;
            app.ask_ok(&project, &conversation, "Across projects").await;
        }
        app.state.ledger.flush().await;
        let html = app.get("/admin").await.text().await.unwrap();
        assert!(html.contains(r#"data-test="admin-performance""#));
        let row = format!(r#"data-test="performance-row" data-model="{SONNET}""#);
        assert!(html.contains(&row), "a row for the workspace's model");
        // Both projects' answers count in it.
        let start = html.find(&row).unwrap();
        let attempts = &html[start..];
        let cell = attempts
            .split(r#"data-test="performance-attempts">"#)
            .nth(1)
            .unwrap();
        assert!(cell.starts_with("2<"), "{}", &cell[..20.min(cell.len())]);
    })
    .await;
}
