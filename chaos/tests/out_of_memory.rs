//! Memory really running out (`maxmemory` reached with `noeviction`, by filling it, not by
//! setting the limit to 1 byte): `DEDUP.CLAIM` answers OOM, the quorum client says
//! `Unavailable` when a majority is full, and nothing already stored is lost.

use std::time::Duration;

use dedup_client::{Claim, Dedup, Error, NodeError};
use redis::Value;
use testkit::RedisServer;

const NODES: usize = 3;
const STORED: usize = 100;
/// Head room over the memory in use when the limit is set: filled within a few thousand claims.
const HEAD_ROOM: u64 = 256 * 1024;
/// Bound on the filler claims of one node.
const MAX_FILLERS: usize = 200_000;

fn con(server: &RedisServer) -> redis::Connection {
    server.connection()
}

fn info_field(server: &RedisServer, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("memory").query(&mut con(server)).unwrap();
    info.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).and_then(|v| v.trim().parse().ok()).unwrap()
}

fn dbsize(server: &RedisServer) -> u64 {
    redis::cmd("DBSIZE").query(&mut con(server)).unwrap()
}

/// `DEDUP.STATUS key`: its phase word and token (a read-only command: it works when full).
fn status(server: &RedisServer, key: &str) -> (String, i64) {
    let reply: Value = redis::cmd("DEDUP.STATUS").arg(key).query(&mut con(server)).unwrap();
    match reply {
        Value::Array(items) => match items.as_slice() {
            [Value::SimpleString(w), _, Value::Int(t)] => (w.clone(), *t),
            [Value::SimpleString(w)] => (w.clone(), 0),
            other => panic!("STATUS {key}: {other:?}"),
        },
        other => panic!("STATUS {key}: {other:?}"),
    }
}

/// Sets `maxmemory` a little above what is in use, then claims filler keys until the node
/// answers OOM. Returns how many fillers it stored.
fn fill_to_the_limit(server: &RedisServer) -> usize {
    let con = &mut con(server);
    let limit = info_field(server, "used_memory") + HEAD_ROOM;
    redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).exec(con).unwrap();
    for i in 0..MAX_FILLERS {
        let reply: redis::RedisResult<Value> =
            redis::cmd("DEDUP.CLAIM").arg(format!("filler:{i}")).arg(3_600_000).arg(format!("filler-owner-{i}")).query(con);
        match reply {
            Ok(_) => {}
            Err(e) if e.code() == Some("OOM") => {
                // Memory use wobbles by some kilobytes as client buffers come and go, so a node
                // that just refused a claim may take the next one. Pinning the limit just under
                // what is in use keeps it full, as a node that filled up and stays full.
                let pinned = info_field(server, "used_memory") - 64 * 1024;
                redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(pinned).exec(con).unwrap();
                return i;
            }
            Err(e) => panic!("filler {i}: {e}"),
        }
    }
    panic!("{MAX_FILLERS} claims did not fill {HEAD_ROOM} bytes of head room");
}

fn oom_failures(error: &Error) -> Vec<String> {
    let Error::Unavailable { failures, .. } = error else { panic!("expected Unavailable, got {error:?}") };
    failures
        .iter()
        .map(|f| match f.error() {
            NodeError::Redis(e) if e.code() == Some("OOM") => f.node().to_string(),
            other => panic!("{}: expected OOM, got {other}", f.node()),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_majority_is_unavailable_and_loses_nothing() {
    let servers: Vec<RedisServer> =
        (0..NODES).map(|_| RedisServer::config().setting("maxmemory-policy", "noeviction").start()).collect();
    let names: Vec<String> = servers.iter().map(|s| format!("127.0.0.1:{}", s.port())).collect();
    let dedup = Dedup::builder()
        .nodes(servers.iter().map(RedisServer::url))
        .lease(Duration::from_secs(60))
        .retry_delay(Duration::from_millis(20))
        .connect()
        .await
        .unwrap();

    // What must survive: completed ids with their results, and a lease in progress.
    for i in 0..STORED {
        let lease = dedup.claim(&format!("stored:{i}")).await.unwrap().acquired().expect("a fresh id");
        assert_eq!(lease.complete(Some(format!("result {i}").as_bytes())).await.unwrap().acked(), NODES);
    }
    let held = dedup.claim("held").await.unwrap().acquired().expect("a fresh id");

    // Nodes 0 and 1, a majority, run out of memory for real.
    let fillers: Vec<usize> = servers[..2].iter().map(fill_to_the_limit).collect();
    let before: Vec<u64> = servers.iter().map(dbsize).collect();
    for (i, server) in servers[..2].iter().enumerate() {
        let reply: redis::RedisResult<Value> =
            redis::cmd("DEDUP.CLAIM").arg("probe").arg(1000).arg("someone").query(&mut con(server));
        assert_eq!(reply.unwrap_err().code(), Some("OOM"), "node {i} after {} fillers", fillers[i]);
    }

    // A fresh id, and the held one: a majority failing is Unavailable, never InProgress.
    for id in ["fresh", "held"] {
        let outcome = dedup.claim(id).await;
        let error = outcome.as_ref().map(|_| ()).unwrap_err();
        assert_eq!(oom_failures(error), names[..2], "{id}");
    }
    // A completed id: the node with memory left still answers DONE, with the stored result.
    match dedup.claim("stored:7").await {
        Ok(Claim::Completed { result }) => assert_eq!(result.as_deref(), Some(&b"result 7"[..])),
        other => panic!("a completed id with a full majority gave {other:?}"),
    }

    // Nothing stored was lost or changed: the same keys, every marker DONE, the lease held.
    assert_eq!(servers.iter().map(dbsize).collect::<Vec<_>>(), before, "no key evicted or added");
    for server in &servers {
        for i in 0..STORED {
            assert_eq!(status(server, &format!("stored:{i}")).0, "DONE");
        }
        assert_eq!(status(server, "held").0, "CLAIMED");
        assert_eq!(status(server, "fresh").0, "FREE", "no partial claim left behind");
    }

    // One node full is a minority: claims go on, and the full node does not record them.
    redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(0).exec(&mut con(&servers[1])).unwrap();
    let lease = dedup.claim("fresh").await.unwrap().acquired().expect("a minority full is tolerated");
    assert_eq!(lease.complete(None).await.unwrap().acked(), NODES - 1);
    assert_eq!(status(&servers[0], "fresh").0, "FREE");
    assert!(held.complete(None).await.unwrap().is_durable());
}
