//! The flaky vendor: sends every planned delivery at its time, to a random receiver, all
//! concurrently, and retries every answer that is not 2xx with exponential backoff, as real
//! webhook senders do.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use indicatif::ProgressBar;
use rand::Rng;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::plan::Plan;
use crate::store::RecordId;
use crate::webhook::{Answer, ID_HEADER, TIMESTAMP_HEADER};

/// How a delivery is retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
    /// The pause after the first failure; it doubles after each further one...
    pub first_backoff: Duration,
    /// ...up to this.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// A vendor's policy, compressed from hours to seconds: 12 attempts, pauses from 50 ms
    /// doubling to 1 s, about 7 s in all. That outlasts a Redis node's restart, so no delivery
    /// should run out of attempts; if one does, the report says so.
    pub const VENDOR: RetryPolicy =
        RetryPolicy { max_attempts: 12, first_backoff: Duration::from_millis(50), max_backoff: Duration::from_secs(1) };

    /// The longest pause after `failures` failed attempts. The actual pause is drawn from its
    /// upper half, so that retries of racing deliveries spread out instead of colliding again.
    pub fn backoff_ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        (self.first_backoff * 2u32.pow(doublings)).min(self.max_backoff)
    }

    fn backoff(&self, failures: u32) -> Duration {
        let ceiling = self.backoff_ceiling(failures);
        ceiling / 2 + ceiling.mul_f64(rand::rng().random_range(0.0..=0.5))
    }
}

/// What the sender saw in one mode.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SendReport {
    /// HTTP requests made, retries included.
    pub requests: u64,
    /// Answers, by HTTP status.
    pub answers: BTreeMap<u16, u64>,
    /// Attempts that got no HTTP answer (connection refused or reset, timeout).
    pub connection_errors: u64,
    /// Deliveries still not acknowledged when their attempts ran out.
    pub unacknowledged: u64,
    /// Events whose acknowledgements named more than one record: the vendor was told two
    /// different things about one event.
    pub conflicting_answers: u64,
}

/// Sends a plan's deliveries to receivers.
pub struct Sender {
    http: reqwest::Client,
    targets: Arc<[String]>,
    policy: RetryPolicy,
}

impl Sender {
    /// `targets` are the receivers' webhook URLs.
    pub fn new(http: reqwest::Client, targets: Vec<String>, policy: RetryPolicy) -> Sender {
        assert!(!targets.is_empty(), "a sender needs at least one receiver");
        Sender { http, targets: targets.into(), policy }
    }

    /// Sends every delivery of `plan` at `start` plus its offset, and waits until each is
    /// acknowledged or out of attempts. `progress` advances once per finished delivery.
    ///
    /// An event's deliveries are launched when the event arrives, not all up front, so memory
    /// follows the deliveries in flight rather than the length of the plan.
    pub async fn send(&self, plan: &Plan, start: Instant, progress: &ProgressBar) -> SendReport {
        let mut running = JoinSet::new();
        let mut arrivals = plan.events.iter().enumerate().peekable();
        let mut tally = Tally::new(plan.events.len());
        loop {
            let next_arrival = arrivals.peek().map(|(_, event)| start + event.deliveries[0]);
            tokio::select! {
                () = tokio::time::sleep_until(next_arrival.unwrap_or(start)), if next_arrival.is_some() => {
                    let (index, event) = arrivals.next().expect("peeked");
                    let id: Arc<str> = event.id.as_str().into();
                    let payload = Bytes::from(event.payload.clone());
                    for offset in &event.deliveries {
                        let delivery = Delivery {
                            event: index,
                            id: id.clone(),
                            payload: payload.clone(),
                            due: start + *offset,
                            http: self.http.clone(),
                            targets: self.targets.clone(),
                            policy: self.policy,
                        };
                        running.spawn(delivery.run());
                    }
                }
                Some(joined) = running.join_next() => {
                    tally.add(joined.expect("a delivery task never panics"));
                    progress.inc(1);
                }
                // Every event has arrived and every delivery has ended.
                else => break,
            }
        }
        tally.report
    }
}

/// Adds finished deliveries up into a [`SendReport`].
struct Tally {
    report: SendReport,
    /// The records named by each event's acknowledgements.
    records: Vec<BTreeSet<RecordId>>,
}

