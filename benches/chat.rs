//! Chat API benchmark (`scripts/bench chat`, or `cargo bench --features ssr
//! --bench chat`): how many answers per second the real server gives over
//! HTTP, and the time it adds to calling the provider directly.
//!
//! It starts the release `cover` binary twice, as separate processes: `cover
//! simulate` (zero latency) and `cover serve` whose four provider base URLs
//! point at it, on a temporary SQLite file and then on a fresh PostgreSQL
//! database (`COVER_BENCH_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`, dropped at the end). It creates
//! the admin with `cover user create`, logs in, creates a project with a
//! monthly budget and a project API token, and conversations enough for about
//! four questions each (short histories, like real chats).
//!
//! Every measured request is `POST /api/projects/:id/conversations/:cid/messages`
//! with `Authorization: Bearer cov_…` only: token check, the conversation's
//! pinned configuration and history read, the budget reservation, the router
//! and the Anthropic adapter to the simulator, question and answer written, the
//! budget settled and the attempt queued to the usage ledger. The baseline is
//! the same question sent straight to the simulator's `POST /v1/messages`.
//!
//! Both run open-loop at 200, 500, 1,000 and 2,000 requests per second for
//! [`SECONDS`] each: request `i` is sent at `start + i / rate` whatever the
//! earlier ones are doing, and its latency runs from that scheduled time to the
//! end of its answer's body (no coordinated omission). For each rate the bench
//! prints the served rate (200 answers per second of wall time), p50/p99 of
//! direct and of Cover and their difference (what Cover adds), the non-200
//! answers by status, transport errors (timeouts after
//! [`REQUEST_TIMEOUT`] included), the CPU each process used and the
//! ledger's group commits (per second, mean time, from `/metrics`) and the
//! answers the budget admitted by hold (their own, a lease's, a new lease's), then checks
//! the goal: 1,000 answers/s sustained with p99 added ≤ 10 ms, and no errors
//! of our own at 2,000/s (refusals with `Retry-After` are not errors).
//!
//! With the argument `gateway` (`scripts/bench gateway-http`) it measures the
//! gateway for programs instead: `POST /v1/chat/completions` with the token
//! (model gpt-4o-mini: the OpenAI adapter to the simulator, the budget gate
//! and the ledger) against the same request sent straight to the simulator's
//! `/v1/chat/completions`, whole answers and then streams, sequentially
//! (c=1) and open-loop at 200, 1,000 and 2,000 requests per second, with the
//! server's resident memory idle and loaded, and the ledger's row count
//! checked against the answers served. Goal: p99 added ≤ 1 ms at 1,000/s.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::{header, Client, RequestBuilder};
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use support::{open_loop, percentile, PostgresDatabase, BENCH_EMAIL, BENCH_PASSWORD};

/// The operator's `/metrics` token the bench starts the server with.
const METRICS_TOKEN: &str = "bench-metrics-token";
/// Offered rates, requests per second.
const RATES: [u64; 4] = [200, 500, 1_000, 2_000];
/// Seconds of traffic per rate and way.
const SECONDS: u64 = 5;
/// Warm-up before the first rate (connections, statement caches), not reported.
const WARM_UP_RATE: u64 = 100;
const WARM_UP_SECONDS: u64 = 2;
/// Questions each conversation gets over a whole engine's run.
const QUESTIONS_PER_CONVERSATION: usize = 4;
/// Time limit of every request: a hang never stalls the bench.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a process may take to answer after it was started.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Between rates the server is idle again when a small GET answers within this.
const IDLE_ANSWER: Duration = Duration::from_millis(20);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests in flight while creating conversations.
const SETUP_CONCURRENCY: usize = 16;
/// The question (short, so the answer is the simulator's fixed sentence).
const QUESTION: &str = "What are your opening hours?";
/// The project's default model, which the direct baseline asks too.
const MODEL: &str = "claude-3-5-sonnet-20241022";
const MAX_TOKENS: u32 = 1024;
/// The gateway's model: the OpenAI format end to end.
const GATEWAY_MODEL: &str = "gpt-4o-mini";
/// Gateway rates, requests per second (after the sequential run).
const GATEWAY_RATES: [u64; 3] = [200, 1_000, 2_000];
/// Requests of the sequential (c=1) gateway run.
const SEQUENTIAL_REQUESTS: usize = 1_000;
/// The managed key of the server; the only key the simulator accepts.
const KEY: &str = "sk-ant-api03-bench-key-0000";
/// The project's monthly budget: large enough never to refuse, so every
/// answer reserves and settles.
const BUDGET_USD: &str = "1000000";

