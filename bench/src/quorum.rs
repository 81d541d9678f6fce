//! Section 2: the quorum client against a classic Redlock (written here over the same redis-rs
//! connections, with SET NX PX and a Lua release, in sequential and parallel fan-out) and against
//! the `rslock` crate, on 3 and 5 local servers.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use futures_util::future::join_all;
use hdrhistogram::Histogram;
use rand::Rng;
use redis::aio::MultiplexedConnection;
use testkit::RedisServer;

use crate::report::{ms, ops, Section, Target};
use crate::scripts::{LUA_COMPLETE, LUA_RELEASE};

const LEASE: Duration = Duration::from_secs(30);
const RESULT: &[u8] = b"record-00000000000000000000000042";

type OpFuture = Pin<Box<dyn Future<Output = Result<Duration>> + Send>>;
/// One operation on a fresh id; resolves to the time its claim step took.
type Op = Arc<dyn Fn(String) -> OpFuture + Send + Sync>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Workload {
    ClaimComplete,
    ClaimRelease,
}

impl Workload {
    fn label(self) -> &'static str {
        match self {
            Workload::ClaimComplete => "claim+complete",
            Workload::ClaimRelease => "claim+release",
        }
    }
}

struct Measured {
    ops_per_s: f64,
    op_latency: Histogram<u64>,
    claim_latency: Histogram<u64>,
    errors: u64,
}

/// Microseconds from 1 µs to one minute, three significant digits.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Runs `op` from `concurrency` tasks for `duration`, each on its own fresh ids.
async fn drive(op: Op, concurrency: usize, duration: Duration) -> Measured {
    let start = Instant::now();
    let deadline = start + duration;
    let tasks = (0..concurrency).map(|task| {
        let op = Arc::clone(&op);
        tokio::spawn(async move {
            let mut op_latency = latency_histogram();
            let mut claim_latency = latency_histogram();
            let (mut done, mut errors) = (0u64, 0u64);
            let salt: u64 = rand::rng().random();
            while Instant::now() < deadline {
                let id = format!("bench:{salt:x}:{task}:{done}");
                let t = Instant::now();
                match op(id).await {
                    Ok(claim) => {
                        op_latency.saturating_record(t.elapsed().as_micros().max(1) as u64);
                        claim_latency.saturating_record(claim.as_micros().max(1) as u64);
                        done += 1;
                    }
                    Err(_) => errors += 1,
                }
            }
            (done, errors, op_latency, claim_latency)
        })
    });
    let mut total = Measured {
        ops_per_s: 0.0,
        op_latency: latency_histogram(),
        claim_latency: latency_histogram(),
        errors: 0,
    };
    let mut done = 0;
    for result in join_all(tasks).await {
        let (d, e, o, c) = result.expect("bench task");
        done += d;
        total.errors += e;
        total.op_latency.add(o).expect("same bounds");
        total.claim_latency.add(c).expect("same bounds");
    }
    total.ops_per_s = done as f64 / start.elapsed().as_secs_f64();
    total
}

async fn connections(urls: &[String]) -> Result<Vec<MultiplexedConnection>> {
    let mut out = Vec::new();
    for url in urls {
        out.push(redis::Client::open(url.as_str())?.get_multiplexed_async_connection().await?);
    }
    Ok(out)
}

fn owner() -> String {
    format!("{:040x}", rand::rng().random::<u128>())
}

