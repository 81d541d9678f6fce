//! The signals that stop either binary: Ctrl-C (SIGINT), SIGTERM, and a closed terminal (SIGHUP).

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Handlers installed up front, so that a signal arriving while the program starts up is not left
/// to the default action, which would exit at once: without stopping the demo's children, or
/// without answering a receiver's in-flight deliveries.
pub struct Interrupt {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Interrupt {
    pub fn install() -> std::io::Result<Interrupt> {
        Ok(Interrupt {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Resolves with the signal's name when one arrives.
    pub async fn received(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
        }
    }
}
