//! The router: sends one request down a chain of targets (primary, fallback, degraded) with
//! retries, circuit breakers, timeouts and the streaming failure semantics of the design.
//!
//! ```text
//! for each target, in order:
//!   circuit open?                 → skip (Switch, no request)
//!   fit the conversation          → too long even trimmed? Switch
//!   send (timeout) ─ ok ─────────► done (Routed / Finished)
//!        └ error: retryable and attempts left → wait (backoff with full jitter, or Retry-After
//!                                                ≤ max_retry_after) and send again
//!                 context too long            → refit tighter once (if that leaves out
//!                                                more), send again
//!                 can fall back               → Switch to the next target
//!                 otherwise                   → fail at once (no fallback)
//! ```
//!
//! Streams are retried and switched invisibly until their first token; after it, a broken
//! stream is reported (`Interrupted`) and the next target starts from scratch, and a cut
//! stream never ends as a success. The router knows nothing about databases or prices:
//! every attempt, whatever its end, is reported once to an [`AttemptSink`].

pub mod backoff;
mod breaker;
mod context;
#[cfg(test)]
mod tests;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout, timeout_at, Instant};
use tracing::Instrument;

use crate::server::telemetry::gen_ai_provider_name;

use super::tokens::{count_request_tokens, estimate_text_tokens};
use super::{
    ContentPart, ErrorKind, FinishReason, GenerateRequest, GenerateResponse, LlmError, Message,
    ModelLimits, Parameters, Provider, ProviderId, ResponseFormat, StreamEvent, ToolCall,
    ToolChoice, ToolDefinition, Usage,
};
use backoff::{advised_wait, backoff_ceiling, full_jitter};
use breaker::{Admission, Breakers, Outcome, Permit};
pub use context::fit_to_context;

/// Share of the context window a request may fill: a margin for estimated token counts.
const CONTEXT_BUDGET: f64 = 0.95;
/// The share used for the one retry after a provider said the prompt was too long.
const TIGHT_CONTEXT_BUDGET: f64 = 0.75;
/// Router events buffered between the driver task and a slow consumer.
const EVENT_BUFFER: usize = 64;

/// Router tunables (env-overridable so tests and operators can shorten them).
#[derive(Debug, Clone, Copy)]
pub struct RouterSettings {
    /// Streams: the first token must arrive within this.
    pub ttft_timeout: Duration,
    /// A non-streamed attempt must finish within this.
    pub attempt_timeout: Duration,
    /// The whole request: retries, fallbacks and the streaming of the answer included.
    pub total_timeout: Duration,
    /// Backoff before the first retry (doubles with each retry, randomised with full jitter).
    pub backoff_base: Duration,
    /// Largest backoff.
    pub backoff_cap: Duration,
    /// A provider-advised wait longer than this is not waited for: the next target is tried.
    pub max_retry_after: Duration,
    /// Consecutive failures that open a circuit.
    pub breaker_threshold: u32,
    /// How long an open circuit skips its target before letting one probe through.
    pub breaker_cooldown: Duration,
}

