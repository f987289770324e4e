//! Test harness: a fresh database per test (a temporary SQLite file, or a new
//! PostgreSQL database), the real application on port 0, and a cookie-keeping
//! HTTP client.

use cover::model::account::SignupMode;
use cover::server::config::{AccessSettings, Config, ManagedKeys, MasterKeySource};
use cover::server::db::Db;
use cover::server::llm::router::RouterSettings;
use cover::server::llm::Timeouts;
use cover::server::outbound::AllowList;
use cover::server::services::capacity::CapacityLimits;
use cover::server::simulator::{self, SimulatorOptions};
use cover::server::startup::Application;
use cover::server::state::AppState;
use reqwest::{Client, Response, StatusCode};
use secrecy::SecretString;
use serde_json::Value;
use std::time::Duration;

/// Which engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per engine: `both_engines!(name, |engine| async move { … })`.
#[macro_export]
macro_rules! both_engines {
    ($(#[$meta:meta])* $name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                $crate::helpers::within_limit(($body)($crate::helpers::Engine::Sqlite)).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                $crate::helpers::within_limit(($body)($crate::helpers::Engine::Postgres)).await
            }
        }
    };
}

/// A database created for one test; the SQLite file lives as long as this.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// The PostgreSQL server the suite creates its databases on.
fn postgres_admin_url() -> String {
    std::env::var("COVER_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDatabase {
    /// A brand-new, empty database on `engine`.
    pub async fn create(engine: Engine) -> TestDatabase {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("cover.db").display());
                TestDatabase {
                    url,
                    _dir: Some(dir),
                }
            }
            Engine::Postgres => {
                use sqlx::Executor;
                let admin = postgres_admin_url();
                let name = format!("cover_test_{}", uuid_like());
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .expect("PostgreSQL must be running (scripts/test starts it)");
                conn.execute(format!("create database {name}").as_str())
                    .await
                    .expect("create test database");
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                TestDatabase {
                    url: format!("{base}/{name}"),
                    _dir: None,
                }
            }
        }
    }

    /// Connects and migrates; the database lives as long as the result.
    pub async fn connect(self) -> TestDb {
        let db = Db::connect(&self.url)
            .await
            .expect("connect to test database");
        TestDb {
            db,
            _database: self,
        }
    }
}

/// A connected, migrated test database (kept alive with its SQLite file).
pub struct TestDb {
    db: Db,
    _database: TestDatabase,
}

impl std::ops::Deref for TestDb {
    type Target = Db;

    fn deref(&self) -> &Db {
        &self.db
    }
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The one provider key the test simulator accepts (also the managed key).
pub const GOOD_KEY: &str = "sk-ant-api03-test-key-abcdefghk4j2";

/// Starts the provider simulator on port 0 with `options`; it accepts only
/// [`GOOD_KEY`].
pub async fn spawn_simulator(options: SimulatorOptions) -> String {
    let options = SimulatorOptions {
        accept_key: Some(GOOD_KEY.to_owned()),
        ..options
    };
    simulator::start_on_loopback(options)
        .await
        .expect("the simulator starts")
        .url
}

/// Everything the application logged during this test binary (all levels):
/// the no-leak test scans it for secrets.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

fn log_buffer() -> &'static std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> =
        std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .try_init();
        buffer
    })
}

struct LogSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The running application and a client that keeps cookies.
pub struct TestApp {
    pub address: String,
    /// The simulator every provider's base URL points at.
    pub simulator: String,
    pub client: Client,
    /// The application's state (its database pool and usage ledger).
    pub state: AppState,
    /// The database, when this application created it (it lives as long).
    _database: Option<TestDatabase>,
    database_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    serving: Option<tokio::task::JoinHandle<()>>,
}

/// What a test may change about the application it starts.
#[derive(Clone)]
pub struct TestOptions {
    /// Retry, fallback and time limits.
    pub router: RouterSettings,
    /// Provider HTTP timeouts.
    pub timeouts: Timeouts,
    /// The simulator's behaviour (pacing, random faults).
    pub simulator: SimulatorOptions,
    /// Answers in flight and how long one waits in line.
    pub capacity: CapacityLimits,
    /// Non-public hosts user-supplied URLs may reach: the tests' loopback
    /// servers (a Llama at the simulator, webhook receivers) by default.
    pub allowed_private_hosts: AllowList,
    /// Cookies marked Secure (as behind TLS).
    pub secure_cookies: bool,
    /// Who may sign up: open by default, so tests make accounts freely.
    pub signup: SignupMode,
}

