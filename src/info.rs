//! `INFO dedup`: counters of what the commands decided, and the current fencing token.
//!
//! Redis prefixes every field with the module name, so `claims_claimed` shows as
//! `dedup_claims_claimed`. Nothing here can show an owner: only counts and the token are kept.

use std::sync::atomic::{AtomicU64, Ordering};

use redis_module::{InfoContext, RedisResult};
use redis_module_macros::info_command_handler;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    ClaimsClaimed,
    ClaimsHeld,
    ClaimsDone,
    ClaimsMismatch,
    ExtendsOk,
    ExtendsRejected,
    ReleasesOk,
    ReleasesRejected,
    CompletesOk,
    CompletesRejected,
    FencesOk,
    FencesRejected,
}

impl Stat {
    pub const ALL: [Stat; 12] = [
        Stat::ClaimsClaimed,
        Stat::ClaimsHeld,
        Stat::ClaimsDone,
        Stat::ClaimsMismatch,
        Stat::ExtendsOk,
        Stat::ExtendsRejected,
        Stat::ReleasesOk,
        Stat::ReleasesRejected,
        Stat::CompletesOk,
        Stat::CompletesRejected,
        Stat::FencesOk,
        Stat::FencesRejected,
    ];

    /// The INFO field name, without Redis's `dedup_` prefix.
    pub fn field(self) -> &'static str {
        match self {
            Stat::ClaimsClaimed => "claims_claimed",
            Stat::ClaimsHeld => "claims_held",
            Stat::ClaimsDone => "claims_done",
            Stat::ClaimsMismatch => "claims_mismatch",
            Stat::ExtendsOk => "extends_ok",
            Stat::ExtendsRejected => "extends_rejected",
            Stat::ReleasesOk => "releases_ok",
            Stat::ReleasesRejected => "releases_rejected",
            Stat::CompletesOk => "completes_ok",
            Stat::CompletesRejected => "completes_rejected",
            Stat::FencesOk => "fences_ok",
            Stat::FencesRejected => "fences_rejected",
        }
    }
}

static COUNTS: [AtomicU64; Stat::ALL.len()] = [const { AtomicU64::new(0) }; Stat::ALL.len()];

pub fn bump(stat: Stat) {
    COUNTS[stat as usize].fetch_add(1, Ordering::Relaxed);
}

pub fn count(stat: Stat) -> u64 {
    COUNTS[stat as usize].load(Ordering::Relaxed)
}

#[info_command_handler]
fn dedup_info(ctx: &InfoContext, _for_crash_report: bool) -> RedisResult<()> {
    // An empty section name makes Redis call the section plain `dedup`, so `INFO dedup` works.
    let mut section = ctx.builder().add_section("");
    for stat in Stat::ALL {
        section = section.field(stat.field(), count(stat))?;
    }
    section
        .field("token", crate::token::node_counter())?
        .field("max_ttl_ms", crate::config::limits().max_ttl_ms)?
        .field("max_result_bytes", crate::config::limits().max_result_bytes as u64)?
        .build_section()?
        .build_info()?;
    Ok(())
}
