//! The claim protocol: rounds of `DEDUP.CLAIM` to every node, the verdict, retries, partial
//! releases and fencing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::cluster::{Cluster, Slots};
use crate::error::{Error, LossReason, NodeError};
use crate::lease::{Lease, LeaseParts};
use crate::node::{claim_cmd, fence_cmd, parse_ack, parse_claim, release_cmd};
use crate::options::{Resolved, Settings};
use crate::owner::Owner;
use crate::quorum::{self, AckVerdict, Acks, RetryCause, Verdict, Vote};
use crate::report::ClaimReport;

/// The outcome of a claim: what the nodes agree about an id.
///
/// Errors are not outcomes: when nodes fail, [`crate::Dedup::claim`] returns
/// [`Error::Unavailable`], never `InProgress` or `Completed`.
///
/// The lease type is a parameter so that [`crate::blocking`] can reuse this enum with its own
/// lease; async code always sees `Claim<Lease>`.
///
/// # What to answer a webhook sender
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), dedup_client::Error> {
/// # let servers: Vec<_> = (0..3).map(|_| testkit::RedisServer::start()).collect();
/// # let urls: Vec<String> = servers.iter().map(|s| s.url()).collect();
/// use dedup_client::{Claim, Dedup, Error};
///
/// async fn answer(dedup: &Dedup, id: &str) -> Result<u16, Error> {
///     Ok(match dedup.claim(id).await? {
///         Claim::Acquired(lease) => {
///             // Process the event, then record it: duplicates from now on get `Completed`.
///             lease.complete(Some(b"record 42")).await?;
///             200
///         }
///         Claim::Completed { .. } => 200,  // already processed: acknowledge, do nothing
///         Claim::InProgress { .. } => 409, // being processed right now: the sender retries
///         Claim::Mismatch => 422,          // same id, different payload: refuse
///     })
/// }
///
/// let dedup = Dedup::builder().nodes(urls).connect().await?;
/// assert_eq!(answer(&dedup, "evt_1").await?, 200); // processed now
/// assert_eq!(answer(&dedup, "evt_1").await?, 200); // a duplicate: not processed again
///
/// let busy = dedup.claim("evt_2").await?;          // another worker is on evt_2
/// assert_eq!(answer(&dedup, "evt_2").await?, 409);
/// # drop(busy); Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a claim tells whether to do the work; an acquired lease should be completed or released"]
pub enum Claim<L = Lease> {
    /// This caller holds the id on a quorum of nodes: do the work, then
    /// [`complete`](Lease::complete) (or [`release`](Lease::release) on failure).
    Acquired(L),
    /// Another worker holds the id on a quorum of nodes. Its work is running now, or it died and
    /// its lease has not run out yet. Answer so that the sender retries (409 or 503); a retry
    /// after `retry_after` gets `Completed` if the work finished, or the id if it was abandoned.
    InProgress {
        /// When enough of the other worker's leases end for a new claim to have a chance, if it
        /// neither extends nor completes them. A hint, not a promise.
        retry_after: Duration,
    },
    /// The id was already processed: a node holds its completion marker. Answer success and do
    /// not process it again.
    Completed {
        /// The result stored by [`Lease::complete`], if any.
        result: Option<Vec<u8>>,
    },
    /// The id is stored with a different payload fingerprint ([`crate::ClaimOptions::fingerprint`]):
    /// the same id was reused for different content. Refuse it (422) rather than replay or
    /// process it.
    Mismatch,
}

impl<L> Claim<L> {
    /// The lease, if this caller acquired the id.
    ///
    /// ```no_run
    /// # async fn run(dedup: dedup_client::Dedup) -> Result<(), dedup_client::Error> {
    /// if let Some(lease) = dedup.claim("job:7").await?.acquired() {
    ///     lease.release().await;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn acquired(self) -> Option<L> {
        match self {
            Claim::Acquired(lease) => Some(lease),
            _ => None,
        }
    }

    /// Whether the id was already completed.
    pub fn is_completed(&self) -> bool {
        matches!(self, Claim::Completed { .. })
    }

    /// Turns the lease into another type, keeping every other outcome.
    pub fn map_lease<M>(self, f: impl FnOnce(L) -> M) -> Claim<M> {
        match self {
            Claim::Acquired(lease) => Claim::Acquired(f(lease)),
            Claim::InProgress { retry_after } => Claim::InProgress { retry_after },
            Claim::Completed { result } => Claim::Completed { result },
            Claim::Mismatch => Claim::Mismatch,
        }
    }
}

