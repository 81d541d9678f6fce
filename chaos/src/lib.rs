//! Fault injection for redis-dedup, Jepsen-style: real nodes, real worker processes, a real
//! store, real faults, and a checker that verifies every promise from the raw evidence.
//!
//! A run ([`run::run`]) starts 5 redis-server nodes with the module and AOF (`appendfsync
//! always`), several worker processes (this binary, re-executed with `worker`), and a sender that
//! delivers each of E events 2 to 4 times with random gaps and retries every delivery that was
//! not acknowledged. Meanwhile the injector kills and restarts, pauses past the lease, or pauses
//! under a client-side timeout storm, a random minority of the nodes at a time. Workers claim
//! each event in fenced mode and write its effect to a shared SQLite store through the fencing
//! token; the store refuses lower tokens. Every claim attempt is logged with every node's
//! replies. Then the Kleppmann scenario runs on the same nodes, and [`checker`] reads it all.
//!
//! | module | concept |
//! |---|---|
//! | [`plan`] | the seeded plan: deliveries and faults |
//! | [`cluster`] | the nodes |
//! | [`injector`] | carries the faults out, logs them |
//! | [`pool`] | the worker processes, from the orchestrator's side |
//! | [`worker`] | a worker process: claim, check, write through the token, complete |
//! | [`protocol`] | sender <-> worker messages |
//! | [`sender`] | deliveries, duplicates and retries |
//! | [`store`] | the fenced SQLite store |
//! | [`history`] | the JSON-lines history |
//! | [`checker`] | the rules and their verification |
//! | [`kleppmann`] | the paused-holder scenario |
//! | [`summary`] | the table |
//! | [`persistence`] | many entries, restarted from each kind of file |
//! | [`clock`] | one clock for all processes |

pub mod checker;
pub mod clock;
pub mod cluster;
pub mod history;
pub mod injector;
pub mod kleppmann;
pub mod persistence;
pub mod plan;
pub mod pool;
pub mod protocol;
pub mod run;
pub mod sender;
pub mod store;
pub mod summary;
pub mod worker;
