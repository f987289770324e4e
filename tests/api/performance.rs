//! The performance report (`GET /api/projects/:id/llm-performance`) from real
//! answers: attempts, successes and errors by class per model, fallback
//! activation and success, satisfaction from the ratings (moved when a rating
//! changes), percentiles marked when their sample is small, and a 422 naming
//! a bad filter; the rollups it reads against the ledger rows they sum, kept
//! live and filled afresh, on both engines.

use crate::both_engines;
use crate::costs::usage_row;
use crate::helpers::{
    clear_faults, fail_model, fallback_to, messages_path, new_client, Engine, TestApp, TestOptions,
    GOOD_KEY,
};
use cover::model::chat::ErrorClass;
use cover::model::performance::Percentiles;
use cover::server::ledger::{self, performance, rows, rows::UsageRow};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

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
            app.rate(&project, &conversation, id, json!(rating)).await;
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

        // Ratings move: one cleared (up → none), one turned (down → up).
        for (answer, rating) in [(&answers[0], Value::Null), (&answers[2], json!("up"))] {
            let id = answer["messageId"].as_str().unwrap();
            app.rate(&project, &conversation, id, rating).await;
        }
        let report: Value = app
            .get(&format!("/api/projects/{project}/llm-performance"))
            .await
            .json()
            .await
            .unwrap();
        let sonnet = line(&report, SONNET);
        assert_eq!(
            (
                sonnet["satisfaction"]["up"].clone(),
                sonnet["satisfaction"]["down"].clone()
            ),
            (json!(2), json!(0)),
            "{sonnet}"
        );
    })
    .await;
}

/// What the report must say of one model, computed straight from the rows.
#[derive(Debug, Default)]
struct Expected {
    attempts: u64,
    successes: u64,
    errors: BTreeMap<String, u64>,
    latencies: Vec<i64>,
    ttfts: Vec<i64>,
    answers: u64,
    asked_first: u64,
    went_on: u64,
    rescued: u64,
}

fn expected_from(rows: &[UsageRow]) -> BTreeMap<String, Expected> {
    let mut models: BTreeMap<String, Expected> = BTreeMap::new();
    let mut requests: BTreeMap<&str, Vec<&UsageRow>> = BTreeMap::new();
    for row in rows {
        let model = models.entry(row.model.clone()).or_default();
        model.attempts += 1;
        if row.success {
            model.successes += 1;
            model.latencies.push(row.latency_ms);
            if row.streamed {
                model.ttfts.extend(row.ttft_ms);
            }
        } else {
            let class = row.error_class.map_or("unknown", |c| c.as_str());
            *model.errors.entry(class.to_owned()).or_default() += 1;
        }
        requests.entry(&row.request_id).or_default().push(row);
    }
    for attempts in requests.values_mut() {
        attempts.sort_by_key(|row| row.attempt);
        let first = attempts[0];
        let answered = attempts.iter().find(|row| row.success);
        let owner = answered.copied().unwrap_or(first);
        models.get_mut(&owner.model).unwrap().answers += 1;
        let asked = models.get_mut(&first.model).unwrap();
        asked.asked_first += 1;
        if attempts.iter().any(|row| row.model != first.model) {
            asked.went_on += 1;
            if answered.is_some_and(|row| row.model != first.model) {
                asked.rescued += 1;
            }
        }
    }
    models
}

fn assert_near(what: &str, reported: &Value, exact: Option<f64>) {
    match exact {
        None => assert!(reported.is_null(), "{what}: {reported}"),
        Some(exact) => {
            let reported = reported
                .as_f64()
                .unwrap_or_else(|| panic!("{what}: {reported}"));
            assert!(
                (reported - exact).abs() <= 0.02 * exact,
                "{what}: {reported} s from the rollups, {exact} s exact"
            );
        }
    }
}

