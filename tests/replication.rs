//! A replica holds the same entries as its master, with the same absolute expiry times, and after
//! promotion its tokens keep increasing.

mod common;

use std::time::Duration;

use common::*;
use redis::Connection;
use testkit::RedisServer;

fn wait_in_sync(master: &mut Connection, replica: &mut Connection) {
    for _ in 0..500 {
        let m: String = redis::cmd("INFO").arg("replication").query(master).unwrap();
        let r: String = redis::cmd("INFO").arg("replication").query(replica).unwrap();
        let offset = |info: &str, field: &str| {
            info.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| v.trim().parse::<i64>().ok())
        };
        let linked = r.contains("master_link_status:up");
        if linked && offset(&m, "master_repl_offset:").is_some() && offset(&m, "master_repl_offset:") == offset(&r, "slave_repl_offset:") {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("replica did not catch up");
}

#[test]
fn replica_mirrors_state_and_keeps_tokens_increasing_after_promotion() {
    let master = RedisServer::config().setting("repl-diskless-sync-delay", "0").start();
    let replica = RedisServer::start();
    let (m, r) = (&mut master.connection(), &mut replica.connection());
    let me = owner("me");

    // Data written before the replica attaches arrives in the full-sync RDB (with aux data)...
    claim(m, b"before", 600_000, &me, None);
    flag(m, &[b"DEDUP.FENCE", b"before", b"300", &me]);
    flag(m, &[b"DEDUP.RELEASE", b"before", &me]);
    redis::cmd("REPLICAOF").arg("127.0.0.1").arg(master.port()).exec(r).unwrap();
    wait_in_sync(m, r);
    assert_eq!(node_token(r), 300);

    // ...and later writes arrive as effects.
    let claimed = token_of(&claim(m, b"claimed", 600_000, &me, Some(b"fp")));
    claim(m, b"done", 600_000, &me, None);
    flag(m, &[b"DEDUP.COMPLETE", b"done", b"900000", &me, b"RESULT", b"result"]);
    claim(m, b"extended", 1_000, &me, None);
    flag(m, &[b"DEDUP.EXTEND", b"extended", b"700000", &me]);
    claim(m, b"fenced", 600_000, &me, None);
    flag(m, &[b"DEDUP.FENCE", b"fenced", b"2000", &me]);
    claim(m, b"released", 600_000, &me, None);
    flag(m, &[b"DEDUP.RELEASE", b"released", &me]);
    wait_in_sync(m, r);

    for key in [&b"claimed"[..], b"done", b"extended", b"fenced", b"released"] {
        assert_eq!(snapshot(m, key), snapshot(r, key), "{}", String::from_utf8_lossy(key));
        let (ms, rs) = (status(m, key), status(r, key));
        match (ms, rs) {
            (Reply::StatusClaimed { token: a, .. }, Reply::StatusClaimed { token: b, .. })
            | (Reply::StatusDone { token: a, .. }, Reply::StatusDone { token: b, .. }) => assert_eq!(a, b),
            (Reply::Free, Reply::Free) => {}
            (a, b) => panic!("{} differs: master {a:?}, replica {b:?}", String::from_utf8_lossy(key)),
        }
    }
    assert_eq!(token_of(&status(r, b"claimed")), claimed);
    assert_eq!(token_of(&status(r, b"fenced")), 2000);
    assert_eq!(node_token(r), node_token(m));
    // Writes are refused on a replica.
    assert!(err(r, &[b"DEDUP.CLAIM", b"x", b"1000", &me]).starts_with("READONLY"));

    // Promotion: the former replica continues above every token the master handed out.
    let last = node_token(m);
    redis::cmd("REPLICAOF").arg("NO").arg("ONE").exec(r).unwrap();
    let next = token_of(&claim(r, b"after-promotion", 1000, &me, None));
    assert!(next > last, "token {next} after promotion is not above {last}");
    assert!(matches!(claim(r, b"done", 1000, &owner("late"), None), Reply::Done { result: Some(v), .. } if v == b"result"));
    assert!(flag(r, &[b"DEDUP.EXTEND", b"claimed", b"1000", &me]), "the owner still holds its lease");
}
