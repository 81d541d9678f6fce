//! What the incident's handler did with an event: look for its record, and create one if there
//! is none.
//!
//! Nothing stops two deliveries of one event from running this at the same time, in two
//! processes: both look, both find nothing, both create. That is the incident. Dedup mode runs
//! the very same code, but only under a claim, so for each event it runs once at a time.

use std::time::Duration;

use super::delivery::Delivery;
use crate::store::{RecordId, Store};

/// Runs the incident's processing against the shared database.
#[derive(Clone)]
pub struct Processor {
    store: Store,
    /// Written to each record's `created_by`, to show which process created it.
    name: String,
    /// The time the real work takes (in the incident, a call to the payment provider).
    delay: Duration,
}

/// How one run of the processing ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Processed {
    /// This run created the record.
    Created(RecordId),
    /// The record was already there.
    Found(RecordId),
}

impl Processed {
    /// The event's record, whoever created it.
    pub fn record(self) -> RecordId {
        match self {
            Processed::Created(record) | Processed::Found(record) => record,
        }
    }
}

impl Processor {
    pub fn new(store: Store, name: impl Into<String>, delay: Duration) -> Processor {
        Processor { store, name: name.into(), delay }
    }

    /// Checks for the event's record and, if there is none, does the work and creates it.
    pub async fn process(&self, delivery: &Delivery) -> anyhow::Result<Processed> {
        if let Some(record) = self.store.find(&delivery.id).await? {
            return Ok(Processed::Found(record));
        }
        // The work. Any other delivery of this event that checks during this window finds no
        // record either, and goes on to create its own.
        tokio::time::sleep(self.delay).await;
        let record = self.store.create(&delivery.id, &delivery.payload, &self.name).await?;
        Ok(Processed::Created(record))
    }
}
