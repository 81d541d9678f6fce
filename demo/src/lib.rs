//! The duplicate-webhook incident, replayed and fixed.
//!
//! A webhook vendor delivers every event two or three times, milliseconds apart, to whichever of
//! our receiver processes its load balancer picks. The incident's handler checked whether a record
//! for the event existed and created one if not; two copies that arrive inside that window both
//! see "no record" and both create one. This crate has everything needed to show that happen and
//! to show `DEDUP.CLAIM`, through the quorum client, stop it:
//!
//! - [`receiver`]: the webhook receiver, an axum service that runs as several OS processes over one
//!   SQLite database, in `naive` mode (the incident's code) or `dedup` mode (the same code behind a
//!   quorum claim). It is also the worked example of wiring [`dedup_client`] into a web service.
//! - [`store`]: the SQLite table the receivers write records to.
//! - [`webhook`]: what travels between sender and receiver: the Standard Webhooks headers, the
//!   payload, and the receiver's answer.
//! - [`orchestrator`]: the `webhook-demo` binary's parts: Redis nodes, receiver processes, the
//!   flaky sender, the fault, the audit of the database and the results table.
//! - [`interrupt`] and [`logging`]: what both binaries share.

pub mod interrupt;
pub mod logging;
pub mod orchestrator;
pub mod receiver;
pub mod store;
pub mod webhook;
