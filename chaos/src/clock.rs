//! One clock for every process of a run.
//!
//! The history's start and end times come from worker processes and from the orchestrator, and
//! checker rule 5 compares them across processes ("B started after A returned"). `Instant` cannot
//! cross a process boundary, and the wall clock can jump. `CLOCK_MONOTONIC` is one counter for the
//! whole machine on Linux: never set back, and the same in every process. All timestamps in the
//! history, the fault log and the plan are its nanoseconds.

use std::time::Duration;

use nix::time::{clock_gettime, ClockId};

/// Nanoseconds on the machine-wide monotonic clock.
pub fn now_ns() -> u64 {
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC is always available on Linux");
    // Both fields are non-negative for CLOCK_MONOTONIC.
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// `at` as an offset from `epoch`, for reports (zero if `at` is earlier).
pub fn since(epoch: u64, at: u64) -> Duration {
    Duration::from_nanos(at.saturating_sub(epoch))
}

/// Sleeps (blocking the thread) until the monotonic clock reaches `deadline_ns`.
pub fn sleep_until(deadline_ns: u64) {
    let now = now_ns();
    if deadline_ns > now {
        std::thread::sleep(Duration::from_nanos(deadline_ns - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_never_goes_back_and_offsets_saturate() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
        assert_eq!(since(10, 25), Duration::from_nanos(15));
        assert_eq!(since(25, 10), Duration::ZERO);
    }

    #[test]
    fn sleep_until_reaches_its_deadline() {
        let deadline = now_ns() + 2_000_000;
        sleep_until(deadline);
        assert!(now_ns() >= deadline);
    }
}
