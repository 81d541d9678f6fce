//! Configuring and connecting a client.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use crate::dedup::Dedup;
use crate::error::Error;
use crate::node::NodeSpec;
use crate::options::Settings;

/// Marks a [`Builder`] that connects an async [`Dedup`].
#[derive(Debug)]
pub enum Async {}

/// Marks a [`Builder`] that connects a [`crate::blocking::Dedup`].
#[derive(Debug)]
pub enum Blocking {}

/// Settings for a client: the nodes, the lease, the retention, fencing, and the timing of
/// requests and retries.
///
/// Get one from [`Dedup::builder`] (async) or [`crate::blocking::Dedup::builder`]; the setters are
/// the same for both.
///
/// | setting | default |
/// |---|---|
/// | [`lease`](Builder::lease) | 30 s |
/// | [`retention`](Builder::retention) | 96 h |
/// | [`fencing`](Builder::fencing) | off |
/// | [`node_timeout`](Builder::node_timeout) | 50 ms |
/// | [`retries`](Builder::retries) | 3 (so 4 rounds in all) |
/// | [`retry_delay`](Builder::retry_delay) | random in 0..=200 ms |
/// | [`connect_timeout`](Builder::connect_timeout) | 1 s |
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), dedup_client::Error> {
/// let dedup = dedup_client::Dedup::builder()
///     .nodes(["redis://127.0.0.1:7001", "redis://127.0.0.1:7002", "redis://127.0.0.1:7003"])
///     .lease(Duration::from_secs(30))
///     .retention(Duration::from_secs(96 * 3600))
///     .fencing(true)
///     .connect()
///     .await?;
/// # drop(dedup); Ok(()) }
/// ```
#[must_use = "a builder does nothing until connected"]
pub struct Builder<M = Async> {
    nodes: Vec<NodeSpec>,
    settings: Settings,
    mode: PhantomData<fn() -> M>,
}

impl<M> fmt::Debug for Builder<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // URLs may carry passwords: show only how many there are.
        f.debug_struct("Builder").field("nodes", &self.nodes.len()).field("settings", &self.settings).finish()
    }
}

impl Builder<Async> {
    pub(crate) fn new() -> Builder<Async> {
        Builder { nodes: Vec::new(), settings: Settings::default(), mode: PhantomData }
    }

    /// Checks the settings and sets up one connection per node.
    ///
    /// Connections are made lazily and re-made on failure, so nodes that are down now are not an
    /// error: they count as failed nodes until they come back. This waits at most the
    /// [`connect_timeout`](Builder::connect_timeout) to open the connections that can be opened,
    /// so the first claims do not pay for it. It fails only on settings that can never work
    /// ([`Error::Config`]): no nodes, an invalid URL, the same server twice, an out-of-range
    /// duration.
    ///
    /// Must be called inside a Tokio runtime (with the time and I/O drivers enabled).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when a setting can never work.
    pub async fn connect(self) -> Result<Dedup, Error> {
        Dedup::connect(&self.nodes, self.settings).await
    }
}

impl Builder<Blocking> {
    pub(crate) fn new_blocking() -> Builder<Blocking> {
        Builder { nodes: Vec::new(), settings: Settings::default(), mode: PhantomData }
    }

    /// Starts the client's own runtime and connects, as [`Builder::<Async>::connect`] does.
    ///
    /// Must not be called from async code (it blocks).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when a setting can never work; [`Error::Runtime`] when the runtime
    /// cannot be started.
    pub fn connect(self) -> Result<crate::blocking::Dedup, Error> {
        crate::blocking::Dedup::connect(&self.nodes, self.settings)
    }
}

