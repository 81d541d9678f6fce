//! A held claim: its validity, extension, keep-alive, release and completion.
//!
//! A [`Lease`] is what [`crate::Claim::Acquired`] carries. It holds the secret owner value, so
//! only it can extend, release or complete the claim. A [`LeaseWatch`] is a cheap, cloneable view
//! of it (validity, token, loss) to hand to the code doing the work.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::Cluster;
use crate::error::{Error, LossReason};
use crate::node::{complete_cmd, extend_cmd, parse_ack, release_cmd};
use crate::owner::Owner;
use crate::quorum::{self, AckVerdict, Acks};

/// What every holder of a lease can see.
#[derive(Clone, Debug)]
struct State {
    /// Until when the lease is known to hold on a quorum (clock drift already taken off).
    valid_until: Instant,
    /// Set once, never cleared: why and when the lease stopped being trustworthy.
    lost: Option<(LossReason, Instant)>,
}

/// The parts of a lease that its keep-alive task and its final release share.
struct Shared {
    key: Arc<str>,
    owner: Owner,
    cluster: Arc<Cluster>,
    ttl: Duration,
    retention: Duration,
    state: watch::Sender<State>,
}

/// What the claim protocol hands over to make a lease.
pub(crate) struct LeaseParts {
    pub(crate) key: String,
    pub(crate) owner: Owner,
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) ttl: Duration,
    pub(crate) retention: Duration,
    pub(crate) token: Option<u64>,
    pub(crate) valid_until: Instant,
}

/// A claim held on a quorum of nodes: the right to process one id, for a limited time.
///
/// Get one from [`crate::Claim::Acquired`]. Then do the work and call [`Lease::complete`] (the
/// id becomes done, and duplicates get the stored result), or give it up with
/// [`Lease::release`] so that a retry can run at once.
///
/// The lease is only trustworthy for [`Lease::validity`]. For work that may take longer than the
/// lease, call [`Lease::keep_alive`]: a background task extends it before it runs out and
/// signals through [`Lease::lost`] as soon as it cannot.
///
/// Dropping a lease without completing or releasing it (for example when the work panics) stops
/// its keep-alive and releases it in the background, best effort; if that release does not get
/// through, the claim ends with its lease on the nodes.
///
/// # Examples
///
/// ```no_run
/// # async fn run(dedup: dedup_client::Dedup) -> Result<(), dedup_client::Error> {
/// use dedup_client::Claim;
///
/// if let Claim::Acquired(mut lease) = dedup.claim("invoice:2024-0042").await? {
///     lease.keep_alive();
///     tokio::select! {
///         _ = send_invoice() => {
///             let completion = lease.complete(Some(b"sent")).await?;
///             assert!(completion.is_durable() || completion.acked() > 0);
///         }
///         reason = lease.lost() => eprintln!("stopped: lease lost ({reason})"),
///     }
/// }
/// # Ok(()) }
/// # async fn send_invoice() {}
/// ```
pub struct Lease {
    shared: Arc<Shared>,
    watch: LeaseWatch,
    keep_alive: Option<JoinHandle<()>>,
    runtime: Handle,
    spent: bool,
}

impl Lease {
    /// Must run inside a Tokio runtime: the keep-alive and the release on drop run there.
    pub(crate) fn new(parts: LeaseParts) -> Lease {
        let key: Arc<str> = parts.key.into();
        let (state, rx) = watch::channel(State { valid_until: parts.valid_until, lost: None });
        let shared = Arc::new(Shared {
            key: key.clone(),
            owner: parts.owner,
            cluster: parts.cluster,
            ttl: parts.ttl,
            retention: parts.retention,
            state,
        });
        Lease {
            shared,
            watch: LeaseWatch { key, token: parts.token, rx },
            keep_alive: None,
            runtime: Handle::current(),
            spent: false,
        }
    }

    /// The id this lease is for.
    pub fn key(&self) -> &str {
        self.watch.key()
    }

