//! What the database says after a mode ran: the ground truth, whatever the receivers answered.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

/// Records compared with the events that were sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Audit {
    /// Rows in `records`.
    pub records_created: u64,
    /// Rows beyond the first for their event: work done twice.
    pub duplicate_records: u64,
    /// Sent events without any row: work never done.
    pub events_without_record: u64,
    /// Rows for ids that were never sent (only a bug could make these).
    pub unknown_records: u64,
}

impl Audit {
    /// Compares `records_per_event` (event id to row count) with the ids that were sent.
    pub fn of<'a>(records_per_event: &HashMap<String, u64>, sent: impl IntoIterator<Item = &'a str>) -> Audit {
        let sent: HashSet<&str> = sent.into_iter().collect();
        Audit {
            records_created: records_per_event.values().sum(),
            duplicate_records: records_per_event.values().map(|count| count.saturating_sub(1)).sum(),
            events_without_record: sent.iter().filter(|id| !records_per_event.contains_key(**id)).count() as u64,
            unknown_records: records_per_event
                .iter()
                .filter(|(id, _)| !sent.contains(id.as_str()))
                .map(|(_, count)| count)
                .sum(),
        }
    }

    /// Exactly one record per sent event, and nothing else.
    pub fn is_exact(&self) -> bool {
        self.duplicate_records == 0 && self.events_without_record == 0 && self.unknown_records == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, u64)]) -> HashMap<String, u64> {
        pairs.iter().map(|(id, n)| (id.to_string(), *n)).collect()
    }

    #[test]
    fn one_record_per_event_is_exact() {
        let audit = Audit::of(&counts(&[("a", 1), ("b", 1)]), ["a", "b"]);
        assert_eq!(audit, Audit { records_created: 2, ..Audit::default() });
        assert!(audit.is_exact());
    }

    #[test]
    fn duplicates_missing_and_unknown_records_are_each_counted() {
        let audit = Audit::of(&counts(&[("a", 3), ("b", 1), ("zz", 2)]), ["a", "b", "c", "d"]);
        assert_eq!(
            audit,
            Audit { records_created: 6, duplicate_records: 3, events_without_record: 2, unknown_records: 2 }
        );
        assert!(!audit.is_exact());
    }
}
