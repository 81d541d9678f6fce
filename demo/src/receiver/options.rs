//! The receiver's command line, parsed by the `webhook-receiver` binary and written by the
//! orchestrator when it starts receiver processes: one definition for both sides.

use std::net::SocketAddr;
use std::num::ParseIntError;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Serialize;

/// How long processing an event takes unless told otherwise: long enough that copies sent
/// 0-100 ms apart often overlap, short enough for a demo of thousands of events.
pub const DEFAULT_PROCESSING_DELAY_MS: &str = "50";

/// How a receiver handles deliveries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The incident's handler: check for a record, create one if there is none.
    Naive,
    /// The same processing, run only under a quorum claim of the event id.
    Dedup,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Naive => "naive",
            Mode::Dedup => "dedup",
        }
    }
}

/// A webhook receiver: `POST /webhook` with the event id in `webhook-id`. Run several on
/// different ports over one database to see deliveries race between processes.
#[derive(Clone, Debug, PartialEq, Eq, Parser)]
#[command(name = "webhook-receiver", version)]
pub struct Options {
    /// Address to serve on.
    #[arg(long, env = "WEBHOOK_RECEIVER_LISTEN", default_value = "127.0.0.1:8001")]
    pub listen: SocketAddr,

    /// `naive` replays the incident; `dedup` claims each event id on the Redis nodes first.
    #[arg(long, env = "WEBHOOK_RECEIVER_MODE", value_enum, default_value_t = Mode::Dedup)]
    pub mode: Mode,

    /// Redis nodes with the dedup module (dedup mode), comma-separated or repeated.
    #[arg(
        long = "redis",
        env = "WEBHOOK_RECEIVER_REDIS",
        value_delimiter = ',',
        default_value = "redis://127.0.0.1:7001,redis://127.0.0.1:7002,redis://127.0.0.1:7003"
    )]
    pub redis: Vec<String>,

    /// The SQLite database file, shared by every receiver process (created if missing).
    #[arg(long, env = "WEBHOOK_RECEIVER_DATABASE", default_value = "webhooks.sqlite3")]
    pub database: PathBuf,

    /// Written to each record's `created_by` [default: receiver@LISTEN].
    #[arg(long, env = "WEBHOOK_RECEIVER_NAME")]
    pub name: Option<String>,

    /// How long processing an event takes, in milliseconds: the window in which naive mode races.
    #[arg(
        long = "processing-delay-ms",
        env = "WEBHOOK_RECEIVER_PROCESSING_DELAY_MS",
        value_name = "MS",
        default_value = DEFAULT_PROCESSING_DELAY_MS,
        value_parser = parse_millis
    )]
    pub processing_delay: Duration,
}

impl Options {
    /// The name written to records.
    pub fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| format!("receiver@{}", self.listen))
    }

    /// The arguments that make `webhook-receiver` parse back exactly these options.
    pub fn command_line(&self) -> Vec<String> {
        let mut args = vec![
            format!("--listen={}", self.listen),
            format!("--mode={}", self.mode.as_str()),
            format!("--redis={}", self.redis.join(",")),
            format!("--database={}", self.database.display()),
            format!("--processing-delay-ms={}", self.processing_delay.as_millis()),
        ];
        if let Some(name) = &self.name {
            args.push(format!("--name={name}"));
        }
        args
    }
}

/// Parses whole milliseconds.
pub fn parse_millis(text: &str) -> Result<Duration, ParseIntError> {
    text.parse().map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_parses_back_to_the_same_options() {
        let options = Options {
            listen: "127.0.0.1:9123".parse().unwrap(),
            mode: Mode::Naive,
            redis: vec!["redis://127.0.0.1:1".into(), "redis://127.0.0.1:2".into()],
            database: PathBuf::from("/tmp/some dir/db.sqlite3"),
            name: Some("receiver-2".into()),
            processing_delay: Duration::from_millis(75),
        };
        let args = std::iter::once("webhook-receiver".to_string()).chain(options.command_line());
        assert_eq!(Options::try_parse_from(args).unwrap(), options);
    }

    #[test]
    fn the_default_name_says_where_the_receiver_listens() {
        let options = Options::try_parse_from(["webhook-receiver", "--listen", "127.0.0.1:8002"]).unwrap();
        assert_eq!(options.name(), "receiver@127.0.0.1:8002");
    }
}
