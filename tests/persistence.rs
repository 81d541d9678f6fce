//! Entries, TTLs and the token counter survive DEBUG RELOAD, RDB restarts and AOF restarts (with
//! and without the RDB preamble), and a restart never lengthens a lease.

mod common;

use common::*;
use redis::Connection;
use testkit::RedisServer;

/// What a restart must keep: one live claim, one completion marker with a result, and a counter
/// that is ahead of every live entry (the key that reached it was released).
struct Seeded {
    claimed_token: i64,
    claimed_expiry: i64,
    done_expiry: i64,
    counter: i64,
}

fn seed(con: &mut Connection) -> Seeded {
    let me = owner("me");
    let claimed_token = token_of(&claim(con, b"live", 600_000, &me, Some(b"fp")));
    claim(con, b"done", 600_000, &me, None);
    assert!(flag(con, &[b"DEDUP.COMPLETE", b"done", b"900000", &me, b"RESULT", b"rec\0ord"]));
    for i in 0..50 {
        let key = format!("gone-{i}");
        claim(con, key.as_bytes(), 600_000, &me, None);
        assert!(flag(con, &[b"DEDUP.RELEASE", key.as_bytes(), &me]));
    }
    // A fenced token far ahead, on a key that is then released: only the counter remembers it.
    claim(con, b"fenced", 600_000, &me, None);
    assert!(flag(con, &[b"DEDUP.FENCE", b"fenced", b"5000", &me]));
    assert!(flag(con, &[b"DEDUP.RELEASE", b"fenced", &me]));
    Seeded {
        claimed_token,
        claimed_expiry: snapshot(con, b"live").1,
        done_expiry: snapshot(con, b"done").1,
        counter: node_token(con),
    }
}

fn verify(con: &mut Connection, seeded: &Seeded, how: &str) {
    let me = owner("me");
    assert_eq!(snapshot(con, b"live").1, seeded.claimed_expiry, "{how}: the lease end is exact");
    assert_eq!(snapshot(con, b"done").1, seeded.done_expiry, "{how}: the retention end is exact");
    assert!(
        matches!(status(con, b"live"), Reply::StatusClaimed { token, .. } if token == seeded.claimed_token),
        "{how}: claim kept"
    );
    // The owner's secret survived too: the same owner still holds the lease.
    assert!(flag(con, &[b"DEDUP.EXTEND", b"live", b"600000", &me]), "{how}: owner kept");
    assert!(matches!(claim(con, b"live", 1000, &owner("other"), Some(b"x")), Reply::Mismatch { .. }), "{how}: fingerprint kept");
    match claim(con, b"done", 1000, &owner("other"), None) {
        Reply::Done { result, .. } => assert_eq!(result.as_deref(), Some(&b"rec\0ord"[..]), "{how}"),
        other => panic!("{how}: completion marker lost: {other:?}"),
    }
    assert!(node_token(con) >= seeded.counter, "{how}: counter went backwards");
    let next = token_of(&claim(con, b"after-restart", 1000, &me, None));
    assert!(flag(con, &[b"DEDUP.RELEASE", b"after-restart", &me]));
    assert!(next > seeded.counter, "{how}: token {next} after restart is not above {}", seeded.counter);
}

#[test]
fn debug_reload_keeps_entries_ttls_and_tokens() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let seeded = seed(con);
    redis::cmd("DEBUG").arg("RELOAD").exec(con).unwrap();
    verify(con, &seeded, "DEBUG RELOAD");
}

#[test]
fn restart_from_rdb() {
    let mut server = RedisServer::start();
    let seeded = seed(&mut server.connection());
    redis::cmd("SAVE").exec(&mut server.connection()).unwrap();
    server.kill();
    server.restart();
    verify(&mut server.connection(), &seeded, "RDB restart");
}

#[test]
fn restart_from_rdb_with_no_keys_left_keeps_the_counter() {
    let mut server = RedisServer::start();
    let con = &mut server.connection();
    let me = owner("me");
    claim(con, b"k", 60_000, &me, None);
    flag(con, &[b"DEDUP.FENCE", b"k", b"700", &me]);
    flag(con, &[b"DEDUP.RELEASE", b"k", &me]);
    redis::cmd("SAVE").exec(con).unwrap();
    server.kill();
    server.restart();
    assert_eq!(token_of(&claim(&mut server.connection(), b"k", 1000, &me, None)), 701);
}

fn aof_restart(preamble: bool) {
    let preamble = if preamble { "yes" } else { "no" };
    let mut server = RedisServer::config()
        .setting("appendonly", "yes")
        .setting("appendfsync", "always")
        .setting("aof-use-rdb-preamble", preamble)
        .start();
    let con = &mut server.connection();
    let seeded = seed(con);
    let how = format!("AOF restart (preamble {preamble}), from the command log");
    server.kill();
    server.restart();
    verify(&mut server.connection(), &seeded, &how);

    // Now rewrite the AOF (this runs the type's aof_rewrite when there is no preamble), write a
    // little more after the rewrite, and restart again.
    let con = &mut server.connection();
    let seeded = Seeded { counter: node_token(con), ..seeded };
    let live_expiry = snapshot(con, b"live").1;
    redis::cmd("BGREWRITEAOF").exec(con).unwrap();
    wait_for_rewrite(con);
    let me = owner("me");
    claim(con, b"post-rewrite", 600_000, &me, None);
    flag(con, &[b"DEDUP.RELEASE", b"post-rewrite", &me]);
    let seeded = Seeded { counter: node_token(con), claimed_expiry: live_expiry, ..seeded };
    server.kill();
    server.restart();
    let how = format!("AOF restart (preamble {preamble}) after BGREWRITEAOF");
    verify(&mut server.connection(), &seeded, &how);
}

fn wait_for_rewrite(con: &mut Connection) {
    for _ in 0..500 {
        let info: String = redis::cmd("INFO").arg("persistence").query(con).unwrap();
        let busy = info.contains("aof_rewrite_in_progress:1") || info.contains("aof_rewrite_scheduled:1");
        if !busy {
            assert!(info.contains("aof_last_bgrewrite_status:ok"), "rewrite failed:\n{info}");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("AOF rewrite did not finish");
}

#[test]
fn restart_from_aof_with_rdb_preamble() {
    aof_restart(true);
}

#[test]
fn restart_from_aof_without_rdb_preamble() {
    aof_restart(false);
}

#[test]
fn a_restart_never_lengthens_a_lease() {
    let mut server = RedisServer::config().setting("appendonly", "yes").setting("appendfsync", "always").start();
    let con = &mut server.connection();
    let me = owner("me");
    claim(con, b"lease", 2_000, &me, None);
    let before = snapshot(con, b"lease").1;
    std::thread::sleep(std::time::Duration::from_millis(300));
    server.kill();
    server.restart();
    let con = &mut server.connection();
    let after = snapshot(con, b"lease").1;
    assert_eq!(after, before, "the AOF replays the absolute expiry, not a fresh TTL");
    let pttl: i64 = redis::cmd("PTTL").arg("lease").query(con).unwrap();
    assert!(pttl < 2_000 - 300, "lease was lengthened: pttl {pttl}");
}
