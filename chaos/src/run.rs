//! A whole run: nodes, workers, sender and injector together; then the Kleppmann scenario; then
//! the checker over everything they left behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::checker::{self, Evidence};
use crate::clock::now_ns;
use crate::cluster::Cluster;
use crate::history;
use crate::injector::{self, Injector};
use crate::kleppmann;
use crate::plan::{Plan, PlanSettings};
use crate::pool::{Pool, PoolSettings};
use crate::sender;
use crate::store::Store;
use crate::summary::{Counted, Setup, Summary};
use crate::worker::ClientSettings;

/// The settings of `dedup-chaos run`.
#[derive(Clone, Debug, clap::Args)]
pub struct RunSettings {
    /// How long faults and new deliveries go on, in seconds; the drain and the Kleppmann
    /// scenario come after (a few seconds more).
    #[arg(long, env = "CHAOS_DURATION", default_value_t = 120)]
    pub duration: u64,
    /// The seed of the plan (deliveries and faults); random if not given. The table prints it.
    #[arg(long, env = "CHAOS_SEED")]
    pub seed: Option<u64>,
    /// How many events; by default 12 per second of duration.
    #[arg(long, env = "CHAOS_EVENTS")]
    pub events: Option<usize>,
    /// How many redis-server nodes.
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// How many worker processes.
    #[arg(long, default_value_t = 3)]
    pub workers: usize,
    /// Deliveries each worker process handles at once.
    #[arg(long, default_value_t = 4)]
    pub tasks: usize,
    #[command(flatten)]
    pub client: ClientSettings,
    /// The longest the sender keeps retrying after the active time, in seconds.
    #[arg(long, default_value_t = 60)]
    pub drain_limit: u64,
    /// Where the plan, history, store, fault log and summary go; a new temporary directory
    /// (kept) by default.
    #[arg(long, env = "CHAOS_OUT")]
    pub out: Option<PathBuf>,
}

/// Runs everything and returns the summary (already printed).
pub async fn run(settings: &RunSettings) -> anyhow::Result<Summary> {
    // Faults hit a minority: with fewer than 3 nodes there is none to hit that leaves a quorum.
    anyhow::ensure!(settings.nodes >= 3, "--nodes must be at least 3, not {}", settings.nodes);
    anyhow::ensure!(settings.workers >= 1 && settings.tasks >= 1, "--workers and --tasks must be at least 1");
    let seed = settings.seed.unwrap_or_else(|| now_ns() ^ u64::from(std::process::id()));
    let active = Duration::from_secs(settings.duration);
    let lease = settings.client.lease();
    let dir = match &settings.out {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("dedup-chaos-{seed}")),
    };
    let history_dir = dir.join("history");
    std::fs::create_dir_all(&history_dir).with_context(|| format!("create {}", history_dir.display()))?;
    let store_path = dir.join("store.db");
    anyhow::ensure!(!store_path.exists(), "{} holds an earlier run: give a fresh --out", dir.display());
    Store::open(&store_path)?;

    let plan = Plan::draw(PlanSettings {
        seed,
        active,
        events: settings.events.unwrap_or(12 * settings.duration as usize),
        nodes: settings.nodes,
        lease,
    });
    std::fs::write(dir.join("plan.json"), serde_json::to_vec_pretty(&plan)?)?;
    eprintln!(
        "dedup-chaos: seed {seed}, {} events, {} deliveries, {} faults over {}s; run dir {}",
        plan.events.len(),
        plan.deliveries(),
        plan.faults.len(),
        settings.duration,
        dir.display()
    );

    let cluster = tokio::task::block_in_place(|| Cluster::start(settings.nodes));
    let urls = cluster.urls();
    let exe = std::env::current_exe().context("find this executable to start workers")?;
    let pool_settings = PoolSettings {
        exe: &exe,
        nodes: &urls,
        store: &store_path,
        history_dir: &history_dir,
        tasks: settings.tasks,
        client: &settings.client,
    };
    let names: Vec<String> = (0..settings.workers).map(|i| format!("w{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut pool = Pool::start(&names, &pool_settings).await?;

    let epoch = now_ns();
    let injector = Injector::start(cluster, plan.faults.clone(), epoch, &dir.join("faults.jsonl"))?;
    let deadline = epoch + (active + Duration::from_secs(settings.drain_limit)).as_nanos() as u64;
    let sent = sender::deliver(&plan, &mut pool, epoch, deadline).await;
    // Heal the nodes before anything else, even when the sender failed.
    let (cluster, faults) = tokio::task::block_in_place(|| injector.finish())?;
    let sent = sent?;
    pool.close().await?;

    let kleppmann_event = format!("kleppmann-{seed}");
    let kleppmann = kleppmann::run(&pool_settings, &kleppmann_event).await?;
    drop(cluster);

    let entries = history::read_all(&history_dir)?;
    let writes = Store::open(&store_path)?.writes()?;
    let mut events: Vec<String> = plan.events.iter().map(|e| e.id.clone()).collect();
    events.push(kleppmann_event);
    let evidence = Evidence { entries, writes, events, faults };
    let findings = checker::check(&evidence);
    let summary = Summary::new(Counted {
        setup: Setup {
            nodes: settings.nodes,
            worker_processes: settings.workers,
            tasks_per_worker: settings.tasks,
            lease,
            node_timeout: settings.client.node_timeout(),
            storm_timeout: settings.client.storm_timeout(),
            run_dir: dir.display().to_string(),
        },
        plan: &plan,
        sender: sent,
        entries: &evidence.entries,
        writes: &evidence.writes,
        faults: &evidence.faults,
        kleppmann,
        findings,
    });
    save(&dir, &summary)?;
    println!("{summary}");
    Ok(summary)
}

fn save(dir: &Path, summary: &Summary) -> anyhow::Result<()> {
    let path = dir.join("summary.json");
    std::fs::write(&path, serde_json::to_vec_pretty(summary)?).with_context(|| format!("write {}", path.display()))
}

/// Re-checks a finished run directory offline (`dedup-chaos check DIR`): the same rules over the
/// same files, without the sender's and the scenario's numbers.
pub fn recheck(dir: &Path) -> anyhow::Result<checker::Findings> {
    let plan: Plan = serde_json::from_slice(&std::fs::read(dir.join("plan.json"))?)?;
    let entries = history::read_all(&dir.join("history"))?;
    let writes = Store::open(&dir.join("store.db"))?.writes()?;
    let mut events: Vec<String> = plan.events.iter().map(|e| e.id.clone()).collect();
    events.push(format!("kleppmann-{}", plan.settings.seed));
    let faults = injector::read_log(&dir.join("faults.jsonl"))?;
    Ok(checker::check(&Evidence { entries, writes, events, faults }))
}
