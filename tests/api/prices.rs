//! Internal rates for self-hosted models: only admins set them, every field is
//! checked, and usage from their effective date is priced with them (a
//! self-hosted model without a rate costs $0).

use crate::helpers::{error_of, Engine, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Row;

const LLAMA: &str = "llama-3.1-70b";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internal_rate_prices_self_hosted_usage_from_its_date() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    app.sign_up_admin("admin@example.com").await;
    let project = app.new_project("Self-hosted").await;
    let ask = |label: &'static str| {
        let body =
            json!({"projectId": project, "prompt": format!("hello {label}"), "models": [LLAMA]});
        async {
            app.post("/api/llm/compare", body)
                .await
                .json::<Vec<Value>>()
                .await
                .unwrap()
        }
    };
    let free = ask("before").await;
    assert_eq!(free[0]["costNanos"], 0, "no rate: $0");

    let path = format!("/api/admin/internal-rates/{LLAMA}");
    let rate = app
        .client
        .put(app.url(&path))
        .json(&json!({"effectiveDate": "2020-01-01", "perHourUsd": "3600", "perMTokUsd": "1000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rate.status(), StatusCode::OK);
    let listed: Value = app
        .get("/api/admin/internal-rates")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["rates"][0]["perHourNanos"], 3_600_000_000_000i64);

    let priced = ask("after").await;
    app.state.ledger.flush().await;
    let row = sqlx::query(
        "select input_tokens, output_tokens, latency_ms, cost_nanos, price_version from llm_usage \
         where model = $1 order by created_at desc limit 1",
    )
    .bind(LLAMA)
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    // $1000 per 1M tokens and $3600 per hour are both 1,000,000 n$: per token, per ms.
    let tokens: i64 = row.get::<i64, _>("input_tokens") + row.get::<i64, _>("output_tokens");
    let expected = (tokens + row.get::<i64, _>("latency_ms")) * 1_000_000;
    assert_eq!(row.get::<Option<i64>, _>("cost_nanos"), Some(expected));
    assert_eq!(priced[0]["costNanos"].as_i64(), Some(expected));
    assert_eq!(
        row.get::<Option<String>, _>("price_version").as_deref(),
        Some("llama-3.1-70b@internal-2020-01-01")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_set_rates_and_every_field_is_checked() {
    let app = TestApp::spawn(Engine::Sqlite).await;
    app.sign_up_admin("admin@example.com").await;
    let put = |client: reqwest::Client, model: &str, body: Value| {
        let url = app.url(&format!("/api/admin/internal-rates/{model}"));
        async move { client.put(url).json(&body).send().await.unwrap() }
    };
    let (status, _, message) = error_of(
        put(
            app.client.clone(),
            "gpt-4o",
            json!({"effectiveDate": "2026-01-01", "perHourUsd": "1"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message.contains("self-hosted"), "{message}");
    let response = put(
        app.client.clone(),
        LLAMA,
        json!({"effectiveDate": "Jan 1", "perHourUsd": "-1", "perMTokUsd": "abc"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    let fields: Vec<&str> = body["error"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["effectiveDate", "perHourUsd", "perMTokUsd"]);
    let (status, field, _) = error_of(
        put(
            app.client.clone(),
            LLAMA,
            json!({"effectiveDate": "2026-01-01"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, field.as_deref()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("perHourUsd"))
    );

    let member = app.other_user("member@example.com").await;
    let response = put(
        member,
        LLAMA,
        json!({"effectiveDate": "2026-01-01", "perHourUsd": "1"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
