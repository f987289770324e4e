//! `GET /metrics`: the operator's Prometheus view of every provider attempt,
//! counted from the same rows as the ledger (attempts by outcome, latency,
//! tokens, exact cost in nano-dollars), readable only with the operator's token.

use crate::helpers::{fail_model, new_client, Engine, TestApp, METRICS_TOKEN};
use reqwest::StatusCode;

const SONNET: &str = "claude-3-5-sonnet-20241022";

/// The value of the sample line that starts with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_attempt_as_the_ledger_does_for_the_operator_only() {
    crate::helpers::within_limit(async {
        let app = TestApp::spawn(Engine::Sqlite).await;
        app.sign_up("operator@example.com").await;
        let project = app.new_project("Watched").await;
        let conversation = app.conversation_id(&project).await;
        app.ask_ok(&project, &conversation, "One").await;
        app.ask_ok(&project, &conversation, "Two").await;
        fail_model(&app, SONNET, "bad_request").await;
        let _ = app.ask(&project, &conversation, "Three").await;
        app.state.ledger.flush().await;

        let url = app.url("/metrics");
        let refused = new_client().get(&url).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(refused.headers()["www-authenticate"], "Bearer");
        let wrong = new_client()
            .get(&url)
            .bearer_auth("not-it")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

        let response = new_client()
            .get(&url)
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"));
        let text = response.text().await.unwrap();
        let labels = format!(r#"provider="claude",model="{SONNET}",operation="chat""#);
        assert_eq!(
            sample(
                &text,
                &format!(r#"cover_llm_attempts_total{{{labels},outcome="success"}}"#)
            ),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                &format!(r#"cover_llm_attempts_total{{{labels},outcome="invalidRequest"}}"#)
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                &format!("cover_llm_attempt_duration_seconds_count{{{labels}}}")
            ),
            Some(2.0),
            "{text}"
        );
        // The cost counter is the ledger's sum, to the nano-dollar.
        let ledger: i64 =
            sqlx::query_scalar("select cast(sum(cost_nanos) as bigint) from llm_usage")
                .fetch_one(&app.state.db.pool)
                .await
                .unwrap();
        let model = format!(r#"provider="claude",model="{SONNET}""#);
        assert_eq!(
            sample(
                &text,
                &format!("cover_llm_cost_nanodollars_total{{{model}}}")
            ),
            Some(ledger as f64),
            "{text}"
        );
        let output: i64 =
            sqlx::query_scalar("select cast(sum(output_tokens) as bigint) from llm_usage")
                .fetch_one(&app.state.db.pool)
                .await
                .unwrap();
        assert_eq!(
            sample(
                &text,
                &format!(r#"cover_llm_tokens_total{{{model},kind="output"}}"#)
            ),
            Some(output as f64)
        );
        assert!(text.ends_with("# EOF\n"));
    })
    .await;
}
