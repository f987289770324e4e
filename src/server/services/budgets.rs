//! Monthly budgets per project (FR-007): atomic reservations, alerts, downgrade ladder.
// PLACEHOLDER: being written (issue 6); signatures are the contract.

use crate::model::costs::{BudgetStatus, Notification};
use crate::server::error::Result;
use crate::server::state::AppState;

/// Sets or removes the monthly budget.
pub async fn save(
    _state: &AppState,
    _project_id: &str,
    _limit_usd: &str,
    _webhook_url: &str,
) -> Result<BudgetStatus> {
    todo!("budgets::save")
}

/// Where the project's budget stands this month.
pub async fn status(_state: &AppState, _project_id: &str) -> Result<BudgetStatus> {
    todo!("budgets::status")
}

/// The project's notifications, newest first.
pub async fn notifications(_state: &AppState, _project_id: &str) -> Result<Vec<Notification>> {
    todo!("budgets::notifications")
}

/// Marks the project's notifications read.
pub async fn mark_read(_state: &AppState, _project_id: &str) -> Result<()> {
    todo!("budgets::mark_read")
}
