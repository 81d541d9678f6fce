//! Property-based fuzzing of a real server: random DEDUP.* calls (random arity, numbers, options,
//! binary junk) interleaved with DEL, PEXPIRE, SET, COPY and RESTORE of the same keys. After every
//! call the server must be alive, the reply must be well-formed or an error with a code, and an
//! independent model of the state must agree with the reply and with DEDUP.STATUS.
//!
//! The model below is written from docs/PROTOCOL.md, not from the module's code.
//! `DEDUP_FUZZ_CASES` scales the run (default: 200 cases of 500 calls = 100k calls).

mod common;

use std::collections::HashMap;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use redis::{Connection, Value};
use testkit::RedisServer;

const KEYS: [&[u8]; 4] = [b"k0", b"k1", b"k\0two", b"str"];
const MAX_TTL: i64 = 30 * 24 * 3600 * 1000;
const MAX_RESULT: usize = 64 * 1024;

/// One argument as the fuzzer may send it.
#[derive(Clone, Debug)]
enum Arg {
    Bytes(Vec<u8>),
    Int(i64),
}

impl Arg {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Arg::Bytes(b) => b.clone(),
            Arg::Int(n) => n.to_string().into_bytes(),
        }
    }

    /// The integer Redis would parse: optional minus sign and digits only.
    fn as_int(&self) -> Option<i64> {
        match self {
            Arg::Int(n) => Some(*n),
            Arg::Bytes(b) if b.first() == Some(&b'+') => None,
            Arg::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Dedup { name: &'static str, key: usize, args: Vec<Arg> },
    Del(usize),
    Pexpire(usize, i64),
    SetString(usize),
    Copy(usize, usize),
    DumpRestore(usize, usize),
}

fn number() -> impl Strategy<Value = Arg> {
    prop_oneof![
        4 => (600_000i64..3_600_000).prop_map(Arg::Int),
        1 => Just(Arg::Int(0)),
        1 => (-1_000i64..0).prop_map(Arg::Int),
        1 => Just(Arg::Int(MAX_TTL + 1)),
        1 => Just(Arg::Bytes(b"99999999999999999999999".to_vec())),
        1 => Just(Arg::Bytes(b"12abc".to_vec())),
        1 => Just(Arg::Bytes(b"+5".to_vec())),
        1 => Just(Arg::Bytes(b"".to_vec())),
        // Junk that happens to be an integer would be a tiny, valid TTL that expires mid-run.
        1 => proptest::collection::vec(any::<u8>(), 0..6)
            .prop_filter("junk, not an integer", |b| Arg::Bytes(b.clone()).as_int().is_none())
            .prop_map(Arg::Bytes),
    ]
}

fn token() -> impl Strategy<Value = Arg> {
    prop_oneof![
        4 => (0i64..3_000).prop_map(Arg::Int),
        1 => (-5i64..0).prop_map(Arg::Int),
        1 => Just(Arg::Bytes(b"9223372036854775808".to_vec())),
        1 => Just(Arg::Bytes(b"x".to_vec())),
    ]
}

fn owner_arg() -> impl Strategy<Value = Arg> {
    prop_oneof![
        6 => (0..3usize).prop_map(|i| Arg::Bytes(owner(&format!("o{i}")))),
        1 => Just(Arg::Bytes(Vec::new())),
        1 => Just(Arg::Bytes([SECRET, &[b'x'; 60][..]].concat())),
        1 => Just(Arg::Bytes([SECRET, b"\0\xff"].concat())),
    ]
}

fn option_pair(name: &'static str) -> impl Strategy<Value = Vec<Arg>> {
    let value = prop_oneof![
        4 => prop_oneof![Just(b"v1".to_vec()), Just(b"v\0two".to_vec())],
        1 => Just(Vec::new()),
        1 => Just(vec![b'f'; 65]),
        1 => Just(vec![b'r'; MAX_RESULT + 1]),
    ];
    let option_name = prop_oneof![
        6 => Just(name.as_bytes().to_vec()),
        1 => Just(name.to_lowercase().into_bytes()),
        1 => Just(b"BOGUS".to_vec()),
    ];
    prop_oneof![
        3 => Just(Vec::new()),
        4 => (option_name.clone(), value.clone()).prop_map(|(n, v)| vec![Arg::Bytes(n), Arg::Bytes(v)]),
        1 => option_name.clone().prop_map(|n| vec![Arg::Bytes(n)]),
        1 => (option_name.clone(), value.clone(), option_name, value)
            .prop_map(|(a, b, c, d)| vec![Arg::Bytes(a), Arg::Bytes(b), Arg::Bytes(c), Arg::Bytes(d)]),
    ]
}

/// Drops or adds an argument now and then, for arity errors.
fn mangle_arity(args: Vec<Arg>, roll: u8) -> Vec<Arg> {
    let mut args = args;
    match roll {
        0 if !args.is_empty() => {
            args.pop();
        }
        1 => args.push(Arg::Bytes(b"extra".to_vec())),
        _ => {}
    }
    args
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS.len();
    let roll = 0u8..12;
    prop_oneof![
        6 => (key.clone(), number(), owner_arg(), option_pair("FP"), roll.clone()).prop_map(|(key, n, o, opt, r)| {
            let mut args = vec![n, o];
            args.extend(opt.into_iter());
            Op::Dedup { name: "DEDUP.CLAIM", key, args: mangle_arity(args, r) }
        }),
        2 => (key.clone(), number(), owner_arg(), roll.clone()).prop_map(|(key, n, o, r)| {
            Op::Dedup { name: "DEDUP.EXTEND", key, args: mangle_arity(vec![n, o], r) }
        }),
        2 => (key.clone(), owner_arg(), roll.clone()).prop_map(|(key, o, r)| {
            Op::Dedup { name: "DEDUP.RELEASE", key, args: mangle_arity(vec![o], r) }
        }),
        3 => (key.clone(), number(), owner_arg(), option_pair("RESULT"), roll.clone()).prop_map(|(key, n, o, opt, r)| {
            let mut args = vec![n, o];
            args.extend(opt.into_iter());
            Op::Dedup { name: "DEDUP.COMPLETE", key, args: mangle_arity(args, r) }
        }),
        2 => (key.clone(), token(), owner_arg(), roll.clone()).prop_map(|(key, t, o, r)| {
            Op::Dedup { name: "DEDUP.FENCE", key, args: mangle_arity(vec![t, o], r) }
        }),
        2 => (key.clone(), roll).prop_map(|(key, r)| Op::Dedup { name: "DEDUP.STATUS", key, args: mangle_arity(Vec::new(), r) }),
        1 => key.clone().prop_map(Op::Del),
        1 => (key.clone(), prop_oneof![Just(-1i64), Just(0), 600_000i64..3_600_000]).prop_map(|(k, ms)| Op::Pexpire(k, ms)),
        1 => key.clone().prop_map(Op::SetString),
        1 => (key.clone(), key.clone()).prop_map(|(a, b)| Op::Copy(a, b)),
        1 => (key.clone(), key).prop_map(|(a, b)| Op::DumpRestore(a, b)),
    ]
}

/// The model's view of one key.
#[derive(Clone, Debug, PartialEq)]
enum Slot {
    Entry { done: bool, token: i64, owner: Vec<u8>, fp: Option<Vec<u8>>, result: Option<Vec<u8>>, ttl: Option<i64> },
    Foreign,
}

#[derive(Debug)]
struct Model {
    keys: HashMap<usize, Slot>,
    counter: i64,
}

/// What the model expects a call to answer.
#[derive(Debug, PartialEq)]
enum Expect {
    Error(&'static str),
    Value(Value),
    /// A CLAIM/STATUS reply whose element 1 is a remaining time at most this many ms.
    WithPttl(Value, i64),
}

fn word(w: &str) -> Value {
    Value::SimpleString(w.to_string())
}

fn valid_owner(a: &Arg) -> Option<Vec<u8>> {
    let b = a.bytes();
    (1..=64).contains(&b.len()).then_some(b)
}

fn valid_duration(a: &Arg) -> Option<i64> {
    a.as_int().filter(|n| (1..=MAX_TTL).contains(n))
}

/// Parses `NAME value` pairs; `None` for a syntax error, `Some(Err)` for a bad value.
fn parse_option(rest: &[Arg], name: &str, valid: impl Fn(&[u8]) -> bool) -> Option<Result<Option<Vec<u8>>, ()>> {
    match rest {
        [] => Some(Ok(None)),
        [n, v] if n.bytes().eq_ignore_ascii_case(name.as_bytes()) => {
            let v = v.bytes();
            Some(if valid(&v) { Ok(Some(v)) } else { Err(()) })
        }
        _ => None,
    }
}

impl Model {
    fn pttl_of(slot: &Slot) -> i64 {
        match slot {
            Slot::Entry { ttl: Some(t), .. } => *t,
            _ => -1,
        }
    }

    fn apply(&mut self, op: &Op) -> Expect {
        match op {
            Op::Dedup { name, key, args } => self.dedup(name, *key, args),
            Op::Del(k) => {
                let existed = self.keys.remove(k).is_some();
                Expect::Value(Value::Int(existed as i64))
            }
            Op::Pexpire(k, ms) => match self.keys.get_mut(k) {
                None => Expect::Value(Value::Int(0)),
                Some(_) if *ms <= 0 => {
                    self.keys.remove(k);
                    Expect::Value(Value::Int(1))
                }
                Some(slot) => {
                    if let Slot::Entry { ttl, .. } = slot {
                        *ttl = Some(*ms);
                    }
                    Expect::Value(Value::Int(1))
                }
            },
            Op::SetString(k) => {
                self.keys.insert(*k, Slot::Foreign);
                Expect::Value(Value::Okay)
            }
            Op::Copy(a, b) if a == b => Expect::Error("ERR"),
            Op::Copy(a, b) => match self.keys.get(a).cloned() {
                Some(slot) if !self.keys.contains_key(b) => {
                    self.keys.insert(*b, slot);
                    Expect::Value(Value::Int(1))
                }
                _ => Expect::Value(Value::Int(0)),
            },
            Op::DumpRestore(a, b) => match self.keys.get(a).cloned() {
                // RESTORE ... REPLACE with ttl 0: same value, no expiry.
                Some(mut slot) => {
                    if let Slot::Entry { ttl, token, .. } = &mut slot {
                        *ttl = None;
                        self.counter = self.counter.max(*token);
                    }
                    self.keys.insert(*b, slot);
                    Expect::Value(Value::Okay)
                }
                None => Expect::Value(Value::Nil),
            },
        }
    }

    fn dedup(&mut self, name: &str, key: usize, args: &[Arg]) -> Expect {
        let arity_ok = match name {
            "DEDUP.CLAIM" | "DEDUP.COMPLETE" => args.len() >= 2,
            "DEDUP.EXTEND" | "DEDUP.FENCE" => args.len() == 2,
            "DEDUP.RELEASE" => args.len() == 1,
            _ => args.is_empty(),
        };
        if !arity_ok {
            return Expect::Error("ERR");
        }
        // Argument checks come before the key is looked at.
        let parsed: Option<(Option<i64>, Option<Vec<u8>>, Option<Vec<u8>>)> = match name {
            "DEDUP.CLAIM" => (|| {
                let ttl = valid_duration(&args[0])?;
                let o = valid_owner(&args[1])?;
                let fp = parse_option(&args[2..], "FP", |v| (1..=64).contains(&v.len()))?.ok()?;
                Some((Some(ttl), Some(o), fp))
            })(),
            "DEDUP.COMPLETE" => (|| {
                let ttl = valid_duration(&args[0])?;
                let o = valid_owner(&args[1])?;
                let r = parse_option(&args[2..], "RESULT", |v| v.len() <= MAX_RESULT)?.ok()?;
                Some((Some(ttl), Some(o), r))
            })(),
            "DEDUP.EXTEND" => valid_duration(&args[0]).zip(valid_owner(&args[1])).map(|(t, o)| (Some(t), Some(o), None)),
            "DEDUP.FENCE" => args[0]
                .as_int()
                .filter(|t| *t >= 0)
                .zip(valid_owner(&args[1]))
                .map(|(t, o)| (Some(t), Some(o), None)),
            "DEDUP.RELEASE" => valid_owner(&args[0]).map(|o| (None, Some(o), None)),
            _ => Some((None, None, None)),
        };
        let Some((number, who, extra)) = parsed else { return Expect::Error("ERR") };
        let slot = self.keys.get(&key).cloned();
        if slot == Some(Slot::Foreign) {
            return Expect::Error("WRONGTYPE");
        }
        let (n, who) = (number.unwrap_or(0), who.unwrap_or_default());
        let flag = |b: bool| Expect::Value(Value::Int(b as i64));
        match (name, slot) {
            ("DEDUP.STATUS", None) => Expect::Value(Value::Array(vec![word("FREE")])),
            ("DEDUP.STATUS", Some(s @ Slot::Entry { done, token, .. })) => Expect::WithPttl(
                Value::Array(vec![word(if done { "DONE" } else { "CLAIMED" }), Value::Int(0), Value::Int(token)]),
                Self::pttl_of(&s),
            ),
            ("DEDUP.CLAIM", None) => {
                self.counter += 1;
                let token = self.counter;
                self.keys.insert(key, Slot::Entry { done: false, token, owner: who, fp: extra, result: None, ttl: Some(n) });
                Expect::Value(Value::Array(vec![word("CLAIMED"), Value::Int(token), Value::Int(n)]))
            }
            ("DEDUP.CLAIM", Some(s @ Slot::Entry { .. })) => {
                let Slot::Entry { done, token, owner: o, fp, result, .. } = s.clone() else { unreachable!() };
                let pttl = Self::pttl_of(&s);
                if matches!((&fp, &extra), (Some(a), Some(b)) if a != b) {
                    Expect::WithPttl(Value::Array(vec![word("MISMATCH"), Value::Int(0)]), pttl)
                } else if done {
                    let r = result.map_or(Value::Nil, Value::BulkString);
                    Expect::WithPttl(Value::Array(vec![word("DONE"), Value::Int(0), r]), pttl)
                } else if o == who {
                    if let Some(Slot::Entry { ttl, .. }) = self.keys.get_mut(&key) {
                        *ttl = Some(n);
                    }
                    Expect::Value(Value::Array(vec![word("CLAIMED"), Value::Int(token), Value::Int(n)]))
                } else {
                    Expect::WithPttl(Value::Array(vec![word("HELD"), Value::Int(0)]), pttl)
                }
            }
            (_, None) => flag(false),
            (_, Some(Slot::Foreign)) => unreachable!(),
            (cmd, Some(Slot::Entry { done, owner: o, .. })) => {
                let mine = o == who;
                let entry = self.keys.get_mut(&key).unwrap();
                let Slot::Entry { done: d, token, result, ttl, .. } = entry else { unreachable!() };
                match cmd {
                    "DEDUP.EXTEND" if mine && !done => {
                        *ttl = Some(n);
                        flag(true)
                    }
                    "DEDUP.RELEASE" if mine && !done => {
                        self.keys.remove(&key);
                        flag(true)
                    }
                    "DEDUP.COMPLETE" if mine && !done => {
                        *d = true;
                        *result = extra;
                        *ttl = Some(n);
                        flag(true)
                    }
                    "DEDUP.COMPLETE" if mine && done => flag(true),
                    "DEDUP.FENCE" if mine && !done => {
                        *token = (*token).max(n);
                        self.counter = self.counter.max(n);
                        flag(true)
                    }
                    _ => flag(false),
                }
            }
        }
    }
}

fn send(con: &mut Connection, op: &Op) -> redis::RedisResult<Value> {
    let key = |k: usize| KEYS[k];
    match op {
        Op::Dedup { name, key: k, args } => {
            let mut cmd = redis::cmd(name);
            cmd.arg(key(*k));
            for a in args {
                cmd.arg(a.bytes());
            }
            cmd.query(con)
        }
        Op::Del(k) => redis::cmd("DEL").arg(key(*k)).query(con),
        Op::Pexpire(k, ms) => redis::cmd("PEXPIRE").arg(key(*k)).arg(*ms).query(con),
        Op::SetString(k) => redis::cmd("SET").arg(key(*k)).arg("a string").query(con),
        Op::Copy(a, b) => redis::cmd("COPY").arg(key(*a)).arg(key(*b)).query(con),
        Op::DumpRestore(a, b) => {
            let dump: Value = redis::cmd("DUMP").arg(key(*a)).query(con)?;
            match dump {
                Value::BulkString(payload) => {
                    redis::cmd("RESTORE").arg(key(*b)).arg(0).arg(payload).arg("REPLACE").query(con)
                }
                other => Ok(other),
            }
        }
    }
}

fn check(con: &mut Connection, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let expect = model.apply(op);
    let got = send(con, op);
    match (&expect, &got) {
        (Expect::Error(code), Err(e)) => {
            prop_assert_eq!(e.code(), Some(*code), "{:?}: {}", op, e);
        }
        (Expect::Value(want), Ok(v)) => prop_assert_eq!(v, want, "{:?}", op),
        (Expect::WithPttl(want, max), Ok(Value::Array(items))) => {
            let mut masked = items.clone();
            let Value::Int(pttl) = items[1] else { return Err(TestCaseError::fail(format!("{op:?}: {items:?}"))) };
            masked[1] = Value::Int(0);
            prop_assert_eq!(&Value::Array(masked), want, "{:?}", op);
            if *max < 0 {
                prop_assert_eq!(pttl, -1, "{:?}", op);
            } else {
                prop_assert!(pttl <= *max && pttl > max - 60_000, "{:?}: pttl {} vs {}", op, pttl, max);
            }
        }
        _ => return Err(TestCaseError::fail(format!("{op:?}: expected {expect:?}, got {got:?}"))),
    }
    if let Err(e) = &got {
        let text = e.to_string();
        prop_assert!(!text.contains("s3cret"), "error shows an owner: {}", text);
    }
    // After every call: the server answers, and STATUS of every key agrees with the model
    // (one pipelined round trip for all keys).
    let mut pipe = redis::pipe();
    for key in KEYS {
        pipe.cmd("DEDUP.STATUS").arg(key);
    }
    let statuses: Vec<redis::RedisResult<Value>> = pipe.ignore_errors().query(con).expect("server alive");
    for (k, status) in statuses.into_iter().enumerate() {
        match model.keys.get(&k) {
            Some(Slot::Foreign) => {
                let e = status.unwrap_err();
                prop_assert_eq!(e.code(), Some("WRONGTYPE"));
            }
            None => prop_assert_eq!(status.unwrap(), Value::Array(vec![word("FREE")])),
            Some(Slot::Entry { done, token, .. }) => {
                let Value::Array(items) = status.unwrap() else { return Err(TestCaseError::fail("status")) };
                prop_assert_eq!(&items[0], &word(if *done { "DONE" } else { "CLAIMED" }));
                prop_assert_eq!(&items[2], &Value::Int(*token));
            }
        }
    }
    Ok(())
}

#[test]
fn random_calls_agree_with_an_independent_model() {
    let server = RedisServer::start();
    let cases: u32 = std::env::var("DEDUP_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, max_shrink_iters: 64, ..Config::default() });
    let con = std::cell::RefCell::new(server.connection());
    let calls = std::cell::Cell::new(0u64);
    let result = runner.run(&proptest::collection::vec(op(), 500), |ops| {
        let con = &mut *con.borrow_mut();
        redis::cmd("FLUSHALL").exec(con).unwrap();
        let mut model = Model { keys: HashMap::new(), counter: node_token(con) };
        for op in &ops {
            check(con, &mut model, op)?;
            calls.set(calls.get() + 1);
        }
        prop_assert_eq!(node_token(con), model.counter, "token counter");
        Ok(())
    });
    let (mut con, calls) = (con.into_inner(), calls.get());
    if let Err(e) = result {
        panic!("{e}\nserver log:\n{}", server.log_tail());
    }
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
    eprintln!("fuzz: {calls} calls checked");
    assert!(calls >= u64::from(cases) * 500);
}
