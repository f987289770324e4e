//! What the benchmarks share: the account and project they run as, a
//! throwaway PostgreSQL database, open-loop arrivals and percentiles.
//!
//! Each bench compiles this module and uses only part of it.
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use cover::model::account::{ProjectView, UseCase};
use cover::server::services::{accounts, projects};
use cover::server::state::AppState;

/// The bench account's login.
pub const BENCH_EMAIL: &str = "bench@example.com";
/// The bench account's password.
pub const BENCH_PASSWORD: &str = "bench password 1";

/// Signs up the bench's account and creates its project.
pub async fn bench_project(state: &AppState) -> ProjectView {
    let (user, _) = accounts::create_or_update(&state.db, BENCH_EMAIL, BENCH_PASSWORD, false)
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

/// A fresh PostgreSQL database on `COVER_BENCH_POSTGRES_URL` (default
/// `postgres://postgres@127.0.0.1:5432/postgres`), dropped when this is
/// dropped — also when the bench panics or is interrupted.
pub struct PostgresDatabase {
    /// Connection URL of the new database.
    pub url: String,
    admin: String,
    name: String,
}

impl PostgresDatabase {
    /// Creates `<prefix>_<pid>`.
    pub async fn create(prefix: &str) -> PostgresDatabase {
        use sqlx::Executor;
        let admin = std::env::var("COVER_BENCH_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("{prefix}_{}", std::process::id());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL must be running at {admin} (COVER_BENCH_POSTGRES_URL): {e}")
            });
        conn.execute(format!("drop database if exists {name} with (force)").as_str())
            .await
            .expect("drop a leftover bench database");
        conn.execute(format!("create database {name}").as_str())
            .await
            .expect("create bench database");
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        PostgresDatabase {
            url: format!("{base}/{name}"),
            admin,
            name,
        }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        // Drop may run inside the bench's runtime, which must not block on
        // itself: the database is dropped from a thread with its own runtime.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            use sqlx::Executor;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .map_err(|e| e.to_string())?;
                conn.execute(format!("drop database if exists {name} with (force)").as_str())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        if let Ok(Err(error)) | Err(error) = dropped.map_err(|_| "panicked".to_owned()) {
            eprintln!("could not drop the bench database {}: {error}", self.name);
        }
    }
}

/// Starts `count` calls at `rate` per second, open-loop: call `i` starts at
/// `start + i / rate` whether or not the earlier ones have finished, and is
/// given that scheduled time (measure from it to avoid coordinated omission).
/// Returns the calls' outputs in call order and the time from the start until
/// the last one finished.
pub async fn open_loop<F, Fut>(rate: u64, count: usize, call: F) -> (Vec<Fut::Output>, Duration)
where
    F: Fn(usize, tokio::time::Instant) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let scheduled = start + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(scheduled).await;
        tasks.push(tokio::spawn(call(i, scheduled)));
    }
    let mut outputs = Vec::with_capacity(count);
    for task in tasks {
        outputs.push(task.await.expect("request task"));
    }
    (outputs, start.elapsed())
}

/// The `p` quantile (0–1) of sorted durations (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}
