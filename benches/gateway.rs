//! Gateway overhead benchmark (`scripts/bench`, or `cargo bench --features ssr
//! --bench gateway`): what Cover's chat path adds to a provider call.
//!
//! The same question goes to the in-process simulator (zero latency) three ways:
//! * **direct** — the provider adapter and executor only: what any client pays;
//! * **gateway** — the router (fallback chain, retry policy, circuit breaker,
//!   context fitting, time limits) + adapter + ledger: every attempt priced and
//!   queued to the usage ledger, whose batched writer is on (SQLite file, WAL);
//! * **chat** — `services::chat` as the API runs it: the gateway plus the
//!   conversation's storage (pinned configuration and history read, question
//!   and answer written), one fresh conversation per question.
//!
//! Requests arrive open-loop at a fixed rate (200 and 1,000 per second), so a
//! slow request does not slow the arrivals. For each rate the bench prints p50
//! and p99 of each way, non-streamed (whole answer) and streamed (time to the
//! first token), and what the gateway and the chat add over direct.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use secrecy::SecretString;

use cover::model::chat::{ChatEvent, NewMessage};
use cover::server::config::{Config, ManagedKeys};
use cover::server::ledger::pricing::UsageContext;
use cover::server::llm::router::{
    AttemptRecord, AttemptSink, Route, RouterEvent, Target, TargetRole,
};
use cover::server::llm::{
    build_provider, GenerateRequest, LlamaFlavour, Message, Provider, ProviderId, ResponseFormat,
    Role, StreamEvent, ToolChoice,
};
use cover::server::services::{chat, llm_settings, routing};
use cover::server::simulator::{self, SimulatorOptions};
use cover::server::startup::Application;
use cover::server::state::AppState;

use support::percentile;

/// Seconds of traffic per row.
const SECONDS: u64 = 3;
/// The question (short, so the answer is the simulator's fixed sentence).
const QUESTION: &str = "What are your opening hours?";
const MODEL: &str = "claude-3-5-sonnet-20241022";
const KEY: &str = "sk-ant-api03-bench-key-0000";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Whole,
    FirstToken,
}

#[derive(Clone, Copy, PartialEq)]
enum Way {
    Direct,
    Gateway,
    Chat,
}

/// Queues every attempt to the usage ledger, priced, as the chat's sink does.
struct LedgerSink {
    state: AppState,
    context: UsageContext,
}

#[async_trait]
impl AttemptSink for LedgerSink {
    async fn record(&self, attempt: AttemptRecord) {
        let rates = self.state.internal_rates.snapshot();
        let (row, _) = self.context.row(
            &self.state.catalog,
            &rates,
            &attempt,
            cover::model::costs::UsageOperation::Chat,
        );
        self.state.ledger.record(row).await;
    }
}

/// Everything the three ways need.
struct Bench {
    state: AppState,
    provider: Arc<dyn Provider>,
    /// The project's chain: Claude 3.5 Sonnet, then GPT-4o mini.
    targets: Vec<Target>,
    project_id: String,
    /// One fresh conversation per chat question.
    conversations: Vec<String>,
}

fn first_token_of(started: Instant, event: &StreamEvent) -> Option<Duration> {
    matches!(event, StreamEvent::TextDelta { .. }).then(|| started.elapsed())
}

impl Bench {
    async fn direct(&self, mode: Mode) -> Duration {
        let request = GenerateRequest::simple(MODEL, QUESTION);
        let started = Instant::now();
        if mode == Mode::Whole {
            self.provider
                .generate(&request)
                .await
                .expect("direct answer");
            return started.elapsed();
        }
        let mut stream = self.provider.stream(&request).await.expect("direct stream");
        let mut first = None;
        while let Some(event) = stream.next().await {
            first = first.or_else(|| first_token_of(started, &event));
        }
        first.expect("a first token")
    }

    async fn gateway(&self, mode: Mode) -> Duration {
        let route = Route {
            targets: self.targets.clone(),
            messages: vec![Message::text(Role::User, QUESTION)],
            tools: Vec::new(),
            tool_choice: ToolChoice::Auto,
            response_format: ResponseFormat::Text,
            restart_after_output: true,
        };
        let sink = LedgerSink {
            state: self.state.clone(),
            context: UsageContext::new(&self.project_id, Some(1)),
        };
        let started = Instant::now();
        if mode == Mode::Whole {
            self.state
                .router
                .generate(route, &sink)
                .await
                .expect("routed answer");
            return started.elapsed();
        }
        let mut events = self.state.router.stream(route, Arc::new(sink));
        let mut first = None;
        while let Some(event) = events.next().await {
            if first.is_none() && matches!(event, RouterEvent::TextDelta(_)) {
                first = Some(started.elapsed());
            }
        }
        first.expect("a first token")
    }

