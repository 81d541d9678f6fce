//! The Redis-facing shell of each DEDUP.* command: parse, read the key, run the state machine,
//! apply and replicate the effect, count it, shape the reply.
//!
//! Effects are replicated, never the calls: a claim goes out as `DEDUP.PUT ... PXAT <absolute ms>`,
//! a lease reset as `PEXPIREAT`, a release as `DEL`. Replicas and the AOF therefore hold exactly
//! this server's state, and replaying the AOF after a restart cannot lengthen a lease.

use std::panic::{catch_unwind, AssertUnwindSafe};

use redis_module::{raw, Context, RedisError, RedisResult, RedisString, RedisValue};
use smallvec::SmallVec;

use crate::config;
use crate::entry::{EntryRef, Expiry};
use crate::errors::CommandError;
use crate::info::{bump, Stat};
use crate::keyspace::{now_ms, EntryKey};
use crate::machine::{self, ClaimReply, Effect, Stored};
use crate::token::with_node_counter;
use crate::{parse, replication, reply};

type Outcome = Result<RedisValue, CommandError>;

/// Runs a command body so that neither a bad argument nor a bug can hurt the server: errors
/// become error replies, and a panic is caught here instead of unwinding into Redis.
fn guarded(ctx: &Context, command: &'static str, body: impl FnOnce() -> Outcome) -> RedisResult {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(CommandError::WrongArity)) => Err(RedisError::WrongArity),
        Ok(Err(e)) => Err(RedisError::String(e.to_string())),
        Err(_) => {
            ctx.log_warning(&format!("dedup: caught a panic in {command}; the call was refused"));
            Err(RedisError::String(CommandError::Internal { command }.to_string()))
        }
    }
}

/// The arguments after the key. The longest valid call (PUT with every option) has 11, so they
/// stay on the stack: this runs on every command.
type Rest<'a> = SmallVec<[&'a [u8]; 12]>;

/// Splits `[command, key, rest..]` into the key and the rest as byte slices.
fn split(args: &[RedisString]) -> Result<(&RedisString, Rest<'_>), CommandError> {
    match args {
        [_, key, rest @ ..] => Ok((key, rest.iter().map(RedisString::as_slice).collect())),
        _ => Err(CommandError::WrongArity),
    }
}

/// Keeps the owner out of SLOWLOG and MONITOR. `position` counts the command name as 0.
fn redact(ctx: &Context, position: i32) {
    // SAFETY: the API table is filled once at load and only read afterwards; the call is made
    // from a command context with a valid argument position.
    unsafe {
        if let Some(redact) = raw::RedisModule_RedactClientCommandArgument {
            redact(ctx.ctx, position);
        }
    }
}

fn stored<'a>(entry: &'a Option<(EntryRef<'_>, Expiry)>) -> Option<Stored<'a>> {
    entry.as_ref().map(|(entry, expiry)| Stored { entry, expiry: *expiry })
}

/// The command replied itself (see `reply`); the crate must not add a reply.
const REPLIED: Outcome = Ok(RedisValue::NoReply);

/// Applies a state-machine effect to the open key and replicates it.
fn apply(ctx: &Context, name: &RedisString, key: &EntryKey, effect: Effect) -> Result<(), CommandError> {
    match effect {
        Effect::None => {}
        Effect::Store { entry, expires_at } => {
            replication::put(ctx, name, &entry, expires_at);
            key.store(entry, expires_at);
        }
        Effect::Renew { expires_at } => {
            key.expire_at(expires_at);
            replication::pexpireat(ctx, name, expires_at);
        }
        Effect::RaiseToken { token } => {
            if let Some((mut entry, expiry)) = key.stored()? {
                entry.set_token(token);
                let at = match expiry {
                    Expiry::At(at) => Some(at),
                    Expiry::Never => None,
                };
                replication::put(ctx, name, &entry, at);
            }
        }
        Effect::Delete => {
            key.delete();
            replication::del(ctx, name);
        }
    }
    Ok(())
}

/// One write command in progress: its key and its arguments after the key.
struct Call<'a> {
    ctx: &'a Context,
    name: &'a RedisString,
    rest: Rest<'a>,
}

