//! The `webhook-demo` command line. Every option can also be set by an environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::plan::PlanSettings;
use crate::receiver::{parse_millis, DEFAULT_PROCESSING_DELAY_MS};

/// Replays the duplicate-webhook incident, then shows it fixed.
///
/// Starts 3 redis-servers with the dedup module (config derived from redis.conf.example, AOF on),
/// several webhook-receiver processes sharing one SQLite database, and a flaky sender that
/// delivers every event 2-3 times, milliseconds apart, to random receivers, retrying every
/// non-2xx answer. It runs the same deliveries in naive mode (the incident's check-then-create)
/// and in dedup mode (the same code behind a quorum claim, with one Redis node SIGKILLed mid-run
/// and restarted from its AOF), then prints both side by side.
///
/// Exits 0 when dedup mode created exactly one record per event, 1 when it did not, 2 on an
/// error, and 130 when interrupted. Every process it starts is stopped in every case.
#[derive(Clone, Debug, Parser)]
#[command(name = "webhook-demo", version, max_term_width = 100)]
pub struct Args {
    /// Events the sender sends in each mode.
    #[arg(long, env = "DEDUP_DEMO_EVENTS", value_name = "N", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub events: u32,

    /// Share of events delivered more than once, from 0 to 1.
    #[arg(long, env = "DEDUP_DEMO_DUPLICATE_RATE", value_name = "SHARE", default_value_t = 1.0, value_parser = parse_share)]
    pub duplicate_rate: f64,

    /// Most deliveries of one duplicated event (each gets 2 to this many).
    #[arg(long, env = "DEDUP_DEMO_MAX_COPIES", value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=10))]
    pub max_copies: u32,

    /// Largest gap between two deliveries of one event, in milliseconds.
    #[arg(long = "copy-gap-ms", env = "DEDUP_DEMO_COPY_GAP_MS", value_name = "MS", default_value = "100", value_parser = parse_millis)]
    pub copy_gap: Duration,

    /// New events per second.
    #[arg(long, env = "DEDUP_DEMO_RATE", value_name = "PER_SECOND", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub rate: u32,

    /// Receiver processes (at least 2, so that deliveries race between processes).
    #[arg(long, env = "DEDUP_DEMO_RECEIVERS", value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(2..=32))]
    pub receivers: u16,

    /// How long a receiver takes to process an event, in milliseconds: naive mode's race window.
    #[arg(
        long = "processing-delay-ms",
        env = "DEDUP_DEMO_PROCESSING_DELAY_MS",
        value_name = "MS",
        default_value = DEFAULT_PROCESSING_DELAY_MS,
        value_parser = parse_millis
    )]
    pub processing_delay: Duration,

    /// First Redis port; the three nodes use PORT, PORT+1 and PORT+2.
    #[arg(long, env = "DEDUP_DEMO_REDIS_PORT", value_name = "PORT", default_value_t = 7001)]
    pub redis_port: u16,

    /// First receiver port; the receivers use PORT, PORT+1, ...
    #[arg(long, env = "DEDUP_DEMO_RECEIVER_PORT", value_name = "PORT", default_value_t = 8001)]
    pub receiver_port: u16,

    /// Do not kill a Redis node during dedup mode (the variable takes 1/0, true/false, yes/no).
    #[arg(long, env = "DEDUP_DEMO_NO_FAULT", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_fault: bool,

    /// Seed of the schedule (events, copies, gaps), to repeat a run [default: random].
    #[arg(long, env = "DEDUP_DEMO_SEED", value_name = "N")]
    pub seed: Option<u64>,

    /// The dedup module [default: libredis_dedup.so next to this binary].
    #[arg(long, env = "DEDUP_MODULE_PATH", value_name = "PATH")]
    pub module: Option<PathBuf>,

    /// The Redis server binary.
    #[arg(long, env = "DEDUP_DEMO_REDIS_SERVER", value_name = "PATH", default_value = "redis-server")]
    pub redis_server: PathBuf,

    /// The Redis config the nodes' own derive from [default: the repository's redis.conf.example].
    #[arg(long, env = "DEDUP_DEMO_REDIS_CONFIG", value_name = "PATH")]
    pub redis_config: Option<PathBuf>,

    /// The receiver binary [default: webhook-receiver next to this binary].
    #[arg(long, env = "DEDUP_DEMO_RECEIVER_BIN", value_name = "PATH")]
    pub receiver_bin: Option<PathBuf>,

    /// Also write the results as JSON to this file.
    #[arg(long, env = "DEDUP_DEMO_JSON", value_name = "PATH")]
    pub json: Option<PathBuf>,
}

impl Args {
    pub fn plan_settings(&self) -> PlanSettings {
        PlanSettings {
            events: self.events,
            duplicate_rate: self.duplicate_rate,
            max_copies: self.max_copies,
            copy_gap: self.copy_gap,
            rate: self.rate,
        }
    }
}

/// A share from 0 to 1.
fn parse_share(text: &str) -> Result<f64, String> {
    let share: f64 = text.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&share) {
        Ok(share)
    } else {
        Err(format!("{share} is not between 0 and 1"))
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn the_defaults_are_the_documented_demo() {
        let args = Args::try_parse_from(["webhook-demo"]).unwrap();
        assert_eq!((args.events, args.duplicate_rate, args.max_copies), (2000, 1.0, 3));
        assert_eq!((args.copy_gap, args.processing_delay), (Duration::from_millis(100), Duration::from_millis(50)));
        assert_eq!((args.receivers, args.redis_port, args.receiver_port), (2, 7001, 8001));
        assert!(!args.no_fault);
    }

    #[test]
    fn every_option_can_also_be_set_by_a_dedup_variable() {
        let command = Args::command();
        for arg in command
            .get_arguments()
            .filter(|arg| arg.get_long().is_some_and(|long| !["help", "version"].contains(&long)))
        {
            let env = arg.get_env().unwrap_or_else(|| panic!("--{} has no variable", arg.get_long().unwrap()));
            assert!(env.to_string_lossy().starts_with("DEDUP_"), "{env:?}");
        }
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for bad in [["--duplicate-rate", "1.5"], ["--receivers", "1"], ["--max-copies", "1"], ["--events", "0"]] {
            assert!(Args::try_parse_from(["webhook-demo", bad[0], bad[1]]).is_err(), "{bad:?} accepted");
        }
    }
}
