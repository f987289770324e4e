//! Gateway overhead benchmark (`scripts/bench`, or `cargo bench --features ssr
//! --bench gateway`): what Cover's chat path adds to a provider call.
//!
//! The same question goes to the in-process simulator (zero latency) two ways:
//! * **direct** — the provider adapter and executor only: what any client pays;
//! * **chat path** — `services::chat` as the API runs it: conversation and
//!   pinned configuration loaded, question and answer stored, the router
//!   (retry, fallback chain, circuit breaker), every attempt priced and queued
//!   to the usage ledger, whose batched writer is on (SQLite file, WAL).
//!
//! Requests arrive open-loop at a fixed rate (200 and 1,000 per second), so a
//! slow request does not slow the arrivals. For each rate the bench prints p50
//! and p99 of both ways, non-streamed (whole answer) and streamed (time to the
//! first token), and the difference: the latency the gateway adds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use leptos::config::LeptosOptions;
use secrecy::SecretString;

use cover::model::account::UseCase;
use cover::model::chat::{ChatEvent, NewMessage};
use cover::server::config::{Config, ManagedKeys, MasterKeySource};
use cover::server::llm::router::RouterSettings;
use cover::server::llm::{
    build_provider, BaseUrls, GenerateRequest, LlamaFlavour, Provider, ProviderId, StreamEvent,
    Timeouts,
};
use cover::server::services::{accounts, chat, projects};
use cover::server::simulator::{self, SimulatorOptions};
use cover::server::startup::Application;
use cover::server::state::AppState;

/// Seconds of traffic per rate.
const SECONDS: u64 = 4;
/// Conversations the questions are spread over.
const CONVERSATIONS: usize = 200;
/// The question (short, so the answer is the simulator's fixed sentence).
const QUESTION: &str = "What are your opening hours?";
const MODEL: &str = "claude-3-5-sonnet-20241022";
const KEY: &str = "sk-ant-api03-bench-key-0000";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Whole,
    FirstToken,
}

/// Everything both ways need.
struct Bench {
    state: AppState,
    provider: Arc<dyn Provider>,
    project_id: String,
    conversations: Vec<String>,
}

impl Bench {
    async fn direct(&self, mode: Mode) -> Duration {
        let request = GenerateRequest::simple(MODEL, QUESTION);
        let started = Instant::now();
        match mode {
            Mode::Whole => {
                self.provider
                    .generate(&request)
                    .await
                    .expect("direct answer");
                started.elapsed()
            }
            Mode::FirstToken => {
                let mut stream = self.provider.stream(&request).await.expect("direct stream");
                let mut first = None;
                while let Some(event) = stream.next().await {
                    if first.is_none() && matches!(event, StreamEvent::TextDelta { .. }) {
                        first = Some(started.elapsed());
                    }
                }
                first.expect("a first token")
            }
        }
    }

    async fn chat_path(&self, mode: Mode, conversation: &str) -> Duration {
        let message = NewMessage {
            content: QUESTION.to_owned(),
            images: Vec::new(),
        };
        let started = Instant::now();
        match mode {
            Mode::Whole => {
                chat::answer(&self.state, &self.project_id, conversation, message)
                    .await
                    .expect("chat answer");
                started.elapsed()
            }
            Mode::FirstToken => {
                let mut events =
                    chat::answer_stream(&self.state, &self.project_id, conversation, message)
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
    }
}

/// Runs `rate` requests per second for [`SECONDS`], open-loop; returns the latencies.
async fn open_loop(bench: &Arc<Bench>, rate: u64, mode: Mode, routed: bool) -> Vec<Duration> {
    let total = rate * SECONDS;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        tokio::time::sleep_until(start + interval * i as u32).await;
        let bench = bench.clone();
        tasks.push(tokio::spawn(async move {
            if routed {
                let conversation = &bench.conversations[i as usize % CONVERSATIONS];
                bench.chat_path(mode, conversation).await
            } else {
                bench.direct(mode).await
            }
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    for task in tasks {
        latencies.push(task.await.expect("request task"));
    }
    latencies.sort();
    latencies
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn setup(data: &std::path::Path) -> Bench {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let simulator = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(simulator::serve(listener, SimulatorOptions::default()));
    let config = Config {
        database_url: format!("sqlite://{}", data.join("bench.db").display()),
        secure_cookies: false,
        leptos: LeptosOptions::builder()
            .output_name("cover")
            .site_root("target/site")
            .site_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .build(),
        base_urls: BaseUrls::from_lookup(|_| Some(simulator.clone())),
        managed_keys: ManagedKeys {
            claude: Some(SecretString::from(KEY.to_owned())),
            openai: None,
            gemini: None,
        },
        master_key: MasterKeySource::Env {
            key: cover::server::crypto::generate_key(),
            version: None,
        },
        timeouts: Timeouts::default(),
        router: RouterSettings::default(),
    };
    let app = Application::build(config).await.expect("app builds");
    let state = app.state().clone();
    let user = accounts::sign_up(&state.db.pool, "bench@example.com", "bench password 1")
        .await
        .unwrap();
    let project = projects::create(
        &state.db.pool,
        &state.catalog,
        &user,
        "Bench",
        UseCase::CustomerSupport,
    )
    .await
    .unwrap();
    let mut conversations = Vec::with_capacity(CONVERSATIONS);
    for _ in 0..CONVERSATIONS {
        let summary = chat::create(&state, &project.id, None).await.unwrap();
        conversations.push(summary.id);
    }
    let provider = build_provider(
        &state.executor,
        ProviderId::Claude,
        &simulator,
        Some(SecretString::from(KEY.to_owned())),
        LlamaFlavour::Ollama,
    );
    // The server is not needed: the bench calls the services the API calls.
    drop(app);
    Bench {
        state,
        provider,
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
        // Warm connections, statements and caches.
        for mode in [Mode::Whole, Mode::FirstToken] {
            open_loop(&bench, 200, mode, false).await;
            open_loop(&bench, 200, mode, true).await;
        }
        println!("Gateway overhead against the simulator at zero latency ({SECONDS} s per row, open-loop)");
        println!(
            "{:>6} {:<12} {:>11} {:>11} {:>11} {:>11} {:>10} {:>10}",
            "rate/s", "measure", "direct p50", "direct p99", "chat p50", "chat p99", "added p50", "added p99"
        );
        for rate in [200, 1000] {
            for (mode, label) in [(Mode::Whole, "whole answer"), (Mode::FirstToken, "first token")] {
                let direct = open_loop(&bench, rate, mode, false).await;
                let routed = open_loop(&bench, rate, mode, true).await;
                let (d50, d99) = (percentile(&direct, 0.5), percentile(&direct, 0.99));
                let (r50, r99) = (percentile(&routed, 0.5), percentile(&routed, 0.99));
                println!(
                    "{rate:>6} {label:<12} {:>9.0}µs {:>9.0}µs {:>9.0}µs {:>9.0}µs {:>8.0}µs {:>8.0}µs",
                    micros(d50),
                    micros(d99),
                    micros(r50),
                    micros(r99),
                    micros(r50) - micros(d50),
                    micros(r99) - micros(d99),
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