/// The textbook Redlock over plain redis-rs: SET NX PX on every node, count a majority, then the
/// Lua compare-and-delete (or the Lua completion) on every node.
fn classic_redlock(nodes: Vec<MultiplexedConnection>, parallel: bool, workload: Workload) -> Op {
    let nodes = Arc::new(nodes);
    let release = Arc::new(redis::Script::new(LUA_RELEASE));
    let complete = Arc::new(redis::Script::new(LUA_COMPLETE));
    Arc::new(move |id: String| {
        let (nodes, release, complete) = (Arc::clone(&nodes), Arc::clone(&release), Arc::clone(&complete));
        Box::pin(async move {
            let me = owner();
            let quorum = nodes.len() / 2 + 1;
            let started = Instant::now();
            let set = |mut con: MultiplexedConnection| {
                let (id, me) = (id.clone(), me.clone());
                async move {
                    let r: redis::RedisResult<Option<String>> = redis::cmd("SET")
                        .arg(&id)
                        .arg(&me)
                        .arg("NX")
                        .arg("PX")
                        .arg(LEASE.as_millis() as u64)
                        .query_async(&mut con)
                        .await;
                    matches!(r, Ok(Some(_)))
                }
            };
            let won = if parallel {
                join_all(nodes.iter().cloned().map(set)).await.into_iter().filter(|ok| *ok).count()
            } else {
                let mut n = 0;
                for con in nodes.iter().cloned() {
                    n += usize::from(set(con).await);
                }
                n
            };
            let claim = started.elapsed();
            if won < quorum {
                bail!("lost the claim");
            }
            let finish = |mut con: MultiplexedConnection| {
                let (id, me) = (id.clone(), me.clone());
                let (release, complete) = (Arc::clone(&release), Arc::clone(&complete));
                async move {
                    let r: redis::RedisResult<i64> = match workload {
                        Workload::ClaimRelease => release.key(&id).arg(&me).invoke_async(&mut con).await,
                        Workload::ClaimComplete => {
                            complete.key(&id).arg(&me).arg(60_000).arg(RESULT).invoke_async(&mut con).await
                        }
                    };
                    r.is_ok()
                }
            };
            if parallel {
                join_all(nodes.iter().cloned().map(finish)).await;
            } else {
                for con in nodes.iter().cloned() {
                    finish(con).await;
                }
            }
            Ok(claim)
        })
    })
}

fn dedup_client(dedup: Arc<dedup_client::Dedup>, workload: Workload) -> Op {
    Arc::new(move |id: String| {
        let dedup = Arc::clone(&dedup);
        Box::pin(async move {
            let started = Instant::now();
            let claim = dedup.claim(&id).await?;
            let elapsed = started.elapsed();
            let Some(lease) = claim.acquired() else { bail!("not acquired") };
            match workload {
                Workload::ClaimRelease => {
                    lease.release().await;
                }
                Workload::ClaimComplete => {
                    lease.complete(Some(RESULT)).await?;
                }
            }
            Ok(elapsed)
        })
    })
}

fn rslock(manager: Arc<rslock::LockManager>) -> Op {
    Arc::new(move |id: String| {
        let manager = Arc::clone(&manager);
        Box::pin(async move {
            let started = Instant::now();
            let lock = manager.lock(id.as_bytes(), LEASE).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let elapsed = started.elapsed();
            manager.unlock(&lock).await;
            Ok(elapsed)
        })
    })
}

/// One SET NX PX round trip to one server: the floor for any claim.
fn single_set(con: MultiplexedConnection) -> Op {
    Arc::new(move |id: String| {
        let mut con = con.clone();
        Box::pin(async move {
            let started = Instant::now();
            let _: Option<String> = redis::cmd("SET").arg(&id).arg("o").arg("NX").arg("PX").arg(30_000).query_async(&mut con).await?;
            Ok(started.elapsed())
        })
    })
}

fn row(section: &mut Section, nodes: usize, workload: &str, contender: &str, concurrency: usize, m: &Measured) {
    let q = |h: &Histogram<u64>, p: f64| ms(h.value_at_quantile(p) as f64);
    section.row(vec![
        nodes.to_string(),
        workload.to_string(),
        contender.to_string(),
        concurrency.to_string(),
        ops(m.ops_per_s),
        q(&m.op_latency, 0.5),
        q(&m.op_latency, 0.99),
        q(&m.op_latency, 0.999),
        m.errors.to_string(),
    ]);
}

