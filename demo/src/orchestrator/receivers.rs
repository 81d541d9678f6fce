//! The receiver processes of one mode: started together, asked for their latency histograms,
//! stopped together.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;

use super::process::ChildProcess;
use super::redis_node::ensure_port_free;
use crate::receiver::{decode_latency, new_histogram, Options, HEALTH_PATH, LATENCY_PATH};

/// How long a receiver may take to open the database, connect to Redis and serve.
const START_TIMEOUT: Duration = Duration::from_secs(20);
const START_POLL: Duration = Duration::from_millis(20);
/// How long a receiver may take to answer its in-flight deliveries and exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);

struct Receiver {
    base_url: String,
    process: ChildProcess,
}

/// Running `webhook-receiver` processes. Killed when dropped.
pub struct ReceiverFleet {
    receivers: Vec<Receiver>,
}

impl ReceiverFleet {
    /// Starts one `binary` process per entry of `options` and waits until each serves.
    pub async fn start(
        binary: &Path,
        options: &[Options],
        log_dir: &Path,
        http: &reqwest::Client,
    ) -> anyhow::Result<ReceiverFleet> {
        let mut receivers = Vec::with_capacity(options.len());
        for options in options {
            ensure_port_free(options.listen.port())?;
            let mut command = Command::new(binary);
            command.args(options.command_line());
            let name = options.name();
            let log = log_dir.join(format!("{}-{}.log", options.mode.as_str(), options.listen.port()));
            let process = ChildProcess::spawn(name, command, &log)?;
            receivers.push(Receiver { base_url: format!("http://{}", options.listen), process });
        }
        let mut fleet = ReceiverFleet { receivers };
        for receiver in &mut fleet.receivers {
            receiver.wait_until_serving(http).await?;
        }
        Ok(fleet)
    }

    /// Where each receiver takes deliveries.
    pub fn webhook_urls(&self) -> Vec<String> {
        self.receivers.iter().map(|r| format!("{}{}", r.base_url, crate::webhook::PATH)).collect()
    }

    /// Every receiver's handler latencies, merged into one histogram.
    pub async fn latency(&self, http: &reqwest::Client) -> anyhow::Result<Histogram<u64>> {
        let mut merged = new_histogram();
        for receiver in &self.receivers {
            let url = format!("{}{LATENCY_PATH}", receiver.base_url);
            let response = http.get(&url).send().await.and_then(|r| r.error_for_status());
            let encoded = response.with_context(|| format!("GET {url}"))?.bytes().await?;
            merged.add(decode_latency(&encoded)?).context("merge latency histograms")?;
        }
        Ok(merged)
    }

    /// Stops every receiver (SIGTERM, then SIGKILL after a grace period).
    pub async fn stop(mut self) {
        for receiver in &mut self.receivers {
            receiver.process.terminate(STOP_GRACE).await;
        }
    }
}

impl Receiver {
    async fn wait_until_serving(&mut self, http: &reqwest::Client) -> anyhow::Result<()> {
        let url = format!("{}{HEALTH_PATH}", self.base_url);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.process.exit_status() {
                bail!("{} exited with {status}; {}", self.process.name(), self.process.log_tail());
            }
            if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(START_POLL).await;
        }
        bail!("{} did not serve {url} within {START_TIMEOUT:?}; {}", self.process.name(), self.process.log_tail())
    }
}
