//! Router tests: backoff, circuit-breaker state machine and context fitting as units; retry,
//! fallback, breakers, timeouts and the streaming failure semantics end to end against the
//! in-process simulator over real HTTP, failing one provider at a time with its fault schedule.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

use async_trait::async_trait;
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::SeedableRng;
use secrecy::SecretString;
use serde_json::json;

use super::backoff::{advised_wait, backoff_ceiling, full_jitter};
use super::breaker::{Admission, Breakers, Outcome, Permit};
use super::*;
use crate::server::llm::testkit::{quick_executor, start_simulator, test_executor, Sim};
use crate::server::llm::{build_provider, Executor, LlamaFlavour, Role};
use crate::server::simulator::SimulatorOptions;

const CLAUDE: &str = "claude-3-5-sonnet-20241022";
const GPT: &str = "gpt-4o-2024-08-06";
const GEMINI: &str = "gemini-1.5-flash-002";
const QUESTION: &str = "Hello router";
const ANSWER: &str = "This is a simulated answer to: Hello router";

// ---------------------------------------------------------------- units

#[test]
fn the_backoff_ceiling_doubles_from_the_base_up_to_the_cap() {
    let (base, cap) = (Duration::from_millis(100), Duration::from_secs(1));
    let ceilings: Vec<u128> = (1..=6)
        .map(|n| backoff_ceiling(base, cap, n).as_millis())
        .collect();
    assert_eq!(ceilings, vec![100, 200, 400, 800, 1000, 1000]);
    assert_eq!(backoff_ceiling(base, cap, u32::MAX), cap, "no overflow");
    assert_eq!(
        backoff_ceiling(Duration::MAX, cap, 3),
        cap,
        "no overflow either"
    );
}

#[test]
fn full_jitter_never_exceeds_its_ceiling_and_grows_with_it() {
    let mut rng = StdRng::seed_from_u64(7);
    let (base, cap) = (Duration::from_millis(100), Duration::from_secs(1));
    let mut largest = Vec::new();
    for retry in 1..=5 {
        let ceiling = backoff_ceiling(base, cap, retry);
        let waits: Vec<Duration> = (0..500).map(|_| full_jitter(ceiling, &mut rng)).collect();
        assert!(waits.iter().all(|w| *w <= ceiling), "retry {retry}");
        largest.push(waits.into_iter().max().unwrap_or_default());
    }
    assert!(largest.windows(2).all(|w| w[0] < w[1]), "{largest:?}");
    for _ in 0..100 {
        let wait = advised_wait(Duration::from_secs(1), &mut rng);
        assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_millis(1100));
    }
}

#[test]
fn settings_read_the_environment_and_keep_defaults_for_bad_values() {
    let env = [
        ("COVER_LLM_TTFT_TIMEOUT_MS", "1500"),
        ("COVER_LLM_TOTAL_TIMEOUT_MS", "soon"),
        ("COVER_LLM_ATTEMPT_TIMEOUT_MS", "0"),
        ("COVER_LLM_BACKOFF_BASE_MS", "0"),
        ("COVER_LLM_BREAKER_THRESHOLD", " 3 "),
        ("COVER_LLM_BREAKER_COOLDOWN_MS", "-5"),
    ];
    let s = RouterSettings::from_lookup(|name| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    });
    let d = RouterSettings::default();
    assert_eq!(s.ttft_timeout, Duration::from_millis(1500));
    assert_eq!(s.total_timeout, d.total_timeout);
    assert_eq!(
        s.attempt_timeout, d.attempt_timeout,
        "a zero timeout keeps the default"
    );
    assert_eq!(s.backoff_base, Duration::ZERO, "no backoff is allowed");
    assert_eq!(s.breaker_threshold, 3);
    assert_eq!(s.breaker_cooldown, d.breaker_cooldown);
    assert_eq!(s.max_retry_after, Duration::from_secs(20));
}

