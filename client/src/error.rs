//! Everything that can go wrong, as values.
//!
//! The central rule of the crate shows in these types: a node's failure is an [`Error`], never an
//! outcome. "Someone else has this id" ([`crate::Claim::InProgress`]) and "this id is done"
//! ([`crate::Claim::Completed`]) are only ever reported when a quorum of nodes (or, for done, at
//! least one node) actually said so. When nodes fail, the answer is [`Error::Unavailable`], and
//! the caller should make the sender retry.

use std::fmt;
use std::time::Duration;

/// The error type of every fallible operation in this crate.
///
/// What to answer a webhook sender:
///
/// | variant | meaning | answer |
/// |---|---|---|
/// | [`Unavailable`](Error::Unavailable) | too many nodes failed to decide anything | `503`, so the sender retries |
/// | [`Contended`](Error::Contended) | racing claims split the votes on every attempt | `503` or `409`, so the sender retries |
/// | [`LeaseLost`](Error::LeaseLost) | a lease can no longer be trusted | stop the work; `503` |
/// | [`Config`](Error::Config) | a setting or argument that can never work | fix the code |
///
/// # Examples
///
/// ```no_run
/// # async fn handler(dedup: dedup_client::Dedup) -> u16 {
/// use dedup_client::{Claim, Error};
///
/// match dedup.claim("webhook:evt_123").await {
///     Ok(Claim::Acquired(lease)) => { /* process, then complete */ 200 }
///     Ok(Claim::Completed { .. }) => 200,
///     Ok(Claim::InProgress { .. }) => 409,
///     Ok(Claim::Mismatch) => 422,
///     Err(Error::Unavailable { failures, .. }) => {
///         for failure in &failures {
///             eprintln!("{}: {}", failure.node(), failure.error());
///         }
///         503
///     }
///     Err(_) => 503,
/// }
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Node failures (errors, timeouts, malformed replies) left fewer than a quorum of usable
    /// answers on the last attempt, so nothing could be decided. This is never a duplicate
    /// verdict: the id may be free, held or done. Make the sender retry.
    #[error("{} of {nodes} nodes failed and {quorum} answers are needed: {}", failures.len(), Failures(failures))]
    Unavailable {
        /// Each failing node and its error, in node order.
        failures: Vec<NodeFailure>,
        /// How many nodes the client has.
        nodes: usize,
        /// How many must agree.
        quorum: usize,
    },

    /// Every node answered, but on every attempt the votes split between racing claimants so
    /// that no quorum formed (or a quorum formed too late to leave any validity). Nobody is known
    /// to hold or to have finished the id. Make the sender retry.
    #[error("no quorum after {attempts} attempts: claims raced and split the votes")]
    Contended {
        /// How many rounds were tried.
        attempts: u32,
    },

    /// A lease can no longer be trusted: it could not be confirmed on a quorum in time, a quorum
    /// of nodes no longer holds it, or (in fenced mode) its fencing token could not be set. Stop
    /// the work it protects.
    #[error("lease on {key:?} lost: {reason}")]
    LeaseLost {
        /// The id the lease was for.
        key: String,
        /// Why.
        reason: LossReason,
    },

    /// A setting, option or argument that can never work.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// [`crate::Dedup::once`] could not serialize the job's output.
    #[error("could not serialize the output to store it: {0}")]
    Encode(#[source] serde_json::Error),

    /// [`crate::Dedup::once`] found a stored result that is not the JSON of the expected type
    /// (it was stored by other code, or by an older version of the type).
    #[error("the stored result does not decode as the expected type: {0}")]
    Decode(#[source] serde_json::Error),

    /// The operating system's random number generator failed, so no owner could be drawn.
    #[error("the operating system's random number generator failed: {0}")]
    Entropy(String),

    /// The runtime behind [`crate::blocking::Dedup`] could not be started.
    #[error("could not start the blocking client's runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl Error {
    /// Whether the same call may succeed later without any change by the caller: true for
    /// [`Unavailable`](Error::Unavailable) and [`Contended`](Error::Contended).
    ///
    /// ```
    /// let err = dedup_client::Error::Contended { attempts: 4 };
    /// assert!(err.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::Contended { .. })
    }
}

/// Writes failures as `node: error; node: error`.
struct Failures<'a>(&'a [NodeFailure]);

impl fmt::Display for Failures<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, failure) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}

/// One node's failure: which node, and what went wrong.
///
/// ```
/// # use std::time::Duration;
/// # use dedup_client::{NodeError, NodeFailure};
/// # let failure = NodeFailure::new("127.0.0.1:7001", NodeError::Timeout(Duration::from_millis(50)));
/// assert_eq!(failure.to_string(), "127.0.0.1:7001: no reply within 50ms");
/// ```
#[derive(Clone, Debug)]
pub struct NodeFailure {
    node: String,
    error: NodeError,
}

impl NodeFailure {
    /// A failure of `node` (its address, as shown in logs).
    pub fn new(node: impl Into<String>, error: NodeError) -> NodeFailure {
        NodeFailure { node: node.into(), error }
    }

    /// The node's address, `host:port` (or the socket path), never with credentials.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// What went wrong there.
    pub fn error(&self) -> &NodeError {
        &self.error
    }
}

impl fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.node, self.error)
    }
}

