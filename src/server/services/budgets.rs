//! Monthly budgets per project (FR-007): a limit in exact nano-dollars, atomic
//! admission of every answer, alerts at 50, 80 and 100 %.
//!
//! ```text
//! prepare ─► admit: the ladder picks a plan; a hold on its maximum cost is taken with one
//!               conditional upsert of the month (through the ledger's writer)
//!               full chain ─► cheapest model of the chain ─► shorter answer (≥ 256 tokens) ─► 402
//! attempts ─► each ledger row adds its cost to its month, in the transaction that stores it
//! finish  ─► the settlement releases the hold, in the commit that stores the answer's ending
//!               ─► alerts the month reached (each once: a conditional UPDATE) ─► notification + webhook
//! ```
//!
//! What the budget counted is therefore exactly the ledger's sum: the spend
//! is added by the rows themselves, idempotently. Holds of an app server that
//! died are released by the sweeper of any other (`services::recovery`).
//!
//! An answer reserves the most it can cost: its prompt (counted, or estimated
//! with a margin) at the model's input price plus its max tokens at the output
//! price. Reservations and settlements are single conditional statements, so
//! answers running at once on any number of app servers cannot together spend
//! past the limit by more than one answer's estimation error. Free models
//! (self-hosted, price 0) reserve nothing and always answer. A project without
//! a budget reserves nothing, but its spend is still counted, so a budget set
//! mid-month starts from the real figure.
//!
//! The plan may come from a copy of the month at most a second old
//! (`hot_reads`): it can only let an answer try the hold, which the database
//! grants or refuses; a step down the ladder or a refusal is decided on
//! figures read afresh. A budget saved here is forgotten at once; one set on
//! another app server is seen within that second.

use crate::error::AppError;
use crate::model::catalog::ModelInfo;
use crate::model::chat::{FallbackNotice, TokenUsage};
use crate::model::costs::{BudgetState, BudgetStatus, Notification};
use crate::model::llm_config::KeySource;
use crate::model::money::{format_decimal, format_usd, parse_usd_nanos, NANOS_PER_USD};
use crate::model::parameters::{ModelLimits, Parameters};
use crate::model::pricing::cost_of;
use crate::server::db::budgets::{
    self as db, BudgetFigures, BudgetRow, HoldRequest, HoldRow, MonthKey, MonthRow,
    NotificationRow, Threshold, WorkspaceMonthRow,
};
use crate::server::db::conversations::Exchange;
use crate::server::db::{now_ms, rfc3339};
use crate::server::error::Result;
use crate::server::ledger::{Ledger, Opening, QueuedOpening, Settlement};
use crate::server::llm::router::Route;
use crate::server::llm::tokens::{count_request_tokens, estimate_text_tokens};
use crate::server::llm::{GenerateRequest, TokenCount};
use crate::server::outbound::{guarded_client_builder, AddressPolicy};
use crate::server::services::metering::MeteredSink;
use crate::server::services::{llm_settings, routing};
use crate::server::state::AppState;
use std::sync::Arc;
use std::time::Duration;

pub mod leases;
use leases::{Ticket, LEASE_ANSWERS, LEASE_DIVISOR};

/// The shortest answer the ladder caps to; below it the answer is refused.
pub const CAPPED_TOKENS_FLOOR: u32 = 256;
/// The largest monthly limit accepted ($10 million): sums stay far from overflow.
const MAX_LIMIT_NANOS: i64 = 10_000_000 * NANOS_PER_USD;
/// An estimated prompt count is raised by 1/10 (10 %), as estimates can fall short.
const ESTIMATE_MARGIN_DIVISOR: u64 = 10;
/// Conversation tokens the status assumes besides the system prompt.
const TYPICAL_QUESTION_TOKENS: u64 = 500;
/// Reservations tried before a refusal, when running answers change the figures in between.
const ADMISSION_TRIES: usize = 3;
/// Notifications listed.
const NOTIFICATIONS_SHOWN: i64 = 100;
/// Longest webhook URL accepted.
const MAX_WEBHOOK_CHARS: usize = 2_000;
/// Deliveries of one alert to its webhook before giving up.
const WEBHOOK_ATTEMPTS: u32 = 4;
/// Wait before the second delivery; doubled before each later one.
const WEBHOOK_BACKOFF: Duration = Duration::from_millis(250);
/// Time limit of one delivery.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// How every budget notice starts.
const NEARLY_USED_UP: &str = "The monthly budget is nearly used up";

/// Sets the monthly budget, or removes it when `limit_usd` is empty (its
/// webhook goes with it). `limit_usd` is an exact dollar amount ("250",
/// "99.50"); `webhook_url` an `http(s)://` URL or empty.
pub async fn save(
    state: &AppState,
    project_id: &str,
    limit_usd: &str,
    webhook_url: &str,
) -> Result<BudgetStatus> {
    let limit_nanos = parse_limit(limit_usd)?;
    let webhook_url = parse_webhook(webhook_url)?;
    if let Some(url) = &webhook_url {
        state
            .outbound
            .check_url(url)
            .map_err(|refusal| AppError::invalid("webhookUrl", refusal.to_string()))?;
    }
    let pool = &state.db.writer;
    match limit_nanos {
        None => db::remove(pool, project_id).await?,
        Some(limit_nanos) => {
            let budget = BudgetRow {
                project_id: project_id.to_owned(),
                limit_nanos,
                webhook_url,
            };
            db::save(pool, &budget, now_ms()).await?;
        }
    }
    state
        .hot
        .budgets
        .forget_where(|(project, _), _| project == project_id);
    status(state, project_id).await
}

