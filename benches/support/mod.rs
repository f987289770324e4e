//! What the benchmarks share: the account and project they run as.

use cover::model::account::{ProjectView, UseCase};
use cover::server::services::{accounts, projects};
use cover::server::state::AppState;

/// Signs up the bench's account and creates its project.
pub async fn bench_project(state: &AppState) -> ProjectView {
    let user = accounts::sign_up(&state.db, "bench@example.com", "bench password 1")
        .await
        .expect("bench account");
    projects::create(
        &state.db,
        &state.catalog,
        &user,
        "Bench",
        UseCase::CustomerSupport,
    )
    .await
    .expect("bench project")
}