    /// The fencing token, in fenced mode ([`crate::Builder::fencing`]); otherwise `None`.
    ///
    /// If one fenced claim returns before another fenced claim starts, the later one has the
    /// larger token, whatever the clocks say, across ids and across clients. Pass it to the
    /// resource you protect and have the resource refuse writes that carry a token smaller than
    /// the largest it has seen: that keeps a holder that lost its lease without knowing it (a
    /// long pause, a partition) from overwriting newer work. See the crate docs for what it does
    /// not promise.
    pub fn token(&self) -> Option<u64> {
        self.watch.token()
    }

    /// How much longer the lease is known to hold, now. Zero once lost.
    pub fn validity(&self) -> Duration {
        self.watch.validity()
    }

    /// When the lease stops being known to hold, unless extended.
    pub fn valid_until(&self) -> Instant {
        self.watch.valid_until()
    }

    /// Whether the lease can no longer be trusted (lost, or its validity ran out).
    pub fn is_lost(&self) -> bool {
        self.watch.is_lost()
    }

    /// Resolves as soon as the lease can no longer be trusted, with the reason. See
    /// [`LeaseWatch::lost`].
    pub fn lost(&self) -> impl Future<Output = LossReason> + Send + 'static {
        self.watch.lost()
    }

    /// A cloneable view of this lease (validity, token, loss) for the code doing the work.
    pub fn watch(&self) -> LeaseWatch {
        self.watch.clone()
    }

    /// Starts extending the lease in the background until it is completed, released or dropped.
    /// Calling it again does nothing.
    ///
    /// With `v` the lease's full validity (lease minus drift), the task extends it when a third of
    /// `v` has passed, and retries every `v / 15` while nodes fail. It declares the lease lost
    /// ([`LossReason::Unconfirmed`]) when only a third of `v` is left unconfirmed, so the holder
    /// learns of the loss well before the validity ends; and at once ([`LossReason::Rejected`])
    /// when a quorum of nodes answers that the claim is no longer this owner's.
    ///
    /// ```no_run
    /// # async fn run(mut lease: dedup_client::Lease) {
    /// lease.keep_alive();
    /// let lost = lease.lost();
    /// tokio::select! {
    ///     _ = long_job() => {}
    ///     reason = lost => eprintln!("lease lost: {reason}"),
    /// }
    /// # }
    /// # async fn long_job() {}
    /// ```
    pub fn keep_alive(&mut self) -> &mut Lease {
        if self.keep_alive.is_none() && !self.spent {
            self.keep_alive = Some(self.runtime.spawn(keep_alive(self.shared.clone())));
        }
        self
    }

    /// Extends the lease by its full length from now, on every node.
    ///
    /// Succeeds once a quorum acknowledges within the remaining validity, and returns the new
    /// validity. Fails with [`Error::LeaseLost`] when the validity already ran out or a quorum of
    /// nodes no longer holds the claim for this owner (the lease is then lost for good), and with
    /// [`Error::Unavailable`] when failed nodes kept the quorum from forming (the lease still holds
    /// for what is left of its validity, and a later call may succeed).
    ///
    /// # Errors
    ///
    /// [`Error::LeaseLost`] or [`Error::Unavailable`], as above.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(lease: dedup_client::Lease) -> Result<(), dedup_client::Error> {
    /// let validity = lease.extend().await?;
    /// println!("good for another {validity:?}");
    /// # Ok(()) }
    /// ```
    pub async fn extend(&self) -> Result<Duration, Error> {
        self.shared.extend().await
    }

    /// Gives the claim up on every node, so another worker can claim the id at once. A completed
    /// id is never released.
    ///
    /// Best effort: it reports how many nodes acknowledged, and a node it did not reach lets the
    /// claim end with its lease.
    ///
    /// ```no_run
    /// # async fn run(lease: dedup_client::Lease) {
    /// let released = lease.release().await;
    /// println!("released on {} of {} nodes", released.acked(), released.nodes());
    /// # }
    /// ```
    pub async fn release(mut self) -> Released {
        self.spend();
        self.shared.release().await
    }

    /// Marks the id as done on every node, storing `result` (at most the module's
    /// `dedup.max-result-bytes`, 64 KiB by default) for duplicates to get back, and keeps the
    /// marker for the retention ([`crate::Builder::retention`]).
    ///
    /// Returns how many nodes recorded it. [`Completion::is_durable`] tells whether that is a
    /// quorum. Fewer than a quorum but at least one is still a success (the next claim of this id
    /// sees `DONE` as long as one of those nodes answers), but a weaker one; zero is an error:
    /// [`Error::LeaseLost`] when every node answered that the claim is not this owner's, or
    /// [`Error::Unavailable`] when nodes failed.
    ///
    /// # Errors
    ///
    /// [`Error::LeaseLost`] or [`Error::Unavailable`] when no node recorded the completion, as
    /// above.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(lease: dedup_client::Lease) -> Result<(), dedup_client::Error> {
    /// let completion = lease.complete(Some(b"record 42")).await?;
    /// if !completion.is_durable() {
    ///     eprintln!("recorded on only {} of {} nodes", completion.acked(), completion.nodes());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn complete(mut self, result: Option<&[u8]>) -> Result<Completion, Error> {
        self.spend();
        self.shared.complete(result).await
    }

    /// Stops the keep-alive and marks the lease as handled, so that drop does not release it.
    fn spend(&mut self) {
        self.spent = true;
        if let Some(task) = self.keep_alive.take() {
            task.abort();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.spent {
            return;
        }
        self.spend();
        let shared = self.shared.clone();
        shared.mark_lost(LossReason::Ended);
        tracing::debug!(key = %shared.key, "lease dropped without completion; releasing it in the background");
        // Best effort: if the runtime is shutting down, the claim ends with its lease.
        drop(self.runtime.spawn(async move {
            shared.release().await;
        }));
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The owner is a secret: never shown.
        f.debug_struct("Lease")
            .field("key", &self.key())
            .field("token", &self.token())
            .field("validity", &self.validity())
            .field("lost", &self.watch.lost_reason())
            .field("keep_alive", &self.keep_alive.is_some())
            .finish()
    }
}

