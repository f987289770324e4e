//! Compare on a sample: the Compare page's button, and `POST /api/llm/compare`.

use crate::error::AppError;
#[cfg(feature = "ssr")]
use crate::model::access::Scope;
use crate::model::costs::{CompareRequest, CompareResult};
use leptos::prelude::*;

/// Sends one sample question to each chosen model side by side (with the
/// project's keys) and returns the answers with latency, tokens and cost.
#[server(prefix = "/sfn", endpoint = "compare/sample")]
pub async fn compare_sample(request: CompareRequest) -> Result<Vec<CompareResult>, AppError> {
    let (state, _) =
        crate::server::auth::server_fn_project_user(&request.project_id, Scope::Chat).await?;
    Ok(crate::server::services::compare::sample(&state, &request).await?)
}