#[test]
fn a_circuit_opens_after_the_threshold_then_lets_one_probe_through_after_the_cooldown() {
    let breakers = Breakers::new(2, Duration::from_secs(30));
    let key = "claude:managed";
    let t0 = Instant::now();
    let at = |secs: u64| t0 + Duration::from_secs(secs);
    assert_eq!(breakers.admit(key, t0), Admission::Closed);
    breakers.settle(key, false, Outcome::Failure, t0);
    assert_eq!(
        breakers.admit(key, t0),
        Admission::Closed,
        "below the threshold"
    );
    breakers.settle(key, false, Outcome::Failure, t0);
    assert_eq!(breakers.admit(key, at(29)), Admission::Rejected);
    assert_eq!(
        breakers.admit("claude:other-key", at(29)),
        Admission::Closed
    );
    // Cooldown over: one probe; a second request waits for its outcome.
    assert_eq!(breakers.admit(key, at(31)), Admission::Probe);
    assert_eq!(breakers.admit(key, at(31)), Admission::Rejected);
    // A probe that says nothing (cancelled, invalid request) frees the slot.
    breakers.settle(key, true, Outcome::Neutral, at(32));
    assert_eq!(breakers.admit(key, at(32)), Admission::Probe);
    // A failed probe re-opens for a whole cooldown.
    breakers.settle(key, true, Outcome::Failure, at(33));
    assert_eq!(breakers.admit(key, at(62)), Admission::Rejected);
    assert_eq!(breakers.admit(key, at(64)), Admission::Probe);
    // A successful probe closes it, and the failure count starts again.
    breakers.settle(key, true, Outcome::Success, at(64));
    breakers.settle(key, false, Outcome::Failure, at(65));
    assert_eq!(breakers.admit(key, at(65)), Admission::Closed);
}

#[test]
fn a_probe_permit_dropped_without_an_outcome_frees_the_probe_slot() {
    let breakers = Breakers::new(1, Duration::ZERO);
    breakers.settle("k", false, Outcome::Failure, Instant::now());
    let admission = breakers.admit("k", Instant::now());
    assert_eq!(admission, Admission::Probe);
    let permit = Permit::new(&breakers, "k", admission);
    assert_eq!(breakers.admit("k", Instant::now()), Admission::Rejected);
    drop(permit);
    assert_eq!(breakers.admit("k", Instant::now()), Admission::Probe);
}

#[test]
fn only_failures_that_say_the_provider_or_key_is_unwell_count_against_a_circuit() {
    let kind = |kind: ErrorKind| Outcome::of(Some(&LlmError::new(ProviderId::Claude, kind, "x")));
    for counted in [
        ErrorKind::Transient,
        ErrorKind::Overloaded { retry_after: None },
        ErrorKind::RateLimited { retry_after: None },
        ErrorKind::QuotaExhausted,
        ErrorKind::Auth,
    ] {
        assert_eq!(kind(counted), Outcome::Failure);
    }
    for neutral in [
        ErrorKind::InvalidRequest,
        ErrorKind::ContextTooLong,
        ErrorKind::ContentFiltered,
        ErrorKind::Cancelled,
    ] {
        assert_eq!(kind(neutral), Outcome::Neutral);
    }
    assert_eq!(Outcome::of(None), Outcome::Success);
}

fn long_text(tag: &str) -> String {
    format!("{tag} {}", "lorem ipsum ".repeat(40))
}

fn limits(context_window: u32) -> ModelLimits {
    ModelLimits {
        max_output_tokens: 100,
        context_window,
    }
}

fn estimated_tokens(messages: &[Message]) -> u32 {
    let mut req = GenerateRequest::simple("", "");
    req.messages = messages.to_vec();
    u32::try_from(count_request_tokens(&req).tokens).unwrap_or(u32::MAX)
}

#[test]
fn context_fitting_keeps_system_messages_and_the_newest_turns_and_drops_whole_turns() {
    let call = ToolCall {
        id: "call_1".into(),
        name: "lookup".into(),
        arguments: json!({"q": "x"}),
    };
    let conversation = vec![
        Message::text(Role::System, "Be brief."),
        Message::text(Role::User, long_text("u1")),
        Message::tool_calls(vec![call]),
        Message::tool_result("call_1", long_text("result")),
        Message::text(Role::Assistant, long_text("a1")),
        Message::text(Role::System, "Mid-conversation note."),
        Message::text(Role::User, long_text("u2")),
        Message::text(Role::Assistant, long_text("a2")),
        Message::text(Role::User, "u3: the question"),
    ];
    let expected: Vec<Message> = [0, 5, 6, 7, 8]
        .iter()
        .map(|i| conversation[*i].clone())
        .collect();
    let window = estimated_tokens(&expected) + 50 + 5;
    let (kept, dropped) = fit_to_context(
        &conversation,
        &[],
        limits(window),
        50,
        1.0,
        ProviderId::Claude,
    )
    .expect("fits once the first turn is gone");
    assert_eq!(kept, expected);
    assert_eq!(dropped, 4, "the first turn with its tool exchange");
    let (all, none) = fit_to_context(
        &conversation,
        &[],
        limits(1_000_000),
        50,
        0.95,
        ProviderId::Claude,
    )
    .expect("fits");
    assert_eq!((all.len(), none), (conversation.len(), 0));
}

