//! The history: every claim attempt, store write and completion, as JSON lines.
//!
//! Each worker process appends to its own file (`history/<worker>.jsonl`), one line per
//! operation, flushed as it is written, so a paused or crashed worker leaves everything it did
//! up to that moment. The checker reads all the files back. Times are [`crate::clock`]
//! nanoseconds, comparable across processes.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use dedup_client::{ClaimReport, Error, FenceReply, NodeReply};
use serde::{Deserialize, Serialize};

/// One line of the history.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Entry {
    Claim(ClaimEntry),
    Write(WriteEntry),
    Complete(CompleteEntry),
}

/// How a claim attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Acquired,
    Completed,
    InProgress,
    Mismatch,
    Unavailable,
    Contended,
    LeaseLost,
    /// Any other error (configuration, entropy): never expected in a run.
    Error,
}

impl Decision {
    pub const ALL: [Decision; 8] = [
        Decision::Acquired,
        Decision::Completed,
        Decision::InProgress,
        Decision::Mismatch,
        Decision::Unavailable,
        Decision::Contended,
        Decision::LeaseLost,
        Decision::Error,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Decision::Acquired => "acquired",
            Decision::Completed => "completed",
            Decision::InProgress => "in_progress",
            Decision::Mismatch => "mismatch",
            Decision::Unavailable => "unavailable",
            Decision::Contended => "contended",
            Decision::LeaseLost => "lease_lost",
            Decision::Error => "error",
        }
    }
}

/// A claim attempt: who, on what, when, what every node said, and what the client decided.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClaimEntry {
    pub event: String,
    pub worker: String,
    pub attempt: u64,
    pub start_ns: u64,
    pub end_ns: u64,
    pub storm: bool,
    pub nodes: Vec<String>,
    pub quorum: usize,
    pub rounds: Vec<RoundEntry>,
    pub fence: Option<FenceEntry>,
    pub decision: Decision,
    /// The fencing token of an acquired lease.
    pub token: Option<u64>,
    /// The client's error text, for decisions that are errors.
    pub error: Option<String>,
    /// For `Unavailable`: the nodes the error names as failed.
    pub failed_nodes: Vec<String>,
}

/// One claim round: one reply per node, in [`ClaimEntry::nodes`] order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoundEntry {
    pub attempt: u32,
    pub elapsed_us: u64,
    pub verdict: String,
    pub replies: Vec<ReplyEntry>,
}

/// One node's reply: `CLAIMED`, `HELD`, `DONE`, `MISMATCH`, `FAILED` or `UNANSWERED`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyEntry {
    pub reply: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub token: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pttl_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// The fence of an acquiring round: `RAISED`, `REFUSED`, `FAILED` or `UNANSWERED` per node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FenceEntry {
    pub token: u64,
    pub fenced: bool,
    pub replies: Vec<String>,
}

/// A step of the work under a lease: whose, for which event and delivery attempt, under which
/// token, and when it started and ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    pub event: String,
    pub worker: String,
    pub attempt: u64,
    pub token: u64,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// A write to the store, through the lease's fencing token.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WriteEntry {
    #[serde(flatten)]
    pub step: Step,
    /// `applied`, `rejected_stale` or `error`.
    pub outcome: String,
    /// For a rejected write: the highest token the store had seen for the event.
    pub highest: Option<u64>,
    pub error: Option<String>,
}

/// `Lease::complete` after an applied write.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CompleteEntry {
    #[serde(flatten)]
    pub step: Step,
    /// Nodes that recorded the completion (0 when the call failed).
    pub acked: usize,
    pub durable: bool,
    pub error: Option<String>,
}

impl ClaimEntry {
    /// The per-node replies of the last round (empty if there was none).
    pub fn last_replies(&self) -> &[ReplyEntry] {
        self.rounds.last().map_or(&[], |r| r.replies.as_slice())
    }

    /// How many replies of the last round have this word.
    pub fn count(&self, word: &str) -> usize {
        self.last_replies().iter().filter(|r| r.reply == word).count()
    }
}

/// The history entry's view of a claim report.
pub fn rounds_of(report: &ClaimReport) -> Vec<RoundEntry> {
    report
        .rounds()
        .iter()
        .map(|round| RoundEntry {
            attempt: round.attempt(),
            elapsed_us: u64::try_from(round.elapsed().as_micros()).unwrap_or(u64::MAX),
            verdict: format!("{:?}", round.verdict()),
            replies: round.replies().iter().map(reply_of).collect(),
        })
        .collect()
}

fn reply_of(reply: &NodeReply) -> ReplyEntry {
    let mut entry = ReplyEntry { reply: reply.word().to_string(), token: None, pttl_ms: None, error: None };
    match reply {
        NodeReply::Claimed { token } => entry.token = Some(*token),
        NodeReply::Held { pttl } => entry.pttl_ms = Some(u64::try_from(pttl.as_millis()).unwrap_or(u64::MAX)),
        NodeReply::Failed(error) => entry.error = Some(error.to_string()),
        _ => {}
    }
    entry
}

