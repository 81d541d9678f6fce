//! The webhook receiver: an axum service, run as several OS processes over one SQLite database.
//!
//! | route | what |
//! |---|---|
//! | `POST /webhook` | a delivery: event id in `webhook-id`, payload in the body |
//! | `GET /health` | 200 once the receiver serves |
//! | `GET /metrics/latency` | the handler-latency histogram (HdrHistogram V2 encoding) |
//!
//! The `webhook-receiver` binary runs it; [`Options`] are its command line.

mod delivery;
mod handler;
mod latency;
mod options;
mod processing;
mod reply;

use std::sync::Arc;

use axum::middleware;
use axum::routing::{get, post};
use axum::Router;
use dedup_client::Dedup;

pub use delivery::Delivery;
pub use handler::{deduplicated, naive, Deduplicated};
pub use latency::{decode as decode_latency, new_histogram, LatencyRecorder, LATENCY_PATH};
pub use options::{parse_millis, Mode, Options, DEFAULT_PROCESSING_DELAY_MS};
pub use processing::{Processed, Processor};
pub use reply::Reply;

/// The readiness path.
pub const HEALTH_PATH: &str = "/health";

/// The receiver's routes. With `dedup`, deliveries go through the [`deduplicated`] handler;
/// without, through the [`naive`] one.
pub fn router(processor: Processor, dedup: Option<Dedup>) -> Router {
    let latency = LatencyRecorder::default();
    let webhook = match dedup {
        None => post(naive).with_state(Arc::new(processor)),
        Some(dedup) => post(deduplicated).with_state(Arc::new(Deduplicated { dedup, processor })),
    };
    Router::new()
        .route(
            crate::webhook::PATH,
            webhook.layer(middleware::from_fn_with_state(latency.clone(), LatencyRecorder::measure)),
        )
        .route(LATENCY_PATH, get(LatencyRecorder::export).with_state(latency))
        .route(HEALTH_PATH, get(|| async { "ok" }))
}