impl<M> Builder<M> {
    /// The nodes, as Redis URLs (`redis://[:password@]host:port[/db]`, `redis+unix:///path`),
    /// replacing any given before. Use independent servers (not replicas of each other); three or
    /// five is usual. Any reachable majority of them decides.
    ///
    /// ```
    /// let builder = dedup_client::Dedup::builder().nodes([
    ///     "redis://:s3cret@10.0.0.1:6379",
    ///     "redis://10.0.0.2:6379/0",
    ///     "redis+unix:///run/redis/dedup.sock",
    /// ]);
    /// # drop(builder);
    /// ```
    pub fn nodes<I, S>(mut self, urls: I) -> Builder<M>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.nodes = urls.into_iter().map(|url| NodeSpec::Server(url.into())).collect();
        self
    }

    /// Adds one node; see [`Builder::nodes`].
    pub fn node(mut self, url: impl Into<String>) -> Builder<M> {
        self.nodes.push(NodeSpec::Server(url.into()));
        self
    }

    /// Adds one node that is a whole Redis Cluster, given by some of its masters' addresses
    /// (seeds; the client discovers the rest). Each claim goes to the master that owns the id's
    /// slot, so a cluster node shards a large id space while voting as one node. Mix it with
    /// single servers or other clusters; the quorum counts nodes, not servers.
    ///
    /// Needs the `cluster` cargo feature. docs/DEPLOYMENT.md says when to use which layout.
    ///
    /// ```
    /// let builder = dedup_client::Dedup::builder()
    ///     .cluster_node(["redis://10.0.1.1:7000", "redis://10.0.1.2:7000"])
    ///     .cluster_node(["redis://10.0.2.1:7000", "redis://10.0.2.2:7000"])
    ///     .cluster_node(["redis://10.0.3.1:7000", "redis://10.0.3.2:7000"]);
    /// # drop(builder);
    /// ```
    #[cfg(feature = "cluster")]
    pub fn cluster_node<I, S>(mut self, seeds: I) -> Builder<M>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.nodes.push(NodeSpec::Cluster(seeds.into_iter().map(Into::into).collect()));
        self
    }

    /// How long a claim is held before it expires on its own if the holder disappears (default
    /// 30 s). Whole milliseconds; it must exceed the drift allowance (1 % + 2 ms). Make it longer
    /// than the work, or use [`crate::Lease::keep_alive`]. A crashed worker blocks its id for up
    /// to this long ([`crate::Claim::InProgress`] meanwhile).
    pub fn lease(mut self, lease: Duration) -> Builder<M> {
        self.settings.lease = lease;
        self
    }

    /// How long a completion marker is kept (default 96 h). Duplicates arriving later are not
    /// recognized, so make it longer than the senders' retry window. At most the module's
    /// `dedup.max-ttl-ms` (30 days by default).
    pub fn retention(mut self, retention: Duration) -> Builder<M> {
        self.settings.retention = retention;
        self
    }

    /// Fenced mode (default off): every acquired lease gets a fencing token that is larger than
    /// that of every fenced claim that returned before this claim started; see
    /// [`crate::Lease::token`]. It costs one more round trip per claim.
    pub fn fencing(mut self, enabled: bool) -> Builder<M> {
        self.settings.fencing = enabled;
        self
    }

    /// How long to wait for one node's reply (default 50 ms). A node that does not answer in time
    /// counts as failed for that request. Keep it well below the lease.
    pub fn node_timeout(mut self, timeout: Duration) -> Builder<M> {
        self.settings.node_timeout = timeout;
        self
    }

    /// How many more claim rounds to try after one that reaches no verdict (default 3).
    pub fn retries(mut self, retries: u32) -> Builder<M> {
        self.settings.retries = retries;
        self
    }

    /// The upper bound of the random pause before each retry (default 200 ms). The pause is
    /// uniform in `0..=delay`, so that racing claimants stop colliding.
    pub fn retry_delay(mut self, delay: Duration) -> Builder<M> {
        self.settings.retry_delay = delay;
        self
    }

    /// How long setting up a connection to a node may take (default 1 s), and how long
    /// [`connect`](Builder::connect) waits for the first connections.
    pub fn connect_timeout(mut self, timeout: Duration) -> Builder<M> {
        self.settings.connect_timeout = timeout;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ConfigError;

    #[test]
    fn setters_fill_the_settings() {
        let b = Dedup::builder()
            .nodes(["redis://a:1", "redis://b:2"])
            .node("redis://c:3")
            .lease(Duration::from_secs(5))
            .retention(Duration::from_secs(60))
            .fencing(true)
            .node_timeout(Duration::from_millis(20))
            .retries(1)
            .retry_delay(Duration::from_millis(10))
            .connect_timeout(Duration::from_millis(300));
        let servers = ["redis://a:1", "redis://b:2", "redis://c:3"].map(|u| NodeSpec::Server(u.to_string()));
        assert!(b.nodes == servers, "nodes in order, each a single server");
        let want = Settings {
            lease: Duration::from_secs(5),
            retention: Duration::from_secs(60),
            fencing: true,
            node_timeout: Duration::from_millis(20),
            retries: 1,
            retry_delay: Duration::from_millis(10),
            connect_timeout: Duration::from_millis(300),
        };
        assert_eq!(b.settings, want);
        let shown = format!("{b:?}");
        assert!(!shown.contains("redis://"), "Debug must not show URLs: {shown}");
    }

    #[tokio::test]
    async fn settings_that_can_never_work_are_refused() {
        let err = |b: Builder| async move { b.connect().await.unwrap_err() };
        assert!(matches!(err(Dedup::builder()).await, Error::Config(ConfigError::NoNodes)));
        assert!(matches!(
            err(Dedup::builder().nodes(["redis://127.0.0.1:1", "nope://x"])).await,
            Error::Config(ConfigError::InvalidUrl { index: 1, .. })
        ));
        assert!(matches!(
            err(Dedup::builder().nodes(["redis://127.0.0.1:1", "redis://:secret@127.0.0.1:1/2"])).await,
            Error::Config(ConfigError::DuplicateNode { ref node }) if node == "127.0.0.1:1"
        ));
        assert!(matches!(
            err(Dedup::builder().node("redis://127.0.0.1:1").lease(Duration::from_millis(2))).await,
            Error::Config(ConfigError::InvalidDuration { name: "lease", .. })
        ));
    }
}
