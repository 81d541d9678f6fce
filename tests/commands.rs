//! Every DEDUP.* command and reply against a real redis-server, over RESP2 and RESP3.

mod common;

use common::*;
use redis::{Connection, Value};
use testkit::RedisServer;

fn lifecycle(con: &mut Connection) {
    let (me, them) = (owner("me"), owner("them"));
    let Reply::Claimed { token, ttl } = claim(con, b"evt", 10_000, &me, Some(b"fp-1")) else {
        panic!("a free key must be claimed")
    };
    assert_eq!(ttl, 10_000);
    assert!(token >= 1);

    match claim(con, b"evt", 10_000, &them, Some(b"fp-1")) {
        Reply::Held { pttl } => assert!((0..=10_000).contains(&pttl)),
        other => panic!("expected HELD, got {other:?}"),
    }
    // The same owner again keeps its token and gets a fresh lease.
    assert_eq!(claim(con, b"evt", 20_000, &me, None), Reply::Claimed { token, ttl: 20_000 });
    match status(con, b"evt") {
        Reply::StatusClaimed { pttl, token: t } => {
            assert_eq!(t, token);
            assert!(pttl > 10_000 && pttl <= 20_000, "lease reset to 20 s, pttl {pttl}");
        }
        other => panic!("{other:?}"),
    }

    assert!(flag(con, &[b"DEDUP.EXTEND", b"evt", b"30000", &me]));
    assert!(!flag(con, &[b"DEDUP.EXTEND", b"evt", b"30000", &them]));
    let pttl: i64 = redis::cmd("PTTL").arg("evt").query(con).unwrap();
    assert!(pttl > 20_000 && pttl <= 30_000);

    assert!(!flag(con, &[b"DEDUP.COMPLETE", b"evt", b"60000", &them, b"RESULT", b"theirs"]));
    assert!(flag(con, &[b"DEDUP.COMPLETE", b"evt", b"60000", &me, b"RESULT", b"record 42"]));
    // A retried COMPLETE by the same owner is idempotent and keeps the first result.
    assert!(flag(con, &[b"DEDUP.COMPLETE", b"evt", b"60000", &me, b"RESULT", b"other"]));
    match claim(con, b"evt", 10_000, &them, Some(b"fp-1")) {
        Reply::Done { pttl, result } => {
            assert!(pttl > 30_000 && pttl <= 60_000);
            assert_eq!(result.as_deref(), Some(&b"record 42"[..]));
        }
        other => panic!("expected DONE, got {other:?}"),
    }
    assert!(matches!(status(con, b"evt"), Reply::StatusDone { token: t, .. } if t == token));

    // RELEASE never deletes a completion marker, whoever asks.
    assert!(!flag(con, &[b"DEDUP.RELEASE", b"evt", &me]));
    assert!(!flag(con, &[b"DEDUP.RELEASE", b"evt", &them]));
    assert!(matches!(status(con, b"evt"), Reply::StatusDone { .. }));
    // Nor can a completed entry be extended or fenced.
    assert!(!flag(con, &[b"DEDUP.EXTEND", b"evt", b"1000", &me]));
    assert!(!flag(con, &[b"DEDUP.FENCE", b"evt", b"99999", &me]));

    // A released claim frees the key; the next claim gets a larger token.
    let first = token_of(&claim(con, b"evt-2", 5_000, &me, None));
    assert!(!flag(con, &[b"DEDUP.RELEASE", b"evt-2", &them]));
    assert!(flag(con, &[b"DEDUP.RELEASE", b"evt-2", &me]));
    assert_eq!(status(con, b"evt-2"), Reply::Free);
    assert!(!flag(con, &[b"DEDUP.RELEASE", b"evt-2", &me]));
    let second = token_of(&claim(con, b"evt-2", 5_000, &them, None));
    assert!(second > first);

    // DONE without a result replies nil.
    assert!(flag(con, &[b"DEDUP.COMPLETE", b"evt-2", b"5000", &them]));
    assert!(matches!(claim(con, b"evt-2", 10, &me, None), Reply::Done { result: None, .. }));
}

