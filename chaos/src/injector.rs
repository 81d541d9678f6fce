//! The fault injector: carries out the plan's faults on the nodes, one at a time, on schedule,
//! and logs what it did and when.
//!
//! It runs on a thread of its own because testkit's process control is blocking. Around each
//! SIGKILL it reads the node's fencing counter, so the checker can confirm that a restart from
//! the AOF never sets the counter back.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::clock::{self, now_ns};
use crate::cluster::Cluster;
use crate::plan::{FaultKind, FaultPlan};

/// What one fault did, as written to `faults.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultRecord {
    pub kind: FaultKind,
    pub nodes: Vec<String>,
    pub start_ns: u64,
    pub end_ns: u64,
    /// Kill + restart: each node's fencing counter just before the kill (`None` if it did not
    /// answer) and after the restart.
    #[serde(default)]
    pub token_before: Vec<Option<u64>>,
    #[serde(default)]
    pub token_after: Vec<Option<u64>>,
    /// Kill + restart: how many keys each node loaded back.
    #[serde(default)]
    pub keys_after: Vec<Option<u64>>,
}

/// A running injector.
pub struct Injector {
    thread: JoinHandle<anyhow::Result<(Cluster, Vec<FaultRecord>)>>,
    stop: Arc<AtomicBool>,
}

impl Injector {
    /// Starts carrying out `faults` (offsets from `epoch_ns`) on `cluster`, logging to `log`.
    pub fn start(cluster: Cluster, faults: Vec<FaultPlan>, epoch_ns: u64, log: &Path) -> anyhow::Result<Injector> {
        let mut log = File::create(log).with_context(|| format!("create {}", log.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new().name("fault-injector".into()).spawn(move || {
            let mut cluster = cluster;
            let mut records = Vec::new();
            for fault in faults {
                let start = epoch_ns + u64::try_from(fault.at.as_nanos()).unwrap_or(u64::MAX);
                if !sleep_until_or_stopped(start, &stopped) {
                    break;
                }
                let record = inject(&mut cluster, &fault);
                writeln!(log, "{}", serde_json::to_string(&record)?)?;
                records.push(record);
            }
            Ok((cluster, records))
        })?;
        Ok(Injector { thread, stop })
    }

    /// Stops after the fault in progress (which always heals before it ends) and hands the
    /// nodes back, every one running and awake.
    pub fn finish(self) -> anyhow::Result<(Cluster, Vec<FaultRecord>)> {
        self.stop.store(true, Ordering::SeqCst);
        match self.thread.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Sleeps in short steps until `deadline_ns`; false if told to stop first.
fn sleep_until_or_stopped(deadline_ns: u64, stop: &AtomicBool) -> bool {
    while now_ns() < deadline_ns {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        clock::sleep_until(deadline_ns.min(now_ns() + 50_000_000));
    }
    !stop.load(Ordering::SeqCst)
}

/// Carries out one fault and heals it before returning.
fn inject(cluster: &mut Cluster, fault: &FaultPlan) -> FaultRecord {
    let nodes = &fault.nodes;
    let mut record = FaultRecord {
        kind: fault.kind,
        nodes: nodes.iter().map(|&i| cluster.name(i)).collect(),
        start_ns: now_ns(),
        end_ns: 0,
        token_before: Vec::new(),
        token_after: Vec::new(),
        keys_after: Vec::new(),
    };
    match fault.kind {
        FaultKind::KillRestart => {
            record.token_before = nodes.iter().map(|&i| cluster.dedup_token(i)).collect();
            record.start_ns = now_ns();
            for &i in nodes {
                cluster.server(i).kill();
            }
            std::thread::sleep(fault.hold);
            for &i in nodes {
                // testkit waits until the node answers PING, i.e. has loaded its AOF.
                cluster.server(i).restart();
            }
            record.token_after = nodes.iter().map(|&i| cluster.dedup_token(i)).collect();
            record.keys_after = nodes.iter().map(|&i| cluster.dbsize(i)).collect();
        }
        FaultKind::PausePastLease | FaultKind::TimeoutStorm => {
            for &i in nodes {
                cluster.server(i).pause();
            }
            std::thread::sleep(fault.hold);
            for &i in nodes {
                cluster.server(i).resume();
            }
        }
    }
    record.end_ns = now_ns();
    record
}

/// Reads `faults.jsonl` back.
pub fn read_log(path: &Path) -> anyhow::Result<Vec<FaultRecord>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("not a fault record: {l}")))
        .collect()
}
