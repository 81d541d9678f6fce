//! Module configuration: `dedup.max-ttl-ms` and `dedup.max-result-bytes`.
//!
//! Both are settable as `loadmodule` arguments (`--loadmodule libredis_dedup.so max-ttl-ms 60000`)
//! and at run time with `CONFIG SET dedup.max-ttl-ms 60000`.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::parse::Limits;

pub const DEFAULT_MAX_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
/// Keeps `now + ttl` far from overflow (about 31,000 years).
pub const MAX_TTL_MS_CEILING: i64 = 1_000_000_000_000_000;
pub const DEFAULT_MAX_RESULT_BYTES: i64 = 64 * 1024;
/// Redis's default proto-max-bulk-len.
pub const MAX_RESULT_BYTES_CEILING: i64 = 512 * 1024 * 1024;

pub static MAX_TTL_MS: AtomicI64 = AtomicI64::new(DEFAULT_MAX_TTL_MS);
pub static MAX_RESULT_BYTES: AtomicI64 = AtomicI64::new(DEFAULT_MAX_RESULT_BYTES);

/// The limits in force right now.
pub fn limits() -> Limits {
    Limits {
        max_ttl_ms: MAX_TTL_MS.load(Ordering::Relaxed),
        max_result_bytes: usize::try_from(MAX_RESULT_BYTES.load(Ordering::Relaxed)).unwrap_or(0),
    }
}
