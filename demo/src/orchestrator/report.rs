//! The results: both modes side by side, and the verdict.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use super::phase::PhaseResult;

/// The statuses the receivers are designed to answer with, always shown; any other status that
/// occurs gets a row too.
const DESIGNED_STATUSES: [(u16, &str); 4] =
    [(200, "processed or replayed"), (409, "in progress"), (422, "mismatch"), (503, "unavailable")];

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub seed: u64,
    pub receivers: usize,
    pub processing_delay_ms: u64,
    pub naive: PhaseResult,
    pub dedup: PhaseResult,
    /// Dedup mode created exactly one record per event.
    pub passed: bool,
    pub verdict: String,
}

impl Report {
    pub fn new(
        seed: u64,
        receivers: usize,
        processing_delay_ms: u64,
        naive: PhaseResult,
        dedup: PhaseResult,
    ) -> Report {
        let passed = dedup.audit.is_exact();
        let verdict = verdict(&dedup);
        Report { seed, receivers, processing_delay_ms, naive, dedup, passed, verdict }
    }

    /// The side-by-side table, the fault log and the verdict line.
    pub fn render(&self) -> String {
        let (naive, dedup) = (&self.naive, &self.dedup);
        let mut rows: Vec<(String, String, String)> = Vec::new();
        let mut row = |label: &str, value: &dyn Fn(&PhaseResult) -> String| {
            rows.push((label.to_owned(), value(naive), value(dedup)));
        };
        row("events", &|p| p.events.to_string());
        row("deliveries (copies sent)", &|p| p.deliveries.to_string());
        row("HTTP requests (with retries)", &|p| p.sent.requests.to_string());
        row("records created", &|p| p.audit.records_created.to_string());
        row("duplicate records", &|p| p.audit.duplicate_records.to_string());
        row("events with no record", &|p| p.audit.events_without_record.to_string());
        if naive.audit.unknown_records + dedup.audit.unknown_records > 0 {
            row("records of events never sent", &|p| p.audit.unknown_records.to_string());
        }
        let other_statuses: BTreeSet<u16> = naive
            .sent
            .answers
            .keys()
            .chain(dedup.sent.answers.keys())
            .copied()
            .filter(|status| !DESIGNED_STATUSES.iter().any(|(designed, _)| designed == status))
            .collect();
        let statuses = DESIGNED_STATUSES.iter().map(|&(status, meaning)| (status, meaning.to_owned()));
        for (status, meaning) in statuses.chain(other_statuses.into_iter().map(|s| (s, String::from("other")))) {
            row(&format!("answers {status} {meaning}"), &|p| {
                p.sent.answers.get(&status).copied().unwrap_or(0).to_string()
            });
        }
        row("attempts with no answer", &|p| p.sent.connection_errors.to_string());
        row("deliveries never acknowledged", &|p| p.sent.unacknowledged.to_string());
        row("events answered with 2+ record ids", &|p| p.sent.conflicting_answers.to_string());
        row("handler latency p50", &|p| millis(p.latency.p50_us));
        row("handler latency p99", &|p| millis(p.latency.p99_us));
        row("faults injected", &|p| match p.faults.len() {
            0 => "none".to_owned(),
            _ => "node killed".to_owned(),
        });
        row("time", &|p| format!("{:.1} s", p.duration_ms as f64 / 1000.0));

        let label_width = rows.iter().map(|(label, _, _)| label.len()).max().unwrap_or(0);
        let value_width = rows.iter().flat_map(|(_, a, b)| [a.len(), b.len()]).max().unwrap_or(0).max(5);
        let mut out = String::new();
        let _ = writeln!(out, "{:label_width$}  {:>value_width$}  {:>value_width$}", "", "naive", "dedup");
        for (label, a, b) in &rows {
            let _ = writeln!(out, "{label:label_width$}  {a:>value_width$}  {b:>value_width$}");
        }
        for fault in &dedup.faults {
            let _ = writeln!(out, "  dedup fault at {:>5.1} s: {}", fault.at_ms as f64 / 1000.0, fault.what);
        }
        let _ = writeln!(out, "\n{}\n      {}", self.verdict, naive_summary(naive));
        out
    }
}