#[test]
fn context_fitting_never_drops_the_last_user_turn_and_says_so_when_it_does_not_fit() {
    let conversation = vec![
        Message::text(Role::User, "first"),
        Message::text(Role::Assistant, "answer"),
        Message::text(Role::User, long_text("last")),
    ];
    let err = fit_to_context(
        &conversation,
        &[],
        limits(100),
        50,
        0.95,
        ProviderId::Gemini,
    )
    .expect_err("the last message alone is too long");
    assert_eq!(err.kind, ErrorKind::ContextTooLong);
    assert_eq!(err.provider, ProviderId::Gemini);
}

// ---------------------------------------------------------------- against the simulator

fn settings() -> RouterSettings {
    RouterSettings {
        ttft_timeout: Duration::from_secs(3),
        attempt_timeout: Duration::from_secs(3),
        total_timeout: Duration::from_secs(10),
        backoff_base: Duration::from_millis(5),
        backoff_cap: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(2),
        breaker_threshold: 100,
        breaker_cooldown: Duration::from_secs(30),
    }
}

fn target(
    sim: &Sim,
    executor: &Executor,
    provider: ProviderId,
    model: &str,
    role: TargetRole,
) -> Target {
    Target {
        provider: build_provider(
            executor,
            provider,
            &sim.url,
            Some(SecretString::from("sk-test")),
            LlamaFlavour::Ollama,
        ),
        provider_id: provider,
        model: model.into(),
        api_model: model.into(),
        name: model.into(),
        breaker_key: format!("{provider}:test"),
        managed_key: false,
        role,
        parameters: Parameters::default(),
        limits: limits(100_000),
        attempts: 2,
    }
}

/// Claude primary, GPT fallback, Gemini degraded; two attempts each.
fn chain(sim: &Sim, executor: &Executor) -> Vec<Target> {
    vec![
        target(
            sim,
            executor,
            ProviderId::Claude,
            CLAUDE,
            TargetRole::Primary,
        ),
        target(sim, executor, ProviderId::OpenAi, GPT, TargetRole::Fallback),
        target(
            sim,
            executor,
            ProviderId::Gemini,
            GEMINI,
            TargetRole::Degraded,
        ),
    ]
}

fn route(targets: Vec<Target>) -> Route {
    Route {
        targets,
        messages: vec![Message::text(Role::User, QUESTION)],
        tools: Vec::new(),
        tool_choice: ToolChoice::Auto,
        response_format: ResponseFormat::Text,
        restart_after_output: true,
    }
}

/// Collects attempt records like the chat service's ledger sink.
#[derive(Default)]
struct RecordingSink {
    records: Mutex<Vec<AttemptRecord>>,
}

impl RecordingSink {
    fn records(&self) -> Vec<AttemptRecord> {
        self.records.lock().expect("lock").clone()
    }

    /// The error class of each attempt, `ok` for successes.
    fn outcomes(&self) -> Vec<String> {
        self.records()
            .iter()
            .map(|r| {
                let kind = r.error.as_ref().map_or("ok", LlmError::kind_name);
                format!("{} {kind}", r.target_index)
            })
            .collect()
    }

