//! The seeded plan of a run: which events are delivered when, and which faults hit which nodes.
//!
//! Everything random about a run is drawn here, up front, from one seed: the same seed and
//! settings give the same deliveries and the same fault schedule (the interleavings on the
//! machine still differ, as they do in any real system). The plan is written to `plan.json` in
//! the run directory so that a failing run can be read and replayed.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The knobs of a run that the plan depends on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanSettings {
    pub seed: u64,
    /// How long deliveries and faults go on; the drain comes after.
    pub active: Duration,
    pub events: usize,
    pub nodes: usize,
    /// The claim lease: a pause fault lasts longer than this.
    pub lease: Duration,
}

/// One event and the moments its sender delivers it (offsets from the start of the run).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventPlan {
    pub id: String,
    /// Every delivery of an event carries the same payload, so the same fingerprint: a
    /// `MISMATCH` can only come from a bug.
    pub fingerprint: String,
    pub deliveries: Vec<Duration>,
}

/// The kinds of fault the injector knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// SIGKILL (no shutdown, no save), down for a while, then a restart that loads the AOF.
    KillRestart,
    /// SIGSTOP for longer than the lease, then SIGCONT: the node's leases run out while it
    /// sleeps, and the requests queued on its sockets run when it wakes.
    PausePastLease,
    /// A minority of nodes paused while every worker uses a tiny per-node timeout: replies from
    /// the live nodes miss it too, so rounds fail and claims must come out `Unavailable`, never
    /// a duplicate verdict.
    TimeoutStorm,
}

impl FaultKind {
    pub const ALL: [FaultKind; 3] = [FaultKind::KillRestart, FaultKind::PausePastLease, FaultKind::TimeoutStorm];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillRestart => "kill + restart from AOF",
            FaultKind::PausePastLease => "pause past the lease",
            FaultKind::TimeoutStorm => "client timeout storm",
        }
    }
}

/// One fault: what, on which nodes (indices), when it starts and how long it holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultPlan {
    pub kind: FaultKind,
    pub nodes: Vec<usize>,
    pub at: Duration,
    pub hold: Duration,
}

impl FaultPlan {
    pub fn end(&self) -> Duration {
        self.at + self.hold
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    pub settings: PlanSettings,
    pub events: Vec<EventPlan>,
    pub faults: Vec<FaultPlan>,
}

/// Time left between the end of one fault and the start of the next, on top of the drawn gap:
/// a restart (loading the AOF) takes a moment that the plan cannot know in advance.
const RESTART_ALLOWANCE: Duration = Duration::from_millis(700);

impl Plan {
    pub fn draw(settings: PlanSettings) -> Plan {
        let mut rng = StdRng::seed_from_u64(settings.seed);
        let events = draw_events(&mut rng, &settings);
        let faults = draw_faults(&mut rng, &settings);
        Plan { settings, events, faults }
    }

    pub fn deliveries(&self) -> usize {
        self.events.iter().map(|e| e.deliveries.len()).sum()
    }

