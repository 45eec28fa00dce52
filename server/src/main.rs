//! The `streamhut` binary: reads the configuration, opens and migrates the database,
//! and serves until SIGINT or SIGTERM.

use std::io::IsTerminal;

use anyhow::Context;
use server::config::{Config, LogFormat};
use server::db::DatabaseLocation;

use server::db::Db;
use server::services::Services;
use server::web::{self, AppState};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dotenv = dotenvy::dotenv();
    let config = Config::from_env();
    let log = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => {
            // https://no-color.org: set and not empty means no colours.
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
            log.with_ansi(std::io::stderr().is_terminal() && !no_color)
                .init();
        }
        LogFormat::Json => log.json().flatten_event(true).init(),
    }
    match dotenv {
        Ok(path) => tracing::info!(path = %path.display(), "loaded .env"),
        Err(err) if err.not_found() => {}
        Err(err) => return Err(err).context("reading .env"),
    }

    let location = config.database();
    match &location {
        DatabaseLocation::File(path) => {
            tracing::info!(path = %path.display(), "database: embedded libSQL file")
        }
        DatabaseLocation::Remote { url, .. } => tracing::info!(%url, "database: remote libSQL"),
    }
    let db = Db::open(&location).await.context("opening the database")?;
    let report = match db.migrate().await {
        Ok(report) => report,
        Err(err) => {
            let hint = server::db::connection_hint(&location, &err);
            let err = anyhow::Error::new(err).context("migrating the database");
            return Err(match hint {
                Some(hint) => err.context(hint),
                None => err,
            });
        }
    };
    if report.applied.is_empty() {
        tracing::info!(version = report.current, "database schema is up to date");
    } else {
        tracing::info!(applied = ?report.applied, version = report.current, "database schema migrated");
    }

    let listener = TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| format!("listening on {}", config.listen_addr))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(public_url = %config.public_url(), "Streamhut listening on http://{addr}");

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));

    let services = Services::start(&config, db, &shutdown)
        .await
        .context("starting services")?;
    tracing::info!(
        public_key = services.runner.public_key(),
        "at-run runner ready"
    );
    let state = AppState::new(&config, &services);
    let dispatcher = services.tasks.start(shutdown.child_token());
    let scheduler = services.scheduler.clone().start(shutdown.child_token());

    web::serve(
        listener,
        state,
        std::time::Duration::from_secs(config.header_read_timeout_secs),
        shutdown.clone(),
    )
    .await
    .context("serving HTTP")?;
    shutdown.cancel();
    let (dispatcher, scheduler, ()) = tokio::join!(dispatcher, scheduler, services.stopped());
    if dispatcher.is_err() || scheduler.is_err() {
        tracing::warn!("a background worker ended abnormally during shutdown");
    }
    tracing::info!("Streamhut stopped");
    Ok(())
}

/// Cancels `token` on Ctrl-C (SIGINT) or SIGTERM.
async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
    token.cancel();
}