pub async fn run(quick: bool) -> Result<Section> {
    let cell = if quick { Duration::from_millis(700) } else { Duration::from_secs(3) };
    let concurrencies: &[usize] = &[1, 16, 256];
    let mut section = Section::new(
        "2. Quorum client against classic Redlock and rslock",
        format!(
            "Local redis-servers with the module, no persistence. Each cell runs for {:.1} s: N tokio tasks \
             loop over fresh ids, timing each operation (hdrhistogram, µs). Classic Redlock is written in the \
             bench over the same redis-rs multiplexed connections: SET NX PX to every node, then the Lua \
             compare-and-delete (release) or check-overwrite-expire (complete) on every node, sequentially or \
             in parallel. rslock 0.10 has no completion step, so it runs claim+release only. Latencies in ms.",
            cell.as_secs_f64()
        ),
        &["nodes", "workload", "client", "concurrency", "ops/s", "p50", "p99", "p99.9", "errors"],
    );

    // The floor: one SET NX PX round trip to one server, one caller.
    let floor_server = RedisServer::start();
    let floor_con = redis::Client::open(floor_server.url())?.get_multiplexed_async_connection().await?;
    let floor = drive(single_set(floor_con), 1, cell).await;
    let floor_p50 = floor.claim_latency.value_at_quantile(0.5) as f64;
    row(&mut section, 1, "SET NX PX", "one round trip (floor)", 1, &floor);
    drop(floor_server);

    for n in [3usize, 5] {
        let servers: Vec<RedisServer> = (0..n).map(|_| RedisServer::start()).collect();
        let urls: Vec<String> = servers.iter().map(RedisServer::url).collect();
        let dedup = Arc::new(
            dedup_client::Dedup::builder().nodes(urls.clone()).lease(LEASE).connect().await?,
        );
        let classic_nodes = connections(&urls).await?;
        let manager = Arc::new(rslock::LockManager::new(urls.clone()));
        // Warm every connection up before measuring.
        for op in [dedup_client(Arc::clone(&dedup), Workload::ClaimRelease), rslock(Arc::clone(&manager))] {
            op("bench:warmup".to_string()).await?;
        }

        let mut at_256 = (0.0, 0.0);
        for workload in [Workload::ClaimComplete, Workload::ClaimRelease] {
            for &c in concurrencies {
                let mut contenders: Vec<(&str, Op)> = vec![
                    ("dedup-client", dedup_client(Arc::clone(&dedup), workload)),
                    ("classic Redlock, parallel", classic_redlock(classic_nodes.clone(), true, workload)),
                    ("classic Redlock, sequential", classic_redlock(classic_nodes.clone(), false, workload)),
                ];
                if workload == Workload::ClaimRelease {
                    contenders.push(("rslock 0.10", rslock(Arc::clone(&manager))));
                }
                for (name, op) in contenders {
                    let m = drive(op, c, cell).await;
                    row(&mut section, n, workload.label(), name, c, &m);
                    if c == 1 && workload == Workload::ClaimRelease {
                        let p50 = m.claim_latency.value_at_quantile(0.5) as f64;
                        section.notes.push(format!(
                            "{n} nodes, concurrency 1: the claim step of {name} takes p50 {} ms ({:.1}× one SET NX PX \
                             round trip to one server).",
                            ms(p50),
                            p50 / floor_p50.max(1.0)
                        ));
                    }
                    if c == 1 && name == "dedup-client" && workload == Workload::ClaimRelease {
                        let p50 = m.claim_latency.value_at_quantile(0.5) as f64;
                        section.targets.push(Target::at_most(
                            format!("dedup-client claim p50 at concurrency 1, {n} nodes, vs one SET NX PX round trip"),
                            p50 / floor_p50.max(1.0),
                            1.5,
                        ));
                    }
                    if c == 256 && workload == Workload::ClaimRelease {
                        match name {
                            "dedup-client" => at_256.0 = m.ops_per_s,
                            "rslock 0.10" => at_256.1 = m.ops_per_s,
                            _ => {}
                        }
                    }
                }
            }
        }
        section.targets.push(Target::at_least(
            format!("dedup-client vs rslock throughput, claim+release at concurrency 256, {n} nodes"),
            at_256.0 / at_256.1.max(1.0),
            2.0,
        ));
    }
    Ok(section)
}
