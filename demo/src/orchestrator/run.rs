//! The whole demo: three Redis nodes, then naive mode, then dedup mode with the fault, then the
//! report.

use std::env;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context};

use super::cli::Args;
use super::console::Console;
use super::fault::FaultPlan;
use super::phase::{self, Setup};
use super::plan::Plan;
use super::redis_node::{NodeSpec, RedisNode, EXAMPLE_CONFIG};
use super::report::Report;
use crate::receiver::Mode;

/// Three independent nodes: the smallest quorum (2) that survives losing one.
const REDIS_NODES: u16 = 3;
/// The node the fault kills: the middle one, so its port differs from the first's.
const FAULTY_NODE: usize = 1;
/// A receiver that has not answered in this long is stuck; the sender counts it as no answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A finished run.
pub struct Finished {
    pub report: Report,
    /// When dedup mode failed, the run's files (databases, logs, AOFs) are kept here to inspect.
    pub kept_files: Option<PathBuf>,
}

pub async fn run(args: &Args, console: &Console) -> anyhow::Result<Finished> {
    let module = existing(args.module.clone(), "libredis_dedup.so", "build it with `make`, or pass --module")?;
    let receiver_binary = existing(
        args.receiver_bin.clone(),
        "webhook-receiver",
        "build it with `cargo build --release -p webhook-demo`, or pass --receiver-bin",
    )?;
    let template = match &args.redis_config {
        Some(path) => fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?,
        None => EXAMPLE_CONFIG.to_owned(),
    };
    let redis_ports = port_range(args.redis_port, REDIS_NODES, "--redis-port")?;
    let receiver_ports = port_range(args.receiver_port, args.receivers, "--receiver-port")?;
    ensure!(
        !redis_ports.iter().any(|port| receiver_ports.contains(port)),
        "the Redis ports {redis_ports:?} and the receiver ports {receiver_ports:?} overlap"
    );

    let seed = args.seed.unwrap_or_else(rand::random);
    let plan = Plan::generate(&args.plan_settings(), seed);
    console.note(format!("webhook-demo: seed {seed} (repeat this run with --seed {seed})"));

    // Declared before the processes, so it is removed after they are stopped.
    let work_dir =
        tempfile::Builder::new().prefix("webhook-demo-").tempdir().context("create a temporary directory")?;
    let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().context("build the HTTP client")?;

    let spinner = console.spinner("redis", format!("starting {REDIS_NODES} redis-servers"));
    let mut nodes = Vec::with_capacity(redis_ports.len());
    for &port in &redis_ports {
        let spec = NodeSpec {
            port,
            dir: work_dir.path().join(format!("redis-{port}")),
            server: args.redis_server.clone(),
            module: module.clone(),
        };
        let node = RedisNode::start(spec, &template)
            .await
            .with_context(|| format!("start redis-server on port {port} (is redis-server installed? `make deps`)"))?;
        nodes.push(node);
    }
    spinner.finish_and_clear();
    console.note(format!(
        " redis: {REDIS_NODES} redis-servers with the dedup module on ports {}-{}, AOF on, in {}",
        redis_ports[0],
        redis_ports[redis_ports.len() - 1],
        work_dir.path().display()
    ));

    let setup = Setup {
        plan: &plan,
        receiver_binary: &receiver_binary,
        receiver_ports,
        redis_urls: nodes.iter().map(RedisNode::url).collect(),
        processing_delay: args.processing_delay,
        work_dir: work_dir.path(),
        http: &http,
        console,
    };
    let naive = phase::run(&setup, Mode::Naive, None).await?;
    let fault = (!args.no_fault).then(|| (FaultPlan::within(plan.arrival_window()), &mut nodes[FAULTY_NODE]));
    let dedup = phase::run(&setup, Mode::Dedup, fault).await?;
    for node in &mut nodes {
        node.stop().await;
    }

    let report = Report::new(seed, setup.receiver_ports.len(), args.processing_delay.as_millis() as u64, naive, dedup);
    let kept_files = (!report.passed).then(|| work_dir.keep());
    Ok(Finished { report, kept_files })
}

/// `explicit`, or the file `name` next to this binary (where cargo puts every binary and the
/// module of the workspace), checked to exist.
fn existing(explicit: Option<PathBuf>, name: &str, hint: &str) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(path) => path,
        None => env::current_exe()
            .context("find this binary")?
            .parent()
            .map(|dir| dir.join(name))
            .context("this binary has no parent directory")?,
    };
    ensure!(path.is_file(), "{} is missing: {hint}", path.display());
    Ok(path)
}

/// `count` consecutive ports from `first`.
fn port_range(first: u16, count: u16, flag: &str) -> anyhow::Result<Vec<u16>> {
    ensure!(first > 0, "{flag} must not be 0");
    let last =
        first.checked_add(count - 1).with_context(|| format!("{flag} {first} leaves no room for {count} ports"))?;
    Ok((first..=last).collect())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn port_ranges_are_consecutive_and_must_fit() {
        assert_eq!(port_range(7001, 3, "--redis-port").unwrap(), [7001, 7002, 7003]);
        assert_eq!(
            port_range(65534, 3, "--redis-port").unwrap_err().to_string(),
            "--redis-port 65534 leaves no room for 3 ports"
        );
        assert!(port_range(0, 2, "--receiver-port").is_err());
    }

    #[test]
    fn a_missing_file_names_itself_and_the_fix() {
        let error =
            existing(Some(PathBuf::from("/nonexistent/libredis_dedup.so")), "x", "build it with `make`").unwrap_err();
        assert_eq!(error.to_string(), "/nonexistent/libredis_dedup.so is missing: build it with `make`");
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        assert_eq!(existing(Some(manifest.clone()), "x", "").unwrap(), manifest);
    }
}
