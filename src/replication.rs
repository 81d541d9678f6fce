//! What the module sends to replicas and the AOF: effects with absolute times, never the calls.
//!
//! | effect | propagated as |
//! |---|---|
//! | new claim, completion, fence, PUT | `DEDUP.PUT key token owner phase PXAT <unix-ms> [FP fp] [RESULT r]` |
//! | lease reset (EXTEND, same-owner CLAIM) | `PEXPIREAT key <unix-ms>` |
//! | release | `DEL key` |
//!
//! These run on every write, so they hand Redis the parts directly (`RedisModule_Replicate` with
//! a format string) instead of building intermediate strings: on a server with neither replicas
//! nor AOF, Redis still builds the argument vector, and building it twice doubled the cost of a
//! claim (see BENCHMARKS.md).

use std::ffi::CStr;
use std::os::raw::{c_char, c_longlong};

use redis_module::{raw, Context, RedisString};

use crate::entry::Entry;
use crate::persistence::put_arguments;

fn replicate_fn() -> unsafe extern "C" fn(*mut raw::RedisModuleCtx, *const c_char, *const c_char, ...) -> i32 {
    // SAFETY: the API table is filled once at load and only read afterwards.
    unsafe { raw::RedisModule_Replicate.expect("RedisModule_Replicate") }
}

fn phase_word(entry: &Entry) -> &'static CStr {
    match entry.phase() {
        crate::entry::Phase::Claimed => c"CLAIMED",
        crate::entry::Phase::Done => c"DONE",
    }
}

/// `DEDUP.PUT` recreating `entry` under `key`, expiring at `expires_at` (absolute Unix ms).
pub fn put(ctx: &Context, key: &RedisString, entry: &Entry, expires_at: Option<i64>) {
    let Some(at) = expires_at else {
        // Only an entry someone PERSISTed has no expiry: rare, so the general path is fine.
        let mut args = vec![key.as_slice().to_vec()];
        args.extend(put_arguments(entry, None, None));
        let argv: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        ctx.replicate("DEDUP.PUT", argv.as_slice());
        return;
    };
    // Up to two options follow the fixed part, each as a keyword and a buffer; C ignores the
    // variadic arguments the format does not name, so unused slots are simply not read.
    let mut options: [(&CStr, &[u8]); 2] = [(c"", &[]), (c"", &[])];
    let mut used = 0;
    if let Some(fp) = entry.fingerprint() {
        options[used] = (c"FP", fp);
        used += 1;
    }
    if let Some(result) = entry.result() {
        options[used] = (c"RESULT", result);
        used += 1;
    }
    // s = the key itself, l = long long, b = buffer + length, c = C string.
    let format: &CStr = match used {
        0 => c"slbccl",
        1 => c"slbcclcb",
        _ => c"slbcclcbcb",
    };
    let owner = entry.owner();
    // SAFETY: every argument matches its format letter, all pointers outlive the call (Redis
    // copies what it keeps), and the trailing unused slots are never read.
    unsafe {
        replicate_fn()(
            ctx.ctx,
            c"DEDUP.PUT".as_ptr(),
            format.as_ptr(),
            key.inner,
            entry.token() as c_longlong,
            owner.as_ptr().cast::<c_char>(),
            owner.len(),
            phase_word(entry).as_ptr(),
            c"PXAT".as_ptr(),
            at as c_longlong,
            options[0].0.as_ptr(),
            options[0].1.as_ptr().cast::<c_char>(),
            options[0].1.len(),
            options[1].0.as_ptr(),
            options[1].1.as_ptr().cast::<c_char>(),
            options[1].1.len(),
        );
    }
}

/// `PEXPIREAT key <unix-ms>`
pub fn pexpireat(ctx: &Context, key: &RedisString, at: i64) {
    // SAFETY: "sl" = the key, then a long long.
    unsafe { replicate_fn()(ctx.ctx, c"PEXPIREAT".as_ptr(), c"sl".as_ptr(), key.inner, at as c_longlong) };
}

/// `DEL key`
pub fn del(ctx: &Context, key: &RedisString) {
    // SAFETY: "s" = the key.
    unsafe { replicate_fn()(ctx.ctx, c"DEL".as_ptr(), c"s".as_ptr(), key.inner) };
}
