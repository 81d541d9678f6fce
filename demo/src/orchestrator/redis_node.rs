//! One redis-server with the dedup module, configured from `redis.conf.example`, that can be
//! killed like a crash and restarted from its append-only file.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::process::ChildProcess;

/// The configuration every node derives its own from, unless `--redis-config` names another.
pub const EXAMPLE_CONFIG: &str = include_str!("../../../redis.conf.example");

/// How long a starting server may take to load its data and answer PING.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How often a starting server is asked.
const START_POLL: Duration = Duration::from_millis(20);
/// How long a server may take to shut down cleanly.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Where a node runs and what it loads.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub port: u16,
    /// The node's data directory: its config, log and AOF live here, across restarts.
    pub dir: PathBuf,
    /// The `redis-server` binary.
    pub server: PathBuf,
    /// `libredis_dedup.so`.
    pub module: PathBuf,
}

/// A redis-server process with the dedup module. Stopped when dropped.
pub struct RedisNode {
    spec: NodeSpec,
    config: PathBuf,
    process: Option<ChildProcess>,
}

impl RedisNode {
    /// Writes the node's config, derived from `template`, and starts the server.
    pub async fn start(spec: NodeSpec, template: &str) -> anyhow::Result<RedisNode> {
        ensure_port_free(spec.port)?;
        fs::create_dir_all(&spec.dir).with_context(|| format!("create {}", spec.dir.display()))?;
        let config = spec.dir.join("redis.conf");
        fs::write(&config, derive_config(template, &spec.module, spec.port, &spec.dir)?)
            .with_context(|| format!("write {}", config.display()))?;
        let mut node = RedisNode { spec, config, process: None };
        node.launch().await?;
        Ok(node)
    }

    pub fn port(&self) -> u16 {
        self.spec.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.spec.port)
    }

    /// SIGKILL: no shutdown, no final save, as in a crash or the OOM killer.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts the server again on the same port, with the same directory, so it loads the AOF it
    /// wrote before the crash. Returns how many keys it loaded.
    pub async fn restart(&mut self) -> anyhow::Result<u64> {
        self.kill();
        self.launch().await?;
        let mut connection = self.connect().await?;
        let keys: u64 = redis::cmd("DBSIZE").query_async(&mut connection).await.context("DBSIZE after the restart")?;
        Ok(keys)
    }

    /// SIGTERM and wait.
    pub async fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.terminate(STOP_GRACE).await;
        }
    }

    async fn launch(&mut self) -> anyhow::Result<()> {
        let mut command = Command::new(&self.spec.server);
        command.arg(&self.config);
        let name = format!("redis-server :{}", self.spec.port);
        let process = ChildProcess::spawn(name, command, &self.spec.dir.join("redis.log"))?;
        self.process = Some(process);
        self.wait_until_ready().await
    }

    /// Waits until the server answers PING: a server still loading its AOF answers `LOADING`.
    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last_error = String::from("no answer yet");
        while Instant::now() < deadline {
            let process = self.process.as_mut().expect("launched");
            if let Some(status) = process.exit_status() {
                bail!("{} exited with {status}; {}", process.name(), process.log_tail());
            }
            match self.ping().await {
                Ok(()) => return Ok(()),
                Err(error) => last_error = format!("{error:#}"),
            }
            tokio::time::sleep(START_POLL).await;
        }
        let process = self.process.as_ref().expect("launched");
        bail!("{} did not answer PING within {START_TIMEOUT:?} ({last_error}); {}", process.name(), process.log_tail())
    }

    async fn ping(&self) -> anyhow::Result<()> {
        let mut connection = self.connect().await?;
        let _: String = redis::cmd("PING").query_async(&mut connection).await?;
        Ok(())
    }

    async fn connect(&self) -> anyhow::Result<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(self.url())?;
        Ok(client.get_multiplexed_async_connection().await?)
    }
}

