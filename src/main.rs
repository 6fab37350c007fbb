//! The `reelay` binary: the server (plain `reelay`, or `reelay serve`), or
//! one of the terminal client's commands (see [`reelay::cli`]).

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use reelay::cli::{Cli, Command, EXIT_ERROR};
use reelay::pipeline::media::{self, MediaEnv};
use reelay::{Config, Reelay};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // Help and version are answers, not errors.
            return if err.use_stderr() {
                ExitCode::from(EXIT_ERROR)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: could not start the runtime: {err}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match cli.command {
        None => runtime.block_on(serve(cli.serve)),
        Some(Command::Serve(config)) => runtime.block_on(serve(*config)),
        Some(command) => runtime.block_on(reelay::cli::run(command)),
    }
}

/// Runs the server until SIGINT or SIGTERM.
async fn serve(config: Config) -> ExitCode {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .init();
    // Errors are for people: one line, no backtrace.
    if let Err(err) = run(config).await {
        eprintln!("error: {err:#}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

async fn run(config: Config) -> anyhow::Result<()> {
    let config = config.with_absolute_paths();
    let listener = TcpListener::bind(config.bind_addr).await.map_err(|err| {
        anyhow::anyhow!(
            "could not listen on {}: {err}. Choose a free address with BIND_ADDR \
             (or --bind-addr), for example BIND_ADDR=127.0.0.1:8081.",
            config.bind_addr
        )
    })?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    let pipeline = media::pipeline(MediaEnv::new(Arc::new(config.clone())));
    let reelay = Reelay::start(config, pipeline).await?;
    tokio::spawn(reelay::log_startup(reelay.state().clone(), addr));
    reelay.serve(listener, shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
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
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
