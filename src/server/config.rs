//! Configuration from the environment (documented in README.md and `.env.sample`).
//! Site settings (address, site root, output name) come from `Leptos.toml`, which
//! `LEPTOS_*` variables override.

use crate::server::error::{Error, Result};
use leptos::config::LeptosOptions;
use std::path::Path;

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
}

impl Config {
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
        Ok(Config {
            database_url,
            secure_cookies,
            leptos,
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

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(Error::internal(format!(
            "{name} must be true or false, got `{value}`"
        ))),
    }
}