/// The verdict: whether dedup mode created exactly one record per event.
fn verdict(dedup: &PhaseResult) -> String {
    let fault = if dedup.faults.is_empty() { "with no fault injected" } else { "with a Redis node killed mid-run" };
    let audit = &dedup.audit;
    if audit.is_exact() {
        return format!(
            "PASS: dedup mode created exactly one record for each of the {} events, {fault}.",
            dedup.events
        );
    }
    let mut problems = vec![
        format!("{} duplicate records", audit.duplicate_records),
        format!("{} events with no record", audit.events_without_record),
    ];
    if audit.unknown_records > 0 {
        problems.push(format!("{} records of events never sent", audit.unknown_records));
    }
    format!("FAIL: dedup mode left {}, {fault}.", problems.join(", "))
}

/// What naive mode did with the same deliveries: the incident, or not this time.
fn naive_summary(naive: &PhaseResult) -> String {
    match naive.audit.duplicate_records {
        0 => "naive mode did not race this time (try more events or a longer --processing-delay-ms).".to_owned(),
        n => format!("naive mode created {n} duplicate records from the same deliveries."),
    }
}

fn millis(micros: u64) -> String {
    format!("{:.1} ms", micros as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::audit::Audit;
    use crate::orchestrator::fault::FaultEvent;
    use crate::orchestrator::phase::LatencySummary;
    use crate::orchestrator::sender::SendReport;
    use crate::receiver::Mode;

    fn phase(mode: Mode, records: u64, duplicates: u64, missing: u64) -> PhaseResult {
        PhaseResult {
            mode,
            events: 100,
            deliveries: 250,
            sent: SendReport { requests: 260, answers: [(200, 250), (409, 10)].into(), ..SendReport::default() },
            audit: Audit {
                records_created: records,
                duplicate_records: duplicates,
                events_without_record: missing,
                unknown_records: 0,
            },
            latency: LatencySummary { requests: 260, p50_us: 51_200, p99_us: 60_000 },
            faults: Vec::new(),
            duration_ms: 2_500,
        }
    }

    #[test]
    fn dedup_passes_only_with_one_record_per_event() {
        let naive = phase(Mode::Naive, 140, 40, 0);
        let passed = Report::new(1, 2, 50, naive.clone(), phase(Mode::Dedup, 100, 0, 0));
        assert!(passed.passed);
        assert_eq!(
            passed.verdict,
            "PASS: dedup mode created exactly one record for each of the 100 events, with no fault injected."
        );

        let failed = Report::new(1, 2, 50, naive, phase(Mode::Dedup, 100, 1, 1));
        assert!(!failed.passed);
        assert_eq!(
            failed.verdict,
            "FAIL: dedup mode left 1 duplicate records, 1 events with no record, with no fault injected."
        );
    }

    #[test]
    fn the_table_shows_both_modes_and_every_status_that_occurred() {
        let mut dedup = phase(Mode::Dedup, 100, 0, 0);
        dedup.sent.answers.insert(500, 3);
        dedup.faults = vec![
            FaultEvent { at_ms: 750, what: "SIGKILL redis-server :7002".into() },
            FaultEvent { at_ms: 1_625, what: "redis-server :7002 restarted from its AOF with 40 keys".into() },
        ];
        let table = Report::new(1, 2, 50, phase(Mode::Naive, 130, 30, 0), dedup).render();
        // A row's cells are separated by at least two spaces.
        let cells = |label: &str| -> Vec<String> {
            let line =
                table.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no {label} row: {table}"));
            line.split("  ").map(str::trim).filter(|cell| !cell.is_empty()).map(str::to_owned).collect()
        };
        assert_eq!(cells("duplicate records"), ["duplicate records", "30", "0"]);
        assert_eq!(cells("answers 409 in progress"), ["answers 409 in progress", "10", "10"]);
        assert_eq!(cells("answers 500 other"), ["answers 500 other", "0", "3"]);
        assert_eq!(cells("handler latency p50"), ["handler latency p50", "51.2 ms", "51.2 ms"]);
        assert_eq!(cells("faults injected"), ["faults injected", "none", "node killed"]);
        assert!(table.contains("  dedup fault at   0.8 s: SIGKILL redis-server :7002"), "{table}");
        assert!(table.contains("\nPASS: dedup mode created exactly one record for each of the 100 events, with a Redis node killed mid-run.\n"));
        assert!(
            table.trim_end().ends_with("naive mode created 30 duplicate records from the same deliveries."),
            "{table}"
        );
    }
}