/// A child process, killed when dropped: on every way out of the bench,
/// panics and Ctrl-C included.
struct Process {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Starts `command` with its output going to `log`.
    fn start(name: &str, mut command: Command, log: PathBuf) -> Process {
        let file = std::fs::File::create(&log).expect("create a process log");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("process log"))
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {name} ({}): {e}", env!("CARGO_BIN_EXE_cover"))
            });
        Process {
            name: name.to_owned(),
            child,
            log,
        }
    }

    /// The last lines of its output, for error messages.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits until `url` answers at all; panics naming the process when it
    /// exits first or does not answer within [`STARTUP_TIMEOUT`].
    async fn wait_until_up(&mut self, client: &Client, url: &str) {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before answering at {url}; its output ends with:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            let answer = client.get(url).timeout(Duration::from_secs(1)).send().await;
            if answer.is_ok() {
                return;
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                panic!(
                    "{} did not answer at {url} within {} s; its output ends with:\n{}",
                    self.name,
                    STARTUP_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// CPU time it has used so far.
    fn cpu(&self) -> Option<Duration> {
        process_cpu(&self.child.id()?.to_string())
    }

    /// Kills it and waits until it is gone.
    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Clock ticks per second of `/proc` CPU times.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// User + system CPU time of a process (all its threads) from
/// `/proc/<pid>/stat`; `None` where there is no `/proc`.
fn process_cpu(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name in parentheses; utime and stime are the
    // 14th and 15th of the line.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(Duration::from_secs_f64(ticks / clock_ticks()))
}

/// CPU time the whole machine has been busy (all cores) from `/proc/stat`.
fn machine_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
    let busy: f64 = ticks.iter().sum::<f64>() - ticks.get(3)? - ticks.get(4)?;
    Some(Duration::from_secs_f64(busy / clock_ticks()))
}

/// A free loopback port (bound, then released for the child to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// The `cover` binary this bench was built with, run in `dir`.
fn cover_command(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cover"));
    command
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1");
    command
}

/// `cover` with the server's environment: its database, key file and site in
/// `dir`, every provider at the simulator, managed keys set.
fn server_command(dir: &Path, database_url: &str, simulator: &str, port: u16) -> Command {
    let site = dir.join("site");
    std::fs::create_dir_all(&site).expect("create the site root");
    let mut command = cover_command(dir);
    command
        .env("DATABASE_URL", database_url)
        .env("COVER_KEY_FILE", dir.join("cover.key"))
        .env_remove("COVER_MASTER_KEY")
        .env("LEPTOS_OUTPUT_NAME", "cover")
        .env("LEPTOS_SITE_ROOT", &site)
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("COVER_ANTHROPIC_BASE_URL", simulator)
        .env("COVER_OPENAI_BASE_URL", simulator)
        .env("COVER_GEMINI_BASE_URL", simulator)
        .env("COVER_OLLAMA_BASE_URL", simulator)
        .env("ANTHROPIC_API_KEY", KEY)
        .env("OPENAI_API_KEY", KEY)
        .env_remove("GEMINI_API_KEY")
        .env("COVER_METRICS_TOKEN", METRICS_TOKEN);
    command
}

/// How one request ended.
#[derive(Debug, Clone)]
enum Outcome {
    /// An HTTP answer (its body read in full).
    Answered { status: u16, retry_after: bool },
    /// No answer within [`REQUEST_TIMEOUT`].
    TimedOut,
    /// Connection or protocol failure.
    Failed(String),
}

/// One request: its outcome and latency from its scheduled time.
struct Sample {
    latency: Duration,
    outcome: Outcome,
}

/// Sends `request` and reads the whole answer.
async fn send(request: RequestBuilder, scheduled: Instant) -> Sample {
    let failed = |error: reqwest::Error| {
        if error.is_timeout() {
            Outcome::TimedOut
        } else {
            Outcome::Failed(format!("{error:?}"))
        }
    };
    let outcome = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key(header::RETRY_AFTER);
            match response.bytes().await {
                Ok(_) => Outcome::Answered {
                    status,
                    retry_after,
                },
                Err(error) => failed(error),
            }
        }
        Err(error) => failed(error),
    };
    Sample {
        latency: scheduled.elapsed(),
        outcome,
    }
}

