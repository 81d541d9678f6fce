//! The webhook sender: delivers every planned event to random workers at its planned moments,
//! and retries each delivery that was not acknowledged, with backoff, as webhook senders do.
//!
//! A delivery ends when a worker answers 2xx (applied, or already processed) or 422. Anything
//! else (409, 503, 500) schedules another attempt of the same delivery. After the active time the
//! sender keeps retrying, faults over, until every delivery has ended or the drain deadline
//! passes; what is still open then is reported as lost.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::clock::{self, now_ns};
use crate::plan::Plan;
use crate::pool::Pool;
use crate::protocol::{Answer, Delivery, WorkerMessage};

/// The first retry waits up to this long; each further one doubles it, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// What the sender did.
#[derive(Clone, Debug, Default)]
pub struct SenderStats {
    pub deliveries: usize,
    /// Requests sent, first attempts and retries.
    pub requests: usize,
    pub retries: usize,
    pub answers: BTreeMap<Answer, usize>,
    /// Deliveries that never ended (event id, how many attempts).
    pub unfinished: Vec<(String, usize)>,
    /// From the start to the end of the last delivery.
    pub traffic: Duration,
    /// From the end of the active time to the end of the last delivery (zero if before).
    pub drain: Duration,
}

/// One planned delivery: which event, and how many attempts it has had.
struct Open {
    event: usize,
    attempts: usize,
}

/// Runs the deliveries of `plan` through `pool`. Offsets count from `epoch_ns`; faults and new
/// deliveries stop at `epoch_ns + active`; retries stop at `deadline_ns`.
pub async fn deliver(plan: &Plan, pool: &mut Pool, epoch_ns: u64, deadline_ns: u64) -> anyhow::Result<SenderStats> {
    let mut rng = StdRng::seed_from_u64(plan.settings.seed ^ 0x5e4d_e45e);
    let mut stats = SenderStats { deliveries: plan.deliveries(), ..SenderStats::default() };
    let mut open: HashMap<usize, Open> = HashMap::new();
    let mut due: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    for (event, planned) in plan.events.iter().enumerate() {
        for offset in &planned.deliveries {
            let key = open.len();
            open.insert(key, Open { event, attempts: 0 });
            due.push(Reverse((epoch_ns + nanos(*offset), key)));
        }
    }
    // Attempt number -> delivery key, for the answers in flight.
    let mut in_flight: HashMap<u64, usize> = HashMap::new();
    let mut next_attempt: u64 = 1;
    let active_end = epoch_ns + nanos(plan.settings.active);

    while !open.is_empty() && now_ns() < deadline_ns {
        let wake = due.peek().map_or(deadline_ns, |Reverse((at, _))| (*at).min(deadline_ns));
        let sleep = tokio::time::sleep(Duration::from_nanos(wake.saturating_sub(now_ns())));
        tokio::select! {
            heard = pool.next() => {
                let (_, message) = heard?;
                let WorkerMessage::Answer { attempt, answer } = message else { continue };
                let key = in_flight.remove(&attempt).ok_or_else(|| anyhow::anyhow!("an answer to unknown attempt {attempt}"))?;
                *stats.answers.entry(answer).or_default() += 1;
                if answer.is_final() {
                    open.remove(&key);
                } else {
                    let tries = open[&key].attempts;
                    due.push(Reverse((now_ns() + nanos(backoff(&mut rng, tries)), key)));
                }
            }
            () = sleep => {
                while let Some(Reverse((at, key))) = due.peek().copied() {
                    if at > now_ns() {
                        break;
                    }
                    due.pop();
                    let entry = open.get_mut(&key).expect("only open deliveries are scheduled");
                    entry.attempts += 1;
                    if entry.attempts > 1 {
                        stats.retries += 1;
                    }
                    let event = &plan.events[entry.event];
                    let delivery = Delivery {
                        attempt: next_attempt,
                        event: event.id.clone(),
                        fingerprint: event.fingerprint.clone(),
                        storm: plan.storm_at(clock::since(epoch_ns, now_ns())),
                        work_ms: 0,
                    };
                    in_flight.insert(next_attempt, key);
                    next_attempt += 1;
                    stats.requests += 1;
                    let worker = rng.random_range(0..pool.len());
                    pool.send(worker, &delivery).await?;
                }
            }
        }
    }
    stats.traffic = clock::since(epoch_ns, now_ns());
    stats.drain = clock::since(active_end, now_ns());
    let mut unfinished: Vec<(String, usize)> =
        open.values().map(|o| (plan.events[o.event].id.clone(), o.attempts)).collect();
    unfinished.sort();
    stats.unfinished = unfinished;
    // Answers still in flight are collected by closing the pool; they change nothing here.
    Ok(stats)
}

/// A random pause before retry number `tries` (1 after the first attempt): exponential, capped,
/// with jitter so that retries of the same event do not march in step.
fn backoff(rng: &mut StdRng, tries: usize) -> Duration {
    let doublings = u32::try_from(tries.saturating_sub(1)).unwrap_or(u32::MAX).min(10);
    let ceiling = FIRST_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF);
    ceiling.mul_f64(rng.random_range(0.5..=1.0))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_fifty_milliseconds_up_to_a_second_with_jitter() {
        let mut rng = StdRng::seed_from_u64(1);
        for (tries, ceiling_ms) in [(1, 50), (2, 100), (3, 200), (5, 800), (6, 1000), (60, 1000)] {
            for _ in 0..100 {
                let pause = backoff(&mut rng, tries);
                assert!(pause <= Duration::from_millis(ceiling_ms), "try {tries}: {pause:?}");
                assert!(pause >= Duration::from_millis(ceiling_ms) / 2, "try {tries}: {pause:?}");
            }
        }
    }
}
