//! The flaky vendor's schedule: which events it sends, how many times each, and when.
//!
//! The schedule comes from a seed, so both modes get exactly the same deliveries at the same
//! offsets, and a run can be repeated with `--seed`. Which receiver gets each attempt is drawn
//! while sending, as a load balancer would.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// What shapes the schedule.
#[derive(Clone, Debug)]
pub struct PlanSettings {
    pub events: u32,
    /// Share of events delivered more than once, from 0 to 1.
    pub duplicate_rate: f64,
    /// Most deliveries of one duplicated event (at least 2).
    pub max_copies: u32,
    /// Largest gap between two consecutive deliveries of one event.
    pub copy_gap: Duration,
    /// New events per second.
    pub rate: u32,
}

/// One event and the offsets, from the start of sending, at which its deliveries go out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEvent {
    pub id: String,
    pub payload: Vec<u8>,
    /// Sorted; the first is the event's arrival.
    pub deliveries: Vec<Duration>,
}

/// Every event of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub events: Vec<PlannedEvent>,
}

impl Plan {
    pub fn generate(settings: &PlanSettings, seed: u64) -> Plan {
        let mut rng = StdRng::seed_from_u64(seed);
        let spacing = Duration::from_secs(1) / settings.rate.max(1);
        let gap_micros = u64::try_from(settings.copy_gap.as_micros()).unwrap_or(u64::MAX);
        let events = (0..settings.events)
            .map(|n| {
                let id = format!("msg_{:06}", n + 1);
                let payload = json!({
                    "type": "invoice.paid",
                    "data": {
                        "invoice": format!("in_{:06}", n + 1),
                        "amount_cents": rng.random_range(100..100_000),
                        "currency": "eur",
                    },
                })
                .to_string()
                .into_bytes();
                let copies = if rng.random_bool(settings.duplicate_rate.clamp(0.0, 1.0)) {
                    rng.random_range(2..=settings.max_copies.max(2))
                } else {
                    1
                };
                let mut at = spacing * n;
                let mut deliveries = vec![at];
                for _ in 1..copies {
                    at += Duration::from_micros(rng.random_range(0..=gap_micros));
                    deliveries.push(at);
                }
                PlannedEvent { id, payload, deliveries }
            })
            .collect();
        Plan { events }
    }

    /// Every delivery of every event, not counting the sender's retries.
    pub fn deliveries(&self) -> usize {
        self.events.iter().map(|event| event.deliveries.len()).sum()
    }

    /// When the last event first arrives: the span over which new events keep coming.
    pub fn arrival_window(&self) -> Duration {
        self.events.last().map_or(Duration::ZERO, |event| event.deliveries[0])
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn settings() -> PlanSettings {
        PlanSettings {
            events: 500,
            duplicate_rate: 1.0,
            max_copies: 3,
            copy_gap: Duration::from_millis(100),
            rate: 100,
        }
    }

    #[test]
    fn every_event_comes_two_or_three_times_with_gaps_up_to_the_limit() {
        let plan = Plan::generate(&settings(), 7);
        assert_eq!(plan.events.len(), 500);
        let ids: HashSet<&str> = plan.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), 500, "ids are unique");
        let mut copies_seen = HashSet::new();
        for event in &plan.events {
            copies_seen.insert(event.deliveries.len());
            for pair in event.deliveries.windows(2) {
                assert!(pair[1] >= pair[0] && pair[1] - pair[0] <= Duration::from_millis(100), "{event:?}");
            }
        }
        assert_eq!(copies_seen, HashSet::from([2, 3]));
        assert_eq!(plan.arrival_window(), Duration::from_millis(4_990), "500 events at 100 per second");
    }

    #[test]
    fn copies_of_one_event_carry_the_same_payload_and_the_same_seed_gives_the_same_plan() {
        let a = Plan::generate(&settings(), 42);
        assert_eq!(a, Plan::generate(&settings(), 42));
        assert_ne!(a, Plan::generate(&settings(), 43));
        let payload: serde_json::Value = serde_json::from_slice(&a.events[0].payload).unwrap();
        assert_eq!(payload["data"]["invoice"], "in_000001");
    }

    #[test]
    fn the_duplicate_rate_is_the_share_of_events_sent_more_than_once() {
        let once = Plan::generate(&PlanSettings { duplicate_rate: 0.0, ..settings() }, 1);
        assert_eq!(once.deliveries(), 500);

        let half = Plan::generate(&PlanSettings { events: 4_000, duplicate_rate: 0.5, ..settings() }, 1);
        let duplicated = half.events.iter().filter(|e| e.deliveries.len() > 1).count();
        assert!((1_800..=2_200).contains(&duplicated), "{duplicated} of 4000 duplicated at rate 0.5");
    }
}