#[test]
fn lifecycle_over_resp2_and_resp3() {
    let server = RedisServer::start();
    lifecycle(&mut server.connection());
    redis::cmd("FLUSHALL").exec(&mut server.connection()).unwrap();
    let mut resp3 = server.connection_resp3();
    lifecycle(&mut resp3);
}

#[test]
fn replies_have_the_same_shape_on_resp2_and_resp3() {
    let server = RedisServer::start();
    let (mut two, mut three) = (server.connection(), server.connection_resp3());
    let me = owner("me");
    ok(&mut two, &[b"DEDUP.CLAIM", b"k", b"60000", &me]);
    ok(&mut two, &[b"DEDUP.CLAIM", b"d", b"60000", &me]);
    ok(&mut two, &[b"DEDUP.COMPLETE", b"d", b"60000", &me]);
    // (call, whether element 1 of the reply is a remaining time, which moves between the calls)
    let calls: [(&[&[u8]], bool); 5] = [
        (&[b"DEDUP.CLAIM", b"k", b"60000", &me], false),
        (&[b"DEDUP.CLAIM", b"d", b"60000", b"s3cret-x"], true),
        (&[b"DEDUP.STATUS", b"nothing"], false),
        (&[b"DEDUP.EXTEND", b"k", b"60000", &me], false),
        (&[b"DEDUP.FENCE", b"k", b"1", &me], false),
    ];
    let mask = |v: Value, pttl: bool| match v {
        Value::Array(mut items) if pttl => {
            items[1] = Value::Int(0);
            Value::Array(items)
        }
        other => other,
    };
    for (args, pttl) in calls {
        let (a, b) = (ok(&mut two, args), ok(&mut three, args));
        assert_eq!(mask(a, pttl), mask(b, pttl), "{:?}", String::from_utf8_lossy(args[0]));
    }
    // Status words are simple strings, numbers integers, a missing result nil.
    let v = items(ok(&mut three, &[b"DEDUP.CLAIM", b"d", b"60000", b"s3cret-y"]));
    assert!(matches!(&v[0], Value::SimpleString(s) if s == "DONE"));
    assert!(matches!(v[1], Value::Int(_)));
    assert_eq!(v[2], Value::Nil);
}

#[test]
fn mismatch_needs_a_fingerprint_on_both_sides() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let (me, them) = (owner("me"), owner("them"));
    claim(con, b"a", 10_000, &me, Some(b"body-1"));
    assert!(matches!(claim(con, b"a", 10_000, &them, Some(b"body-2")), Reply::Mismatch { .. }));
    assert!(matches!(claim(con, b"a", 10_000, &me, Some(b"body-2")), Reply::Mismatch { .. }));
    assert!(matches!(claim(con, b"a", 10_000, &them, None), Reply::Held { .. }));
    assert!(matches!(claim(con, b"a", 10_000, &them, Some(b"body-1")), Reply::Held { .. }));

    claim(con, b"b", 10_000, &me, None);
    assert!(matches!(claim(con, b"b", 10_000, &them, Some(b"body-2")), Reply::Held { .. }));

    assert!(flag(con, &[b"DEDUP.COMPLETE", b"a", b"10000", &me, b"RESULT", b"r"]));
    assert!(matches!(claim(con, b"a", 10_000, &them, Some(b"body-2")), Reply::Mismatch { .. }));
    assert!(matches!(claim(con, b"a", 10_000, &them, Some(b"body-1")), Reply::Done { .. }));
    assert_eq!(info_field(con, "dedup_claims_mismatch"), 3);
}

