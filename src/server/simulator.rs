//! The provider simulator: Anthropic, OpenAI, Gemini and Ollama APIs (and Voyage AI's
//! embeddings) on one loopback port, with deterministic answers, realistic pacing and fault
//! injection.
//!
//! Tests, end-to-end runs, benchmarks and the offline demo point the providers' base URLs
//! here. Answers are derived from the last user message; usage blocks follow each
//! provider's counting rules. The official Python SDKs work against it unchanged
//! (see `tests/sdk/`).
//!
//! | provider | routes |
//! |---|---|
//! | Anthropic | `POST /v1/messages`, `POST /v1/messages/count_tokens`, `GET /v1/models` (with `anthropic-version`) |
//! | OpenAI (and Llama OpenAI-compatible) | `POST /v1/chat/completions`, `POST /v1/embeddings`, `POST /v1/images/generations` (GPT Image models: a PNG per picture), `GET /v1/models` |
//! | Gemini | `/v1beta` and `/v1`: `POST models/{m}:generateContent`, `:streamGenerateContent?alt=sse`, `:countTokens`, `:embedContent`, `:batchEmbedContents`, `GET models`, `GET models/{m}` |
//! | Ollama | `POST /api/chat`, `POST /api/embed`, `GET /api/tags` |
//! | Voyage AI (Claude projects' embeddings) | `POST /v1/embeddings` with a `voyage…` model: Voyage's real API has this path on its own host, so here the model tells the two apart |
//!
//! Embedding vectors are deterministic and carry meaning: hashed word features
//! (see `simulator/embeddings.rs`), so texts sharing words are close and retrieval can be
//! tested end to end.
//!
//! # Faults
//!
//! A request's fault (a [`Fault`], named in snake_case) is, in this order:
//! 1. the `x-sim-fault` header, when it names a fault;
//! 2. else the first matching entry of the fault schedule (consumed once per match);
//! 3. else, for a `--fault-rate` fraction of requests, `--fault`.
//!
//! # Control API
//!
//! Lets tests and the Playwright suite fail one provider or model of a chain through the app:
//!
//! | route | effect |
//! |---|---|
//! | `POST /_sim/faults` | schedules a fault → 201 `{"scheduled": n}` (400 for an unreadable body) |
//! | `DELETE /_sim/faults` | clears the schedule → 204 |
//! | `GET /_sim/stats` | `{"requests": n, "openStreams": m}`: requests to the provider routes, streams still open |
//!
//! The body of `POST /_sim/faults`:
//!
//! ```json
//! {"model": "claude-3-5-sonnet-20241022", "dialect": "anthropic", "fault": "server_error",
//!  "times": 2, "retryAfterSecs": 1}
//! ```
//!
//! `model` (the request's model) and `dialect` (`anthropic`, `openai`, `gemini`, `ollama`,
//! `voyage`; embeddings requests count as their API's dialect) are optional filters; `times` defaults to 1 and 0 means every matching request until the
//! schedule is cleared; `retryAfterSecs` sets the `Retry-After` of `rate_limit` (default 1 s)
//! and `overloaded` (none by default) answers.

mod answer;
mod anthropic;
mod embeddings;
mod faults;
mod gemini;
mod images;
mod ollama;
mod openai;
mod streaming;

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use rand::Rng;
use serde_json::Value;

use answer::{Plan, Prompt};
use faults::{DialectName, FaultSchedule, Injected};
use streaming::{Ending, Script};

/// Command-line options of `cover simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8089, env = "COVER_SIM_PORT")]
    pub port: u16,
    /// Address to bind; loopback by default.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// The only API key accepted; any non-empty key when absent.
    #[arg(long, env = "COVER_SIM_ACCEPT_KEY")]
    pub accept_key: Option<String>,
    /// Time to first token, in milliseconds (0 = immediately).
    #[arg(long, default_value_t = 0)]
    pub ttft_ms: u64,
    /// Streaming speed in tokens per second (0 = as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    pub tokens_per_second: f64,
    /// Fraction (0–1) of all requests that get `--fault`.
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Fault injected by `--fault-rate`.
    #[arg(long, value_enum, default_value_t = Fault::ServerError)]
    pub fault: Fault,
}