impl Default for TestOptions {
    /// Time limits short enough for tests, long enough for a loaded machine.
    fn default() -> Self {
        TestOptions {
            router: RouterSettings {
                ttft_timeout: Duration::from_secs(10),
                attempt_timeout: Duration::from_secs(20),
                total_timeout: Duration::from_secs(60),
                backoff_base: Duration::from_millis(5),
                backoff_cap: Duration::from_millis(50),
                max_retry_after: Duration::from_secs(3),
                ..RouterSettings::default()
            },
            timeouts: Timeouts {
                idle: Duration::from_secs(10),
                ..Timeouts::default()
            },
            simulator: SimulatorOptions::default(),
            capacity: CapacityLimits {
                // A loaded CI machine may take a while through a burst.
                queue_deadline: Duration::from_secs(60),
                ..CapacityLimits::default()
            },
            allowed_private_hosts: AllowList::parse("127.0.0.1, localhost")
                .expect("a valid allow-list"),
            secure_cookies: false,
            signup: SignupMode::Open,
        }
    }
}

impl TestOptions {
    /// Sub-second time limits, for tests that provoke hangs, stalls and timeouts.
    pub fn impatient() -> Self {
        let mut options = TestOptions::default();
        options.router.ttft_timeout = Duration::from_millis(400);
        options.router.attempt_timeout = Duration::from_millis(600);
        options.timeouts.idle = Duration::from_millis(400);
        options
    }
}

impl TestApp {
    /// Builds the real application on a fresh database and serves it on port 0.
    pub async fn spawn(engine: Engine) -> TestApp {
        TestApp::spawn_with(engine, TestOptions::default()).await
    }

    /// Same as [`TestApp::spawn`] with other time limits or simulator behaviour.
    pub async fn spawn_with(engine: Engine, options: TestOptions) -> TestApp {
        log_buffer();
        let database = TestDatabase::create(engine).await;
        let simulator = spawn_simulator(options.simulator.clone()).await;
        let url = database.url.clone();
        TestApp::serve(&url, simulator, Some(database), options).await
    }

