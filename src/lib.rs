//! redis-dedup: a Redis module whose DEDUP.* commands stop duplicate requests (webhook
//! deliveries, retried jobs) from being processed twice.
//!
//! Layout, from the inside out:
//! - [`entry`]: what a key holds; [`token`]: the per-server fencing counter;
//! - [`machine`]: every command as a pure state transition, with the clock passed in;
//! - [`parse`] and [`errors`]: argument checking and every error message;
//! - [`commands`]: the Redis shell around the machine; [`keyspace`]: the key API calls;
//!   [`replication`]: the effects sent to replicas and the AOF; [`reply`]: reply shapes;
//! - [`persistence`]: RDB, AOF rewrite, COPY, MEMORY USAGE; [`config`]; [`info`];
//! - [`server_checks`]: warnings about server settings that break deduplication.
//!
//! The protocol reference is docs/PROTOCOL.md.

pub mod command_docs;
pub mod commands;
pub mod config;
pub mod entry;
pub mod errors;
pub mod info;
pub mod keyspace;
pub mod machine;
pub mod parse;
pub mod persistence;
pub mod replication;
pub mod reply;
pub mod server_checks;
pub mod token;

use persistence::DEDUP_TYPE;
use redis_module::configuration::ConfigurationFlags;
use redis_module::{redis_module, AclCategory, Context, RedisString, Status};

/// Module version as Redis shows it in MODULE LIST: major * 10000 + minor * 100 + patch.
pub const MODULE_VERSION: i32 = 100;

// Unit tests run without Redis, where the Redis allocator does not exist.
#[cfg(not(test))]
type ModuleAllocator = redis_module::alloc::RedisAlloc;
#[cfg(test)]
type ModuleAllocator = std::alloc::System;
#[cfg(not(test))]
const MODULE_ALLOCATOR: ModuleAllocator = redis_module::alloc::RedisAlloc;
#[cfg(test)]
const MODULE_ALLOCATOR: ModuleAllocator = std::alloc::System;

fn on_load(ctx: &Context, _args: &[RedisString]) -> Status {
    // Without this option Redis aborts the whole server when a module's RDB reader hits a short
    // read, which a corrupt RESTORE payload can cause. With it, the loader sees the error and
    // refuses the value (persistence::rdb_load returns null), and diskless replica loading is safe.
    // SAFETY: called once from OnLoad with the module's context.
    unsafe {
        if let Some(set_options) = redis_module::raw::RedisModule_SetModuleOptions {
            set_options(ctx.ctx, redis_module::raw::REDISMODULE_OPTIONS_HANDLE_IO_ERRORS as i32);
        }
    }
    let limits = config::limits();
    ctx.log_notice(&format!(
        "redis-dedup {} loaded: max-ttl-ms={} max-result-bytes={} token={}",
        env!("CARGO_PKG_VERSION"),
        limits.max_ttl_ms,
        limits.max_result_bytes,
        token::node_counter(),
    ));
    server_checks::warn_if_evicting(ctx);
    command_docs::register(ctx);
    Status::Ok
}

// Command table: name, handler, flags, first key, last key, key step, ACL categories.
// The ACL category field stays empty: setting one needs Redis 7.2 and would fail to load on 7.0.
redis_module! {
    name: "dedup",
    version: MODULE_VERSION,
    allocator: (ModuleAllocator, MODULE_ALLOCATOR),
    data_types: [DEDUP_TYPE],
    acl_categories: [
        "dedup",
    ],
    init: on_load,
    commands: [
        ["dedup.claim", commands::claim, "write deny-oom fast", 1, 1, 1, "", "dedup"],
        ["dedup.extend", commands::extend, "write fast", 1, 1, 1, "", "dedup"],
        ["dedup.release", commands::release, "write fast", 1, 1, 1, "", "dedup"],
        ["dedup.complete", commands::complete, "write deny-oom fast", 1, 1, 1, "", "dedup"],
        ["dedup.fence", commands::fence, "write fast", 1, 1, 1, "", "dedup"],
        ["dedup.status", commands::status, "readonly fast", 1, 1, 1, "", "dedup"],
        ["dedup.put", commands::put, "write deny-oom fast", 1, 1, 1, "", "dedup"],
    ],
    configurations: [
        i64: [
            ["max-ttl-ms", &config::MAX_TTL_MS, config::DEFAULT_MAX_TTL_MS, 1, config::MAX_TTL_MS_CEILING, ConfigurationFlags::DEFAULT, None],
            ["max-result-bytes", &config::MAX_RESULT_BYTES, config::DEFAULT_MAX_RESULT_BYTES, 0, config::MAX_RESULT_BYTES_CEILING, ConfigurationFlags::DEFAULT, None],
        ],
        string: [],
        bool: [],
        enum: [],
        module_args_as_configuration: true,
    ]
}
