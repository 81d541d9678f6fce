//! Command metadata beyond the flags: summary, complexity, arity, key specs and arguments, so
//! `COMMAND DOCS dedup.claim`, `COMMAND INFO` and client libraries that read them describe the
//! commands, and Redis checks arity before the module is called.
//!
//! Uses `RedisModule_SetCommandInfo` where the server has it (Redis 7.0+, Valkey); elsewhere the
//! commands keep the key positions given at registration and check their own arity.

use std::ffi::CString;
use std::os::raw::c_int;
use std::ptr;

use redis_module::commands::{
    get_redis_command_args, get_redis_key_spec, BeginSearch, CommandArgFlags, FindKeys, KeySpec, KeySpecFlags,
    RedisModuleCommandArg,
};
use redis_module::{raw, Context};

const SINCE: &str = "0.1.0";

/// One argument after the command name: name, type, optional keyword before it, optional or not.
type Arg = (&'static str, u32, Option<&'static str>, bool);

struct Doc {
    name: &'static str,
    summary: &'static str,
    /// Redis convention: exact count including the name, or -N for "at least N".
    arity: c_int,
    key_flags: KeySpecFlags,
    args: &'static [Arg],
}

const KEY: Arg = ("key", raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY, None, false);
const OWNER: Arg = ("owner", raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING, None, false);
const INTEGER: u32 = raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER;
const STRING: u32 = raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING;

fn docs() -> [Doc; 7] {
    // KeySpecFlags is not Copy: build a fresh value for each command.
    let write = || KeySpecFlags::READ_WRITE | KeySpecFlags::ACCESS | KeySpecFlags::UPDATE;
    [
        Doc {
            name: "dedup.claim",
            summary: "Takes the lease on an id unless another owner holds it or it is done; replies CLAIMED, HELD, DONE (with the stored result) or MISMATCH.",
            arity: -4,
            key_flags: write(),
            args: &[KEY, ("ttl-ms", INTEGER, None, false), OWNER, ("fingerprint", STRING, Some("FP"), true)],
        },
        Doc {
            name: "dedup.extend",
            summary: "Resets the owner's lease to ttl-ms from now; 1 if the owner holds it, else 0.",
            arity: 4,
            key_flags: write(),
            args: &[KEY, ("ttl-ms", INTEGER, None, false), OWNER],
        },
        Doc {
            name: "dedup.release",
            summary: "Deletes the owner's claim so a retry can run at once; 1 if the owner held it, else 0. Never deletes a completion marker.",
            arity: 3,
            key_flags: KeySpecFlags::READ_WRITE | KeySpecFlags::ACCESS | KeySpecFlags::DELETE,
            args: &[KEY, OWNER],
        },
        Doc {
            name: "dedup.complete",
            summary: "Turns the owner's claim into a completion marker kept for retention-ms, with an optional result replayed to duplicates; idempotent.",
            arity: -4,
            key_flags: write(),
            args: &[KEY, ("retention-ms", INTEGER, None, false), OWNER, ("result", STRING, Some("RESULT"), true)],
        },
        Doc {
            name: "dedup.fence",
            summary: "Raises the owner's fencing token and this server's token counter to at least token; 1 if the owner holds the claim, else 0.",
            arity: 4,
            key_flags: write(),
            args: &[KEY, ("token", INTEGER, None, false), OWNER],
        },
        Doc {
            name: "dedup.status",
            summary: "Reads an id's state without changing it: FREE, CLAIMED (pttl, token) or DONE (pttl, token).",
            arity: 2,
            key_flags: KeySpecFlags::READ_ONLY | KeySpecFlags::ACCESS,
            args: &[KEY],
        },
        Doc {
            name: "dedup.put",
            summary: "Writes an entry as given, with an absolute expiry: the form in which the module replicates effects and rewrites the AOF.",
            arity: -5,
            key_flags: KeySpecFlags::OVERWRITE | KeySpecFlags::UPDATE,
            args: &[
                KEY,
                ("token", INTEGER, None, false),
                OWNER,
                ("phase", STRING, None, false),
                ("unix-time-milliseconds", raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_UNIX_TIME, Some("PXAT"), true),
                ("counter", INTEGER, Some("COUNTER"), true),
                ("fingerprint", STRING, Some("FP"), true),
                ("result", STRING, Some("RESULT"), true),
            ],
        },
    ]
}

fn command_args(doc: &Doc) -> Vec<RedisModuleCommandArg> {
    doc.args
        .iter()
        .map(|&(name, type_, token, optional)| {
            let key_spec_index = (type_ == raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_KEY).then_some(0);
            let flags = if optional { CommandArgFlags::OPTIONAL } else { CommandArgFlags::NONE };
            RedisModuleCommandArg::new(
                name.to_string(),
                type_,
                key_spec_index,
                token.map(str::to_string),
                None,
                None,
                flags,
                None,
                None,
                None,
            )
        })
        .collect()
}

/// Attaches the docs to the registered commands. Returns false (and logs) if the server lacks
/// the API or refuses the info; the commands work either way.
pub fn register(ctx: &Context) -> bool {
    // SAFETY: the API table is filled at load and only read afterwards.
    let (Some(get_command), Some(set_info)) =
        (unsafe { raw::RedisModule_GetCommand }, unsafe { raw::RedisModule_SetCommandInfo })
    else {
        ctx.log_notice("redis-dedup: this server has no command-info API; COMMAND DOCS will be bare");
        return false;
    };
    let version = raw::RedisModuleCommandInfoVersion {
        version: 1,
        sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
        sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
        sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
    };
    let complexity = c"O(1)";
    let since = CString::new(SINCE).expect("no NUL");
    for doc in docs() {
        let name = CString::new(doc.name).expect("no NUL");
        let summary = CString::new(doc.summary).expect("no NUL");
        // Key at position 1, one key: what cluster routing and key-pattern ACLs read.
        let args = get_redis_command_args(command_args(&doc)).unwrap_or_default();
        let key_specs = get_redis_key_spec(vec![KeySpec::new(
            None,
            doc.key_flags,
            BeginSearch::new_index(1),
            FindKeys::new_range(0, 1, 0),
        )]);
        let mut info = raw::RedisModuleCommandInfo {
            version: &version,
            summary: summary.as_ptr(),
            complexity: complexity.as_ptr(),
            since: since.as_ptr(),
            history: ptr::null_mut(),
            tips: ptr::null(),
            arity: doc.arity,
            key_specs: key_specs.as_ptr().cast_mut(),
            args: args.as_ptr().cast_mut(),
        };
        // SAFETY: the command was registered in this OnLoad; Redis copies everything it keeps
        // from `info`, and every pointer in it outlives the call. The argument strings the crate
        // allocated are left to the process: a few hundred bytes once per module load.
        let ok = unsafe {
            let command = get_command(ctx.ctx, name.as_ptr());
            !command.is_null() && set_info(command, &mut info) == raw::REDISMODULE_OK as c_int
        };
        if !ok {
            ctx.log_warning(&format!("redis-dedup: could not set command info for {}", doc.name));
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arity_matches_the_argument_lists() {
        for doc in docs() {
            let required = 1 + doc.args.iter().filter(|a| !a.3).count() as c_int;
            if doc.arity > 0 {
                assert_eq!(doc.arity, required, "{}", doc.name);
                assert!(doc.args.iter().all(|a| !a.3), "{} has options but a fixed arity", doc.name);
            } else {
                assert_eq!(-doc.arity, required, "{}", doc.name);
            }
            assert_eq!(doc.args[0].0, "key", "{}: the key comes first", doc.name);
        }
    }
}