both_engines!(
    the_rollups_equal_the_ledger_live_and_when_filled_from_it,
    |engine| async move {
        let app = TestApp::spawn(engine).await;
        app.sign_up("rollups@example.com").await;
        let project = app.new_project("Rolled up").await;
        // Two real answers, rated.
        let conversation = app.conversation_id(&project).await;
        for rating in ["up", "down"] {
            let answer = app.ask_ok(&project, &conversation, "Rated").await;
            let id = answer["messageId"].as_str().unwrap();
            app.rate(&project, &conversation, id, json!(rating)).await;
        }
        // 400 more requests over the last 10 days: 1 to 3 attempts across three
        // models, some failing throughout, latencies 5 ms to 40 s.
        let models = [
            (SONNET, "claude"),
            (MINI, "openai"),
            ("gemini-1.5-flash", "gemini"),
        ];
        let classes = [
            ErrorClass::RateLimited,
            ErrorClass::Overloaded,
            ErrorClass::Transient,
        ];
        let mut seed = 7_u64;
        let mut roll = |below: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % below
        };
        let now = cover::server::db::now_ms();
        let mut rows = Vec::new();
        for _ in 0..400 {
            let at = now - roll(10 * 86_400_000) as i64;
            let tries = 1 + roll(3);
            let answered = roll(10) < 8;
            let first = roll(3) as usize;
            let request = format!("request-{}", roll(u64::MAX));
            for attempt in 1..=tries {
                let model = if attempt == 1 {
                    first
                } else {
                    roll(3) as usize
                };
                let (id, provider) = models[model];
                let mut row = usage_row(&project, id, provider, at + attempt as i64 * 1_000);
                row.request_id = request.clone();
                row.attempt = attempt as i64;
                row.latency_ms = 5 + roll(40_000) as i64;
                row.streamed = roll(2) == 0;
                row.ttft_ms = row.streamed.then(|| 1 + roll(3_000) as i64);
                row.success = answered && attempt == tries;
                if !row.success {
                    row.error_class = Some(classes[roll(3) as usize]);
                }
                rows.push(row);
            }
        }
        ledger::insert_batch(&app.state.db.pool, &rows)
            .await
            .unwrap();
        app.state.ledger.flush().await;

        let path = format!("/api/projects/{project}/llm-performance");
        let live: Value = app.get(&path).await.json().await.unwrap();
        let stored: Vec<UsageRow> = sqlx::query(&format!(
            "select {} from llm_usage where project_id = $1",
            rows::select_list()
        ))
        .bind(&project)
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap()
        .iter()
        .map(|row| rows::from_row(row).unwrap())
        .collect();
        assert_eq!(
            stored.len(),
            rows.len() + 2,
            "the two real answers and the rows"
        );
        let expected = expected_from(&stored);
        assert_eq!(
            live["models"].as_array().unwrap().len(),
            expected.len(),
            "{live}"
        );
        for (model, exact) in &expected {
            let line = line(&live, model);
            assert_eq!(line["attempts"], exact.attempts, "{model}");
            assert_eq!(line["successes"], exact.successes, "{model}");
            assert_eq!(line["errors"], json!(exact.errors), "{model}");
            assert_eq!(line["answers"], exact.answers, "{model}");
            assert_eq!(line["askedFirst"], exact.asked_first, "{model}");
            let rate = |part: u64, whole: u64| (whole > 0).then(|| part as f64 / whole as f64);
            assert_eq!(
                line["fallbackActivationRate"].as_f64(),
                rate(exact.went_on, exact.asked_first),
                "{model}"
            );
            assert_eq!(
                line["fallbackSuccessRate"].as_f64(),
                rate(exact.rescued, exact.went_on),
                "{model}"
            );
            for (measure, values) in [("latency", &exact.latencies), ("ttft", &exact.ttfts)] {
                let exact = Percentiles::of_millis(values.clone());
                let reported = &line[measure];
                assert_eq!(reported["n"], exact.n, "{model} {measure}");
                assert_near(
                    &format!("{model} {measure} p50"),
                    &reported["p50"],
                    exact.p50,
                );
                assert_near(
                    &format!("{model} {measure} p95"),
                    &reported["p95"],
                    exact.p95,
                );
                assert_near(
                    &format!("{model} {measure} p99"),
                    &reported["p99"],
                    exact.p99,
                );
            }
        }
        let sonnet = line(&live, SONNET);
        assert_eq!(
            (
                sonnet["satisfaction"]["up"].clone(),
                sonnet["satisfaction"]["down"].clone()
            ),
            (json!(1), json!(1))
        );
        let attempts: u64 = live["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["attempts"].as_u64().unwrap())
            .sum();
        assert_eq!(attempts, stored.len() as u64);

        // Emptied and filled again from the ledger (as on the first start
        // after the upgrade), the report is the same.
        for sql in [
            "delete from usage_request",
            "delete from usage_performance_daily",
            "delete from usage_errors_daily",
            "delete from usage_latency_daily",
            "delete from workspace_setting where name = 'performance_rollups_filled'",
        ] {
            sqlx::query(sql).execute(&app.state.db.pool).await.unwrap();
        }
        let empty: Value = app.get(&path).await.json().await.unwrap();
        assert_eq!(empty["models"], json!([]));
        let read = performance::fill_from_ledger(&app.state.db).await.unwrap();
        assert_eq!(read, stored.len() as u64);
        let filled: Value = app.get(&path).await.json().await.unwrap();
        assert_eq!(filled, live);
        assert_eq!(
            performance::fill_from_ledger(&app.state.db).await.unwrap(),
            0,
            "filled once per database"
        );
    }
);

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

