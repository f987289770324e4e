//! Circuit breakers, one per provider + key: after `threshold` consecutive failures that
//! suggest the provider or key is unwell, the target is skipped for `cooldown`, then one
//! probe request is let through (half-open); its outcome closes or re-opens the circuit.
//!
//! Time is passed in, so the state machine is tested without sleeping; it is
//! tokio's clock, so the router's tests of cool-downs run on paused time.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

use crate::server::llm::{ErrorKind, LlmError};

/// How an attempt ended, as far as its circuit is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The provider answered: the circuit closes.
    Success,
    /// A failure that says the provider or key is unwell: counted.
    Failure,
    /// Says nothing about the provider (cancelled, invalid request, context too long).
    Neutral,
}

impl Outcome {
    /// Classifies an attempt's result (`None` = success).
    pub(super) fn of(error: Option<&LlmError>) -> Self {
        match error.map(|e| &e.kind) {
            None => Self::Success,
            Some(
                ErrorKind::Transient
                | ErrorKind::Overloaded { .. }
                | ErrorKind::RateLimited { .. }
                | ErrorKind::QuotaExhausted
                | ErrorKind::Auth,
            ) => Self::Failure,
            Some(_) => Self::Neutral,
        }
    }
}

/// Whether a target may be tried now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admission {
    /// Circuit closed: go ahead.
    Closed,
    /// Circuit half-open: this request is the one probe.
    Probe,
    /// Circuit open, or a probe is already in flight: skip the target.
    Rejected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Circuit {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// The breakers of every provider + key seen by this process.
#[derive(Debug)]
pub(super) struct Breakers {
    threshold: u32,
    cooldown: Duration,
    // Keys whose circuit is closed with no failure are absent: the happy path allocates nothing.
    circuits: Mutex<HashMap<String, Circuit>>,
}

impl Breakers {
    /// Breakers opening after `threshold` (at least 1) consecutive failures, for `cooldown`.
    pub(super) fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            circuits: Mutex::new(HashMap::new()),
        }
    }

    fn circuits(&self) -> MutexGuard<'_, HashMap<String, Circuit>> {
        // A panic while holding the lock leaves a valid map: keep using it.
        self.circuits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides whether `key` may be tried at `now`; a `Probe` must be settled (see [`Permit`]).
    pub(super) fn admit(&self, key: &str, now: Instant) -> Admission {
        let mut circuits = self.circuits();
        let Some(circuit) = circuits.get_mut(key) else {
            return Admission::Closed;
        };
        match *circuit {
            Circuit::Closed { .. } => Admission::Closed,
            Circuit::Open { until } if now < until => Admission::Rejected,
            Circuit::HalfOpen { probing: true } => Admission::Rejected,
            Circuit::Open { .. } | Circuit::HalfOpen { probing: false } => {
                *circuit = Circuit::HalfOpen { probing: true };
                tracing::info!(
                    breaker = key,
                    "circuit half-open: one probe request may pass"
                );
                Admission::Probe
            }
        }
    }

    /// The circuits not closed at `now`: (the key's provider, `open` or
    /// `half_open`) each, for the metrics.
    pub(super) fn not_closed(&self, now: Instant) -> Vec<(String, &'static str)> {
        self.circuits()
            .iter()
            .filter_map(|(key, circuit)| {
                let state = match *circuit {
                    Circuit::Closed { .. } => return None,
                    Circuit::Open { until } if now < until => "open",
                    Circuit::Open { .. } | Circuit::HalfOpen { .. } => "half_open",
                };
                let provider = key.split(':').next().unwrap_or_default();
                Some((provider.to_owned(), state))
            })
            .collect()
    }

    /// Takes an attempt's outcome into account (`probe`: it was admitted as the probe).
    pub(super) fn settle(&self, key: &str, probe: bool, outcome: Outcome, now: Instant) {
        let mut circuits = self.circuits();
        match outcome {
            Outcome::Success => {
                if let Some(Circuit::Open { .. } | Circuit::HalfOpen { .. }) = circuits.remove(key)
                {
                    tracing::info!(breaker = key, "circuit closed: the probe succeeded");
                }
            }
            Outcome::Failure => {
                let reopened = Circuit::Open {
                    until: now + self.cooldown,
                };
                let circuit = circuits
                    .entry(key.to_owned())
                    .or_insert(Circuit::Closed { failures: 0 });
                let before = *circuit;
                *circuit = match before {
                    Circuit::Closed { failures } if failures + 1 >= self.threshold => reopened,
                    Circuit::Closed { failures } => Circuit::Closed {
                        failures: failures + 1,
                    },
                    Circuit::HalfOpen { .. } if probe => reopened,
                    // A request admitted before the circuit opened: the circuit already knows.
                    unchanged @ (Circuit::HalfOpen { .. } | Circuit::Open { .. }) => unchanged,
                };
                if matches!(*circuit, Circuit::Open { .. })
                    && !matches!(before, Circuit::Open { .. })
                {
                    tracing::warn!(
                        breaker = key,
                        cooldown_ms = self.cooldown.as_millis() as u64,
                        "circuit opened: requests skip this provider and key until the cool-down ends"
                    );
                }
            }
            Outcome::Neutral if probe => {
                if let Some(circuit) = circuits.get_mut(key) {
                    if *circuit == (Circuit::HalfOpen { probing: true }) {
                        *circuit = Circuit::HalfOpen { probing: false };
                    }
                }
            }
            Outcome::Neutral => {}
        }
    }
}

/// The right to try a target; releases a probe slot if dropped without an outcome (e.g. the
/// caller gave up mid-request), so a circuit can never stay half-open forever.
pub(super) struct Permit<'a> {
    breakers: &'a Breakers,
    key: &'a str,
    probe: bool,
    settled: bool,
}

impl<'a> Permit<'a> {
    /// A permit for an admitted request (`Closed` or `Probe`).
    pub(super) fn new(breakers: &'a Breakers, key: &'a str, admission: Admission) -> Self {
        Self {
            breakers,
            key,
            probe: admission == Admission::Probe,
            settled: false,
        }
    }

    /// Reports the attempt's outcome to the circuit.
    pub(super) fn settle(mut self, outcome: Outcome) {
        self.settled = true;
        self.breakers
            .settle(self.key, self.probe, outcome, Instant::now());
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.breakers
                .settle(self.key, self.probe, Outcome::Neutral, Instant::now());
        }
    }
}
