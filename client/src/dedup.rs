//! The client handle.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::builder::Builder;
use crate::claim::{self, Claim};
use crate::cluster::Cluster;
use crate::error::{ConfigError, Error};
use crate::lease::LeaseWatch;
use crate::once::{self, Once, OnceError};
use crate::options::{ClaimOptions, Settings};
use crate::report::ClaimReport;

/// A quorum client over independent Redis servers running the dedup module.
///
/// Cheap to clone: clones share the connections (one multiplexed, auto-reconnecting connection
/// per node) and the settings. Create one per process and clone it into every task.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use dedup_client::{Claim, Dedup};
///
/// # async fn run() -> Result<(), dedup_client::Error> {
/// let dedup = Dedup::builder()
///     .nodes(["redis://10.0.0.1:6379", "redis://10.0.0.2:6379", "redis://10.0.0.3:6379"])
///     .lease(Duration::from_secs(30))
///     .connect()
///     .await?;
///
/// match dedup.claim("webhook:evt_123").await? {
///     Claim::Acquired(lease) => {
///         // ... process the event ...
///         lease.complete(Some(b"record 42")).await?;
///     }
///     Claim::Completed { result } => println!("duplicate; first run stored {result:?}"),
///     Claim::InProgress { retry_after } => println!("busy; retry in {retry_after:?}"),
///     Claim::Mismatch => println!("same id, different payload"),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Dedup {
    cluster: Arc<Cluster>,
    settings: Arc<Settings>,
}