/// The history entry's view of a fence.
pub fn fence_of(report: &ClaimReport) -> Option<FenceEntry> {
    report.fence().map(|fence| FenceEntry {
        token: fence.token(),
        fenced: fence.fenced(),
        replies: fence
            .replies()
            .iter()
            .map(|r| match r {
                FenceReply::Raised => "RAISED".to_string(),
                FenceReply::Refused => "REFUSED".to_string(),
                FenceReply::Failed(e) => format!("FAILED: {e}"),
                _ => "UNANSWERED".to_string(),
            })
            .collect(),
    })
}

/// The decision for a claim outcome, and the names of failed nodes for `Unavailable`.
pub fn decision_of<L>(outcome: &Result<dedup_client::Claim<L>, Error>) -> (Decision, Vec<String>) {
    use dedup_client::Claim;
    match outcome {
        Ok(Claim::Acquired(_)) => (Decision::Acquired, Vec::new()),
        Ok(Claim::Completed { .. }) => (Decision::Completed, Vec::new()),
        Ok(Claim::InProgress { .. }) => (Decision::InProgress, Vec::new()),
        Ok(Claim::Mismatch) => (Decision::Mismatch, Vec::new()),
        Err(Error::Unavailable { failures, .. }) => {
            (Decision::Unavailable, failures.iter().map(|f| f.node().to_string()).collect())
        }
        Err(Error::Contended { .. }) => (Decision::Contended, Vec::new()),
        Err(Error::LeaseLost { .. }) => (Decision::LeaseLost, Vec::new()),
        Err(_) => (Decision::Error, Vec::new()),
    }
}

/// Appends entries to one history file, a flushed line each.
pub struct HistoryWriter {
    file: Mutex<File>,
}

impl HistoryWriter {
    pub fn create(path: &Path) -> anyhow::Result<HistoryWriter> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("open the history file {}", path.display()))?;
        Ok(HistoryWriter { file: Mutex::new(file) })
    }

    /// Writes one line. A history that cannot be written makes the run worthless, so failing
    /// to write is an error the worker stops on.
    pub fn append(&self, entry: &Entry) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // One write call per line, on a file opened for appending: lines never interleave.
        file.write_all(&line).context("append to the history")?;
        Ok(())
    }
}

/// The history files of a run directory.
pub fn files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads every entry of every history file in `dir`.
pub fn read_all(dir: &Path) -> anyhow::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for path in files(dir)? {
        let reader = BufReader::new(File::open(&path).with_context(|| format!("open {}", path.display()))?);
        for (n, line) in reader.lines().enumerate() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let entry = serde_json::from_str(&line)
                .with_context(|| format!("{}:{}: not a history entry: {line}", path.display(), n + 1))?;
            entries.push(entry);
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(event: &str) -> Entry {
        Entry::Claim(ClaimEntry {
            event: event.into(),
            worker: "w0".into(),
            attempt: 1,
            start_ns: 10,
            end_ns: 20,
            storm: false,
            nodes: vec!["a:1".into()],
            quorum: 1,
            rounds: vec![RoundEntry {
                attempt: 1,
                elapsed_us: 5,
                verdict: "Acquired".into(),
                replies: vec![ReplyEntry { reply: "CLAIMED".into(), token: Some(3), pttl_ms: None, error: None }],
            }],
            fence: None,
            decision: Decision::Acquired,
            token: Some(3),
            error: None,
            failed_nodes: Vec::new(),
        })
    }

    #[test]
    fn entries_written_by_several_writers_read_back_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = HistoryWriter::create(&dir.path().join("w0.jsonl")).unwrap();
        let b = HistoryWriter::create(&dir.path().join("w1.jsonl")).unwrap();
        a.append(&claim("e1")).unwrap();
        b.append(&claim("e2")).unwrap();
        a.append(&claim("e3")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not history").unwrap();
        let events: Vec<String> = read_all(dir.path())
            .unwrap()
            .into_iter()
            .map(|e| match e {
                Entry::Claim(c) => c.event,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(events, ["e1", "e3", "e2"]);
    }

    #[test]
    fn a_broken_line_names_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w0.jsonl"), "{\"op\":\"nope\"}\n").unwrap();
        let err = read_all(dir.path()).unwrap_err().to_string();
        assert!(err.contains("w0.jsonl:1"), "{err}");
    }

    #[test]
    fn counts_read_the_last_round() {
        let Entry::Claim(c) = claim("e") else { unreachable!() };
        assert_eq!(c.count("CLAIMED"), 1);
        assert_eq!(c.count("HELD"), 0);
    }
}
