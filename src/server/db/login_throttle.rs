//! The `login_throttle` table: consecutive failed logins per throttle key (an
//! account, an account from one address, one address), so guessing is slowed
//! down across every app server sharing the database.

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

/// The recorded failures for a key, if any.
pub async fn get(pool: &AnyPool, key: &str) -> Result<Option<Failures>> {
    let row =
        sqlx::query("select failures, last_failure_at from login_throttle where throttle_key = $1")
            .bind(key)
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

/// Counts one more failure at `now` (Unix ms, atomically) and returns the new
/// total; a streak whose last failure is before `forget_before` starts again.
pub async fn record_failure(
    pool: &AnyPool,
    key: &str,
    now: i64,
    forget_before: i64,
) -> Result<i64> {
    let row = sqlx::query(
        "insert into login_throttle (throttle_key, failures, last_failure_at) values ($1, 1, $2) \
         on conflict (throttle_key) do update set failures = case \
             when login_throttle.last_failure_at < $3 then 1 else login_throttle.failures + 1 end, \
                                           last_failure_at = excluded.last_failure_at \
         returning failures",
    )
    .bind(key)
    .bind(now)
    .bind(forget_before)
    .fetch_one(pool)
    .await?;
    col(&row, "failures")
}

/// Forgets the failures after a successful login.
pub async fn clear(pool: &AnyPool, key: &str) -> Result<()> {
    sqlx::query("delete from login_throttle where throttle_key = $1")
        .bind(key)
        .execute(pool)
        .await?;
    Ok(())
}
