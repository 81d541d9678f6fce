//! The fault injected in dedup mode: one Redis node killed with SIGKILL mid-run, and restarted
//! from its append-only file later, on the same port and directory.

use std::time::Duration;

use indicatif::ProgressBar;
use serde::Serialize;
use tokio::time::Instant;

use super::console::Console;
use super::redis_node::RedisNode;

/// When to kill and restart, from the start of sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultPlan {
    pub kill_at: Duration,
    pub restart_at: Duration,
}

impl FaultPlan {
    /// Kill at 30 % of the window in which new events arrive, restart at 65 %: events arrive
    /// with all nodes up, with one down, and with the restarted one back, which knows only what
    /// its AOF held when it died.
    pub fn within(arrival_window: Duration) -> FaultPlan {
        FaultPlan { kill_at: arrival_window.mul_f64(0.30), restart_at: arrival_window.mul_f64(0.65) }
    }
}

/// Something the fault did, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultEvent {
    /// Milliseconds from the start of sending.
    pub at_ms: u64,
    pub what: String,
}

/// Kills `node` and restarts it according to `plan`, narrating on `console` and showing the
/// node's state on `progress`.
pub async fn inject(
    plan: FaultPlan,
    node: &mut RedisNode,
    start: Instant,
    console: &Console,
    progress: &ProgressBar,
) -> anyhow::Result<Vec<FaultEvent>> {
    let port = node.port();
    let mut events = Vec::new();
    let mut record = |what: String| {
        let at_ms = start.elapsed().as_millis() as u64;
        console.note(format!("  dedup: {:>5.1} s  {what}", at_ms as f64 / 1000.0));
        events.push(FaultEvent { at_ms, what });
    };

    tokio::time::sleep_until(start + plan.kill_at).await;
    node.kill();
    progress.set_message(format!("(redis :{port} down)"));
    record(format!("SIGKILL redis-server :{port}"));

    tokio::time::sleep_until(start + plan.restart_at).await;
    progress.set_message(format!("(redis :{port} restarting)"));
    let keys = node.restart().await?;
    progress.set_message("");
    record(format!("redis-server :{port} restarted from its AOF with {keys} keys"));
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_is_down_for_the_middle_third_of_the_arrivals() {
        let plan = FaultPlan::within(Duration::from_secs(10));
        assert_eq!(plan, FaultPlan { kill_at: Duration::from_secs(3), restart_at: Duration::from_millis(6_500) });
    }
}
