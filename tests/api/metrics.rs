//! `GET /metrics`: the operator's Prometheus view of every provider attempt,
//! counted from the same rows as the ledger under OpenTelemetry's GenAI names
//! (durations by error type, tokens), with the exact cost in nano-dollars,
//! fallbacks, open circuits and the server's queue and answers in flight,
//! readable only with the operator's token.

use crate::helpers::{
    fail_model, fallback_to, new_client, Engine, TestApp, TestOptions, METRICS_TOKEN,
};
use reqwest::StatusCode;

const SONNET: &str = "claude-3-5-sonnet-20241022";
const MINI: &str = "gpt-4o-mini";

/// The value of the sample line that starts with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// Checks every line is OpenMetrics text: `# TYPE|HELP|UNIT|EOF` comments,
/// or `name{label="value",…} number` samples of a declared family.
fn assert_parses(text: &str) {
    let mut families = Vec::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.split(' ');
            let kind = words.next().unwrap_or_default();
            assert!(matches!(kind, "TYPE" | "HELP" | "UNIT" | "EOF"), "{line}");
            if kind == "TYPE" {
                families.push(words.next().expect("a family name").to_owned());
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(value.parse::<f64>().is_ok(), "a number: {line}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "a metric name: {line}"
        );
        assert!(
            families
                .iter()
                .any(|family| name.starts_with(family.as_str())),
            "a sample of a declared family: {line}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                let inner = labels
                    .strip_prefix('{')
                    .and_then(|l| l.strip_suffix('}'))
                    .unwrap_or_else(|| panic!("labels in braces: {line}"));
                for pair in inner.split("\",") {
                    let (key, quoted) = pair.split_once('=').unwrap_or_else(|| panic!("{line}"));
                    assert!(
                        key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                        "{line}"
                    );
                    assert!(quoted.starts_with('"'), "a quoted value: {line}");
                }
            }
        }
    }
    assert!(
        families.len() >= 8,
        "the families with samples are declared: {families:?}"
    );
}

/// A ledger figure: `select <expression> from llm_usage where <condition>`.
async fn ledger(app: &TestApp, expression: &str, condition: &str) -> f64 {
    let value: Option<i64> = sqlx::query_scalar(&format!(
        "select cast({expression} as bigint) from llm_usage where {condition}"
    ))
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    value.unwrap_or(0) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_attempt_as_the_ledger_does_for_the_operator_only() {
    crate::helpers::within_limit(async {
        let mut options = TestOptions::default();
        options.router.breaker_threshold = 3;
        let app = TestApp::spawn_with(Engine::Sqlite, options).await;
        app.sign_up("operator@example.com").await;
        let project = app.new_project("Watched").await;
        app.configure(&project, fallback_to("openai", MINI, 1)).await;
        let conversation = app.conversation_id(&project).await;
        app.ask_ok(&project, &conversation, "One").await;
        app.ask_ok(&project, &conversation, "Two").await;
        // Claude fails until its circuit opens; the fallback answers.
        fail_model(&app, SONNET, "server_error").await;
        for question in ["Three", "Four", "Five"] {
            let answer = app.ask_ok(&project, &conversation, question).await;
            assert_eq!(answer["provider"], "openai");
        }
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
        let claude = format!(
            r#"gen_ai_provider_name="anthropic",gen_ai_request_model="{SONNET}""#
        );
        let sonnet_rows = format!("model = '{SONNET}'");
        // Every attempt in the duration histogram, failures by error type.
        assert_eq!(
            sample(
                &text,
                &format!(
                    r#"gen_ai_client_operation_duration_seconds_count{{{claude},gen_ai_operation_name="chat",error_type=""}}"#
                )
            ),
            Some(2.0),
            "{text}"
        );
        let failed = ledger(&app, "count(*)", &format!("{sonnet_rows} and success = 0")).await;
        assert!(failed >= 3.0, "Claude failed until its circuit opened");
        assert_eq!(
            sample(
                &text,
                &format!(
                    r#"gen_ai_client_operation_duration_seconds_count{{{claude},gen_ai_operation_name="chat",error_type="transient"}}"#
                )
            ),
            Some(failed),
            "{text}"
        );
        // The cost counter is the ledger's sum, to the nano-dollar; tokens too.
        assert_eq!(
            sample(&text, &format!("cover_llm_cost_nanodollars_total{{{claude}}}")),
            Some(ledger(&app, "sum(cost_nanos)", &sonnet_rows).await),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                &format!(
                    r#"gen_ai_client_token_usage_sum{{{claude},gen_ai_operation_name="chat",gen_ai_token_type="output"}}"#
                )
            ),
            Some(ledger(&app, "sum(output_tokens)", &sonnet_rows).await),
            "{text}"
        );
        // The fallback's answers, and Claude's open circuit.
        assert_eq!(
            sample(
                &text,
                &format!(
                    r#"cover_llm_fallback_attempts_total{{gen_ai_provider_name="openai",gen_ai_request_model="{MINI}",outcome="success"}}"#
                )
            ),
            Some(3.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                r#"cover_circuit_breakers{gen_ai_provider_name="anthropic",state="open"}"#
            ),
            Some(1.0),
            "{text}"
        );
        // The server's own figures: nothing queued or running now, and the
        // ledger's commits timed.
        assert_eq!(sample(&text, "cover_ledger_queue_depth "), Some(0.0), "{text}");
        assert_eq!(sample(&text, "cover_answers_in_flight "), Some(0.0), "{text}");
        assert!(sample(&text, "cover_ledger_commit_duration_seconds_count ").unwrap() >= 1.0);
        assert!(text.ends_with("# EOF\n"));
        assert_parses(&text);
    })
    .await;
}
