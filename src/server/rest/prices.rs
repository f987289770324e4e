//! The admin's price endpoints: internal rates for self-hosted models.

use crate::model::pricing::InternalRate;
use crate::server::auth::AdminUser;
use crate::server::error::Result;
use crate::server::rest::ApiJson;
use crate::server::services::internal_rates::RateChange;
use crate::server::state::AppState;
use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Serialize;

/// The price routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/admin/internal-rates", get(list_rates))
        .route("/api/admin/internal-rates/{model}", put(set_rate))
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
