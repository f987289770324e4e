//! Budget leases: under load, one hold of an app server covers many answers.
//!
//! Every admitted answer of a project with a budget holds the most it can
//! cost, and a hold is a conditional update of the project's month row. That
//! row is hot: each opening and each settlement of the project updates it,
//! so their commits queue behind one another (on PostgreSQL each waits for a
//! WAL flush). When another answer of the project is already running on this
//! server and its month leaves plenty — at least [`LEASE_DIVISOR`] times a
//! lease — the server takes one hold of [`LEASE_ANSWERS`] times the answer's
//! reservation, a lease, through the same conditional update, and admits
//! the next answers against it in memory: an answer that draws on a lease
//! needs no commit to start (a chat answer's question is queued and stored
//! while it runs; its settlement reports whether it was).
//!
//! A lease admits for [`ADMITS_FOR`] at most, until what it has left cannot
//! cover an answer, or until the limit it was taken under changes. Once half
//! of it is drawn, the next lease is taken in the background while answers
//! still draw on this one: at 1,000 answers/s a lease lasts 64 ms, and the
//! answers arriving while each successor was taken (a commit, several ms
//! under that load) used to wait for it — about one answer in ten. What it
//! admitted never exceeds what it holds: an answer's reservation is drawn
//! and never given back, so its answers together cannot spend more than
//! per-answer holds would have let them. Once its last answer has ended the
//! keeper releases it (within [`KEEPER_TICK`]); a stopping server releases
//! its leases after its last answer; one that dies leaves them to the
//! sweeper of any other, like any hold.
//!
//! While a lease lives its month counts all of it as held, on top of what its
//! answers spent: the figures only err towards refusing, and only for a
//! moment. Near the limit no lease is taken, so per-answer holds share out
//! the last cents.

use crate::server::db::budgets::MonthKey;
use crate::server::ledger::{Ledger, Settlement};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Answers of the same reservation one lease covers.
pub const LEASE_ANSWERS: i64 = 64;
/// A lease is taken only when the month leaves at least this many leases.
pub const LEASE_DIVISOR: i64 = 8;
/// How long a lease admits answers after it was taken.
pub const ADMITS_FOR: Duration = Duration::from_secs(1);
/// How often the keeper releases the leases whose answers have all ended.
const KEEPER_TICK: Duration = Duration::from_millis(250);

/// The leases of one app server, and its running answers per project month.
#[derive(Debug, Default)]
pub struct Leases {
    months: Mutex<HashMap<MonthKey, MonthLeases>>,
    /// Successors being taken in the background: a stopping server waits
    /// for them before it releases its leases.
    renewals: TaskTracker,
}

/// One project month's answers and leases on this server.
#[derive(Debug, Default)]
struct MonthLeases {
    /// Answers admitted and not yet ended.
    running: usize,
    /// The lease answers draw on, if one is admitting.
    current: Option<Lease>,
    /// Leases that stopped admitting, until their last answer ends.
    retired: Vec<Lease>,
    /// Held by whoever takes a new lease, so that answers arriving
    /// meanwhile wait for it instead of taking leases of their own.
    taking: Arc<tokio::sync::Mutex<()>>,
    /// A successor of the current lease is being taken.
    renewing: bool,
}

#[derive(Debug)]
struct Lease {
    /// The hold in the database.
    hold_id: String,
    /// The limit it was taken under: another one ends its admitting.
    limit_nanos: i64,
    taken_at: Instant,
    /// What it held when taken, nano-dollars.
    size: i64,
    /// What it can still admit, nano-dollars.
    left: i64,
    /// Its answers not yet ended.
    running: usize,
}

impl Lease {
    fn admits(&self, limit_nanos: i64, now: Instant) -> bool {
        self.limit_nanos == limit_nanos && now.duration_since(self.taken_at) < ADMITS_FOR
    }
}