impl Dedup {
    /// Starts configuring a client. See [`Builder`] for the settings and their defaults.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) async fn connect(nodes: &[crate::node::NodeSpec], settings: Settings) -> Result<Dedup, Error> {
        let settings = settings.check()?;
        let cluster = Cluster::connect(nodes, settings.node_timeout, settings.connect_timeout).await?;
        Ok(Dedup { cluster: Arc::new(cluster), settings: Arc::new(settings) })
    }

    /// Claims `id` with the client's settings. See [`Dedup::claim_with`].
    ///
    /// # Errors
    ///
    /// As [`Dedup::claim_with`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(dedup: dedup_client::Dedup) -> Result<(), dedup_client::Error> {
    /// let claim = dedup.claim("webhook:evt_123").await?;
    /// # drop(claim); Ok(()) }
    /// ```
    pub async fn claim(&self, id: &str) -> Result<Claim, Error> {
        self.claim_with(id, ClaimOptions::default()).await
    }

    /// Claims `id` on every node at once and returns what a quorum of them agrees on.
    ///
    /// One request goes to every node, each with the node timeout; the verdict follows the rules
    /// in the [crate docs](crate#the-rules): `DONE` anywhere gives [`Claim::Completed`], then a
    /// fingerprint mismatch gives [`Claim::Mismatch`], `CLAIMED` on a quorum gives
    /// [`Claim::Acquired`] and `HELD` on a quorum [`Claim::InProgress`]. Anything else releases
    /// what was claimed and tries again after a random pause, up to [`Builder::retries`] times;
    /// then it fails with [`Error::Unavailable`] if failed nodes stood in the way, or
    /// [`Error::Contended`] if racing claims split the votes.
    ///
    /// # Errors
    ///
    /// - [`Error::Unavailable`]: failed nodes left no quorum on the last round (never a
    ///   duplicate verdict: answer so that the sender retries);
    /// - [`Error::Contended`]: racing claims split the votes on every round;
    /// - [`Error::LeaseLost`] ([`crate::LossReason::NotFenced`]): fenced mode only, the fencing
    ///   token could not be set on a quorum, and the claim was released;
    /// - [`Error::Config`]: an empty id, or options out of range ([`ClaimOptions`]);
    /// - [`Error::Entropy`]: the OS random number generator failed.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(dedup: dedup_client::Dedup, body: &[u8]) -> Result<(), dedup_client::Error> {
    /// use std::time::Duration;
    /// use dedup_client::ClaimOptions;
    ///
    /// # fn digest(_: &[u8]) -> [u8; 32] { [0; 32] }
    /// let options = ClaimOptions {
    ///     fingerprint: Some(digest(body).to_vec()), // e.g. SHA-256 of the payload
    ///     lease: Some(Duration::from_secs(5)),
    ///     ..Default::default()
    /// };
    /// let claim = dedup.claim_with("webhook:evt_123", options).await?;
    /// # drop(claim); Ok(()) }
    /// ```
    pub async fn claim_with(&self, id: &str, options: ClaimOptions) -> Result<Claim, Error> {
        if id.is_empty() {
            return Err(ConfigError::EmptyId.into());
        }
        let options = options.resolve(&self.settings)?;
        claim::claim(&self.cluster, &self.settings, id, options, None).await
    }

    /// Claims `id` as [`Dedup::claim_with`] does, and also returns what every node answered in
    /// every round: the evidence behind the outcome, for audits and fault-injection checkers.
    ///
    /// The outcome is exactly the one `claim_with` would give; recording the replies costs a few
    /// small allocations per round. The report never holds the owner value or a stored result.
    /// A claim refused before any request was sent (an empty id, options out of range) returns
    /// an empty report.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(dedup: dedup_client::Dedup) {
    /// use dedup_client::{ClaimOptions, NodeReply};
    ///
    /// let (outcome, report) = dedup.claim_with_report("webhook:evt_123", ClaimOptions::new()).await;
    /// if let Some(last) = report.rounds().last() {
    ///     let held = last.replies().iter().filter(|r| matches!(r, NodeReply::Held { .. })).count();
    ///     println!("{held} of {} nodes said HELD; quorum {}", report.nodes().len(), report.quorum());
    /// }
    /// println!("{report}"); // round 1 (1ms) InProgress: 127.0.0.1:7001=HELD(pttl=29998ms) ...
    /// # drop(outcome); }
    /// ```
    pub async fn claim_with_report(&self, id: &str, options: ClaimOptions) -> (Result<Claim, Error>, ClaimReport) {
        let mut report = ClaimReport::new(self.nodes().map(String::from).collect(), self.quorum());
        if id.is_empty() {
            return (Err(ConfigError::EmptyId.into()), report);
        }
        let options = match options.resolve(&self.settings) {
            Ok(options) => options,
            Err(e) => return (Err(e.into()), report),
        };
        let outcome = claim::claim(&self.cluster, &self.settings, id, options, Some(&mut report)).await;
        (outcome, report)
    }

    /// Runs `job` at most once per `id` (see [`Dedup::once_with`]), with the client's settings.
    ///
    /// # Errors
    ///
    /// As [`Dedup::once_with`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(dedup: dedup_client::Dedup) {
    /// use dedup_client::Once;
    ///
    /// let outcome = dedup
    ///     .once("payout:981", |lease| async move {
    ///         // lease.token() would carry the fencing token in fenced mode.
    ///         Ok::<_, std::io::Error>(format!("paid under lease {:?}", lease.key()))
    ///     })
    ///     .await;
    /// match outcome {
    ///     Ok(Once::Ran { output, .. }) => println!("ran: {output}"),
    ///     Ok(Once::Replayed(output)) => println!("duplicate, first run said: {output}"),
    ///     Ok(other) => println!("not now: {other:?}"),
    ///     Err(e) => println!("failed: {e}"),
    /// }
    /// # }
    /// ```
    pub async fn once<T, E, F, Fut>(&self, id: &str, job: F) -> Result<Once<T>, OnceError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(LeaseWatch) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.once_with(id, ClaimOptions::default(), job).await
    }

    /// Runs `job` at most once per `id`, stores its output (serialized as JSON with serde), and
    /// hands the stored output to every duplicate.
    ///
    /// It claims the id. When acquired, it keeps the lease alive and runs the job with a
    /// [`LeaseWatch`]; on `Ok`, it completes the id with the serialized output
    /// ([`Once::Ran`]); on `Err`, it releases the claim so that a retry can run
    /// ([`OnceError::Job`]). If the lease is lost while the job runs, the job's future is dropped
    /// at its next `.await` and the call fails with [`Error::LeaseLost`]: write jobs so that
    /// stopping at an `.await` is safe (or pass [`LeaseWatch::token`] to the resource). When the
    /// id was already done, the stored output is decoded and returned ([`Once::Replayed`]).
    ///
    /// "At most once" holds as long as leases hold; see the crate docs for what can break them.
    ///
    /// # Errors
    ///
    /// - [`OnceError::Job`]: the job returned an error; the claim was released;
    /// - [`OnceError::Dedup`] with any error of [`Dedup::claim_with`]; with
    ///   [`Error::LeaseLost`] when the lease was lost while the job ran (the job was stopped);
    ///   with [`Error::Encode`] when the output could not be serialized (the claim was
    ///   released); with [`Error::Decode`] when the stored output of a duplicate does not
    ///   decode as `T`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run(dedup: dedup_client::Dedup, body: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
    /// use dedup_client::ClaimOptions;
    ///
    /// # fn digest(_: &[u8]) -> Vec<u8> { vec![0; 32] }
    /// let outcome = dedup
    ///     .once_with("webhook:evt_9", ClaimOptions::new().fingerprint(digest(&body)), |_lease| async {
    ///         Ok::<u32, std::io::Error>(201)
    ///     })
    ///     .await?;
    /// println!("{:?}", outcome.output());
    /// # Ok(()) }
    /// ```
    pub async fn once_with<T, E, F, Fut>(
        &self,
        id: &str,
        options: ClaimOptions,
        job: F,
    ) -> Result<Once<T>, OnceError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(LeaseWatch) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut lease = match self.claim_with(id, options).await? {
            Claim::Acquired(lease) => lease,
            other => return Ok(once::settle(other)?),
        };
        lease.keep_alive();
        let lost = lease.lost();
        let output = tokio::select! {
            biased;
            output = job(lease.watch()) => output,
            reason = lost => {
                return Err(Error::LeaseLost { key: id.to_string(), reason }.into());
            }
        };
        once::record(lease, output).await
    }

    /// The nodes' addresses (`host:port`), in the order given.
    ///
    /// ```no_run
    /// # fn run(dedup: dedup_client::Dedup) {
    /// for node in dedup.nodes() {
    ///     println!("{node}");
    /// }
    /// # }
    /// ```
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.cluster.names()
    }

    /// How many nodes must agree: `nodes / 2 + 1`.
    pub fn quorum(&self) -> usize {
        self.cluster.quorum()
    }
}

impl fmt::Debug for Dedup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dedup")
            .field("nodes", &self.nodes().collect::<Vec<_>>())
            .field("quorum", &self.quorum())
            .field("settings", &self.settings)
            .finish()
    }
}