impl Default for RouterSettings {
    fn default() -> Self {
        Self {
            ttft_timeout: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(120),
            total_timeout: Duration::from_secs(300),
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(20),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

impl RouterSettings {
    /// Reads the `COVER_LLM_*` variables (see [`RouterSettings::from_lookup`]).
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The defaults, overridden by `COVER_LLM_TTFT_TIMEOUT_MS`, `COVER_LLM_ATTEMPT_TIMEOUT_MS`,
    /// `COVER_LLM_TOTAL_TIMEOUT_MS`, `COVER_LLM_BACKOFF_BASE_MS`, `COVER_LLM_BACKOFF_CAP_MS`,
    /// `COVER_LLM_MAX_RETRY_AFTER_MS`, `COVER_LLM_BREAKER_THRESHOLD` and
    /// `COVER_LLM_BREAKER_COOLDOWN_MS` as `lookup` gives them (injectable for tests).
    /// Unparsable values, and zero for timeouts and the threshold, keep the default.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let d = Self::default();
        let number = |name: &str| lookup(name).and_then(|v| v.trim().parse::<u64>().ok());
        let millis =
            |name: &str, default: Duration| number(name).map_or(default, Duration::from_millis);
        let positive_millis = |name: &str, default: Duration| {
            number(name)
                .filter(|ms| *ms > 0)
                .map_or(default, Duration::from_millis)
        };
        Self {
            ttft_timeout: positive_millis("COVER_LLM_TTFT_TIMEOUT_MS", d.ttft_timeout),
            attempt_timeout: positive_millis("COVER_LLM_ATTEMPT_TIMEOUT_MS", d.attempt_timeout),
            total_timeout: positive_millis("COVER_LLM_TOTAL_TIMEOUT_MS", d.total_timeout),
            backoff_base: millis("COVER_LLM_BACKOFF_BASE_MS", d.backoff_base),
            backoff_cap: millis("COVER_LLM_BACKOFF_CAP_MS", d.backoff_cap),
            max_retry_after: millis("COVER_LLM_MAX_RETRY_AFTER_MS", d.max_retry_after),
            breaker_threshold: number("COVER_LLM_BREAKER_THRESHOLD")
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .unwrap_or(d.breaker_threshold),
            breaker_cooldown: positive_millis("COVER_LLM_BREAKER_COOLDOWN_MS", d.breaker_cooldown),
        }
    }
}

crate::model::text_enum! {
    /// Why a target is in the chain; the ledger and the fallback notice show it.
    pub enum TargetRole {
        /// The conversation's pinned model.
        Primary = "primary",
        /// The project's configured fallback.
        Fallback = "fallback",
        /// A lesser model of the primary's provider, tried last.
        Degraded = "degraded",
    }
}

/// One provider+model the router may try, in chain order.
#[derive(Clone)]
pub struct Target {
    /// The client that sends the requests.
    pub provider: Arc<dyn Provider>,
    /// Which provider it is.
    pub provider_id: ProviderId,
    /// Catalog id (what the ledger and the user see).
    pub model: String,
    /// Id sent to the provider (e.g. an Ollama tag).
    pub api_model: String,
    /// Display name, e.g. "Claude 3.5 Sonnet".
    pub name: String,
    /// Provider + key fingerprint, e.g. `claude:managed`: whose circuit this target shares.
    pub breaker_key: String,
    /// Whether it spends on one of Cover's managed keys (bounded by the
    /// workspace's managed-key budget) rather than the project's own key.
    pub managed_key: bool,
    /// Why it is in the chain.
    pub role: TargetRole,
    /// Parameters for this model.
    pub parameters: Parameters,
    /// Context window and max output, for context fitting and request validation.
    pub limits: ModelLimits,
    /// Attempts on this target (at least one is always made).
    pub attempts: u32,
}

/// What to send, and to whom.
pub struct Route {
    /// The chain, primary first.
    pub targets: Vec<Target>,
    /// The whole conversation; each target gets what fits its context window.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<ToolDefinition>,
    /// How tools must be used.
    pub tool_choice: ToolChoice,
    /// The shape the answer's text must take (every target of the chain can
    /// honour it: the chain is built so).
    pub response_format: ResponseFormat,
    /// Streams: whether, after the answering target broke once its output
    /// was sent, the next target answers from scratch (the chat does, and
    /// tells the user); when false the route fails there (a program's
    /// stream cannot take back what it already received).
    pub restart_after_output: bool,
}

/// One attempt, reported to the sink as soon as it ends (success, failure or cancellation).
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// 1-based across the whole route.
    pub attempt: u32,
    /// Position of the target in the chain.
    pub target_index: usize,
    /// The target's role.
    pub role: TargetRole,
    /// The target's provider.
    pub provider: ProviderId,
    /// Catalog id of the target's model.
    pub model: String,
    /// Whether the attempt was a stream.
    pub streamed: bool,
    /// Whether the target spent one of Cover's managed keys.
    pub managed_key: bool,
    /// Provider-reported when available, else estimated; zero when no answer came.
    pub usage: Usage,
    /// True when `usage` is an estimate (broken or cancelled streams, streams without usage).
    pub usage_estimated: bool,
    /// When the attempt started.
    pub started_at: SystemTime,
    /// Start to end of this attempt.
    pub latency: Duration,
    /// Start of this attempt to its first token (streams).
    pub ttft: Option<Duration>,
    /// Messages left out by context fitting for this attempt.
    pub trimmed_messages: u32,
    /// `None` = success; `Cancelled` when the consumer went away.
    pub error: Option<LlmError>,
}

/// Where the router reports attempts (the chat service prices them and writes the ledger).
#[async_trait]
pub trait AttemptSink: Send + Sync {
    /// Takes one finished attempt; awaited before the route reports its own end.
    async fn record(&self, attempt: AttemptRecord);
}

/// A move from one target to the next, and why (drives the user-visible notice).
#[derive(Debug, Clone)]
pub struct Switch {
    /// The target left.
    pub from_index: usize,
    /// The target tried next.
    pub to_index: usize,
    /// Why the first one was left.
    pub error: LlmError,
}

/// A finished non-streamed route.
#[derive(Debug)]
pub struct Routed {
    /// The answer.
    pub response: GenerateResponse,
    /// The target that answered.
    pub target_index: usize,
    /// Targets left before it, and why.
    pub switches: Vec<Switch>,
    /// Since the route started.
    pub latency: Duration,
    /// Messages the answering target did not see (context fitting).
    pub trimmed_messages: u32,
}

/// A route that failed everywhere: the error to show (the most informative one — the
/// primary's, unless a later target failed for a non-retryable reason) and the switches made.
#[derive(Debug)]
pub struct RouteFailure {
    /// The error to show.
    pub error: LlmError,
    /// Targets left, and why.
    pub switches: Vec<Switch>,
}

/// Events of a routed stream. Order: zero or more `Switched`, then `Started`, deltas, and
/// exactly one terminal event (`Finished` or `Failed`). After `Started`, a broken stream
/// yields `Interrupted`, then (if another target exists and can serve) `Switched` +
/// `Started` + deltas of the next target, and so on.
#[derive(Debug)]
pub enum RouterEvent {
    /// A target was left before it produced anything.
    Switched(Switch),
    /// A target produced its first token; its deltas follow.
    Started {
        /// The answering target.
        target_index: usize,
        /// Messages it did not see (context fitting).
        trimmed_messages: u32,
    },
    /// A piece of answer text.
    TextDelta(String),
    /// A piece of a tool call.
    ToolCallDelta {
        /// Position of the call in the answer.
        index: u32,
        /// Call id, on the first piece.
        id: Option<String>,
        /// Tool name, on the first piece.
        name: Option<String>,
        /// A fragment of the JSON arguments.
        arguments: String,
    },
    /// A started answer broke; what was shown of it is void.
    Interrupted {
        /// The target whose stream broke.
        target_index: usize,
        /// Why.
        error: LlmError,
        /// The text it had produced.
        partial_text: String,
    },
    /// The answer is complete.
    Finished {
        /// The answering target.
        target_index: usize,
        /// The assembled answer: content, tool calls, finish reason, usage.
        response: GenerateResponse,
        /// Since the route started.
        latency: Duration,
        /// Route start to the answering target's first token.
        ttft: Option<Duration>,
    },
    /// No target could answer.
    Failed {
        /// The error to show (see [`RouteFailure`]).
        error: LlmError,
        /// Targets left, and why.
        switches: Vec<Switch>,
    },
}

/// The events of a routed stream; dropping it cancels the route.
pub struct RouterStream {
    events: mpsc::Receiver<RouterEvent>,
    /// Resolves (closed) when the driver task has ended.
    done: oneshot::Receiver<()>,
}

/// What [`RouterStream::next_for`] found.
// Only ever returned and matched at once, never stored: boxing the event
// would cost an allocation per streamed token.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Next {
    /// The route's next event.
    Event(RouterEvent),
    /// The route ended without its terminal event (its driver is gone).
    Ended,
    /// Whoever the events were for went away, or the server is stopping:
    /// cancel the route.
    Abandoned,
}

