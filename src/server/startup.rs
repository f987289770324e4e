//! Builds the application: database, catalog, sessions, routes (pages, server
//! functions, JSON API, static files) and the bound listener. Tests build it on
//! port 0 and read the real port back.

use crate::app::{shell, App};
use crate::server::config::Config;
use crate::server::db::{Db, NativePool};
use crate::server::error::{Error, Result};
use crate::server::gateway;
use crate::server::ledger::{self, Ledger};
use crate::server::llm::router::LlmRouter;
use crate::server::llm::Executor;
use crate::server::metrics::Metrics;
use crate::server::outbound::AddressPolicy;
use crate::server::protections;
use crate::server::services::capacity::AnswerSlots;
use crate::server::services::internal_rates::RateBook;
use crate::server::services::{accounts, budgets, knowledge, private_hosts, recovery};
use crate::server::state::{AppState, Background};
use crate::server::{catalog, rest};
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{
    generate_route_list, handle_server_fns_with_context, AxumRouteListing, LeptosRoutes,
};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use tower_sessions::cookie::SameSite;
use tower_sessions::session_store::ExpiredDeletion;
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// Idle time after which a session expires.
const SESSION_IDLE_DAYS: i64 = 7;
/// How long shutdown waits for running answers before it gives up on them.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);
/// Saved configurations the knowledge follower may fall behind before it
/// looks at every project again.
const CONFIG_CHANGES_BUFFERED: usize = 256;

/// A built, bound, not yet serving application.
pub struct Application {
    listener: tokio::net::TcpListener,
    router: Router,
    state: AppState,
    /// The answer time limit (how old an unfinished answer must be before it is swept).
    answer_limit: std::time::Duration,
}

impl Application {
    /// Connects to the database, applies migrations, loads the catalog and binds
    /// the site address (port 0 picks a free port).
    pub async fn build(config: Config) -> Result<Application> {
        let db = Db::connect(&config.database_url).await?;
        let catalog = Arc::new(catalog::load()?);
        // What an earlier stop of this or another server left unfinished.
        recovery::sweep(&db, config.router.total_timeout).await?;
        let filled = ledger::performance::fill_from_ledger(&db).await?;
        if filled > 0 {
            tracing::info!(
                rows = filled,
                "the performance rollups were filled from the ledger"
            );
        }
        let internal_rates = RateBook::load(&db.pool).await?;
        let outbound = Arc::new(AddressPolicy::new(config.allowed_private_hosts.clone()));
        private_hosts::load(&db, &outbound).await?;
        let metrics = Arc::new(Metrics::new(config.metrics_token.clone()));
        let ledger = Ledger::start(
            &db,
            &config.database_url,
            ledger::QUEUE_CAPACITY,
            metrics.commit_histogram(),
        )
        .await?;
        let state = AppState {
            leptos_options: config.leptos.clone(),
            db,
            catalog,
            keyring: Arc::new(config.master_key.load()?),
            managed_keys: Arc::new(config.managed_keys.clone()),
            base_urls: Arc::new(config.base_urls.clone()),
            executor: Executor::new(config.timeouts).map_err(Error::internal)?,
            guarded_executor: Executor::guarded(config.timeouts, outbound.clone())
                .map_err(Error::internal)?,
            outbound,
            router: Arc::new(LlmRouter::new(config.router)),
            ledger,
            background: Background::default(),
            internal_rates,
            pinned_configs: Arc::default(),
            answer_slots: Arc::new(AnswerSlots::new(config.capacity)),
            access: config.access,
            key_checks: Arc::default(),
            workspace_limits: Arc::default(),
            knowledge: Arc::default(),
            config_saved: tokio::sync::broadcast::channel(CONFIG_CHANGES_BUFFERED).0,
            metrics,
            hot: Arc::default(),
            leases: Arc::default(),
        };
        if let Some(token) = accounts::fresh_setup_token(&state.db).await? {
            // Printed so the operator (and only the operator, who reads this
            // log) can make the first admin; it works once.
            tracing::warn!(
                "this workspace has no admin yet: open /signup?setup={token} to create one \
                 (or run `cover user create --admin`); the link works once"
            );
        }
        let router = router(state.clone(), config.secure_cookies);
        let listener = tokio::net::TcpListener::bind(config.leptos.site_addr)
            .await
            .map_err(|e| Error::internal(format!("binding {}: {e}", config.leptos.site_addr)))?;
        Ok(Application {
            listener,
            router,
            state,
            answer_limit: config.router.total_timeout,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The shared state (tests read the ledger and the database through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then: streamed answers stop and store
    /// what they have, in-flight requests finish, running answers are awaited
    /// (up to a grace period), the usage ledger is flushed and the database
    /// closed. No usage row is lost by a graceful stop.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let state = self.state.clone();
        let background = state.background.clone();
        let stopping = background.stopping.clone();
        recovery::spawn_sweeper(state.db.clone(), self.answer_limit, stopping.clone());
        budgets::leases::spawn_keeper(state.leases.clone(), state.ledger.clone(), stopping.clone());
        private_hosts::spawn_refresher(state.db.clone(), state.outbound.clone(), stopping.clone());
        // Knowledge builds a stop (or a crash) interrupted go on from where they were.
        if let Err(error) = knowledge::resume_all(&state).await {
            tracing::error!(%error, "could not resume the knowledge builds");
        }
        knowledge::spawn_config_follower(&state);
        // Each streamed event leaves at once: without TCP_NODELAY, Nagle's
        // algorithm and the client's delayed ACK hold small SSE frames back
        // (measured: +44 ms per streamed answer at c=1).
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopping.cancel();
        })
        .await
        .map_err(Error::internal)?;
        background.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, background.tracker.wait())
            .await
            .is_err()
        {
            tracing::error!("answers still running after the shutdown grace period");
        }
        state.leases.release_idle(&state.ledger, true).await;
        state.ledger.flush().await;
        state.db.close().await;
        Ok(())
    }
}