#[test]
fn entries_expire_through_redis_key_expiry() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let (me, them) = (owner("me"), owner("them"));
    let first = token_of(&claim(con, b"short", 50, &me, None));
    claim(con, b"done", 60_000, &me, None);
    assert!(flag(con, &[b"DEDUP.COMPLETE", b"done", b"50", &me]));
    std::thread::sleep(std::time::Duration::from_millis(150));
    assert_eq!(status(con, b"short"), Reply::Free);
    assert_eq!(status(con, b"done"), Reply::Free);
    assert!(!flag(con, &[b"DEDUP.EXTEND", b"short", b"1000", &me]), "an expired lease cannot be extended");
    assert!(!flag(con, &[b"DEDUP.COMPLETE", b"short", b"1000", &me]), "nor completed");
    let second = token_of(&claim(con, b"short", 1_000, &them, None));
    assert!(second > first);
    let exists: i64 = redis::cmd("EXISTS").arg("done").query(con).unwrap();
    assert_eq!(exists, 0, "Redis reclaimed the expired marker");
}

#[test]
fn every_entry_has_a_ttl() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let me = owner("me");
    claim(con, b"c", 7_000, &me, None);
    claim(con, b"d", 7_000, &me, None);
    flag(con, &[b"DEDUP.COMPLETE", b"d", b"9000", &me]);
    flag(con, &[b"DEDUP.FENCE", b"c", b"1000", &me]);
    for key in ["c", "d"] {
        let pttl: i64 = redis::cmd("PTTL").arg(key).query(con).unwrap();
        assert!(pttl > 0, "{key} has no TTL");
    }
}

#[test]
fn fence_raises_entry_and_node_counter() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let (me, them) = (owner("me"), owner("them"));
    let t = token_of(&claim(con, b"f", 10_000, &me, None));
    assert!(!flag(con, &[b"DEDUP.FENCE", b"f", b"500", &them]));
    assert_eq!(node_token(con), t, "a refused FENCE moves nothing");
    assert!(flag(con, &[b"DEDUP.FENCE", b"f", b"500", &me]));
    assert_eq!(token_of(&status(con, b"f")), 500);
    assert_eq!(node_token(con), 500);
    // Never lowered.
    assert!(flag(con, &[b"DEDUP.FENCE", b"f", b"3", &me]));
    assert_eq!(token_of(&status(con, b"f")), 500);
    // The same owner claiming again keeps the fenced token.
    assert_eq!(token_of(&claim(con, b"f", 10_000, &me, None)), 500);
    assert_eq!(token_of(&claim(con, b"g", 10_000, &me, None)), 501);
    assert!(!flag(con, &[b"DEDUP.FENCE", b"missing", b"9000", &me]));
    assert_eq!(node_token(con), 501);
}

#[test]
fn binary_safe_keys_owners_fingerprints_and_results() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let key = b"k\0\xff\r\n";
    let me = [SECRET, b"\0\xfe\n"].concat();
    let them = [SECRET, b"\0\xfd"].concat();
    let fp = b"\0\0fp\xff";
    let result = b"\0res\r\nult\xff\0";
    let token = token_of(&claim(con, key, 10_000, &me, Some(fp)));
    assert!(matches!(claim(con, key, 10_000, &them, Some(fp)), Reply::Held { .. }));
    assert!(matches!(claim(con, key, 10_000, &them, Some(b"\0\0fp\xfe")), Reply::Mismatch { .. }));
    assert!(!flag(con, &[b"DEDUP.RELEASE", key, &me[..me.len() - 1]]), "owners compare as bytes");
    assert!(flag(con, &[b"DEDUP.COMPLETE", key, b"10000", &me, b"RESULT", result]));
    match claim(con, key, 10_000, &them, Some(fp)) {
        Reply::Done { result: Some(r), .. } => assert_eq!(r, result),
        other => panic!("{other:?}"),
    }
    assert!(matches!(status(con, key), Reply::StatusDone { token: t, .. } if t == token));
}