impl RouterStream {
    /// The next event, unless `consumer` (where the caller forwards the
    /// events) has closed or `stopping` fired first.
    pub async fn next_for<T>(
        &mut self,
        consumer: &mpsc::Sender<T>,
        stopping: &tokio_util::sync::CancellationToken,
    ) -> Next {
        tokio::select! {
            biased;
            _ = consumer.closed() => Next::Abandoned,
            _ = stopping.cancelled() => Next::Abandoned,
            event = self.next() => event.map_or(Next::Ended, Next::Event),
        }
    }

    /// Stops the answer and waits until the router has recorded every attempt
    /// (the running one as `Cancelled`, with the usage so far): the caller can
    /// then settle the answer's cost. Dropping the stream stops it too, without
    /// waiting.
    pub async fn cancel(mut self) {
        self.events.close();
        let _ = self.done.await;
    }
}

impl Stream for RouterStream {
    type Item = RouterEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RouterEvent>> {
        self.events.poll_recv(cx)
    }
}

/// The shared router (one per process, lives in `AppState`): holds the circuit breakers.
#[derive(Debug)]
pub struct LlmRouter {
    settings: RouterSettings,
    breakers: Breakers,
}

impl LlmRouter {
    /// A router with closed circuits.
    pub fn new(settings: RouterSettings) -> Self {
        Self {
            settings,
            breakers: Breakers::new(settings.breaker_threshold, settings.breaker_cooldown),
        }
    }

    /// The tunables in force.
    pub fn settings(&self) -> &RouterSettings {
        &self.settings
    }

    /// The circuits now open or half-open: (provider, state) per key.
    pub fn circuits_not_closed(&self) -> Vec<(String, &'static str)> {
        self.breakers.not_closed(Instant::now())
    }