impl Tally {
    fn new(events: usize) -> Tally {
        Tally { report: SendReport::default(), records: vec![BTreeSet::new(); events] }
    }

    fn add(&mut self, log: DeliveryLog) {
        let report = &mut self.report;
        report.requests += log.attempts.len() as u64;
        for attempt in &log.attempts {
            match attempt {
                Attempt::Answered(status) => *report.answers.entry(*status).or_default() += 1,
                Attempt::NoAnswer => report.connection_errors += 1,
            }
        }
        match log.acknowledged {
            Some(record) => {
                let seen = &mut self.records[log.event];
                let conflicted_before = seen.len() > 1;
                seen.extend(record);
                if seen.len() > 1 && !conflicted_before {
                    report.conflicting_answers += 1;
                }
            }
            None => report.unacknowledged += 1,
        }
    }
}

/// One delivery of one event, with everything its task needs.
struct Delivery {
    event: usize,
    id: Arc<str>,
    payload: Bytes,
    due: Instant,
    http: reqwest::Client,
    targets: Arc<[String]>,
    policy: RetryPolicy,
}

enum Attempt {
    Answered(u16),
    NoAnswer,
}

struct DeliveryLog {
    event: usize,
    attempts: Vec<Attempt>,
    /// `Some` once a 2xx came back, with the record it named (if it named one).
    acknowledged: Option<Option<RecordId>>,
}

impl Delivery {
    async fn run(self) -> DeliveryLog {
        tokio::time::sleep_until(self.due).await;
        let mut log = DeliveryLog { event: self.event, attempts: Vec::new(), acknowledged: None };
        for attempt in 1..=self.policy.max_attempts {
            match self.attempt().await {
                Ok((status, answer)) => {
                    log.attempts.push(Attempt::Answered(status));
                    if (200..300).contains(&status) {
                        log.acknowledged = Some(answer.and_then(|answer| answer.record));
                        return log;
                    }
                }
                Err(_) => log.attempts.push(Attempt::NoAnswer),
            }
            if attempt < self.policy.max_attempts {
                tokio::time::sleep(self.policy.backoff(attempt)).await;
            }
        }
        log
    }

    /// One POST to a receiver picked at random. The answer body is read only to learn the record.
    async fn attempt(&self) -> reqwest::Result<(u16, Option<Answer>)> {
        let target = &self.targets[rand::rng().random_range(0..self.targets.len())];
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let response = self
            .http
            .post(target)
            .header(ID_HEADER, &*self.id)
            .header(TIMESTAMP_HEADER, timestamp)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(self.payload.clone())
            .send()
            .await?;
        let status = response.status().as_u16();
        let body = response.bytes().await?;
        Ok((status, serde_json::from_slice(&body).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_pause_up_to_the_cap() {
        let policy = RetryPolicy::VENDOR;
        let ceilings: Vec<u128> = (1..=7).map(|failures| policy.backoff_ceiling(failures).as_millis()).collect();
        assert_eq!(ceilings, [50, 100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(policy.backoff_ceiling(u32::MAX), policy.max_backoff);
    }

    #[test]
    fn the_tally_counts_requests_answers_and_each_conflicting_event_once() {
        let acknowledged = |event, record| DeliveryLog {
            event,
            attempts: vec![Attempt::Answered(200)],
            acknowledged: Some(Some(RecordId(record))),
        };
        let mut tally = Tally::new(2);
        for (event, record) in [(0, 1), (0, 2), (0, 3), (1, 4), (1, 4)] {
            tally.add(acknowledged(event, record));
        }
        tally.add(DeliveryLog {
            event: 1,
            attempts: vec![Attempt::Answered(503), Attempt::NoAnswer],
            acknowledged: None,
        });
        assert_eq!(
            tally.report,
            SendReport {
                requests: 7,
                answers: [(200, 5), (503, 1)].into(),
                connection_errors: 1,
                unacknowledged: 1,
                conflicting_answers: 1,
            }
        );
    }

    #[test]
    fn a_pause_is_drawn_from_the_upper_half_of_its_ceiling() {
        let policy = RetryPolicy::VENDOR;
        for _ in 0..1_000 {
            let pause = policy.backoff(3);
            assert!((Duration::from_millis(100)..=Duration::from_millis(200)).contains(&pause), "{pause:?}");
        }
    }
}