    /// Waits until `n` attempts were recorded (streams record from their own task).
    async fn wait_for(&self, n: usize) {
        for _ in 0..200 {
            if self.records.lock().expect("lock").len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{n} records expected, got {:?}", self.outcomes());
    }
}

#[async_trait]
impl AttemptSink for RecordingSink {
    async fn record(&self, attempt: AttemptRecord) {
        self.records.lock().expect("lock").push(attempt);
    }
}

/// Every HTTP request the simulator saw was recorded exactly once, and each route numbers
/// its attempts 1, 2, 3, … (a sink may serve several routes in a row).
fn assert_one_record_per_request(sink: &RecordingSink, sim: &Sim) {
    let records = sink.records();
    assert_eq!(
        records.len() as u64,
        sim.requests(),
        "{:?}",
        sink.outcomes()
    );
    let mut previous = 0;
    for record in &records {
        assert!(
            record.attempt == 1 || record.attempt == previous + 1,
            "attempt {} after {previous}",
            record.attempt
        );
        previous = record.attempt;
    }
}

async fn fault(sim: &Sim, model: &str, fault: &str) {
    sim.schedule_fault(json!({"model": model, "fault": fault, "times": 0}))
        .await;
}

async fn sim() -> Sim {
    start_simulator(SimulatorOptions::default()).await
}

#[tokio::test(start_paused = true)]
async fn a_one_second_retry_after_is_waited_before_the_retry() {
    let sim = sim().await;
    sim.schedule_fault(json!({"model": CLAUDE, "fault": "rate_limit", "retryAfterSecs": 1}))
        .await;
    let router = LlmRouter::new(settings());
    let sink = RecordingSink::default();
    let primary = target(
        &sim,
        &test_executor(),
        ProviderId::Claude,
        CLAUDE,
        TargetRole::Primary,
    );
    let started = Instant::now();
    let routed = router
        .generate(route(vec![primary]), &sink)
        .await
        .expect("the retry answers");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_millis(1100),
        "{waited:?}"
    );
    assert_eq!(routed.response.text(), ANSWER);
    assert_eq!(sink.outcomes(), vec!["0 rate limited", "0 ok"]);
    assert_one_record_per_request(&sink, &sim);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_longer_than_the_cap_switches_to_the_next_target_at_once() {
    let sim = sim().await;
    sim.schedule_fault(
        json!({"model": CLAUDE, "fault": "rate_limit", "times": 0, "retryAfterSecs": 30}),
    )
    .await;
    let router = LlmRouter::new(settings());
    let sink = RecordingSink::default();
    let started = Instant::now();
    let routed = router
        .generate(route(chain(&sim, &test_executor())), &sink)
        .await
        .expect("the fallback answers");
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "no wait: {:?}",
        started.elapsed()
    );
    assert_eq!(routed.target_index, 1);
    assert_eq!(routed.switches.len(), 1);
    assert_eq!(
        routed.switches[0].error.retry_after(),
        Some(Duration::from_secs(30))
    );
    assert_eq!(sink.outcomes(), vec!["0 rate limited", "1 ok"]);
    assert_one_record_per_request(&sink, &sim);
}

#[tokio::test]
async fn each_error_class_is_retried_switched_or_failed_as_the_design_says() {
    let cases: [(&str, &[&str], Option<usize>); 8] = [
        (
            "server_error",
            &["0 transient error", "0 transient error", "1 ok"],
            Some(1),
        ),
        (
            "overloaded",
            &["0 overloaded", "0 overloaded", "1 ok"],
            Some(1),
        ),
        (
            "rate_limit",
            &["0 rate limited", "0 rate limited", "1 ok"],
            Some(1),
        ),
        ("quota", &["0 quota exhausted", "1 ok"], Some(1)),
        ("unauthorized", &["0 authentication error", "1 ok"], Some(1)),
        // The conversation is one message: a tighter fit would send the same request.
        ("context_too_long", &["0 context too long", "1 ok"], Some(1)),
        (
            "hang",
            &["0 transient error", "0 transient error", "1 ok"],
            Some(1),
        ),
        ("bad_request", &["0 invalid request"], None),
    ];
    for (name, outcomes, answered_by) in cases {
        let sim = sim().await;
        // A zero Retry-After keeps the rate-limit case fast; hangs end at the attempt timeout.
        sim.schedule_fault(
            json!({"model": CLAUDE, "fault": name, "times": 0, "retryAfterSecs": 0}),
        )
        .await;
        let router = LlmRouter::new(RouterSettings {
            attempt_timeout: Duration::from_millis(300),
            ..settings()
        });
        let sink = RecordingSink::default();
        let result = router
            .generate(route(chain(&sim, &test_executor())), &sink)
            .await;
        assert_eq!(sink.outcomes(), outcomes.to_vec(), "{name}");
        match (result, answered_by) {
            (Ok(routed), Some(index)) => {
                assert_eq!(routed.target_index, index, "{name}");
                assert_eq!(routed.switches.len(), 1, "{name}");
                assert_eq!(routed.response.text(), ANSWER, "{name}");
            }
            (Err(failure), None) => {
                assert_eq!(failure.error.kind, ErrorKind::InvalidRequest, "{name}");
                assert!(failure.switches.is_empty(), "{name}: no fallback");
            }
            (other, _) => panic!("{name}: unexpected {:?}", other.map(|r| r.target_index)),
        }
        assert_one_record_per_request(&sink, &sim);
    }
}