/// A cloneable, read-only view of a [`Lease`]: its validity, its token, and whether it was lost.
///
/// It cannot extend, release or complete the lease, so it is safe to hand to the code doing the
/// work ([`crate::Dedup::once`] does).
///
/// ```no_run
/// # async fn run(lease: dedup_client::Lease) {
/// let watch = lease.watch();
/// tokio::spawn(async move {
///     let reason = watch.lost().await;
///     eprintln!("{}: lease lost ({reason}); stop writing", watch.key());
/// });
/// # }
/// ```
#[derive(Clone)]
pub struct LeaseWatch {
    key: Arc<str>,
    token: Option<u64>,
    rx: watch::Receiver<State>,
}

impl LeaseWatch {
    /// The id the lease is for.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The fencing token; see [`Lease::token`].
    pub fn token(&self) -> Option<u64> {
        self.token
    }

    /// How much longer the lease is known to hold, now. Zero once lost.
    pub fn validity(&self) -> Duration {
        let state = self.rx.borrow();
        match state.lost {
            Some(_) => Duration::ZERO,
            None => state.valid_until.saturating_duration_since(Instant::now()),
        }
    }

    /// The end of the last confirmed validity (kept after a loss, for comparison).
    pub fn valid_until(&self) -> Instant {
        self.rx.borrow().valid_until
    }

    /// Whether the lease can no longer be trusted (lost, or its validity ran out).
    pub fn is_lost(&self) -> bool {
        self.validity().is_zero()
    }

    /// Why the lease was lost, and when that was noticed; `None` while it was not declared lost
    /// (its validity may still have run out: see [`LeaseWatch::is_lost`]).
    pub fn lost_reason(&self) -> Option<(LossReason, Instant)> {
        self.rx.borrow().lost.clone()
    }

