//! Run-at-most-once jobs whose output is stored and replayed to duplicates.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::claim::Claim;
use crate::error::Error;
use crate::lease::{Completion, Lease};

/// The outcome of [`crate::Dedup::once`].
///
/// # What to answer a webhook sender
///
/// ```no_run
/// # async fn handle(dedup: dedup_client::Dedup) -> u16 {
/// use dedup_client::{Once, OnceError};
///
/// let outcome = dedup
///     .once("webhook:evt_123", |_lease| async { Ok::<_, std::io::Error>(42u64) })
///     .await;
/// match outcome {
///     Ok(Once::Ran { .. }) | Ok(Once::Replayed(_)) => 200,
///     Ok(Once::InProgress { .. }) => 409,
///     Ok(Once::Mismatch) => 422,
///     Err(OnceError::Job(_)) => 500,  // the job failed; its claim was released, a retry runs it
///     Err(_) => 503,                  // Redis unavailable or lease lost: the sender retries
/// }
/// # }
/// ```
#[derive(Debug)]
#[must_use]
pub enum Once<T> {
    /// This call ran the job.
    Ran {
        /// What the job returned.
        output: T,
        /// Whether its output was recorded for duplicates: `Ok` with
        /// [`Completion::is_durable`] on a quorum, `Ok` but not durable on fewer nodes, `Err` on
        /// none (the job ran, but a duplicate may run it again).
        completion: Result<Completion, Error>,
    },
    /// The job had already run: this is its stored output.
    Replayed(T),
    /// Another call is running the job right now; see [`Claim::InProgress`].
    InProgress {
        /// See [`Claim::InProgress`].
        retry_after: Duration,
    },
    /// The id is stored with another fingerprint; see [`Claim::Mismatch`].
    Mismatch,
}

impl<T> Once<T> {
    /// The job's output, whether this call ran it or replayed it.
    ///
    /// ```
    /// # use dedup_client::Once;
    /// assert_eq!(Once::Replayed(5).output(), Some(5));
    /// assert_eq!(Once::<u8>::Mismatch.output(), None);
    /// ```
    pub fn output(self) -> Option<T> {
        match self {
            Once::Ran { output, .. } | Once::Replayed(output) => Some(output),
            Once::InProgress { .. } | Once::Mismatch => None,
        }
    }
}

/// Why [`crate::Dedup::once`] did not produce an output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnceError<E> {
    /// Claiming, or keeping the lease, failed: see [`Error`]. When the lease was lost while the
    /// job ran, the job was stopped (its future dropped) and this is [`Error::LeaseLost`].
    #[error(transparent)]
    Dedup(#[from] Error),
    /// The job returned an error. Its claim was released, so that a retry runs it again.
    #[error("the job failed and its claim was released: {0}")]
    Job(#[source] E),
}

/// The outcomes of a claim that did not acquire the id, as `once` reports them.
pub(crate) fn settle<T: DeserializeOwned, L>(claim: Claim<L>) -> Result<Once<T>, Error> {
    Ok(match claim {
        Claim::Acquired(_) => unreachable!("settle is only called for outcomes without a lease"),
        Claim::Completed { result } => Once::Replayed(decode(result.as_deref())?),
        Claim::InProgress { retry_after } => Once::InProgress { retry_after },
        Claim::Mismatch => Once::Mismatch,
    })
}

/// Records the job's outcome: its serialized output as the completion result, or a release.
pub(crate) async fn record<T: Serialize, E>(lease: Lease, output: Result<T, E>) -> Result<Once<T>, OnceError<E>> {
    let output = match output {
        Ok(output) => output,
        Err(e) => {
            lease.release().await;
            return Err(OnceError::Job(e));
        }
    };
    let bytes = match serde_json::to_vec(&output) {
        Ok(bytes) => bytes,
        Err(e) => {
            lease.release().await;
            return Err(Error::Encode(e).into());
        }
    };
    let completion = lease.complete(Some(&bytes)).await;
    Ok(Once::Ran { output, completion })
}

/// Decodes a stored output; a completion without a result reads as JSON `null` (so `()` and
/// `Option<_>` outputs round-trip).
fn decode<T: DeserializeOwned>(stored: Option<&[u8]>) -> Result<T, Error> {
    serde_json::from_slice(stored.unwrap_or(b"null")).map_err(Error::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settles_outcomes_without_a_lease() {
        let replayed: Once<Vec<u32>> = settle::<_, ()>(Claim::Completed { result: Some(b"[1,2]".to_vec()) }).unwrap();
        assert_eq!(replayed.output(), Some(vec![1, 2]));
        let unit: Once<()> = settle::<_, ()>(Claim::Completed { result: None }).unwrap();
        assert!(matches!(unit, Once::Replayed(())));
        let busy: Once<()> = settle::<_, ()>(Claim::InProgress { retry_after: Duration::from_millis(9) }).unwrap();
        assert!(matches!(busy, Once::InProgress { retry_after } if retry_after == Duration::from_millis(9)));
        assert!(matches!(settle::<u8, ()>(Claim::Mismatch).unwrap(), Once::Mismatch));
    }

    #[test]
    fn a_stored_result_of_another_shape_is_a_decode_error() {
        let err = settle::<u32, ()>(Claim::Completed { result: Some(b"\"text\"".to_vec()) }).unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "{err:?}");
        let err = settle::<u32, ()>(Claim::Completed { result: None }).unwrap_err();
        assert!(matches!(err, Error::Decode(_)), "a missing result is not a number: {err:?}");
    }

    #[test]
    fn job_errors_keep_their_source() {
        let err: OnceError<std::io::Error> = OnceError::Job(std::io::Error::other("disk full"));
        assert_eq!(err.to_string(), "the job failed and its claim was released: disk full");
        assert!(std::error::Error::source(&err).is_some());
    }
}
