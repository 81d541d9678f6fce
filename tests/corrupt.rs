//! RESTORE of damaged DUMP payloads of dedup entries: an error, no crash, nothing loaded.
//!
//! Redis checks a payload's CRC before the module sees it, so the interesting cases re-sign the
//! damaged payload with a valid CRC: then the module's own loader must refuse what it would never
//! have written (unknown encoding version, short reads, bad phase, oversized owner...).

mod common;

use common::*;
use redis::{Connection, Value};
use testkit::RedisServer;

const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);

/// Replaces the trailing CRC64 (little-endian, over everything before it) with a valid one.
fn resign(payload: &mut [u8]) {
    let body = payload.len() - 8;
    let crc = CRC64.checksum(&payload[..body]);
    payload[body..].copy_from_slice(&crc.to_le_bytes());
}

fn dump(con: &mut Connection, key: &str) -> Vec<u8> {
    redis::cmd("DUMP").arg(key).query(con).unwrap()
}

fn restore(con: &mut Connection, key: &str, payload: &[u8]) -> redis::RedisResult<()> {
    redis::cmd("RESTORE").arg(key).arg(0).arg(payload).arg("REPLACE").exec(con)
}

fn exists(con: &mut Connection, key: &str) -> bool {
    redis::cmd("EXISTS").arg(key).query::<i64>(con).unwrap() == 1
}

fn seeded(con: &mut Connection) -> Vec<u8> {
    let me = owner("me");
    claim(con, b"src", 600_000, &me, Some(b"fingerprint"));
    assert!(flag(con, &[b"DEDUP.COMPLETE", b"src", b"600000", &me, b"RESULT", b"result\0bytes"]));
    dump(con, "src")
}

/// The module type id sits right after the type byte, as a 64-bit length (0x81 + 8 bytes BE); its
/// low 10 bits are the encoding version.
fn with_encoding_version(payload: &[u8], version: u64) -> Vec<u8> {
    assert_eq!(payload[1], 0x81, "64-bit module id marker");
    let mut id = u64::from_be_bytes(payload[2..10].try_into().unwrap());
    id = (id & !0x3ff) | version;
    let mut out = payload.to_vec();
    out[2..10].copy_from_slice(&id.to_be_bytes());
    resign(&mut out);
    out
}

#[test]
fn intact_payload_round_trips() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let mut payload = seeded(con);
    resign(&mut payload);
    restore(con, "copy", &payload).unwrap();
    assert!(matches!(claim(con, b"copy", 10, &owner("x"), Some(b"fingerprint")), Reply::Done { result: Some(r), .. } if r == b"result\0bytes"));
}

#[test]
fn wrong_encoding_versions_are_refused() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let payload = seeded(con);
    for version in [0, 2, 7, 1023] {
        let bad = with_encoding_version(&payload, version);
        assert!(restore(con, "bad", &bad).is_err(), "encver {version} accepted");
        assert!(!exists(con, "bad"));
    }
}

/// RESTORE of a damaged payload: `true` if refused (and nothing was stored), `false` if it loaded
/// an entry, which must then be a well-formed one.
fn refused_or_well_formed(con: &mut Connection, payload: &[u8], what: &str) -> bool {
    match restore(con, "bad", payload) {
        Err(e) => {
            assert!(e.code().is_some(), "{what}: {e}");
            assert!(!exists(con, "bad"), "{what}: refused but stored");
            true
        }
        Ok(()) => {
            let s = status(con, b"bad");
            assert!(matches!(s, Reply::StatusClaimed { .. } | Reply::StatusDone { .. }), "{what}: {s:?}");
            redis::cmd("DEL").arg("bad").exec(con).unwrap();
            false
        }
    }
}

#[test]
fn truncated_payloads_are_refused() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let payload = seeded(con);
    let footer = 10; // 2-byte RDB version + 8-byte CRC
    let mut refused = 0;
    for cut in 1..payload.len() - footer {
        let mut bad = payload[..payload.len() - footer - cut].to_vec();
        bad.extend_from_slice(&payload[payload.len() - footer..]);
        // As damaged on disk or in transit: the CRC no longer matches and Redis refuses it.
        assert!(restore(con, "bad", &bad).is_err(), "unsigned payload cut by {cut} accepted");
        assert!(!exists(con, "bad"));
        // Re-signed, the module's loader sees the short data itself. A cut of a byte or two can
        // still parse, by reading the footer as the tail of the last string: that is a
        // well-formed entry, and it must be one.
        resign(&mut bad);
        refused += usize::from(refused_or_well_formed(con, &bad, &format!("cut by {cut}")));
    }
    assert!(refused >= payload.len() - footer - 3, "only {refused} truncations refused");
    assert!(!server.log_tail().contains("Guru Meditation"), "{}", server.log_tail());
}

#[test]
fn bit_flips_are_refused_or_load_a_well_formed_entry() {
    let server = RedisServer::start();
    let con = &mut server.connection();
    let payload = seeded(con);
    let (mut refused, mut loaded) = (0, 0);
    for byte in 0..payload.len() - 8 {
        for bit in 0..8 {
            let mut bad = payload.clone();
            bad[byte] ^= 1 << bit;
            // Unsigned: Redis's CRC check refuses every flip.
            assert!(restore(con, "bad", &bad).is_err(), "unsigned flip at {byte}:{bit} accepted");
            resign(&mut bad);
            // A flip inside the owner, fingerprint or result bytes is still a valid entry.
            if refused_or_well_formed(con, &bad, &format!("flip at {byte}:{bit}")) {
                refused += 1;
            } else {
                loaded += 1;
            }
        }
    }
    let pong: Value = redis::cmd("PING").query(con).unwrap();
    assert_eq!(pong, Value::SimpleString("PONG".into()));
    assert!(refused > 0 && loaded > 0, "refused {refused}, loaded {loaded}");
    assert!(!server.log_tail().contains("Guru Meditation"), "{}", server.log_tail());
}