#[test]
fn wrong_type_is_refused_and_the_key_untouched() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    redis::cmd("SET").arg("str").arg("value").exec(con).unwrap();
    redis::cmd("PEXPIRE").arg("str").arg("100000").exec(con).unwrap();
    let before = snapshot(con, b"str");
    let me = owner("me");
    let calls: [&[&[u8]]; 7] = [
        &[b"DEDUP.CLAIM", b"str", b"1000", &me],
        &[b"DEDUP.EXTEND", b"str", b"1000", &me],
        &[b"DEDUP.RELEASE", b"str", &me],
        &[b"DEDUP.COMPLETE", b"str", b"1000", &me],
        &[b"DEDUP.FENCE", b"str", b"5", &me],
        &[b"DEDUP.STATUS", b"str"],
        &[b"DEDUP.PUT", b"str", b"5", &me, b"DONE"],
    ];
    for args in calls {
        let e = err(con, args);
        assert!(e.starts_with("WRONGTYPE"), "{e}");
    }
    assert_eq!(snapshot(con, b"str"), before);
    assert_eq!(node_token(con), 0, "no token was spent");
}

#[test]
fn bad_calls_reply_an_error_code_and_change_nothing() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let me = owner("me");
    claim(con, b"k", 60_000, &me, Some(b"fp"));
    flag(con, &[b"DEDUP.FENCE", b"k", b"77", &me]);
    claim(con, b"d", 60_000, &me, None);
    flag(con, &[b"DEDUP.COMPLETE", b"d", b"60000", &me, b"RESULT", b"first"]);
    let state = |con: &mut Connection| (snapshot(con, b"k"), snapshot(con, b"d"), node_token(con));
    let before = state(con);

    let long_owner = [SECRET, &[b'o'; 60][..]].concat();
    let long_fp = vec![b'f'; 65];
    let big_result = vec![b'r'; 64 * 1024 + 1];
    let over_max = (30i64 * 24 * 3600 * 1000 + 1).to_string();
    let cases: Vec<(Vec<&[u8]>, &str)> = vec![
        (vec![b"DEDUP.CLAIM"], "ERR wrong number of arguments"),
        (vec![b"DEDUP.CLAIM", b"k"], "ERR wrong number of arguments"),
        (vec![b"DEDUP.CLAIM", b"k", b"100"], "ERR wrong number of arguments"),
        (vec![b"DEDUP.CLAIM", b"new", b"0", &me], "ERR ttl-ms must be an integer from 1 to"),
        (vec![b"DEDUP.CLAIM", b"new", b"-1", &me], "ERR ttl-ms must be an integer from 1 to"),
        (vec![b"DEDUP.CLAIM", b"new", b"1.5", &me], "ERR ttl-ms must be an integer from 1 to"),
        (vec![b"DEDUP.CLAIM", b"new", b"abc", &me], "ERR ttl-ms must be an integer from 1 to"),
        (vec![b"DEDUP.CLAIM", b"new", over_max.as_bytes(), &me], "ERR ttl-ms must be an integer from 1 to"),
        (vec![b"DEDUP.CLAIM", b"new", b"100", b""], "ERR owner must be 1 to 64 bytes"),
        (vec![b"DEDUP.CLAIM", b"new", b"100", &long_owner], "ERR owner must be 1 to 64 bytes"),
        (vec![b"DEDUP.CLAIM", b"new", b"100", &me, b"FP"], "ERR syntax error"),
        (vec![b"DEDUP.CLAIM", b"new", b"100", &me, b"NX", b"1"], "ERR syntax error"),
        (vec![b"DEDUP.CLAIM", b"new", b"100", &me, b"FP", b"a", b"FP", b"a"], "ERR syntax error"),
        (vec![b"DEDUP.CLAIM", b"new", b"100", &me, b"FP", &long_fp], "ERR fingerprint must be 1 to 64 bytes"),
        (vec![b"DEDUP.CLAIM", b"k", b"100", &me, b"FP", b""], "ERR fingerprint must be 1 to 64 bytes"),
        (vec![b"DEDUP.EXTEND", b"k", b"100"], "ERR wrong number of arguments"),
        (vec![b"DEDUP.EXTEND", b"k", b"100", &me, b"x"], "ERR wrong number of arguments"),
        (vec![b"DEDUP.EXTEND", b"k", b"0", &me], "ERR ttl-ms must be an integer"),
        (vec![b"DEDUP.EXTEND", b"k", b"100", b""], "ERR owner must be"),
        (vec![b"DEDUP.RELEASE", b"k"], "ERR wrong number of arguments"),
        (vec![b"DEDUP.RELEASE", b"k", &me, b"x"], "ERR wrong number of arguments"),
        (vec![b"DEDUP.RELEASE", b"k", &long_owner], "ERR owner must be"),
        (vec![b"DEDUP.COMPLETE", b"k", b"100"], "ERR wrong number of arguments"),
        (vec![b"DEDUP.COMPLETE", b"k", b"0", &me], "ERR retention-ms must be an integer"),
        (vec![b"DEDUP.COMPLETE", b"k", over_max.as_bytes(), &me], "ERR retention-ms must be an integer"),
        (vec![b"DEDUP.COMPLETE", b"k", b"100", &me, b"RESULT"], "ERR syntax error"),
        (vec![b"DEDUP.COMPLETE", b"k", b"100", &me, b"FP", b"x"], "ERR syntax error"),
        (vec![b"DEDUP.COMPLETE", b"k", b"100", &me, b"RESULT", &big_result], "ERR result is larger than dedup.max-result-bytes"),
        (vec![b"DEDUP.FENCE", b"k", b"5"], "ERR wrong number of arguments"),
        (vec![b"DEDUP.FENCE", b"k", b"-5", &me], "ERR token must be an integer"),
        (vec![b"DEDUP.FENCE", b"k", b"9223372036854775808", &me], "ERR token must be an integer"),
        (vec![b"DEDUP.FENCE", b"k", b"x", &me], "ERR token must be an integer"),
        (vec![b"DEDUP.STATUS"], "ERR wrong number of arguments"),
        (vec![b"DEDUP.STATUS", b"k", b"extra"], "ERR wrong number of arguments"),
        (vec![b"DEDUP.PUT", b"k", b"5", &me], "ERR wrong number of arguments"),
        (vec![b"DEDUP.PUT", b"k", b"5", &me, b"FREE"], "ERR phase must be CLAIMED or DONE"),
        (vec![b"DEDUP.PUT", b"k", b"5", &me, b"DONE", b"PXAT", b"-3"], "ERR PXAT must be a positive Unix time in milliseconds"),
    ];
    for (args, want) in cases {
        let e = err(con, &args);
        assert!(e.starts_with(want), "{:?}: got {e:?}, want {want:?}", String::from_utf8_lossy(args[0]));
        assert_eq!(state(con), before, "{:?} changed state", String::from_utf8_lossy(args[0]));
    }
    assert_eq!(status(con, b"new"), Reply::Free);
}

