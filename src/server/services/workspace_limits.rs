//! The workspace's bound on Cover's managed keys: every project that spends
//! on them has a monthly budget — its own, or else the workspace default the
//! admin sets (a built-in default until then). So no project, however new,
//! spends the operator's keys without a limit.

use crate::error::AppError;
use crate::model::money::{format_decimal, parse_usd_nanos, NANOS_PER_USD};
use crate::server::db::{workspace_settings, Db};
use crate::server::error::Result;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The default monthly budget of a project on managed keys until the admin
/// sets one: small enough that an unattended deployment cannot run up a bill.
pub const BUILT_IN_MANAGED_BUDGET_NANOS: i64 = 25 * NANOS_PER_USD;
/// The workspace setting holding the admin's default (nano-dollars).
const MANAGED_BUDGET: &str = "managed_budget_default_nanos";
/// How long a server trusts the default it read (another app server may have
/// changed it): admissions read it without a query in between.
const REFRESH_AFTER: Duration = Duration::from_secs(10);

/// The workspace's managed-key budget default, read through a short cache.
#[derive(Debug, Default)]
pub struct WorkspaceLimits {
    cached: Mutex<Option<(Instant, i64)>>,
}

impl WorkspaceLimits {
    /// The monthly budget (nano-dollars) of a project on managed keys that
    /// has none of its own.
    pub async fn managed_budget_nanos(&self, db: &Db) -> Result<i64> {
        if let Some((read_at, nanos)) = *self.cached.lock().unwrap_or_else(|e| e.into_inner()) {
            if read_at.elapsed() < REFRESH_AFTER {
                return Ok(nanos);
            }
        }
        let stored = workspace_settings::get(&db.pool, MANAGED_BUDGET).await?;
        let nanos = stored
            .and_then(|text| text.parse().ok())
            .unwrap_or(BUILT_IN_MANAGED_BUDGET_NANOS);
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), nanos));
        Ok(nanos)
    }

    /// Sets the default from an exact dollar amount ("25", "99.50"; more
    /// than 0); answers it as stored, in decimal dollars.
    pub async fn set_managed_budget(&self, db: &Db, limit_usd: &str) -> Result<String> {
        let nanos = parse_usd_nanos(limit_usd)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                AppError::invalid(
                    "managedBudgetUsd",
                    "must be an amount of dollars above 0, like 25 or 99.50",
                )
            })?;
        workspace_settings::set(&db.writer, MANAGED_BUDGET, &nanos.to_string()).await?;
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), nanos));
        Ok(format_decimal(nanos))
    }
}
