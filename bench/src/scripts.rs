//! Section 1: DEDUP.* against `SET NX PX` and the Lua scripts people write by hand, on one server,
//! driven by redis-benchmark (50 clients, random keys, P=1 and P=16).

use std::process::Command;

use anyhow::{bail, Context, Result};
use testkit::RedisServer;

use crate::report::{ops, Section, Target};

pub const OWNER: &str = "6f776e65722d6f662d746869732d636c61696d21"; // 40 hex chars
const LEASE_MS: &str = "30000";
const RETENTION_MS: &str = "60000";
const RESULT: &str = "record-00000000000000000000000042"; // 32 bytes

/// The claim people script today: take a free key, renew our own, report the holder's TTL.
pub const LUA_CLAIM: &str = r#"
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {'CLAIMED', ARGV[2]}
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'CLAIMED', ARGV[2]}
end
return {'HELD', redis.call('PTTL', KEYS[1])}
"#;

/// The classic Redlock release: delete only if we still own it.
pub const LUA_RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// Extend only if we still own it.
pub const LUA_EXTEND: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

/// Complete: check the owner, overwrite with a completion marker, set the retention TTL.
pub const LUA_COMPLETE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'done:' .. ARGV[1] .. ':' .. ARGV[3], 'PX', ARGV[2])
  return 1
end
return 0
"#;

/// One redis-benchmark result row.
#[derive(Clone, Copy, Debug)]
pub struct Measured {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Runs redis-benchmark with `--csv` and parses its one result row.
pub fn redis_benchmark(port: u16, clients: u32, pipeline: u32, requests: u64, keyspace: u64, command: &[&str]) -> Result<Measured> {
    let out = Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--csv", "-q"])
        .args(["-c", &clients.to_string(), "-P", &pipeline.to_string(), "-n", &requests.to_string(), "-r", &keyspace.to_string()])
        .args(command)
        .output()
        .context("run redis-benchmark (apt-get install redis-tools)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("redis-benchmark {command:?} failed: {text} {}", String::from_utf8_lossy(&out.stderr));
    }
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    let row = text.lines().find(|l| !l.starts_with("\"test\"") && l.contains(',')).with_context(|| format!("no result in {text}"))?;
    let cells: Vec<f64> = row.split("\",\"").skip(1).map(|c| c.trim_matches('"').parse().unwrap_or(f64::NAN)).collect();
    if cells.len() < 6 {
        bail!("unexpected redis-benchmark output: {row}");
    }
    Ok(Measured { rps: cells[0], p50_ms: cells[3], p99_ms: cells[5] })
}

fn load_script(con: &mut redis::Connection, source: &str) -> Result<String> {
    Ok(redis::cmd("SCRIPT").arg("LOAD").arg(source).query(con)?)
}

/// Sends one command set per index in `range`, pipelined in batches of 10,000 so that filling
/// millions of keys takes seconds and no batch holds much memory.
pub fn pipelined(
    con: &mut redis::Connection,
    range: std::ops::Range<u64>,
    mut add: impl FnMut(&mut redis::Pipeline, u64),
) -> Result<()> {
    let end = range.end;
    for start in range.step_by(10_000) {
        let mut pipe = redis::pipe();
        for i in start..(start + 10_000).min(end) {
            add(&mut pipe, i);
        }
        pipe.exec(con)?;
    }
    Ok(())
}

/// Fills `key:0 .. key:n-1` either with dedup claims or with plain `SET key owner PX` values.
pub fn populate(con: &mut redis::Connection, n: u64, dedup: bool) -> Result<()> {
    redis::cmd("FLUSHALL").exec(con)?;
    pipelined(con, 0..n, |pipe, i| {
        let key = format!("key:{i:012}");
        if dedup {
            pipe.cmd("DEDUP.CLAIM").arg(key).arg(600_000).arg(OWNER).ignore();
        } else {
            pipe.cmd("SET").arg(key).arg(OWNER).arg("PX").arg(600_000).ignore();
        }
    })
}

struct Contender {
    label: String,
    command: Vec<String>,
    /// Populate with dedup claims (`Some(true)`), plain strings (`Some(false)`), or start empty.
    populate: Option<bool>,
}

/// Runs each contender `rounds` times, alternating, and keeps each one's median.
fn compare(server: &RedisServer, contenders: &[Contender], pipeline: u32, requests: u64, keyspace: u64, rounds: usize) -> Result<Vec<Measured>> {
    let mut con = server.connection();
    let mut runs: Vec<Vec<Measured>> = vec![Vec::new(); contenders.len()];
    for _ in 0..rounds {
        for (i, c) in contenders.iter().enumerate() {
            match c.populate {
                Some(dedup) => populate(&mut con, keyspace, dedup)?,
                None => redis::cmd("FLUSHALL").exec(&mut con)?,
            }
            let args: Vec<&str> = c.command.iter().map(String::as_str).collect();
            runs[i].push(redis_benchmark(server.port(), 50, pipeline, requests, keyspace, &args)?);
        }
    }
    Ok(runs
        .into_iter()
        .map(|mut r| {
            r.sort_by(|a, b| a.rps.total_cmp(&b.rps));
            r[r.len() / 2]
        })
        .collect())
}

pub fn run(quick: bool) -> Result<Section> {
    let server = RedisServer::start();
    let mut con = server.connection();
    let claim_sha = load_script(&mut con, LUA_CLAIM)?;
    let release_sha = load_script(&mut con, LUA_RELEASE)?;
    let extend_sha = load_script(&mut con, LUA_EXTEND)?;
    let complete_sha = load_script(&mut con, LUA_COMPLETE)?;
    let key = "key:__rand_int__";
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (rounds, keyspace) = if quick { (1, 20_000) } else { (3, 100_000) };

    // (operation, contenders, targets as (numerator, denominator, bound) by contender index)
    type Group<'a> = (&'a str, Vec<Contender>, Vec<(usize, usize, f64)>);
    let groups: Vec<Group> = vec![
        (
            "claim (free keys)",
            vec![
                Contender { label: "DEDUP.CLAIM".into(), command: owned(&["DEDUP.CLAIM", key, LEASE_MS, OWNER]), populate: None },
                Contender { label: "SET NX PX".into(), command: owned(&["SET", key, OWNER, "NX", "PX", LEASE_MS]), populate: None },
                Contender { label: "Lua claim (EVALSHA)".into(), command: owned(&["EVALSHA", &claim_sha, "1", key, OWNER, LEASE_MS]), populate: None },
            ],
            vec![(0, 1, 0.9), (0, 2, 1.7)],
        ),
        (
            "release (own keys)",
            vec![
                Contender { label: "DEDUP.RELEASE".into(), command: owned(&["DEDUP.RELEASE", key, OWNER]), populate: Some(true) },
                Contender { label: "Lua compare-and-delete".into(), command: owned(&["EVALSHA", &release_sha, "1", key, OWNER]), populate: Some(false) },
            ],
            vec![(0, 1, 1.5)],
        ),
        (
            "extend (own keys)",
            vec![
                Contender { label: "DEDUP.EXTEND".into(), command: owned(&["DEDUP.EXTEND", key, LEASE_MS, OWNER]), populate: Some(true) },
                Contender { label: "Lua compare-and-pexpire".into(), command: owned(&["EVALSHA", &extend_sha, "1", key, OWNER, LEASE_MS]), populate: Some(false) },
            ],
            vec![(0, 1, 1.5)],
        ),
        (
            "complete (own keys)",
            vec![
                Contender { label: "DEDUP.COMPLETE".into(), command: owned(&["DEDUP.COMPLETE", key, RETENTION_MS, OWNER, "RESULT", RESULT]), populate: Some(true) },
                Contender { label: "Lua check-overwrite-expire".into(), command: owned(&["EVALSHA", &complete_sha, "1", key, OWNER, RETENTION_MS, RESULT]), populate: Some(false) },
            ],
            vec![(0, 1, 1.5)],
        ),
    ];

