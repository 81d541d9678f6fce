//! `dedup-chaos`: the fault-injection suite's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dedup_chaos::{persistence, run, worker};

/// Fault injection for redis-dedup: 5 nodes with AOF, worker processes writing to a fenced SQLite
/// store, kills, pauses and timeout storms on a random minority of nodes, then a checker over the
/// full history. Exits non-zero on any violation.
///
/// Examples:
///   dedup-chaos run --duration 300          # five minutes of faults
///   CHAOS_DURATION=60 CHAOS_SEED=7 dedup-chaos run
///   dedup-chaos check /tmp/dedup-chaos-7    # re-check a run directory
///   dedup-chaos restarts --entries 1000000  # 1M entries back from AOF and RDB
///
/// It needs redis-server and the module (`make`, or DEDUP_MODULE_PATH=/path/libredis_dedup.so).
#[derive(Parser, Debug)]
#[command(name = "dedup-chaos", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The fault-injection run and the Kleppmann scenario, then the checker's table.
    Run(run::RunSettings),
    /// Re-checks the history, store and fault log of a finished run directory.
    Check {
        /// The run directory (printed by `run`).
        dir: PathBuf,
    },
    /// Fills one node with live entries, restarts it from the AOF log, rewritten AOFs and an RDB
    /// snapshot, and checks that every entry, expiry and the token counter come back, and memory
    /// within 5 %.
    Restarts {
        /// How many entries.
        #[arg(long, env = "SOAK_ENTRIES", default_value_t = 1_000_000)]
        entries: usize,
    },
    /// A worker process (started by `run`; reads deliveries on stdin).
    #[command(hide = true)]
    Worker(worker::WorkerSettings),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(settings) => runtime().block_on(run::run(&settings)).map(|summary| summary.passed()),
        Command::Check { dir } => run::recheck(&dir).map(|findings| {
            for violation in &findings.violations {
                println!("{violation}");
            }
            println!("{} violations; examined per rule: {:?}", findings.violations.len(), findings.checked);
            findings.violations.is_empty()
        }),
        Command::Restarts { entries } => persistence::run(entries).map(|report| {
            println!("{report}");
            report.passed()
        }),
        Command::Worker(settings) => runtime().block_on(worker::run(settings)).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("dedup-chaos: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("start the Tokio runtime")
}
