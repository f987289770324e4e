//! The fault schedule: faults queued through the control API (`POST /_sim/faults`) for the
//! requests of one model and/or dialect, so a test can fail one provider of a chain.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::{json_response, Fault, Sim};

/// The API a simulated request speaks, as named in the control API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum DialectName {
    /// `/v1/messages`.
    Anthropic,
    /// `/v1/chat/completions` and `/v1/embeddings` (OpenAI and OpenAI-compatible Llama).
    OpenAi,
    /// `models/{m}:generateContent` and friends, embeddings included.
    Gemini,
    /// `/api/chat` and `/api/embed`.
    Ollama,
    /// Voyage AI's `/v1/embeddings` (a `voyage…` model there).
    Voyage,
}

/// A fault chosen for one request, with the wait its error answer advises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Injected {
    /// What goes wrong.
    pub fault: Fault,
    /// `Retry-After` seconds for `rate_limit`/`overloaded`; `None` = the dialect's default.
    pub retry_after_secs: Option<u64>,
}

impl From<Fault> for Injected {
    fn from(fault: Fault) -> Self {
        Self {
            fault,
            retry_after_secs: None,
        }
    }
}

/// One entry of the schedule, as posted to `/_sim/faults`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ScheduledFault {
    /// Only requests for this model (as the request names it); any model when absent.
    #[serde(default)]
    pub model: Option<String>,
    /// Only requests in this dialect; any dialect when absent.
    #[serde(default)]
    pub dialect: Option<DialectName>,
    /// The fault's snake_case name (`server_error`, `rate_limit`, `silent`, …).
    #[serde(deserialize_with = "fault_by_name")]
    pub fault: Fault,
    /// How many matching requests get it; 0 = every one until cleared.
    #[serde(default = "once")]
    pub times: u32,
    /// `Retry-After` seconds for `rate_limit` and `overloaded` answers.
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
}

fn once() -> u32 {
    1
}

fn fault_by_name<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Fault, D::Error> {
    let name = String::deserialize(deserializer)?;
    name.parse()
        .map_err(|_| serde::de::Error::custom(format!("unknown fault `{name}`")))
}

impl ScheduledFault {
    fn matches(&self, dialect: DialectName, model: Option<&str>) -> bool {
        self.dialect.is_none_or(|d| d == dialect)
            && self
                .model
                .as_deref()
                .is_none_or(|wanted| model == Some(wanted))
    }
}

/// Faults waiting for matching requests, in the order they were scheduled.
#[derive(Debug, Default)]
pub(crate) struct FaultSchedule {
    entries: Vec<ScheduledFault>,
}

impl FaultSchedule {
    /// Queues a fault behind the ones already scheduled.
    pub fn add(&mut self, fault: ScheduledFault) {
        self.entries.push(fault);
    }

    /// Forgets every scheduled fault.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Number of entries still waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The first fault matching the request, consumed once (entries with `times: 0` stay).
    pub fn take(&mut self, dialect: DialectName, model: Option<&str>) -> Option<Injected> {
        let pos = self
            .entries
            .iter()
            .position(|e| e.matches(dialect, model))?;
        let entry = &mut self.entries[pos];
        let injected = Injected {
            fault: entry.fault,
            retry_after_secs: entry.retry_after_secs,
        };
        match entry.times {
            0 => {}
            1 => {
                self.entries.remove(pos);
            }
            _ => entry.times -= 1,
        }
        Some(injected)
    }
}

/// `POST /_sim/faults`: schedules a fault; 201, or 400 for a body it cannot read.
pub(super) async fn schedule(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    match serde_json::from_slice::<ScheduledFault>(&body) {
        Ok(fault) => {
            let pending = {
                let mut schedule = sim.schedule();
                schedule.add(fault);
                schedule.len()
            };
            json_response(
                StatusCode::CREATED,
                json!({"scheduled": pending}).to_string(),
                &[],
            )
        }
        Err(err) => json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": err.to_string()}).to_string(),
            &[],
        ),
    }
}

/// `DELETE /_sim/faults`: clears the schedule; 204.
pub(super) async fn clear(State(sim): State<Arc<Sim>>) -> StatusCode {
    sim.schedule().clear();
    StatusCode::NO_CONTENT
}

/// `GET /_sim/stats`: provider requests received so far and streams still open.
pub(super) async fn stats(State(sim): State<Arc<Sim>>) -> Response {
    let body = json!({
        "requests": sim.stats.requests.load(Ordering::Relaxed),
        "openStreams": sim.stats.open_streams.load(Ordering::Relaxed),
    });
    json_response(StatusCode::OK, body.to_string(), &[])
}