#[tokio::test]
async fn the_chain_goes_from_primary_to_fallback_to_degraded() {
    let sim = sim().await;
    fault(&sim, CLAUDE, "server_error").await;
    fault(&sim, GPT, "quota").await;
    let router = LlmRouter::new(settings());
    let sink = RecordingSink::default();
    let mut targets = chain(&sim, &test_executor());
    targets[0].attempts = 1;
    let routed = router
        .generate(route(targets), &sink)
        .await
        .expect("the degraded model answers");
    assert_eq!(routed.target_index, 2);
    let hops: Vec<(usize, usize)> = routed
        .switches
        .iter()
        .map(|s| (s.from_index, s.to_index))
        .collect();
    assert_eq!(hops, vec![(0, 1), (1, 2)]);
    let roles: Vec<TargetRole> = sink.records().iter().map(|r| r.role).collect();
    assert_eq!(
        roles,
        vec![
            TargetRole::Primary,
            TargetRole::Fallback,
            TargetRole::Degraded
        ]
    );
    let answer = &sink.records()[2];
    assert!(answer.usage.output_tokens > 0 && !answer.usage_estimated);
    assert_one_record_per_request(&sink, &sim);
}

#[tokio::test]
async fn a_failed_route_shows_the_primary_error_unless_a_later_one_was_not_retryable() {
    let sim = sim().await;
    fault(&sim, CLAUDE, "quota").await;
    fault(&sim, GPT, "server_error").await;
    fault(&sim, GEMINI, "unauthorized").await;
    let router = LlmRouter::new(settings());
    let sink = RecordingSink::default();
    let all = chain(&sim, &test_executor());
    let failure = router
        .generate(route(all[..2].to_vec()), &sink)
        .await
        .expect_err("nobody answers");
    assert_eq!(
        failure.error.kind,
        ErrorKind::QuotaExhausted,
        "the primary's"
    );
    assert_eq!(failure.switches.len(), 1);
    let failure = router
        .generate(route(all), &sink)
        .await
        .expect_err("nobody answers");
    assert_eq!(
        failure.error.kind,
        ErrorKind::Auth,
        "the degraded key is wrong"
    );
    assert_eq!(failure.switches.len(), 2);
    assert_one_record_per_request(&sink, &sim);
}

#[tokio::test(start_paused = true)]
async fn an_open_circuit_is_skipped_without_a_request_until_a_probe_after_the_cooldown() {
    let sim = sim().await;
    fault(&sim, CLAUDE, "server_error").await;
    let router = LlmRouter::new(RouterSettings {
        breaker_threshold: 2,
        breaker_cooldown: Duration::from_millis(300),
        ..settings()
    });
    let sink = RecordingSink::default();
    let executor = test_executor();
    let targets = || {
        let mut targets = chain(&sim, &executor);
        targets[0].attempts = 1;
        route(targets)
    };
    for _ in 0..2 {
        let routed = router.generate(targets(), &sink).await.expect("fallback");
        assert_eq!(routed.target_index, 1);
    }
    let before = sim.requests();
    let routed = router.generate(targets(), &sink).await.expect("fallback");
    assert_eq!(sim.requests(), before + 1, "only the fallback was asked");
    assert!(routed.switches[0].error.message.contains("circuit is open"));
    assert_eq!(routed.switches[0].error.kind, ErrorKind::Transient);
    sim.clear_faults().await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    for _ in 0..2 {
        let routed = router.generate(targets(), &sink).await.expect("primary");
        assert_eq!(routed.target_index, 0, "the probe closed the circuit");
    }
    assert_eq!(
        sink.outcomes(),
        vec![
            "0 transient error",
            "1 ok",
            "0 transient error",
            "1 ok",
            "1 ok",
            "0 ok",
            "0 ok"
        ]
    );
    assert_one_record_per_request(&sink, &sim);
}

