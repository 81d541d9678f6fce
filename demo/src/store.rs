//! The receivers' database: one SQLite file, in WAL mode, shared by every receiver process.
//!
//! The `records` table is the incident's table as it was: `event_id` is indexed but not unique.
//! A unique constraint would have stopped this particular duplicate at the database, but the real
//! work behind a webhook (charging a card, sending an email, calling another service) has no such
//! constraint to lean on, so the demo keeps the table honest and lets the duplicates show.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

/// How long a write waits for another process's write to finish before failing with
/// `SQLITE_BUSY`. WAL allows one writer at a time across all processes; writes here take
/// microseconds, so a wait this long only ends in an error when something is really stuck.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS records (
        id            INTEGER PRIMARY KEY,
        event_id      TEXT    NOT NULL,
        payload       BLOB    NOT NULL,
        created_by    TEXT    NOT NULL,
        created_at_ms INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS records_by_event ON records (event_id);
";

/// The id of a row in `records`: what a receiver answers, and what dedup mode stores as the
/// event's result so that duplicates get the same answer back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordId(pub i64);

impl RecordId {
    /// The record id as the result stored in the event's completion marker: decimal ASCII,
    /// readable in `redis-cli`.
    pub fn to_result(self) -> Vec<u8> {
        self.0.to_string().into_bytes()
    }

    /// Reads a result written by [`RecordId::to_result`]; `None` for anything else.
    pub fn from_result(result: &[u8]) -> Option<RecordId> {
        std::str::from_utf8(result).ok()?.parse().ok().map(RecordId)
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {}", self.0)
    }
}

/// A connection to the shared database. Cheap to clone; clones share one connection, used from
/// Tokio's blocking pool so that SQLite's waits never stall the async workers.
#[derive(Clone)]
pub struct Store {
    connection: Arc<Mutex<Connection>>,
}

impl Store {
    /// Opens (creating if needed) the database at `path`, switches it to WAL so that several
    /// processes can read while one writes, and creates the table.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        let connection =
            Connection::open(path).with_context(|| format!("open the SQLite database {}", path.display()))?;
        connection.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        anyhow::ensure!(
            mode.eq_ignore_ascii_case("wal"),
            "{} could not switch to WAL (it is in {mode} mode)",
            path.display()
        );
        // In WAL mode NORMAL loses no committed transaction when a process crashes, only on power loss.
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.execute_batch(SCHEMA).context("create the records table")?;
        Ok(Store { connection: Arc::new(Mutex::new(connection)) })
    }

    /// The record of `event_id`, if one exists (the oldest, if there are several).
    pub async fn find(&self, event_id: &str) -> anyhow::Result<Option<RecordId>> {
        let event_id = event_id.to_owned();
        self.with_connection(move |connection| {
            connection
                .query_row("SELECT id FROM records WHERE event_id = ?1 ORDER BY id LIMIT 1", params![event_id], |row| {
                    row.get(0).map(RecordId)
                })
                .optional()
        })
        .await
    }

    /// Inserts a record for `event_id`, whether or not one exists.
    pub async fn create(&self, event_id: &str, payload: &[u8], created_by: &str) -> anyhow::Result<RecordId> {
        let (event_id, payload, created_by) = (event_id.to_owned(), payload.to_vec(), created_by.to_owned());
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        self.with_connection(move |connection| {
            connection.execute(
                "INSERT INTO records (event_id, payload, created_by, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![event_id, payload, created_by, now_ms],
            )?;
            Ok(RecordId(connection.last_insert_rowid()))
        })
        .await
    }

    async fn with_connection<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let connection = connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&connection)
        })
        .await
        .context("the database task panicked")?
        .context("database query")
    }
}

/// How many records each event has, read from the database at `path` after every receiver
/// stopped.
pub fn records_per_event(path: &Path) -> anyhow::Result<HashMap<String, u64>> {
    let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("open {} to audit it", path.display()))?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    let mut statement = connection.prepare("SELECT event_id, COUNT(*) FROM records GROUP BY event_id")?;
    // COUNT(*) is at least 1 here, so the i64 always fits a u64.
    let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64)))?;
    rows.collect::<rusqlite::Result<_>>().context("count records per event")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids_round_trip_through_the_stored_result() {
        assert_eq!(RecordId(42).to_result(), b"42");
        assert_eq!(RecordId::from_result(b"42"), Some(RecordId(42)));
        assert_eq!(RecordId::from_result(b"record 42"), None);
        assert_eq!(RecordId::from_result(&[0xff]), None);
    }

    #[tokio::test]
    async fn the_table_keeps_duplicates_and_the_audit_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.sqlite3");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.find("evt_1").await.unwrap(), None);

        let first = store.create("evt_1", b"{}", "receiver-1").await.unwrap();
        let second = store.create("evt_1", b"{}", "receiver-2").await.unwrap();
        store.create("evt_2", b"{}", "receiver-1").await.unwrap();
        assert_ne!(first, second);
        assert_eq!(store.find("evt_1").await.unwrap(), Some(first), "the oldest record is found");

        // A second process opening the same file shares it.
        let other = Store::open(&path).unwrap();
        assert!(other.find("evt_2").await.unwrap().is_some());

        let counts = records_per_event(&path).unwrap();
        assert_eq!(counts, HashMap::from([("evt_1".to_string(), 2), ("evt_2".to_string(), 1)]));
    }
}
