//! Knowledge base benchmark (`scripts/bench knowledge`, or `cargo bench
//! --features ssr --bench knowledge`), on SQLite and PostgreSQL, with the
//! provider simulator in-process as every embedding API:
//!
//! - **re-embedding after a switch**: a standard project (2,000 chunks of
//!   about 400 tokens, ~800k tokens) built with Voyage (Claude), then the
//!   project switched to GPT: seconds until the new index is swapped in, the
//!   simulator taking 300 ms per request; once more with 5 % of requests
//!   refused with `429` and `Retry-After: 1` (goal ≤ 10 s; spec 30 s);
//! - **retrieval**: p50/p99 of `retrieve` (the question's embedding, the
//!   exact scan, the chunk texts) over 50,000 chunks × 1,024 dimensions,
//!   and of the scan alone (goal p99 ≤ 20 ms);
//! - **upload to searchable**: a 100-page PDF, from upload until its index
//!   is ready (goal ≤ 5 s).

mod support;

#[path = "../tests/api/documents.rs"]
#[allow(dead_code)]
mod documents;

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::SecretString;

use cover::model::catalog::ProviderId;
use cover::model::knowledge::KnowledgeState;
use cover::model::llm_config::LlmConfigPatch;
use cover::server::config::{Config, ManagedKeys};
use cover::server::db::knowledge::{self as db, DocumentRow, NewChunk};
use cover::server::db::now_ms;
use cover::server::knowledge::vectors;
use cover::server::services::knowledge;
use cover::server::services::llm_settings;
use cover::server::simulator::{self, Fault, SimulatorOptions};
use cover::server::state::AppState;

/// The simulator's time per embedding request.
const REQUEST_TIME: Duration = Duration::from_millis(300);
/// Chunks of a standard project.
const STANDARD_CHUNKS: usize = 2_000;
/// Chunks of the retrieval bench.
const SEARCH_CHUNKS: usize = 50_000;
/// Questions timed in the retrieval bench.
const QUESTIONS: usize = 200;
/// Longest a build may take before the bench gives up.
const BUILD_LIMIT: Duration = Duration::from_secs(300);
const KEY: &str = "bench-key";

/// An application on `database_url` with every provider (and Voyage) at
/// `simulator`, served (the knowledge builder follows saved settings).
async fn app(database_url: &str, simulator: &str) -> AppState {
    let key = || Some(SecretString::from(KEY.to_owned()));
    let config = Config {
        managed_keys: ManagedKeys {
            claude: key(),
            openai: key(),
            gemini: key(),
            voyage: key(),
        },
        ..Config::loopback(database_url, simulator)
    };
    let app = cover::server::startup::Application::build(config)
        .await
        .expect("app builds");
    let state = app.state().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    state
}

async fn simulator_at(options: SimulatorOptions) -> String {
    simulator::start_on_loopback(SimulatorOptions {
        accept_key: Some(KEY.to_owned()),
        ..options
    })
    .await
    .expect("simulator")
    .url
}

/// A Markdown handbook of `sections` sections of about 400 tokens each.
fn handbook(sections: usize) -> String {
    let mut rng = StdRng::seed_from_u64(15);
    let words = [
        "refund", "parcel", "warranty", "invoice", "delivery", "account", "password", "order",
        "return", "shipping", "kettle", "support", "billing", "address", "discount", "voucher",
    ];
    let mut text = String::new();
    for i in 0..sections {
        text.push_str(&format!("## Section {i}\n\n"));
        for sentence in 0..11 {
            let body: Vec<&str> = (0..14)
                .map(|_| words[rng.gen_range(0..words.len())])
                .collect();
            text.push_str(&format!("Topic{i} note{sentence} {}. ", body.join(" ")));
        }
        text.push_str("\n\n");
    }
    text
}