#[tokio::test(start_paused = true)]
async fn the_whole_route_gives_up_at_the_total_deadline() {
    let sim = sim().await;
    fault(&sim, CLAUDE, "hang").await;
    let router = LlmRouter::new(RouterSettings {
        total_timeout: Duration::from_millis(300),
        ..settings()
    });
    let sink = RecordingSink::default();
    let started = Instant::now();
    let failure = router
        .generate(route(chain(&sim, &test_executor())), &sink)
        .await
        .expect_err("time is up");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(350),
        "{elapsed:?}"
    );
    assert_eq!(failure.error.kind, ErrorKind::Transient);
    assert_eq!(failure.error.message, "timed out after 300 ms");
    assert_one_record_per_request(&sink, &sim);
}

#[tokio::test]
async fn old_turns_are_trimmed_to_fit_and_a_window_too_small_goes_to_the_fallback_unasked() {
    let sim = sim().await;
    let router = LlmRouter::new(settings());
    let sink = RecordingSink::default();
    let with_history = |window: u32| {
        let mut targets = chain(&sim, &test_executor());
        targets[0].limits = limits(window);
        let mut route = route(targets);
        route
            .messages
            .insert(0, Message::text(Role::User, long_text("old")));
        route
            .messages
            .insert(1, Message::text(Role::Assistant, "old answer"));
        route
    };
    // 120 tokens hold the question and the 100-token answer, not the old turn.
    let routed = router
        .generate(with_history(120), &sink)
        .await
        .expect("primary");
    assert_eq!((routed.target_index, routed.trimmed_messages), (0, 2));
    assert_eq!(sink.records()[0].trimmed_messages, 2);
    // 60 tokens cannot even hold the answer: the fallback gets the whole conversation.
    let routed = router
        .generate(with_history(60), &sink)
        .await
        .expect("fallback");
    assert_eq!((routed.target_index, routed.trimmed_messages), (1, 0));
    assert_eq!(routed.switches[0].error.kind, ErrorKind::ContextTooLong);
    assert_one_record_per_request(&sink, &sim);
}

#[tokio::test]
async fn a_provider_context_error_is_retried_once_with_a_tighter_fit_that_drops_old_turns() {
    let sim = sim().await;
    sim.schedule_fault(json!({"model": CLAUDE, "fault": "context_too_long"}))
        .await;
    let router = LlmRouter::new(settings());
    let sink = RecordingSink::default();
    let mut route = route(chain(&sim, &test_executor()));
    route
        .messages
        .insert(0, Message::text(Role::User, long_text("old")));
    route
        .messages
        .insert(1, Message::text(Role::Assistant, "old answer"));
    // Everything fits 95 % of the window by the estimate, but not 75 %.
    let needed = estimated_tokens(&route.messages) + 100;
    let window = needed * 100 / 95 + 2;
    assert!(f64::from(window) * TIGHT_CONTEXT_BUDGET < f64::from(needed));
    route.targets[0].limits = limits(window);
    let routed = router
        .generate(route, &sink)
        .await
        .expect("the refit answers");
    assert_eq!((routed.target_index, routed.trimmed_messages), (0, 2));
    assert_eq!(sink.outcomes(), vec!["0 context too long", "0 ok"]);
    let trimmed: Vec<u32> = sink.records().iter().map(|r| r.trimmed_messages).collect();
    assert_eq!(trimmed, vec![0, 2]);
    assert_one_record_per_request(&sink, &sim);
}

// ---------------------------------------------------------------- streams

/// The events in short form, with consecutive deltas merged.
fn summary(events: &[RouterEvent]) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for event in events {
        let line = match event {
            RouterEvent::Switched(s) => format!("switched {}->{}", s.from_index, s.to_index),
            RouterEvent::Started { target_index, .. } => format!("started {target_index}"),
            RouterEvent::TextDelta(_) | RouterEvent::ToolCallDelta { .. } => "deltas".to_owned(),
            RouterEvent::Interrupted { target_index, .. } => format!("interrupted {target_index}"),
            RouterEvent::Finished { target_index, .. } => format!("finished {target_index}"),
            RouterEvent::Failed { .. } => "failed".to_owned(),
        };
        if lines.last() != Some(&line) {
            lines.push(line);
        }
    }
    lines
}