impl SimulateArgs {
    /// The simulator options these flags describe.
    pub fn options(&self) -> SimulatorOptions {
        SimulatorOptions {
            accept_key: self.accept_key.clone(),
            ttft: Duration::from_millis(self.ttft_ms),
            tokens_per_second: self.tokens_per_second,
            fault_rate: self.fault_rate.clamp(0.0, 1.0),
            fault: self.fault,
        }
    }
}

/// Runtime options of the simulator (see [`SimulateArgs`] for their meaning).
#[derive(Debug, Clone)]
pub struct SimulatorOptions {
    /// The only key accepted, or any non-empty key.
    pub accept_key: Option<String>,
    /// Delay before the first token.
    pub ttft: Duration,
    /// Tokens per second while streaming; 0 = no delay.
    pub tokens_per_second: f64,
    /// Fraction of requests that get `fault`.
    pub fault_rate: f64,
    /// Fault injected by `fault_rate`.
    pub fault: Fault,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        Self {
            accept_key: None,
            ttft: Duration::ZERO,
            tokens_per_second: 0.0,
            fault_rate: 0.0,
            fault: Fault::ServerError,
        }
    }
}

/// A fault the simulator can inject (`x-sim-fault` header value or `--fault`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[clap(rename_all = "snake_case")]
pub enum Fault {
    /// 429 with `retry-after`.
    RateLimit,
    /// Anthropic 529, others 503.
    Overloaded,
    /// 503 service unavailable.
    Unavailable,
    /// 500 internal error.
    ServerError,
    /// The provider's 401 (Gemini: 400 API_KEY_INVALID).
    Unauthorized,
    /// Billing quota exhausted (OpenAI 429 insufficient_quota, …).
    Quota,
    /// The provider's context-length error.
    ContextTooLong,
    /// Never send response headers.
    Hang,
    /// Send some tokens, then nothing, forever.
    Stall,
    /// Send some tokens, then close without the end marker.
    Cut,
    /// Send some tokens, then a broken JSON chunk.
    Malformed,
    /// Streams: 200 and headers, then no frame ever (time-to-first-token timeouts);
    /// non-streamed answers hang like `hang`.
    Silent,
    /// The provider's 400 for a request it rejects (an invalid-request error).
    BadRequest,
}

impl Fault {
    /// True for faults answered with an error status instead of a (broken) answer.
    fn is_status(self) -> bool {
        !matches!(
            self,
            Self::Hang | Self::Stall | Self::Cut | Self::Malformed | Self::Silent
        )
    }
}

/// `Retry-After` of a rate-limit answer when the schedule does not set one.
const DEFAULT_RETRY_AFTER_SECS: u64 = 1;

/// The message of the `bad_request` fault's 400.
const BAD_REQUEST_MESSAGE: &str = "simulated bad request: the request was rejected as invalid";

/// The `retry-after` header of a rate-limit answer (`secs`, or the default).
fn rate_limit_retry_after(secs: Option<u64>) -> (&'static str, String) {
    (
        "retry-after",
        secs.unwrap_or(DEFAULT_RETRY_AFTER_SECS).to_string(),
    )
}

/// The `retry-after` header of an overloaded answer: only when the schedule set one.
fn overloaded_retry_after(secs: Option<u64>) -> Vec<(&'static str, String)> {
    secs.map(|s| ("retry-after", s.to_string()))
        .into_iter()
        .collect()
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <Self as clap::ValueEnum>::from_str(s.trim(), true)
    }
}

/// Counters that tests read to observe the simulator (e.g. that a dropped stream closed).
#[derive(Debug, Default)]
pub struct SimStats {
    /// Requests received.
    pub requests: AtomicU64,
    /// Streams whose body is still being sent.
    pub open_streams: AtomicI64,
}

