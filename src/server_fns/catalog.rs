//! The model catalog for the settings and compare pages.

use crate::error::AppError;
use crate::model::catalog::Catalog;
use leptos::prelude::*;

/// The whole catalog (public facts; no sign-in needed).
#[server(prefix = "/sfn", endpoint = "llm/catalog")]
pub async fn get_catalog() -> Result<Catalog, AppError> {
    let state = crate::server::state::AppState::from_context()?;
    Ok(state.catalog.as_ref().clone())
}