fn finished_text(events: &[RouterEvent]) -> Option<String> {
    events.iter().find_map(|e| match e {
        RouterEvent::Finished { response, .. } => Some(response.text()),
        _ => None,
    })
}

async fn stream_route(
    router: LlmRouter,
    route: Route,
    sink: &Arc<RecordingSink>,
) -> Vec<RouterEvent> {
    Arc::new(router).stream(route, sink.clone()).collect().await
}

#[tokio::test]
async fn stream_errors_before_the_first_token_are_invisible_apart_from_the_switch() {
    let sim = sim().await;
    fault(&sim, CLAUDE, "server_error").await;
    let sink = Arc::new(RecordingSink::default());
    let events = stream_route(
        LlmRouter::new(settings()),
        route(chain(&sim, &test_executor())),
        &sink,
    )
    .await;
    assert_eq!(
        summary(&events),
        vec!["switched 0->1", "started 1", "deltas", "finished 1"]
    );
    assert_eq!(finished_text(&events).as_deref(), Some(ANSWER));
    assert_eq!(
        sink.outcomes(),
        vec!["0 transient error", "0 transient error", "1 ok"]
    );
    let answer = &sink.records()[2];
    assert!(answer.streamed && !answer.usage_estimated && answer.usage.output_tokens > 0);
    assert!(answer.ttft.is_some());
    assert_one_record_per_request(&sink, &sim);
}

#[tokio::test(start_paused = true)]
async fn a_silent_stream_misses_its_time_to_first_token_and_the_fallback_answers() {
    let sim = sim().await;
    fault(&sim, CLAUDE, "silent").await;
    let router = LlmRouter::new(RouterSettings {
        ttft_timeout: Duration::from_millis(200),
        ..settings()
    });
    let sink = Arc::new(RecordingSink::default());
    let mut targets = chain(&sim, &test_executor());
    targets[0].attempts = 1;
    let events = stream_route(router, route(targets), &sink).await;
    assert_eq!(
        summary(&events),
        vec!["switched 0->1", "started 1", "deltas", "finished 1"]
    );
    let RouterEvent::Switched(switch) = &events[0] else {
        panic!("a switch first");
    };
    assert_eq!(switch.error.message, "no first token within 200 ms");
    assert_one_record_per_request(&sink, &sim);
    wait_until_closed(&sim).await;
}

async fn wait_until_closed(sim: &Sim) {
    for _ in 0..200 {
        if sim.open_streams() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} simulator streams still open", sim.open_streams());
}

#[tokio::test]
async fn a_stream_broken_after_its_first_token_is_interrupted_and_the_fallback_answers() {
    for name in ["cut", "malformed", "stall"] {
        let sim = sim().await;
        fault(&sim, CLAUDE, name).await;
        let sink = Arc::new(RecordingSink::default());
        // The quick executor ends a stall after 300 ms of silence.
        let events = stream_route(
            LlmRouter::new(settings()),
            route(chain(&sim, &quick_executor())),
            &sink,
        )
        .await;
        assert_eq!(
            summary(&events),
            vec![
                "started 0",
                "deltas",
                "interrupted 0",
                "switched 0->1",
                "started 1",
                "deltas",
                "finished 1"
            ],
            "{name}"
        );
        let partial = events.iter().find_map(|e| match e {
            RouterEvent::Interrupted { partial_text, .. } => Some(partial_text.clone()),
            _ => None,
        });
        let partial = partial.unwrap_or_default();
        assert!(
            !partial.is_empty() && ANSWER.starts_with(&partial) && partial != ANSWER,
            "{name}: {partial}"
        );
        assert_eq!(finished_text(&events).as_deref(), Some(ANSWER), "{name}");
        let broken = &sink.records()[0];
        assert_eq!(
            broken.error.as_ref().map(|e| &e.kind),
            Some(&ErrorKind::Transient),
            "{name}"
        );
        assert!(broken.usage_estimated, "{name}");
        assert!(
            broken.usage.input_tokens > 0 && broken.usage.output_tokens > 0,
            "{name}"
        );
        assert_eq!(sink.outcomes(), vec!["0 transient error", "1 ok"], "{name}");
        assert_one_record_per_request(&sink, &sim);
    }
}