/// Where the project's budget stands this month. `state` is what the ladder
/// would do now with the current configuration and a typical question (the
/// system prompt plus 500 tokens).
pub async fn status(state: &AppState, project_id: &str) -> Result<BudgetStatus> {
    let (_, draft) = llm_settings::current(state, project_id).await?;
    let on_managed_keys =
        draft.key_source == KeySource::Managed && state.managed_keys.get(draft.provider).is_some();
    let limits = budget_of(
        state,
        project_id,
        &current_month(),
        on_managed_keys,
        Read::Fresh,
    )
    .await?;
    let ladder = match &limits {
        Some(limits) => ladder_now(state, project_id, limits.left()).await?,
        None => BudgetState::Ok,
    };
    let Some(limits) = limits else {
        return Ok(BudgetStatus {
            limit_nanos: None,
            workspace_default: false,
            spent_nanos: 0,
            workspace_cap_left_nanos: None,
            webhook_url: None,
            alerts_fired: Vec::new(),
            state: ladder,
        });
    };
    let month = limits.month;
    Ok(BudgetStatus {
        limit_nanos: Some(limits.budget.limit_nanos),
        workspace_default: limits.workspace_default,
        spent_nanos: month.spent_nanos + month.reserved_nanos,
        workspace_cap_left_nanos: limits.cap.map(|cap| cap.left()),
        webhook_url: limits.budget.webhook_url,
        alerts_fired: Threshold::ALL
            .into_iter()
            .filter(|t| month.fired(*t))
            .map(Threshold::percent)
            .collect(),
        state: ladder,
    })
}

/// The project's notifications (the latest 100), newest first.
pub async fn notifications(state: &AppState, project_id: &str) -> Result<Vec<Notification>> {
    let rows = db::notifications(&state.db.pool, project_id, NOTIFICATIONS_SHOWN).await?;
    Ok(rows
        .into_iter()
        .map(|row| Notification {
            id: row.notification_id,
            kind: row.kind,
            message: row.message,
            created_at: rfc3339(row.created_at),
            read: row.read_at.is_some(),
        })
        .collect())
}

/// Marks the project's notifications read.
pub async fn mark_read(state: &AppState, project_id: &str) -> Result<()> {
    db::mark_read(&state.db.writer, project_id, now_ms()).await
}

/// What the budget allowed one answer: the hold it keeps until the answer's
/// settlement releases it, and the notice shown when the budget changed the
/// answer's model or length.
#[derive(Debug)]
pub struct Admission {
    project_id: String,
    /// The month the answer counts in (`YYYY-MM`, UTC, when it started).
    month: String,
    /// The project's budget when the answer was admitted (`None`: no budget).
    budget: Option<BudgetRow>,
    /// The hold taken, if the answer reserves anything of its own.
    hold_id: Option<String>,
    /// The answer counted as running on this server (with a budget), and
    /// the lease it drew on instead of a hold, if any: kept for its drop,
    /// which counts the answer as ended.
    _running: Option<Arc<Ticket>>,
    /// The least any answer of this chain reserves: when the month leaves
    /// less, the budget is used up (the 100 % alert).
    smallest_nanos: i64,
    notice: Option<FallbackNotice>,
    /// The question, queued to be stored while the answer runs (an answer
    /// that holds nothing of its own), until the settlement takes it.
    opening: Option<QueuedOpening>,
}

impl Admission {
    /// The notice for the conversation when the budget changed the answer.
    pub fn notice(&self) -> Option<&FallbackNotice> {
        self.notice.as_ref()
    }

    /// What the settlement of the call `sink` metered releases and reports
    /// back: its hold, (for projects with a budget) its month, whose figures
    /// drive the alerts, how its attempts went, and whether its question
    /// was stored.
    pub fn settlement(&mut self, sink: &MeteredSink) -> Settlement {
        Settlement {
            answer: None,
            request: sink.request_tally(),
            hold_id: self.hold_id.clone(),
            month: self
                .budget
                .as_ref()
                .map(|_| (self.project_id.clone(), self.month.clone())),
            opening: self.opening.take(),
        }
    }
}

/// Admits an answer before any provider is called, and stores its
/// `exchange` (the question with its pending answer) — in the commit of its
/// hold, or, holding nothing of its own, queued while the answer runs and
/// reported by its settlement. Without a budget as it is; with one, holds
/// the most it can cost, stepping down the ladder (cheapest model of the
/// chain, then a shorter answer) when that does not fit. `route` is narrowed to what was admitted. 402 when
/// nothing fits (and nothing is stored).
pub async fn admit(
    state: &AppState,
    project_id: &str,
    route: &mut Route,
    exchange: Option<Exchange>,
) -> Result<Admission> {
    let on_managed_keys = route.targets.iter().any(|target| target.managed_key);
    let prompts = prompt_tokens(route);
    let candidates: Vec<Candidate> = route
        .targets
        .iter()
        .zip(prompts)
        .map(|(target, prompt_tokens)| Candidate {
            model: state.catalog.model(&target.model),
            prompt_tokens,
            max_tokens: answer_limit(&target.parameters, target.limits),
            shortenable: true,
        })
        .collect();
    let (admission, plan) = admit_candidates(
        state,
        project_id,
        &candidates,
        on_managed_keys,
        exchange.map(Arc::new),
    )
    .await?;
    if let Some(plan) = plan {
        narrow(route, &plan);
    }
    Ok(admission)
}

/// Admits a single call whose whole cost is known before it starts: texts
/// of `input_tokens` (counted with the model's own vocabulary where `exact`,
/// else raised by the estimate's margin) and exactly `output_tokens` out —
/// none for embeddings, a picture's fixed tokens for an image. The same gate
/// as answers, holding the call's whole cost (there is no output to
/// shorten). 402 when it does not fit. An `exchange` (a question asked in a
/// conversation) is stored as [`admit`] stores it.
pub async fn admit_whole_call(
    state: &AppState,
    project_id: &str,
    model: &ModelInfo,
    input_tokens: TokenCount,
    output_tokens: u32,
    managed_key: bool,
    exchange: Option<Exchange>,
) -> Result<Admission> {
    let prompt_tokens = if input_tokens.exact {
        input_tokens.tokens
    } else {
        input_tokens.tokens + input_tokens.tokens.div_ceil(ESTIMATE_MARGIN_DIVISOR)
    };
    let candidate = Candidate {
        model: Some(model),
        prompt_tokens,
        max_tokens: output_tokens,
        shortenable: false,
    };
    let exchange = exchange.map(Arc::new);
    let (admission, _) =
        admit_candidates(state, project_id, &[candidate], managed_key, exchange).await?;
    Ok(admission)
}

