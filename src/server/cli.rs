//! The `cover` command line: `serve` (the default), `migrate`, `user create`.

use crate::server::config::Config;
use crate::server::db::Db;
use crate::server::error::Result;
use crate::server::services::accounts;
use crate::server::startup::Application;
use clap::{Parser, Subcommand};

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
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage accounts headlessly.
    User {
        /// What to do with accounts.
        #[command(subcommand)]
        action: UserAction,
    },
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

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    let config = Config::from_env()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
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
            let (user, created) =
                accounts::create_or_update(&db.pool, &email, &password, admin).await?;
            db.close().await;
            let verb = if created { "created" } else { "updated" };
            println!("{verb} {} ({})", user.email, user.role.as_str());
            Ok(())
        }
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
