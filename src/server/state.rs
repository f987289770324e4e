//! The one application state every handler and server function gets.

use crate::model::catalog::Catalog;
use crate::server::config::ManagedKeys;
use crate::server::crypto::Keyring;
use crate::server::db::Db;
use crate::server::llm::{BaseUrls, Executor};
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

/// Shared, cheaply cloneable state: handed to axum routes and provided as Leptos
/// context to every server function and SSR render.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// Site settings.
    pub leptos_options: LeptosOptions,
    /// The database (SQLite or PostgreSQL).
    pub db: Db,
    /// The model catalog, loaded and checked at start-up.
    pub catalog: Arc<Catalog>,
    /// Master keys sealing BYOK provider keys.
    pub keyring: Arc<Keyring>,
    /// Cover-managed provider keys.
    pub managed_keys: Arc<ManagedKeys>,
    /// Provider base URLs.
    pub base_urls: Arc<BaseUrls>,
    /// The one HTTP client every provider call goes through.
    pub executor: Executor,
}

impl AppState {
    /// The state provided to the current server function or render.
    pub fn from_context() -> Result<AppState, crate::error::AppError> {
        leptos::prelude::use_context::<AppState>().ok_or_else(|| {
            tracing::error!("AppState missing from the Leptos context");
            crate::error::AppError::Internal
        })
    }
}