/// The gate itself, for any spending call: its candidates (the models it
/// may use, with their prompts and longest outputs) and whether it spends
/// Cover's managed keys. Answers the admission and, when a budget applies,
/// the plan the ladder chose.
async fn admit_candidates(
    state: &AppState,
    project_id: &str,
    candidates: &[Candidate<'_>],
    on_managed_keys: bool,
    exchange: Option<Arc<Exchange>>,
) -> Result<(Admission, Option<Plan>)> {
    let mut admission = Admission {
        project_id: project_id.to_owned(),
        month: current_month(),
        budget: None,
        hold_id: None,
        _running: None,
        smallest_nanos: 0,
        notice: None,
        opening: None,
    };
    let Some(mut limits) = budget_of(
        state,
        project_id,
        &admission.month,
        on_managed_keys,
        Read::Copy,
    )
    .await?
    else {
        // No limit: nothing to hold, only a question to store, if any.
        admission.opening = queue_exchange(state, exchange).await?;
        return Ok((admission, None));
    };
    admission.smallest_nanos = smallest_reservation(candidates);
    let key = (project_id.to_owned(), admission.month.clone());
    let (mut ticket, busy) = state.leases.enter(key.clone());
    let whole_chain =
        plan(candidates, limits.left()).filter(|plan| plan.is_whole_chain(candidates.len()));
    if let Some(plan) = whole_chain {
        let lease = drawn_on_lease(
            state,
            &key,
            &mut ticket,
            busy,
            &limits,
            &plan,
            exchange.clone(),
        )
        .await?;
        if lease != OnLease::No {
            if lease == OnLease::Drawn {
                admission.opening = queue_exchange(state, exchange).await?;
            }
            admission._running = Some(Arc::new(ticket));
            admission.notice = budget_notice(candidates, &plan);
            admission.budget = Some(limits.budget);
            return Ok((admission, Some(plan)));
        }
    }
    admission._running = Some(Arc::new(ticket));
    // The first plan may come from a copy of the figures; anything but the
    // whole chain (a step down the ladder, a refusal) and every try after a
    // hold that did not fit is decided on figures read afresh.
    let mut fresh = false;
    let mut tries = 0;
    while tries < ADMISSION_TRIES {
        let planned = plan(candidates, limits.left());
        let whole = planned
            .as_ref()
            .is_some_and(|plan| plan.is_whole_chain(candidates.len()));
        if !fresh && !whole {
            limits =
                fresh_limits(state, project_id, &admission.month, on_managed_keys, limits).await?;
            fresh = true;
            continue;
        }
        let Some(plan) = planned else {
            break;
        };
        tries += 1;
        let hold = (plan.reserve_nanos > 0).then(|| HoldRequest {
            hold: HoldRow {
                hold_id: uuid::Uuid::new_v4().to_string(),
                project_id: project_id.to_owned(),
                month: admission.month.clone(),
                reserved_nanos: plan.reserve_nanos,
                workspace_nanos: if limits.cap.is_some() {
                    plan.reserve_nanos
                } else {
                    0
                },
                created_at: now_ms(),
            },
            limit_nanos: limits.budget.limit_nanos,
            cap_nanos: limits.cap.map_or(0, |cap| cap.cap_nanos),
        });
        let hold_id = hold.as_ref().map(|request| request.hold.hold_id.clone());
        let opening = Opening {
            hold,
            exchange: exchange.clone(),
        };
        if state.ledger.open(opening).await? {
            if hold_id.is_some() {
                state.metrics.admitted("own");
            }
            admission.hold_id = hold_id;
            admission.notice = budget_notice(candidates, &plan);
            admission.budget = Some(limits.budget);
            return Ok((admission, Some(plan)));
        }
        // Running answers changed the months since they were read.
        limits = fresh_limits(state, project_id, &admission.month, on_managed_keys, limits).await?;
        fresh = true;
    }
    Err(AppError::BudgetExceeded {
        message: limits.refusal(&admission.month),
    }
    .into())
}

/// How an answer was admitted on its month's lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnLease {
    /// It took a new lease, whose commit stored its question too.
    Took,
    /// It drew on the lease admitting: its question is still to store.
    Drawn,
    /// It is to take a hold of its own (nothing was stored).
    No,
}

/// Admits an answer on the month's lease ([`leases`]): draws on the one
/// admitting, or — when another answer of the project is running here and
/// the month leaves room for [`LEASE_DIVISOR`] leases — takes a new one of
/// [`LEASE_ANSWERS`] times this reservation, storing the `exchange` with it.
/// Only for a `plan` of the whole chain, on the project's own budget,
/// without the workspace's cap (whose holds every project shares).
async fn drawn_on_lease(
    state: &AppState,
    key: &MonthKey,
    ticket: &mut Ticket,
    busy: bool,
    limits: &Limits,
    plan: &Plan,
    exchange: Option<Arc<Exchange>>,
) -> Result<OnLease> {
    let reserve = plan.reserve_nanos;
    let limit = limits.budget.limit_nanos;
    if reserve <= 0 || limits.cap.is_some() {
        return Ok(OnLease::No);
    }
    let lease_nanos = reserve.saturating_mul(LEASE_ANSWERS);
    let mut drawn = state.leases.draw(ticket, limit, reserve);
    if !drawn && busy && limits.left() / LEASE_DIVISOR >= lease_nanos {
        // One answer at a time takes a month's lease; those that waited
        // for it draw on it.
        let taking = state.leases.taking(key);
        let _taking = taking.lock().await;
        drawn = state.leases.draw(ticket, limit, reserve);
        if !drawn {
            let hold = lease_hold(key, limit, lease_nanos);
            let hold_id = hold.hold.hold_id.clone();
            let opening = Opening {
                hold: Some(hold),
                exchange,
            };
            if !state.ledger.open(opening).await? {
                return Ok(OnLease::No);
            }
            state
                .leases
                .install(ticket, hold_id, limit, lease_nanos, reserve);
            state.metrics.admitted("new_lease");
            return Ok(OnLease::Took);
        }
    }
    if !drawn {
        return Ok(OnLease::No);
    }
    state.metrics.admitted("lease");
    if limits.left() / LEASE_DIVISOR >= lease_nanos && state.leases.wants_successor(key, limit) {
        state.leases.renew(
            key.clone(),
            take_lease(state.ledger.clone(), key.clone(), limit, lease_nanos),
        );
    }
    Ok(OnLease::Drawn)
}

