//! The per-server fencing-token counter.
//!
//! One counter per server, shared by all keys. It only moves forward: every new claim takes
//! `last + 1`, and anything that shows a larger token (FENCE, a replicated or AOF-replayed
//! `DEDUP.PUT`, RDB aux data) raises it with [`TokenCounter::observe`]. How it survives restarts is
//! described in docs/PROTOCOL.md ("Token durability").

use crate::entry::MAX_TOKEN;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenCounter {
    last: u64,
}

impl TokenCounter {
    pub const fn starting_at(last: u64) -> TokenCounter {
        TokenCounter { last }
    }

    /// The largest token handed out or observed so far (0 before the first claim).
    pub fn last(&self) -> u64 {
        self.last
    }

    /// Takes the next token, or `None` once the signed 64-bit range is used up (it never is in
    /// practice: refusing is still better than wrapping around and breaking monotonicity).
    pub fn issue(&mut self) -> Option<u64> {
        if self.last >= MAX_TOKEN {
            return None;
        }
        self.last += 1;
        Some(self.last)
    }

    /// Raises the counter to at least `token`.
    pub fn observe(&mut self, token: u64) {
        self.last = self.last.max(token);
    }
}

/// This server's counter. Commands run on Redis's main thread, so a plain load/store pair is
/// enough; the atomic only makes the static safe to share with the fork child that saves the RDB.
static NODE_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Runs `f` on this server's counter and stores the result.
pub fn with_node_counter<R>(f: impl FnOnce(&mut TokenCounter) -> R) -> R {
    use std::sync::atomic::Ordering::Relaxed;
    let mut counter = TokenCounter::starting_at(NODE_COUNTER.load(Relaxed));
    let out = f(&mut counter);
    NODE_COUNTER.store(counter.last(), Relaxed);
    out
}

/// The largest token this server has issued or observed.
pub fn node_counter() -> u64 {
    NODE_COUNTER.load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_strictly_increasing_tokens_and_never_goes_back() {
        let mut c = TokenCounter::default();
        assert_eq!(c.issue(), Some(1));
        assert_eq!(c.issue(), Some(2));
        c.observe(1);
        assert_eq!(c.last(), 2);
        c.observe(100);
        assert_eq!(c.issue(), Some(101));
    }

    #[test]
    fn refuses_instead_of_wrapping() {
        let mut c = TokenCounter::starting_at(MAX_TOKEN - 1);
        assert_eq!(c.issue(), Some(MAX_TOKEN));
        assert_eq!(c.issue(), None);
        assert_eq!(c.last(), MAX_TOKEN);
    }
}