/// One open-loop run at one rate.
struct Run {
    samples: Vec<Sample>,
    /// From the first scheduled request until the last one finished.
    wall: Duration,
    /// Sorted latencies of every request, failed ones at the time they failed.
    sorted: Vec<Duration>,
}

impl Run {
    fn new(samples: Vec<Sample>, wall: Duration) -> Run {
        let mut sorted: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
        sorted.sort();
        Run {
            samples,
            wall,
            sorted,
        }
    }

    fn ok(&self) -> usize {
        self.samples
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Answered { status: 200, .. }))
            .count()
    }

    /// 200 answers per second of wall time.
    fn served(&self) -> f64 {
        self.ok() as f64 / self.wall.as_secs_f64()
    }

    fn p(&self, q: f64) -> f64 {
        ms(percentile(&self.sorted, q))
    }

    /// Non-200 answers: status → (count, how many carried Retry-After).
    fn statuses(&self) -> BTreeMap<u16, (usize, usize)> {
        let mut statuses = BTreeMap::new();
        for sample in &self.samples {
            if let Outcome::Answered {
                status,
                retry_after,
            } = sample.outcome
            {
                if status != 200 {
                    let entry = statuses.entry(status).or_insert((0, 0));
                    entry.0 += 1;
                    entry.1 += usize::from(retry_after);
                }
            }
        }
        statuses
    }

    fn non_200(&self) -> usize {
        self.statuses().values().map(|(n, _)| n).sum()
    }

    /// (timeouts, other transport failures, the first failure's text).
    fn transport(&self) -> (usize, usize, Option<&str>) {
        let mut timeouts = 0;
        let mut failures = 0;
        let mut first = None;
        for sample in &self.samples {
            match &sample.outcome {
                Outcome::TimedOut => timeouts += 1,
                Outcome::Failed(text) => {
                    failures += 1;
                    first = first.or(Some(text.as_str()));
                }
                Outcome::Answered { .. } => {}
            }
        }
        (timeouts, failures, first)
    }

    /// Non-200 by status, then transport errors, in words.
    fn breakdown(&self) -> String {
        let mut parts: Vec<String> = self
            .statuses()
            .iter()
            .map(|(status, (count, retry_after))| match retry_after {
                0 => format!("{status}×{count}"),
                r => format!("{status}×{count} ({r} with Retry-After)"),
            })
            .collect();
        let (timeouts, failures, first) = self.transport();
        if timeouts > 0 {
            parts.push(format!("{timeouts} timed out"));
        }
        if failures > 0 {
            parts.push(format!(
                "{failures} failed (first: {})",
                first.unwrap_or_default()
            ));
        }
        if parts.is_empty() {
            "-".into()
        } else {
            parts.join(", ")
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// CPU used during a run, in cores (CPU seconds per second of wall time).
#[derive(Default)]
struct CpuUse {
    server: Option<f64>,
    simulator: Option<f64>,
    bench: Option<f64>,
    machine: Option<f64>,
}

/// CPU times at one moment: server, simulator, this bench, the machine.
struct CpuMark([Option<Duration>; 4]);

impl CpuMark {
    fn now(server: &Process, simulator: &Process) -> CpuMark {
        CpuMark([
            server.cpu(),
            simulator.cpu(),
            process_cpu("self"),
            machine_cpu(),
        ])
    }

    fn since(&self, before: &CpuMark, wall: Duration) -> CpuUse {
        let cores = |i: usize| {
            Some((self.0[i]?.saturating_sub(before.0[i]?)).as_secs_f64() / wall.as_secs_f64())
        };
        CpuUse {
            server: cores(0),
            simulator: cores(1),
            bench: cores(2),
            machine: cores(3),
        }
    }
}

/// The gateway's request body (the same one both ways).
fn gateway_body(stream: bool) -> Value {
    let mut body = json!({
        "model": GATEWAY_MODEL,
        "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": QUESTION}],
    });
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

/// Resident memory of a process in MB, from `/proc/<pid>/status`.
fn resident_mb(process: &Process) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", process.child.id()?)).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Which path of Cover is measured.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Way {
    /// The chat API: conversations, history, questions and answers stored.
    Chat,
    /// The gateway's `/v1/chat/completions`, whole answers or streams.
    Gateway {
        /// Whether both sides stream.
        stream: bool,
    },
}

impl Way {
    fn label(self) -> &'static str {
        match self {
            Way::Chat => "chat API",
            Way::Gateway { stream: false } => "gateway, whole answers",
            Way::Gateway { stream: true } => "gateway, streams",
        }
    }
}