#[test]
fn config_bounds_ttls_and_results_at_load_and_at_run_time() {
    let server = RedisServer::config().module_arg("max-ttl-ms", "5000").module_arg("max-result-bytes", "4").start();
    let con = &mut server.connection();
    let me = owner("me");
    let get: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("dedup.max-ttl-ms").query(con).unwrap();
    assert_eq!(get, ["dedup.max-ttl-ms", "5000"]);
    assert!(err(con, &[b"DEDUP.CLAIM", b"k", b"5001", &me]).contains("from 1 to 5000"));
    claim(con, b"k", 5000, &me, None);
    assert!(err(con, &[b"DEDUP.COMPLETE", b"k", b"100", &me, b"RESULT", b"12345"]).contains("(4 bytes)"));
    redis::cmd("CONFIG").arg("SET").arg("dedup.max-ttl-ms").arg("60000").exec(con).unwrap();
    redis::cmd("CONFIG").arg("SET").arg("dedup.max-result-bytes").arg("10").exec(con).unwrap();
    assert!(flag(con, &[b"DEDUP.EXTEND", b"k", b"60000", &me]));
    assert!(flag(con, &[b"DEDUP.COMPLETE", b"k", b"60000", &me, b"RESULT", b"12345"]));
    assert!(redis::cmd("CONFIG").arg("SET").arg("dedup.max-ttl-ms").arg("0").exec(con).is_err());
    assert_eq!(info_field(con, "dedup_max_ttl_ms"), 60_000);
}