/// Runs the whole claim protocol for one id, recording every round's replies in `report` when
/// one is given.
///
/// If the returned future is dropped midway (a caller's request was cancelled), whatever it had
/// claimed is released in the background, so the id does not stay blocked for a lease.
pub(crate) async fn claim(
    cluster: &Arc<Cluster>,
    settings: &Settings,
    key: &str,
    options: Resolved,
    report: Option<&mut ClaimReport>,
) -> Result<Claim, Error> {
    let owner = Owner::random()?;
    let mut guard = ReleaseOnDrop { cluster: cluster.clone(), key: key.to_string(), owner: owner.clone(), armed: true };
    let outcome = rounds(cluster, settings, key, options, owner, report).await;
    guard.armed = false;
    outcome
}

/// The claim rounds; see [`claim`].
async fn rounds(
    cluster: &Arc<Cluster>,
    settings: &Settings,
    key: &str,
    options: Resolved,
    owner: Owner,
    mut report: Option<&mut ClaimReport>,
) -> Result<Claim, Error> {
    let ttl = options.lease;
    let cmd = claim_cmd(key, ttl, &owner, options.fingerprint.as_deref());
    let attempts = settings.retries.saturating_add(1);
    let mut last = None;
    for attempt in 1..=attempts {
        let start = Instant::now();
        let slots = cluster
            .broadcast_all(&cmd, cluster.node_timeout(), |r| parse_claim(r, ttl), |slots| {
                quorum::decide(&votes(slots), ttl, start.elapsed()).is_final()
            })
            .await;
        let votes = votes(&slots);
        let elapsed = start.elapsed();
        let verdict = quorum::decide(&votes, ttl, elapsed);
        if let Some(report) = report.as_deref_mut() {
            report.record_round(attempt, elapsed, &slots, &verdict);
        }
        tracing::debug!(
            key,
            attempt,
            verdict = verdict.name(),
            elapsed_ms = millis(elapsed),
            nodes = %cluster.outcomes(&slots),
            "claim round"
        );
        let cause = match verdict {
            Verdict::Completed { node } => {
                release_partial(cluster, key, &owner, &slots).await;
                let Some(Vote::Done { result }) = votes.into_iter().nth(node).flatten() else {
                    unreachable!("decide points at a DONE vote")
                };
                return Ok(Claim::Completed { result });
            }
            Verdict::Mismatch => {
                release_partial(cluster, key, &owner, &slots).await;
                return Ok(Claim::Mismatch);
            }
            Verdict::InProgress { retry_after } => {
                release_partial(cluster, key, &owner, &slots).await;
                return Ok(Claim::InProgress { retry_after });
            }
            Verdict::Acquired { token, .. } => {
                let valid_until = start + quorum::validity(ttl, Duration::ZERO);
                let token = if settings.fencing {
                    Some(fence(cluster, key, &owner, token, valid_until, report).await?)
                } else {
                    None
                };
                return Ok(Claim::Acquired(Lease::new(LeaseParts {
                    key: key.to_string(),
                    owner,
                    cluster: cluster.clone(),
                    ttl,
                    retention: options.retention,
                    token,
                    valid_until,
                })));
            }
            Verdict::Retry(cause) => cause,
            // A round only ends undecided if every reply is in, and then decide never pends.
            Verdict::Pending => RetryCause::Failures,
        };
        release_partial(cluster, key, &owner, &slots).await;
        last = Some((cause, cluster.unavailable(&slots)));
        if attempt < attempts {
            let pause = random_delay(settings.retry_delay);
            tracing::debug!(key, attempt, pause_ms = millis(pause), "no quorum; retrying");
            tokio::time::sleep(pause).await;
        }
    }
    let error = match last {
        Some((RetryCause::Failures, unavailable)) => unavailable,
        _ => Error::Contended { attempts },
    };
    tracing::warn!(key, attempts, %error, "claim gave up");
    Err(error)
}

/// The claim replies as votes: errors become [`Vote::Failed`].
fn votes(slots: &[Option<Result<Vote, NodeError>>]) -> Vec<Option<Vote>> {
    slots.iter().map(|slot| slot.as_ref().map(|reply| reply.clone().unwrap_or(Vote::Failed))).collect()
}

/// Releases whatever a round may have claimed, so that when the claim returns, its partial
/// claims are gone.
///
/// Nodes that said `CLAIMED`, and nodes that had not answered when a `DONE` decided the round
/// early, get a release that is awaited (on a multiplexed connection it goes out after the claim,
/// so it undoes it). Nodes that failed (the claim may have landed before the error) get theirs in
/// the background: waiting on a node already seen failing would only cost the caller another
/// node timeout, and the release still reaches it whenever it recovers, or its lease runs out.
async fn release_partial(cluster: &Arc<Cluster>, key: &str, owner: &Owner, slots: &Slots<Vote>) {
    let (mut awaited, mut failed) = (Vec::new(), Vec::new());
    for (i, slot) in slots.iter().enumerate() {
        match slot {
            None | Some(Ok(Vote::Claimed { .. })) => awaited.push(i),
            Some(Err(_)) => failed.push(i),
            Some(Ok(_)) => {}
        }
    }
    if !failed.is_empty() {
        release_in_background(cluster.clone(), key.to_string(), owner.clone(), failed);
    }
    if !awaited.is_empty() {
        let cmd = release_cmd(key, owner);
        let released = cluster
            .broadcast(awaited, &cmd, cluster.node_timeout(), |r| parse_ack(r, "DEDUP.RELEASE"), |_| false)
            .await;
        tracing::debug!(key, nodes = %cluster.outcomes(&released), "released partial claims");
    }
}

