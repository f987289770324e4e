//! Internal rates for self-hosted models: an admin says what a GPU hour or 1M
//! tokens of a self-hosted Llama costs, from a date; without a rate it costs $0.
//! Rates are read from memory on the answer path ([`RateBook::snapshot`]) and
//! reloaded from the database every minute, so every app server sharing a
//! PostgreSQL database picks up a change.

use crate::error::{AppError, FieldError};
use crate::model::catalog::Catalog;
use crate::model::money::parse_usd_nanos;
use crate::model::pricing::InternalRate;
use crate::server::db::{internal_rates, now_ms, Db};
use crate::server::error::Result;
use serde::Deserialize;
use sqlx::AnyPool;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often every app server re-reads the rates.
const RELOAD_EVERY: Duration = Duration::from_secs(60);

/// The rates in force, shared by every request.
#[derive(Clone, Debug, Default)]
pub struct RateBook {
    rates: Arc<RwLock<Arc<Vec<InternalRate>>>>,
}

impl RateBook {
    /// Loads the rates and keeps reloading them in the background.
    pub async fn load(pool: &AnyPool) -> Result<RateBook> {
        let book = RateBook::default();
        book.reload(pool).await?;
        let (refreshed, pool) = (book.clone(), pool.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(error) = refreshed.reload(&pool).await {
                    tracing::warn!(%error, "reloading internal rates failed; keeping the last ones");
                }
            }
        });
        Ok(book)
    }

    /// The rates now (cheap: one shared pointer).
    pub fn snapshot(&self) -> Arc<Vec<InternalRate>> {
        self.rates.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn reload(&self, pool: &AnyPool) -> Result<()> {
        let rates = Arc::new(internal_rates::all(pool).await?);
        *self.rates.write().unwrap_or_else(|e| e.into_inner()) = rates;
        Ok(())
    }
}

/// Body of `PUT /api/admin/internal-rates/:model`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateChange {
    /// From when (`YYYY-MM-DD`).
    pub effective_date: String,
    /// US dollars per hour of answer time, e.g. `"2.50"`.
    pub per_hour_usd: Option<String>,
    /// US dollars per 1M tokens, e.g. `"0.10"`.
    pub per_m_tok_usd: Option<String>,
}

impl RateBook {
    /// Every rate set so far.
    pub fn list(&self) -> Vec<InternalRate> {
        self.snapshot().as_ref().clone()
    }

    /// Sets a self-hosted model's rate from a date (the model must be a
    /// self-hosted one of `catalog`); every invalid field is named.
    pub async fn set(
        &self,
        db: &Db,
        catalog: &Catalog,
        admin_id: &str,
        model: &str,
        change: &RateChange,
    ) -> Result<InternalRate> {
        let mut errors = Vec::new();
        let mut invalid = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.into(),
                message,
            })
        };
        match catalog.model(model) {
            Some(m) if m.capabilities.self_hosted => {}
            Some(m) => invalid(
                "model",
                format!(
                    "{} has list prices; internal rates are for self-hosted models",
                    m.name
                ),
            ),
            None => invalid("model", format!("unknown model `{model}`")),
        }
        if chrono::NaiveDate::parse_from_str(&change.effective_date, "%Y-%m-%d").is_err() {
            invalid("effectiveDate", "a date like 2026-01-31".into());
        }
        let mut amount = |field: &str, text: &Option<String>| match text.as_deref().map(str::trim) {
            None | Some("") => 0,
            Some(text) => parse_usd_nanos(text).unwrap_or_else(|message| {
                invalid(field, message);
                0
            }),
        };
        let per_hour_nanos = amount("perHourUsd", &change.per_hour_usd);
        let per_m_tok_nanos = amount("perMTokUsd", &change.per_m_tok_usd);
        let neither = [&change.per_hour_usd, &change.per_m_tok_usd]
            .iter()
            .all(|v| v.as_deref().is_none_or(|t| t.trim().is_empty()));
        if neither {
            invalid(
                "perHourUsd",
                "give a rate per hour, per 1M tokens, or both".into(),
            );
        }
        if !errors.is_empty() {
            return Err(AppError::InvalidFields { errors }.into());
        }
        let rate = InternalRate {
            model: model.to_owned(),
            effective_date: change.effective_date.clone(),
            per_hour_nanos,
            per_m_tok_nanos,
        };
        internal_rates::upsert(&db.writer, &rate, admin_id, now_ms()).await?;
        self.reload(&db.pool).await?;
        Ok(rate)
    }
}
