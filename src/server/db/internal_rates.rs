//! The `internal_rate` table: what an admin says a self-hosted model costs.

use crate::model::pricing::InternalRate;
use crate::server::db::col;
use crate::server::error::Result;
use sqlx::AnyPool;

/// Every rate, oldest first per model.
pub async fn all(pool: &AnyPool) -> Result<Vec<InternalRate>> {
    let rows = sqlx::query(
        "select model, effective_date, per_hour_nanos, per_m_tok_nanos from internal_rate \
         order by model, effective_date",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(InternalRate {
                model: col(row, "model")?,
                effective_date: col(row, "effective_date")?,
                per_hour_nanos: col(row, "per_hour_nanos")?,
                per_m_tok_nanos: col(row, "per_m_tok_nanos")?,
            })
        })
        .collect()
}

/// Sets the rate of a model from a date (replacing one set for that same date).
pub async fn upsert(pool: &AnyPool, rate: &InternalRate, created_by: &str, now: i64) -> Result<()> {
    sqlx::query(
        "insert into internal_rate (model, effective_date, per_hour_nanos, per_m_tok_nanos, \
           created_by, created_at) values ($1, $2, $3, $4, $5, $6) \
         on conflict (model, effective_date) do update set \
           per_hour_nanos = excluded.per_hour_nanos, per_m_tok_nanos = excluded.per_m_tok_nanos, \
           created_by = excluded.created_by, created_at = excluded.created_at",
    )
    .bind(&rate.model)
    .bind(&rate.effective_date)
    .bind(rate.per_hour_nanos)
    .bind(rate.per_m_tok_nanos)
    .bind(created_by)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}