/// What went wrong on one node. Whatever it is, it counts as that node's failure, never as a vote.
///
/// ```
/// use dedup_client::{NodeError, NodeFailure};
///
/// /// Out-of-memory nodes need an operator, not a retry.
/// fn needs_attention(failure: &NodeFailure) -> bool {
///     matches!(failure.error(), NodeError::Redis(e) if e.code() == Some("OOM"))
/// }
/// # let _ = needs_attention;
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// No reply within the node timeout (a paused, overloaded or unreachable server, or a
    /// connection still being set up).
    #[error("no reply within {0:?}")]
    Timeout(Duration),

    /// The connection failed, or the server replied with an error: `OOM` (out of memory),
    /// `LOADING`, `READONLY` (a replica), `NOSCRIPT`/unknown command (module not loaded), ...
    #[error(transparent)]
    Redis(#[from] redis::RedisError),

    /// The reply was not a well-formed reply of the `DEDUP.*` command that was sent (another
    /// module version, a proxy, or a server that is not what the client thinks it is).
    #[error("not a well-formed {command} reply: {reply}")]
    Malformed {
        /// The command sent, e.g. `DEDUP.CLAIM`.
        command: &'static str,
        /// The reply, shown briefly.
        reply: String,
    },
}

/// Why a lease stopped being trustworthy.
///
/// ```no_run
/// # async fn run(lease: dedup_client::Lease) {
/// use dedup_client::LossReason;
///
/// match lease.lost().await {
///     LossReason::Unconfirmed { failures } => eprintln!("nodes failing: {failures:?}"),
///     LossReason::Rejected => eprintln!("the claim is gone from a quorum"),
///     other => eprintln!("lease over: {other}"),
/// }
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LossReason {
    /// More than `n - q` nodes answered that they do not hold the claim for this owner any more:
    /// it expired there, was released, or another owner claimed it since.
    Rejected,
    /// The lease could not be confirmed on a quorum before its safety margin ran out, because
    /// nodes failed. The failures of the last attempt are listed.
    Unconfirmed {
        /// The failing nodes of the last attempt, as `node: error` text.
        failures: Vec<String>,
    },
    /// The validity ran out without an extension.
    Expired,
    /// Fenced mode: the fencing token could not be set on a quorum, so the claim was released.
    NotFenced,
    /// The holder released, completed or dropped the lease.
    Ended,
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LossReason::Rejected => f.write_str("a quorum of nodes no longer holds the claim for this owner"),
            LossReason::Unconfirmed { failures } => {
                write!(f, "could not be confirmed on a quorum in time ({})", failures.join("; "))
            }
            LossReason::Expired => f.write_str("its validity ran out"),
            LossReason::NotFenced => f.write_str("the fencing token could not be set on a quorum"),
            LossReason::Ended => f.write_str("the holder released, completed or dropped it"),
        }
    }
}

/// A setting, option or argument that can never work. Returned as [`Error::Config`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use dedup_client::{ConfigError, Dedup, Error};
///
/// let err = Dedup::builder().connect().await.unwrap_err();
/// assert!(matches!(err, Error::Config(ConfigError::NoNodes)));
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// [`crate::Builder::nodes`] was empty.
    #[error("no nodes: give at least one Redis URL (three or five independent servers for Redlock)")]
    NoNodes,

    /// A node URL did not parse. The URL itself is not repeated: it may hold a password.
    #[error("node #{index} has an invalid URL: {reason}")]
    InvalidUrl {
        /// Its position in the node list, from 0.
        index: usize,
        /// What the parser said.
        reason: String,
    },

    /// The same server appears twice; a quorum over it would count one server twice.
    #[error("node {node} is listed more than once")]
    DuplicateNode {
        /// Its address.
        node: String,
    },

    /// A duration is out of range.
    #[error("{name} must be {expected}, not {value:?}")]
    InvalidDuration {
        /// Which setting.
        name: &'static str,
        /// What it may be.
        expected: &'static str,
        /// What it was.
        value: Duration,
    },

    /// A fingerprint must be 1 to 64 bytes (hash the payload, e.g. with SHA-256).
    #[error("a fingerprint must be 1 to 64 bytes, not {len}")]
    InvalidFingerprint {
        /// Its length.
        len: usize,
    },

    /// The id was empty.
    #[error("the id must not be empty")]
    EmptyId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_names_each_failing_node_and_its_error() {
        let err = Error::Unavailable {
            failures: vec![
                NodeFailure::new("10.0.0.1:6379", NodeError::Timeout(Duration::from_millis(50))),
                NodeFailure::new(
                    "10.0.0.2:6379",
                    NodeError::Malformed { command: "DEDUP.CLAIM", reply: "int(1)".into() },
                ),
            ],
            nodes: 3,
            quorum: 2,
        };
        assert_eq!(
            err.to_string(),
            "2 of 3 nodes failed and 2 answers are needed: 10.0.0.1:6379: no reply within 50ms; \
             10.0.0.2:6379: not a well-formed DEDUP.CLAIM reply: int(1)"
        );
        assert!(err.is_retryable());
    }

    #[test]
    fn config_errors_never_echo_a_url() {
        let err = Error::from(ConfigError::InvalidUrl { index: 1, reason: "bad".into() });
        assert_eq!(err.to_string(), "node #1 has an invalid URL: bad");
        assert!(!err.is_retryable());
    }

    #[test]
    fn loss_reasons_read_as_sentences() {
        let err = Error::LeaseLost {
            key: "evt".into(),
            reason: LossReason::Unconfirmed { failures: vec!["a:1: no reply within 50ms".into()] },
        };
        assert_eq!(
            err.to_string(),
            "lease on \"evt\" lost: could not be confirmed on a quorum in time (a:1: no reply within 50ms)"
        );
    }

    #[test]
    fn errors_cross_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
        assert_send_sync::<NodeFailure>();
    }
}
