//! What the sender and a worker process say to each other: one JSON object per line, deliveries
//! on the worker's stdin, progress and answers on its stdout. (The worker logs to stderr.)

use serde::{Deserialize, Serialize};

/// One delivery of an event to a worker, as a webhook POST would be.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delivery {
    /// Unique per delivery attempt, so answers can be matched to requests.
    pub attempt: u64,
    pub event: String,
    pub fingerprint: String,
    /// The client-side timeout storm is on: claim with the tiny per-node timeout.
    pub storm: bool,
    /// Simulated processing time between the lease check and the write, in milliseconds
    /// (0 in the main run; the Kleppmann scenario pauses the worker inside it).
    pub work_ms: u64,
}

/// What a worker says about a delivery.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "say", rename_all = "snake_case")]
pub enum WorkerMessage {
    /// Connected and ready for deliveries.
    Ready { worker: String },
    /// Progress: the worker holds the lease with this fencing token and starts the work.
    Acquired { attempt: u64, token: u64 },
    /// The final answer to a delivery.
    Answer { attempt: u64, answer: Answer },
}

/// A worker's answer to the sender, as an HTTP status would carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    /// 200: processed now (the effect was written).
    Applied,
    /// 200: already processed (a node holds the completion marker).
    Duplicate,
    /// 409: another worker holds the event; retry.
    InProgress,
    /// 422: the event id was seen with another payload.
    Mismatch,
    /// 503: nodes failed; retry.
    Unavailable,
    /// 503: racing claims split the votes; retry.
    Contended,
    /// 503: the lease was lost (not fenced, or gone before the work started); retry.
    LeaseLost,
    /// 503: the store refused the write: a newer token already wrote for this event; retry.
    Stale,
    /// 500: something else failed (the store, an unexpected error); retry.
    Failed,
}

impl Answer {
    /// Whether the sender stops delivering: a 2xx, or a 422 (retrying cannot help).
    pub fn is_final(self) -> bool {
        matches!(self, Answer::Applied | Answer::Duplicate | Answer::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_json_line_each_and_read_back() {
        let msg = WorkerMessage::Answer { attempt: 7, answer: Answer::InProgress };
        let line = serde_json::to_string(&msg).unwrap();
        assert_eq!(line, r#"{"say":"answer","attempt":7,"answer":"in_progress"}"#);
        let back: WorkerMessage = serde_json::from_str(&line).unwrap();
        assert!(matches!(back, WorkerMessage::Answer { attempt: 7, answer: Answer::InProgress }));
    }

    #[test]
    fn only_success_and_mismatch_end_the_retries() {
        let finals: Vec<Answer> = [
            Answer::Applied,
            Answer::Duplicate,
            Answer::InProgress,
            Answer::Mismatch,
            Answer::Unavailable,
            Answer::Contended,
            Answer::LeaseLost,
            Answer::Stale,
            Answer::Failed,
        ]
        .into_iter()
        .filter(|a| a.is_final())
        .collect();
        assert_eq!(finals, [Answer::Applied, Answer::Duplicate, Answer::Mismatch]);
    }
}
