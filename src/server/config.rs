//! Configuration from the environment (documented in README.md and `.env.sample`).
//! Site settings (address, site root, output name) come from `Leptos.toml`, which
//! `LEPTOS_*` variables override.

use crate::model::account::SignupMode;
use crate::model::catalog::ProviderId;
use crate::server::crypto::{self, Keyring};
use crate::server::error::{Error, Result};
use crate::server::llm::router::RouterSettings;
use crate::server::llm::{BaseUrls, Timeouts};
use crate::server::outbound::AllowList;
use crate::server::services::capacity::CapacityLimits;
use leptos::config::LeptosOptions;
use secrecy::SecretString;
use std::path::{Path, PathBuf};

/// Where the SQLite database lives when `DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://cover.db";

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// `sqlite://…` (default) or `postgres://…`.
    pub database_url: String,
    /// Mark the session cookie `Secure` (set when served over TLS).
    pub secure_cookies: bool,
    /// Site settings for Leptos (address, site root, pkg dir, output name).
    pub leptos: LeptosOptions,
    /// Provider API base URLs (`COVER_*_BASE_URL`).
    pub base_urls: BaseUrls,
    /// Cover-managed provider keys (`ANTHROPIC_API_KEY`, `OPENAI_API_KEY`, `GEMINI_API_KEY`).
    pub managed_keys: ManagedKeys,
    /// Where the master key comes from.
    pub master_key: MasterKeySource,
    /// Provider HTTP timeouts (`COVER_LLM_CONNECT_TIMEOUT_MS`,
    /// `COVER_LLM_REQUEST_TIMEOUT_MS`, `COVER_LLM_IDLE_TIMEOUT_MS`).
    pub timeouts: Timeouts,
    /// Retry, fallback, circuit-breaker and time-limit settings (`COVER_LLM_*`).
    pub router: RouterSettings,
    /// Answers in flight per server and per project, and how long one waits
    /// in line (`COVER_MAX_ANSWERS_IN_FLIGHT`, `COVER_MAX_ANSWERS_PER_PROJECT`,
    /// `COVER_ANSWER_QUEUE_MS`).
    pub capacity: CapacityLimits,
    /// Non-public hosts and networks user-supplied URLs may reach
    /// (`COVER_ALLOWED_PRIVATE_HOSTS`, comma-separated; none by default).
    pub allowed_private_hosts: AllowList,
    /// Who may sign up and how clients are told apart.
    pub access: AccessSettings,
    /// The bearer token `/metrics` answers to (`COVER_METRICS_TOKEN`); none:
    /// `/metrics` does not exist.
    pub metrics_token: Option<SecretString>,
}

/// Who may create an account, and where a client's address comes from (the
/// login throttles count per address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessSettings {
    /// `COVER_SIGNUP`: `invite` (default), `open` or `closed`.
    pub signup: SignupMode,
    /// `COVER_TRUST_PROXY`: take the client's address from the last
    /// `X-Forwarded-For` entry (set only behind a proxy that writes it).
    pub trust_proxy: bool,
}

impl Default for AccessSettings {
    fn default() -> Self {
        AccessSettings {
            signup: SignupMode::Invite,
            trust_proxy: false,
        }
    }
}

/// Where the master key that encrypts BYOK keys comes from.
#[derive(Debug, Clone)]
pub enum MasterKeySource {
    /// `COVER_MASTER_KEY` (base64 of 32 bytes) and its version.
    Env {
        /// The key.
        key: SecretString,
        /// `COVER_MASTER_KEY_VERSION`, default 1.
        version: Option<String>,
    },
    /// A key file (`COVER_KEY_FILE`, default `cover.key`), created on first run.
    File(PathBuf),
}

impl MasterKeySource {
    /// Loads the keyring.
    pub fn load(&self) -> Result<Keyring> {
        use secrecy::ExposeSecret;
        let keyring = match self {
            MasterKeySource::Env { key, version } => {
                Keyring::load(Some(key.expose_secret()), version.as_deref(), Path::new(""))
            }
            MasterKeySource::File(path) => Keyring::load(None, None, path),
        };
        keyring.map_err(Error::internal)
    }
}