struct Sim {
    opts: SimulatorOptions,
    stats: Arc<SimStats>,
    schedule: Mutex<FaultSchedule>,
}

/// Builds the simulator's router.
pub fn router(opts: SimulatorOptions) -> Router {
    router_with_stats(opts).0
}

/// Builds the router and returns the counters it updates.
pub fn router_with_stats(opts: SimulatorOptions) -> (Router, Arc<SimStats>) {
    let stats = Arc::new(SimStats::default());
    let sim = Arc::new(Sim {
        opts,
        stats: stats.clone(),
        schedule: Mutex::new(FaultSchedule::default()),
    });
    let gemini_call = || get(gemini::get_model).post(gemini_post);
    let router = Router::new()
        .route("/v1/messages", post(anthropic_messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/v1/models", get(models_v1))
        .route("/v1/chat/completions", post(openai_chat))
        .route("/v1/embeddings", post(embeddings::v1_embeddings))
        .route("/v1/images/generations", post(images::generations))
        .route("/v1beta/models", get(gemini::list_models))
        .route("/v1beta/models/{call}", gemini_call())
        .route("/v1/models/{call}", gemini_call())
        .route("/api/chat", post(ollama_chat))
        .route("/api/tags", get(ollama::tags))
        .route("/api/embed", post(embeddings::ollama))
        .route("/_sim/faults", post(faults::schedule).delete(faults::clear))
        .route("/_sim/stats", get(faults::stats))
        .with_state(sim);
    (router, stats)
}

/// Serves the simulator on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    opts: SimulatorOptions,
) -> std::io::Result<()> {
    serve_router(listener, router(opts)).await
}

/// A simulator serving on a loopback port of this process.
pub struct LoopbackSimulator {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Counters the simulator updates.
    pub stats: Arc<SimStats>,
}

/// Starts the simulator on a free loopback port in the current tokio runtime:
/// the one launcher of the tests, the benches and the adapter testkit.
pub async fn start_on_loopback(opts: SimulatorOptions) -> std::io::Result<LoopbackSimulator> {
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    let (router, stats) = router_with_stats(opts);
    tokio::spawn(serve_router(listener, router));
    Ok(LoopbackSimulator { url, stats })
}

/// Serves a simulator router (e.g. from [`router_with_stats`]) with `TCP_NODELAY`, so each
/// streamed frame leaves at once, as it does from the real providers.
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: Router,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        // NOTE: without it, Nagle + delayed ACK adds ~40 ms to some streams.
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router).await
}

/// The shipped catalog, loaded once: what the simulated embedding and image
/// APIs know of their models.
fn catalog() -> Option<&'static crate::model::catalog::Catalog> {
    static CATALOG: std::sync::OnceLock<Option<crate::model::catalog::Catalog>> =
        std::sync::OnceLock::new();
    CATALOG
        .get_or_init(|| crate::server::catalog::load().ok())
        .as_ref()
}

/// How a simulated API guards its routes and words its errors: what the shared
/// [`Sim::gate`] needs from every API, chat or embeddings.
trait Api: Sync {
    /// Which API this is, for the fault schedule's `dialect` filter.
    fn name(&self) -> DialectName;
    /// The model the request names, for the fault schedule's `model` filter.
    fn model<'a>(&'a self, body: &'a Value) -> Option<&'a str> {
        body["model"].as_str()
    }
    /// Checks the key; `Err` is the provider's own 401/403.
    // A rejection is a whole HTTP response, built at most once per request.
    #[allow(clippy::result_large_err)]
    fn authorize(
        &self,
        sim: &Sim,
        headers: &HeaderMap,
        query: Option<&str>,
        body: &Value,
    ) -> Result<(), Response>;
    /// The provider's error answer for a status fault; `retry_after_secs` as scheduled.
    fn fault(&self, fault: Fault, retry_after_secs: Option<u64>) -> Response;
    /// The provider's 400 for a request it cannot read.
    fn bad_request(&self, message: &str) -> Response;
}