/// Takes a lease of `lease_nanos` for `key`'s month under `limit_nanos`, with
/// no question: the hold's id, the limit and the size once it fitted.
async fn take_lease(
    ledger: Ledger,
    key: MonthKey,
    limit_nanos: i64,
    lease_nanos: i64,
) -> Option<(String, i64, i64)> {
    let hold = lease_hold(&key, limit_nanos, lease_nanos);
    let hold_id = hold.hold.hold_id.clone();
    let opening = Opening {
        hold: Some(hold),
        exchange: None,
    };
    match ledger.open(opening).await {
        Ok(true) => Some((hold_id, limit_nanos, lease_nanos)),
        Ok(false) => None,
        Err(error) => {
            tracing::warn!(%error, "taking a budget lease failed");
            None
        }
    }
}

/// The hold of a lease of `lease_nanos` for `key`'s month under `limit_nanos`.
fn lease_hold(key: &MonthKey, limit_nanos: i64, lease_nanos: i64) -> HoldRequest {
    HoldRequest {
        hold: HoldRow {
            hold_id: uuid::Uuid::new_v4().to_string(),
            project_id: key.0.clone(),
            month: key.1.clone(),
            reserved_nanos: lease_nanos,
            workspace_nanos: 0,
            created_at: now_ms(),
        },
        limit_nanos,
        cap_nanos: 0,
    }
}

/// Queues an answer's question with its pending answer, if it has one, for
/// an answer that holds nothing of its own (no budget, or a lease): nothing
/// to decide, so the answer does not wait for its commit — its settlement
/// reports whether it was stored.
async fn queue_exchange(
    state: &AppState,
    exchange: Option<Arc<Exchange>>,
) -> Result<Option<QueuedOpening>> {
    let Some(exchange) = exchange else {
        return Ok(None);
    };
    let opening = Opening {
        hold: None,
        exchange: Some(exchange),
    };
    Ok(Some(state.ledger.queue_opening(opening).await?))
}

/// The limits an answer of a project is held to in a month, with the
/// month's figures.
#[derive(Debug, Clone)]
struct Limits {
    /// The project's budget: its own, or the workspace's default.
    budget: BudgetRow,
    /// The budget is the workspace's default for managed keys.
    workspace_default: bool,
    /// The project's figures for the month.
    month: MonthRow,
    /// The workspace's cap on managed keys, when the answer spends them and
    /// the admin set one.
    cap: Option<WorkspaceCap>,
}

/// The admin's cap on every project's managed-key spend together, and the
/// month's figures against it.
#[derive(Debug, Clone, Copy)]
struct WorkspaceCap {
    cap_nanos: i64,
    month: WorkspaceMonthRow,
}

impl WorkspaceCap {
    /// What the cap leaves this month (may be negative after a costly answer).
    fn left(&self) -> i64 {
        self.cap_nanos - self.month.spent_nanos - self.month.reserved_nanos
    }
}

impl Limits {
    /// What the project's budget leaves this month.
    fn budget_left(&self) -> i64 {
        self.budget.limit_nanos - self.month.spent_nanos - self.month.reserved_nanos
    }

    /// What an answer may still reserve: the budget's remainder, or the
    /// cap's when that is smaller.
    fn left(&self) -> i64 {
        let budget_left = self.budget_left();
        self.cap
            .map_or(budget_left, |cap| cap.left().min(budget_left))
    }

    /// Why nothing fits: the project's budget, or the workspace's cap.
    fn refusal(&self, month: &str) -> String {
        match self.cap.filter(|cap| cap.left() < self.budget_left()) {
            Some(cap) => format!(
                "The workspace's monthly cap of {} on Cover's managed keys is used up: {} is spent \
                 or held by running answers in {month}. Ask an admin to raise it, use your own \
                 provider key, or wait for next month",
                format_usd(cap.cap_nanos),
                format_usd(cap.month.spent_nanos + cap.month.reserved_nanos),
            ),
            None => format!(
                "The monthly budget of {} is used up: {} is spent or held by running answers in \
                 {month}. Raise the limit or wait for next month",
                format_usd(self.budget.limit_nanos),
                format_usd(self.month.spent_nanos + self.month.reserved_nanos),
            ),
        }
    }
}

/// How [`budget_of`] reads the figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// A copy at most [`crate::server::hot_reads::FRESH_FOR`] old will do.
    Copy,
    /// From the database (kept as the new copy).
    Fresh,
}

/// The limits read afresh, for an answer `stale` was planned for: the
/// budget may have been removed meanwhile, then `stale` still holds.
async fn fresh_limits(
    state: &AppState,
    project_id: &str,
    month: &str,
    on_managed_keys: bool,
    stale: Limits,
) -> Result<Limits> {
    Ok(
        budget_of(state, project_id, month, on_managed_keys, Read::Fresh)
            .await?
            .unwrap_or(stale),
    )
}

/// The limits an answer of the project is held to in `month`, with the
/// month's figures (one query, or a recent copy where `read` allows): its
/// own budget, or — when it spends on Cover's managed keys and has none —
/// the workspace's default; and on managed keys the workspace's cap, if
/// set. `None`: no limit (its own keys, no budget set).
async fn budget_of(
    state: &AppState,
    project_id: &str,
    month: &str,
    on_managed_keys: bool,
    read: Read,
) -> Result<Option<Limits>> {
    let key = (project_id.to_owned(), month.to_owned());
    let load = || db::find_with_month(&state.db.pool, project_id, month);
    let BudgetFigures {
        budget,
        month: figures,
        workspace,
    } = match read {
        Read::Copy => state.hot.budgets.get_or_load(&key, load).await?,
        Read::Fresh => state.hot.budgets.refresh(&key, load).await?,
    };
    if budget.is_none() && !on_managed_keys {
        return Ok(None);
    }
    let managed = if on_managed_keys {
        Some(state.workspace_limits.managed(&state.db).await?)
    } else {
        None
    };
    let cap = managed
        .and_then(|limits| limits.cap_nanos)
        .map(|cap_nanos| WorkspaceCap {
            cap_nanos,
            month: workspace,
        });
    let (budget, workspace_default) = match (budget, managed) {
        (Some(budget), _) => (budget, false),
        (None, Some(limits)) => (
            BudgetRow {
                project_id: project_id.to_owned(),
                limit_nanos: limits.project_budget_nanos,
                webhook_url: None,
            },
            true,
        ),
        (None, None) => return Ok(None),
    };
    Ok(Some(Limits {
        budget,
        workspace_default,
        month: figures,
        cap,
    }))
}