/// Cover-managed keys, one per hosted provider (Llama needs none), and
/// Voyage AI's for the knowledge base of Claude projects (Anthropic has no
/// embedding model).
#[derive(Debug, Clone, Default)]
pub struct ManagedKeys {
    /// `ANTHROPIC_API_KEY`.
    pub claude: Option<SecretString>,
    /// `OPENAI_API_KEY`.
    pub openai: Option<SecretString>,
    /// `GEMINI_API_KEY`.
    pub gemini: Option<SecretString>,
    /// `VOYAGE_API_KEY`.
    pub voyage: Option<SecretString>,
}

impl ManagedKeys {
    /// Reads the four variables (empty values count as unset).
    pub fn from_env() -> ManagedKeys {
        let read = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(SecretString::from)
        };
        ManagedKeys {
            claude: read("ANTHROPIC_API_KEY"),
            openai: read("OPENAI_API_KEY"),
            gemini: read("GEMINI_API_KEY"),
            voyage: read("VOYAGE_API_KEY"),
        }
    }

    /// The managed key of a provider, if this server has one.
    pub fn get(&self, provider: ProviderId) -> Option<&SecretString> {
        match provider {
            ProviderId::Claude => self.claude.as_ref(),
            ProviderId::OpenAi => self.openai.as_ref(),
            ProviderId::Gemini => self.gemini.as_ref(),
            ProviderId::Llama => None,
        }
    }

    /// Providers usable with Cover-managed access (Llama always: it needs no key).
    pub fn available(&self) -> Vec<ProviderId> {
        ProviderId::ALL
            .into_iter()
            .filter(|&p| p == ProviderId::Llama || self.get(p).is_some())
            .collect()
    }
}

/// The key Cover's managed keys carry in demo mode: the in-process simulator
/// accepts it and no real provider does.
pub const DEMO_KEY: &str = "sk-cover-demo-simulator-key";

impl Config {
    /// This configuration in demo mode: every provider is the simulator at
    /// `simulator_url` and Cover's managed keys are [`DEMO_KEY`], so every
    /// screen, chat, fallback and cost works with no provider key and nothing
    /// leaves the machine.
    pub fn demo(mut self, simulator_url: &str) -> Config {
        self.base_urls = BaseUrls::from_lookup(|_| Some(simulator_url.to_owned()));
        let key = || Some(SecretString::from(DEMO_KEY.to_owned()));
        self.managed_keys = ManagedKeys {
            claude: key(),
            openai: key(),
            gemini: key(),
            voyage: key(),
        };
        self
    }

    /// A server on a free loopback port over `database_url` whose providers
    /// all live at `providers_url` (the simulator): no managed keys, a fresh
    /// master key, default time limits. Tests and benchmarks start from it.
    pub fn loopback(database_url: &str, providers_url: &str) -> Config {
        Config {
            database_url: database_url.to_owned(),
            secure_cookies: false,
            leptos: LeptosOptions::builder()
                .output_name("cover")
                .site_root("target/site")
                .site_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                .build(),
            base_urls: BaseUrls::from_lookup(|_| Some(providers_url.to_owned())),
            managed_keys: ManagedKeys::default(),
            master_key: MasterKeySource::Env {
                key: crypto::generate_key(),
                version: None,
            },
            timeouts: Timeouts::default(),
            router: RouterSettings::default(),
            capacity: CapacityLimits::default(),
            allowed_private_hosts: AllowList::default(),
            access: AccessSettings::default(),
            metrics_token: None,
        }
    }