    /// Sends a non-streamed request down the route. If the caller drops the future, the
    /// running attempt is not recorded (only streams report cancellations).
    pub async fn generate(
        &self,
        route: Route,
        sink: &dyn AttemptSink,
    ) -> Result<Routed, RouteFailure> {
        let mut walk = Walk::new(self, &route, false);
        loop {
            let attempt = walk.next().map_err(|failure| *failure)?;
            let limit = self.settings.attempt_timeout.min(walk.time_left());
            let sent = timeout(limit, attempt.target.provider.generate(&attempt.request))
                .instrument(attempt.span.clone())
                .await;
            match sent.unwrap_or_else(|_| Err(timed_out(attempt.target.provider_id, limit))) {
                Ok(response) => {
                    let (target_index, trimmed_messages) = (attempt.target_index, attempt.trimmed);
                    let record =
                        attempt.conclude(Spent::reported(response.usage.clone()), None, None);
                    sink.record(record).await;
                    return Ok(Routed {
                        response,
                        target_index,
                        switches: walk.switches,
                        latency: walk.started.elapsed(),
                        trimmed_messages,
                    });
                }
                Err(error) => {
                    sink.record(attempt.conclude(Spent::nothing(), None, Some(error.clone())))
                        .await;
                    let wait = walk
                        .after_failure(error, false)
                        .map_err(|failure| *failure)?;
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
    }

    /// Spawns the driver task and returns its events (bounded channel). Dropping the stream
    /// cancels upstream and records the running attempt as `Cancelled` with the usage so
    /// far (estimated). `Finished` and `Failed` are sent only after their attempt reached
    /// the sink.
    pub fn stream(self: &Arc<Self>, route: Route, sink: Arc<dyn AttemptSink>) -> RouterStream {
        let (events, receiver) = mpsc::channel(EVENT_BUFFER);
        let (finished, done) = oneshot::channel::<()>();
        let router = Arc::clone(self);
        tokio::spawn(
            async move {
                router.drive_stream(&route, sink.as_ref(), &events).await;
                // Every attempt is recorded by now: tells a waiting `cancel`.
                drop(finished);
            }
            .in_current_span(),
        );
        RouterStream {
            events: receiver,
            done,
        }
    }

    /// The streamed route, from first target to terminal event.
    async fn drive_stream(
        &self,
        route: &Route,
        sink: &dyn AttemptSink,
        events: &mpsc::Sender<RouterEvent>,
    ) {
        let mut walk = Walk::new(self, route, true);
        let mut announced = 0;
        let failure = loop {
            let attempt = match walk.next() {
                Ok(attempt) => attempt,
                Err(failure) => break failure,
            };
            if !announce(events, &walk.switches, &mut announced).await {
                return;
            }
            let (answer, error) = match stream_attempt(&attempt, &walk, events)
                .instrument(attempt.span.clone())
                .await
            {
                Streamed::Finished(answer, reason) => {
                    let target_index = attempt.target_index;
                    let ttft = answer
                        .first_token
                        .map(|t| t.saturating_duration_since(walk.started));
                    let attempt_ttft = answer.ttft(&attempt);
                    let spent = answer.spent(&attempt);
                    let response = answer.into_response(reason, &attempt, spent.usage.clone());
                    sink.record(attempt.conclude(spent, attempt_ttft, None))
                        .await;
                    let finished = RouterEvent::Finished {
                        target_index,
                        response,
                        latency: walk.started.elapsed(),
                        ttft,
                    };
                    // The consumer may be gone by now; the attempt is recorded either way.
                    let _ = events.send(finished).await;
                    return;
                }
                Streamed::Cancelled(answer) => {
                    let spent = Spent::estimated(&attempt, &answer);
                    let ttft = answer.ttft(&attempt);
                    let cancelled = LlmError::new(
                        attempt.target.provider_id,
                        ErrorKind::Cancelled,
                        "the consumer stopped reading the answer",
                    );
                    sink.record(attempt.conclude(spent, ttft, Some(cancelled)))
                        .await;
                    return;
                }
                Streamed::Broken(answer, error) => (answer, error),
            };
            let target_index = attempt.target_index;
            let output_sent = answer.first_token.is_some();
            let spent = if output_sent {
                Spent::estimated(&attempt, &answer)
            } else {
                Spent::nothing()
            };
            let ttft = answer.ttft(&attempt);
            sink.record(attempt.conclude(spent, ttft, Some(error.clone())))
                .await;
            if output_sent {
                let interrupted = RouterEvent::Interrupted {
                    target_index,
                    error: error.clone(),
                    partial_text: answer.text,
                };
                if events.send(interrupted).await.is_err() {
                    return;
                }
                if !route.restart_after_output {
                    break Box::new(RouteFailure {
                        error,
                        switches: walk.switches.clone(),
                    });
                }
            }
            match walk.after_failure(error, output_sent) {
                Ok(wait) if wait.is_zero() => {}
                Ok(wait) => {
                    tokio::select! {
                        biased;
                        () = events.closed() => return,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                Err(failure) => break failure,
            }
        };
        let RouteFailure { error, switches } = *failure;
        if announce(events, &switches, &mut announced).await {
            let _ = events.send(RouterEvent::Failed { error, switches }).await;
        }
    }
}

/// Sends the switches not yet announced; false when the consumer is gone.
async fn announce(
    events: &mpsc::Sender<RouterEvent>,
    switches: &[Switch],
    announced: &mut usize,
) -> bool {
    for switch in switches.iter().skip(*announced) {
        if events
            .send(RouterEvent::Switched(switch.clone()))
            .await
            .is_err()
        {
            return false;
        }
        *announced += 1;
    }
    true
}

/// A failed route, boxed: failures are rare, and the walk's results stay small.
type Ended = Box<RouteFailure>;

/// The walk down a route's chain: which target to try next, with what request, and what to
/// do after a failure. Shared by `generate` and `stream`; it never awaits.
struct Walk<'a> {
    router: &'a LlmRouter,
    route: &'a Route,
    streamed: bool,
    started: Instant,
    deadline: Instant,
    index: usize,
    tries_here: u32,
    trimmed_here: u32,
    tightened: bool,
    attempts: u32,
    switches: Vec<Switch>,
    primary_error: Option<LlmError>,
    decisive_error: Option<LlmError>,
}

impl<'a> Walk<'a> {
    fn new(router: &'a LlmRouter, route: &'a Route, streamed: bool) -> Self {
        let started = Instant::now();
        Self {
            router,
            route,
            streamed,
            started,
            deadline: started + router.settings.total_timeout,
            index: 0,
            tries_here: 0,
            trimmed_here: 0,
            tightened: false,
            attempts: 0,
            switches: Vec::new(),
            primary_error: None,
            decisive_error: None,
        }
    }

    fn time_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The next attempt to make, skipping targets whose circuit is open or whose window
    /// the conversation cannot fit; `Err` when no target is left or time is up.
    fn next(&mut self) -> Result<Attempt<'a>, Ended> {
        loop {
            let route = self.route;
            let Some(target) = route.targets.get(self.index) else {
                return Err(self.failure());
            };
            if Instant::now() >= self.deadline {
                let error = timed_out(target.provider_id, self.router.settings.total_timeout);
                return Err(self.fail_with(error));
            }
            let router = self.router;
            let breakers = &router.breakers;
            let admission = breakers.admit(&target.breaker_key, Instant::now());
            if admission == Admission::Rejected {
                let error = LlmError::new(
                    target.provider_id,
                    ErrorKind::Transient,
                    format!(
                        "{} was skipped: its circuit is open after repeated failures",
                        target.name
                    ),
                );
                self.note(&error);
                self.move_on(error)?;
                continue;
            }
            let permit = Permit::new(breakers, &target.breaker_key, admission);
            let budget = if self.tightened {
                TIGHT_CONTEXT_BUDGET
            } else {
                CONTEXT_BUDGET
            };
            match self.fit(target, budget) {
                Ok((messages, trimmed)) => {
                    self.tries_here += 1;
                    self.trimmed_here = trimmed;
                    self.attempts += 1;
                    return Ok(Attempt {
                        number: self.attempts,
                        target_index: self.index,
                        target,
                        streamed: self.streamed,
                        request: GenerateRequest {
                            model: target.api_model.clone(),
                            messages,
                            tools: route.tools.clone(),
                            tool_choice: route.tool_choice.clone(),
                            parameters: target.parameters.clone(),
                            limits: Some(target.limits),
                            response_format: route.response_format.clone(),
                        },
                        trimmed,
                        permit,
                        started_at: SystemTime::now(),
                        start: Instant::now(),
                        span: attempt_span(self.attempts, target),
                    });
                }
                Err(error) => {
                    drop(permit);
                    self.note(&error);
                    self.move_on(error)?;
                }
            }
        }
    }

    /// The conversation as `target` can take it, within `budget` of its context window.
    fn fit(&self, target: &Target, budget: f64) -> Result<(Vec<Message>, u32), LlmError> {
        let max_tokens = target
            .parameters
            .max_tokens
            .unwrap_or(target.limits.max_output_tokens);
        fit_to_context(
            &self.route.messages,
            &self.route.tools,
            target.limits,
            max_tokens,
            budget,
            target.provider_id,
        )
    }

    /// Whether the tighter budget leaves out more than the refused attempt did (if not,
    /// the same request would be refused again).
    fn tighter_fit_drops_more(&self) -> bool {
        self.route
            .targets
            .get(self.index)
            .and_then(|target| self.fit(target, TIGHT_CONTEXT_BUDGET).ok())
            .is_some_and(|(_, dropped)| dropped > self.trimmed_here)
    }

    /// Decides what follows a failed attempt on the current target: `Ok(wait)` = make the
    /// next attempt (same target or next one) after `wait`; `Err` = the route failed.
    /// `output_sent`: the attempt had streamed tokens, so it is not retried in place.
    fn after_failure(&mut self, error: LlmError, output_sent: bool) -> Result<Duration, Ended> {
        if !error.can_fall_back() {
            return Err(self.fail_with(error));
        }
        self.note(&error);
        if !output_sent {
            if error.kind == ErrorKind::ContextTooLong
                && !self.tightened
                && self.tighter_fit_drops_more()
            {
                self.tightened = true;
                tracing::info!(
                    attempt = self.attempts,
                    model = %self.current_model(),
                    "retrying with more of the conversation left out: the prompt was too long"
                );
                return Ok(Duration::ZERO);
            }
            if let Some(wait) = self.retry_wait(&error) {
                tracing::info!(
                    attempt = self.attempts,
                    model = %self.current_model(),
                    class = %error.class(),
                    status = ?error.status,
                    wait_ms = wait.as_millis() as u64,
                    "retrying the same model"
                );
                return Ok(wait);
            }
        }
        self.move_on(error)?;
        Ok(Duration::ZERO)
    }

    /// The wait before retrying the current target, or `None` when it should not be retried.
    fn retry_wait(&self, error: &LlmError) -> Option<Duration> {
        let target = self.route.targets.get(self.index)?;
        if !error.is_retryable() || self.tries_here >= target.attempts.max(1) {
            return None;
        }
        let settings = &self.router.settings;
        let has_next = self.index + 1 < self.route.targets.len();
        let mut rng = rand::thread_rng();
        let wait = match error.retry_after() {
            Some(advised) if advised > settings.max_retry_after && has_next => return None,
            Some(advised) => advised_wait(advised, &mut rng),
            None => full_jitter(
                backoff_ceiling(settings.backoff_base, settings.backoff_cap, self.tries_here),
                &mut rng,
            ),
        };
        // A wait that would end past the deadline is not worth starting.
        (wait < self.time_left()).then_some(wait)
    }

    /// Remembers the errors worth showing if the whole route fails.
    fn note(&mut self, error: &LlmError) {
        if self.index == 0 {
            self.primary_error = Some(error.clone());
        } else if !error.is_retryable() {
            self.decisive_error = Some(error.clone());
        }
    }

    /// Leaves the current target for the next one, or fails when there is none.
    fn move_on(&mut self, error: LlmError) -> Result<(), Ended> {
        let to_index = self.index + 1;
        if to_index >= self.route.targets.len() {
            return Err(self.failure());
        }
        tracing::warn!(
            from = %self.current_model(),
            to = %self.route.targets[to_index].model,
            class = %error.class(),
            status = ?error.status,
            "switching to the next model of the chain"
        );
        self.switches.push(Switch {
            from_index: self.index,
            to_index,
            error,
        });
        self.index = to_index;
        self.tries_here = 0;
        self.tightened = false;
        Ok(())
    }

    /// The route's failure with the most informative error seen.
    fn failure(&mut self) -> Ended {
        let error = self
            .decisive_error
            .take()
            .or_else(|| self.primary_error.take())
            .unwrap_or_else(|| {
                // An error needs a provider; an empty chain has none to blame.
                LlmError::new(
                    ProviderId::Claude,
                    ErrorKind::InvalidRequest,
                    "no model to send the request to",
                )
            });
        self.fail_with(error)
    }

    /// The catalog id of the target being tried, for the log.
    fn current_model(&self) -> &str {
        self.route
            .targets
            .get(self.index)
            .map_or("", |target| target.model.as_str())
    }

    fn fail_with(&mut self, error: LlmError) -> Ended {
        tracing::warn!(
            class = %error.class(),
            status = ?error.status,
            attempts = self.attempts,
            "no model of the chain could answer"
        );
        Box::new(RouteFailure {
            error,
            switches: std::mem::take(&mut self.switches),
        })
    }
}

/// One request to one target, from start to its record.
struct Attempt<'a> {
    number: u32,
    target_index: usize,
    target: &'a Target,
    streamed: bool,
    request: GenerateRequest,
    trimmed: u32,
    permit: Permit<'a>,
    started_at: SystemTime,
    start: Instant,
    span: tracing::Span,
}

/// The span an attempt's request is sent in: which attempt, to which model,
/// with OpenTelemetry's GenAI attributes (its usage and error type are
/// recorded when it ends), so an exported trace shows every provider call.
fn attempt_span(number: u32, target: &Target) -> tracing::Span {
    tracing::info_span!(
        "attempt",
        otel.name = format!("chat {}", target.model),
        otel.kind = "client",
        number,
        provider = %target.provider_id,
        model = %target.model,
        role = %target.role,
        "gen_ai.operation.name" = "chat",
        "gen_ai.provider.name" = gen_ai_provider_name(target.provider_id.as_str()),
        "gen_ai.request.model" = %target.model,
        "gen_ai.usage.input_tokens" = tracing::field::Empty,
        "gen_ai.usage.output_tokens" = tracing::field::Empty,
        "error.type" = tracing::field::Empty,
    )
}

impl Attempt<'_> {
    /// Ends the attempt: settles its circuit, completes its span and builds
    /// its record.
    fn conclude(
        self,
        spent: Spent,
        ttft: Option<Duration>,
        error: Option<LlmError>,
    ) -> AttemptRecord {
        self.permit.settle(Outcome::of(error.as_ref()));
        // Signed, so the exporters send integers (they send a u64 as text).
        let tokens = |count: u64| i64::try_from(count).unwrap_or(i64::MAX);
        let usage = &spent.usage;
        self.span.record(
            "gen_ai.usage.input_tokens",
            tokens(usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens),
        );
        self.span
            .record("gen_ai.usage.output_tokens", tokens(usage.output_tokens));
        if let Some(error) = &error {
            self.span.record("error.type", error.class().as_str());
        }
        AttemptRecord {
            attempt: self.number,
            target_index: self.target_index,
            role: self.target.role,
            provider: self.target.provider_id,
            model: self.target.model.clone(),
            streamed: self.streamed,
            managed_key: self.target.managed_key,
            usage: spent.usage,
            usage_estimated: spent.estimated,
            started_at: self.started_at,
            latency: self.start.elapsed(),
            ttft,
            trimmed_messages: self.trimmed,
            error,
        }
    }
}

/// The usage of an attempt, and whether it is an estimate.
struct Spent {
    usage: Usage,
    estimated: bool,
}

impl Spent {
    /// What the provider reported.
    fn reported(usage: Usage) -> Self {
        Self {
            usage,
            estimated: false,
        }
    }