/// After an answer's settlement (its hold released, its spend stored): fires
/// the alerts its month has reached, each once. `month`: the figures the
/// settlement reported, if its group changed them. A failure is logged: the
/// answer is stored either way.
pub async fn after_settlement(state: &AppState, admission: &Admission, month: Option<MonthRow>) {
    let Some(budget) = &admission.budget else {
        return;
    };
    if let Err(error) = fire_reached_alerts(state, admission, budget, month).await {
        tracing::error!(%error, project = %admission.project_id, "budget alerts failed");
    }
}

async fn fire_reached_alerts(
    state: &AppState,
    admission: &Admission,
    budget: &BudgetRow,
    month: Option<MonthRow>,
) -> Result<()> {
    let project_id = &admission.project_id;
    let month = match month {
        Some(month) => month,
        None => db::month(&state.db.pool, project_id, &admission.month)
            .await?
            .unwrap_or_default(),
    };
    for threshold in reached(budget.limit_nanos, &month, admission.smallest_nanos) {
        let notification = NotificationRow {
            notification_id: uuid::Uuid::new_v4().to_string(),
            project_id: project_id.clone(),
            kind: threshold.kind(),
            message: alert_message(
                threshold,
                budget.limit_nanos,
                month.spent_nanos,
                &admission.month,
            ),
            created_at: now_ms(),
            read_at: None,
        };
        if !db::fire_alert(&state.db.writer, &admission.month, threshold, &notification).await? {
            continue; // a concurrent settlement fired it
        }
        if let Some(url) = &budget.webhook_url {
            let payload = serde_json::json!({
                "projectId": project_id,
                "threshold": threshold.percent(),
                "spentUsd": format_decimal(month.spent_nanos),
                "limitUsd": format_decimal(budget.limit_nanos),
                "month": admission.month,
            });
            tokio::spawn(deliver(state.outbound.clone(), url.clone(), payload));
        }
    }
    Ok(())
}

/// Posts an alert to the project's webhook, off the request path, retrying
/// with backoff, through the guarded client (a webhook is a URL a user
/// supplied). The URL can hold a secret token, so only its host is logged.
async fn deliver(policy: Arc<AddressPolicy>, url: String, payload: serde_json::Value) {
    let host = reqwest::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    if let Err(refusal) = policy.check_url(&url) {
        tracing::warn!(%host, %refusal, "budget webhook not called");
        return;
    }
    let client = match guarded_client_builder(policy, WEBHOOK_TIMEOUT)
        .timeout(WEBHOOK_TIMEOUT)
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(error = %error.without_url(), "no HTTP client for budget webhooks");
            return;
        }
    };
    let mut wait = WEBHOOK_BACKOFF;
    for attempt in 1..=WEBHOOK_ATTEMPTS {
        match client.post(&url).json(&payload).send().await {
            Ok(response) if response.status().is_success() => return,
            Ok(response) => {
                tracing::warn!(%host, attempt, status = response.status().as_u16(), "budget webhook refused the alert");
            }
            Err(error) => {
                tracing::warn!(%host, attempt, error = %error.without_url(), "budget webhook unreachable");
            }
        }
        if attempt < WEBHOOK_ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    tracing::error!(%host, "budget alert not delivered to its webhook; the notification is stored");
}

/// The current month as budgets count it: `YYYY-MM`, UTC.
pub fn current_month() -> String {
    chrono::Utc::now().format("%Y-%m").to_string()
}

/// The limit in nano-dollars, `None` for "no budget"; a 422 on `limitUsd` otherwise.
fn parse_limit(text: &str) -> Result<Option<i64>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.starts_with('-') {
        return Err(AppError::invalid(
            "limitUsd",
            "must not be negative; leave it empty for no budget",
        )
        .into());
    }
    let nanos = parse_usd_nanos(text).map_err(|_| {
        AppError::invalid(
            "limitUsd",
            format!("`{text}` is not a dollar amount such as 250 or 99.50; leave it empty for no budget"),
        )
    })?;
    if nanos > MAX_LIMIT_NANOS {
        return Err(AppError::invalid(
            "limitUsd",
            format!("at most {} per month", format_usd(MAX_LIMIT_NANOS)),
        )
        .into());
    }
    Ok(Some(nanos))
}

/// The webhook URL, `None` for none; a 422 on `webhookUrl` unless it is http(s).
fn parse_webhook(text: &str) -> Result<Option<String>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let valid = text.chars().count() <= MAX_WEBHOOK_CHARS
        && reqwest::Url::parse(text)
            .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some());
    if valid {
        Ok(Some(text.to_owned()))
    } else {
        Err(AppError::invalid(
            "webhookUrl",
            format!("must be an http:// or https:// URL of at most {MAX_WEBHOOK_CHARS} characters, or empty"),
        )
        .into())
    }
}

/// What the ladder does now for the project's current configuration.
async fn ladder_now(state: &AppState, project_id: &str, remaining: i64) -> Result<BudgetState> {
    let (_, draft) = llm_settings::current(state, project_id).await?;
    let prompt_tokens = estimate_text_tokens(&draft.system_prompt) + TYPICAL_QUESTION_TOKENS;
    let candidates: Vec<Candidate> = routing::chain(state, &draft, false)
        .into_iter()
        .filter_map(|(_, model_id, _)| {
            let model = state.catalog.model(&model_id)?;
            let limits = ModelLimits::from(model);
            let parameters = routing::chain_parameters(&draft, model);
            Some(Candidate {
                model: Some(model),
                prompt_tokens,
                max_tokens: answer_limit(&parameters, limits),
                shortenable: true,
            })
        })
        .collect();
    Ok(ladder_state(plan(&candidates, remaining).as_ref()))
}

