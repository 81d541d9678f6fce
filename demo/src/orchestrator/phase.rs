//! One mode's run: a fresh database, its receiver processes, the sender (and, in dedup mode, the
//! fault), then the receivers' latencies and the audit of the database.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use super::audit::Audit;
use super::console::Console;
use super::fault::{self, FaultEvent, FaultPlan};
use super::plan::Plan;
use super::receivers::ReceiverFleet;
use super::redis_node::RedisNode;
use super::sender::{RetryPolicy, SendReport, Sender};
use crate::receiver::{Mode, Options};
use crate::store::{self, Store};

/// Everything a phase needs that does not change between the two modes.
pub struct Setup<'a> {
    pub plan: &'a Plan,
    pub receiver_binary: &'a Path,
    pub receiver_ports: Vec<u16>,
    pub redis_urls: Vec<String>,
    pub processing_delay: Duration,
    /// Where the phase's database and receiver logs go.
    pub work_dir: &'a Path,
    pub http: &'a reqwest::Client,
    pub console: &'a Console,
}

/// Handler latency percentiles, over every request every receiver handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LatencySummary {
    pub requests: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

impl LatencySummary {
    fn of(histogram: &Histogram<u64>) -> LatencySummary {
        LatencySummary {
            requests: histogram.len(),
            p50_us: histogram.value_at_quantile(0.50),
            p99_us: histogram.value_at_quantile(0.99),
        }
    }
}

/// What one mode produced.
#[derive(Clone, Debug, Serialize)]
pub struct PhaseResult {
    pub mode: Mode,
    pub events: u64,
    /// Deliveries the sender scheduled (copies of events), retries not counted.
    pub deliveries: u64,
    pub sent: SendReport,
    pub audit: Audit,
    pub latency: LatencySummary,
    pub faults: Vec<FaultEvent>,
    pub duration_ms: u64,
}

/// Runs `mode` over the whole plan. With `fault`, kills and restarts that node meanwhile.
pub async fn run(
    setup: &Setup<'_>,
    mode: Mode,
    fault: Option<(FaultPlan, &mut RedisNode)>,
) -> anyhow::Result<PhaseResult> {
    let (plan, console) = (setup.plan, setup.console);
    let database = setup.work_dir.join(format!("{}.sqlite3", mode.as_str()));
    // Created here, before the receivers start, so they do not race to create the schema.
    drop(Store::open(&database)?);

    let options: Vec<Options> = setup
        .receiver_ports
        .iter()
        .enumerate()
        .map(|(n, &port)| Options {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            mode,
            redis: setup.redis_urls.clone(),
            database: database.clone(),
            name: Some(format!("{}-receiver-{}", mode.as_str(), n + 1)),
            processing_delay: setup.processing_delay,
        })
        .collect();
    let fleet = ReceiverFleet::start(setup.receiver_binary, &options, setup.work_dir, setup.http).await?;
    console.note(format!(
        "{:>6}: {} events, {} deliveries, to {} receiver processes on ports {}",
        mode.as_str(),
        plan.events.len(),
        plan.deliveries(),
        options.len(),
        port_list(&setup.receiver_ports),
    ));

    let progress = console.deliveries_bar(mode.as_str(), plan.deliveries() as u64);
    let sender = Sender::new(setup.http.clone(), fleet.webhook_urls(), RetryPolicy::VENDOR);
    let start = Instant::now();
    let (sent, faults) = match fault {
        None => (sender.send(plan, start, &progress).await, Vec::new()),
        Some((fault_plan, node)) => {
            let sending = async { Ok(sender.send(plan, start, &progress).await) };
            tokio::try_join!(sending, fault::inject(fault_plan, node, start, console, &progress))?
        }
    };
    let elapsed = start.elapsed();
    progress.finish_and_clear();

    let latency = fleet.latency(setup.http).await?;
    fleet.stop().await;
    // Every receiver has exited, so every write is in the file.
    let audit = Audit::of(&store::records_per_event(&database)?, plan.events.iter().map(|event| event.id.as_str()));
    console.note(format!(
        "{:>6}: {} of {} deliveries acknowledged in {:.1} s",
        mode.as_str(),
        plan.deliveries() as u64 - sent.unacknowledged,
        plan.deliveries(),
        elapsed.as_secs_f64()
    ));
    Ok(PhaseResult {
        mode,
        events: plan.events.len() as u64,
        deliveries: plan.deliveries() as u64,
        sent,
        audit,
        latency: LatencySummary::of(&latency),
        faults,
        duration_ms: elapsed.as_millis() as u64,
    })
}

/// `8001-8003`, or `8001` for one port.
fn port_list(ports: &[u16]) -> String {
    match (ports.first(), ports.last()) {
        (Some(first), Some(last)) if first != last => format!("{first}-{last}"),
        (Some(only), _) => only.to_string(),
        _ => String::new(),
    }
}