/// What each simulated chat API does differently; the request flow is shared.
trait Dialect: Api {
    /// Reads the request.
    fn prompt(&self, body: &Value, stream: Option<bool>) -> Result<Prompt, String>;
    /// The whole (non-streamed) answer.
    fn response(&self, prompt: &Prompt, plan: &Plan) -> Value;
    /// The streamed answer, frame by frame.
    fn script(&self, prompt: &Prompt, plan: &Plan) -> Script;
}

impl Sim {
    fn key_ok(&self, key: Option<&str>) -> bool {
        match (key.map(str::trim), &self.opts.accept_key) {
            (Some(k), Some(accepted)) => k == accepted,
            (Some(k), None) => !k.is_empty(),
            (None, _) => false,
        }
    }

    /// The schedule, even if a panicking holder poisoned its lock (it holds no invariant).
    fn schedule(&self) -> MutexGuard<'_, FaultSchedule> {
        self.schedule.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The request's fault: header, else schedule, else `--fault-rate` (see the module doc).
    fn pick_fault(
        &self,
        headers: &HeaderMap,
        dialect: DialectName,
        model: Option<&str>,
    ) -> Option<Injected> {
        let from_header = headers
            .get("x-sim-fault")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Fault>().ok());
        if let Some(fault) = from_header {
            return Some(fault.into());
        }
        if let Some(scheduled) = self.schedule().take(dialect, model) {
            return Some(scheduled);
        }
        (self.opts.fault_rate > 0.0 && rand::thread_rng().gen_bool(self.opts.fault_rate.min(1.0)))
            .then_some(self.opts.fault.into())
    }

    fn token_interval(&self) -> Duration {
        if self.opts.tokens_per_second > 0.0 {
            Duration::from_secs_f64(1.0 / self.opts.tokens_per_second)
        } else {
            Duration::ZERO
        }
    }

    /// Applies auth and status/hang faults shared by every endpoint; `Err` is the answer.
    #[allow(clippy::result_large_err)]
    async fn gate<A: Api + ?Sized>(
        &self,
        dialect: &A,
        headers: &HeaderMap,
        query: Option<&str>,
        body: &Value,
    ) -> Result<Option<Fault>, Response> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        dialect.authorize(self, headers, query, body)?;
        match self.pick_fault(headers, dialect.name(), dialect.model(body)) {
            Some(Injected {
                fault: Fault::Hang, ..
            }) => std::future::pending().await,
            Some(i) if i.fault.is_status() => Err(dialect.fault(i.fault, i.retry_after_secs)),
            other => Ok(other.map(|i| i.fault)),
        }
    }
}

async fn chat(
    sim: Arc<Sim>,
    dialect: &dyn Dialect,
    headers: HeaderMap,
    query: Option<String>,
    body: Bytes,
    stream: Option<bool>,
) -> Response {
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(err) => return dialect.bad_request(&format!("invalid JSON body: {err}")),
    };
    let fault = match sim.gate(dialect, &headers, query.as_deref(), &value).await {
        Ok(fault) => fault,
        Err(response) => return response,
    };
    let prompt = match dialect.prompt(&value, stream) {
        Ok(p) => p,
        Err(message) => return dialect.bad_request(&message),
    };
    let plan = answer::plan(&prompt);
    let interval = sim.token_interval();
    let ending = ending_of(fault);
    if prompt.stream {
        let script = dialect.script(&prompt, &plan);
        return streaming::response(script, sim.opts.ttft, interval, ending, sim.stats.clone());
    }
    if ending == Ending::Silent {
        return std::future::pending().await;
    }
    let thinking = sim.opts.ttft + interval * plan.output_tokens as u32;
    if !thinking.is_zero() {
        tokio::time::sleep(thinking).await;
    }
    whole_answer(&sim, dialect.response(&prompt, &plan).to_string(), ending).await
}

/// The ending a picked fault gives an answer that is sent (not refused with a status).
fn ending_of(fault: Option<Fault>) -> Ending {
    match fault {
        Some(Fault::Stall) => Ending::Stall,
        Some(Fault::Cut) => Ending::Cut,
        Some(Fault::Malformed) => Ending::Malformed,
        Some(Fault::Silent) => Ending::Silent,
        _ => Ending::Complete,
    }
}

