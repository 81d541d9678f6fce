//! One Redis server: its connection, the `DEDUP.*` commands sent to it, and strict reply parsing.
//!
//! Each node has one [`ConnectionManager`]: a single multiplexed connection that every concurrent
//! caller shares, re-established in the background after it drops. It is created lazily, so a
//! node that is down when the client starts is just a failing node, not a startup error.
//!
//! With the `cluster` feature a node may also be a whole Redis Cluster, reached through its seed
//! addresses: one cluster connection routes each command by key to the owning master, so one
//! quorum vote can come from a sharded id space. Its connection is also opened on first use.
//!
//! Parsing is strict on purpose. Anything that is not exactly the reply the module documents
//! (an error reply such as `OOM` or `LOADING`, a `READONLY` replica, an unknown command, a reply
//! of the wrong shape, a `CLAIMED` for a different lease length) becomes that node's
//! [`NodeError`], which the quorum rules count as a failure and never as a vote.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Value};

use crate::error::{ConfigError, NodeError};
use crate::owner::Owner;
use crate::quorum::Vote;

/// Longest reply text kept in a [`NodeError::Malformed`].
const MAX_REPLY_TEXT: usize = 120;

/// Where a node is: one server's URL, or a Redis Cluster's seed URLs.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum NodeSpec {
    Server(String),
    #[cfg(feature = "cluster")]
    Cluster(Vec<String>),
}

/// One node and its shared connection.
pub(crate) struct Node {
    name: Arc<str>,
    link: Link,
}

enum Link {
    Server(ConnectionManager),
    #[cfg(feature = "cluster")]
    // Boxed: a cluster client is much larger than a connection manager, and rare.
    Cluster(Box<cluster_link::ClusterLink>),
}

#[cfg(feature = "cluster")]
mod cluster_link {
    use redis::cluster::ClusterClient;
    use redis::cluster_async::ClusterConnection;
    use tokio::sync::OnceCell;

    /// A Redis Cluster as one node: the client, and its connection once opened.
    pub(super) struct ClusterLink {
        pub(super) client: ClusterClient,
        pub(super) connection: OnceCell<ClusterConnection>,
    }

