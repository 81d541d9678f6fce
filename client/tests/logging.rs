//! Every decision is a tracing event with per-node outcomes; the owner secret never appears.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::Nodes;
use dedup_client::Claim;
use redis::Value;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads the owner of `key` out of its serialized value on node `i`: the module keeps it there,
/// and nowhere else is it shown.
fn owner_of(nodes: &Nodes, i: usize, key: &str) -> String {
    nodes.command(i, redis::cmd("CONFIG").arg("SET").arg("rdbcompression").arg("no"));
    let Value::BulkString(dump) = nodes.command(i, redis::cmd("DUMP").arg(key)) else { panic!("DUMP") };
    let text = String::from_utf8_lossy(&dump).into_owned();
    let hex: Vec<&str> = text
        .split(|c: char| !c.is_ascii_hexdigit())
        .filter(|run| run.len() == 40)
        .collect();
    assert_eq!(hex.len(), 1, "one 40-digit owner in the dump");
    hex[0].to_string()
}

#[tokio::test]
async fn decisions_are_logged_with_node_outcomes_and_owners_never_are() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        // Plain text whatever features other crates in the workspace turn on.
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut nodes = Nodes::start(3);
    let dedup = nodes.client().await;
    let lease = dedup.claim("evt").await.unwrap().acquired().unwrap();
    let owner = owner_of(&nodes, 0, "evt");
    assert!(!format!("{lease:?} {:?}", lease.watch()).contains(&owner), "Debug shows no owner");
    assert!(matches!(dedup.claim("evt").await.unwrap(), Claim::InProgress { .. }));
    lease.extend().await.unwrap();
    lease.complete(Some(b"stored result")).await.unwrap();
    assert!(dedup.claim("evt").await.unwrap().is_completed());
    nodes.servers[2].kill();
    let lease = dedup.claim("other").await.unwrap().acquired().unwrap();
    let other_owner = owner_of(&nodes, 0, "other");
    lease.release().await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    for verdict in ["acquired", "in_progress", "completed"] {
        assert!(logs.contains(&format!("verdict=\"{verdict}\"")), "no {verdict} decision in:\n{logs}");
    }
    assert!(logs.contains(&format!("{}=CLAIMED(token=", nodes.name(0))), "per-node outcomes:\n{logs}");
    assert!(logs.contains(&format!("{}=HELD(pttl=", nodes.name(1))), "per-node outcomes:\n{logs}");
    assert!(logs.contains(&format!("{}=ERROR(", nodes.name(2))), "the failed node:\n{logs}");
    assert!(!logs.contains(&owner) && !logs.contains(&other_owner), "an owner was logged:\n{logs}");
    assert!(!logs.contains("stored result"), "results are not logged");
}