#[tokio::test]
async fn a_broken_stream_without_a_fallback_fails_and_never_finishes() {
    let sim = sim().await;
    fault(&sim, CLAUDE, "cut").await;
    let sink = Arc::new(RecordingSink::default());
    let primary = target(
        &sim,
        &test_executor(),
        ProviderId::Claude,
        CLAUDE,
        TargetRole::Primary,
    );
    let events = stream_route(LlmRouter::new(settings()), route(vec![primary]), &sink).await;
    assert_eq!(
        summary(&events),
        vec!["started 0", "deltas", "interrupted 0", "failed"]
    );
    assert_eq!(
        sink.outcomes(),
        vec!["0 transient error"],
        "no retry in place"
    );
    assert_one_record_per_request(&sink, &sim);
}

#[tokio::test]
async fn context_too_long_on_the_primary_stream_ends_on_the_fallback() {
    let sim = sim().await;
    fault(&sim, CLAUDE, "context_too_long").await;
    let sink = Arc::new(RecordingSink::default());
    let events = stream_route(
        LlmRouter::new(settings()),
        route(chain(&sim, &test_executor())),
        &sink,
    )
    .await;
    assert_eq!(
        summary(&events),
        vec!["switched 0->1", "started 1", "deltas", "finished 1"]
    );
    assert_eq!(sink.outcomes(), vec!["0 context too long", "1 ok"]);
    assert_one_record_per_request(&sink, &sim);
}

#[tokio::test]
async fn dropping_the_stream_mid_answer_records_a_cancelled_attempt_and_closes_upstream() {
    let sim = start_simulator(SimulatorOptions {
        tokens_per_second: 20.0,
        ..SimulatorOptions::default()
    })
    .await;
    let sink = Arc::new(RecordingSink::default());
    let router = Arc::new(LlmRouter::new(settings()));
    let mut stream = router.stream(route(chain(&sim, &test_executor())), sink.clone());
    loop {
        match stream.next().await {
            Some(RouterEvent::TextDelta(_)) => break,
            Some(_) => {}
            None => panic!("the stream ended before its first delta"),
        }
    }
    drop(stream);
    sink.wait_for(1).await;
    let cancelled = &sink.records()[0];
    assert_eq!(
        cancelled.error.as_ref().map(|e| &e.kind),
        Some(&ErrorKind::Cancelled)
    );
    assert!(cancelled.usage_estimated);
    assert!(cancelled.usage.input_tokens > 0 && cancelled.usage.output_tokens > 0);
    assert!(cancelled.ttft.is_some());
    wait_until_closed(&sim).await;
    assert_one_record_per_request(&sink, &sim);
}

#[tokio::test]
async fn a_streamed_tool_call_is_assembled_from_its_fragments() {
    let sim = sim().await;
    let sink = Arc::new(RecordingSink::default());
    let mut route = route(chain(&sim, &test_executor()));
    route.tools = vec![ToolDefinition {
        name: "get_weather".into(),
        description: "Current weather in a city".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    }];
    route.tool_choice = ToolChoice::Required;
    let events = stream_route(LlmRouter::new(settings()), route, &sink).await;
    let fragments = events
        .iter()
        .filter(|e| matches!(e, RouterEvent::ToolCallDelta { .. }))
        .count();
    assert!(fragments > 1, "the arguments arrive in pieces");
    let Some(RouterEvent::Finished { response, .. }) = events.last() else {
        panic!("finished: {:?}", summary(&events));
    };
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(response.tool_calls.len(), 1);
    assert_eq!(response.tool_calls[0].name, "get_weather");
    assert_eq!(response.tool_calls[0].arguments, json!({"city": QUESTION}));
    assert!(response.tool_calls[0].id.starts_with("toolu_"));
    assert_one_record_per_request(&sink, &sim);
}

#[tokio::test]
async fn a_route_that_must_not_restart_fails_where_its_started_stream_broke() {
    let sim = sim().await;
    fault(&sim, CLAUDE, "cut").await;
    let sink = Arc::new(RecordingSink::default());
    let route = Route {
        restart_after_output: false,
        ..route(chain(&sim, &test_executor()))
    };
    let events = stream_route(LlmRouter::new(settings()), route, &sink).await;
    assert_eq!(
        summary(&events),
        vec!["started 0", "deltas", "interrupted 0", "failed"]
    );
    assert_eq!(
        sink.outcomes(),
        vec!["0 transient error"],
        "the fallback is never asked"
    );
    assert_one_record_per_request(&sink, &sim);
}
