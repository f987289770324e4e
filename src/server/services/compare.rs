//! Compare on a sample: one question to several models side by side.
// PLACEHOLDER: being written (issue 6); signatures are the contract.

use crate::model::costs::{CompareRequest, CompareResult};
use crate::server::error::Result;
use crate::server::state::AppState;

/// Sends the sample to every model and returns their answers.
pub async fn sample(_state: &AppState, _request: &CompareRequest) -> Result<Vec<CompareResult>> {
    todo!("compare::sample")
}
