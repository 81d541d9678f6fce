//! `webhook-demo`: replays the duplicate-webhook incident in naive mode and in dedup mode, and
//! prints both side by side. `webhook-demo --help` lists the options.

use std::fs;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use webhook_demo::interrupt::Interrupt;
use webhook_demo::orchestrator::console::Console;
use webhook_demo::orchestrator::{run, Args, Finished};

const FAILED: u8 = 1;
const ERROR: u8 = 2;
/// The shell's convention for "ended by SIGINT".
const INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let args = Args::parse();
    webhook_demo::logging::init(tracing::Level::WARN);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("webhook-demo: start the async runtime: {error}");
            return ExitCode::from(ERROR);
        }
    };
    runtime.block_on(demo(args))
}

async fn demo(args: Args) -> ExitCode {
    let console = Console::default();
    let mut interrupt = match Interrupt::install() {
        Ok(interrupt) => interrupt,
        Err(error) => {
            eprintln!("webhook-demo: install signal handlers: {error}");
            return ExitCode::from(ERROR);
        }
    };
    // On a signal the run is dropped mid-way, and dropping it kills every process it started.
    let finished = tokio::select! {
        finished = run(&args, &console) => finished,
        signal = interrupt.received() => {
            console.note(format!("webhook-demo: {signal}: stopped every process it started"));
            return ExitCode::from(INTERRUPTED);
        }
    };
    match finished.and_then(|finished| report(&args, finished)) {
        Ok(passed) if passed => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(FAILED),
        Err(error) => {
            eprintln!("webhook-demo: {error:#}");
            ExitCode::from(ERROR)
        }
    }
}

/// Prints the table and verdict, writes the JSON if asked, and says whether dedup mode passed.
fn report(args: &Args, finished: Finished) -> anyhow::Result<bool> {
    let Finished { report, kept_files } = finished;
    print!("\n{}", report.render());
    if let Some(dir) = kept_files {
        println!("The run's databases and logs are kept in {}", dir.display());
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&report).context("encode the report")?;
        fs::write(path, json).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(report.passed)
}
