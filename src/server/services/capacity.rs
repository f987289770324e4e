//! How many answers run at once on this app server, and per project. An
//! answer takes a slot before any work is done (no read, no write, no
//! provider call); beyond the bounds it waits in line, first come first
//! served, up to the queue deadline, and past it is refused — `429` when its
//! project has too many answers running, `503` when the server does — with
//! `Retry-After`. So a burst is queued or refused whole, never half done, and
//! the database pool sees a bounded number of answers at once instead of
//! timing out under them.

use crate::error::AppError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The bounds (`COVER_MAX_ANSWERS_IN_FLIGHT`, `COVER_MAX_ANSWERS_PER_PROJECT`,
/// `COVER_ANSWER_QUEUE_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapacityLimits {
    /// Answers running at once on this server.
    pub in_flight: usize,
    /// Answers running at once for one project on this server.
    pub per_project: usize,
    /// The longest an answer waits in line for a slot.
    pub queue_deadline: Duration,
}

impl Default for CapacityLimits {
    fn default() -> Self {
        CapacityLimits {
            in_flight: 1024,
            per_project: 256,
            queue_deadline: Duration::from_secs(10),
        }
    }
}

/// Seconds a refused caller is told to wait before trying again.
const RETRY_AFTER_SECS: u64 = 1;

/// The slots of one app server.
#[derive(Debug)]
pub struct AnswerSlots {
    limits: CapacityLimits,
    server: Arc<Semaphore>,
    projects: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// A running answer's place: held until the answer ends (dropped with it).
#[derive(Debug)]
pub struct AnswerSlot {
    _server: OwnedSemaphorePermit,
    _project: ProjectSlot,
}

/// The project part of a slot; forgets the project's line when it is the last.
#[derive(Debug)]
struct ProjectSlot {
    project_id: String,
    permit: Option<OwnedSemaphorePermit>,
    projects: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl Drop for ProjectSlot {
    fn drop(&mut self) {
        let mut projects = self.projects.lock().unwrap_or_else(|e| e.into_inner());
        drop(self.permit.take());
        // The map's own reference is the only one left: nobody runs or waits.
        if projects
            .get(&self.project_id)
            .is_some_and(|line| Arc::strong_count(line) == 1)
        {
            projects.remove(&self.project_id);
        }
    }
}

impl AnswerSlots {
    /// Slots for `limits`.
    pub fn new(limits: CapacityLimits) -> AnswerSlots {
        AnswerSlots {
            limits,
            server: Arc::new(Semaphore::new(limits.in_flight.max(1))),
            projects: Arc::default(),
        }
    }

    /// Answers running on this server now.
    pub fn in_flight(&self) -> usize {
        self.limits.in_flight.max(1) - self.server.available_permits()
    }

    /// Waits for a slot for an answer of `project_id`, up to the queue
    /// deadline; `429` (the project's bound) or `503` (the server's) past it.
    pub async fn take(&self, project_id: &str) -> Result<AnswerSlot, AppError> {
        let deadline = Instant::now() + self.limits.queue_deadline;
        let line = {
            let mut projects = self.projects.lock().unwrap_or_else(|e| e.into_inner());
            projects
                .entry(project_id.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.limits.per_project.max(1))))
                .clone()
        };
        // The slot owns the project's line from here, so an answer that gives
        // up waiting still lets the line be forgotten.
        let mut project = ProjectSlot {
            project_id: project_id.to_owned(),
            permit: None,
            projects: self.projects.clone(),
        };
        let permit = tokio::time::timeout_at(deadline, line.acquire_owned()).await;
        match permit {
            Ok(Ok(permit)) => project.permit = Some(permit),
            _ => {
                return Err(AppError::TooManyRequests {
                    message: format!(
                        "this project already has {} answers running; try again shortly",
                        self.limits.per_project
                    ),
                    retry_after_secs: RETRY_AFTER_SECS,
                })
            }
        }
        match tokio::time::timeout_at(deadline, self.server.clone().acquire_owned()).await {
            Ok(Ok(server)) => Ok(AnswerSlot {
                _server: server,
                _project: project,
            }),
            _ => Err(AppError::Busy {
                message: "the server is answering as many questions as it can; try again shortly"
                    .into(),
                retry_after_secs: RETRY_AFTER_SECS,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(in_flight: usize, per_project: usize) -> AnswerSlots {
        AnswerSlots::new(CapacityLimits {
            in_flight,
            per_project,
            queue_deadline: Duration::from_millis(200),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_project_bound_an_answer_waits_then_is_refused_with_429() {
        let slots = slots(10, 1);
        let first = slots.take("p").await.expect("a free slot");
        let started = Instant::now();
        let refused = slots.take("p").await.expect_err("the project is full");
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(200),
            "it waited the deadline"
        );
        assert_eq!(refused.status(), 429);
        let other = slots
            .take("q")
            .await
            .expect("another project is not held up");
        assert_eq!(slots.in_flight(), 2);
        drop((first, other));
        assert_eq!(slots.in_flight(), 0);
        assert!(
            slots.projects.lock().unwrap().is_empty(),
            "idle lines are forgotten"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_server_bound_an_answer_is_refused_with_503_and_retry_after() {
        let slots = slots(1, 10);
        let _first = slots.take("p").await.expect("a free slot");
        let refused = slots.take("q").await.expect_err("the server is full");
        assert_eq!(refused.status(), 503);
        assert_eq!(refused.retry_after(), Some(RETRY_AFTER_SECS));
        assert_eq!(slots.in_flight(), 1, "the refused answer holds nothing");
        assert_eq!(
            slots.projects.lock().unwrap().len(),
            1,
            "only p's line is left"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_answer_gets_the_slot_an_ending_answer_frees() {
        let slots = Arc::new(slots(1, 10));
        let first = slots.take("p").await.expect("a free slot");
        let waiting = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.take("q").await.map(drop) })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(first);
        waiting.await.unwrap().expect("served within the deadline");
    }
}
