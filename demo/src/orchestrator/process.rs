//! The OS processes the orchestrator starts, and the guarantee that it stops every one of them.
//!
//! Three mechanisms, for three ways the orchestrator can end:
//! - normal end, error or Ctrl-C: every [`ChildProcess`] is owned by something the run drops,
//!   and dropping it kills the process and reaps it;
//! - Ctrl-C in a terminal: children run in their own process groups, so the terminal's SIGINT
//!   reaches only the orchestrator, which then stops them (rather than each child reacting on
//!   its own, in no particular order);
//! - the orchestrator itself killed (SIGKILL, OOM): the kernel sends each child SIGKILL
//!   (`PR_SET_PDEATHSIG`), so no redis-server is left listening on the demo's ports.

use std::fs::{self, File};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::prctl;
use nix::sys::signal::{kill, Signal};
use nix::unistd::{getppid, Pid};

/// How often a stopping process is checked for exit.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// A running child process, killed and reaped when dropped. Its stdout and stderr go to a log file.
pub struct ChildProcess {
    name: String,
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

impl ChildProcess {
    /// Starts `command`, logging to `log`.
    ///
    /// Must be called from the main thread or a Tokio worker thread, never from
    /// `spawn_blocking`: the kernel ties `PR_SET_PDEATHSIG` to the thread that forks, and the
    /// blocking pool ends idle threads, which would kill the child with it.
    pub fn spawn(name: impl Into<String>, mut command: Command, log: &Path) -> anyhow::Result<ChildProcess> {
        let name = name.into();
        let log_file = File::create(log).with_context(|| format!("create {}", log.display()))?;
        command.stdin(Stdio::null()).stdout(log_file.try_clone()?).stderr(log_file).process_group(0);
        let orchestrator = Pid::this();
        // SAFETY: the closure runs between fork and exec and only makes two system calls
        // (prctl, getppid), both async-signal-safe; it allocates nothing.
        unsafe {
            command.pre_exec(move || die_with(orchestrator));
        }
        let child = command.spawn().with_context(|| format!("start {name} ({:?})", command.get_program()))?;
        Ok(ChildProcess { name, child, log: log.to_path_buf(), exited: None })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The exit status, if the process has exited (it is reaped then).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// SIGKILL, as in a crash, and reap.
    pub fn kill(&mut self) {
        if self.exit_status().is_some() {
            return;
        }
        self.signal(Signal::SIGKILL);
        self.exited = self.child.wait().ok();
    }

    /// SIGTERM, then SIGKILL if the process has not exited within `grace`.
    pub async fn terminate(&mut self, grace: Duration) {
        if self.exit_status().is_some() {
            return;
        }
        self.signal(Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exit_status().is_some() {
                return;
            }
            tokio::time::sleep(EXIT_POLL).await;
        }
        tracing::warn!(process = %self.name, "did not exit {grace:?} after SIGTERM; killing it");
        self.kill();
    }

    /// The last lines of the process's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(12)..].join("\n");
        format!("last lines of {}:\n{tail}", self.log.display())
    }

    fn signal(&self, signal: Signal) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // ESRCH (already gone) is fine: the aim is that it is not running.
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// In the child, before exec: be killed when the orchestrator dies, and don't start at all if it
/// already has (the orphan would then have been re-parented, and the death signal never comes).
fn die_with(orchestrator: Pid) -> io::Result<()> {
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
    if getppid() != orchestrator {
        return Err(io::Error::other("the orchestrator exited before this process started"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropping_a_child_kills_and_reaps_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("sleep");
        command.arg("60");
        let child = ChildProcess::spawn("sleep", command, &dir.path().join("sleep.log")).unwrap();
        let pid = Pid::from_raw(child.child.id() as i32);
        drop(child);
        // Reaped: the pid no longer names a process (not even a zombie) that we may signal.
        assert_eq!(kill(pid, None), Err(nix::errno::Errno::ESRCH));
    }

    #[tokio::test]
    async fn terminate_lets_a_process_exit_on_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("sleep");
        command.arg("60");
        let mut child = ChildProcess::spawn("sleep", command, &dir.path().join("sleep.log")).unwrap();
        child.terminate(Duration::from_secs(10)).await;
        let status = child.exit_status().expect("exited");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(Signal::SIGTERM as i32), "ended by SIGTERM, not by the fallback SIGKILL");
    }

    #[test]
    fn the_log_tail_shows_what_the_process_printed() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("sh");
        command.args(["-c", "echo starting; echo failed: port in use >&2; exit 1"]);
        let mut child = ChildProcess::spawn("sh", command, &dir.path().join("sh.log")).unwrap();
        while child.exit_status().is_none() {
            std::thread::sleep(EXIT_POLL);
        }
        assert!(child.log_tail().ends_with("starting\nfailed: port in use"), "{}", child.log_tail());
    }
}
