//! Section 5: instructions per operation under callgrind. Instruction counts do not depend on
//! what else the machine is doing, so they show where time goes when the throughput ratios of
//! section 1 miss a target.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::report::Section;
use crate::scripts::{populate, LUA_CLAIM, LUA_EXTEND, LUA_RELEASE, OWNER};

const REQUESTS: u64 = 20_000;

/// A redis-server running under callgrind, killed on drop.
struct Profiled {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Profiled {
    fn start(dir: &Path, label: &str) -> Result<Profiled> {
        let port = testkit::free_port();
        let out = dir.join(format!("callgrind.{label}"));
        let child = Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(testkit::server_binary())
            .args(["--port", &port.to_string(), "--save", "", "--appendonly", "no", "--dir"])
            .arg(dir)
            .arg("--loadmodule")
            .arg(testkit::module_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("run valgrind (apt-get install valgrind)")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(mut con) = redis::Client::open(format!("redis://127.0.0.1:{port}/")).and_then(|c| c.get_connection()) {
                if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                    return Ok(Profiled { child, port, out });
                }
            }
            sleep(Duration::from_millis(200));
        }
        bail!("redis-server under valgrind did not start")
    }

    fn connection(&self) -> Result<redis::Connection> {
        Ok(redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?.get_connection()?)
    }

    fn control(&self, flag: &str) -> Result<()> {
        let status = Command::new("callgrind_control").arg(flag).arg(self.child.id().to_string()).stdout(Stdio::null()).status()?;
        if !status.success() {
            bail!("callgrind_control {flag} failed");
        }
        Ok(())
    }
}

impl Drop for Profiled {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Total instructions in a callgrind dump, and the inclusive count of one function if asked.
fn instructions(dump: &Path, function: Option<&str>) -> Result<(u64, Option<u64>)> {
    let out = Command::new("callgrind_annotate").arg("--inclusive=yes").arg(dump).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let count = |line: &str| line.split_whitespace().next().and_then(|n| n.replace(',', "").parse::<u64>().ok());
    let total = text.lines().find(|l| l.contains("PROGRAM TOTALS")).and_then(count).context("no totals")?;
    let part = function.and_then(|f| text.lines().find(|l| l.contains(&format!(":{f} "))).and_then(count));
    Ok((total, part))
}

struct Case {
    label: &'static str,
    /// Fill `key:0..` with dedup claims (true) or strings (false) first.
    populate: Option<bool>,
    command: Vec<String>,
}

pub fn run() -> Result<Section> {
    // Removed with its callgrind dumps when the section is done.
    let tmp = tempfile::Builder::new().prefix("dedup-bench-profile").tempdir()?;
    let dir = tmp.path().to_path_buf();
    let mut section = Section::new(
        "5. Profile: instructions per operation",
        format!(
            "One redis-server under valgrind's callgrind per row; {REQUESTS} requests (redis-benchmark, 10 clients, \
             P=16) counted between `callgrind_control -z` and `-d`, so server start-up is excluded. The count \
             includes reading the request and writing the reply. `RM_Replicate` is the module's share spent \
             propagating the effect (`DEDUP.PUT ... PXAT`, `PEXPIREAT` or `DEL`)."
        ),
        &["operation", "instructions per op", "of which RM_Replicate"],
    );
    // EVALSHA names a script by the SHA1 of its source, which redis-rs computes locally; each
    // server below loads the scripts before it is measured.
    let sha = |source: &str| redis::Script::new(source).get_hash().to_string();
    let (claim_sha, release_sha, extend_sha) = (sha(LUA_CLAIM), sha(LUA_RELEASE), sha(LUA_EXTEND));
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let key = "key:__rand_int__";
    let cases = [
        Case { label: "SET NX PX (new key)", populate: None, command: owned(&["SET", key, OWNER, "NX", "PX", "30000"]) },
        Case { label: "DEDUP.CLAIM (new key)", populate: None, command: owned(&["DEDUP.CLAIM", key, "30000", OWNER]) },
        Case { label: "Lua claim (new key)", populate: None, command: owned(&["EVALSHA", &claim_sha, "1", key, OWNER, "30000"]) },
        Case { label: "DEDUP.EXTEND (own key)", populate: Some(true), command: owned(&["DEDUP.EXTEND", key, "30000", OWNER]) },
        Case { label: "Lua compare-and-pexpire (own key)", populate: Some(false), command: owned(&["EVALSHA", &extend_sha, "1", key, OWNER, "30000"]) },
        Case { label: "DEDUP.RELEASE (own key)", populate: Some(true), command: owned(&["DEDUP.RELEASE", key, OWNER]) },
        Case { label: "Lua compare-and-delete (own key)", populate: Some(false), command: owned(&["EVALSHA", &release_sha, "1", key, OWNER]) },
    ];
    for case in cases {
        let server = Profiled::start(&dir, &case.label.replace(|c: char| !c.is_ascii_alphanumeric(), "_"))?;
        let mut con = server.connection()?;
        for source in [LUA_CLAIM, LUA_RELEASE, LUA_EXTEND] {
            redis::cmd("SCRIPT").arg("LOAD").arg(source).exec(&mut con)?;
        }
        // Own-key rows draw from as many keys as requests, all filled first.
        let space = match case.populate {
            Some(dedup) => {
                populate(&mut con, REQUESTS, dedup)?;
                REQUESTS
            }
            None => 100_000_000,
        };
        server.control("-z")?;
        let args: Vec<&str> = case.command.iter().map(String::as_str).collect();
        crate::scripts::redis_benchmark(server.port, 10, 16, REQUESTS, space, &args)?;
        server.control("-d")?;
        let dump = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().starts_with(&server.out.to_string_lossy().to_string()) && p != &server.out)
            .max()
            .context("callgrind dump")?;
        let (total, replicate) = instructions(&dump, Some("RM_Replicate"))?;
        section.row(vec![
            case.label.to_string(),
            format!("{}", total / REQUESTS),
            replicate.map_or("–".to_string(), |r| format!("{}", r / REQUESTS)),
        ]);
    }
    Ok(section)
}
