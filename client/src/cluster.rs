//! The set of independent nodes, and sending one command to all of them at once.

use std::fmt;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use redis::{Cmd, Value};

use crate::error::{ConfigError, Error, NodeError, NodeFailure};
use crate::node::{Node, NodeSpec};
use crate::quorum;

/// One slot per node: `None` while it has not answered (or was not asked).
pub(crate) type Slots<T> = Vec<Option<Result<T, NodeError>>>;

/// The nodes of one client, shared by the client and all its leases.
#[derive(Debug)]
pub(crate) struct Cluster {
    nodes: Vec<Node>,
    node_timeout: Duration,
}

impl Cluster {
    /// Sets up a lazy connection per URL, then tries to open them all at once for at most
    /// `connect_timeout`. Nodes that cannot be reached are logged and left to reconnect on use:
    /// only URLs that can never work are errors.
    pub(crate) async fn connect(
        specs: &[NodeSpec],
        node_timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Cluster, Error> {
        if specs.is_empty() {
            return Err(ConfigError::NoNodes.into());
        }
        let mut nodes: Vec<Node> = Vec::with_capacity(specs.len());
        for (index, spec) in specs.iter().enumerate() {
            let node = Node::open(index, spec, connect_timeout)?;
            if nodes.iter().any(|n| n.name() == node.name()) {
                return Err(ConfigError::DuplicateNode { node: node.name().to_string() }.into());
            }
            nodes.push(node);
        }
        let cluster = Cluster { nodes, node_timeout };
        let warm = cluster.nodes.iter().map(|node| node.ping(connect_timeout));
        let results = futures_util::future::join_all(warm).await;
        let mut up = 0;
        for (node, result) in cluster.nodes.iter().zip(results) {
            match result {
                Ok(()) => up += 1,
                Err(error) => tracing::warn!(node = node.name(), %error, "node not reachable yet; it will be retried on use"),
            }
        }
        tracing::info!(nodes = cluster.len(), reachable = up, quorum = cluster.quorum(), "dedup client ready");
        Ok(cluster)
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn quorum(&self) -> usize {
        quorum::quorum(self.nodes.len())
    }

    pub(crate) fn node_timeout(&self) -> Duration {
        self.node_timeout
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(Node::name)
    }

    /// Sends `cmd` to the nodes whose index is in `targets`, all at once, each with `timeout`,
    /// and parses each reply with `parse`. After every reply, `enough` sees all slots and may end
    /// the wait; requests still out are then dropped (a request already written still runs on its
    /// node, before anything sent later on the same connection).
    pub(crate) async fn broadcast<T>(
        &self,
        targets: impl IntoIterator<Item = usize>,
        cmd: &Cmd,
        timeout: Duration,
        parse: impl Fn(Value) -> Result<T, NodeError>,
        mut enough: impl FnMut(&[Option<Result<T, NodeError>>]) -> bool,
    ) -> Slots<T> {
        let mut slots: Slots<T> = (0..self.nodes.len()).map(|_| None).collect();
        let mut replies: FuturesUnordered<_> = targets
            .into_iter()
            .map(|i| {
                let node = &self.nodes[i];
                async move { (i, node.call(cmd, timeout).await) }
            })
            .collect();
        while let Some((i, reply)) = replies.next().await {
            slots[i] = Some(reply.and_then(&parse));
            if enough(&slots) {
                break;
            }
        }
        slots
    }

    /// [`Cluster::broadcast`] to every node.
    pub(crate) async fn broadcast_all<T>(
        &self,
        cmd: &Cmd,
        timeout: Duration,
        parse: impl Fn(Value) -> Result<T, NodeError>,
        enough: impl FnMut(&[Option<Result<T, NodeError>>]) -> bool,
    ) -> Slots<T> {
        self.broadcast(0..self.nodes.len(), cmd, timeout, parse, enough).await
    }

    /// The failed slots, named.
    pub(crate) fn failures<T>(&self, slots: &[Option<Result<T, NodeError>>]) -> Vec<NodeFailure> {
        self.nodes
            .iter()
            .zip(slots)
            .filter_map(|(node, slot)| match slot {
                Some(Err(e)) => Some(NodeFailure::new(node.name(), e.clone())),
                _ => None,
            })
            .collect()
    }

    /// [`Error::Unavailable`] for the failed slots.
    pub(crate) fn unavailable<T>(&self, slots: &[Option<Result<T, NodeError>>]) -> Error {
        Error::Unavailable { failures: self.failures(slots), nodes: self.len(), quorum: self.quorum() }
    }

    /// Per-node outcomes for logs: `host:port=WHAT host:port=WHAT`.
    pub(crate) fn outcomes<'a, T: fmt::Display>(&'a self, slots: &'a [Option<Result<T, NodeError>>]) -> Outcomes<'a, T> {
        Outcomes { cluster: self, slots }
    }
}

/// See [`Cluster::outcomes`].
pub(crate) struct Outcomes<'a, T> {
    cluster: &'a Cluster,
    slots: &'a [Option<Result<T, NodeError>>],
}

impl<T: fmt::Display> fmt::Display for Outcomes<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (node, slot)) in self.cluster.nodes.iter().zip(self.slots).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match slot {
                None => write!(f, "{}=-", node.name())?,
                Some(Ok(reply)) => write!(f, "{}={reply}", node.name())?,
                Some(Err(e)) => write!(f, "{}=ERROR({e})", node.name())?,
            }
        }
        Ok(())
    }
}
