//! A quorum client for the `redis-dedup` module: Redlock-style claims over `DEDUP.*` on several
//! independent Redis servers, that never mistake an outage for a duplicate.
//!
//! The typical user is a webhook handler. Senders deliver the same event more than once; the
//! handler must process each event once, and must not drop an event because Redis had a bad
//! moment. This crate claims the event id on every node at once, counts a majority, and tells
//! apart the four things that can be true about an id from "the nodes could not say".
//!
//! ```no_run
//! use std::time::Duration;
//! use dedup_client::{Claim, Dedup, Error};
//!
//! # async fn handle(body: &[u8]) -> Result<u16, Error> {
//! let dedup = Dedup::builder()
//!     .nodes(["redis://127.0.0.1:7001", "redis://127.0.0.1:7002", "redis://127.0.0.1:7003"])
//!     .lease(Duration::from_secs(30))            // default 30 s
//!     .retention(Duration::from_secs(96 * 3600)) // how long DONE is kept; default 96 h
//!     .connect()
//!     .await?;
//!
//! let status = match dedup.claim("webhook:evt_123").await {
//!     Ok(Claim::Acquired(lease)) => {
//!         // ... process the event ...
//!         lease.complete(Some(b"record 42")).await?;
//!         200
//!     }
//!     Ok(Claim::Completed { result: _ }) => 200, // already processed: acknowledge, replay
//!     Ok(Claim::InProgress { .. }) => 409,       // being processed now: the sender retries
//!     Ok(Claim::Mismatch) => 422,                // same id, different payload
//!     Err(e) if e.is_retryable() => 503,         // Redis could not decide: the sender retries
//!     Err(e) => return Err(e),
//! };
//! # Ok(status) }
//! ```
//!
//! The server side is the module's commands (`DEDUP.CLAIM`, `EXTEND`, `RELEASE`, `COMPLETE`,
//! `FENCE`), each atomic on one server. This crate adds the quorum on top.
//!
//! # Outcomes, and what to answer a webhook sender
//!
//! | outcome | what the nodes said | answer |
//! |---|---|---|
//! | [`Claim::Acquired`] | a quorum gave this caller the claim | process, [`complete`](Lease::complete), `200` |
//! | [`Claim::Completed`] | at least one node holds the id's completion marker | `200`; do not process again (the stored result is there to replay) |
//! | [`Claim::InProgress`] | a quorum says another owner holds the claim | `409` (or `503`): the sender retries later |
//! | [`Claim::Mismatch`] | a node holds the id with a different payload fingerprint | `422`: the id was reused for other content |
//! | [`Error::Unavailable`] | failed nodes (errors, timeouts, bad replies) left no quorum | `503`: the sender retries. **Never a duplicate verdict** |
//! | [`Error::Contended`] | every node answered, but racing claims split the votes every time | `503`: the sender retries |
//!
//! The last two rows are the point of this crate. A Redlock library answers "not acquired" both
//! when another worker holds the lock and when the servers are down, so during an outage every
//! delivery looks like a duplicate and is thrown away. Here, `InProgress` needs a quorum of nodes
//! that actually answered `HELD`, and `Completed` needs a node that actually answered `DONE`.
//! When nodes fail, the answer is an error that makes the sender retry, and no event is lost.
//!
//! # The rules
//!
//! With `n` nodes the quorum is `q = n / 2 + 1`. A claim sends `DEDUP.CLAIM` to every node at
//! once, each request with its own timeout (the [node timeout](Builder::node_timeout), 50 ms by
//! default), and reads the replies as they come:
//!
//! - any `DONE` gives `Completed`, at once, with the stored result (this caller's partial claims
//!   are released first);
//! - otherwise any `MISMATCH` gives `Mismatch` (partial claims released);
//! - `CLAIMED` on at least `q` nodes, with validity left, gives `Acquired`. The validity is
//!   `lease - elapsed - (lease × 1 % + 2 ms)`, counted from when the requests went out, so it
//!   holds even if the nodes' clocks run up to 1 % fast;
//! - `HELD` on at least `q` nodes gives `InProgress`, and nothing else does;
//! - anything else releases the partial claims and retries after a random pause (3 retries,
//!   0–200 ms, by default). When retries run out: `Unavailable` if failed nodes stood in the way
//!   of a quorum (it lists each failing node and its error), `Contended` otherwise.
//!
//! Because a `DONE` from any node outranks everything, the other verdicts wait until every node
//! has answered or timed out: one dead node costs a claim at most one node timeout, never more.
//! A node whose reply is not a well-formed `DEDUP.*` reply (an `OOM` or `LOADING` error, a
//! `READONLY` replica, an unknown command because the module is not loaded, a dropped
//! connection, a timeout) counts as failed, never as a vote.
//!
//! [`extend`](Lease::extend), [`complete`](Lease::complete) and [`release`](Lease::release) go to
//! every node. Extend succeeds on `q` acknowledgements within the remaining validity. Complete
//! succeeds when it reaches `q` nodes; when it reaches fewer but at least one it says so
//! ([`Completion::is_durable`] is false); when it reaches none it fails. Release is best effort
//! and reports how many nodes it reached.
//!
//! # Guarantees
//!
//! - **An outage is never a duplicate.** `InProgress` only with `q` `HELD` replies; `Completed`
//!   only with a `DONE` reply. Failures produce [`Error::Unavailable`].
//! - **Mutual exclusion while leases hold.** Two callers cannot both be `Acquired` for the same id
//!   with overlapping validity: each needed `q` nodes, any two quorums share a node, and a node
//!   holds one claim per id.
//! - **Done stays done** for the retention on every node that recorded it. After a durable
//!   completion (a quorum), every later claim that hears from a quorum meets at least one of
//!   those nodes.
//! - **Owners are secrets.** Each claim has its own owner value, 20 bytes from the OS random
//!   number generator; only its lease can extend, release or complete the claim. It is never
//!   logged or shown by `Debug`.
//!
//! # Failure modes
//!
//! - **A minority of nodes down, slow or paused**: claims work; each costs at most one node
//!   timeout more while a node does not answer. A node that is down when the client starts is not
//!   an error: its connection is made when it comes back.
//! - **A majority down**: [`Error::Unavailable`] after at most `(retries + 1) × node timeout +
//!   retries × retry delay` (plus the release of partial claims on the nodes that did answer,
//!   which answer fast); about 0.8 s with the defaults, less when the nodes refuse connections.
//!   Never `InProgress` or `Completed`, unless a node that does answer holds `DONE`.
//! - **The holder dies**: its id is `InProgress` for up to one lease, then free again. A shorter
//!   lease frees it sooner but needs [`Lease::keep_alive`] for long work.
//! - **The holder stalls** (a long GC-like pause, a frozen VM) past its validity: another worker
//!   may acquire the id while the first still believes it holds it. No lock service can prevent
//!   this; [`Lease::lost`] tells the holder as soon as its own process can notice, and fencing
//!   tokens let the protected resource refuse the stale writer.
//! - **A node restarts without persistence**: it forgets its claims and markers. With a minority
//!   of such nodes, quorums still hold. With more at once, an id can be processed again: run the
//!   nodes with AOF (`appendfsync everysec` or `always`) or delay their restart by one lease.
//! - **A completion that reached fewer than `q` nodes** ([`Completion::is_durable`] is false):
//!   later claims see `DONE` only while one of those nodes answers; if they all fail at once, the
//!   id can be processed again after the old lease runs out.
//! - **Retention ends**: the marker expires; a delivery after that is processed again. Keep the
//!   [retention](Builder::retention) longer than the senders' retry window.
//!
//! # Fencing
//!
//! With [`Builder::fencing`] on, every `Acquired` lease carries a token: after the quorum,
//! the client takes `T`, the largest of the tokens the nodes issued, and sends
//! `DEDUP.FENCE key T owner` to every node, which raises that node's token counter to at least
//! `T`. A quorum must acknowledge within the validity, or the claim is released and the call
//! fails with [`Error::LeaseLost`]. Then [`Lease::token`] is `Some(T)`.
//!
//! **What it promises:** if claim B starts after fenced claim A has returned, then `T_B > T_A`,
//! whatever the clocks say, for any two ids and any two clients of the same nodes. (A's fence
//! reached a quorum; B's claim needed a quorum; they share a node whose counter was at least `T_A`
//! before B's claim arrived, so B got a larger token there, and `T_B` is at least that.) Give the
//! token to the resource you protect and have it refuse any write whose token is smaller than
//! the largest it has accepted: a stalled former holder is then refused.
//!
//! **What it does not promise:** it does not stop a stale holder by itself: the resource must
//! check the token. Tokens are not consecutive and not per id. Two claims that overlap in time
//! may get tokens in either order (only one of them can be `Acquired` at a time for the same id).
//! The promise assumes the shared node kept its counter: a node restarted without persistence
//! starts over from the tokens it sees again. Without fencing, [`Lease::token`] is `None`: the
//! client never hands out a number that looks like a fencing token but is not one.
//!
//! # Connections and timeouts
//!
//! Each node has one multiplexed connection ([`redis::aio::ConnectionManager`]) shared by all
//! concurrent calls and clones of the client, re-made in the background after it drops.
//! Connections are lazy, so [`Builder::connect`] succeeds with nodes down. Every request has the
//! node timeout, which bounds any wait for a connection too; each connection attempt is bounded
//! by the [connect timeout](Builder::connect_timeout).
//!
//! # Running a job at most once
//!
//! [`Dedup::once`] wraps the whole pattern: claim, keep the lease alive, run the job, store its
//! output (JSON, via serde) as the completion result, release on error, and hand the stored
//! output to every duplicate.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let servers: Vec<_> = (0..3).map(|_| testkit::RedisServer::start()).collect();
//! # let urls: Vec<String> = servers.iter().map(|s| s.url()).collect();
//! use dedup_client::{Dedup, Once};
//!
//! let dedup = Dedup::builder().nodes(urls).connect().await?;
//! let process = |_lease| async { Ok::<_, std::io::Error>(vec![String::from("record 42")]) };
//!
//! let first = dedup.once("webhook:evt_123", process).await?;
//! assert!(matches!(first, Once::Ran { .. }));
//! let duplicate = dedup.once("webhook:evt_123", process).await?;
//! assert!(matches!(duplicate, Once::Replayed(ref output) if output == &["record 42"]));
//! # Ok(()) }
//! ```
//!
//! # Evidence for each verdict
//!
//! [`Dedup::claim_with_report`] gives the same outcome as [`Dedup::claim_with`] plus a
//! [`ClaimReport`]: every node's reply in every round ([`NodeReply`]), how the rules read each
//! round ([`RoundVerdict`]) and, in fenced mode, every node's answer to the fence
//! ([`FenceRound`]). A checker can then confirm each verdict from the raw replies instead of
//! trusting the client; the fault-injection suite in `chaos/` does exactly that. Reports hold no
//! owner and no stored result.
//!
//! # Logging
//!
//! Every verdict is a [`tracing`] event with the per-node outcomes (`debug` for decisions,
//! `warn` when a claim gives up, a lease is lost, or a completion is not durable). Keys (ids)
//! and node addresses are logged; owners and stored results never are.
//!
//! # Without an async runtime
//!
//! [`blocking::Dedup`] offers the same API with blocking calls.

#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms, unreachable_pub)]

pub mod blocking;
pub mod builder;
mod claim;
mod cluster;
mod dedup;
mod error;
mod lease;
mod node;
mod once;
mod options;
mod owner;
mod quorum;
mod report;

pub use builder::Builder;
pub use claim::Claim;
pub use dedup::Dedup;
pub use error::{ConfigError, Error, LossReason, NodeError, NodeFailure};
pub use lease::{Completion, Lease, LeaseWatch, Released};
pub use once::{Once, OnceError};
pub use report::{ClaimReport, ClaimRound, FenceReply, FenceRound, NodeReply, RoundVerdict};
pub use options::{
    ClaimOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_LEASE, DEFAULT_NODE_TIMEOUT, DEFAULT_RETENTION,
    DEFAULT_RETRIES, DEFAULT_RETRY_DELAY,
};

/// The Redis client library this crate is built on, re-exported so that its error type in
/// [`NodeError::Redis`] can be inspected without a version mismatch.
pub use redis;
