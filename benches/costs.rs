//! Cost report benchmark (`scripts/bench costs`, or `cargo bench --features ssr
//! --bench costs`): how long the cost page and the admin dashboard take on a
//! busy project.
//!
//! For each engine (a temporary SQLite file; PostgreSQL at
//! `COVER_BENCH_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`,
//! in a fresh database dropped afterwards) it loads 1,000,000 ledger rows for
//! one project over the last 90 days — a realistic mix of models, providers,
//! multi-turn conversations, cache reads, long Gemini prompts, fallbacks and
//! failures, priced with the catalog — through the ledger's own batch insert
//! and rollup code, in large transactions. Then it times `services::costs::
//! report` for the last 30 days and `services::costs::workspace`, 20 runs each
//! after a warm-up, and prints the median and the maximum (goal: ≤ 50 ms);
//! then, with 100,000 of the answers rated (through the rating path's rollup
//! update), the performance report of the project and of the workspace
//! (goal: ≤ 50 ms).

mod support;

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use cover::model::catalog::Catalog;
use cover::model::chat::{Rating, TokenUsage};
use cover::model::costs::UsageFilter;
use cover::model::pricing::cost_of;
use cover::model::recommend::Observations;
use cover::server::config::Config;
use cover::server::db::{is_postgres, now_ms};
use cover::server::ledger::{self, performance, rows::UsageRow};
use cover::server::services::{costs, performance as performance_report};
use cover::server::startup::Application;
use cover::server::state::AppState;

/// Ledger rows loaded.
const ROWS: usize = 1_000_000;
/// Days they cover, ending now.
const DAYS: i64 = 90;
/// Rows per transaction while loading.
const ROWS_PER_TRANSACTION: usize = 50_000;
/// Every this many answers is rated (100,000 ratings over the load).
const RATED_EVERY: usize = 9;
/// Timed runs per measurement.
const RUNS: usize = 20;
const DAY_MS: i64 = 86_400_000;

/// The model mix: (model, provider, weight in per cent).
const MIX: [(&str, &str, u32); 7] = [
    ("claude-3-5-sonnet-20241022", "claude", 45),
    ("claude-3-5-haiku-20241022", "claude", 20),
    ("gpt-4o-mini", "openai", 15),
    ("gpt-4o", "openai", 8),
    ("gemini-1.5-pro", "gemini", 5),
    ("gemini-1.5-flash", "gemini", 5),
    ("llama-3.1-70b", "llama", 2),
];

/// Generates the ledger of one project: conversations of 1 to 8 answers,
/// each answer one attempt (4 % with a failed try first and a fallback).
struct Generator {
    rng: StdRng,
    catalog: Catalog,
    project_id: String,
    start_ms: i64,
    /// The conversation being continued: id, model index, answers left, next turn.
    conversation: Option<(String, usize, u32, i64)>,
}

impl Generator {
    fn pick_model(&mut self) -> usize {
        let mut roll = self.rng.gen_range(0..100);
        for (i, (_, _, weight)) in MIX.iter().enumerate() {
            if roll < *weight {
                return i;
            }
            roll -= weight;
        }
        0
    }

    /// The next `count` rows, oldest first overall (times rise with the row index).
    fn rows(&mut self, first: usize, count: usize) -> Vec<UsageRow> {
        let mut rows = Vec::with_capacity(count + 8);
        let span = DAYS * DAY_MS;
        while rows.len() < count {
            let index = first + rows.len();
            let created_at = self.start_ms + (index as i64 * span) / ROWS as i64;
            let (conversation_id, model, turn) = match self.conversation.take() {
                Some((id, model, left, turn)) if left > 0 => {
                    self.conversation = Some((id.clone(), model, left - 1, turn + 1));
                    (id, model, turn)
                }
                _ => {
                    let model = self.pick_model();
                    let answers = self.rng.gen_range(1..=8);
                    let id = uuid::Uuid::new_v4().to_string();
                    self.conversation = Some((id.clone(), model, answers - 1, 2));
                    (id, model, 1)
                }
            };
            let request_id = uuid::Uuid::new_v4().to_string();
            let failed_first = self.rng.gen_range(0..100) < 4;
            if failed_first {
                let mut failed =
                    self.attempt(&conversation_id, &request_id, model, turn, created_at);
                failed.success = false;
                failed.error_class = Some(cover::model::chat::ErrorClass::RateLimited);
                failed.error_message = Some("429 Too Many Requests".into());
                failed.output_tokens = 0;
                failed.reasoning_tokens = 0;
                failed.input_tokens = 0;
                failed.cache_read_tokens = 0;
                failed.cost_nanos = Some(0);
                rows.push(failed);
                let mut fallback =
                    self.attempt(&conversation_id, &request_id, 2, turn, created_at + 900);
                fallback.attempt = 2;
                fallback.role = cover::server::llm::router::TargetRole::Fallback;
                fallback.is_fallback = true;
                rows.push(fallback);
            } else {
                rows.push(self.attempt(&conversation_id, &request_id, model, turn, created_at));
            }
        }
        rows
    }