#[test]
fn info_counts_outcomes_and_shows_the_token() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let (me, them) = (owner("me"), owner("them"));
    claim(con, b"a", 10_000, &me, Some(b"x"));
    claim(con, b"a", 10_000, &them, None);
    claim(con, b"a", 10_000, &them, Some(b"y"));
    flag(con, &[b"DEDUP.EXTEND", b"a", b"10000", &me]);
    flag(con, &[b"DEDUP.EXTEND", b"a", b"10000", &them]);
    flag(con, &[b"DEDUP.FENCE", b"a", b"9", &me]);
    flag(con, &[b"DEDUP.COMPLETE", b"a", b"10000", &me]);
    claim(con, b"a", 10_000, &them, None);
    claim(con, b"b", 10_000, &me, None);
    flag(con, &[b"DEDUP.RELEASE", b"b", &me]);
    flag(con, &[b"DEDUP.RELEASE", b"b", &me]);
    let expected = [
        ("dedup_claims_claimed", 2),
        ("dedup_claims_held", 1),
        ("dedup_claims_mismatch", 1),
        ("dedup_claims_done", 1),
        ("dedup_extends_ok", 1),
        ("dedup_extends_rejected", 1),
        ("dedup_fences_ok", 1),
        ("dedup_completes_ok", 1),
        ("dedup_releases_ok", 1),
        ("dedup_releases_rejected", 1),
        ("dedup_token", 10),
    ];
    for (field, want) in expected {
        assert_eq!(info_field(con, field), want, "{field}");
    }
    let info: String = redis::cmd("INFO").arg("everything").query(con).unwrap();
    assert!(info.contains("# dedup"));
    assert!(!info.contains("s3cret"), "INFO shows an owner");
}

#[test]
fn owners_never_reach_slowlog_or_monitor_and_logs() {
    let server = RedisServer::config().setting("slowlog-log-slower-than", "0").start();
    let con = &mut server.connection();
    let me = owner("me");
    claim(con, b"a", 10_000, &me, None);
    flag(con, &[b"DEDUP.EXTEND", b"a", b"10000", &me]);
    flag(con, &[b"DEDUP.FENCE", b"a", b"3", &me]);
    flag(con, &[b"DEDUP.COMPLETE", b"a", b"10000", &me]);
    flag(con, &[b"DEDUP.RELEASE", b"a", &me]);
    ok(con, &[b"DEDUP.PUT", b"b", b"4", &me, b"CLAIMED", b"PXAT", b"99999999999999"]);
    let slowlog: Value = redis::cmd("SLOWLOG").arg("GET").arg("100").query(con).unwrap();
    let text = format!("{slowlog:?}");
    assert!(text.contains("DEDUP.CLAIM") || text.contains("dedup.claim"), "slowlog recorded the calls");
    assert!(!text.contains("s3cret"), "SLOWLOG shows an owner: {text}");
    let log = std::fs::read_to_string(server.dir().join("server.log")).unwrap();
    assert!(log.contains("redis-dedup"), "the module logs one line at load");
    assert!(!log.contains("s3cret"));
}