/// Schedules `fault` for the next request to `model` only.
async fn fail_once(app: &TestApp, model: &str, fault: &str) {
    let response = new_client()
        .post(format!("{}/_sim/faults", app.simulator))
        .json(&json!({ "model": model, "fault": fault, "times": 1, "retryAfterSecs": 0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_providers_first_token_and_failures_are_measured_as_the_simulator_made_them() {
    crate::helpers::within_limit(async {
        let mut options = TestOptions::default();
        options.simulator.ttft = Duration::from_millis(150);
        let app = TestApp::spawn_with(Engine::Sqlite, options).await;
        app.sign_up("ttft@example.com").await;
        let providers = [
            (json!({}), SONNET, SONNET),
            (
                json!({"provider": "openai", "model": "gpt-4o"}),
                "gpt-4o",
                "gpt-4o",
            ),
            (
                json!({"provider": "gemini", "model": "gemini-1.5-pro", "apiKey": GOOD_KEY}),
                "gemini-1.5-pro",
                "gemini-1.5-pro",
            ),
            (
                json!({"provider": "llama", "model": "llama-3.1-70b"}),
                "llama-3.1-70b",
                "llama3.1:70b",
            ),
        ];
        for (setup, model, wire_model) in providers {
            let project = app.new_project(model).await;
            app.configure(&project, setup).await;
            let conversation = app.conversation_id(&project).await;
            // Two streamed answers, then two whole ones, each after one fault.
            for question in ["First", "Second"] {
                let streamed = app
                    .client
                    .post(app.url(&messages_path(&project, &conversation)))
                    .header("accept", "text/event-stream")
                    .json(&json!({ "content": question }))
                    .send()
                    .await
                    .unwrap();
                assert!(
                    streamed.text().await.unwrap().contains("event: done"),
                    "{model}"
                );
            }
            for fault in ["rate_limit", "server_error"] {
                fail_once(&app, wire_model, fault).await;
                app.ask_ok(&project, &conversation, fault).await;
            }
            app.state.ledger.flush().await;

            let rows: Vec<(i64, Option<i64>, i64)> = sqlx::query_as(
                "select streamed, ttft_ms, success from llm_usage where project_id = $1",
            )
            .bind(&project)
            .fetch_all(&app.state.db.pool)
            .await
            .unwrap();
            assert_eq!(rows.len(), 6, "{model}: {rows:?}");
            for (streamed, ttft, _) in &rows {
                match (streamed, ttft) {
                    // The simulator's delay, stamped once by our reader.
                    (1, Some(ms)) => assert!((150..1_500).contains(ms), "{model}: {ms} ms"),
                    (0, None) => {}
                    other => panic!("{model}: a first token stamped wrongly: {other:?}"),
                }
            }
            let report: Value = app
                .get(&format!("/api/projects/{project}/llm-performance"))
                .await
                .json()
                .await
                .unwrap();
            let line = line(&report, model);
            assert_eq!(line["attempts"], 6, "{model}: {line}");
            assert_eq!(line["successes"], 4, "{model}");
            assert_eq!(line["answers"], 4, "{model}");
            assert_eq!(
                line["errors"],
                json!({"rateLimited": 1, "transient": 1}),
                "{model}: the faults injected"
            );
            assert_eq!(line["ttft"]["n"], 2, "{model}");
            let p50 = line["ttft"]["p50"].as_f64().unwrap();
            assert!((0.147..1.5).contains(&p50), "{model}: {p50} s");
        }
    })
    .await;
}