/// An admitted answer running on this server, and the lease it drew on if
/// any: counted until the ticket is dropped (when its admission is).
#[derive(Debug)]
pub struct Ticket {
    leases: Arc<Leases>,
    key: MonthKey,
    lease: Option<String>,
}

impl Ticket {
    /// Whether the answer was admitted against a lease (it holds nothing of
    /// its own then).
    pub fn leased(&self) -> bool {
        self.lease.is_some()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut months = self.leases.lock();
        let Some(month) = months.get_mut(&self.key) else {
            return;
        };
        month.running = month.running.saturating_sub(1);
        if let Some(hold_id) = &self.lease {
            let lease = month
                .current
                .iter_mut()
                .chain(month.retired.iter_mut())
                .find(|lease| &lease.hold_id == hold_id);
            if let Some(lease) = lease {
                lease.running = lease.running.saturating_sub(1);
            }
        }
        if month.running == 0 && month.current.is_none() && month.retired.is_empty() {
            months.remove(&self.key);
        }
    }
}

impl Leases {
    fn lock(&self) -> MutexGuard<'_, HashMap<MonthKey, MonthLeases>> {
        self.months.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an answer of `key` as running until the ticket drops; answers
    /// whether another answer of it was running already.
    pub fn enter(self: &Arc<Self>, key: MonthKey) -> (Ticket, bool) {
        let busy = {
            let mut months = self.lock();
            let month = months.entry(key.clone()).or_default();
            month.running += 1;
            month.running > 1
        };
        let ticket = Ticket {
            leases: self.clone(),
            key,
            lease: None,
        };
        (ticket, busy)
    }

    /// Draws `reserve_nanos` from the month's lease, if one admits under
    /// `limit_nanos` and has that much left; a lease that cannot admit any
    /// more is retired. Answers whether the ticket now draws on a lease.
    pub fn draw(&self, ticket: &mut Ticket, limit_nanos: i64, reserve_nanos: i64) -> bool {
        let mut months = self.lock();
        let Some(month) = months.get_mut(&ticket.key) else {
            return false;
        };
        let now = Instant::now();
        if let Some(lease) = month.current.as_mut() {
            if lease.admits(limit_nanos, now) && lease.left >= reserve_nanos {
                lease.left -= reserve_nanos;
                lease.running += 1;
                ticket.lease = Some(lease.hold_id.clone());
                return true;
            }
        }
        if let Some(lease) = month.current.take() {
            month.retired.push(lease);
        }
        false
    }

    /// The lock a new lease is taken under (see [`MonthLeases::taking`]).
    pub fn taking(&self, key: &MonthKey) -> Arc<tokio::sync::Mutex<()>> {
        self.lock().entry(key.clone()).or_default().taking.clone()
    }

    /// Whether the month's lease, under `limit_nanos`, is half drawn and no
    /// successor is being taken yet; if so the caller is to take one (see
    /// [`Leases::renew`]), and no one else is told to.
    pub fn wants_successor(&self, key: &MonthKey, limit_nanos: i64) -> bool {
        let mut months = self.lock();
        let Some(month) = months.get_mut(key) else {
            return false;
        };
        let half_drawn = month
            .current
            .as_ref()
            .is_some_and(|lease| lease.limit_nanos == limit_nanos && lease.left < lease.size / 2);
        if half_drawn && !month.renewing {
            month.renewing = true;
            return true;
        }
        false
    }

    /// Takes a successor lease in the background with `take` (the hold's
    /// opening: whether it fitted, and the lease it made) and makes it the
    /// month's lease; answers draw on the old one meanwhile.
    pub fn renew<F>(self: &Arc<Self>, key: MonthKey, take: F)
    where
        F: std::future::Future<Output = Option<(String, i64, i64)>> + Send + 'static,
    {
        let leases = self.clone();
        self.renewals.spawn(async move {
            let taking = leases.taking(&key);
            let _taking = taking.lock().await;
            let taken = take.await;
            let mut months = leases.lock();
            let month = months.entry(key).or_default();
            month.renewing = false;
            if let Some((hold_id, limit_nanos, lease_nanos)) = taken {
                month.retired.extend(month.current.take());
                month.current = Some(Lease {
                    hold_id,
                    limit_nanos,
                    taken_at: Instant::now(),
                    size: lease_nanos,
                    left: lease_nanos,
                    running: 0,
                });
            }
        });
    }

