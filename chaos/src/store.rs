//! The protected resource: one SQLite database (WAL) that every worker process writes to, and
//! that refuses writes carrying a fencing token lower than the highest it has seen for the event.
//!
//! This is the check that makes fencing tokens worth anything: a lock service cannot stop a
//! stalled former holder from writing, but the resource can refuse it. Every write is kept, the
//! refused ones too (`accepted = 0`), so the checker can count effects per event and show each
//! rejected stale write.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// How long a write waits for another process's transaction. WAL has one writer at a time and
/// a write here takes well under a millisecond; a wait this long only ends in an error when
/// something is stuck.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS fences (
        event_id TEXT    PRIMARY KEY,
        highest  INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS writes (
        seq      INTEGER PRIMARY KEY,
        event_id TEXT    NOT NULL,
        token    INTEGER NOT NULL,
        worker   TEXT    NOT NULL,
        attempt  INTEGER NOT NULL,
        at_ns    INTEGER NOT NULL,
        accepted INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS writes_by_event ON writes (event_id);
";

/// What the store did with a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The token was at least the highest seen for the event: the effect is applied.
    Applied,
    /// A higher token already wrote for the event: refused, and recorded as a stale write.
    RejectedStale { highest: u64 },
}

/// One row of `writes`, for the checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredWrite {
    pub seq: i64,
    pub event: String,
    pub token: u64,
    pub worker: String,
    pub attempt: u64,
    pub at_ns: u64,
    pub accepted: bool,
}

/// One connection to the shared database.
pub struct Store {
    connection: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path` in WAL mode, so that several processes
    /// can read while one writes.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        let connection = Connection::open(path).with_context(|| format!("open the store {}", path.display()))?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        anyhow::ensure!(mode.eq_ignore_ascii_case("wal"), "{} stays in {mode} mode, not WAL", path.display());
        // FULL: a committed write survives even a power loss, as a real ledger's would.
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.execute_batch(SCHEMA).context("create the store's tables")?;
        Ok(Store { connection })
    }

    /// Writes the effect of `event` under fencing token `token`, unless a higher token already
    /// wrote for it. The check and the write are one immediate transaction, so two processes can
    /// never both pass the check against the same highest token.
    pub fn apply(&mut self, event: &str, token: u64, worker: &str, attempt: u64, at_ns: u64) -> anyhow::Result<WriteOutcome> {
        let tx = self.connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let highest: Option<i64> = tx
            .query_row("SELECT highest FROM fences WHERE event_id = ?1", params![event], |row| row.get(0))
            .optional()?;
        let token_sql = i64::try_from(token).context("a token above i64::MAX")?;
        let outcome = match highest {
            Some(highest) if token_sql < highest => WriteOutcome::RejectedStale { highest: highest as u64 },
            _ => WriteOutcome::Applied,
        };
        let accepted = outcome == WriteOutcome::Applied;
        if accepted {
            tx.execute(
                "INSERT INTO fences (event_id, highest) VALUES (?1, ?2)
                 ON CONFLICT (event_id) DO UPDATE SET highest = excluded.highest",
                params![event, token_sql],
            )?;
        }
        tx.execute(
            "INSERT INTO writes (event_id, token, worker, attempt, at_ns, accepted) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![event, token_sql, worker, attempt as i64, at_ns as i64, accepted],
        )?;
        tx.commit()?;
        Ok(outcome)
    }

    /// Every write, accepted or not, in the order they committed.
    pub fn writes(&self) -> anyhow::Result<Vec<StoredWrite>> {
        let mut statement = self
            .connection
            .prepare("SELECT seq, event_id, token, worker, attempt, at_ns, accepted FROM writes ORDER BY seq")?;
        let rows = statement.query_map([], |row| {
            Ok(StoredWrite {
                seq: row.get(0)?,
                event: row.get(1)?,
                token: row.get::<_, i64>(2)? as u64,
                worker: row.get(3)?,
                attempt: row.get::<_, i64>(4)? as u64,
                at_ns: row.get::<_, i64>(5)? as u64,
                accepted: row.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_tokens_are_refused_and_recorded_equal_and_higher_ones_apply() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("store.db")).unwrap();
        assert_eq!(store.apply("e1", 10, "w0", 1, 100).unwrap(), WriteOutcome::Applied);
        assert_eq!(store.apply("e1", 9, "w1", 2, 200).unwrap(), WriteOutcome::RejectedStale { highest: 10 });
        assert_eq!(store.apply("e1", 10, "w2", 3, 300).unwrap(), WriteOutcome::Applied);
        assert_eq!(store.apply("e1", 12, "w3", 4, 400).unwrap(), WriteOutcome::Applied);
        assert_eq!(store.apply("e1", 11, "w4", 5, 500).unwrap(), WriteOutcome::RejectedStale { highest: 12 });
        // Tokens are per event: a low token on another event is fine.
        assert_eq!(store.apply("e2", 1, "w0", 6, 600).unwrap(), WriteOutcome::Applied);

        let writes = store.writes().unwrap();
        let summary: Vec<(&str, u64, bool)> = writes.iter().map(|w| (w.event.as_str(), w.token, w.accepted)).collect();
        assert_eq!(
            summary,
            [("e1", 10, true), ("e1", 9, false), ("e1", 10, true), ("e1", 12, true), ("e1", 11, false), ("e2", 1, true)]
        );
        assert_eq!((writes[1].worker.as_str(), writes[1].attempt, writes[1].at_ns), ("w1", 2, 200));
    }

    #[test]
    fn two_connections_see_one_fence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        let mut a = Store::open(&path).unwrap();
        let mut b = Store::open(&path).unwrap();
        assert_eq!(a.apply("e", 5, "a", 1, 1).unwrap(), WriteOutcome::Applied);
        assert_eq!(b.apply("e", 4, "b", 2, 2).unwrap(), WriteOutcome::RejectedStale { highest: 5 });
        assert_eq!(b.writes().unwrap().len(), 2);
    }
}