    /// Nothing: the attempt never got an answer.
    fn nothing() -> Self {
        Self::reported(Usage::default())
    }

    /// Estimated from the request and the output so far.
    fn estimated(attempt: &Attempt<'_>, answer: &Answer) -> Self {
        Self {
            usage: Usage {
                input_tokens: count_request_tokens(&attempt.request).tokens,
                output_tokens: answer.output_tokens(),
                ..Usage::default()
            },
            estimated: true,
        }
    }
}

/// A tool call being streamed.
struct PartialToolCall {
    index: u32,
    id: String,
    name: String,
    arguments: String,
}

/// What one streamed attempt has produced so far.
#[derive(Default)]
struct Answer {
    id: Option<String>,
    model: Option<String>,
    text: String,
    tool_calls: Vec<PartialToolCall>,
    usage: Option<Usage>,
    first_token: Option<Instant>,
}

impl Answer {
    /// Adds a piece of the tool call at `index` (indexes are the provider's, maybe sparse).
    fn add_tool_delta(
        &mut self,
        index: u32,
        id: Option<&str>,
        name: Option<&str>,
        arguments: &str,
    ) {
        let position = self
            .tool_calls
            .iter()
            .position(|c| c.index == index)
            .unwrap_or_else(|| {
                self.tool_calls.push(PartialToolCall {
                    index,
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
                self.tool_calls.len() - 1
            });
        let call = &mut self.tool_calls[position];
        if let Some(id) = id {
            id.clone_into(&mut call.id);
        }
        if let Some(name) = name {
            name.clone_into(&mut call.name);
        }
        call.arguments.push_str(arguments);
    }

    /// Estimated output tokens of the text and tool calls so far.
    fn output_tokens(&self) -> u64 {
        let calls: u64 = self
            .tool_calls
            .iter()
            .map(|c| estimate_text_tokens(&c.name) + estimate_text_tokens(&c.arguments))
            .sum();
        estimate_text_tokens(&self.text) + calls
    }

    /// Attempt start to first token.
    fn ttft(&self, attempt: &Attempt<'_>) -> Option<Duration> {
        self.first_token
            .map(|t| t.saturating_duration_since(attempt.start))
    }

    /// The provider's usage, or an estimate when it sent none.
    fn spent(&self, attempt: &Attempt<'_>) -> Spent {
        match &self.usage {
            Some(usage) => Spent::reported(usage.clone()),
            None => Spent::estimated(attempt, self),
        }
    }

    /// The assembled answer, tool calls in index order.
    fn into_response(
        self,
        reason: FinishReason,
        attempt: &Attempt<'_>,
        usage: Usage,
    ) -> GenerateResponse {
        let content = if self.text.is_empty() {
            Vec::new()
        } else {
            vec![ContentPart::Text { text: self.text }]
        };
        let mut calls = self.tool_calls;
        calls.sort_by_key(|c| c.index);
        let tool_calls = calls
            .into_iter()
            .map(|c| ToolCall {
                id: c.id,
                name: c.name,
                arguments: parse_arguments(c.arguments),
            })
            .collect();
        GenerateResponse {
            id: self.id,
            model: self.model.unwrap_or_else(|| attempt.request.model.clone()),
            content,
            tool_calls,
            finish_reason: reason,
            usage,
        }
    }
}

/// Streamed tool arguments as JSON: `{}` when empty, the raw text when not JSON (kept, not lost).
fn parse_arguments(arguments: String) -> serde_json::Value {
    if arguments.trim().is_empty() {
        return serde_json::Value::Object(serde_json::Map::new());
    }
    serde_json::from_str(&arguments).unwrap_or(serde_json::Value::String(arguments))
}

/// How one streamed attempt ended.
enum Streamed {
    /// The provider finished the answer.
    Finished(Answer, FinishReason),
    /// The stream failed (before or after its first token).
    Broken(Answer, LlmError),
    /// The consumer went away.
    Cancelled(Answer),
}

/// Runs one streamed attempt, forwarding its events from the first token on. Returning
/// drops the upstream stream, which closes the provider connection.
async fn stream_attempt(
    attempt: &Attempt<'_>,
    walk: &Walk<'_>,
    events: &mpsc::Sender<RouterEvent>,
) -> Streamed {
    let mut answer = Answer::default();
    let ttft_limit = walk
        .router
        .settings
        .ttft_timeout
        .min(walk.deadline.saturating_duration_since(attempt.start));
    let first_token_by = attempt.start + ttft_limit;
    let provider = attempt.target.provider_id;
    let no_first_token = || {
        LlmError::new(
            provider,
            ErrorKind::Transient,
            format!("no first token within {} ms", ttft_limit.as_millis()),
        )
    };
    let opened = tokio::select! {
        biased;
        () = events.closed() => return Streamed::Cancelled(answer),
        opened = timeout_at(first_token_by, attempt.target.provider.stream(&attempt.request)) => opened,
    };
    let mut upstream = match opened {
        Ok(Ok(upstream)) => upstream,
        Ok(Err(error)) => return Streamed::Broken(answer, error),
        Err(_) => return Streamed::Broken(answer, no_first_token()),
    };
    loop {
        let started = answer.first_token.is_some();
        let limit = if started {
            walk.deadline
        } else {
            first_token_by
        };
        let next = tokio::select! {
            biased;
            () = events.closed() => return Streamed::Cancelled(answer),
            next = timeout_at(limit, upstream.next()) => next,
        };
        let event = match next {
            Ok(Some(event)) => event,
            Ok(None) => {
                let error = LlmError::new(
                    provider,
                    ErrorKind::Transient,
                    "stream ended without a finish",
                );
                return Streamed::Broken(answer, error);
            }
            Err(_) if started => {
                let error = timed_out(provider, walk.router.settings.total_timeout);
                return Streamed::Broken(answer, error);
            }
            Err(_) => return Streamed::Broken(answer, no_first_token()),
        };
        let forward = match event {
            StreamEvent::Start { id, model } => {
                answer.id = id;
                answer.model = Some(model);
                None
            }
            StreamEvent::Usage { usage } => {
                answer.usage = Some(usage);
                None
            }
            StreamEvent::TextDelta { text } => {
                answer.text.push_str(&text);
                Some(RouterEvent::TextDelta(text))
            }
            StreamEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                answer.add_tool_delta(index, id.as_deref(), name.as_deref(), &arguments);
                Some(RouterEvent::ToolCallDelta {
                    index,
                    id,
                    name,
                    arguments,
                })
            }
            StreamEvent::Finish { reason } => {
                // An empty answer's finish is its first token.
                if !started && !start_answer(&mut answer, attempt, events).await {
                    return Streamed::Cancelled(answer);
                }
                return Streamed::Finished(answer, reason);
            }
            StreamEvent::Error { error } => return Streamed::Broken(answer, error),
        };
        if let Some(event) = forward {
            if !started && !start_answer(&mut answer, attempt, events).await {
                return Streamed::Cancelled(answer);
            }
            if events.send(event).await.is_err() {
                return Streamed::Cancelled(answer);
            }
        }
    }
}

/// Marks the first token and announces the answering target; false when the consumer is gone.
async fn start_answer(
    answer: &mut Answer,
    attempt: &Attempt<'_>,
    events: &mpsc::Sender<RouterEvent>,
) -> bool {
    answer.first_token = Some(Instant::now());
    let started = RouterEvent::Started {
        target_index: attempt.target_index,
        trimmed_messages: attempt.trimmed,
    };
    events.send(started).await.is_ok()
}

/// The Transient error of a timeout.
fn timed_out(provider: ProviderId, after: Duration) -> LlmError {
    LlmError::new(
        provider,
        ErrorKind::Transient,
        format!("timed out after {} ms", after.as_millis()),
    )
}