    /// Makes the hold `hold_id` of `lease_nanos`, just taken under
    /// `limit_nanos`, the month's lease, and draws the ticket's
    /// `reserve_nanos` from it.
    pub fn install(
        &self,
        ticket: &mut Ticket,
        hold_id: String,
        limit_nanos: i64,
        lease_nanos: i64,
        reserve_nanos: i64,
    ) {
        let mut months = self.lock();
        let month = months.entry(ticket.key.clone()).or_default();
        if let Some(old) = month.current.take() {
            month.retired.push(old);
        }
        ticket.lease = Some(hold_id.clone());
        month.current = Some(Lease {
            hold_id,
            limit_nanos,
            taken_at: Instant::now(),
            size: lease_nanos,
            left: lease_nanos - reserve_nanos,
            running: 1,
        });
    }

    /// Takes out the leases no answer runs on any more, once they stopped
    /// admitting (all of them when `all`): the holds to release.
    fn idle(&self, all: bool) -> Vec<String> {
        let now = Instant::now();
        let mut months = self.lock();
        let mut idle = Vec::new();
        months.retain(|_, month| {
            let expired = month
                .current
                .as_ref()
                .is_some_and(|lease| all || now.duration_since(lease.taken_at) >= ADMITS_FOR);
            if expired {
                month.retired.extend(month.current.take());
            }
            month.retired.retain(|lease| {
                let done = lease.running == 0;
                if done {
                    idle.push(lease.hold_id.clone());
                }
                !done
            });
            month.running > 0 || month.current.is_some() || !month.retired.is_empty()
        });
        idle
    }

    /// Releases the leases no answer runs on any more (all of them when
    /// `all`: a stopping server's, after its last answer and its last
    /// successor's take), each in a settlement through the ledger. A failed
    /// release is left to the sweeper.
    pub async fn release_idle(&self, ledger: &Ledger, all: bool) {
        if all {
            self.renewals.close();
            self.renewals.wait().await;
        }
        let releases = self.idle(all).into_iter().map(|hold_id| async move {
            let settlement = Settlement {
                hold_id: Some(hold_id),
                ..Settlement::default()
            };
            if let Err(error) = ledger.settle(settlement).await {
                tracing::warn!(%error, "releasing a budget lease failed; the sweeper will");
            }
        });
        futures::future::join_all(releases).await;
    }
}

