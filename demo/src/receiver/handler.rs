//! The two `POST /webhook` handlers: the incident's, and the same code behind a quorum claim.

use std::sync::Arc;

use axum::extract::State;
use dedup_client::{Claim, ClaimOptions, Dedup};

use super::delivery::Delivery;
use super::processing::{Processed, Processor};
use super::reply::Reply;
use crate::store::RecordId;

/// Naive mode: the incident's handler. Concurrent deliveries of one event race through the
/// existence check, and each may create a record.
pub async fn naive(State(processor): State<Arc<Processor>>, delivery: Delivery) -> Reply {
    match processor.process(&delivery).await {
        Ok(processed) => processed_reply(processed),
        Err(error) => {
            tracing::error!(event = %delivery.id, error = %format_args!("{error:#}"), "processing failed");
            Reply::failed()
        }
    }
}

/// What the dedup handler needs: the quorum client, and the incident's processing.
pub struct Deduplicated {
    pub dedup: Dedup,
    pub processor: Processor,
}

/// Dedup mode: the incident's processing, run only by the delivery that claims the event id on a
/// quorum of Redis nodes. Every other delivery is told the event is in progress (409) or done
/// (200, with the first delivery's record), and an outage is a 503, never a duplicate verdict.
pub async fn deduplicated(State(receiver): State<Arc<Deduplicated>>, delivery: Delivery) -> Reply {
    // The fingerprint makes an id reused for a different body a 422 instead of a replay.
    let options = ClaimOptions { fingerprint: Some(delivery.fingerprint()), ..Default::default() };
    let lease = match receiver.dedup.claim_with(&delivery.dedup_key(), options).await {
        Ok(Claim::Acquired(lease)) => lease,
        Ok(Claim::Completed { result }) => {
            return Reply::replayed(result.as_deref().and_then(RecordId::from_result));
        }
        Ok(Claim::InProgress { .. }) => return Reply::in_progress(),
        Ok(Claim::Mismatch) => return Reply::mismatch(),
        // Unavailable or Contended: the store could not decide, so nothing is known about this
        // event. 503 makes the sender retry; dropping the delivery here would lose the event.
        Err(error) if error.is_retryable() => {
            tracing::warn!(event = %delivery.id, %error, "no dedup decision");
            return Reply::unavailable();
        }
        Err(error) => {
            tracing::error!(event = %delivery.id, %error, "claim refused");
            return Reply::failed();
        }
    };

    let processed = match receiver.processor.process(&delivery).await {
        Ok(processed) => processed,
        Err(error) => {
            tracing::error!(event = %delivery.id, error = %format_args!("{error:#}"), "processing failed");
            // Give the claim up now, so the sender's retry can process the event at once
            // instead of waiting for the lease to run out.
            lease.release().await;
            return Reply::failed();
        }
    };

    // Duplicates from now on get this record id back without touching the database.
    if let Err(error) = lease.complete(Some(&processed.record().to_result())).await {
        // The record exists, so the work is done and the sender must not send it again: still
        // 200. Without the completion marker, a later delivery claims the event once its lease
        // ends, finds the record in the existence check, and completes it then.
        tracing::warn!(event = %delivery.id, %error, "processed, but the completion was not recorded");
    }
    processed_reply(processed)
}

fn processed_reply(processed: Processed) -> Reply {
    match processed {
        Processed::Created(record) => Reply::processed(record),
        Processed::Found(record) => Reply::already_processed(record),
    }
}
