//! The workspace's bounds on Cover's managed keys: every project that spends
//! on them has a monthly budget — its own, or else the workspace default the
//! admin sets (a built-in default until then) — and all of them together are
//! held to the workspace-wide monthly cap, if the admin sets one. So no
//! project, however new, and no number of projects, spends the operator's
//! keys without a limit.

use crate::error::AppError;
use crate::model::costs::ManagedKeyLimits;
use crate::model::money::{format_decimal, parse_usd_nanos, NANOS_PER_USD};
use crate::server::db::{budgets, workspace_settings, Db};
use crate::server::error::Result;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The default monthly budget of a project on managed keys until the admin
/// sets one: small enough that an unattended deployment cannot run up a bill.
pub const BUILT_IN_MANAGED_BUDGET_NANOS: i64 = 25 * NANOS_PER_USD;
/// The workspace setting holding the admin's default (nano-dollars).
const MANAGED_BUDGET: &str = "managed_budget_default_nanos";
/// The workspace setting holding the admin's cap (nano-dollars; absent: none).
const MANAGED_CAP: &str = "managed_cap_nanos";
/// How long a server trusts the figures it read (another app server may have
/// changed them): admissions read them without a query in between.
const REFRESH_AFTER: Duration = Duration::from_secs(10);
/// The largest amount either setting accepts ($10 million): sums stay far
/// from overflow.
const MAX_NANOS: i64 = 10_000_000 * NANOS_PER_USD;

/// What the admin set, as admissions use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManagedLimits {
    /// The monthly budget (nano-dollars) of a project on managed keys that
    /// has none of its own.
    pub project_budget_nanos: i64,
    /// The monthly cap (nano-dollars) on every project's managed-key spend
    /// together; `None`: no cap.
    pub cap_nanos: Option<i64>,
}

/// The workspace's managed-key limits, read through a short cache.
#[derive(Debug, Default)]
pub struct WorkspaceLimits {
    cached: Mutex<Option<(Instant, ManagedLimits)>>,
}

impl WorkspaceLimits {
    /// The limits in force (at most [`REFRESH_AFTER`] old).
    pub async fn managed(&self, db: &Db) -> Result<ManagedLimits> {
        if let Some((read_at, limits)) = *self.cached.lock().unwrap_or_else(|e| e.into_inner()) {
            if read_at.elapsed() < REFRESH_AFTER {
                return Ok(limits);
            }
        }
        let stored = |text: Option<String>| text.and_then(|text| text.parse::<i64>().ok());
        let limits = ManagedLimits {
            project_budget_nanos: stored(workspace_settings::get(&db.pool, MANAGED_BUDGET).await?)
                .unwrap_or(BUILT_IN_MANAGED_BUDGET_NANOS),
            cap_nanos: stored(workspace_settings::get(&db.pool, MANAGED_CAP).await?),
        };
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), limits));
        Ok(limits)
    }

    /// The limits and this month's managed-key spend, as the admin page shows them.
    pub async fn view(&self, db: &Db, month: &str) -> Result<ManagedKeyLimits> {
        let limits = self.managed(db).await?;
        let figures = budgets::workspace_month(&db.pool, month).await?;
        Ok(ManagedKeyLimits {
            managed_budget_usd: format_decimal(limits.project_budget_nanos),
            cap_usd: limits.cap_nanos.map(format_decimal),
            month: month.to_owned(),
            spent_usd: format_decimal(figures.spent_nanos),
            held_usd: format_decimal(figures.reserved_nanos),
        })
    }

    /// Sets the default budget from an exact dollar amount ("25", "99.50";
    /// above 0) and, unless `cap_usd` is `None`, the cap (the same, or empty
    /// for none). Nothing is stored unless both are valid.
    pub async fn set(&self, db: &Db, budget_usd: &str, cap_usd: Option<&str>) -> Result<()> {
        let budget_nanos = parse_amount("managedBudgetUsd", budget_usd)?;
        let cap_nanos = match cap_usd.map(str::trim) {
            None => None,
            Some("") => Some(None),
            Some(text) => Some(Some(parse_amount("capUsd", text)?)),
        };
        workspace_settings::set(&db.writer, MANAGED_BUDGET, &budget_nanos.to_string()).await?;
        match cap_nanos {
            None => {}
            Some(None) => workspace_settings::remove(&db.writer, MANAGED_CAP).await?,
            Some(Some(nanos)) => {
                workspace_settings::set(&db.writer, MANAGED_CAP, &nanos.to_string()).await?;
            }
        }
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }
}

/// An amount of dollars above 0 and at most [`MAX_NANOS`]; a 422 on `field`
/// otherwise.
fn parse_amount(field: &'static str, text: &str) -> Result<i64> {
    parse_usd_nanos(text.trim())
        .ok()
        .filter(|&nanos| nanos > 0 && nanos <= MAX_NANOS)
        .ok_or_else(|| {
            AppError::invalid(
                field,
                "must be an amount of dollars above 0 and at most 10000000, like 25 or 99.50",
            )
            .into()
        })
}