    fn attempt(
        &mut self,
        conversation: &str,
        request: &str,
        model: usize,
        turn: i64,
        at: i64,
    ) -> UsageRow {
        let (model_id, provider, _) = MIX[model];
        let long = model_id == "gemini-1.5-pro" && self.rng.gen_range(0..100) < 10;
        let prompt: i64 = if long {
            self.rng.gen_range(130_000..400_000)
        } else {
            600 + turn * 450 + self.rng.gen_range(0..800)
        };
        let cached = if provider == "claude" && turn > 1 && self.rng.gen_range(0..100) < 30 {
            prompt * 2 / 3
        } else {
            0
        };
        let output: i64 = self.rng.gen_range(80..700);
        let usage = TokenUsage {
            input_tokens: (prompt - cached) as u64,
            cache_read_tokens: cached as u64,
            output_tokens: output as u64,
            ..TokenUsage::default()
        };
        let cost = cost_of(self.catalog.model(model_id), &usage);
        UsageRow {
            usage_id: uuid::Uuid::new_v4().to_string(),
            project_id: self.project_id.clone(),
            conversation_id: Some(conversation.to_owned()),
            message_id: Some(uuid::Uuid::new_v4().to_string()),
            request_id: request.to_owned(),
            attempt: 1,
            provider: provider.to_owned(),
            model: model_id.to_owned(),
            config_version: Some(1),
            role: cover::server::llm::router::TargetRole::Primary,
            is_fallback: false,
            streamed: true,
            managed_key: false,
            operation: Default::default(),
            input_tokens: prompt - cached,
            cache_read_tokens: cached,
            cache_write_tokens: 0,
            output_tokens: output,
            reasoning_tokens: 0,
            usage_estimated: false,
            raw_usage: Some(format!(
                "{{\"input_tokens\":{},\"cache_read_input_tokens\":{cached},\"output_tokens\":{output}}}",
                prompt - cached
            )),
            cost_nanos: cost.nanos(),
            price_version: cost.price_version().map(str::to_owned),
            latency_ms: 400 + output * 12 + self.rng.gen_range(0..400),
            ttft_ms: Some(200 + self.rng.gen_range(0..300)),
            success: true,
            error_class: None,
            error_message: None,
            created_at: at,
        }
    }
}

async fn app_state(database_url: &str) -> AppState {
    // No provider is called: the base URLs point at the discard port.
    let config = Config::loopback(database_url, "http://127.0.0.1:9");
    let app = Application::build(config).await.expect("app builds");
    // The server is not needed: the bench calls the services the API calls.
    app.state().clone()
}