    async fn chat(&self, mode: Mode, conversation: &str) -> Duration {
        let message = NewMessage {
            content: QUESTION.to_owned(),
            images: Vec::new(),
        };
        let started = Instant::now();
        if mode == Mode::Whole {
            chat::answer(&self.state, &self.project_id, conversation, message)
                .await
                .expect("chat answer");
            return started.elapsed();
        }
        let mut events = chat::answer_stream(&self.state, &self.project_id, conversation, message)
            .await
            .expect("chat stream");
        let mut first = None;
        while let Some(event) = events.recv().await {
            if first.is_none() && matches!(event, ChatEvent::Delta { .. }) {
                first = Some(started.elapsed());
            }
        }
        first.expect("a first token")
    }
}

/// Runs `rate` requests per second for [`SECONDS`], open-loop; returns the
/// sorted latencies. `offset` picks fresh conversations for the chat way.
async fn open_loop(
    bench: &Arc<Bench>,
    rate: u64,
    mode: Mode,
    way: Way,
    offset: usize,
) -> Vec<Duration> {
    let total = (rate * SECONDS) as usize;
    let (mut latencies, _) = support::open_loop(rate, total, |i, _| {
        let bench = bench.clone();
        async move {
            match way {
                Way::Direct => bench.direct(mode).await,
                Way::Gateway => bench.gateway(mode).await,
                Way::Chat => {
                    let conversation = &bench.conversations[offset + i];
                    bench.chat(mode, conversation).await
                }
            }
        }
    })
    .await;
    latencies.sort();
    latencies
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Conversations the whole run needs: one per chat question.
fn conversations_needed() -> usize {
    let per_mode: u64 = [100, 200, 1000].iter().map(|rate| rate * SECONDS).sum();
    (per_mode * 2) as usize
}

async fn setup(data: &std::path::Path) -> Bench {
    let simulator = simulator::start_on_loopback(SimulatorOptions::default())
        .await
        .expect("the simulator starts")
        .url;
    let key = || Some(SecretString::from(KEY.to_owned()));
    let config = Config {
        managed_keys: ManagedKeys {
            claude: key(),
            openai: key(),
            gemini: None,
            voyage: key(),
        },
        ..Config::loopback(
            &format!("sqlite://{}", data.join("bench.db").display()),
            &simulator,
        )
    };
    let app = Application::build(config).await.expect("app builds");
    let state = app.state().clone();
    let project = support::bench_project(&state).await;
    let (_, draft) = llm_settings::current(&state, &project.id).await.unwrap();
    let mut targets = Vec::new();
    for (model, role) in [
        (MODEL, TargetRole::Primary),
        ("gpt-4o-mini", TargetRole::Fallback),
    ] {
        let info = state.catalog.model(model).unwrap();
        targets.push(
            routing::target(&state, &project.id, &draft, info, role, 3)
                .await
                .unwrap(),
        );
    }
    let mut conversations = Vec::with_capacity(conversations_needed());
    for _ in 0..conversations_needed() {
        conversations.push(chat::create(&state, &project.id, None).await.unwrap().id);
    }
    let provider = build_provider(
        &state.executor,
        ProviderId::Claude,
        &simulator,
        key(),
        LlamaFlavour::Ollama,
    );
    // The server is not needed: the bench calls what the API handlers call.
    drop(app);
    Bench {
        state,
        provider,
        targets,
        project_id: project.id,
        conversations,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let data = tempfile::tempdir().expect("temp dir");
    runtime.block_on(async {
        let bench = Arc::new(setup(data.path()).await);
        let mut used = 0;
        println!("Gateway overhead against the simulator at zero latency ({SECONDS} s per cell, open-loop, µs)");
        println!(
            "{:>6} {:<12} {:>15} {:>15} {:>15} {:>19} {:>19}",
            "rate/s", "measure", "direct p50/p99", "gateway p50/p99", "chat p50/p99", "gateway adds p50/p99", "chat adds p50/p99"
        );
        // 100 rps warms connections, statements and caches first.
        for rate in [100, 200, 1000] {
            for (mode, label) in [(Mode::Whole, "whole answer"), (Mode::FirstToken, "first token")] {
                let direct = open_loop(&bench, rate, mode, Way::Direct, 0).await;
                let gateway = open_loop(&bench, rate, mode, Way::Gateway, 0).await;
                let chat = open_loop(&bench, rate, mode, Way::Chat, used).await;
                used += chat.len();
                if rate == 100 {
                    continue;
                }
                let cell = |l: &[Duration]| format!("{:.0}/{:.0}", micros(percentile(l, 0.5)), micros(percentile(l, 0.99)));
                let added = |l: &[Duration]| {
                    format!(
                        "{:.0}/{:.0}",
                        micros(percentile(l, 0.5)) - micros(percentile(&direct, 0.5)),
                        micros(percentile(l, 0.99)) - micros(percentile(&direct, 0.99))
                    )
                };
                println!(
                    "{rate:>6} {label:<12} {:>15} {:>15} {:>15} {:>19} {:>19}",
                    cell(&direct),
                    cell(&gateway),
                    cell(&chat),
                    added(&gateway),
                    added(&chat)
                );
            }
        }
        bench.state.ledger.flush().await;
        let rows: i64 = sqlx::query_scalar("select count(*) from llm_usage")
            .fetch_one(&bench.state.db.pool)
            .await
            .unwrap();
        println!("usage ledger rows written: {rows}");
    });
}