    /// Whether `offset` falls in a timeout storm.
    pub fn storm_at(&self, offset: Duration) -> bool {
        self.faults.iter().any(|f| f.kind == FaultKind::TimeoutStorm && f.at <= offset && offset < f.end())
    }
}

/// Each event is delivered 2 to 4 times. The first delivery falls in the first 95 % of the
/// active time, so that traffic and faults go on together until its end; each duplicate follows the one before after a gap that is a burst (under
/// 20 ms: two deliveries racing into different workers), short (20-500 ms), or late (0.5-3 s:
/// after the first worker may have finished, or died).
fn draw_events(rng: &mut StdRng, settings: &PlanSettings) -> Vec<EventPlan> {
    let window = settings.active.mul_f64(0.95);
    (0..settings.events)
        .map(|i| {
            let copies = rng.random_range(2..=4);
            let mut at = window.mul_f64(rng.random::<f64>());
            let mut deliveries = vec![at];
            for _ in 1..copies {
                let gap_ms = match rng.random_range(0..10) {
                    0..=2 => rng.random_range(0.0..20.0),
                    3..=6 => rng.random_range(20.0..500.0),
                    _ => rng.random_range(500.0..3000.0),
                };
                at += Duration::from_secs_f64(gap_ms / 1000.0);
                deliveries.push(at);
            }
            EventPlan { id: format!("evt-{i:06}"), fingerprint: format!("payload-{:016x}", rng.random::<u64>()), deliveries }
        })
        .collect()
}

/// One fault at a time, on a random minority (1 or 2 of 5 nodes; at most `(n - 1) / 2`), from
/// 1 s after the start to 1 s before the end of the active time. Kinds come in shuffled rounds of
/// all three, so even a short run sees each kind.
fn draw_faults(rng: &mut StdRng, settings: &PlanSettings) -> Vec<FaultPlan> {
    let minority = (settings.nodes.saturating_sub(1) / 2).max(1);
    let end = settings.active.saturating_sub(Duration::from_secs(1));
    let mut at = Duration::from_secs(1);
    let mut kinds = Vec::new();
    let mut faults = Vec::new();
    loop {
        if kinds.is_empty() {
            kinds = FaultKind::ALL.to_vec();
            kinds.shuffle(rng);
        }
        let kind = kinds.pop().expect("refilled above");
        let (count, hold) = match kind {
            FaultKind::KillRestart => (rng.random_range(1..=minority), ms(rng, 200, 1500)),
            FaultKind::PausePastLease => (rng.random_range(1..=minority), settings.lease + ms(rng, 300, 1200)),
            FaultKind::TimeoutStorm => (rng.random_range(1..=minority), ms(rng, 1000, 3000)),
        };
        if at + hold > end {
            break;
        }
        let mut nodes: Vec<usize> = (0..settings.nodes).collect();
        nodes.shuffle(rng);
        nodes.truncate(count);
        nodes.sort_unstable();
        faults.push(FaultPlan { kind, nodes, at, hold });
        at += hold + RESTART_ALLOWANCE + ms(rng, 300, 1500);
    }
    faults
}

fn ms(rng: &mut StdRng, low: u64, high: u64) -> Duration {
    Duration::from_millis(rng.random_range(low..=high))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(seed: u64) -> PlanSettings {
        PlanSettings {
            seed,
            active: Duration::from_secs(45),
            events: 500,
            nodes: 5,
            lease: Duration::from_millis(1500),
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_plan() {
        let a = serde_json::to_string(&Plan::draw(settings(7))).unwrap();
        let b = serde_json::to_string(&Plan::draw(settings(7))).unwrap();
        let c = serde_json::to_string(&Plan::draw(settings(8))).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn events_are_delivered_two_to_four_times_in_order() {
        let plan = Plan::draw(settings(1));
        assert_eq!(plan.events.len(), 500);
        for event in &plan.events {
            assert!((2..=4).contains(&event.deliveries.len()), "{event:?}");
            assert!(event.deliveries.windows(2).all(|w| w[0] <= w[1]));
            assert!(event.deliveries[0] <= plan.settings.active);
        }
    }

    #[test]
    fn faults_hit_a_minority_one_at_a_time_and_every_kind_appears() {
        for seed in 0..20 {
            let plan = Plan::draw(settings(seed));
            for fault in &plan.faults {
                assert!((1..=2).contains(&fault.nodes.len()), "{fault:?}");
                assert!(fault.nodes.iter().all(|&n| n < 5));
                assert!(fault.end() < plan.settings.active);
                if fault.kind == FaultKind::PausePastLease {
                    assert!(fault.hold > plan.settings.lease);
                }
            }
            assert!(plan.faults.windows(2).all(|w| w[0].end() < w[1].at), "faults never overlap");
            for kind in FaultKind::ALL {
                assert!(plan.faults.iter().any(|f| f.kind == kind), "seed {seed}: no {kind:?}");
            }
        }
    }

    #[test]
    fn storms_are_known_by_their_window() {
        let plan = Plan::draw(settings(3));
        let storm = plan.faults.iter().find(|f| f.kind == FaultKind::TimeoutStorm).unwrap();
        assert!(plan.storm_at(storm.at));
        assert!(!plan.storm_at(storm.end()));
        assert!(!plan.storm_at(Duration::ZERO));
    }
}
