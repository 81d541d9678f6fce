//! Logging for both binaries: `tracing` events to stderr, filtered by `RUST_LOG`.

use std::io::IsTerminal;

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Logs to stderr at `default` and above, unless `RUST_LOG` (e.g. `info`, or
/// `warn,dedup_client=debug`) says otherwise. Colours only on a terminal: the demo sends each
/// receiver's stderr to a log file.
pub fn init(default: Level) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|spec| spec.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(default));
    let stderr =
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    tracing_subscriber::registry().with(stderr).with(filter).init();
}
