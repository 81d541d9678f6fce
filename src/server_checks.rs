//! Warnings about server settings that quietly break deduplication.
//!
//! An evicted entry reads as FREE, so the next duplicate is processed again: under an evicting
//! `maxmemory-policy` a full server turns memory pressure into duplicate processing without any
//! error. Every dedup key carries a TTL, so the `volatile-*` policies evict them first. The module
//! cannot refuse the setting, so it says so in the log at load and whenever the policy changes.

use redis_module::Context;
use redis_module_macros::config_changed_event_handler;

/// `None` when the policy is safe, else the warning to log.
pub fn eviction_warning(policy: &str) -> Option<String> {
    (policy != "noeviction").then(|| {
        format!(
            "redis-dedup: maxmemory-policy is {policy}; evicted dedup entries look FREE and \
             duplicates will be processed again. Set maxmemory-policy noeviction."
        )
    })
}

/// Logs a warning if the server's current policy evicts.
pub fn warn_if_evicting(ctx: &Context) {
    let info = ctx.server_info("memory");
    let Some(policy) = info.field("maxmemory_policy") else { return };
    if let Some(warning) = eviction_warning(&policy.to_string_lossy()) {
        ctx.log_warning(&warning);
    }
}

#[config_changed_event_handler]
fn on_config_changed(ctx: &Context, names: &[&str]) {
    if names.contains(&"maxmemory-policy") {
        warn_if_evicting(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::eviction_warning;

    #[test]
    fn only_noeviction_is_safe() {
        assert_eq!(eviction_warning("noeviction"), None);
        for policy in ["allkeys-lru", "volatile-lru", "volatile-ttl", "allkeys-random", "volatile-lfu"] {
            assert!(eviction_warning(policy).unwrap().contains(policy));
        }
    }
}
