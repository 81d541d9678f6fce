//! Section 4: DEDUP.CLAIM latency with 10k, 1M and 5M live entries on one server.

use anyhow::Result;
use testkit::RedisServer;

use crate::report::{Section, Target};
use crate::scripts::{pipelined, redis_benchmark, OWNER};

pub fn run(quick: bool) -> Result<Section> {
    let sizes: &[u64] = if quick { &[10_000, 200_000] } else { &[10_000, 1_000_000, 5_000_000] };
    let requests = if quick { 50_000 } else { 200_000 };
    let server = RedisServer::start();
    let mut con = server.connection();
    let mut section = Section::new(
        "4. Latency at scale",
        format!(
            "One server filled with N live CLAIMED entries, then redis-benchmark: DEDUP.CLAIM on new random \
             ids, 50 clients, P=1, {requests} requests, median of 3 runs. Flat means the p50 and p99 stay \
             within noise as N grows (hash-table lookups, no scans)."
        ),
        &["live entries", "ops/s", "p50 ms", "p99 ms"],
    );
    let mut filled = 0;
    let mut p50s = Vec::new();
    for &n in sizes {
        pipelined(&mut con, filled..n, |pipe, i| {
            pipe.cmd("DEDUP.CLAIM").arg(format!("live:{i}")).arg(3_600_000).arg(OWNER).ignore();
        })?;
        filled = n;
        let mut runs = Vec::new();
        for _ in 0..3 {
            runs.push(redis_benchmark(server.port(), 50, 1, requests, 1_000_000_000, &["DEDUP.CLAIM", "new:__rand_int__", "30000", OWNER])?);
        }
        runs.sort_by(|a, b| a.p50_ms.total_cmp(&b.p50_ms));
        let m = runs[1];
        section.row(vec![n.to_string(), format!("{:.0}", m.rps), format!("{:.3}", m.p50_ms), format!("{:.3}", m.p99_ms)]);
        p50s.push(m.p50_ms);
    }
    let first = p50s[0].max(0.001);
    let last = *p50s.last().unwrap();
    section.targets.push(Target::at_most(
        format!("CLAIM p50 at {} entries vs at {}", sizes.last().unwrap(), sizes[0]),
        last / first,
        1.25,
    ));
    Ok(section)
}