/// Sends a whole (non-streamed) JSON answer, or breaks it as `ending` says: half
/// the JSON, then a stall, a close or garbage; `Silent` never answers.
async fn whole_answer(sim: &Sim, text: String, ending: Ending) -> Response {
    match ending {
        Ending::Complete => return json_response(StatusCode::OK, text, &[]),
        Ending::Silent => return std::future::pending().await,
        _ => {}
    }
    let half = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    let script = Script {
        content_type: "application/json",
        head: vec![text[..half].to_owned()],
        tokens: Vec::new(),
        tail: Vec::new(),
        malformed: "\u{0}}{".to_owned(),
    };
    streaming::response(
        script,
        Duration::ZERO,
        Duration::ZERO,
        ending,
        sim.stats.clone(),
    )
}

/// A JSON response with extra headers.
fn json_response(status: StatusCode, body: String, headers: &[(&'static str, String)]) -> Response {
    let mut response = (status, Body::from(body)).into_response();
    let map = response.headers_mut();
    map.insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            map.insert(*name, v);
        }
    }
    response
}

async fn anthropic_messages(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    chat(sim, &anthropic::Anthropic, headers, None, body, None).await
}

async fn openai_chat(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    chat(sim, &openai::OpenAi, headers, None, body, None).await
}

async fn ollama_chat(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    chat(sim, &ollama::Ollama, headers, None, body, None).await
}

/// `POST models/{model}:{method}` for Gemini.
async fn gemini_post(
    State(sim): State<Arc<Sim>>,
    Path(call): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((model, method)) = call.split_once(':') else {
        return gemini::not_found(&call, "generateContent");
    };
    match method {
        "generateContent" | "streamGenerateContent" => {
            let stream = method == "streamGenerateContent";
            let dialect = gemini::Gemini::new(model);
            chat(sim, &dialect, headers, query, body, Some(stream)).await
        }
        "countTokens" => gemini::count_tokens(sim, model, headers, query, body).await,
        "embedContent" | "batchEmbedContents" => {
            let batch = method == "batchEmbedContents";
            embeddings::gemini(sim, model, batch, headers, query, body).await
        }
        _ => gemini::not_found(&call, "generateContent"),
    }
}

/// `GET /v1/models` is shared by three APIs: Anthropic's list when `anthropic-version` is
/// present, Gemini's when a Google key is given, else OpenAI's.
async fn models_v1(state: State<Arc<Sim>>, query: RawQuery, headers: HeaderMap) -> Response {
    let google = headers.contains_key("x-goog-api-key")
        || query
            .0
            .as_deref()
            .is_some_and(|q| q.split('&').any(|p| p.starts_with("key=")));
    if headers.contains_key("anthropic-version") {
        anthropic::list_models(state.0, headers).await
    } else if google {
        gemini::list_models(state, query, headers).await
    } else {
        openai::list_models(state.0, headers).await
    }
}

/// Reads a request's bearer or header key.
fn header_key<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let value = headers.get(name)?.to_str().ok()?;
    Some(value.strip_prefix("Bearer ").unwrap_or(value))
}

#[cfg(test)]
mod tests;

/// Estimated prompt tokens: every string under a `text`, `content` or `system` key.
fn input_tokens(body: &Value) -> u64 {
    fn walk<'a>(v: &'a Value, key: Option<&str>, out: &mut Vec<&'a str>) {
        match v {
            Value::String(s) if matches!(key, Some("text" | "content" | "system")) => out.push(s),
            Value::Array(items) => items.iter().for_each(|i| walk(i, key, out)),
            Value::Object(map) => map.iter().for_each(|(k, v)| walk(v, Some(k), out)),
            _ => {}
        }
    }
    let mut texts = Vec::new();
    walk(body, None, &mut texts);
    answer::count_text_tokens(&texts).max(1)
}
