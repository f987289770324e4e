//! The `cover` command line: `serve` (the default), `migrate`, `user create`.

use crate::server::config::{Config, MasterKeySource, DEMO_KEY};
use crate::server::crypto;
use crate::server::db::Db;
use crate::server::error::Error;
use crate::server::error::Result;
use crate::server::services::accounts;
use crate::server::services::key_rotation;
use crate::server::simulator::{self, SimulateArgs, SimulatorOptions};
use crate::server::startup::Application;
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

/// Cover: pick, configure, compare and switch LLM providers per project.
#[derive(Debug, Parser)]
#[command(name = "cover", version)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the web app and the JSON API (the default).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Serve a provider simulator (Anthropic, OpenAI, Gemini and Ollama APIs) on
    /// loopback: the offline demo, the test upstream and the benchmark upstream.
    Simulate(SimulateArgs),
    /// Manage accounts headlessly.
    User {
        /// What to do with accounts.
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage the master key that encrypts provider API keys.
    Keys {
        /// What to do with the master key.
        #[command(subcommand)]
        action: KeysAction,
    },
}

/// How to serve.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Try Cover without any provider key: start the provider simulator in
    /// this process and send every provider's calls to it (answers are
    /// simulated; nothing leaves the machine).
    #[arg(long)]
    pub demo: bool,
}

/// Master-key subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Re-encrypt every stored provider key under a new master key. Restart the
    /// app servers afterwards so they load it.
    Rotate,
    /// Print a new random master key (base64 of 32 bytes) for COVER_MASTER_KEY.
    Generate,
}

/// Account subcommands.
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create an account (or reset its password if the email exists).
    Create {
        /// Login email.
        #[arg(long)]
        email: String,
        /// Password (at least 8 characters).
        #[arg(long)]
        password: String,
        /// Make the account a workspace admin.
        #[arg(long)]
        admin: bool,
    },
}

/// Demo mode: the simulator on a loopback port of this process, streaming at
/// a human pace, and `config` pointed at it.
async fn demo(config: Config) -> Result<Config> {
    let simulator = simulator::start_on_loopback(SimulatorOptions {
        accept_key: Some(DEMO_KEY.to_owned()),
        ttft: std::time::Duration::from_millis(300),
        tokens_per_second: 40.0,
        ..SimulatorOptions::default()
    })
    .await
    .map_err(|e| Error::internal(format!("starting the demo simulator: {e}")))?;
    println!(
        "demo mode: every provider is Cover's built-in simulator at {} — answers are simulated \
         and nothing leaves this machine",
        simulator.url
    );
    Ok(config.demo(&simulator.url))
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let command = cli
        .command
        .unwrap_or_else(|| Command::Serve(ServeArgs::default()));
    if let Command::Simulate(args) = &command {
        let listener = tokio::net::TcpListener::bind((args.host, args.port))
            .await
            .map_err(|e| Error::internal(format!("binding {}:{}: {e}", args.host, args.port)))?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(args.port);
        println!(
            "provider simulator listening on http://{}:{port}",
            args.host
        );
        return simulator::serve(listener, args.options())
            .await
            .map_err(Error::internal);
    }
    let config = Config::from_env()?;
    match command {
        Command::Serve(args) => {
            let config = if args.demo {
                demo(config).await?
            } else {
                config
            };
            let app = Application::build(config).await?;
            tracing::info!(port = app.port(), "cover listening");
            println!("cover listening on http://127.0.0.1:{}", app.port());
            app.run_until(shutdown_signal()).await
        }
        Command::Migrate => {
            let db = Db::connect(&config.database_url).await?;
            db.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::User {
            action:
                UserAction::Create {
                    email,
                    password,
                    admin,
                },
        } => {
            let db = Db::connect(&config.database_url).await?;
            let (user, created) = accounts::create_or_update(&db, &email, &password, admin).await?;
            db.close().await;
            let verb = if created { "created" } else { "updated" };
            println!("{verb} {} ({})", user.email, user.role.as_str());
            Ok(())
        }
        Command::Keys {
            action: KeysAction::Generate,
        } => {
            println!("{}", crypto::generate_key().expose_secret());
            Ok(())
        }
        Command::Keys {
            action: KeysAction::Rotate,
        } => {
            let db = Db::connect(&config.database_url).await?;
            let new_env_key = std::env::var("COVER_NEW_MASTER_KEY")
                .ok()
                .filter(|k| !k.trim().is_empty())
                .map(SecretString::from);
            let rotation = key_rotation::rotate(&db, &config.master_key, new_env_key).await?;
            db.close().await;
            println!(
                "re-encrypted {} provider key(s) under master key version {}",
                rotation.keys, rotation.version
            );
            if matches!(config.master_key, MasterKeySource::Env { .. }) {
                println!(
                    "now set COVER_MASTER_KEY to the new key and COVER_MASTER_KEY_VERSION={}, then restart",
                    rotation.version
                );
            }
            Ok(())
        }
        Command::Simulate(_) => Ok(()),
    }
}

/// Resolves on Ctrl-C or SIGTERM, for graceful shutdown.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