#[test]
fn copy_dump_restore_memory_usage_and_type() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let (me, them) = (owner("me"), owner("them"));
    let token = token_of(&claim(con, b"src", 60_000, &me, Some(b"fp")));
    flag(con, &[b"DEDUP.COMPLETE", b"src", b"60000", &me, b"RESULT", b"r1"]);

    let copied: i64 = redis::cmd("COPY").arg("src").arg("dst").query(con).unwrap();
    assert_eq!(copied, 1);
    assert!(matches!(status(con, b"dst"), Reply::StatusDone { token: t, .. } if t == token));
    assert!(matches!(claim(con, b"dst", 10, &them, Some(b"fp")), Reply::Done { result: Some(r), .. } if r == b"r1"));

    let kind: String = redis::cmd("TYPE").arg("src").query(con).unwrap();
    assert_eq!(kind, "dedup-ent");
    let usage: i64 = redis::cmd("MEMORY").arg("USAGE").arg("src").query(con).unwrap();
    assert!(usage > 0);

    let dump: Vec<u8> = redis::cmd("DUMP").arg("src").query(con).unwrap();
    redis::cmd("RESTORE").arg("restored").arg(0).arg(&dump).exec(con).unwrap();
    assert!(matches!(claim(con, b"restored", 10, &them, Some(b"fp")), Reply::Done { result: Some(r), .. } if r == b"r1"));
    // A restored entry has no TTL unless RESTORE gives one; status shows -1 as PTTL does.
    assert!(matches!(status(con, b"restored"), Reply::StatusDone { pttl: -1, .. }));

    // Corrupt payloads are refused and load nothing.
    let mut flipped = dump.clone();
    flipped[3] ^= 0x40;
    assert!(redis::cmd("RESTORE").arg("bad").arg(0).arg(&flipped).exec(con).is_err());
    assert!(redis::cmd("RESTORE").arg("bad").arg(0).arg(&dump[..dump.len() - 4]).exec(con).is_err());
    let exists: i64 = redis::cmd("EXISTS").arg("bad").query(con).unwrap();
    assert_eq!(exists, 0);
}

#[test]
fn put_writes_an_entry_as_given() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let me = owner("me");
    let far = "99999999999999";
    ok(con, &[b"DEDUP.PUT", b"p", b"40", &me, b"CLAIMED", b"PXAT", far.as_bytes(), b"COUNTER", b"90", b"FP", b"f"]);
    assert!(matches!(status(con, b"p"), Reply::StatusClaimed { token: 40, .. }));
    assert_eq!(node_token(con), 90);
    assert!(matches!(claim(con, b"p", 100, &owner("x"), Some(b"g")), Reply::Mismatch { .. }));
    assert!(flag(con, &[b"DEDUP.COMPLETE", b"p", b"1000", &me]));
    assert_eq!(token_of(&claim(con, b"q", 100, &me, None)), 91);
}

#[test]
fn command_metadata_routes_by_key_and_flags_writes() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let expect = [
        ("dedup.claim", vec!["write", "denyoom", "fast"]),
        ("dedup.extend", vec!["write", "fast"]),
        ("dedup.release", vec!["write", "fast"]),
        ("dedup.complete", vec!["write", "denyoom", "fast"]),
        ("dedup.fence", vec!["write", "fast"]),
        ("dedup.status", vec!["readonly", "fast"]),
    ];
    for (name, flags) in expect {
        let info = items(redis::cmd("COMMAND").arg("INFO").arg(name).query::<Value>(con).unwrap());
        let cmd = items(info.into_iter().next().unwrap());
        let got: Vec<String> = items(cmd[2].clone()).iter().map(word).collect();
        for f in &flags {
            assert!(got.contains(&f.to_string()), "{name} lacks {f}: {got:?}");
        }
        assert_eq!((int(&cmd[3]), int(&cmd[4]), int(&cmd[5])), (1, 1, 1), "{name} key positions");
        // A call of the right length: the key, then numbers/owners as the command wants.
        let extra: &[&str] = match name {
            "dedup.release" => &["s3cret"],
            "dedup.status" => &[],
            _ => &["100", "s3cret"],
        };
        let keys: Vec<String> = redis::cmd("COMMAND")
            .arg("GETKEYS")
            .arg(name)
            .arg("the-key")
            .arg(extra)
            .query(con)
            .unwrap();
        assert_eq!(keys, ["the-key"], "{name}");
    }
}
