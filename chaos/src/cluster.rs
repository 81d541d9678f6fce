//! The nodes under test: independent redis-server processes with the module, persisting every
//! write to the AOF before answering (`appendfsync always`).

use std::time::Duration;

use testkit::RedisServer;

/// `n` independent servers, started through testkit (each on its own port and directory,
/// stopped by PID when dropped).
pub struct Cluster {
    servers: Vec<RedisServer>,
}

impl Cluster {
    /// Starts `n` nodes set up as the docs advise for production: AOF on and fsynced before each
    /// reply, no eviction (an evicted entry would look FREE and be processed again).
    pub fn start(n: usize) -> Cluster {
        let servers = (0..n)
            .map(|_| {
                RedisServer::config()
                    .setting("appendonly", "yes")
                    .setting("appendfsync", "always")
                    .setting("aof-use-rdb-preamble", "yes")
                    .setting("maxmemory-policy", "noeviction")
                    .start()
            })
            .collect();
        Cluster { servers }
    }

    pub fn len(&self) -> usize {
        self.servers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(RedisServer::url).collect()
    }

    /// `host:port`, as the client names the node.
    pub fn name(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.servers[i].port())
    }

    pub fn server(&mut self, i: usize) -> &mut RedisServer {
        &mut self.servers[i]
    }

    /// The node's fencing counter (`dedup_token` in `INFO dedup`), or `None` if it does not
    /// answer within a short timeout.
    pub fn dedup_token(&self, i: usize) -> Option<u64> {
        let info: String = self.query(i, redis::cmd("INFO").arg("dedup"))?;
        info.lines().find_map(|line| line.strip_prefix("dedup_token:")).and_then(|v| v.trim().parse().ok())
    }

    /// How many keys the node holds, or `None` if it does not answer.
    pub fn dbsize(&self, i: usize) -> Option<u64> {
        self.query(i, &redis::cmd("DBSIZE"))
    }

    fn query<T: redis::FromRedisValue>(&self, i: usize, cmd: &redis::Cmd) -> Option<T> {
        let client = redis::Client::open(self.servers[i].url()).ok()?;
        let mut con = client.get_connection_with_timeout(Duration::from_millis(500)).ok()?;
        con.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
        cmd.query(&mut con).ok()
    }
}