    /// Reads the environment and `Leptos.toml` (if present in the working directory).
    pub fn from_env() -> Result<Self> {
        let leptos = load_leptos_options()?;
        let database_url =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        let public_url = std::env::var("COVER_PUBLIC_URL").unwrap_or_default();
        let secure_cookies = match std::env::var("COVER_SECURE_COOKIES") {
            Ok(value) => parse_bool("COVER_SECURE_COOKIES", &value)?,
            Err(_) => public_url.starts_with("https://"),
        };
        let master_key = match std::env::var("COVER_MASTER_KEY") {
            Ok(key) if !key.trim().is_empty() => MasterKeySource::Env {
                key: SecretString::from(key),
                version: std::env::var("COVER_MASTER_KEY_VERSION").ok(),
            },
            _ => MasterKeySource::File(
                std::env::var("COVER_KEY_FILE")
                    .map(PathBuf::from)
                    .unwrap_or_else(|_| PathBuf::from(crypto::DEFAULT_KEY_FILE)),
            ),
        };
        Ok(Config {
            database_url,
            secure_cookies,
            leptos,
            base_urls: BaseUrls::from_env(),
            managed_keys: ManagedKeys::from_env(),
            master_key,
            timeouts: Timeouts {
                connect: duration_ms("COVER_LLM_CONNECT_TIMEOUT_MS", Timeouts::default().connect)?,
                request: duration_ms("COVER_LLM_REQUEST_TIMEOUT_MS", Timeouts::default().request)?,
                idle: duration_ms("COVER_LLM_IDLE_TIMEOUT_MS", Timeouts::default().idle)?,
            },
            router: RouterSettings::from_env(),
            capacity: {
                let defaults = CapacityLimits::default();
                CapacityLimits {
                    in_flight: count("COVER_MAX_ANSWERS_IN_FLIGHT", defaults.in_flight)?,
                    per_project: count("COVER_MAX_ANSWERS_PER_PROJECT", defaults.per_project)?,
                    queue_deadline: duration_ms("COVER_ANSWER_QUEUE_MS", defaults.queue_deadline)?,
                }
            },
            allowed_private_hosts: AllowList::parse(
                &std::env::var("COVER_ALLOWED_PRIVATE_HOSTS").unwrap_or_default(),
            )
            .map_err(|e| Error::internal(format!("COVER_ALLOWED_PRIVATE_HOSTS: {e}")))?,
            metrics_token: std::env::var("COVER_METRICS_TOKEN")
                .ok()
                .filter(|t| !t.trim().is_empty())
                .map(SecretString::from),
            access: AccessSettings {
                signup: match std::env::var("COVER_SIGNUP") {
                    Err(_) => SignupMode::Invite,
                    Ok(value) => SignupMode::parse(value.trim()).ok_or_else(|| {
                        Error::internal(format!(
                            "COVER_SIGNUP must be invite, open or closed, got `{value}`"
                        ))
                    })?,
                },
                trust_proxy: match std::env::var("COVER_TRUST_PROXY") {
                    Ok(value) => parse_bool("COVER_TRUST_PROXY", &value)?,
                    Err(_) => false,
                },
            },
        })
    }
}

fn load_leptos_options() -> Result<LeptosOptions> {
    let file = Path::new("Leptos.toml");
    let path = file.exists().then_some("Leptos.toml");
    leptos::config::get_configuration(path)
        .map(|conf| conf.leptos_options)
        .map_err(|e| Error::internal(format!("reading Leptos.toml / LEPTOS_* settings: {e}")))
}

/// A duration in milliseconds from the environment; unset keeps `default`.
fn duration_ms(name: &str, default: std::time::Duration) -> Result<std::time::Duration> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(value) => value
            .trim()
            .parse::<u64>()
            .map(std::time::Duration::from_millis)
            .map_err(|_| {
                Error::internal(format!(
                    "{name} must be a whole number of milliseconds, got `{value}`"
                ))
            }),
    }
}

/// A positive whole number from the environment; unset keeps `default`.
fn count(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(value) => value
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| {
                Error::internal(format!(
                    "{name} must be a whole number above 0, got `{value}`"
                ))
            }),
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(Error::internal(format!(
            "{name} must be true or false, got `{value}`"
        ))),
    }
}
