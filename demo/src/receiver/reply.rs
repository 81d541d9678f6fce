//! The receiver's answers: one HTTP status per outcome, with a JSON [`Answer`] body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::store::RecordId;
use crate::webhook::{Answer, Outcome};

/// An answer to one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply(pub Answer);

impl Reply {
    fn success(outcome: Outcome, record: Option<RecordId>) -> Reply {
        Reply(Answer { outcome, record, detail: None })
    }

    fn refusal(outcome: Outcome, detail: impl Into<String>) -> Reply {
        Reply(Answer { outcome, record: None, detail: Some(detail.into()) })
    }

    /// 200: this delivery created the record.
    pub fn processed(record: RecordId) -> Reply {
        Reply::success(Outcome::Processed, Some(record))
    }

    /// 200: the record was already there when this delivery looked.
    pub fn already_processed(record: RecordId) -> Reply {
        Reply::success(Outcome::AlreadyProcessed, Some(record))
    }

    /// 200: the event was done before; `record` is the first delivery's result (`None` if the
    /// stored result is not a record id, e.g. written by other code).
    pub fn replayed(record: Option<RecordId>) -> Reply {
        Reply::success(Outcome::Replayed, record)
    }

    /// 409: another delivery of the event is being processed; the sender retries later.
    pub fn in_progress() -> Reply {
        Reply::refusal(Outcome::InProgress, "another delivery of this event is being processed")
    }

    /// 422: the id was seen with a different body.
    pub fn mismatch() -> Reply {
        Reply::refusal(Outcome::Mismatch, "this event id was already used for a different payload")
    }

    /// 503: the dedup store could not decide; nothing was processed, and a retry may succeed.
    /// Which nodes failed is for the receiver's log, not for the sender.
    pub fn unavailable() -> Reply {
        Reply::refusal(Outcome::Unavailable, "the deduplication store is unavailable; retry later")
    }

    /// 400: the request is not a delivery.
    pub fn bad_request(detail: impl Into<String>) -> Reply {
        Reply::refusal(Outcome::BadRequest, detail)
    }

    /// 500: processing failed. The error is for the receiver's log, not for the sender.
    pub fn failed() -> Reply {
        Reply::refusal(Outcome::Failed, "processing failed; retry later")
    }

    /// The HTTP status this reply is sent with.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.outcome.status()).expect("every outcome maps to a valid status")
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (self.status(), Json(self.0)).into_response()
    }
}
