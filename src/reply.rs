//! Writes DEDUP.* replies straight to the client through the reply API.
//!
//! Replies are plain arrays of a status word (a simple string) and integers, identical on RESP2
//! and RESP3. Writing them directly skips the crate's generic reply value, which allocates a C
//! string for every status word on every call.

use std::ffi::CStr;

use redis_module::{raw, Context};

use crate::machine::{ClaimReply, StatusReply};

fn array(ctx: &Context, len: usize) {
    // SAFETY: called from a command context; the API table is filled at load.
    unsafe { raw::RedisModule_ReplyWithArray.expect("ReplyWithArray")(ctx.ctx, len as _) };
}

fn word(ctx: &Context, w: &CStr) {
    // SAFETY: as above; `w` is NUL-terminated and contains no CR/LF.
    unsafe { raw::RedisModule_ReplyWithSimpleString.expect("ReplyWithSimpleString")(ctx.ctx, w.as_ptr()) };
}

fn integer(ctx: &Context, n: i64) {
    // SAFETY: as above.
    unsafe { raw::RedisModule_ReplyWithLongLong.expect("ReplyWithLongLong")(ctx.ctx, n) };
}

fn bulk_or_nil(ctx: &Context, bytes: Option<&[u8]>) {
    // SAFETY: as above; Redis copies the buffer.
    unsafe {
        match bytes {
            Some(b) => {
                raw::RedisModule_ReplyWithStringBuffer.expect("ReplyWithStringBuffer")(ctx.ctx, b.as_ptr().cast(), b.len())
            }
            None => raw::RedisModule_ReplyWithNull.expect("ReplyWithNull")(ctx.ctx),
        }
    };
}

/// Tokens never exceed `MAX_TOKEN` = `i64::MAX`.
fn token(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// `["CLAIMED", token, ttl-ms]`, `["HELD", pttl]`, `["DONE", pttl, result-or-nil]`, `["MISMATCH", pttl]`
pub fn claim(ctx: &Context, reply: &ClaimReply) {
    match reply {
        ClaimReply::Claimed { token: t, ttl_ms } => {
            array(ctx, 3);
            word(ctx, c"CLAIMED");
            integer(ctx, token(*t));
            integer(ctx, *ttl_ms);
        }
        ClaimReply::Held { pttl } => {
            array(ctx, 2);
            word(ctx, c"HELD");
            integer(ctx, *pttl);
        }
        ClaimReply::Done { pttl, result } => {
            array(ctx, 3);
            word(ctx, c"DONE");
            integer(ctx, *pttl);
            bulk_or_nil(ctx, result.as_deref());
        }
        ClaimReply::Mismatch { pttl } => {
            array(ctx, 2);
            word(ctx, c"MISMATCH");
            integer(ctx, *pttl);
        }
    }
}

/// `["FREE"]`, `["CLAIMED", pttl, token]`, `["DONE", pttl, token]`
pub fn status(ctx: &Context, reply: &StatusReply) {
    match reply {
        StatusReply::Free => {
            array(ctx, 1);
            word(ctx, c"FREE");
        }
        StatusReply::Claimed { pttl, token: t } | StatusReply::Done { pttl, token: t } => {
            array(ctx, 3);
            word(ctx, if matches!(reply, StatusReply::Claimed { .. }) { c"CLAIMED" } else { c"DONE" });
            integer(ctx, *pttl);
            integer(ctx, token(*t));
        }
    }
}

/// `1` or `0` from EXTEND, RELEASE, COMPLETE and FENCE.
pub fn flag(ctx: &Context, ok: bool) {
    integer(ctx, i64::from(ok));
}

/// `OK`
pub fn ok(ctx: &Context) {
    word(ctx, c"OK");
}
