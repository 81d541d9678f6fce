//! `webhook-receiver`: serves `POST /webhook` in naive or dedup mode until SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use dedup_client::Dedup;
use tokio::net::TcpListener;

use webhook_demo::interrupt::Interrupt;
use webhook_demo::receiver::{router, Mode, Options, Processor};
use webhook_demo::store::Store;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    webhook_demo::logging::init(tracing::Level::INFO);
    let mut interrupt = Interrupt::install().context("install signal handlers")?;

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
        // SIGTERM is how the demo stops receivers: in-flight deliveries are answered first.
        .with_graceful_shutdown(async move {
            let signal = interrupt.received().await;
            tracing::info!(signal, "stopping");
        })
        .await
        .context("serve")?;
    Ok(())
}
