//! The `login_attempt` table: consecutive failed logins per email, so guessing
//! is slowed down across every app server sharing the database.

use crate::server::db::col;
use crate::server::error::Result;
use sqlx::AnyPool;

/// Failures so far and when the last one happened (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    /// Consecutive failures.
    pub count: i64,
    /// Time of the last failure.
    pub last_at: i64,
}

/// The recorded failures for an email, if any.
pub async fn get(pool: &AnyPool, email: &str) -> Result<Option<Failures>> {
    let row = sqlx::query("select failures, last_failure_at from login_attempt where email = $1")
        .bind(email)
        .fetch_optional(pool)
        .await?;
    row.map(|row| {
        Ok(Failures {
            count: col(&row, "failures")?,
            last_at: col(&row, "last_failure_at")?,
        })
    })
    .transpose()
}

/// Counts one more failure at `now` (Unix ms, atomically) and returns the new total.
pub async fn record_failure(pool: &AnyPool, email: &str, now: i64) -> Result<i64> {
    let row = sqlx::query(
        "insert into login_attempt (email, failures, last_failure_at) values ($1, 1, $2) \
         on conflict (email) do update set failures = login_attempt.failures + 1, \
                                           last_failure_at = excluded.last_failure_at \
         returning failures",
    )
    .bind(email)
    .bind(now)
    .fetch_one(pool)
    .await?;
    col(&row, "failures")
}

/// Forgets the failures after a successful login.
pub async fn clear(pool: &AnyPool, email: &str) -> Result<()> {
    sqlx::query("delete from login_attempt where email = $1")
        .bind(email)
        .execute(pool)
        .await?;
    Ok(())
}