/// Prompt tokens each target of the route would be sent: counted with its
/// tokenizer where known, else estimated and raised by a margin.
fn prompt_tokens(route: &mut Route) -> Vec<u64> {
    // The history is lent to the counting request and given back, not copied:
    // it can carry megabytes of images.
    let mut request = GenerateRequest {
        model: String::new(),
        messages: std::mem::take(&mut route.messages),
        tools: std::mem::take(&mut route.tools),
        tool_choice: route.tool_choice.clone(),
        response_format: route.response_format.clone(),
        parameters: Parameters::default(),
        limits: None,
    };
    let counts = route
        .targets
        .iter()
        .map(|target| {
            request.model.clone_from(&target.api_model);
            let count = count_request_tokens(&request);
            if count.exact {
                count.tokens
            } else {
                count.tokens + count.tokens.div_ceil(ESTIMATE_MARGIN_DIVISOR)
            }
        })
        .collect();
    route.messages = request.messages;
    route.tools = request.tools;
    counts
}

/// The longest answer a model may give with these parameters (what the
/// provider is asked for: the configured max tokens, else the model's maximum).
fn answer_limit(parameters: &Parameters, limits: ModelLimits) -> u32 {
    parameters.max_tokens.unwrap_or(limits.max_output_tokens)
}

/// Keeps the targets the plan admits, with its shorter answer limit if any.
fn narrow(route: &mut Route, plan: &Plan) {
    let targets = std::mem::take(&mut route.targets);
    route.targets = targets
        .into_iter()
        .enumerate()
        .filter(|(index, _)| plan.candidates.contains(index))
        .map(|(_, mut target)| {
            if plan.max_tokens.is_some() {
                target.parameters.max_tokens = plan.max_tokens;
            }
            target
        })
        .collect();
}

/// One model an answer may come from, as the budget sees it.
#[derive(Debug, Clone, Copy)]
struct Candidate<'a> {
    /// The catalog model; `None` (unknown) has no price.
    model: Option<&'a ModelInfo>,
    /// Prompt tokens it would be sent.
    prompt_tokens: u64,
    /// The longest answer it may give.
    max_tokens: u32,
    /// Whether a shorter answer is still an answer (a chat reply is; a
    /// picture or an embedding is not: it fits whole or is refused).
    shortenable: bool,
}

impl Candidate<'_> {
    /// The most an answer of `output_tokens` costs. A model without a
    /// per-token price (self-hosted, or unknown and so unpriced in the
    /// ledger) costs nothing here: there is nothing to reserve.
    fn cost(&self, output_tokens: u32) -> i64 {
        let usage = TokenUsage {
            input_tokens: self.prompt_tokens,
            output_tokens: u64::from(output_tokens),
            ..TokenUsage::default()
        };
        cost_of(self.model, &usage).nanos().unwrap_or(0)
    }

    /// The most a whole answer costs.
    fn max_cost(&self) -> i64 {
        self.cost(self.max_tokens)
    }

    /// The longest answer (up to its max tokens) that `nanos` pays for, if any.
    fn affordable_tokens(&self, nanos: i64) -> Option<u32> {
        if self.cost(0) > nanos {
            return None;
        }
        // The cost grows with the output, so the largest fitting length is a
        // binary search away (exact, whatever the rounding and tiers).
        let (mut fits, mut too_long) = (0_u32, self.max_tokens.saturating_add(1));
        while too_long - fits > 1 {
            let middle = fits + (too_long - fits) / 2;
            if self.cost(middle) <= nanos {
                fits = middle;
            } else {
                too_long = middle;
            }
        }
        Some(fits)
    }
}

/// How an answer runs within the budget.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    /// The candidates that may answer (indices in chain order).
    candidates: Vec<usize>,
    /// A shorter answer limit, when only a shorter answer fits.
    max_tokens: Option<u32>,
    /// What to hold until the answer ends: the most the plan can cost.
    reserve_nanos: i64,
}

impl Plan {
    /// Whether the plan runs the chain of `candidates` as configured.
    fn is_whole_chain(&self, candidates: usize) -> bool {
        self.max_tokens.is_none() && self.candidates.iter().copied().eq(0..candidates)
    }
}

/// The ladder, given what is left of the month (`remaining`, nano-dollars):
/// the chain as configured when its dearest model fits; else only its
/// cheapest model(s); else the cheapest with an answer shortened to fit, not
/// below [`CAPPED_TOKENS_FLOOR`]; else `None`: refused. Free models always fit.
fn plan(candidates: &[Candidate], remaining: i64) -> Option<Plan> {
    let costs: Vec<i64> = candidates.iter().map(Candidate::max_cost).collect();
    let fits = |cost: i64| cost == 0 || cost <= remaining;
    let dearest = costs.iter().copied().max().unwrap_or(0);
    if fits(dearest) {
        return Some(Plan {
            candidates: (0..candidates.len()).collect(),
            max_tokens: None,
            reserve_nanos: dearest,
        });
    }
    let cheapest = cheapest(&costs)?;
    let cheapest_cost = costs[cheapest];
    if fits(cheapest_cost) {
        return Some(Plan {
            candidates: (0..costs.len())
                .filter(|&i| costs[i] == cheapest_cost)
                .collect(),
            max_tokens: None,
            reserve_nanos: cheapest_cost,
        });
    }
    let candidate = &candidates[cheapest];
    if !candidate.shortenable {
        return None;
    }
    let tokens = candidate
        .affordable_tokens(remaining)
        .filter(|&tokens| tokens >= CAPPED_TOKENS_FLOOR)?;
    Some(Plan {
        candidates: vec![cheapest],
        max_tokens: Some(tokens),
        reserve_nanos: candidate.cost(tokens),
    })
}

/// The first candidate with the lowest maximum cost.
fn cheapest(costs: &[i64]) -> Option<usize> {
    (0..costs.len()).min_by_key(|&i| costs[i])
}

/// The least the ladder accepts for this chain: the cheapest model's answer
/// at the floor length (or its own max tokens, if shorter).
fn smallest_reservation(candidates: &[Candidate]) -> i64 {
    let costs: Vec<i64> = candidates.iter().map(Candidate::max_cost).collect();
    cheapest(&costs).map_or(0, |i| {
        let candidate = &candidates[i];
        if candidate.shortenable {
            candidate.cost(candidate.max_tokens.min(CAPPED_TOKENS_FLOOR))
        } else {
            candidate.max_cost()
        }
    })
}