/// Fails with a clear message when something already listens on `port` (for example a redis-server
/// left from another run), instead of a redis-server that exits with a bind error.
pub fn ensure_port_free(port: u16) -> anyhow::Result<()> {
    TcpListener::bind(("127.0.0.1", port))
        .map(drop)
        .with_context(|| format!("port {port} is in use; stop what listens there, or choose other ports (see --help)"))
}

/// The node's config: `template` with its `port`, `dir` and module path replaced, and the AOF on
/// (the restart after the SIGKILL must find every claim that was acknowledged before it).
/// Every other setting, and every comment, stays as the template has it.
pub fn derive_config(template: &str, module: &Path, port: u16, dir: &Path) -> anyhow::Result<String> {
    let mut out = String::from(
        "# Derived by webhook-demo from redis.conf.example: port, dir and module path replaced, AOF on.\n",
    );
    let (mut port_set, mut dir_set, mut module_set) = (false, false, false);
    for line in template.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("port") => {
                out.push_str(&format!("port {port}"));
                port_set = true;
            }
            Some("dir") => {
                out.push_str(&format!("dir {}", quote(dir)));
                dir_set = true;
            }
            Some("loadmodule") => {
                let _template_path = words.next();
                let module_args: Vec<&str> = words.collect();
                out.push_str(&format!("loadmodule {}", quote(module)));
                for arg in module_args {
                    out.push(' ');
                    out.push_str(arg);
                }
                module_set = true;
            }
            Some("appendonly") => out.push_str("appendonly yes"),
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    for (set, directive) in [(port_set, "port"), (dir_set, "dir"), (module_set, "loadmodule")] {
        if !set {
            bail!("the Redis config template has no `{directive}` line to replace");
        }
    }
    // The last occurrence of a directive wins, so this holds even if the template had none.
    out.push_str("appendonly yes\n");
    Ok(out)
}

/// A path as a Redis config argument: double-quoted, with `\` and `"` escaped.
fn quote(path: &Path) -> String {
    let text = path.to_string_lossy().replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{text}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_gets_this_nodes_port_dir_and_module() {
        let config =
            derive_config(EXAMPLE_CONFIG, Path::new("/opt/my modules/libredis_dedup.so"), 7002, Path::new("/tmp/n2"))
                .unwrap();
        let directives: Vec<&str> =
            config.lines().filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty()).collect();
        assert!(directives.contains(&"port 7002"), "{config}");
        assert!(directives.contains(&"dir \"/tmp/n2\""), "{config}");
        assert!(
            directives.contains(
                &"loadmodule \"/opt/my modules/libredis_dedup.so\" max-ttl-ms 2592000000 max-result-bytes 65536"
            ),
            "the module's arguments are kept: {config}"
        );
        assert_eq!(directives.last(), Some(&"appendonly yes"));
        // What the example says about safety is kept as it is.
        for kept in ["maxmemory-policy noeviction", "appendfsync always", "bind 127.0.0.1"] {
            assert!(directives.contains(&kept), "{kept} missing from {config}");
        }
        assert!(!directives.iter().any(|line| line.contains("/usr/local/lib/redis/modules")));
    }

    #[test]
    fn the_aof_is_on_even_when_the_template_turns_it_off() {
        let template = "port 1\ndir ./\nloadmodule /x.so\nappendonly no\n";
        let config = derive_config(template, Path::new("/m.so"), 2, Path::new("/d")).unwrap();
        assert!(!config.contains("appendonly no"));
        assert!(config.ends_with("appendonly yes\n"));
    }

    #[test]
    fn a_template_without_a_directive_to_replace_is_an_error() {
        let error = derive_config("port 1\ndir ./\n", Path::new("/m.so"), 2, Path::new("/d")).unwrap_err();
        assert_eq!(error.to_string(), "the Redis config template has no `loadmodule` line to replace");
    }

    #[test]
    fn quotes_and_backslashes_in_paths_are_escaped() {
        assert_eq!(quote(Path::new(r#"/a "b"\c"#)), r#""/a \"b\"\\c""#);
    }
}
