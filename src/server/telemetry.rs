//! Logs and traces: the `tracing` subscriber every `cover` command runs
//! under, and — when the operator sets `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) — an OpenTelemetry layer exporting
//! the spans over OTLP/HTTP (protobuf) in batches, so every provider attempt
//! (the router's `attempt` span, with the GenAI attributes) reaches the
//! operator's tracing backend. The exporter reads the standard `OTEL_*`
//! variables (headers, timeouts, batch delays, service name).

use crate::model::catalog::ProviderId;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer as _;

/// The filter without `RUST_LOG`.
const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_http=info";

/// OpenTelemetry's `gen_ai.provider.name` of a Cover provider id (`claude`,
/// …): the semantic conventions' well-known names, and `llama` for the
/// self-hosted Llama servers, which have none.
pub fn gen_ai_provider_name(provider: &str) -> &'static str {
    match ProviderId::parse(provider) {
        Some(ProviderId::Claude) => "anthropic",
        Some(ProviderId::OpenAi) => "openai",
        Some(ProviderId::Gemini) => "gcp.gemini",
        Some(ProviderId::Llama) => "llama",
        None => "unknown",
    }
}

/// The installed subscriber's exporter, if any: dropping it sends the spans
/// still buffered (at the end of `main`).
pub struct Telemetry {
    traces: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(traces) = self.traces.take() {
            if let Err(error) = traces.shutdown() {
                eprintln!("cover: exporting the last spans failed: {error}");
            }
        }
    }
}

/// Whether the environment names an OTLP endpoint for traces.
fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok_and(|value| !value.trim().is_empty()))
}

/// Installs the subscriber: logs filtered by `RUST_LOG`, and the OTLP
/// exporter when one is configured. Call it before the async runtime starts
/// (the exporter's blocking HTTP client runs on its own thread).
pub fn init() -> Telemetry {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| DEFAULT_FILTER.into());
    let logs = tracing_subscriber::fmt::layer().with_filter(filter);
    let traces = otlp_configured()
        .then(|| {
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .build()
                .map_err(|error| eprintln!("cover: the OTLP exporter cannot start: {error}"))
                .ok()
        })
        .flatten()
        .map(|exporter| {
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(Resource::builder().with_service_name("cover").build())
                .build()
        });
    // Cover's own spans at info and above, whatever `RUST_LOG` keeps in the logs.
    let layer = traces.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("cover"))
            .with_filter(Targets::new().with_target("cover", Level::INFO))
    });
    tracing_subscriber::registry().with(logs).with(layer).init();
    Telemetry { traces }
}
