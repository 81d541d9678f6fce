//! Section 3: bytes per CLAIMED and per DONE entry, from the INFO used_memory delta over many
//! entries, against `SET key owner PX` with the same sizes.

use anyhow::Result;
use rand::Rng;
use testkit::RedisServer;

use crate::report::{Section, Target};
use crate::scripts::{pipelined, OWNER};

const RESULT: &[u8] = b"record-00000000000000000000000042"; // 32 bytes

#[derive(Clone, Copy)]
enum Shape {
    SetPx,
    SetPxWithResult,
    Claimed,
    Done,
}

impl Shape {
    fn label(self) -> &'static str {
        match self {
            Shape::SetPx => "SET key owner PX",
            Shape::SetPxWithResult => "SET key owner+result PX",
            Shape::Claimed => "DEDUP.CLAIM (CLAIMED entry)",
            Shape::Done => "DEDUP.CLAIM + COMPLETE RESULT (DONE entry)",
        }
    }
}

/// An id like the ones webhook senders use: `evt_` and 32 hex digits, 36 bytes.
fn event_id(rng: &mut impl Rng) -> String {
    format!("evt_{:032x}", rng.random::<u128>())
}

fn used_memory(con: &mut redis::Connection) -> Result<i64> {
    let info: String = redis::cmd("INFO").arg("memory").query(con)?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

fn bytes_per_entry(con: &mut redis::Connection, shape: Shape, n: u64) -> Result<f64> {
    redis::cmd("FLUSHALL").exec(con)?;
    let before = used_memory(con)?;
    let mut rng = rand::rng();
    let owner_and_result = [OWNER.as_bytes(), RESULT].concat();
    pipelined(con, 0..n, |pipe, _| {
        let id = event_id(&mut rng);
        match shape {
            Shape::SetPx => pipe.cmd("SET").arg(&id).arg(OWNER).arg("PX").arg(600_000).ignore(),
            Shape::SetPxWithResult => pipe.cmd("SET").arg(&id).arg(&owner_and_result).arg("PX").arg(600_000).ignore(),
            Shape::Claimed => pipe.cmd("DEDUP.CLAIM").arg(&id).arg(600_000).arg(OWNER).ignore(),
            Shape::Done => pipe
                .cmd("DEDUP.CLAIM")
                .arg(&id)
                .arg(600_000)
                .arg(OWNER)
                .ignore()
                .cmd("DEDUP.COMPLETE")
                .arg(&id)
                .arg(600_000)
                .arg(OWNER)
                .arg("RESULT")
                .arg(RESULT)
                .ignore(),
        };
    })?;
    Ok((used_memory(con)? - before) as f64 / n as f64)
}

pub fn run(quick: bool) -> Result<Section> {
    let n: u64 = if quick { 100_000 } else { 1_000_000 };
    let server = RedisServer::start();
    let mut con = server.connection();
    let mut measured = Vec::new();
    for shape in [Shape::SetPx, Shape::Claimed, Shape::SetPxWithResult, Shape::Done] {
        measured.push((shape, bytes_per_entry(&mut con, shape, n)?));
    }
    let mut section = Section::new(
        "3. Memory per entry",
        format!(
            "{n} entries per shape on an empty server, bytes = INFO used_memory delta / {n}. Ids are \
             `evt_` + 32 hex digits (36 bytes), owners 40 bytes, results 32 bytes, every key with a TTL."
        ),
        &["entry", "bytes per entry"],
    );
    for (shape, bytes) in &measured {
        section.row(vec![shape.label().to_string(), format!("{bytes:.0}")]);
    }
    let (set, claimed, set_result, done) = (measured[0].1, measured[1].1, measured[2].1, measured[3].1);
    section.targets.push(Target::at_most("CLAIMED entry vs SET key owner PX", claimed / set, 1.25));
    section.targets.push(Target::at_most("DONE entry vs SET key owner+result PX", done / set_result, 1.25));
    section.notes.push(
        "Each entry is one heap block (a 16-byte header, then owner, fingerprint and result) behind \
         Redis's own key, expiry and module-value records; the gap to a string is the module-value \
         record Redis adds for every module type."
            .to_string(),
    );
    Ok(section)
}