/// Releases idle leases every [`KEEPER_TICK`] until `stopping`.
pub fn spawn_keeper(leases: Arc<Leases>, ledger: Ledger, stopping: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = stopping.cancelled() => return,
                () = tokio::time::sleep(KEEPER_TICK) => {}
            }
            leases.release_idle(&ledger, false).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MonthKey {
        ("project".to_owned(), "2026-12".to_owned())
    }

    #[test]
    fn a_lease_admits_what_it_holds_and_no_more() {
        let leases = Arc::new(Leases::default());
        let (mut first, busy) = leases.enter(key());
        assert!(!busy, "the first answer runs alone");
        assert!(!leases.draw(&mut first, 1_000, 10), "no lease yet");
        leases.install(&mut first, "lease".into(), 1_000, 30, 10);
        let (mut second, busy) = leases.enter(key());
        assert!(busy);
        assert!(leases.draw(&mut second, 1_000, 10));
        let (mut third, _) = leases.enter(key());
        assert!(leases.draw(&mut third, 1_000, 10), "30 held, 30 drawn");
        let (mut fourth, _) = leases.enter(key());
        assert!(!leases.draw(&mut fourth, 1_000, 10), "nothing left");
        assert!(first.leased() && third.leased() && !fourth.leased());
        drop((first, second));
        assert!(leases.idle(false).is_empty(), "an answer still runs on it");
        drop(third);
        assert_eq!(leases.idle(false), ["lease"], "retired and idle");
        drop(fourth);
        assert!(
            leases.lock().is_empty(),
            "nothing is kept for a quiet month"
        );
    }

    #[test]
    fn another_limit_retires_the_lease() {
        let leases = Arc::new(Leases::default());
        let (mut first, _) = leases.enter(key());
        leases.install(&mut first, "lease".into(), 1_000, 100, 10);
        let (mut second, _) = leases.enter(key());
        assert!(!leases.draw(&mut second, 2_000, 10), "the limit changed");
        assert!(leases.idle(false).is_empty(), "its first answer still runs");
        drop(first);
        assert_eq!(leases.idle(false), ["lease"]);
    }

    #[tokio::test]
    async fn a_half_drawn_lease_gets_one_successor_while_answers_still_draw_on_it() {
        let leases = Arc::new(Leases::default());
        let (mut first, _) = leases.enter(key());
        leases.install(&mut first, "lease".into(), 1_000, 40, 10);
        assert!(!leases.wants_successor(&key(), 1_000), "a quarter drawn");
        let (mut second, _) = leases.enter(key());
        assert!(leases.draw(&mut second, 1_000, 10));
        assert!(!leases.wants_successor(&key(), 2_000), "another limit");
        let (mut third, _) = leases.enter(key());
        assert!(leases.draw(&mut third, 1_000, 10));
        assert!(
            leases.wants_successor(&key(), 1_000),
            "three quarters drawn"
        );
        assert!(
            !leases.wants_successor(&key(), 1_000),
            "one successor at a time"
        );
        let (taken, take) = tokio::sync::oneshot::channel::<()>();
        leases.renew(key(), async move {
            take.await.ok()?;
            Some(("next".to_owned(), 1_000, 40))
        });
        let (mut fourth, _) = leases.enter(key());
        assert!(
            leases.draw(&mut fourth, 1_000, 10),
            "the old lease still admits"
        );
        assert_eq!(fourth.lease.as_deref(), Some("lease"));
        taken.send(()).unwrap();
        // Closed and awaited as a stopping server does.
        leases.renewals.close();
        leases.renewals.wait().await;
        let (mut fifth, _) = leases.enter(key());
        assert!(leases.draw(&mut fifth, 1_000, 10));
        assert_eq!(fifth.lease.as_deref(), Some("next"), "the successor admits");
        drop((first, second, third, fourth));
        assert_eq!(leases.idle(false), ["lease"], "the old one, once idle");
        drop(fifth);
        assert_eq!(leases.idle(true), ["next"]);
    }

    #[tokio::test]
    async fn a_successor_that_does_not_fit_leaves_the_old_lease_to_admit() {
        let leases = Arc::new(Leases::default());
        let (mut first, _) = leases.enter(key());
        leases.install(&mut first, "lease".into(), 1_000, 20, 15);
        assert!(leases.wants_successor(&key(), 1_000));
        leases.renew(key(), async { None });
        leases.renewals.close();
        leases.renewals.wait().await;
        assert!(
            leases.wants_successor(&key(), 1_000),
            "a failed take may be tried again"
        );
        let (mut second, _) = leases.enter(key());
        assert!(leases.draw(&mut second, 1_000, 5));
        assert_eq!(second.lease.as_deref(), Some("lease"));
    }

    #[test]
    fn a_stopping_server_releases_its_admitting_lease_once_idle() {
        let leases = Arc::new(Leases::default());
        let (mut first, _) = leases.enter(key());
        leases.install(&mut first, "lease".into(), 1_000, 100, 10);
        drop(first);
        assert!(leases.idle(false).is_empty(), "still admitting");
        assert_eq!(leases.idle(true), ["lease"]);
        assert!(leases.idle(true).is_empty(), "released once");
    }
}
