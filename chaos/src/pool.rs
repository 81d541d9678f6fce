//! Worker processes, seen from the orchestrator: started by re-executing this binary with the
//! `worker` subcommand, fed deliveries on stdin, read on stdout.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::protocol::{Delivery, WorkerMessage};
use crate::worker::ClientSettings;

/// How long a worker may take to connect and say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a worker may take to finish once its stdin is closed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// What the pool hears from its workers: a message, or a worker's stdout ending.
#[derive(Debug)]
pub enum Heard {
    Message(usize, WorkerMessage),
    Gone(usize),
}

/// The settings every worker of a pool shares (see `worker::WorkerSettings`).
#[derive(Clone, Debug)]
pub struct PoolSettings<'a> {
    pub exe: &'a Path,
    pub nodes: &'a [String],
    pub store: &'a Path,
    pub history_dir: &'a Path,
    pub tasks: usize,
    pub client: &'a ClientSettings,
}

struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// A set of running worker processes.
pub struct Pool {
    names: Vec<String>,
    processes: Vec<Process>,
    heard: mpsc::UnboundedReceiver<Heard>,
}

impl Pool {
    /// Starts one worker process per name and waits until each says it is ready.
    pub async fn start(names: &[&str], settings: &PoolSettings<'_>) -> anyhow::Result<Pool> {
        let (tell, heard) = mpsc::unbounded_channel();
        let mut processes = Vec::new();
        for (index, name) in names.iter().enumerate() {
            let mut command = Command::new(settings.exe);
            command
                .arg("worker")
                .args(["--name", name])
                .args(["--tasks", &settings.tasks.to_string()])
                .arg("--store")
                .arg(settings.store)
                .arg("--history-dir")
                .arg(settings.history_dir)
                .args(settings.client.args());
            for node in settings.nodes {
                command.args(["--node", node]);
            }
            let mut child = command
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .with_context(|| format!("start worker {name} ({})", settings.exe.display()))?;
            let stdout = child.stdout.take().context("piped stdout")?;
            let stdin = child.stdin.take();
            let tell = tell.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    match serde_json::from_str::<WorkerMessage>(&line) {
                        Ok(message) => {
                            let _ = tell.send(Heard::Message(index, message));
                        }
                        Err(e) => eprintln!("worker #{index} said something unreadable ({e}): {line}"),
                    }
                }
                let _ = tell.send(Heard::Gone(index));
            });
            processes.push(Process { child, stdin });
        }
        let mut pool = Pool { names: names.iter().map(|n| n.to_string()).collect(), processes, heard };
        let mut ready = 0;
        while ready < names.len() {
            match tokio::time::timeout(READY_TIMEOUT, pool.heard.recv()).await {
                Ok(Some(Heard::Message(_, WorkerMessage::Ready { .. }))) => ready += 1,
                Ok(Some(Heard::Gone(i))) => bail!("worker {} exited before it was ready", pool.names[i]),
                Ok(Some(other)) => bail!("a worker spoke before it was ready: {other:?}"),
                Ok(None) | Err(_) => bail!("workers not ready within {READY_TIMEOUT:?}"),
            }
        }
        Ok(pool)
    }

    pub fn len(&self) -> usize {
        self.processes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }

    pub fn name(&self, index: usize) -> &str {
        &self.names[index]
    }

    /// The OS process id of worker `index`, for signals.
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.processes[index].child.id()
    }

    /// Sends a delivery to worker `index`.
    pub async fn send(&mut self, index: usize, delivery: &Delivery) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(delivery)?;
        line.push(b'\n');
        let stdin = self.processes[index].stdin.as_mut().context("the pool is closing")?;
        stdin.write_all(&line).await.with_context(|| format!("send to worker {}", self.names[index]))?;
        stdin.flush().await?;
        Ok(())
    }

    /// The next thing a worker said. A worker that goes away before the pool is closed is an
    /// error: its deliveries would never be answered.
    pub async fn next(&mut self) -> anyhow::Result<(usize, WorkerMessage)> {
        match self.heard.recv().await {
            Some(Heard::Message(i, message)) => Ok((i, message)),
            Some(Heard::Gone(i)) => bail!("worker {} exited in the middle of the run", self.names[i]),
            None => bail!("every worker is gone"),
        }
    }

    /// Closes every worker's stdin and waits for them to finish what they hold; a worker that
    /// does not exit in time is killed, and that is an error.
    pub async fn close(mut self) -> anyhow::Result<()> {
        for process in &mut self.processes {
            process.stdin = None;
        }
        let mut failures = Vec::new();
        for (process, name) in self.processes.iter_mut().zip(&self.names) {
            match tokio::time::timeout(EXIT_TIMEOUT, process.child.wait()).await {
                Ok(Ok(status)) if status.success() => {}
                Ok(Ok(status)) => failures.push(format!("worker {name} exited with {status}")),
                Ok(Err(e)) => failures.push(format!("worker {name}: {e}")),
                Err(_) => {
                    let _ = process.child.kill().await;
                    failures.push(format!("worker {name} did not exit within {EXIT_TIMEOUT:?}"));
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!("{}", failures.join("; "))
        }
    }
}
