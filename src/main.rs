//! The `cover` server binary: parses the command line and runs it.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Before the runtime: the trace exporter's client runs on its own thread.
    let telemetry = cover::server::telemetry::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cover: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(cover::server::cli::run(cover::server::cli::Cli::parse()));
    drop(runtime);
    drop(telemetry);
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cover: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
