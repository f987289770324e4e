//! The one application state every handler and server function gets.

use crate::model::catalog::Catalog;
use crate::model::catalog::ProviderId;
use crate::server::config::{AccessSettings, ManagedKeys};
use crate::server::crypto::Keyring;
use crate::server::db::Db;
use crate::server::hot_reads::HotReads;
use crate::server::ledger::Ledger;
use crate::server::llm::router::LlmRouter;
use crate::server::llm::{BaseUrls, Executor};
use crate::server::metrics::Metrics;
use crate::server::outbound::AddressPolicy;
use crate::server::services::budgets::leases::Leases;
use crate::server::services::capacity::AnswerSlots;
use crate::server::services::internal_rates::RateBook;
use crate::server::services::key_checks::KeyCheckLimiter;
use crate::server::services::knowledge::work::KnowledgeWork;
use crate::server::services::llm_settings::draft::PinnedConfigs;
use crate::server::services::workspace_limits::WorkspaceLimits;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
    /// The HTTP client of provider calls to the operator's own base URLs.
    pub executor: Executor,
    /// The guarded client of calls to URLs a user supplied (Llama base URLs, Validate).
    #[from_ref(skip)]
    pub guarded_executor: Executor,
    /// Which non-public addresses user-supplied URLs (webhooks too) may reach.
    pub outbound: Arc<AddressPolicy>,
    /// Retry, fallback and circuit breakers for every provider call of a chat.
    pub router: Arc<LlmRouter>,
    /// The usage ledger's writer.
    pub ledger: Ledger,
    /// Answers running in the background, and the signal that stops them.
    pub background: Background,
    /// What self-hosted models cost (admin-set internal rates).
    pub internal_rates: RateBook,
    /// Saved configuration versions answers have read (never changed once saved).
    pub pinned_configs: Arc<PinnedConfigs>,
    /// How many answers run at once, on this server and per project.
    pub answer_slots: Arc<AnswerSlots>,
    /// Who may sign up; where client addresses come from.
    pub access: AccessSettings,
    /// How often each caller may have a key checked.
    pub key_checks: Arc<KeyCheckLimiter>,
    /// The budget of projects on Cover's managed keys without their own.
    pub workspace_limits: Arc<WorkspaceLimits>,
    /// Knowledge builds running on this server, their progress, and the
    /// serving indexes' vectors.
    #[from_ref(skip)]
    pub knowledge: Arc<KnowledgeWork>,
    /// Project ids whose LLM configuration was just saved, for the work
    /// that follows a change (the knowledge base re-embeds when its
    /// embedding model changed) without the settings service knowing it.
    #[from_ref(skip)]
    pub config_saved: tokio::sync::broadcast::Sender<String>,
    /// Prometheus metrics of every provider attempt (`/metrics`).
    #[from_ref(skip)]
    pub metrics: Arc<Metrics>,
    /// What every request reads first (token, configuration, keys, running
    /// experiment), kept for a moment.
    #[from_ref(skip)]
    pub hot: Arc<HotReads>,
    /// Budget leases and the answers running per project month on this
    /// server (see `services::budgets`).
    #[from_ref(skip)]
    pub leases: Arc<Leases>,
}

impl AppState {
    /// The executor for a call to `provider` at `base_url`: the operator's own
    /// base URL (from the environment) is trusted; any other is one a user
    /// supplied and goes through the guard.
    pub fn executor_for(&self, provider: ProviderId, base_url: &str) -> &Executor {
        if self.base_urls.base_url(provider) == base_url {
            &self.executor
        } else {
            &self.guarded_executor
        }
    }
}

/// Work that outlives the request that started it (an answer whose client went
/// away still finishes, is stored and billed). Graceful shutdown stops it,
/// waits for it, then flushes the ledger.
#[derive(Clone, Debug, Default)]
pub struct Background {
    /// Every running answer.
    pub tracker: TaskTracker,
    /// Cancelled at shutdown: streamed answers stop and store what they have.
    pub stopping: CancellationToken,
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