    impl ClusterLink {
        /// The shared cluster connection, opening it on first use; a failed attempt is retried
        /// by the next call.
        pub(super) async fn connection(&self) -> redis::RedisResult<ClusterConnection> {
            self.connection.get_or_try_init(|| self.client.get_async_connection()).await.cloned()
        }
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Node {
    /// Parses `url` and sets up its connection without connecting (the first request does, or
    /// [`Node::ping`]). Must run inside a Tokio runtime. `index` is only for error messages.
    pub(crate) fn open(index: usize, spec: &NodeSpec, connect_timeout: Duration) -> Result<Node, ConfigError> {
        let invalid = |e: redis::RedisError| ConfigError::InvalidUrl { index, reason: e.to_string() };
        let url = match spec {
            NodeSpec::Server(url) => url.as_str(),
            #[cfg(feature = "cluster")]
            NodeSpec::Cluster(seeds) => return Node::open_cluster(index, seeds, connect_timeout),
        };
        let client = redis::Client::open(url).map_err(invalid)?;
        let name: Arc<str> = client.get_connection_info().addr().to_string().into();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            // Each request carries its own, shorter timeout (see `call`).
            .set_response_timeout(None)
            // One connection attempt per failure seen: while a node is down, each request fails
            // at once and starts the next attempt in the background, instead of queueing behind a
            // long backoff that would hide the node's return.
            .set_number_of_retries(0);
        let connection = ConnectionManager::new_lazy_with_config(client, config).map_err(invalid)?;
        Ok(Node { name, link: Link::Server(connection) })
    }

    #[cfg(feature = "cluster")]
    fn open_cluster(index: usize, seeds: &[String], connect_timeout: Duration) -> Result<Node, ConfigError> {
        use redis::IntoConnectionInfo;

        let invalid = |e: redis::RedisError| ConfigError::InvalidUrl { index, reason: e.to_string() };
        if seeds.is_empty() {
            return Err(ConfigError::InvalidUrl { index, reason: "a cluster node needs at least one seed address".into() });
        }
        let mut addresses = Vec::with_capacity(seeds.len());
        for seed in seeds {
            addresses.push(seed.as_str().into_connection_info().map_err(invalid)?.addr().to_string());
        }
        let client = redis::cluster::ClusterClient::builder(seeds.iter().map(String::as_str))
            .connection_timeout(connect_timeout)
            // Each request carries its own timeout, as for a single server; a failed request is
            // that node's error for this round, not something to retry behind the caller's back.
            .retries(0)
            .build()
            .map_err(invalid)?;
        let link = cluster_link::ClusterLink { client, connection: tokio::sync::OnceCell::new() };
        Ok(Node { name: format!("cluster({})", addresses.join(",")).into(), link: Link::Cluster(Box::new(link)) })
    }

    /// The node's address, `host:port` or a socket path: never with credentials.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Sends `cmd` and waits at most `timeout` for the reply, including any wait for the
    /// connection. Error replies come back as [`NodeError::Redis`].
    pub(crate) async fn call(&self, cmd: &Cmd, timeout: Duration) -> Result<Value, NodeError> {
        let request = async {
            match &self.link {
                Link::Server(manager) => {
                    // A clone shares the one multiplexed connection; it is only a handle.
                    let mut connection = manager.clone();
                    cmd.query_async::<Value>(&mut connection).await
                }
                #[cfg(feature = "cluster")]
                Link::Cluster(link) => {
                    // Routed by the command's key to the master that owns its slot.
                    let mut connection = link.connection().await?;
                    cmd.query_async::<Value>(&mut connection).await
                }
            }
        };
        match tokio::time::timeout(timeout, request).await {
            Ok(reply) => Ok(reply?),
            Err(_) => Err(NodeError::Timeout(timeout)),
        }
    }

    /// `PING`, to open the connection ahead of the first claim.
    pub(crate) async fn ping(&self, timeout: Duration) -> Result<(), NodeError> {
        match self.call(&redis::cmd("PING"), timeout).await? {
            Value::SimpleString(s) if s == "PONG" => Ok(()),
            other => Err(malformed("PING", &other)),
        }
    }
}

/// `DEDUP.CLAIM key ttl-ms owner [FP fingerprint]`
pub(crate) fn claim_cmd(key: &str, ttl: Duration, owner: &Owner, fingerprint: Option<&[u8]>) -> Cmd {
    let mut cmd = redis::cmd("DEDUP.CLAIM");
    cmd.arg(key).arg(millis(ttl)).arg(owner.as_str());
    if let Some(fp) = fingerprint {
        cmd.arg("FP").arg(fp);
    }
    cmd
}

/// `DEDUP.EXTEND key ttl-ms owner`
pub(crate) fn extend_cmd(key: &str, ttl: Duration, owner: &Owner) -> Cmd {
    let mut cmd = redis::cmd("DEDUP.EXTEND");
    cmd.arg(key).arg(millis(ttl)).arg(owner.as_str());
    cmd
}

/// `DEDUP.RELEASE key owner`
pub(crate) fn release_cmd(key: &str, owner: &Owner) -> Cmd {
    let mut cmd = redis::cmd("DEDUP.RELEASE");
    cmd.arg(key).arg(owner.as_str());
    cmd
}

/// `DEDUP.COMPLETE key retention-ms owner [RESULT value]`
pub(crate) fn complete_cmd(key: &str, retention: Duration, owner: &Owner, result: Option<&[u8]>) -> Cmd {
    let mut cmd = redis::cmd("DEDUP.COMPLETE");
    cmd.arg(key).arg(millis(retention)).arg(owner.as_str());
    if let Some(result) = result {
        cmd.arg("RESULT").arg(result);
    }
    cmd
}

/// `DEDUP.FENCE key token owner`
pub(crate) fn fence_cmd(key: &str, token: u64, owner: &Owner) -> Cmd {
    let mut cmd = redis::cmd("DEDUP.FENCE");
    cmd.arg(key).arg(token).arg(owner.as_str());
    cmd
}

/// Durations are checked to be whole milliseconds that fit a Redis integer (see `options`).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Reads a `DEDUP.CLAIM` reply sent with lease `ttl`.
///
/// `["CLAIMED", token, ttl-ms]`, `["HELD", pttl]`, `["DONE", pttl, result-or-nil]` and
/// `["MISMATCH", pttl]` are votes; anything else is the node's error. A `CLAIMED` whose lease is
/// not the one requested is refused too: the validity computed from `ttl` would not hold there.
pub(crate) fn parse_claim(reply: Value, ttl: Duration) -> Result<Vote, NodeError> {
    const COMMAND: &str = "DEDUP.CLAIM";
    let bad = |reply: &Value| malformed(COMMAND, reply);
    let Value::Array(items) = &reply else { return Err(bad(&reply)) };
    let vote = match items.as_slice() {
        [Value::SimpleString(word), Value::Int(token), Value::Int(ttl_ms)] if word == "CLAIMED" => {
            let token = u64::try_from(*token).ok().filter(|t| *t > 0);
            match token {
                Some(token) if u64::try_from(*ttl_ms).ok() == Some(millis(ttl)) => Vote::Claimed { token },
                _ => return Err(bad(&reply)),
            }
        }
        [Value::SimpleString(word), Value::Int(pttl)] if word == "HELD" => Vote::Held { pttl: pttl_of(*pttl) },
        [Value::SimpleString(word), Value::Int(_), result] if word == "DONE" => match result {
            Value::BulkString(bytes) => Vote::Done { result: Some(bytes.clone()) },
            Value::Nil => Vote::Done { result: None },
            _ => return Err(bad(&reply)),
        },
        [Value::SimpleString(word), Value::Int(_)] if word == "MISMATCH" => Vote::Mismatch,
        _ => return Err(bad(&reply)),
    };
    Ok(vote)
}

/// A remaining lifetime in ms; the module never sends a negative one for a live entry, but a key
/// without expiry would show `-1`, which only shortens the retry hint.
fn pttl_of(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Reads the `1 | 0` reply of `EXTEND`, `RELEASE`, `COMPLETE` and `FENCE`.
pub(crate) fn parse_ack(reply: Value, command: &'static str) -> Result<bool, NodeError> {
    match reply {
        Value::Int(1) => Ok(true),
        Value::Int(0) => Ok(false),
        other => Err(malformed(command, &other)),
    }
}

fn malformed(command: &'static str, reply: &Value) -> NodeError {
    let mut text = format!("{reply:?}");
    if text.len() > MAX_REPLY_TEXT {
        let mut end = MAX_REPLY_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    NodeError::Malformed { command, reply: text }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_millis(30_000);

    fn word(w: &str) -> Value {
        Value::SimpleString(w.to_string())
    }
    fn array(items: Vec<Value>) -> Value {
        Value::Array(items)
    }

    fn args(cmd: &Cmd) -> Vec<String> {
        cmd.args_iter()
            .map(|arg| match arg {
                redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                _ => "<not a plain argument>".to_string(),
            })
            .collect()
    }

    #[test]
    fn commands_have_the_documented_arguments() {
        let owner = Owner::random().unwrap();
        let o = owner.as_str().to_string();
        assert_eq!(args(&claim_cmd("k", TTL, &owner, None)), ["DEDUP.CLAIM", "k", "30000", &o]);
        assert_eq!(
            args(&claim_cmd("k", TTL, &owner, Some(b"fp"))),
            ["DEDUP.CLAIM", "k", "30000", &o, "FP", "fp"]
        );
        assert_eq!(args(&extend_cmd("k", TTL, &owner)), ["DEDUP.EXTEND", "k", "30000", &o]);
        assert_eq!(args(&release_cmd("k", &owner)), ["DEDUP.RELEASE", "k", &o]);
        assert_eq!(
            args(&complete_cmd("k", Duration::from_secs(7), &owner, Some(b"r"))),
            ["DEDUP.COMPLETE", "k", "7000", &o, "RESULT", "r"]
        );
        assert_eq!(args(&complete_cmd("k", Duration::from_secs(7), &owner, None)), ["DEDUP.COMPLETE", "k", "7000", &o]);
        assert_eq!(args(&fence_cmd("k", 42, &owner)), ["DEDUP.FENCE", "k", "42", &o]);
    }

    #[test]
    fn well_formed_claim_replies_are_votes() {
        let table = [
            (array(vec![word("CLAIMED"), Value::Int(7), Value::Int(30_000)]), Vote::Claimed { token: 7 }),
            (array(vec![word("HELD"), Value::Int(1_234)]), Vote::Held { pttl: Duration::from_millis(1_234) }),
            (array(vec![word("HELD"), Value::Int(-1)]), Vote::Held { pttl: Duration::ZERO }),
            (
                array(vec![word("DONE"), Value::Int(5), Value::BulkString(b"record 42".to_vec())]),
                Vote::Done { result: Some(b"record 42".to_vec()) },
            ),
            (array(vec![word("DONE"), Value::Int(5), Value::Nil]), Vote::Done { result: None }),
            (array(vec![word("MISMATCH"), Value::Int(5)]), Vote::Mismatch),
        ];
        for (reply, vote) in table {
            assert_eq!(parse_claim(reply.clone(), TTL).unwrap(), vote, "{reply:?}");
        }
    }

    #[test]
    fn anything_else_is_the_nodes_error_never_a_vote() {
        let table = [
            Value::Nil,
            Value::Int(1),
            Value::Okay,
            word("CLAIMED"),
            Value::BulkString(b"HELD".to_vec()),
            array(vec![]),
            array(vec![word("held"), Value::Int(5)]),
            array(vec![Value::BulkString(b"HELD".to_vec()), Value::Int(5)]),
            array(vec![word("HELD")]),
            array(vec![word("HELD"), Value::Int(5), Value::Int(6)]),
            array(vec![word("HELD"), Value::BulkString(b"5".to_vec())]),
            array(vec![word("CLAIMED"), Value::Int(7)]),
            array(vec![word("CLAIMED"), Value::Int(0), Value::Int(30_000)]),
            array(vec![word("CLAIMED"), Value::Int(-3), Value::Int(30_000)]),
            array(vec![word("CLAIMED"), Value::Int(7), Value::Int(29_999)]),
            array(vec![word("DONE"), Value::Int(5)]),
            array(vec![word("DONE"), Value::Int(5), Value::Int(3)]),
            array(vec![word("MISMATCH")]),
            array(vec![word("FREE")]),
            Value::Array(vec![Value::Double(1.0)]),
        ];
        for reply in table {
            let err = parse_claim(reply.clone(), TTL).unwrap_err();
            assert!(matches!(err, NodeError::Malformed { command: "DEDUP.CLAIM", .. }), "{reply:?} gave {err:?}");
        }
    }

    #[test]
    fn acks_are_exactly_one_or_zero() {
        assert!(parse_ack(Value::Int(1), "DEDUP.EXTEND").unwrap());
        assert!(!parse_ack(Value::Int(0), "DEDUP.EXTEND").unwrap());
        for reply in [Value::Int(2), Value::Int(-1), Value::Boolean(true), Value::Okay, Value::Nil, word("1")] {
            assert!(matches!(parse_ack(reply, "DEDUP.FENCE"), Err(NodeError::Malformed { command: "DEDUP.FENCE", .. })));
        }
    }

    #[test]
    fn malformed_replies_are_shown_briefly() {
        let big = Value::BulkString(vec![b'x'; 10_000]);
        let NodeError::Malformed { reply, .. } = parse_ack(big, "DEDUP.RELEASE").unwrap_err() else {
            panic!("expected a malformed reply")
        };
        assert!(reply.chars().count() <= MAX_REPLY_TEXT + 1, "{} chars", reply.len());
        assert!(reply.ends_with('…'));
    }
}
