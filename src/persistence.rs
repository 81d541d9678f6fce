//! The `dedup-ent` data type: how entries are saved to and loaded from RDB, rewritten into the
//! AOF, copied, measured and freed, and how the token counter rides along in RDB aux data.
//!
//! RDB encoding, version 1 (the type's encver). The in-memory packing (entry.rs) is separate,
//! so it can change without a new encoding version:
//!
//! ```text
//! unsigned  phase        0 = CLAIMED, 1 = DONE
//! unsigned  token
//! string    owner
//! unsigned  flags        bit 0: fingerprint follows, bit 1: result follows
//! string    fingerprint  (if flagged)
//! string    result       (if flagged)
//! ```
//!
//! Aux data (before the keyspace): `unsigned counter`, the server's largest token.

use std::os::raw::{c_int, c_void};
use std::ptr;

use redis_module::native_types::RedisType;
use redis_module::{raw, RedisString};

use crate::entry::{Entry, Phase, MAX_FINGERPRINT_BYTES, MAX_OWNER_BYTES, MAX_TOKEN};
use crate::token::{node_counter, with_node_counter};

/// Name Redis stores in RDB files next to each entry. Exactly 9 characters.
pub const TYPE_NAME: &str = "dedup-ent";
pub const ENCODING_VERSION: i32 = 1;

const HAS_FINGERPRINT: u64 = 1;
const HAS_RESULT: u64 = 2;

pub static DEDUP_TYPE: RedisType = RedisType::new(
    TYPE_NAME,
    ENCODING_VERSION,
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: Some(rdb_load),
        rdb_save: Some(rdb_save),
        // Must be set: without it an AOF rewrite with aof-use-rdb-preamble=no crashes the child.
        aof_rewrite: Some(aof_rewrite),
        free: Some(free),
        mem_usage: Some(mem_usage),
        digest: None,
        aux_load: Some(aux_load),
        aux_save: Some(aux_save),
        aux_save2: None,
        aux_save_triggers: raw::REDISMODULE_AUX_BEFORE_RDB as i32,
        free_effort: None,
        unlink: None,
        copy: Some(copy),
        defrag: None,
        copy2: None,
        free_effort2: None,
        mem_usage2: None,
        unlink2: None,
    },
);

fn phase_code(phase: Phase) -> u64 {
    match phase {
        Phase::Claimed => 0,
        Phase::Done => 1,
    }
}

/// Reads one entry; `None` on a short read or on values this module would never have written.
fn load_entry(rdb: *mut raw::RedisModuleIO) -> Option<Entry> {
    let phase = match raw::load_unsigned(rdb).ok()? {
        0 => Phase::Claimed,
        1 => Phase::Done,
        _ => return None,
    };
    let token = raw::load_unsigned(rdb).ok()?;
    let owner = raw::load_string_buffer(rdb).ok()?;
    let owner = owner.as_ref();
    let flags = raw::load_unsigned(rdb).ok()?;
    if token > MAX_TOKEN || owner.is_empty() || owner.len() > MAX_OWNER_BYTES || flags > 3 {
        return None;
    }
    let fingerprint = if flags & HAS_FINGERPRINT != 0 {
        let fp = raw::load_string_buffer(rdb).ok()?;
        if fp.as_ref().is_empty() || fp.as_ref().len() > MAX_FINGERPRINT_BYTES {
            return None;
        }
        Some(fp)
    } else {
        None
    };
    let result = if flags & HAS_RESULT != 0 { Some(raw::load_string_buffer(rdb).ok()?) } else { None };
    if result.as_ref().is_some_and(|r| u32::try_from(r.as_ref().len()).is_err()) {
        return None;
    }
    Some(Entry::new(phase, token, owner, fingerprint.as_ref().map(|f| f.as_ref()), result.as_ref().map(|r| r.as_ref())))
}

extern "C" fn rdb_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    let loaded = std::panic::catch_unwind(|| {
        if encver != ENCODING_VERSION {
            return None;
        }
        load_entry(rdb)
    });
    match loaded {
        Ok(Some(entry)) => {
            // Any token present in the data set must stay below future tokens (RESTORE included).
            with_node_counter(|c| c.observe(entry.token()));
            entry.into_raw()
        }
        _ => ptr::null_mut(),
    }
}

