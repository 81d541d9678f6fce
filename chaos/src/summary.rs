//! The run's result: counted from the evidence, printed as a table, saved as `summary.json`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::checker::{Findings, Rule};
use crate::history::{Decision, Entry};
use crate::injector::FaultRecord;
use crate::kleppmann::KleppmannOutcome;
use crate::plan::{FaultKind, Plan};
use crate::protocol::Answer;
use crate::sender::SenderStats;
use crate::store::StoredWrite;

/// How many violations are printed in full; the rest are in `summary.json`.
const PRINTED_VIOLATIONS: usize = 20;

#[derive(Clone, Debug, Serialize)]
pub struct Setup {
    pub nodes: usize,
    pub worker_processes: usize,
    pub tasks_per_worker: usize,
    pub lease: Duration,
    pub node_timeout: Duration,
    pub storm_timeout: Duration,
    pub run_dir: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub setup: Setup,
    pub seed: u64,
    pub active: Duration,
    pub traffic: Duration,
    pub drain: Duration,
    pub events: usize,
    pub deliveries: usize,
    pub claims: usize,
    pub store_writes: usize,
    pub completions: usize,
    pub sender_requests: usize,
    pub sender_retries: usize,
    pub unfinished_deliveries: Vec<(String, usize)>,
    pub answers: BTreeMap<Answer, usize>,
    pub faults: BTreeMap<FaultKind, usize>,
    /// Faults in the plan; those after the last delivery are not carried out.
    pub faults_planned: usize,
    pub decisions: BTreeMap<Decision, usize>,
    pub rejected_stale_writes: usize,
    pub kleppmann: KleppmannOutcome,
    pub findings: Findings,
}

/// What `Summary::new` counts from.
pub struct Counted<'a> {
    pub setup: Setup,
    pub plan: &'a Plan,
    pub sender: SenderStats,
    pub entries: &'a [Entry],
    pub writes: &'a [StoredWrite],
    pub faults: &'a [FaultRecord],
    pub kleppmann: KleppmannOutcome,
    pub findings: Findings,
}

impl Summary {
    pub fn new(c: Counted<'_>) -> Summary {
        let mut decisions: BTreeMap<Decision, usize> = Decision::ALL.iter().map(|d| (*d, 0)).collect();
        let (mut claims, mut completions) = (0, 0);
        for entry in c.entries {
            match entry {
                Entry::Claim(claim) => {
                    claims += 1;
                    *decisions.entry(claim.decision).or_default() += 1;
                }
                Entry::Complete(_) => completions += 1,
                Entry::Write(_) => {}
            }
        }
        let mut faults: BTreeMap<FaultKind, usize> = FaultKind::ALL.iter().map(|k| (*k, 0)).collect();
        for fault in c.faults {
            *faults.entry(fault.kind).or_default() += 1;
        }
        Summary {
            setup: c.setup,
            seed: c.plan.settings.seed,
            active: c.plan.settings.active,
            traffic: c.sender.traffic,
            drain: c.sender.drain,
            events: c.plan.events.len(),
            deliveries: c.plan.deliveries(),
            claims,
            store_writes: c.writes.len(),
            completions,
            sender_requests: c.sender.requests,
            sender_retries: c.sender.retries,
            unfinished_deliveries: c.sender.unfinished,
            answers: c.sender.answers,
            faults,
            faults_planned: c.plan.faults.len(),
            decisions,
            rejected_stale_writes: c.writes.iter().filter(|w| !w.accepted).count(),
            kleppmann: c.kleppmann,
            findings: c.findings,
        }
    }

    pub fn violations(&self) -> usize {
        self.findings.violations.len()
    }

    /// Whether the run proves what it should: no violation, every delivery answered, and the
    /// stale write refused in the Kleppmann scenario.
    pub fn passed(&self) -> bool {
        self.violations() == 0 && self.unfinished_deliveries.is_empty() && self.kleppmann.late_write_rejected
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn joined<K, I: IntoIterator<Item = (K, usize)>>(items: I, name: impl Fn(K) -> String) -> String {
    items.into_iter().map(|(k, n)| format!("{} {n}", name(k))).collect::<Vec<_>>().join(" · ")
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.setup;
        writeln!(
            f,
            "dedup-chaos: {} nodes (AOF, appendfsync always), {} worker processes x {} tasks, lease {} ms, node timeout {} ms (storms {} us)",
            s.nodes,
            s.worker_processes,
            s.tasks_per_worker,
            s.lease.as_millis(),
            s.node_timeout.as_millis(),
            s.storm_timeout.as_micros()
        )?;
        writeln!(
            f,
            "seed {} · deliveries for {} (active time {}, drain past it {}) · run dir {}",
            self.seed,
            secs(self.traffic),
            secs(self.active),
            secs(self.drain),
            s.run_dir
        )?;
        writeln!(f)?;
        let row = |f: &mut fmt::Formatter<'_>, label: &str, value: String| writeln!(f, "  {label:<22} {value}");
        row(
            f,
            "operations",
            format!(
                "{} claims · {} store writes · {} completions · {} sender requests ({} retries)",
                self.claims, self.store_writes, self.completions, self.sender_requests, self.sender_retries
            ),
        )?;
        row(f, "events", format!("{} events, {} deliveries (2-4 each)", self.events, self.deliveries))?;
        let done: usize = self.faults.values().sum();
        row(
            f,
            "faults",
            format!(
                "{} ({done} of {} planned)",
                joined(self.faults.iter().map(|(k, n)| (*k, *n)), |k| k.name().to_string()),
                self.faults_planned
            ),
        )?;
        row(f, "decisions", joined(self.decisions.iter().map(|(k, n)| (*k, *n)), |d| d.name().to_string()))?;
        row(f, "answers to the sender", joined(self.answers.iter().map(|(k, n)| (*k, *n)), |a| format!("{a:?}").to_lowercase()))?;
        let k = &self.kleppmann;
        let in_scenario = k.writes.iter().filter(|w| !w.2).count();
        row(
            f,
            "rejected stale writes",
            format!("{} ({} in the Kleppmann scenario, {} in the main run)", self.rejected_stale_writes, in_scenario, self.rejected_stale_writes - in_scenario.min(self.rejected_stale_writes)),
        )?;
        row(
            f,
            "Kleppmann scenario",
            format!(
                "holder token {} frozen {}; rival token {} {:?}; holder's late write {:?} -> {}",
                k.holder_token,
                secs(k.frozen_for),
                k.rival_token,
                k.rival_answer,
                k.holder_answer,
                if k.late_write_rejected { "REJECTED by its token" } else { "NOT rejected" }
            ),
        )?;
        if !self.unfinished_deliveries.is_empty() {
            row(f, "unfinished deliveries", format!("{} {:?}", self.unfinished_deliveries.len(), self.unfinished_deliveries))?;
        }
        writeln!(f, "  checks")?;
        for rule in Rule::ALL {
            let label = format!("{} {}", rule.number(), rule.describe());
            writeln!(
                f,
                "    {label:<52} {:>6} examined, {} violations",
                self.findings.checked.get(&rule).copied().unwrap_or(0),
                self.findings.violations_of(rule)
            )?;
        }
        row(f, "violations", self.violations().to_string())?;
        for violation in self.findings.violations.iter().take(PRINTED_VIOLATIONS) {
            write!(f, "\n{violation}")?;
        }
        if self.violations() > PRINTED_VIOLATIONS {
            writeln!(f, "\n... {} more in summary.json", self.violations() - PRINTED_VIOLATIONS)?;
        }
        Ok(())
    }
}