/// Waits until the project's index is ready with `model`; answers how long.
async fn until_ready(state: &AppState, project: &str, model: &str) -> Duration {
    let started = Instant::now();
    loop {
        let status = knowledge::status(state, project).await.expect("status");
        if status.state == KnowledgeState::Ready
            && status.model == model
            && status.done == status.total
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < BUILD_LIMIT,
            "never ready with {model}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn switch_to(state: &AppState, project: &str, provider: ProviderId, model: &str) {
    let patch = LlmConfigPatch {
        provider: Some(provider),
        model: Some(model.to_owned()),
        ..LlmConfigPatch::default()
    };
    llm_settings::update(state, project, None, patch)
        .await
        .expect("switch");
}

async fn reembedding(engine: &str, database_url: &str, options: SimulatorOptions, what: &str) {
    let simulator = simulator_at(options).await;
    let state = app(database_url, &simulator).await;
    let project = support::bench_project(&state).await.id;
    let text = handbook(STANDARD_CHUNKS);
    let uploaded = knowledge::upload(&state, &project, None, "handbook.md", None, text.as_bytes())
        .await
        .expect("upload");
    let first = until_ready(&state, &project, "voyage-3.5").await;
    let status = knowledge::status(&state, &project).await.unwrap();
    switch_to(&state, &project, ProviderId::OpenAi, "gpt-4o-mini").await;
    let switched = until_ready(&state, &project, "text-embedding-3-small").await;
    println!(
        "  {engine:<10} {what:<28} {} chunks, {} tokens: first build {:5.2} s, re-embedding after the switch {:5.2} s",
        status.total,
        uploaded.tokens,
        first.as_secs_f64(),
        switched.as_secs_f64()
    );
}

/// Loads `SEARCH_CHUNKS` chunks with random unit vectors of 1,024 dimensions
/// into a ready Voyage index, straight through the storage layer.
async fn load_search_index(state: &AppState, project: &str) {
    let mut rng = StdRng::seed_from_u64(50);
    let chunks: Vec<NewChunk> = (0..SEARCH_CHUNKS)
        .map(|i| NewChunk {
            ordinal: i as i64,
            heading: Some(format!("Section {i}")),
            content: format!("Section {i}: refund parcel warranty invoice delivery account {i}"),
            tokens: 12,
        })
        .collect();
    let document = DocumentRow {
        document_id: uuid::Uuid::new_v4().to_string(),
        project_id: project.to_owned(),
        name: "large.md".into(),
        kind: "markdown".into(),
        size_bytes: 1,
        chunk_count: SEARCH_CHUNKS as i64,
        token_count: 12 * SEARCH_CHUNKS as i64,
        created_at: now_ms(),
    };
    db::insert_document(&state.db.writer, &document, "", None, &chunks)
        .await
        .expect("chunks");
    let index = db::start_index(&state.db.writer, project, "voyage-3.5", 1024)
        .await
        .expect("index");
    let stored = db::chunks_of(&state.db.pool, &document.document_id)
        .await
        .expect("chunk ids");
    for batch in stored.chunks(1_000) {
        let vectors: Vec<(String, Vec<u8>)> = batch
            .iter()
            .map(|chunk| {
                let mut vector: Vec<f32> = (0..1024).map(|_| rng.gen_range(-1.0..1.0)).collect();
                vectors::normalize(&mut vector);
                (chunk.chunk_id.clone(), vectors::encode(&vector))
            })
            .collect();
        assert!(
            db::store_vectors(&state.db.writer, &index.index_id, &vectors)
                .await
                .expect("vectors")
        );
    }
}

fn quantiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(support::percentile(&samples, 0.5)),
        ms(support::percentile(&samples, 0.99)),
    )
}