/// The bench's project on a running server, and how to ask it questions.
struct ChatApi {
    way: Way,
    client: Client,
    simulator: String,
    base: String,
    project_id: String,
    token: String,
    /// `…/conversations/:cid/messages` of every conversation.
    message_urls: Arc<Vec<String>>,
    /// Questions asked so far (the next one goes to conversation `asked % len`).
    asked: usize,
    /// Of those, the ones Cover answered with 200 (each must have its ledger row).
    answered: usize,
}

/// The body of `response`, which must have `status`; panics naming `what` otherwise.
async fn expect(response: reqwest::Response, status: u16, what: &str) -> Value {
    let got = response.status();
    let text = response.text().await.unwrap_or_default();
    if got.as_u16() != status {
        panic!("{what}: expected {status}, got {got}: {text}");
    }
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

impl ChatApi {
    /// Logs in, creates the project, its budget, a token and `conversations`
    /// conversations.
    async fn set_up(
        way: Way,
        client: &Client,
        simulator: &str,
        base: &str,
        conversations: usize,
    ) -> ChatApi {
        let session = Client::builder()
            .cookie_store(true)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("session client");
        let login = session
            .post(format!("{base}/api/auth/login"))
            .json(&json!({"email": BENCH_EMAIL, "password": BENCH_PASSWORD}))
            .send()
            .await
            .expect("log in");
        expect(login, 200, "log in as the bench admin").await;
        let project = session
            .post(format!("{base}/api/projects"))
            .json(&json!({"name": "Chat bench"}))
            .send()
            .await
            .expect("create the project");
        let project = expect(project, 201, "create the project").await;
        let project_id = project["id"].as_str().expect("project id").to_owned();
        let projects = format!("{base}/api/projects/{project_id}");
        let token = session
            .post(format!("{projects}/tokens"))
            // `manage` too: the bench sets the project's budget with it.
            .json(&json!({"name": "chat bench", "scopes": ["chat", "read", "manage"]}))
            .send()
            .await
            .expect("create the API token");
        let token = expect(token, 201, "create the API token").await;
        let token = token["secret"].as_str().expect("token secret").to_owned();
        let budget = client
            .put(format!("{projects}/budget"))
            .bearer_auth(&token)
            .json(&json!({"limitUsd": BUDGET_USD}))
            .send()
            .await
            .expect("set the budget");
        expect(budget, 200, "set the monthly budget").await;
        let projects = &projects;
        let message_urls: Vec<String> = futures::stream::iter(0..conversations)
            .map(|_| {
                let request = client
                    .post(format!("{projects}/conversations"))
                    .bearer_auth(&token)
                    .send();
                async move {
                    let created = expect(
                        request.await.expect("create a conversation"),
                        201,
                        "create a conversation",
                    )
                    .await;
                    let id = created["id"].as_str().expect("conversation id");
                    format!("{projects}/conversations/{id}/messages")
                }
            })
            .buffer_unordered(SETUP_CONCURRENCY)
            .collect()
            .await;
        ChatApi {
            way,
            client: client.clone(),
            simulator: simulator.to_owned(),
            base: base.to_owned(),
            project_id,
            token,
            message_urls: Arc::new(message_urls),
            asked: 0,
            answered: 0,
        }
    }

    /// The question straight to the simulator, as Cover's adapter sends it
    /// (Anthropic's format for the chat, OpenAI's for the gateway).
    fn direct_request(way: Way, client: &Client, simulator: &str) -> RequestBuilder {
        match way {
            Way::Chat => client
                .post(format!("{simulator}/v1/messages"))
                .header("x-api-key", KEY)
                .header("anthropic-version", "2023-06-01")
                .json(&json!({
                    "model": MODEL,
                    "max_tokens": MAX_TOKENS,
                    "messages": [{"role": "user", "content": [{"type": "text", "text": QUESTION}]}],
                })),
            Way::Gateway { stream } => client
                .post(format!("{simulator}/v1/chat/completions"))
                .bearer_auth(KEY)
                .json(&gateway_body(stream)),
        }
    }

    /// The question to Cover: in the conversation `index`, or to the gateway.
    fn cover_request(&self, index: usize) -> RequestBuilder {
        match self.way {
            Way::Chat => self
                .client
                .post(&self.message_urls[index % self.message_urls.len()])
                .bearer_auth(&self.token)
                .json(&json!({"content": QUESTION})),
            Way::Gateway { stream } => self
                .client
                .post(format!("{}/v1/chat/completions", self.base))
                .bearer_auth(&self.token)
                .json(&gateway_body(stream)),
        }
    }

    /// One question each way, checked, before any load.
    /// The ledger's group commits so far, from the server's `/metrics`.
    async fn commit_mark(&self) -> CommitMark {
        let text = self
            .client
            .get(format!("{}/metrics", self.base))
            .bearer_auth(METRICS_TOKEN)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("read /metrics");
        let value = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
                .unwrap_or_else(|| panic!("/metrics has no {name}"))
        };
        // (A hold kind appears once an answer was admitted with it.)
        let admitted = |hold: &str| {
            let name = format!("cover_budget_admissions_total{{hold=\"{hold}\"}}");
            text.lines()
                .find_map(|line| line.strip_prefix(name.as_str())?.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        CommitMark {
            count: value("cover_ledger_commit_duration_seconds_count"),
            seconds: value("cover_ledger_commit_duration_seconds_sum"),
            admitted: ["own", "lease", "new_lease"].map(admitted),
        }
    }

    async fn probe(&mut self) {
        let direct = Self::direct_request(self.way, &self.client, &self.simulator)
            .send()
            .await
            .expect("ask the simulator directly");
        let direct = direct.text().await.unwrap_or_default();
        // (Streams split the sentence into tokens: look for one word.)
        assert!(
            direct.contains("simulated"),
            "the simulator answered without text: {direct}"
        );
        let cover = self.cover_request(0).send().await.expect("ask Cover");
        let status = cover.status();
        let cover = cover.text().await.unwrap_or_default();
        assert!(
            status == 200 && cover.contains("simulated"),
            "Cover answered {status} without the answer: {cover}"
        );
        self.asked += 1;
        self.answered += 1;
    }

    async fn run_direct(&self, rate: u64, seconds: u64) -> Run {
        let count = (rate * seconds) as usize;
        let (samples, wall) = open_loop(rate, count, |_, scheduled| {
            send(
                Self::direct_request(self.way, &self.client, &self.simulator),
                scheduled,
            )
        })
        .await;
        Run::new(samples, wall)
    }

    async fn run_cover(&mut self, rate: u64, seconds: u64) -> Run {
        let count = (rate * seconds) as usize;
        let first = self.asked;
        let (samples, wall) = open_loop(rate, count, |i, scheduled| {
            send(self.cover_request(first + i), scheduled)
        })
        .await;
        self.asked += count;
        let run = Run::new(samples, wall);
        self.answered += run.ok();
        run
    }

    /// `count` requests one after another (c=1), direct or to Cover.
    async fn run_sequential(&mut self, count: usize, to_cover: bool) -> Run {
        let started = Instant::now();
        let mut samples = Vec::with_capacity(count);
        for i in 0..count {
            let request = if to_cover {
                self.cover_request(self.asked + i)
            } else {
                Self::direct_request(self.way, &self.client, &self.simulator)
            };
            samples.push(send(request, Instant::now()).await);
        }
        let run = Run::new(samples, started.elapsed());
        if to_cover {
            self.asked += count;
            self.answered += run.ok();
        }
        run
    }

    /// The ledger's attempts for the project against the answers served:
    /// every answer Cover gave must have its row (one attempt each here).
    async fn check_ledger(&self) {
        let url = format!("{}/api/projects/{}/llm-usage", self.base, self.project_id);
        let report = self
            .client
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("read the cost report");
        let report = expect(report, 200, "read the cost report").await;
        let attempts = report["total"]["attempts"].as_u64().unwrap_or(0) as usize;
        println!(
            "  ledger: {attempts} attempts recorded for {} answers served: {} rows missing",
            self.answered,
            self.answered.saturating_sub(attempts)
        );
    }

    /// Waits until in-flight work is done: a small GET answers within
    /// [`IDLE_ANSWER`]. Says so and goes on after [`SETTLE_TIMEOUT`].
    async fn settle(&self) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let url = format!("{}/api/projects/{}/budget", self.base, self.project_id);
        let started = Instant::now();
        loop {
            let sent = Instant::now();
            let answer = self.client.get(&url).bearer_auth(&self.token).send().await;
            let idle = match answer {
                Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                Err(_) => false,
            };
            if idle && sent.elapsed() <= IDLE_ANSWER {
                return;
            }
            if started.elapsed() > SETTLE_TIMEOUT {
                println!(
                    "  (the server was still busy {} s after the run; going on)",
                    SETTLE_TIMEOUT.as_secs()
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One line of the table.
struct Row {
    rate: u64,
    direct: Run,
    cover: Run,
    cpu: CpuUse,
    commits: Commits,
}

/// The ledger's group commits as `/metrics` counts them: how many, and
/// their summed seconds; and the answers the budget admitted, by hold (their
/// own, a lease's, a new lease's).
#[derive(Debug, Clone, Copy, Default)]
struct CommitMark {
    count: f64,
    seconds: f64,
    admitted: [f64; 3],
}

/// The ledger's group commits during a run.
#[derive(Debug, Clone, Copy, Default)]
struct Commits {
    /// Commits per second of the run.
    per_second: f64,
    /// Their mean duration, ms.
    mean_ms: f64,
    /// Answers admitted on their own hold, on a lease, on a new lease.
    admitted: [f64; 3],
}

impl CommitMark {
    /// The group commits during a run of `wall` that began at `before`.
    fn since(&self, before: &CommitMark, wall: Duration) -> Commits {
        let count = self.count - before.count;
        Commits {
            per_second: count / wall.as_secs_f64(),
            mean_ms: if count > 0.0 {
                (self.seconds - before.seconds) / count * 1_000.0
            } else {
                0.0
            },
            admitted: [0, 1, 2].map(|i| self.admitted[i] - before.admitted[i]),
        }
    }
}

fn print_table(rows: &[Row]) {
    let cores = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2}"));
    println!(
        "  {:>9} {:>8} {:>15} {:>15} {:>15} {:>7} {:>9} {:>21} {:>17} {:>20}  non-200 by status",
        "offered/s",
        "served/s",
        "direct p50/p99",
        "cover p50/p99",
        "added p50/p99",
        "non-200",
        "transport",
        "CPU srv/sim/bench/all",
        "ledger commits",
        "held own/lease/new",
    );
    let commits = |c: Commits| format!("{:.0}/s {:.2} ms", c.per_second, c.mean_ms);
    for row in rows {
        let (timeouts, failures, _) = row.cover.transport();
        let cell = |a: f64, b: f64| format!("{a:.2}/{b:.2}");
        let offered = match row.rate {
            0 => "c=1".to_owned(),
            rate => rate.to_string(),
        };
        println!(
            "  {:>9} {:>8.1} {:>15} {:>15} {:>15} {:>7} {:>9} {:>21} {:>17} {:>20}  {}",
            offered,
            row.cover.served(),
            cell(row.direct.p(0.5), row.direct.p(0.99)),
            cell(row.cover.p(0.5), row.cover.p(0.99)),
            cell(
                row.cover.p(0.5) - row.direct.p(0.5),
                row.cover.p(0.99) - row.direct.p(0.99)
            ),
            row.cover.non_200(),
            timeouts + failures,
            format!(
                "{}/{}/{}/{}",
                cores(row.cpu.server),
                cores(row.cpu.simulator),
                cores(row.cpu.bench),
                cores(row.cpu.machine)
            ),
            commits(row.commits),
            row.commits.admitted.map(|n| format!("{n:.0}")).join("/"),
            row.cover.breakdown(),
        );
    }
    for row in rows {
        if row.direct.ok() != row.direct.samples.len() {
            println!(
                "  note: at {}/s the direct baseline itself had errors: {}",
                row.rate,
                row.direct.breakdown()
            );
        }
    }
}

/// The goal: 1,000 answers/s sustained with p99 added ≤ 10 ms (checked), and
/// no errors of our own at 2,000/s (counted; whether the waits stayed within
/// the deadline is for the reader of p50/p99).
fn print_goal(way: Way, rows: &[Row]) {
    let verdict = |met: bool| if met { "met" } else { "not met" };
    if let Way::Gateway { .. } = way {
        if let Some(row) = rows.iter().find(|r| r.rate == 1_000) {
            let added = row.cover.p(0.99) - row.direct.p(0.99);
            println!(
                "  goal at 1,000/s (p99 added ≤ 1 ms, every request answered): served {:.1}/s, \
                 p99 added {added:.2} ms: {}",
                row.cover.served(),
                verdict(row.cover.ok() == row.cover.samples.len() && added <= 1.0)
            );
        }
        return;
    }
    if let Some(row) = rows.iter().find(|r| r.rate == 1_000) {
        let added = row.cover.p(0.99) - row.direct.p(0.99);
        // Sustained: every request answered 200, the last within 2 % of the run.
        let sustained = row.cover.ok() == row.cover.samples.len()
            && row.cover.served() >= 0.98 * row.rate as f64;
        println!(
            "  goal at 1,000/s (all answered, served ≥ 980/s, p99 added ≤ 10 ms): \
             served {:.1}/s, p99 added {added:.2} ms: {}",
            row.cover.served(),
            verdict(sustained && added <= 10.0)
        );
    }
    if let Some(row) = rows.iter().find(|r| r.rate == 2_000) {
        let (timeouts, failures, _) = row.cover.transport();
        let (refused, own) =
            row.cover
                .statuses()
                .values()
                .fold((0, 0), |(refused, own), (count, retry_after)| {
                    (refused + retry_after, own + count - retry_after)
                });
        let own = own + timeouts + failures;
        println!(
            "  goal at 2,000/s (no errors of our own; queued or refused with Retry-After only \
             past the deadline): {own} errors of our own (non-200 without Retry-After, transport), \
             {refused} refused with Retry-After; p50/p99 {:.0}/{:.0} ms",
            row.cover.p(0.5),
            row.cover.p(0.99),
        );
    }
}

/// Warnings and errors the server logged, counted by message (fields
/// left out), the most frequent first.
fn summarize_log(server: &Process) {
    let text = std::fs::read_to_string(&server.log).unwrap_or_default();
    let mut messages: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines() {
        if line.contains("ERROR") || line.contains("WARN") {
            // Without the timestamp and the `key=value` fields.
            let message: Vec<&str> = line
                .split_whitespace()
                .skip(1)
                .take_while(|word| !word.contains('='))
                .collect();
            *messages.entry(message.join(" ")).or_default() += 1;
        }
    }
    let total: usize = messages.values().sum();
    println!("  server log: {total} WARN/ERROR lines");
    let mut counted: Vec<(usize, String)> = messages.into_iter().map(|(m, n)| (n, m)).collect();
    counted.sort_by_key(|c| std::cmp::Reverse(c.0));
    for (count, message) in counted.iter().take(5) {
        let message: String = message.chars().take(200).collect();
        println!("    {count:>7} × {message}");
    }
}

/// Starts the server on `database_url`, sets up the project and runs every rate.
async fn bench_engine(
    way: Way,
    engine: &str,
    database_url: &str,
    dir: &Path,
    simulator: &Process,
    simulator_url: &str,
    client: &Client,
) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!("\n{engine} (load average before: {}):", load.join(" "));
    std::fs::create_dir_all(dir).expect("engine dir");
    let port = free_port();
    let admin = server_command(dir, database_url, simulator_url, port)
        .args(["user", "create", "--email", BENCH_EMAIL])
        .args(["--password", BENCH_PASSWORD, "--admin"])
        .output()
        .await
        .expect("run `cover user create`");
    assert!(
        admin.status.success(),
        "`cover user create` failed ({}): {}{}",
        admin.status,
        String::from_utf8_lossy(&admin.stdout),
        String::from_utf8_lossy(&admin.stderr)
    );
    let mut command = server_command(dir, database_url, simulator_url, port);
    command.arg("serve");
    let mut server = Process::start(
        &format!("the server (cover serve on {engine})"),
        command,
        dir.join("server.log"),
    );
    let base = format!("http://127.0.0.1:{port}");
    server
        .wait_until_up(client, &format!("{base}/api/openapi.json"))
        .await;

    let idle_mb = resident_mb(&server);
    let ways: &[Way] = match way {
        Way::Chat => &[Way::Chat],
        Way::Gateway { .. } => &[
            Way::Gateway { stream: false },
            Way::Gateway { stream: true },
        ],
    };
    let conversations = match way {
        Way::Chat => {
            let questions =
                WARM_UP_RATE * WARM_UP_SECONDS + RATES.iter().sum::<u64>() * SECONDS + 1;
            (questions as usize).div_ceil(QUESTIONS_PER_CONVERSATION)
        }
        Way::Gateway { .. } => 0,
    };
    let started = Instant::now();
    let mut api = ChatApi::set_up(way, client, simulator_url, &base, conversations).await;
    println!(
        "  setup: {conversations} conversations in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut loaded_mb = idle_mb;
    for &way in ways {
        api.way = way;
        println!("  {}:", way.label());
        api.probe().await;
        api.run_direct(WARM_UP_RATE, WARM_UP_SECONDS).await;
        api.run_cover(WARM_UP_RATE, WARM_UP_SECONDS).await;
        let mut rows = Vec::new();
        if let Way::Gateway { .. } = way {
            api.settle().await;
            let direct = api.run_sequential(SEQUENTIAL_REQUESTS, false).await;
            let before = (CpuMark::now(&server, simulator), api.commit_mark().await);
            let cover = api.run_sequential(SEQUENTIAL_REQUESTS, true).await;
            let cpu = CpuMark::now(&server, simulator).since(&before.0, cover.wall);
            let commits = api.commit_mark().await.since(&before.1, cover.wall);
            rows.push(Row {
                rate: 0,
                direct,
                cover,
                cpu,
                commits,
            });
        }
        let rates: &[u64] = match way {
            Way::Chat => &RATES,
            Way::Gateway { .. } => &GATEWAY_RATES,
        };
        for &rate in rates {
            api.settle().await;
            let direct = api.run_direct(rate, SECONDS).await;
            api.settle().await;
            let before = (CpuMark::now(&server, simulator), api.commit_mark().await);
            let cover = api.run_cover(rate, SECONDS).await;
            let cpu = CpuMark::now(&server, simulator).since(&before.0, cover.wall);
            let commits = api.commit_mark().await.since(&before.1, cover.wall);
            loaded_mb = match (loaded_mb, resident_mb(&server)) {
                (Some(before), Some(now)) => Some(before.max(now)),
                (before, now) => now.or(before),
            };
            rows.push(Row {
                rate,
                direct,
                cover,
                cpu,
                commits,
            });
        }
        print_table(&rows);
        print_goal(way, &rows);
    }
    api.settle().await;
    api.check_ledger().await;
    let mb = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1} MB"));
    println!(
        "  server resident memory: idle {}, loaded (after the busiest run) {}",
        mb(idle_mb),
        mb(loaded_mb)
    );
    summarize_log(&server);
    server.stop().await;
}

async fn run(way: Way) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    match way {
        Way::Chat => println!(
            "Chat API over HTTP (token auth, conversation read and write, budget, ledger) against \
             the simulator at zero latency; {cores} cores"
        ),
        Way::Gateway { .. } => println!(
            "Gateway /v1/chat/completions over HTTP (token auth, budget, ledger, OpenAI adapter) \
             against the simulator at zero latency; {cores} cores"
        ),
    }
    println!(
        "Open-loop, {SECONDS} s per rate; latency from each request's scheduled time to the end \
         of its answer, in ms; percentiles over every request (failed ones when they failed); \
         added = cover − direct; CPU in cores used during the cover run (server, simulator, this \
         bench, whole machine)"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    // Created first, so a missing PostgreSQL fails before the SQLite half runs.
    let database = PostgresDatabase::create("cover_bench_chat").await;
    let client = Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .tcp_nodelay(true)
        .build()
        .expect("HTTP client");

    let port = free_port();
    let mut command = cover_command(dir.path());
    command.args(["simulate", "--port", &port.to_string(), "--accept-key", KEY]);
    let mut simulator = Process::start(
        "the simulator (cover simulate)",
        command,
        dir.path().join("simulator.log"),
    );
    let simulator_url = format!("http://127.0.0.1:{port}");
    simulator
        .wait_until_up(&client, &format!("{simulator_url}/_sim/stats"))
        .await;

    let sqlite = dir.path().join("sqlite");
    let url = format!("sqlite://{}", sqlite.join("cover.db").display());
    bench_engine(
        way,
        "SQLite (file, WAL)",
        &url,
        &sqlite,
        &simulator,
        &simulator_url,
        &client,
    )
    .await;

    bench_engine(
        way,
        "PostgreSQL",
        &database.url,
        &dir.path().join("postgres"),
        &simulator,
        &simulator_url,
        &client,
    )
    .await;
    simulator.stop().await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // `cargo bench --bench chat -- gateway` measures the gateway.
    let way = if std::env::args().any(|arg| arg == "gateway") {
        Way::Gateway { stream: false }
    } else {
        Way::Chat
    };
    runtime.block_on(async {
        // Ctrl-C drops the run: its processes are killed and its database dropped.
        tokio::select! {
            () = run(way) => {}
            _ = tokio::signal::ctrl_c() => eprintln!("interrupted"),
        }
    });
}
