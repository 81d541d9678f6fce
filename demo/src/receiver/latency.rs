//! Handler latency: recorded per request into an HDR histogram, and exported so the orchestrator
//! can merge every receiver process's histogram into one.

use std::io::Cursor;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;

/// The path that serves the histogram.
pub const LATENCY_PATH: &str = "/metrics/latency";

/// Microseconds, from 1 µs to a minute, to 3 significant digits.
const LOWEST_MICROS: u64 = 1;
const HIGHEST_MICROS: u64 = 60_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// An empty histogram of the shape every receiver records into.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LOWEST_MICROS, HIGHEST_MICROS, SIGNIFICANT_DIGITS)
        .expect("the bounds are constants that hdrhistogram accepts")
}

/// The histogram of one receiver process: every handled delivery, in microseconds.
#[derive(Clone)]
pub struct LatencyRecorder {
    histogram: Arc<Mutex<Histogram<u64>>>,
}

impl Default for LatencyRecorder {
    fn default() -> LatencyRecorder {
        LatencyRecorder { histogram: Arc::new(Mutex::new(new_histogram())) }
    }
}

impl LatencyRecorder {
    /// Middleware: times the inner handler, from the request's arrival to its response.
    pub async fn measure(State(recorder): State<LatencyRecorder>, request: Request, next: Next) -> Response {
        let start = Instant::now();
        let response = next.run(request).await;
        let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        recorder.lock().saturating_record(micros);
        response
    }

    /// `GET /metrics/latency`: the histogram in HdrHistogram's V2 encoding.
    pub async fn export(State(recorder): State<LatencyRecorder>) -> Response {
        let snapshot = recorder.lock().clone();
        let mut encoded = Vec::new();
        match V2Serializer::new().serialize(&snapshot, &mut encoded) {
            Ok(_) => ([(CONTENT_TYPE, "application/octet-stream")], Body::from(encoded)).into_response(),
            Err(error) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("encode the histogram: {error:?}"))
                .into_response(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Histogram<u64>> {
        self.histogram.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Reads a histogram served by [`LatencyRecorder::export`].
pub fn decode(encoded: &[u8]) -> anyhow::Result<Histogram<u64>> {
    Deserializer::new()
        .deserialize(&mut Cursor::new(encoded))
        .map_err(|error| anyhow::anyhow!("{error:?}"))
        .context("decode a latency histogram")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_survive_the_trip_between_processes() {
        let mut histogram = new_histogram();
        for micros in [900, 1_000, 50_000, 51_000] {
            histogram.record(micros).unwrap();
        }
        let mut encoded = Vec::new();
        V2Serializer::new().serialize(&histogram, &mut encoded).unwrap();
        let decoded = decode(&encoded).unwrap();
        assert_eq!(decoded.len(), 4);
        assert_eq!(decoded.value_at_quantile(0.5), histogram.value_at_quantile(0.5));
        assert_eq!(decoded.max(), histogram.max());
    }
}
