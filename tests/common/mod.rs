//! Helpers shared by the module's integration tests. Every test talks to a real redis-server.
#![allow(dead_code)]

use redis::{Connection, Value};

/// Every owner used in the tests contains this marker, so that any reply that leaks an owner is
/// caught by [`call`].
pub const SECRET: &[u8] = b"s3cret";

pub fn owner(name: &str) -> Vec<u8> {
    [SECRET, b"-", name.as_bytes()].concat()
}

fn leaks_secret(value: &Value) -> bool {
    let contains = |b: &[u8]| b.windows(SECRET.len()).any(|w| w == SECRET);
    match value {
        Value::BulkString(b) => contains(b),
        Value::SimpleString(s) => contains(s.as_bytes()),
        Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. } => {
            items.iter().any(leaks_secret)
        }
        Value::Map(pairs) => pairs.iter().any(|(k, v)| leaks_secret(k) || leaks_secret(v)),
        Value::VerbatimString { text, .. } => contains(text.as_bytes()),
        Value::ServerError(e) => contains(format!("{e:?}").as_bytes()),
        _ => false,
    }
}

/// Runs one command and checks that neither its reply nor its error shows an owner.
pub fn call(con: &mut Connection, args: &[&[u8]]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let reply = cmd.query::<Value>(con);
    match &reply {
        Ok(v) => assert!(!leaks_secret(v), "reply to {:?} shows an owner: {v:?}", args[0]),
        Err(e) => assert!(!e.to_string().contains("s3cret"), "error shows an owner: {e}"),
    }
    reply
}

/// Like [`call`], for calls that must succeed.
pub fn ok(con: &mut Connection, args: &[&[u8]]) -> Value {
    call(con, args).unwrap_or_else(|e| panic!("{:?} failed: {e}", String::from_utf8_lossy(args[0])))
}

/// The error text (code and message) of a call that must fail.
pub fn err(con: &mut Connection, args: &[&[u8]]) -> String {
    match call(con, args) {
        Ok(v) => panic!("expected an error from {:?}, got {v:?}", String::from_utf8_lossy(args[0])),
        Err(e) => {
            let code = e.code().unwrap_or("").to_string();
            let detail = e.detail().unwrap_or("").to_string();
            format!("{code} {detail}").trim().to_string()
        }
    }
}

pub fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

pub fn word(v: &Value) -> String {
    match v {
        Value::SimpleString(s) => s.clone(),
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("expected a word, got {other:?}"),
    }
}

pub fn items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        other => panic!("expected an array, got {other:?}"),
    }
}

/// A decoded DEDUP.CLAIM or DEDUP.STATUS reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Claimed { token: i64, ttl: i64 },
    Held { pttl: i64 },
    Done { pttl: i64, result: Option<Vec<u8>> },
    Mismatch { pttl: i64 },
    Free,
    StatusClaimed { pttl: i64, token: i64 },
    StatusDone { pttl: i64, token: i64 },
}

pub fn claim(con: &mut Connection, key: &[u8], ttl: i64, owner: &[u8], fp: Option<&[u8]>) -> Reply {
    let ttl = ttl.to_string();
    let mut args: Vec<&[u8]> = vec![b"DEDUP.CLAIM", key, ttl.as_bytes(), owner];
    if let Some(fp) = fp {
        args.extend([&b"FP"[..], fp]);
    }
    let v = items(ok(con, &args));
    match word(&v[0]).as_str() {
        "CLAIMED" => {
            assert_eq!(v.len(), 3);
            Reply::Claimed { token: int(&v[1]), ttl: int(&v[2]) }
        }
        "HELD" => {
            assert_eq!(v.len(), 2);
            Reply::Held { pttl: int(&v[1]) }
        }
        "DONE" => {
            assert_eq!(v.len(), 3);
            let result = match &v[2] {
                Value::Nil => None,
                Value::BulkString(b) => Some(b.clone()),
                other => panic!("bad DONE result {other:?}"),
            };
            Reply::Done { pttl: int(&v[1]), result }
        }
        "MISMATCH" => {
            assert_eq!(v.len(), 2);
            Reply::Mismatch { pttl: int(&v[1]) }
        }
        other => panic!("unknown claim reply {other}"),
    }
}

pub fn status(con: &mut Connection, key: &[u8]) -> Reply {
    let v = items(ok(con, &[b"DEDUP.STATUS", key]));
    match word(&v[0]).as_str() {
        "FREE" => {
            assert_eq!(v.len(), 1);
            Reply::Free
        }
        "CLAIMED" => Reply::StatusClaimed { pttl: int(&v[1]), token: int(&v[2]) },
        "DONE" => Reply::StatusDone { pttl: int(&v[1]), token: int(&v[2]) },
        other => panic!("unknown status reply {other}"),
    }
}

pub fn token_of(reply: &Reply) -> i64 {
    match reply {
        Reply::Claimed { token, .. } | Reply::StatusClaimed { token, .. } | Reply::StatusDone { token, .. } => *token,
        other => panic!("no token in {other:?}"),
    }
}

/// `1` or `0` from EXTEND, RELEASE, COMPLETE and FENCE.
pub fn flag(con: &mut Connection, args: &[&[u8]]) -> bool {
    match int(&ok(con, args)) {
        1 => true,
        0 => false,
        n => panic!("expected 0 or 1, got {n}"),
    }
}

/// The server's current token, from INFO dedup.
pub fn node_token(con: &mut Connection) -> i64 {
    info_field(con, "dedup_token")
}

pub fn info_field(con: &mut Connection, field: &str) -> i64 {
    let info: String = redis::cmd("INFO").arg("dedup").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} missing from INFO dedup:\n{info}"))
        .trim()
        .parse()
        .unwrap()
}

/// Everything observable about a key: its serialized value and its absolute expiry.
pub fn snapshot(con: &mut Connection, key: &[u8]) -> (Value, i64) {
    let dump = redis::cmd("DUMP").arg(key).query::<Value>(con).unwrap();
    let at: i64 = redis::cmd("PEXPIRETIME").arg(key).query(con).unwrap();
    (dump, at)
}
