//! What travels between the sender and a receiver.
//!
//! Requests follow the [Standard Webhooks](https://www.standardwebhooks.com/) convention: the
//! event id is in the `webhook-id` header and stays the same across every delivery of the event,
//! which is what makes deduplication possible at all. (The convention's `webhook-signature` is left
//! out: verifying it is orthogonal to deduplication and would only add a shared secret to the
//! demo.) Answers are small JSON documents the sender reads back, so that it can check that every
//! acknowledged delivery of one event names the same record.

use serde::{Deserialize, Serialize};

use crate::store::RecordId;

/// The header carrying the event id, identical on every delivery of one event.
pub const ID_HEADER: &str = "webhook-id";
/// The header carrying the time of the attempt, in seconds since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The path receivers accept deliveries on.
pub const PATH: &str = "/webhook";

/// What the receiver did with one delivery. Each outcome has one HTTP status; see
/// [`Outcome::status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// This delivery created the event's record.
    Processed,
    /// The event's record already existed when this delivery checked (naive mode; or dedup mode
    /// after an earlier holder created the record but could not mark the event done).
    AlreadyProcessed,
    /// The event was already done: its first result is replayed without touching the database.
    Replayed,
    /// Another delivery of the event is being processed right now.
    InProgress,
    /// The id was seen before with a different payload.
    Mismatch,
    /// The dedup store could not decide (too many Redis nodes failed): nothing was processed.
    Unavailable,
    /// The request lacked the event id.
    BadRequest,
    /// Processing failed; the claim was released so a retry can run.
    Failed,
}

impl Outcome {
    /// The HTTP status a receiver answers with. Only 2xx stops the sender's retries.
    pub fn status(self) -> u16 {
        match self {
            Outcome::Processed | Outcome::AlreadyProcessed | Outcome::Replayed => 200,
            Outcome::BadRequest => 400,
            Outcome::InProgress => 409,
            Outcome::Mismatch => 422,
            Outcome::Failed => 500,
            Outcome::Unavailable => 503,
        }
    }
}

/// The body of every answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub outcome: Outcome,
    /// The event's record, when the answer is a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordId>,
    /// Why, for answers that are not a success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_successful_outcomes_answer_2xx() {
        let all = [
            Outcome::Processed,
            Outcome::AlreadyProcessed,
            Outcome::Replayed,
            Outcome::InProgress,
            Outcome::Mismatch,
            Outcome::Unavailable,
            Outcome::BadRequest,
            Outcome::Failed,
        ];
        let successes: Vec<Outcome> = all.into_iter().filter(|o| (200..300).contains(&o.status())).collect();
        assert_eq!(successes, [Outcome::Processed, Outcome::AlreadyProcessed, Outcome::Replayed]);
    }

    #[test]
    fn answers_round_trip_as_json() {
        let answer = Answer { outcome: Outcome::Replayed, record: Some(RecordId(42)), detail: None };
        let json = serde_json::to_string(&answer).unwrap();
        assert_eq!(json, r#"{"outcome":"replayed","record":42}"#);
        assert_eq!(serde_json::from_str::<Answer>(&json).unwrap(), answer);
    }
}
