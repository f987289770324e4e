//! Cost analysis from the usage ledger (FR-007, AC-005, mockup 3).
// PLACEHOLDER: being written (issue 6); signatures are the contract.

use crate::model::costs::{CostReport, UsageFilter, WorkspaceCosts};
use crate::server::error::Result;
use crate::server::state::AppState;

/// A project's cost report for a period.
pub async fn report(_state: &AppState, _project_id: &str, _filter: &UsageFilter) -> Result<CostReport> {
    todo!("costs::report")
}

/// Spend across the workspace.
pub async fn workspace(_state: &AppState, _filter: &UsageFilter) -> Result<WorkspaceCosts> {
    todo!("costs::workspace")
}