/// The page routes, listed once per process.
///
/// NOTE: listing renders the app with resource loading suppressed through a
/// process-global flag of `leptos_server` (`SuppressResourceLoad`): a resource
/// first polled anywhere in the process while a listing runs waits forever.
/// A second application built in the same process (the integration tests
/// build dozens) would list its routes while the first one renders pages and
/// leave one of those pages hanging. Listing once, before any application
/// exists, keeps every render outside that window.
fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

fn router(state: AppState, secure_cookies: bool) -> Router {
    let routes = page_routes();
    let context_state = state.clone();
    let options = state.leptos_options.clone();
    let pages = Router::new()
        .route(
            "/sfn/{*fn_name}",
            post(server_fn_handler).get(server_fn_handler),
        )
        .merge(rest::routes())
        .merge(gateway::routes())
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(context_state.clone());
                protections::provide_page_nonce();
            },
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(protections::provide_page_nonce, shell))
        .with_state(state.clone());
    with_sessions(pages, &state.db, secure_cookies)
        .layer(axum::middleware::map_response(server_fn_error_status))
        // The limits are the routes' own (protections::limit_body), not
        // axum's blanket 2 MB, which would refuse a question's images.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(protections::limit_body))
        .layer(axum::middleware::from_fn(protections::refuse_cross_site))
        .layer(axum::middleware::map_response(
            move |mut response: Response| async move {
                protections::add_security_headers(response.headers_mut(), secure_cookies);
                response
            },
        ))
        .layer(axum::middleware::from_fn(protections::apply_content_policy))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

async fn server_fn_handler(
    State(state): State<AppState>,
    request: Request<Body>,
) -> impl IntoResponse {
    handle_server_fns_with_context(move || provide_context(state.clone()), request).await
}

/// Largest server-function error body read back to find its status.
const SERVER_FN_ERROR_BYTES: usize = 64 * 1024;

/// Server functions encode their [`AppError`](crate::error::AppError) as
/// JSON under a blanket 500 (marked with the `serverfnerror` header); this
/// answers it with the error's own status (and `Retry-After`), as the JSON
/// API does, so a wrong password is a 401 and only real failures count as
/// 5xx. The browser's client reads the error from any 4xx or 5xx body.
async fn server_fn_error_status(response: Response) -> Response {
    // A plain form post (no JavaScript yet) is redirected back to its page
    // whatever happened: that redirect must stay one.
    if response.status().is_redirection()
        || !response
            .headers()
            .contains_key(leptos::server_fn::error::SERVER_FN_ERROR_HEADER)
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, SERVER_FN_ERROR_BYTES).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "server function failed").into_response();
    };
    if let Ok(error) = serde_json::from_slice::<crate::error::AppError>(&bytes) {
        parts.status = StatusCode::from_u16(error.status()).unwrap_or(parts.status);
        if let Some(secs) = error.retry_after() {
            parts
                .headers
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn with_sessions(router: Router, db: &Db, secure: bool) -> Router {
    let expiry = Expiry::OnInactivity(time::Duration::days(SESSION_IDLE_DAYS));
    match &db.native {
        NativePool::Sqlite(pool) => {
            let store = SqliteStore::new(pool.clone());
            spawn_expired_cleanup(store.clone());
            router.layer(session_layer(store, secure, expiry))
        }
        NativePool::Postgres(pool) => {
            let store = PostgresStore::new(pool.clone());
            spawn_expired_cleanup(store.clone());
            router.layer(session_layer(store, secure, expiry))
        }
    }
}

/// The session cookie's name: over TLS with the `__Host-` prefix, so the
/// browser keeps it only if it is Secure, for the whole site and from this
/// host alone (a sibling subdomain cannot plant or overwrite it).
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-cover_session"
    } else {
        "cover_session"
    }
}

fn session_layer<S: tower_sessions::SessionStore + Clone>(
    store: S,
    secure: bool,
    expiry: Expiry,
) -> SessionManagerLayer<S> {
    SessionManagerLayer::new(store)
        .with_name(session_cookie_name(secure))
        .with_path("/")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure)
        .with_expiry(expiry)
}

fn spawn_expired_cleanup<S: ExpiredDeletion + Clone>(store: S) {
    tokio::spawn(async move {
        if let Err(error) = store
            .continuously_delete_expired(tokio::time::Duration::from_secs(3600))
            .await
        {
            tracing::warn!(%error, "expired-session cleanup stopped");
        }
    });
}
