//! The admin's money endpoints: internal rates for self-hosted models, and
//! the monthly budget of projects on Cover's managed keys.

use crate::model::costs::ManagedKeyLimits;
use crate::model::pricing::InternalRate;
use crate::server::auth::AdminUser;
use crate::server::error::Result;
use crate::server::rest::ApiJson;
use crate::server::services::budgets::current_month;
use crate::server::services::internal_rates::RateChange;
use crate::server::state::AppState;
use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// The price routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/internal-rates", get(list_rates))
        .route("/api/admin/internal-rates/{model}", put(set_rate))
        .route(
            "/api/admin/managed-budget",
            get(get_managed_budget).put(set_managed_budget),
        )
}

/// `PUT /api/admin/managed-budget`: the monthly budget every project on
/// Cover's managed keys has unless it sets its own, and the workspace-wide
/// monthly cap on all of them together.
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedLimitsChange {
    /// Exact decimal dollars per calendar month (UTC), above 0.
    pub managed_budget_usd: String,
    /// The cap in exact decimal dollars per month, or empty for no cap;
    /// absent: unchanged.
    #[serde(default)]
    pub cap_usd: Option<String>,
}

async fn get_managed_budget(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<ManagedKeyLimits>> {
    Ok(Json(
        state
            .workspace_limits
            .view(&state.db, &current_month())
            .await?,
    ))
}

async fn set_managed_budget(
    State(state): State<AppState>,
    _admin: AdminUser,
    ApiJson(body): ApiJson<ManagedLimitsChange>,
) -> Result<Json<ManagedKeyLimits>> {
    let limits = &state.workspace_limits;
    limits
        .set(&state.db, &body.managed_budget_usd, body.cap_usd.as_deref())
        .await?;
    Ok(Json(limits.view(&state.db, &current_month()).await?))
}

/// `GET /api/admin/internal-rates`.
#[derive(Serialize, schemars::JsonSchema)]
pub struct RateList {
    /// Every rate set so far.
    rates: Vec<InternalRate>,
}

async fn list_rates(State(state): State<AppState>, _admin: AdminUser) -> Json<RateList> {
    Json(RateList {
        rates: state.internal_rates.list(),
    })
}

async fn set_rate(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(model): Path<String>,
    ApiJson(change): ApiJson<RateChange>,
) -> Result<Json<InternalRate>> {
    Ok(Json(
        state
            .internal_rates
            .set(&state.db, &state.catalog, &admin.user_id, &model, &change)
            .await?,
    ))
}