    /// Resolves as soon as the lease can no longer be trusted: when the keep-alive (or an
    /// [`Lease::extend`]) finds it lost, when the holder completes, releases or drops it
    /// ([`LossReason::Ended`]), or at the end of its validity if nothing extended it
    /// ([`LossReason::Expired`]). Select on it next to the work, and stop the work when it fires.
    ///
    /// The future owns what it needs: it can be moved into another task.
    pub fn lost(&self) -> impl Future<Output = LossReason> + Send + 'static {
        let mut rx = self.rx.clone();
        async move {
            loop {
                let state = rx.borrow_and_update().clone();
                if let Some((reason, _)) = state.lost {
                    return reason;
                }
                let deadline = tokio::time::Instant::from_std(state.valid_until);
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() {
                            // Every sender is gone: the lease no longer exists.
                            return LossReason::Ended;
                        }
                    }
                    () = tokio::time::sleep_until(deadline) => {
                        let state = rx.borrow();
                        if state.lost.is_none() && state.valid_until <= Instant::now() {
                            return LossReason::Expired;
                        }
                    }
                }
            }
        }
    }
}

impl fmt::Debug for LeaseWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseWatch")
            .field("key", &self.key())
            .field("token", &self.token)
            .field("validity", &self.validity())
            .field("lost", &self.lost_reason())
            .finish()
    }
}

/// How a [`Lease::complete`] went: on how many nodes the id is now marked done.
///
/// ```
/// # use dedup_client::Completion;
/// # fn show(c: Completion) {
/// if c.is_durable() {
///     println!("done on {} of {} nodes", c.acked(), c.nodes());
/// }
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    acked: usize,
    quorum: usize,
    nodes: usize,
}

impl Completion {
    /// Nodes that recorded the completion.
    pub fn acked(&self) -> usize {
        self.acked
    }

    /// Nodes needed for a quorum.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// Nodes the client has.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// Whether a quorum recorded it: then every later claim of the id that reaches a quorum of
    /// nodes sees `DONE` (until the retention ends), even with a minority of nodes lost or
    /// restarted without persistence.
    pub fn is_durable(&self) -> bool {
        self.acked >= self.quorum
    }
}

/// How a [`Lease::release`] went: how many nodes gave the claim up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Released {
    acked: usize,
    nodes: usize,
}

impl Released {
    /// Nodes that released the claim (a node where it had already expired says no).
    pub fn acked(&self) -> usize {
        self.acked
    }

    /// Nodes the client has.
    pub fn nodes(&self) -> usize {
        self.nodes
    }
}

impl Shared {
    fn state(&self) -> State {
        self.state.borrow().clone()
    }

    fn lost_error(&self, reason: LossReason) -> Error {
        Error::LeaseLost { key: self.key.to_string(), reason }
    }

    /// Declares the lease lost (first reason wins) and wakes every watcher.
    fn mark_lost(&self, reason: LossReason) {
        let changed = self.state.send_if_modified(|state| {
            if state.lost.is_some() {
                return false;
            }
            state.lost = Some((reason.clone(), Instant::now()));
            true
        });
        if changed && reason != LossReason::Ended {
            tracing::warn!(key = %self.key, %reason, "lease lost");
        }
    }

    /// Records a confirmed validity, unless the lease was lost meanwhile.
    fn confirm(&self, valid_until: Instant) {
        self.state.send_if_modified(|state| {
            if state.lost.is_some() || valid_until <= state.valid_until {
                return false;
            }
            state.valid_until = valid_until;
            true
        });
    }

