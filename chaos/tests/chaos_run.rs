//! The fault-injection run, short, as part of `make test`: the real binary, 5 real nodes, real
//! worker processes and real faults. `make chaos` runs the same thing for longer.
//!
//! `CHAOS_TEST_DURATION` (seconds, default 45) sets the active time; the run adds a few seconds
//! of start-up, drain and the Kleppmann scenario.

use std::process::Command;

use serde_json::Value;

/// A count in summary.json, at `path` (keys from the top).
fn count(summary: &Value, path: &[&str]) -> u64 {
    path.iter()
        .fold(summary, |value, key| &value[*key])
        .as_u64()
        .unwrap_or_else(|| panic!("summary.json has no count at {path:?}"))
}

#[test]
fn a_short_chaos_run_breaks_no_promise() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let duration = std::env::var("CHAOS_TEST_DURATION").unwrap_or_else(|_| "45".to_string());
    let run = Command::new(env!("CARGO_BIN_EXE_dedup-chaos"))
        .args(["run", "--duration", &duration])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run dedup-chaos");
    let table = String::from_utf8_lossy(&run.stdout);
    let log = String::from_utf8_lossy(&run.stderr);
    println!("{table}");
    let summary: Value = match std::fs::read(out.join("summary.json")) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
        Err(e) => panic!("no summary.json ({e}); the run said:\n{log}\n{table}"),
    };

    let violations = summary["findings"]["violations"].as_array().expect("a list of violations");
    assert!(violations.is_empty(), "{} violations:\n{table}", violations.len());
    assert!(run.status.success(), "dedup-chaos failed ({}):\n{log}\n{table}", run.status);
    assert_eq!(summary["unfinished_deliveries"].as_array().map(Vec::len), Some(0), "{table}");
    assert_eq!(summary["kleppmann"]["late_write_rejected"], Value::Bool(true), "{table}");

    // The run exercised what the rules are about: every kind of fault, and each decision that a
    // rule checks. A run without them would pass without proving anything.
    for kind in ["kill_restart", "pause_past_lease", "timeout_storm"] {
        assert!(count(&summary, &["faults", kind]) >= 1, "no {kind} fault:\n{table}");
    }
    for decision in ["acquired", "completed", "in_progress", "unavailable"] {
        assert!(count(&summary, &["decisions", decision]) >= 1, "no {decision} decision:\n{table}");
    }
    assert!(count(&summary, &["rejected_stale_writes"]) >= 1, "{table}");
}
