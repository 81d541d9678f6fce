//! `webhook-receiver`: serves `POST /webhook` in naive or dedup mode until SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use dedup_client::Dedup;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::filter::Targets;

use webhook_demo::receiver::{router, Mode, Options, Processor};
use webhook_demo::store::Store;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    init_logging();

    let store = Store::open(&options.database)?;
    let processor = Processor::new(store, options.name(), options.processing_delay);
    let dedup = match options.mode {
        Mode::Naive => None,
        // Nodes that are down now are not an error: the client reconnects when they come back.
        Mode::Dedup => Some(Dedup::builder().nodes(&options.redis).connect().await.context("set up the dedup client")?),
    };

    let listener = TcpListener::bind(options.listen).await.with_context(|| format!("listen on {}", options.listen))?;
    tracing::info!(listen = %options.listen, mode = options.mode.as_str(), database = %options.database.display(), "serving");
    axum::serve(listener, router(processor, dedup))
        .with_graceful_shutdown(shutdown_requested())
        .await
        .context("serve")?;
    tracing::info!("stopped");
    Ok(())
}

/// Logs to stderr; `RUST_LOG` (e.g. `info`, `dedup_client=debug`) picks what.
fn init_logging() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|spec| spec.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(filter)
        .init();
}

/// Resolves on SIGTERM (how the orchestrator stops receivers) or SIGINT; in-flight deliveries
/// are answered before the process exits.
async fn shutdown_requested() {
    let mut terminate = signal(SignalKind::terminate()).expect("install the SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