    /// One `EXTEND` round; see [`Lease::extend`].
    async fn extend(&self) -> Result<Duration, Error> {
        let state = self.state();
        if let Some((reason, _)) = state.lost {
            return Err(self.lost_error(reason));
        }
        let start = Instant::now();
        let remaining = state.valid_until.saturating_duration_since(start);
        if remaining.is_zero() {
            self.mark_lost(LossReason::Expired);
            return Err(self.lost_error(LossReason::Expired));
        }
        let cluster = &self.cluster;
        let cmd = extend_cmd(&self.key, self.ttl, &self.owner);
        let timeout = remaining.min(cluster.node_timeout());
        let slots = cluster
            .broadcast_all(&cmd, timeout, |r| parse_ack(r, "DEDUP.EXTEND"), |s| {
                Acks::count(s).quorum_verdict() != AckVerdict::Pending
            })
            .await;
        let verdict = Acks::count(&slots).quorum_verdict();
        let decided = Instant::now();
        tracing::debug!(key = %self.key, ?verdict, nodes = %cluster.outcomes(&slots), "extend");
        match verdict {
            AckVerdict::Reached if decided < state.valid_until => {
                let valid_until = start + quorum::validity(self.ttl, Duration::ZERO);
                self.confirm(valid_until);
                Ok(valid_until.saturating_duration_since(decided))
            }
            AckVerdict::Reached => {
                self.mark_lost(LossReason::Expired);
                Err(self.lost_error(LossReason::Expired))
            }
            AckVerdict::Rejected => {
                self.mark_lost(LossReason::Rejected);
                Err(self.lost_error(LossReason::Rejected))
            }
            AckVerdict::Unreachable | AckVerdict::Pending => Err(cluster.unavailable(&slots)),
        }
    }

    async fn release(&self) -> Released {
        let cluster = &self.cluster;
        let cmd = release_cmd(&self.key, &self.owner);
        let slots =
            cluster.broadcast_all(&cmd, cluster.node_timeout(), |r| parse_ack(r, "DEDUP.RELEASE"), |_| false).await;
        self.mark_lost(LossReason::Ended);
        let acks = Acks::count(&slots);
        tracing::debug!(key = %self.key, acked = acks.yes, nodes = %cluster.outcomes(&slots), "release");
        Released { acked: acks.yes, nodes: cluster.len() }
    }

    async fn complete(&self, result: Option<&[u8]>) -> Result<Completion, Error> {
        let cluster = &self.cluster;
        let cmd = complete_cmd(&self.key, self.retention, &self.owner, result);
        let slots =
            cluster.broadcast_all(&cmd, cluster.node_timeout(), |r| parse_ack(r, "DEDUP.COMPLETE"), |_| false).await;
        self.mark_lost(LossReason::Ended);
        let acks = Acks::count(&slots);
        let completion = Completion { acked: acks.yes, quorum: cluster.quorum(), nodes: cluster.len() };
        let outcomes = cluster.outcomes(&slots);
        if completion.is_durable() {
            tracing::debug!(key = %self.key, acked = acks.yes, nodes = %outcomes, "complete");
        } else {
            tracing::warn!(key = %self.key, acked = acks.yes, quorum = cluster.quorum(), nodes = %outcomes, "completion recorded on fewer nodes than a quorum");
        }
        match acks {
            Acks { yes: 1.., .. } => Ok(completion),
            Acks { failed: 0, .. } => Err(self.lost_error(LossReason::Rejected)),
            _ => Err(cluster.unavailable(&slots)),
        }
    }
}

/// The keep-alive task; see [`Lease::keep_alive`].
async fn keep_alive(shared: Arc<Shared>) {
    let full = quorum::validity(shared.ttl, Duration::ZERO);
    let renew_when_left = full * 2 / 3;
    let give_up_when_left = full / 3;
    let pause = (full / 15).max(Duration::from_millis(1));
    loop {
        let state = shared.state();
        if state.lost.is_some() {
            return;
        }
        let renew_at = state.valid_until.checked_sub(renew_when_left).unwrap_or(state.valid_until);
        tokio::time::sleep_until(tokio::time::Instant::from_std(renew_at)).await;
        loop {
            match shared.extend().await {
                Ok(_) => break,
                Err(Error::Unavailable { failures, .. }) => {
                    let left = shared.state().valid_until.saturating_duration_since(Instant::now());
                    if left <= give_up_when_left {
                        let failures = failures.iter().map(ToString::to_string).collect();
                        shared.mark_lost(LossReason::Unconfirmed { failures });
                        return;
                    }
                    tokio::time::sleep(pause.min(left.saturating_sub(give_up_when_left))).await;
                }
                // Lost (already marked), or anything unexpected: stop.
                Err(_) => return,
            }
        }
    }
}