/// Sends `DEDUP.RELEASE` to `targets` from a task of its own (nothing happens outside a Tokio
/// runtime; the claims then end with their lease).
fn release_in_background(cluster: Arc<Cluster>, key: String, owner: Owner, targets: Vec<usize>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    runtime.spawn(async move {
        let cmd = release_cmd(&key, &owner);
        let released = cluster
            .broadcast(targets, &cmd, cluster.node_timeout(), |r| parse_ack(r, "DEDUP.RELEASE"), |_| false)
            .await;
        tracing::debug!(key, nodes = %cluster.outcomes(&released), "released possible claims in the background");
    });
}

/// Releases everything in the background if a claim is dropped before it finishes.
struct ReleaseOnDrop {
    cluster: Arc<Cluster>,
    key: String,
    owner: Owner,
    armed: bool,
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let all = (0..self.cluster.len()).collect();
            release_in_background(self.cluster.clone(), std::mem::take(&mut self.key), self.owner.clone(), all);
        }
    }
}

/// Fenced mode: raises every node's token counter to `token`, the largest token of the claim.
/// A quorum must acknowledge within the validity; otherwise the claim is released.
async fn fence(
    cluster: &Cluster,
    key: &str,
    owner: &Owner,
    token: u64,
    valid_until: Instant,
    report: Option<&mut ClaimReport>,
) -> Result<u64, Error> {
    let cmd = fence_cmd(key, token, owner);
    let timeout = valid_until.saturating_duration_since(Instant::now()).min(cluster.node_timeout());
    let slots = if timeout.is_zero() {
        (0..cluster.len()).map(|_| Some(Err(NodeError::Timeout(timeout)))).collect()
    } else {
        cluster
            .broadcast_all(&cmd, timeout, |r| parse_ack(r, "DEDUP.FENCE"), |s| {
                Acks::count(s).quorum_verdict() != AckVerdict::Pending
            })
            .await
    };
    let verdict = Acks::count(&slots).quorum_verdict();
    tracing::debug!(key, token, ?verdict, nodes = %cluster.outcomes(&slots), "fence");
    let fenced = verdict == AckVerdict::Reached && Instant::now() < valid_until;
    if let Some(report) = report {
        report.record_fence(token, &slots, fenced);
    }
    if fenced {
        return Ok(token);
    }
    let release = release_cmd(key, owner);
    cluster.broadcast_all(&release, cluster.node_timeout(), |r| parse_ack(r, "DEDUP.RELEASE"), |_| false).await;
    Err(Error::LeaseLost { key: key.to_string(), reason: LossReason::NotFenced })
}

/// Whole milliseconds, for logs.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A uniformly random pause in `0..=max`, so that racing claimants stop colliding.
fn random_delay(max: Duration) -> Duration {
    let max = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
    Duration::from_micros(rand::rng().random_range(0..=max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_delays_stay_within_bounds() {
        assert_eq!(random_delay(Duration::ZERO), Duration::ZERO);
        for _ in 0..1_000 {
            assert!(random_delay(Duration::from_millis(200)) <= Duration::from_millis(200));
        }
    }

    #[test]
    fn errors_become_failed_votes_and_pending_stays_pending() {
        let slots: Slots<Vote> = vec![
            Some(Ok(Vote::Claimed { token: 3 })),
            Some(Err(NodeError::Timeout(Duration::from_millis(50)))),
            None,
        ];
        assert_eq!(votes(&slots), vec![Some(Vote::Claimed { token: 3 }), Some(Vote::Failed), None]);
    }

    #[test]
    fn claim_maps_its_lease_and_keeps_other_outcomes() {
        let c: Claim<u8> = Claim::Acquired(7);
        assert!(matches!(c.map_lease(u16::from), Claim::Acquired(7u16)));
        let c: Claim<u8> = Claim::Completed { result: None };
        assert!(c.is_completed());
        assert!(c.acquired().is_none());
        let c: Claim<u8> = Claim::InProgress { retry_after: Duration::from_secs(1) };
        assert!(matches!(c.map_lease(u16::from), Claim::InProgress { retry_after } if retry_after == Duration::from_secs(1)));
    }
}
