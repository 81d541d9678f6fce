//! The `webhook-demo` binary's parts.
//!
//! [`run`] starts three Redis nodes, then runs the [`plan`] twice through [`phase`]: in naive mode
//! and in dedup mode (with the [`fault`]). Each phase starts its [`receivers`], lets the
//! [`sender`] deliver, and [`audit`]s the database. [`report`] puts both side by side.

pub mod audit;
pub mod cli;
pub mod console;
pub mod fault;
pub mod phase;
pub mod plan;
pub mod process;
pub mod receivers;
pub mod redis_node;
pub mod report;
pub mod run;
pub mod sender;

pub use cli::Args;
pub use run::{run, Finished};