/// The status word for what the ladder does.
fn ladder_state(plan: Option<&Plan>) -> BudgetState {
    match plan {
        None => BudgetState::Blocked,
        Some(plan) if plan.max_tokens.is_some() => BudgetState::Capped,
        Some(plan) if plan.candidates.first().is_some_and(|&first| first != 0) => {
            BudgetState::Downgraded
        }
        Some(_) => BudgetState::Ok,
    }
}

/// The notice shown with an answer the budget sent to a cheaper model or shortened.
fn budget_notice(candidates: &[Candidate], plan: &Plan) -> Option<FallbackNotice> {
    let first = *plan.candidates.first()?;
    if first == 0 && plan.max_tokens.is_none() {
        return None;
    }
    let from = candidates.first()?.model?;
    let to = candidates.get(first)?.model?;
    let change = if first == 0 {
        format!("{} answers", to.name)
    } else {
        format!("answered by {} instead of {}", to.name, from.name)
    };
    let message = match plan.max_tokens {
        None => format!("{NEARLY_USED_UP} — {change}"),
        Some(tokens) if first == 0 => {
            format!("{NEARLY_USED_UP} — {change} in at most {tokens} tokens")
        }
        Some(tokens) => format!("{NEARLY_USED_UP} — {change}, in at most {tokens} tokens"),
    };
    Some(FallbackNotice {
        from: from.id.clone(),
        from_provider: from.provider,
        to: to.id.clone(),
        to_provider: to.provider,
        reason: "budget".into(),
        message,
    })
}

/// The alerts a month has reached and not yet fired: 50 % and 80 % of the
/// limit spent; 100 % when the limit is reached or what is left no longer
/// pays for the smallest answer of the chain (paid answers are refused from then on).
fn reached(limit_nanos: i64, month: &MonthRow, smallest_nanos: i64) -> Vec<Threshold> {
    let spent = i128::from(month.spent_nanos);
    let limit = i128::from(limit_nanos);
    Threshold::ALL
        .into_iter()
        .filter(|&threshold| !month.fired(threshold))
        .filter(|&threshold| {
            let share_spent = spent * 100 >= limit * i128::from(threshold.percent());
            let used_up = smallest_nanos > 0 && limit - spent < i128::from(smallest_nanos);
            share_spent || (threshold == Threshold::Full && used_up)
        })
        .collect()
}

