//! Real redis-server processes with the module loaded, and clients pointed at them.
#![allow(dead_code)] // each test binary uses its own part of this

use std::time::Duration;

use dedup_client::{Builder, Dedup};
use redis::Value;
use testkit::RedisServer;

/// Short pauses between retries keep the suite fast; the rules do not depend on them.
pub const TEST_RETRY_DELAY: Duration = Duration::from_millis(20);

/// `n` independent servers.
pub struct Nodes {
    pub servers: Vec<RedisServer>,
}

impl Nodes {
    pub fn start(n: usize) -> Nodes {
        Nodes { servers: (0..n).map(|_| RedisServer::start()).collect() }
    }

    pub fn len(&self) -> usize {
        self.servers.len()
    }

    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(RedisServer::url).collect()
    }

    /// `host:port` of node `i`, as the client names it.
    pub fn name(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.servers[i].port())
    }

    /// A builder for these nodes with test-friendly retry pauses.
    pub fn builder(&self) -> Builder {
        Dedup::builder().nodes(self.urls()).retry_delay(TEST_RETRY_DELAY)
    }

    pub async fn client(&self) -> Dedup {
        self.builder().connect().await.expect("connect")
    }

    /// `DEDUP.STATUS key` on node `i`, as `(word, token)`; the token is 0 for FREE.
    pub fn status(&self, i: usize, key: &str) -> (String, i64) {
        let mut con = self.servers[i].connection();
        let reply: Value = redis::cmd("DEDUP.STATUS").arg(key).query(&mut con).expect("DEDUP.STATUS");
        let Value::Array(items) = reply else { panic!("unexpected STATUS reply {reply:?}") };
        let word = match &items[0] {
            Value::SimpleString(w) => w.clone(),
            other => panic!("unexpected STATUS word {other:?}"),
        };
        let token = match items.get(2) {
            Some(Value::Int(t)) => *t,
            _ => 0,
        };
        (word, token)
    }

    /// The phase of `key` on every running node `i` in `which`.
    pub fn phases(&self, which: impl IntoIterator<Item = usize>, key: &str) -> Vec<String> {
        which.into_iter().map(|i| self.status(i, key).0).collect()
    }

    /// Runs a command on node `i`.
    pub fn command(&self, i: usize, cmd: &redis::Cmd) -> Value {
        let mut con = self.servers[i].connection();
        cmd.query(&mut con).expect("command")
    }
}

/// Bounds a call that must not hang: a generous limit, only there to turn a hang into a failure.
pub async fn bounded<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not return within 30 s"))
}