impl<'a> Call<'a> {
    fn new(ctx: &'a Context, args: &'a [RedisString]) -> Result<Call<'a>, CommandError> {
        let (name, rest) = split(args)?;
        Ok(Call { ctx, name, rest })
    }

    /// Runs one transition on the key: read, decide, apply and replicate the effect. Called
    /// only after the arguments parsed, so a bad call never reaches the key.
    fn run<R>(
        &self,
        owner_position: i32,
        transition: impl FnOnce(Option<Stored<'_>>, i64) -> Result<machine::Step<R>, CommandError>,
    ) -> Result<R, CommandError> {
        redact(self.ctx, owner_position);
        let key = EntryKey::writable(self.ctx, self.name);
        let current = key.stored()?;
        let step = transition(stored(&current), now_ms())?;
        drop(current);
        apply(self.ctx, self.name, &key, step.effect)?;
        Ok(step.reply)
    }
}

/// Counts an owner command's 1/0 reply and sends it.
fn counted(ctx: &Context, reply: bool, ok: Stat, rejected: Stat) -> Outcome {
    bump(if reply { ok } else { rejected });
    reply::flag(ctx, reply);
    REPLIED
}

/// `DEDUP.CLAIM key ttl-ms owner [FP fingerprint]`
pub fn claim(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guarded(ctx, "dedup.claim", || {
        let call = Call::new(ctx, &args)?;
        let req = parse::claim(&call.rest, &config::limits())?;
        let reply = call.run(3, |current, now| {
            with_node_counter(|c| machine::claim(current, &req, now, c))
                .map_err(|_| CommandError::TokensExhausted)
        })?;
        bump(match reply {
            ClaimReply::Claimed { .. } => Stat::ClaimsClaimed,
            ClaimReply::Held { .. } => Stat::ClaimsHeld,
            ClaimReply::Done { .. } => Stat::ClaimsDone,
            ClaimReply::Mismatch { .. } => Stat::ClaimsMismatch,
        });
        reply::claim(ctx, &reply);
        REPLIED
    })
}

/// `DEDUP.EXTEND key ttl-ms owner`
pub fn extend(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guarded(ctx, "dedup.extend", || {
        let call = Call::new(ctx, &args)?;
        let req = parse::extend(&call.rest, &config::limits())?;
        let reply = call.run(3, |current, now| Ok(machine::extend(current, &req, now)))?;
        counted(ctx, reply, Stat::ExtendsOk, Stat::ExtendsRejected)
    })
}

/// `DEDUP.RELEASE key owner`
pub fn release(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guarded(ctx, "dedup.release", || {
        let call = Call::new(ctx, &args)?;
        let req = parse::release(&call.rest)?;
        let reply = call.run(2, |current, now| Ok(machine::release(current, &req, now)))?;
        counted(ctx, reply, Stat::ReleasesOk, Stat::ReleasesRejected)
    })
}

/// `DEDUP.COMPLETE key retention-ms owner [RESULT value]`
pub fn complete(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guarded(ctx, "dedup.complete", || {
        let call = Call::new(ctx, &args)?;
        let req = parse::complete(&call.rest, &config::limits())?;
        let reply = call.run(3, |current, now| Ok(machine::complete(current, &req, now)))?;
        counted(ctx, reply, Stat::CompletesOk, Stat::CompletesRejected)
    })
}

/// `DEDUP.FENCE key token owner`
pub fn fence(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guarded(ctx, "dedup.fence", || {
        let call = Call::new(ctx, &args)?;
        let req = parse::fence(&call.rest)?;
        let reply = call.run(3, |current, now| {
            Ok(with_node_counter(|c| machine::fence(current, &req, now, c)))
        })?;
        counted(ctx, reply, Stat::FencesOk, Stat::FencesRejected)
    })
}

/// `DEDUP.STATUS key`
pub fn status(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guarded(ctx, "dedup.status", || {
        let (name, rest) = split(&args)?;
        parse::status(&rest)?;
        let key = EntryKey::readable(ctx, name);
        let current = key.stored()?;
        reply::status(ctx, &machine::status(stored(&current), now_ms()));
        REPLIED
    })
}

/// `DEDUP.PUT key token owner phase [PXAT unix-ms] [COUNTER n] [FP fp] [RESULT value]`
pub fn put(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    guarded(ctx, "dedup.put", || {
        let (name, rest) = split(&args)?;
        let req = parse::put(&rest)?;
        redact(ctx, 3);
        let key = EntryKey::writable(ctx, name);
        // PUT overwrites, but never another type's key.
        drop(key.stored()?);
        let (entry, expires_at) = with_node_counter(|c| machine::put(&req, c));
        key.store(entry, expires_at);
        // PUT is already an absolute effect: replicate it as given, COUNTER included, so a
        // replica's counter never trails this server's.
        let argv: Vec<&[u8]> = args[1..].iter().map(RedisString::as_slice).collect();
        ctx.replicate("DEDUP.PUT", argv.as_slice());
        reply::ok(ctx);
        REPLIED
    })
}
