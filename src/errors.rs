//! Every error a DEDUP.* command can reply, in one place, so the wording stays consistent with
//! docs/PROTOCOL.md. Each message starts with a Redis error code.

use std::fmt;

use crate::entry::{MAX_FINGERPRINT_BYTES, MAX_OWNER_BYTES, MAX_TOKEN};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// Replied by Redis's own wrong-arity message.
    WrongArity,
    /// An option that is unknown, repeated, or missing its value.
    Syntax,
    /// A ttl or retention outside 1..=max.
    InvalidDuration { name: &'static str, max: i64 },
    InvalidToken { name: &'static str },
    InvalidUnixTime { name: &'static str },
    InvalidOwner,
    InvalidFingerprint,
    InvalidPhase,
    ResultTooLarge { max: usize },
    TokensExhausted,
    WrongType,
    /// A bug: a panic was caught before it could reach Redis.
    Internal { command: &'static str },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::WrongArity => f.write_str("ERR wrong number of arguments"),
            CommandError::Syntax => f.write_str("ERR syntax error"),
            CommandError::InvalidDuration { name, max } => {
                write!(f, "ERR {name} must be an integer from 1 to {max} (dedup.max-ttl-ms)")
            }
            CommandError::InvalidToken { name } => {
                write!(f, "ERR {name} must be an integer from 0 to {MAX_TOKEN}")
            }
            CommandError::InvalidUnixTime { name } => {
                write!(f, "ERR {name} must be a positive Unix time in milliseconds")
            }
            CommandError::InvalidOwner => {
                write!(f, "ERR owner must be 1 to {MAX_OWNER_BYTES} bytes")
            }
            CommandError::InvalidFingerprint => {
                write!(f, "ERR fingerprint must be 1 to {MAX_FINGERPRINT_BYTES} bytes")
            }
            CommandError::InvalidPhase => f.write_str("ERR phase must be CLAIMED or DONE"),
            CommandError::ResultTooLarge { max } => {
                write!(f, "ERR result is larger than dedup.max-result-bytes ({max} bytes)")
            }
            CommandError::TokensExhausted => {
                f.write_str("ERR fencing token space exhausted on this server")
            }
            CommandError::WrongType => {
                f.write_str("WRONGTYPE Operation against a key holding the wrong kind of value")
            }
            CommandError::Internal { command } => {
                write!(f, "ERR internal error in {command}; nothing was changed (see the server log)")
            }
        }
    }
}

impl std::error::Error for CommandError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_starts_with_an_error_code() {
        let all = [
            CommandError::WrongArity,
            CommandError::Syntax,
            CommandError::InvalidDuration { name: "ttl-ms", max: 9 },
            CommandError::InvalidToken { name: "token" },
            CommandError::InvalidUnixTime { name: "PXAT" },
            CommandError::InvalidOwner,
            CommandError::InvalidFingerprint,
            CommandError::InvalidPhase,
            CommandError::ResultTooLarge { max: 1 },
            CommandError::TokensExhausted,
            CommandError::WrongType,
            CommandError::Internal { command: "dedup.claim" },
        ];
        for e in all {
            let text = e.to_string();
            let code = text.split(' ').next().unwrap();
            assert!(code == "ERR" || code == "WRONGTYPE", "{text}");
        }
    }
}