    async fn serve(
        database_url: &str,
        simulator: String,
        database: Option<TestDatabase>,
        options: TestOptions,
    ) -> TestApp {
        let managed = || Some(SecretString::from(GOOD_KEY.to_owned()));
        let config = Config {
            managed_keys: ManagedKeys {
                claude: managed(),
                openai: managed(),
                gemini: None,
                voyage: managed(),
            },
            master_key: MasterKeySource::Env {
                key: SecretString::from(PROCESS_MASTER_KEY.to_owned()),
                version: None,
            },
            timeouts: options.timeouts,
            router: options.router,
            capacity: options.capacity,
            allowed_private_hosts: options.allowed_private_hosts,
            secure_cookies: options.secure_cookies,
            access: AccessSettings {
                signup: options.signup,
                trust_proxy: false,
            },
            metrics_token: Some(SecretString::from(METRICS_TOKEN.to_owned())),
            ..Config::loopback(database_url, &simulator)
        };
        let app = Application::build(config).await.expect("app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let state = app.state().clone();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            app.run_until(async move {
                let _ = stop.await;
            })
            .await
            .expect("graceful shutdown");
        });
        TestApp {
            address,
            simulator,
            client: new_client(),
            state,
            _database: database,
            database_url: database_url.to_owned(),
            shutdown: Some(shutdown),
            serving: Some(serving),
        }
    }

    /// The database's URL (to reconnect after a shutdown).
    pub fn database_url(&self) -> String {
        self.database_url.clone()
    }

    /// Stops the application gracefully and waits until it has (the ledger
    /// is flushed and the database closed when this returns).
    pub async fn shut_down(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(serving) = self.serving.take() {
            serving.await.expect("the server task ends");
        }
    }

    /// Every file of the SQLite database (main file, WAL, shared memory).
    pub fn sqlite_files(&self) -> Vec<std::path::PathBuf> {
        self._database
            .as_ref()
            .and_then(|database| database._dir.as_ref())
            .and_then(|dir| std::fs::read_dir(dir.path()).ok())
            .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    }

    /// A full URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// POSTs JSON with this app's client.
    pub async fn post(&self, path: &str, body: Value) -> Response {
        post_with(&self.client, &self.url(path), body).await
    }

    /// GETs with this app's client.
    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    /// PATCHes JSON with this app's client.
    pub async fn patch(&self, path: &str, body: Value) -> Response {
        self.client
            .patch(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("PATCH")
    }

    /// Starts a conversation in `project`; returns its summary (`id`, `provider`, `model`, …).
    pub async fn conversation(&self, project: &str) -> Value {
        let response = self
            .post(
                &format!("/api/projects/{project}/conversations"),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("json")
    }

    /// Starts a conversation in `project`; returns its id.
    pub async fn conversation_id(&self, project: &str) -> String {
        self.conversation(project).await["id"]
            .as_str()
            .expect("conversation id")
            .to_owned()
    }

    /// Asks a question in a conversation (the answer as JSON, not streamed).
    pub async fn ask(&self, project: &str, conversation: &str, text: &str) -> Response {
        self.post(
            &messages_path(project, conversation),
            serde_json::json!({ "content": text }),
        )
        .await
    }

    /// Asks a question that must be answered; returns the answer.
    pub async fn ask_ok(&self, project: &str, conversation: &str, text: &str) -> Value {
        let response = self.ask(project, conversation, text).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    /// Rates (`"up"`, `"down"`) or clears (`null`) an answer; it must be taken.
    pub async fn rate(&self, project: &str, conversation: &str, message: &str, rating: Value) {
        let path = format!(
            "/api/projects/{project}/conversations/{conversation}/messages/{message}/rating"
        );
        let response = self
            .client
            .put(self.url(&path))
            .json(&serde_json::json!({ "rating": rating }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }

    /// A new API token of `project` (its secret).
    pub async fn token(&self, project: &str) -> String {
        let response = self
            .post(
                &format!("/api/projects/{project}/tokens"),
                serde_json::json!({ "name": "test program" }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: Value = response.json().await.expect("json");
        created["secret"].as_str().expect("token secret").to_owned()
    }

    /// Changes the project's LLM configuration, which must succeed.
    pub async fn configure(&self, project: &str, patch: Value) {
        let response = self
            .patch(&format!("/api/projects/{project}/llm-config"), patch)
            .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }

    /// Provider requests the simulator has received so far.
    pub async fn simulator_requests(&self) -> i64 {
        let stats: Value = new_client()
            .get(format!("{}/_sim/stats", self.simulator))
            .send()
            .await
            .expect("simulator stats")
            .json()
            .await
            .expect("json");
        stats["requests"].as_i64().expect("request count")
    }

    /// Signs up `email` with this app's client and returns the answer body.
    pub async fn sign_up(&self, email: &str) -> Value {
        let response = self
            .post(
                "/api/auth/signup",
                serde_json::json!({ "email": email, "password": PASSWORD }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("json")
    }

    /// Signs up `email` as the workspace admin with this app's client, through
    /// the one-time setup token (made afresh, as a start-up does).
    pub async fn sign_up_admin(&self, email: &str) -> Value {
        let token = cover::server::services::accounts::fresh_setup_token(&self.state.db)
            .await
            .expect("setup token")
            .expect("no admin yet");
        let response = self
            .post(
                "/api/auth/signup",
                serde_json::json!({ "email": email, "password": PASSWORD, "setupToken": token }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("json")
    }

    /// Invites `email` to `project` as the owner signed in on this app's
    /// client, and has a new client sign up through the link; answers it.
    pub async fn invited_member(&self, project: &str, email: &str) -> Client {
        let invitation = self.invitation(project, email).await;
        let client = new_client();
        let response = post_with(
            &client,
            &self.url("/api/auth/signup"),
            serde_json::json!({ "email": email, "password": PASSWORD, "invitation": invitation }),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        client
    }

    /// An invitation to `project` for `email`, made by this app's client (its secret).
    pub async fn invitation(&self, project: &str, email: &str) -> String {
        let response = self
            .post(
                &format!("/api/projects/{project}/members"),
                serde_json::json!({ "email": email }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: Value = response.json().await.expect("json");
        let link = created["link"].as_str().expect("invitation link");
        link.split_once("invitation=")
            .expect("the link carries the invitation")
            .1
            .to_owned()
    }

    /// Creates a project with this app's (signed-in) client; returns its id.
    pub async fn new_project(&self, name: &str) -> String {
        self.new_project_as(&self.client, name).await
    }

    /// Creates a project as the user signed in on `client`; returns its id.
    pub async fn new_project_as(&self, client: &Client, name: &str) -> String {
        let response = post_with(
            client,
            &self.url("/api/projects"),
            serde_json::json!({ "name": name }),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let project: Value = response.json().await.expect("json");
        project["id"].as_str().expect("project id").to_owned()
    }

    /// A second signed-in user with their own client.
    pub async fn other_user(&self, email: &str) -> Client {
        let client = new_client();
        let response = post_with(
            &client,
            &self.url("/api/auth/signup"),
            serde_json::json!({ "email": email, "password": PASSWORD }),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        client
    }
}

/// The path questions to a conversation are posted to.
pub fn messages_path(project: &str, conversation: &str) -> String {
    format!("/api/projects/{project}/conversations/{conversation}/messages")
}

/// The password every test account uses.
pub const PASSWORD: &str = "correct horse battery";

/// A client that keeps cookies, like a browser.
pub fn new_client() -> Client {
    client_with_limit(REQUEST_LIMIT)
}

/// A cookie-keeping client whose requests may take up to `limit`.
pub fn client_with_limit(limit: Duration) -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_LIMIT)
        .timeout(limit)
        .build()
        .expect("client")
}

/// How long a test waits to connect anywhere: a server that does not listen
/// fails the test at once, by name.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(5);
/// How long any one request of a test may take, body included: a hang fails
/// the test in seconds, by name, instead of running into CI's time limit.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(20);
/// How long a request of a deliberate burst may take (it waits in line
/// behind the burst's other answers).
pub const BURST_REQUEST_LIMIT: Duration = Duration::from_secs(90);
/// How long a whole test may take (the same reason, for waits that are not
/// HTTP requests).
pub const TEST_LIMIT: Duration = Duration::from_secs(240);

/// Runs a test body within [`TEST_LIMIT`].
pub async fn within_limit(body: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(TEST_LIMIT, body).await.is_err() {
        panic!("the test did not finish within {TEST_LIMIT:?}");
    }
}

/// POSTs JSON with `client`.
pub async fn post_with(client: &Client, url: &str, body: Value) -> Response {
    client.post(url).json(&body).send().await.expect("POST")
}

/// Reads an error answer: status, `field` and `message`.
pub async fn error_of(response: Response) -> (StatusCode, Option<String>, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("error body is JSON");
    (
        status,
        body["field"].as_str().map(str::to_owned),
        body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The operator's metrics token of every test server (`/metrics`).
pub const METRICS_TOKEN: &str = "metrics-token-of-the-tests";

/// A `cover serve` process of its own, on a database the test chose, with
/// every provider at `simulator`: what `kill -9` can be tried on.
pub struct ServerProcess {
    child: tokio::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub address: String,
}

/// The `cover` binary Cargo built for this test run.
pub const COVER_BIN: &str = env!("CARGO_BIN_EXE_cover");

/// How long a server process may take to start answering.
const START_LIMIT: Duration = Duration::from_secs(30);

impl ServerProcess {
    /// Starts `cover serve` and waits until it answers; `env` adds or
    /// overrides variables (time limits, master key).
    pub async fn start(database_url: &str, simulator: &str, env: &[(&str, &str)]) -> ServerProcess {
        Self::launch(&["serve"], database_url, simulator, env).await
    }

    /// Starts `cover` with `args` (a way of serving) and waits until it answers.
    pub async fn launch(
        args: &[&str],
        database_url: &str,
        simulator: &str,
        env: &[(&str, &str)],
    ) -> ServerProcess {
        use tokio::io::AsyncBufReadExt;
        let mut command = tokio::process::Command::new(COVER_BIN);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("COVER_MASTER_KEY", PROCESS_MASTER_KEY)
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("ANTHROPIC_API_KEY", GOOD_KEY)
            .env("OPENAI_API_KEY", GOOD_KEY)
            .env("VOYAGE_API_KEY", GOOD_KEY)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        for provider in ["ANTHROPIC", "OPENAI", "GEMINI", "OLLAMA", "VOYAGE"] {
            command.env(format!("COVER_{provider}_BASE_URL"), simulator);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("cover serve starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let address = tokio::time::timeout(START_LIMIT, async {
            while let Some(line) = lines.next_line().await.expect("server output") {
                if let Some(address) = line.strip_prefix("cover listening on ") {
                    return address.trim().to_owned();
                }
            }
            panic!("cover serve exited before listening")
        })
        .await
        .expect("cover serve listens within the start limit");
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        ServerProcess { child, address }
    }

    /// A full URL for `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Kills the process with SIGKILL (nothing is flushed) and waits for it.
    pub async fn kill_9(&mut self) {
        self.child.start_kill().expect("SIGKILL sent");
        self.child.wait().await.expect("the process is gone");
    }
}

/// The master key every server process of a test run shares (base64 of 32 bytes).
pub const PROCESS_MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// Runs `cover user create --admin` on a database; returns nothing, panics on failure.
pub async fn create_admin(database_url: &str, email: &str) {
    let output = tokio::time::timeout(
        START_LIMIT,
        tokio::process::Command::new(COVER_BIN)
            .args([
                "user",
                "create",
                "--email",
                email,
                "--password",
                PASSWORD,
                "--admin",
            ])
            .env("DATABASE_URL", database_url)
            .env("COVER_MASTER_KEY", PROCESS_MASTER_KEY)
            .output(),
    )
    .await
    .expect("cover user create finishes")
    .expect("cover user create runs");
    assert!(
        output.status.success(),
        "cover user create: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Stores an account straight in the database (repository tests); `None`
/// when the email is taken.
pub async fn insert_user(
    pool: &sqlx::AnyPool,
    email: &str,
    role: cover::model::account::WorkspaceRole,
) -> Option<cover::server::db::users::UserRecord> {
    let mut tx = pool.begin().await.expect("a transaction");
    let user = cover::server::db::users::insert(&mut tx, email, "h", role)
        .await
        .expect("the insert runs");
    tx.commit().await.expect("the commit");
    user
}

/// Follows a paged list from its first page (`limit` per page) to its last:
/// the ids of every item in order (under `key`), and how many pages it took.
/// Each page must hold at most `limit` items.
pub async fn every_page(app: &TestApp, path: &str, key: &str, limit: u32) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for pages in 1..=100 {
        let url = match &cursor {
            None => format!("{path}?limit={limit}"),
            Some(cursor) => format!("{path}?limit={limit}&cursor={cursor}"),
        };
        let page: Value = app.get(&url).await.json().await.expect("a page");
        let items = page[key].as_array().expect("a list");
        assert!(items.len() <= limit as usize, "{page}");
        ids.extend(
            items
                .iter()
                .map(|item| item["id"].as_str().expect("an id").to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (ids, pages),
        }
    }
    panic!("{path}: the pages never ended");
}

/// Schedules a simulator fault for every request to `model` until cleared.
pub async fn fail_model(app: &TestApp, model: &str, fault: &str) {
    let response = new_client()
        .post(format!("{}/_sim/faults", app.simulator))
        .json(
            &serde_json::json!({ "model": model, "fault": fault, "times": 0, "retryAfterSecs": 0 }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "scheduling {fault}");
}

/// Clears every scheduled simulator fault.
pub async fn clear_faults(app: &TestApp) {
    let response = new_client()
        .delete(format!("{}/_sim/faults", app.simulator))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

/// The configuration patch that turns the fallback on, to `model` of `provider`.
pub fn fallback_to(provider: &str, model: &str, attempts: u32) -> Value {
    serde_json::json!({"fallbackConfig": {"enabled": true, "provider": provider, "model": model, "retryAttempts": attempts}})
}

/// The models `GET /v1/models` lists for `token` at `url`: (id, owned_by).
pub async fn listed_models(url: &str, token: &str) -> Vec<(String, String)> {
    let list: Value = new_client()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /v1/models")
        .json()
        .await
        .expect("a JSON list");
    assert_eq!(list["object"], "list", "{list}");
    list["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| {
            let text = |key: &str| m[key].as_str().expect("a string").to_owned();
            (text("id"), text("owned_by"))
        })
        .collect()
}

/// The project's stored messages counted by role and status, in role order:
/// what every answer and question of a burst ended as.
pub async fn messages_by_role_and_status(
    app: &TestApp,
    project: &str,
) -> Vec<(String, String, i64)> {
    sqlx::query_as(
        "select m.role, m.status, count(*) from message m \
         join conversation c on c.conversation_id = m.conversation_id \
         where c.project_id = $1 group by m.role, m.status order by m.role",
    )
    .bind(project)
    .fetch_all(&app.state.db.pool)
    .await
    .unwrap()
}