extern "C" fn rdb_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    // SAFETY: Redis passes back a value created by this type and keeps it alive for the call.
    let entry = unsafe { Entry::borrow_raw(value) };
    raw::save_unsigned(rdb, phase_code(entry.phase()));
    raw::save_unsigned(rdb, entry.token());
    raw::save_slice(rdb, entry.owner());
    let flags = if entry.fingerprint().is_some() { HAS_FINGERPRINT } else { 0 }
        | if entry.result().is_some() { HAS_RESULT } else { 0 };
    raw::save_unsigned(rdb, flags);
    if let Some(fp) = entry.fingerprint() {
        raw::save_slice(rdb, fp);
    }
    if let Some(result) = entry.result() {
        raw::save_slice(rdb, result);
    }
}

/// The arguments after the key of the `DEDUP.PUT` that recreates `entry`.
pub fn put_arguments(entry: &Entry, expires_at: Option<i64>, counter: Option<u64>) -> Vec<Vec<u8>> {
    let mut args = vec![
        entry.token().to_string().into_bytes(),
        entry.owner().to_vec(),
        entry.phase().as_str().as_bytes().to_vec(),
    ];
    if let Some(at) = expires_at {
        args.extend([b"PXAT".to_vec(), at.to_string().into_bytes()]);
    }
    if let Some(counter) = counter {
        args.extend([b"COUNTER".to_vec(), counter.to_string().into_bytes()]);
    }
    if let Some(fp) = entry.fingerprint() {
        args.extend([b"FP".to_vec(), fp.to_vec()]);
    }
    if let Some(result) = entry.result() {
        args.extend([b"RESULT".to_vec(), result.to_vec()]);
    }
    args
}

extern "C" fn aof_rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    // SAFETY: as in rdb_save.
    let entry = unsafe { Entry::borrow_raw(value) };
    // Redis appends PEXPIREAT after each rewritten key, so no PXAT here. COUNTER carries the
    // token counter into AOF files that have no RDB preamble (and so no aux data).
    let args: Vec<RedisString> = put_arguments(&entry, None, Some(node_counter()))
        .iter()
        .map(|a| RedisString::create_from_slice(ptr::null_mut(), a))
        .collect();
    let mut argv: Vec<*mut raw::RedisModuleString> = args.iter().map(|a| a.inner).collect();
    // SAFETY: "sv" = one RedisModuleString (the key), then an array of strings and its length.
    unsafe {
        raw::RedisModule_EmitAOF.expect("EmitAOF")(
            aof,
            c"DEDUP.PUT".as_ptr(),
            c"sv".as_ptr(),
            key,
            argv.as_mut_ptr(),
            argv.len(),
        );
    }
}

extern "C" fn free(value: *mut c_void) {
    if !value.is_null() {
        // SAFETY: Redis hands over a value of this type to be freed exactly once.
        drop(unsafe { Entry::from_raw(value) });
    }
}

extern "C" fn mem_usage(value: *const c_void) -> usize {
    // SAFETY: as in rdb_save.
    unsafe { Entry::borrow_raw(value.cast_mut()) }.heap_bytes()
}

extern "C" fn copy(
    _from: *mut raw::RedisModuleString,
    _to: *mut raw::RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    // SAFETY: as in rdb_save.
    unsafe { Entry::borrow_raw(value.cast_mut()) }.clone().into_raw()
}

extern "C" fn aux_save(rdb: *mut raw::RedisModuleIO, _when: c_int) {
    raw::save_unsigned(rdb, node_counter());
}

extern "C" fn aux_load(rdb: *mut raw::RedisModuleIO, encver: c_int, _when: c_int) -> c_int {
    if encver != ENCODING_VERSION {
        return raw::Status::Err as c_int;
    }
    match raw::load_unsigned(rdb) {
        Ok(counter) if counter <= MAX_TOKEN => {
            with_node_counter(|c| c.observe(counter));
            raw::Status::Ok as c_int
        }
        _ => raw::Status::Err as c_int,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_arguments_round_trip_through_the_parser() {
        let entry = Entry::new(Phase::Done, 42, &[0, 1, 2], Some(b"fp"), Some(&[0, 0xff]));
        let args = put_arguments(&entry, Some(1234), Some(99));
        let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let req = crate::parse::put(&argv).unwrap();
        let mut counter = crate::token::TokenCounter::default();
        assert_eq!(crate::machine::put(&req, &mut counter), (entry, Some(1234)));
        assert_eq!(counter.last(), 99);
    }
}