/// The notification text of an alert.
fn alert_message(threshold: Threshold, limit_nanos: i64, spent_nanos: i64, month: &str) -> String {
    let (limit, spent) = (format_usd(limit_nanos), format_usd(spent_nanos));
    match threshold {
        Threshold::Full => format!(
            "The monthly budget of {limit} is used up ({spent} spent in {month}): paid models are refused until the limit is raised or the month ends"
        ),
        _ => format!(
            "{} % of the monthly budget of {limit} is spent ({spent} in {month})",
            threshold.percent()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::catalog::Catalog;

    const SONNET: &str = "claude-3-5-sonnet-20241022";
    const HAIKU: &str = "claude-3-5-haiku-20241022";
    const LLAMA: &str = "llama-3.1-70b";

    fn catalog() -> Catalog {
        crate::server::catalog::load().unwrap()
    }

    fn candidate<'a>(catalog: &'a Catalog, model: &str, max_tokens: u32) -> Candidate<'a> {
        Candidate {
            model: catalog.model(model),
            prompt_tokens: 1_000,
            max_tokens,
            shortenable: true,
        }
    }

    #[test]
    fn a_candidate_costs_its_prompt_and_its_longest_answer_at_list_prices() {
        let catalog = catalog();
        // Sonnet: 1,000 in × 3,000 n$ + 1,000 out × 15,000 n$.
        let sonnet = candidate(&catalog, SONNET, 1_000);
        assert_eq!(sonnet.max_cost(), 18_000_000);
        assert_eq!(candidate(&catalog, LLAMA, 1_000).max_cost(), 0);
    }

    #[test]
    fn the_affordable_length_is_the_longest_answer_that_fits_exactly() {
        let catalog = catalog();
        let sonnet = candidate(&catalog, SONNET, 4_096);
        // 3,000,000 n$ of prompt; each output token 15,000 n$.
        assert_eq!(
            sonnet.affordable_tokens(3_000_000 + 15_000 * 300),
            Some(300)
        );
        assert_eq!(
            sonnet.affordable_tokens(3_000_000 + 15_000 * 300 - 1),
            Some(299)
        );
        assert_eq!(sonnet.affordable_tokens(u32::MAX.into()), Some(4_096));
        assert_eq!(sonnet.affordable_tokens(2_999_999), None);
    }

    #[test]
    fn the_whole_chain_runs_while_its_dearest_model_fits() {
        let catalog = catalog();
        let chain = [
            candidate(&catalog, SONNET, 1_000),
            candidate(&catalog, HAIKU, 1_000),
        ];
        let planned = plan(&chain, 18_000_000).unwrap();
        assert_eq!(
            planned,
            Plan {
                candidates: vec![0, 1],
                max_tokens: None,
                reserve_nanos: 18_000_000
            }
        );
        assert_eq!(ladder_state(Some(&planned)).as_str(), "ok");
        assert_eq!(budget_notice(&chain, &planned), None);
    }

    #[test]
    fn then_the_cheapest_model_of_the_chain_answers_with_a_notice() {
        let catalog = catalog();
        let chain = [
            candidate(&catalog, SONNET, 1_000),
            candidate(&catalog, HAIKU, 1_000),
        ];
        // Haiku: 1,000 × 800 + 1,000 × 4,000 = 4,800,000 n$.
        let planned = plan(&chain, 17_999_999).unwrap();
        assert_eq!(
            planned,
            Plan {
                candidates: vec![1],
                max_tokens: None,
                reserve_nanos: 4_800_000
            }
        );
        assert_eq!(ladder_state(Some(&planned)).as_str(), "downgraded");
        let notice = budget_notice(&chain, &planned).unwrap();
        assert_eq!((notice.from.as_str(), notice.to.as_str()), (SONNET, HAIKU));
        assert_eq!(notice.reason, "budget");
        assert_eq!(
            notice.message,
            "The monthly budget is nearly used up — answered by Claude 3.5 Haiku instead of Claude 3.5 Sonnet"
        );
    }

    #[test]
    fn then_a_shorter_answer_and_below_the_floor_a_refusal() {
        let catalog = catalog();
        let chain = [
            candidate(&catalog, SONNET, 1_000),
            candidate(&catalog, HAIKU, 1_000),
        ];
        // Haiku's prompt costs 800,000 n$; 300 tokens of answer 1,200,000.
        let planned = plan(&chain, 2_000_000).unwrap();
        assert_eq!(
            planned,
            Plan {
                candidates: vec![1],
                max_tokens: Some(300),
                reserve_nanos: 2_000_000
            }
        );
        assert_eq!(ladder_state(Some(&planned)).as_str(), "capped");
        assert_eq!(
            budget_notice(&chain, &planned).unwrap().message,
            "The monthly budget is nearly used up — answered by Claude 3.5 Haiku instead of Claude 3.5 Sonnet, in at most 300 tokens"
        );
        let floor = 800_000 + 4_000 * i64::from(CAPPED_TOKENS_FLOOR);
        assert_eq!(smallest_reservation(&chain), floor);
        assert!(plan(&chain, floor).is_some());
        assert_eq!(plan(&chain, floor - 1), None);
        assert_eq!(ladder_state(None).as_str(), "blocked");
    }

    #[test]
    fn a_picture_fits_whole_or_is_refused_never_shortened() {
        let catalog = catalog();
        // gpt-image-1, 1,000 prompt tokens at $5/1M and one high square
        // picture, 4,160 tokens at $40/1M: 5,000,000 + 166,400,000 n$.
        let picture = Candidate {
            model: catalog.model("gpt-image-1"),
            prompt_tokens: 1_000,
            max_tokens: 4_160,
            shortenable: false,
        };
        let whole = 171_400_000;
        assert_eq!(picture.max_cost(), whole);
        let chain = [picture];
        assert_eq!(smallest_reservation(&chain), whole);
        assert_eq!(plan(&chain, whole).unwrap().reserve_nanos, whole);
        assert_eq!(plan(&chain, whole - 1), None);
    }

    #[test]
    fn a_single_model_is_shortened_in_place() {
        let catalog = catalog();
        let chain = [candidate(&catalog, SONNET, 1_000)];
        let planned = plan(&chain, 3_000_000 + 15_000 * 400).unwrap();
        assert_eq!(planned.max_tokens, Some(400));
        assert_eq!(
            budget_notice(&chain, &planned).unwrap().message,
            "The monthly budget is nearly used up — Claude 3.5 Sonnet answers in at most 400 tokens"
        );
    }

    #[test]
    fn free_models_always_fit_even_past_the_limit() {
        let catalog = catalog();
        let llama = [candidate(&catalog, LLAMA, 4_096)];
        assert_eq!(plan(&llama, -5).unwrap().reserve_nanos, 0);
        assert_eq!(smallest_reservation(&llama), 0);
        // A paid fallback behind a free primary is left out, without a notice.
        let chain = [
            candidate(&catalog, LLAMA, 4_096),
            candidate(&catalog, SONNET, 4_096),
        ];
        let planned = plan(&chain, 0).unwrap();
        assert_eq!((planned.candidates, planned.reserve_nanos), (vec![0], 0));
    }

    fn month(spent_nanos: i64, alert50_at: Option<i64>) -> MonthRow {
        MonthRow {
            spent_nanos,
            alert50_at,
            ..MonthRow::default()
        }
    }

    #[test]
    fn alerts_are_reached_at_their_share_of_the_limit_and_not_again() {
        assert_eq!(reached(1_000, &month(499, None), 0), []);
        assert_eq!(reached(1_000, &month(500, None), 0), [Threshold::Half]);
        assert_eq!(
            reached(1_000, &month(800, Some(1)), 0),
            [Threshold::FourFifths]
        );
        assert_eq!(
            reached(1_000, &month(1_200, None), 0),
            [Threshold::Half, Threshold::FourFifths, Threshold::Full]
        );
    }

    #[test]
    fn the_budget_is_used_up_when_what_is_left_pays_for_no_answer() {
        assert_eq!(
            reached(1_000, &month(901, Some(1)), 100),
            [Threshold::FourFifths, Threshold::Full]
        );
        assert_eq!(
            reached(1_000, &month(900, Some(1)), 100),
            [Threshold::FourFifths]
        );
    }

    fn field_of(error: crate::server::error::Error) -> String {
        AppError::from(error).field().unwrap_or_default().to_owned()
    }

    #[test]
    fn limits_are_exact_dollar_amounts_and_empty_means_no_budget() {
        assert_eq!(parse_limit(" 250.50 ").unwrap(), Some(250_500_000_000));
        assert_eq!(parse_limit("0").unwrap(), Some(0));
        assert_eq!(parse_limit("").unwrap(), None);
        for bad in ["-1", "abc", "1.0000000001", "$5", "10000000.01"] {
            assert_eq!(field_of(parse_limit(bad).unwrap_err()), "limitUsd", "{bad}");
        }
    }

    #[test]
    fn webhooks_are_http_urls_or_nothing() {
        let url = "https://hooks.example.com/budget?token=abc";
        assert_eq!(parse_webhook(url).unwrap().as_deref(), Some(url));
        assert_eq!(parse_webhook("  ").unwrap(), None);
        for bad in [
            "ftp://example.com",
            "example.com/hook",
            "https://",
            "javascript:alert(1)",
        ] {
            assert_eq!(
                field_of(parse_webhook(bad).unwrap_err()),
                "webhookUrl",
                "{bad}"
            );
        }
    }

    #[test]
    fn alert_messages_name_the_share_the_limit_and_the_spend() {
        assert_eq!(
            alert_message(
                Threshold::FourFifths,
                250 * NANOS_PER_USD,
                201_130_000_000,
                "2025-01"
            ),
            "80 % of the monthly budget of $250.00 is spent ($201.13 in 2025-01)"
        );
        assert!(alert_message(Threshold::Full, 1, 1, "2025-01").contains("is used up"));
    }
}