    let mut section = Section::new(
        "1. Module against hand-written scripts (one server)",
        format!(
            "redis-benchmark, 50 clients, each contender run {rounds}× alternating with its rivals, median \
             kept. Claims draw random keys from 10^8 (almost all new ids). Release/extend/complete draw \
             random keys from {keyspace}, a key space filled first with the contender's own claims \
             (dedup entries for DEDUP.*, `SET key owner PX` strings for Lua), so both sides see the same \
             mix of owned keys and already-released ones. One redis-server with the module, no persistence."
        ),
        &["operation", "command", "P", "ops/s", "p50 ms", "p99 ms", "vs first"],
    );
    for pipeline in [1u32, 16] {
        let requests = match (quick, pipeline) {
            (true, 1) => 50_000,
            (true, _) => 200_000,
            (false, 1) => 200_000,
            (false, _) => 1_000_000,
        };
        for (name, contenders, targets) in &groups {
            // Claims measure the common case, a new id: a key space far larger than the requests.
            let space = if contenders[0].populate.is_none() { 100_000_000 } else { keyspace };
            let measured = compare(&server, contenders, pipeline, requests, space, rounds)?;
            for (c, m) in contenders.iter().zip(&measured) {
                section.row(vec![
                    name.to_string(),
                    c.label.clone(),
                    pipeline.to_string(),
                    ops(m.rps),
                    format!("{:.3}", m.p50_ms),
                    format!("{:.3}", m.p99_ms),
                    format!("{:.2}×", m.rps / measured[0].rps),
                ]);
            }
            if pipeline == 16 {
                for (a, b, bound) in targets {
                    let ratio = measured[*a].rps / measured[*b].rps;
                    section.targets.push(Target::at_least(
                        format!("{} vs {} (P=16)", contenders[*a].label, contenders[*b].label),
                        ratio,
                        *bound,
                    ));
                }
            }
        }
    }
    Ok(section)
}
