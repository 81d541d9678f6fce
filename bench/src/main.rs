//! `make bench`: measures the module and the quorum client against what people use today and
//! writes BENCHMARKS.md plus benchmarks.json. Every target is a ratio of two measurements taken
//! side by side in this one run; absolute figures on a shared machine are noise.

mod memory;
mod quorum;
mod report;
mod scale;
mod scripts;

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::Parser;

use report::Report;

#[derive(Parser, Debug)]
#[command(about = "Benchmarks for redis-dedup; writes BENCHMARKS.md and benchmarks.json")]
struct Args {
    /// Where to write the Markdown report.
    #[arg(long, default_value = "BENCHMARKS.md")]
    out: PathBuf,
    /// Where to write the machine-readable report.
    #[arg(long, default_value = "benchmarks.json")]
    json: PathBuf,
    /// Small sizes and short cells: checks that everything runs, in about a minute.
    #[arg(long)]
    quick: bool,
    /// Run only these sections (scripts, quorum, memory, scale); all by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

fn command_line(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let started = Instant::now();
    let mut sections = Vec::new();
    if wanted("scripts") {
        eprintln!("== module against scripts");
        sections.push(tokio::task::spawn_blocking(move || scripts::run(args.quick)).await??);
    }
    if wanted("quorum") {
        eprintln!("== quorum client");
        sections.push(quorum::run(args.quick).await?);
    }
    if wanted("memory") {
        eprintln!("== memory per entry");
        sections.push(tokio::task::spawn_blocking(move || memory::run(args.quick)).await??);
    }
    if wanted("scale") {
        eprintln!("== latency at scale");
        sections.push(tokio::task::spawn_blocking(move || scale::run(args.quick)).await??);
    }
    let secs = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let report = Report {
        machine: format!("{} cores, {}", std::thread::available_parallelism().map_or(0, |n| n.get()), command_line("uname", &["-sm"])),
        server: command_line(&testkit::server_binary().to_string_lossy(), &["--version"]),
        started: format!("unix time {secs}"),
        duration_s: started.elapsed().as_secs_f64(),
        sections,
    };
    std::fs::write(&args.out, report.to_markdown())?;
    std::fs::write(&args.json, serde_json::to_string_pretty(&report)?)?;
    let missed: Vec<_> = report.targets().filter(|t| !t.met).map(|t| t.name.clone()).collect();
    eprintln!("wrote {} and {}; targets missed: {}", args.out.display(), args.json.display(), if missed.is_empty() { "none".to_string() } else { missed.join("; ") });
    Ok(())
}