/// Loads the ledger; returns the project id.
async fn load(state: &AppState) -> String {
    let project = support::bench_project(state).await;
    let mut generator = Generator {
        rng: StdRng::seed_from_u64(7),
        catalog: (*state.catalog).clone(),
        project_id: project.id.clone(),
        start_ms: now_ms() - DAYS * DAY_MS,
        conversation: None,
    };
    let started = Instant::now();
    let mut loaded = 0;
    let mut rated = Vec::new();
    while loaded < ROWS {
        let rows = generator.rows(loaded, ROWS_PER_TRANSACTION.min(ROWS - loaded));
        let mut tx = state.db.writer.begin().await.unwrap();
        ledger::store_requests(&mut tx, &rows).await.unwrap();
        tx.commit().await.unwrap();
        loaded += rows.len();
        rated.extend(
            rows.iter()
                .filter(|row| row.attempt == 1)
                .step_by(RATED_EVERY)
                .filter_map(|row| row.message_id.clone()),
        );
    }
    // Thumbs on some answers, through the rating path's rollup update.
    let mut rng = StdRng::seed_from_u64(11);
    for chunk in rated.chunks(ROWS_PER_TRANSACTION) {
        let mut tx = state.db.writer.begin().await.unwrap();
        for message_id in chunk {
            let rating = if rng.gen_range(0..100) < 80 {
                Rating::Up
            } else {
                Rating::Down
            };
            performance::rerate(&mut tx, message_id, None, Some(rating))
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let rows: i64 = sqlx::query_scalar("select count(*) from llm_usage")
        .fetch_one(&state.db.pool)
        .await
        .unwrap();
    let (daily, conversations): (i64, i64) = (
        sqlx::query_scalar("select count(*) from usage_daily")
            .fetch_one(&state.db.pool)
            .await
            .unwrap(),
        sqlx::query_scalar("select count(*) from usage_conversation_daily")
            .fetch_one(&state.db.pool)
            .await
            .unwrap(),
    );
    let (performance_rows, latency_rows): (i64, i64) = (
        sqlx::query_scalar("select count(*) from usage_performance_daily")
            .fetch_one(&state.db.pool)
            .await
            .unwrap(),
        sqlx::query_scalar("select count(*) from usage_latency_daily")
            .fetch_one(&state.db.pool)
            .await
            .unwrap(),
    );
    println!(
        "  loaded {rows} ledger rows and {} ratings in {:.1} s (rollups: {daily} daily rows, \
         {conversations} conversation-day rows, {performance_rows} performance rows, \
         {latency_rows} latency-bin rows)",
        rated.len(),
        started.elapsed().as_secs_f64()
    );
    project.id
}

/// Median and maximum of [`RUNS`] timed calls, after one warm-up call.
async fn time<F, Fut>(mut call: F) -> (Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    call().await;
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        call().await;
        times.push(started.elapsed());
    }
    times.sort();
    (times[RUNS / 2], times[RUNS - 1])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn bench(engine: &str, database_url: &str) {
    println!("{engine}:");
    let state = app_state(database_url).await;
    let project = load(&state).await;
    if is_postgres(database_url) {
        // What autovacuum does soon after a bulk load: planner statistics
        // and the visibility map for index-only scans.
        sqlx::query("vacuum analyze")
            .execute(&state.db.pool)
            .await
            .unwrap();
    }
    let filter = UsageFilter::default();
    let observed = Observations::new();
    let report = costs::report(&state, &project, &filter, &observed)
        .await
        .unwrap();
    println!(
        "  last 30 days: {} attempts, {} conversations, {} n$ ({} unpriced attempts)",
        report.total.attempts,
        report.conversations,
        report.total.cost_nanos,
        report.total.unpriced_attempts
    );
    let (median, max) = time(|| async {
        costs::report(&state, &project, &filter, &observed)
            .await
            .unwrap();
    })
    .await;
    println!(
        "  report()    median {:6.1} ms   max {:6.1} ms   ({RUNS} runs)",
        ms(median),
        ms(max)
    );
    let (median, max) = time(|| async {
        costs::workspace(&state, &filter).await.unwrap();
    })
    .await;
    println!(
        "  workspace() median {:6.1} ms   max {:6.1} ms   ({RUNS} runs)",
        ms(median),
        ms(max)
    );
    let performance = performance_report::report(&state, Some(&project), &filter)
        .await
        .unwrap();
    let attempts: u64 = performance.models.iter().map(|m| m.attempts).sum();
    let rated: u64 = performance
        .models
        .iter()
        .map(|m| m.satisfaction.up + m.satisfaction.down)
        .sum();
    println!(
        "  performance, last 30 days: {attempts} attempts, {rated} rated answers, {} models",
        performance.models.len()
    );
    let (median, max) = time(|| async {
        performance_report::report(&state, Some(&project), &filter)
            .await
            .unwrap();
    })
    .await;
    println!(
        "  performance report()           median {:6.1} ms   max {:6.1} ms   ({RUNS} runs)",
        ms(median),
        ms(max)
    );
    let (median, max) = time(|| async {
        performance_report::report(&state, None, &filter)
            .await
            .unwrap();
    })
    .await;
    println!(
        "  performance report(workspace)  median {:6.1} ms   max {:6.1} ms   ({RUNS} runs)",
        ms(median),
        ms(max)
    );
    // `/metrics`: the exposition after every model and outcome was counted.
    let mut generator = Generator {
        rng: StdRng::seed_from_u64(13),
        catalog: (*state.catalog).clone(),
        project_id: project.clone(),
        start_ms: now_ms(),
        conversation: None,
    };
    for row in generator.rows(0, 100_000) {
        state.metrics.record(&row);
    }
    let (median, max) = time(|| async {
        std::hint::black_box(state.metrics.encode(&Default::default()));
    })
    .await;
    println!(
        "  /metrics exposition            median {:6.2} ms   max {:6.2} ms   ({} bytes; goal ≤ 5 ms)",
        ms(median),
        ms(max),
        state.metrics.encode(&Default::default()).len()
    );
    state.db.close().await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!("Cost reports over {ROWS} ledger rows of one project ({DAYS} days); goal ≤ 50 ms");
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        bench("SQLite (temporary file, WAL)", &sqlite).await;
        let database = support::PostgresDatabase::create("cover_bench_costs").await;
        bench("PostgreSQL", &database.url).await;
    });
}
