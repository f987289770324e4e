//! Traces over OTLP: a `cover serve` process whose `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is a loopback receiver exports every provider attempt as a client span with
//! OpenTelemetry's GenAI attributes (operation, provider, model, tokens), in
//! OTLP/HTTP protobuf, under the service name `cover`.

use crate::durability::{admin_project, new_conversation};
use crate::helpers::{
    create_admin, messages_path, spawn_simulator, Engine, ServerProcess, TestDatabase,
};
use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Attribute;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;
use tokio::sync::mpsc;

const SONNET: &str = "claude-3-5-sonnet-20241022";
/// How long the exported span may take to arrive (the batch delay is 100 ms).
const EXPORT_LIMIT: Duration = Duration::from_secs(20);

/// An OTLP/HTTP trace receiver on loopback: its endpoint, and every export
/// request it received, decoded.
async fn receiver() -> (String, mpsc::UnboundedReceiver<ExportTraceServiceRequest>) {
    let (exports, received) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let exports = exports.clone();
            async move {
                let request =
                    ExportTraceServiceRequest::decode(body).expect("the export is OTLP protobuf");
                let _ = exports.send(request);
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), received)
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Attribute> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|value| value.value.as_ref())
}

fn text<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attribute(attributes, key) {
        Some(Attribute::StringValue(text)) => Some(text),
        _ => None,
    }
}

fn number(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attribute(attributes, key) {
        Some(Attribute::IntValue(value)) => Some(*value),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_attempt_is_exported_over_otlp_as_a_gen_ai_span() {
    crate::helpers::within_limit(async {
        let (endpoint, mut exports) = receiver().await;
        let database = TestDatabase::create(Engine::Sqlite).await;
        let simulator = spawn_simulator(Default::default()).await;
        create_admin(&database.url, "traces@example.com").await;
        let server = ServerProcess::start(
            &database.url,
            &simulator,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
                ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ],
        )
        .await;
        let (client, project, token) = admin_project(&server, "traces@example.com").await;
        let conversation = new_conversation(&client, &server.address, &project, &token).await;
        let answer = client
            .post(server.url(&messages_path(&project, &conversation)))
            .bearer_auth(&token)
            .json(&json!({ "content": "Traced question" }))
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);

        let (span, service): (Span, Option<String>) = tokio::time::timeout(EXPORT_LIMIT, async {
            loop {
                let export = exports.recv().await.expect("the receiver runs");
                for resource_spans in export.resource_spans {
                    let service = resource_spans
                        .resource
                        .as_ref()
                        .and_then(|r| text(&r.attributes, "service.name"))
                        .map(str::to_owned);
                    for scope in resource_spans.scope_spans {
                        if let Some(span) = scope
                            .spans
                            .into_iter()
                            .find(|span| span.name == format!("chat {SONNET}"))
                        {
                            return (span, service);
                        }
                    }
                }
            }
        })
        .await
        .expect("the attempt's span is exported within the limit");
        assert_eq!(service.as_deref(), Some("cover"));
        assert_eq!(span.kind, SpanKind::Client as i32);
        let attributes = &span.attributes;
        assert_eq!(text(attributes, "gen_ai.operation.name"), Some("chat"));
        assert_eq!(text(attributes, "gen_ai.provider.name"), Some("anthropic"));
        assert_eq!(text(attributes, "gen_ai.request.model"), Some(SONNET));
        assert!(
            number(attributes, "gen_ai.usage.input_tokens").unwrap_or(0) > 0,
            "{span:?}"
        );
        assert!(
            number(attributes, "gen_ai.usage.output_tokens").unwrap_or(0) > 0,
            "{span:?}"
        );
        assert_eq!(text(attributes, "error.type"), None, "it succeeded");
        assert!(span.end_time_unix_nano > span.start_time_unix_nano);
    })
    .await;
}