async fn retrieval(engine: &str, database_url: &str) {
    let simulator = simulator_at(SimulatorOptions::default()).await;
    let state = app(database_url, &simulator).await;
    let project = support::bench_project(&state).await.id;
    let loading = Instant::now();
    load_search_index(&state, &project).await;
    let loaded = loading.elapsed();
    let (_, draft) = llm_settings::current(&state, &project).await.unwrap();
    let sink = cover::server::services::metering::MeteredSink::new(
        &state,
        cover::server::ledger::pricing::UsageContext::new(&project, None),
    );
    // The first question loads the index into memory.
    let warm = Instant::now();
    knowledge::retrieve(&state, &project, &draft, "refund", 3_000, &sink)
        .await
        .expect("retrieve");
    let warm = warm.elapsed();
    let mut whole = Vec::with_capacity(QUESTIONS);
    for i in 0..QUESTIONS {
        let started = Instant::now();
        let found = knowledge::retrieve(
            &state,
            &project,
            &draft,
            &format!("parcel {i} delivery"),
            3_000,
            &sink,
        )
        .await
        .expect("retrieve");
        whole.push(started.elapsed());
        std::hint::black_box(found);
    }
    // The scan alone, over the same number of vectors.
    let mut rng = StdRng::seed_from_u64(51);
    let mut stored: Vec<f32> = Vec::with_capacity(SEARCH_CHUNKS * 1024);
    for _ in 0..SEARCH_CHUNKS {
        let mut v: Vec<f32> = (0..1024).map(|_| rng.gen_range(-1.0..1.0)).collect();
        vectors::normalize(&mut v);
        stored.extend(v);
    }
    let mut scans = Vec::with_capacity(QUESTIONS);
    for _ in 0..QUESTIONS {
        let mut query: Vec<f32> = (0..1024).map(|_| rng.gen_range(-1.0..1.0)).collect();
        vectors::normalize(&mut query);
        let started = Instant::now();
        let best = vectors::top_k_rows(&query, &stored, 1024, 4, -1.0);
        scans.push(started.elapsed());
        std::hint::black_box(best);
    }
    let (whole_p50, whole_p99) = quantiles(whole);
    let (scan_p50, scan_p99) = quantiles(scans);
    println!(
        "  {engine:<10} {SEARCH_CHUNKS} chunks × 1,024: loaded in {:.1} s, first question {:.0} ms; \
         retrieve p50 {whole_p50:.2} ms p99 {whole_p99:.2} ms; scan alone p50 {scan_p50:.2} ms p99 {scan_p99:.2} ms",
        loaded.as_secs_f64(),
        warm.as_secs_f64() * 1000.0
    );
}

async fn pdf_upload(engine: &str, database_url: &str) {
    let simulator = simulator_at(SimulatorOptions {
        ttft: REQUEST_TIME,
        ..SimulatorOptions::default()
    })
    .await;
    let state = app(database_url, &simulator).await;
    let project = support::bench_project(&state).await.id;
    let text = handbook(100);
    let pages: Vec<Vec<String>> = text
        .split("## ")
        .filter(|page| !page.trim().is_empty())
        .map(|page| {
            let words: Vec<&str> = page.split_whitespace().collect();
            words
                .chunks(12)
                .map(|line| line.join(" "))
                .take(50)
                .collect()
        })
        .collect();
    let pdf = documents::pdf_of(&pages);
    let started = Instant::now();
    let document = knowledge::upload(
        &state,
        &project,
        None,
        "handbook.pdf",
        Some("application/pdf"),
        &pdf,
    )
    .await
    .expect("upload");
    let stored = started.elapsed();
    until_ready(&state, &project, "voyage-3.5").await;
    println!(
        "  {engine:<10} {}-page PDF ({} KB, {} chunks, {} tokens): stored in {:.2} s, searchable after {:.2} s",
        pages.len(),
        pdf.len() / 1024,
        document.chunks,
        document.tokens,
        stored.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
        let slow = SimulatorOptions {
            ttft: REQUEST_TIME,
            ..SimulatorOptions::default()
        };
        let limited = SimulatorOptions {
            fault_rate: 0.05,
            fault: Fault::RateLimit,
            ..slow.clone()
        };
        println!("Re-embedding a standard project after a switch (simulator: 300 ms per request); goal ≤ 10 s");
        reembedding("SQLite", &sqlite("switch.db"), slow.clone(), "300 ms").await;
        reembedding("SQLite", &sqlite("limited.db"), limited.clone(), "300 ms, 5 % 429 (1 s)").await;
        let postgres = support::PostgresDatabase::create("cover_bench_knowledge").await;
        reembedding("PostgreSQL", &postgres.url, slow.clone(), "300 ms").await;
        let postgres = support::PostgresDatabase::create("cover_bench_knowledge_limited").await;
        reembedding("PostgreSQL", &postgres.url, limited, "300 ms, 5 % 429 (1 s)").await;

        println!("Retrieval (question embedded at the simulator, exact scan); goal p99 ≤ 20 ms");
        retrieval("SQLite", &sqlite("search.db")).await;
        let postgres = support::PostgresDatabase::create("cover_bench_knowledge_search").await;
        retrieval("PostgreSQL", &postgres.url).await;

        println!("Upload to searchable (simulator: 300 ms per request); goal ≤ 5 s");
        pdf_upload("SQLite", &sqlite("pdf.db")).await;
        let postgres = support::PostgresDatabase::create("cover_bench_knowledge_pdf").await;
        pdf_upload("PostgreSQL", &postgres.url).await;
    });
}
