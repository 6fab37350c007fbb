//! The `reelay` binary: configuration, logging, then serve.

use std::sync::Arc;

use reelay::pipeline::media::{self, MediaEnv};
use reelay::{Config, Reelay};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    let config = Config::from_env();
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .init();
    // Errors are for people: one line, no backtrace.
    if let Err(err) = run(config).await {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
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
