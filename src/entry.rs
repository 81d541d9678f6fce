//! The value stored under a dedup key, and the limits on its parts.
//!
//! This file is plain Rust: no Redis types, so the state machine and the persistence code share
//! one definition of what an entry is.

/// Longest owner accepted. Owners are random secrets (the bundled client sends 40 hex chars).
pub const MAX_OWNER_BYTES: usize = 64;

/// Longest payload fingerprint accepted (a SHA-512 digest fits in raw form).
pub const MAX_FINGERPRINT_BYTES: usize = 64;

/// Largest token the module hands out or accepts: tokens are RESP integers, which are signed.
pub const MAX_TOKEN: u64 = i64::MAX as u64;

/// Where an entry is in its life. FREE is not a phase: a free id has no key at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// A lease held by one owner; it ends at the key's expiry unless extended or completed.
    Claimed,
    /// A completion marker, kept for the retention window so that late duplicates see it.
    Done,
}

impl Phase {
    /// The word used in replies, in `DEDUP.PUT` and in the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Claimed => "CLAIMED",
            Phase::Done => "DONE",
        }
    }

    /// Parses the word written by [`Phase::as_str`], case-insensitively as Redis does for keywords.
    pub fn parse(word: &[u8]) -> Option<Phase> {
        if word.eq_ignore_ascii_case(b"CLAIMED") {
            Some(Phase::Claimed)
        } else if word.eq_ignore_ascii_case(b"DONE") {
            Some(Phase::Done)
        } else {
            None
        }
    }
}

/// One dedup entry. Its expiry is not here: Redis keeps it with the key, so that Redis itself
/// reclaims the memory and persists the absolute expiry time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub phase: Phase,
    /// Fencing token issued when the claim was created (raised by `DEDUP.FENCE`).
    pub token: u64,
    /// Secret of the claimant. Never replied, logged or shown in INFO.
    pub owner: Vec<u8>,
    /// Optional payload fingerprint given at claim time.
    pub fingerprint: Option<Vec<u8>>,
    /// Optional result stored by `DEDUP.COMPLETE`, replayed to late duplicates.
    pub result: Option<Vec<u8>>,
}

impl Entry {
    /// A fresh claim.
    pub fn claimed(token: u64, owner: &[u8], fingerprint: Option<&[u8]>) -> Entry {
        Entry {
            phase: Phase::Claimed,
            token,
            owner: owner.to_vec(),
            fingerprint: fingerprint.map(<[u8]>::to_vec),
            result: None,
        }
    }

    /// True when this is a live lease of `owner`.
    pub fn is_claimed_by(&self, owner: &[u8]) -> bool {
        self.phase == Phase::Claimed && self.owner == owner
    }

    /// True when this is a completion marker written by `owner`.
    pub fn is_done_by(&self, owner: &[u8]) -> bool {
        self.phase == Phase::Done && self.owner == owner
    }

    /// "Same key, different payload": only when both sides carry a fingerprint and they differ.
    pub fn fingerprint_conflicts(&self, fingerprint: Option<&[u8]>) -> bool {
        matches!((self.fingerprint.as_deref(), fingerprint), (Some(stored), Some(given)) if stored != given)
    }

    /// Bytes owned on the heap, for `MEMORY USAGE`.
    pub fn heap_bytes(&self) -> usize {
        self.owner.capacity()
            + self.fingerprint.as_ref().map_or(0, Vec::capacity)
            + self.result.as_ref().map_or(0, Vec::capacity)
    }
}

/// When an entry stops existing, as Redis keeps it: an absolute Unix time in milliseconds, or
/// never (someone ran PERSIST on the key; the module itself always sets an expiry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    At(i64),
    Never,
}

impl Expiry {
    /// Redis treats a key as expired only once `now > when`, so an entry is still live at the
    /// exact millisecond of its expiry. Matching that keeps replies consistent with PTTL.
    pub fn is_live(self, now: i64) -> bool {
        match self {
            Expiry::At(when) => now <= when,
            Expiry::Never => true,
        }
    }

    /// Remaining milliseconds as PTTL reports them: -1 for no expiry.
    pub fn pttl(self, now: i64) -> i64 {
        match self {
            Expiry::At(when) => (when - now).max(0),
            Expiry::Never => -1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_conflict_only_when_both_present_and_different() {
        let mut e = Entry::claimed(1, b"o", Some(b"a"));
        assert!(e.fingerprint_conflicts(Some(b"b")));
        assert!(!e.fingerprint_conflicts(Some(b"a")));
        assert!(!e.fingerprint_conflicts(None));
        e.fingerprint = None;
        assert!(!e.fingerprint_conflicts(Some(b"b")));
    }

    #[test]
    fn expiry_matches_redis_boundary() {
        let at = Expiry::At(1_000);
        assert!(at.is_live(999));
        assert!(at.is_live(1_000));
        assert!(!at.is_live(1_001));
        assert_eq!(at.pttl(400), 600);
        assert_eq!(at.pttl(1_000), 0);
        assert_eq!(Expiry::Never.pttl(5), -1);
        assert!(Expiry::Never.is_live(i64::MAX));
    }

    #[test]
    fn phase_words_round_trip() {
        for phase in [Phase::Claimed, Phase::Done] {
            assert_eq!(Phase::parse(phase.as_str().as_bytes()), Some(phase));
        }
        assert_eq!(Phase::parse(b"done"), Some(Phase::Done));
        assert_eq!(Phase::parse(b"FREE"), None);
    }
}
