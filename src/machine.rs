//! The dedup state machine: every DEDUP.* command as a pure function of the stored entry, the
//! request and the current time.
//!
//! Nothing here touches Redis. The command layer reads the key, calls one function below, applies
//! the returned [`Effect`] to the key and replicates it, and shapes the reply. Keeping the rules
//! here means they are tested table-driven with an injected clock, without a server.
//!
//! ```text
//!            CLAIM (new token)                 COMPLETE (same owner)
//!   FREE ───────────────────────▶ CLAIMED ───────────────────────────▶ DONE
//!    ▲                            │  │  ▲                               │
//!    │   RELEASE (same owner)     │  │  │ CLAIM/EXTEND (same owner):    │
//!    ├────────────────────────────┘  │  │ lease reset                   │
//!    │   lease expires               │  │ FENCE: token raised           │
//!    ├───────────────────────────────┘  └──                             │
//!    │   retention expires                                              │
//!    └──────────────────────────────────────────────────────────────────┘
//! ```

use crate::entry::{Entry, Expiry, Phase};
use crate::token::TokenCounter;

/// The entry under a key together with its expiry, as read from Redis.
#[derive(Clone, Copy, Debug)]
pub struct Stored<'a> {
    pub entry: &'a Entry,
    pub expiry: Expiry,
}

/// `DEDUP.CLAIM key ttl-ms owner [FP fingerprint]`
#[derive(Clone, Copy, Debug)]
pub struct ClaimRequest<'a> {
    pub ttl_ms: i64,
    pub owner: &'a [u8],
    pub fingerprint: Option<&'a [u8]>,
}

/// `DEDUP.EXTEND key ttl-ms owner`
#[derive(Clone, Copy, Debug)]
pub struct ExtendRequest<'a> {
    pub ttl_ms: i64,
    pub owner: &'a [u8],
}

/// `DEDUP.RELEASE key owner`
#[derive(Clone, Copy, Debug)]
pub struct ReleaseRequest<'a> {
    pub owner: &'a [u8],
}

/// `DEDUP.COMPLETE key retention-ms owner [RESULT value]`
#[derive(Clone, Copy, Debug)]
pub struct CompleteRequest<'a> {
    pub retention_ms: i64,
    pub owner: &'a [u8],
    pub result: Option<&'a [u8]>,
}

/// `DEDUP.FENCE key token owner`
#[derive(Clone, Copy, Debug)]
pub struct FenceRequest<'a> {
    pub token: u64,
    pub owner: &'a [u8],
}

/// `DEDUP.PUT key token owner phase [PXAT ms] [COUNTER n] [FP fp] [RESULT value]`: writes an
/// entry as it is. This is how effects reach replicas and the AOF.
#[derive(Clone, Copy, Debug)]
pub struct PutRequest<'a> {
    pub token: u64,
    pub owner: &'a [u8],
    pub phase: Phase,
    pub expires_at: Option<i64>,
    pub counter_floor: Option<u64>,
    pub fingerprint: Option<&'a [u8]>,
    pub result: Option<&'a [u8]>,
}

/// What the command layer must do to the key after a transition. Each variant is also what gets
/// replicated, so that replicas and the AOF hold the same absolute state as this server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Read-only outcome.
    None,
    /// Store this entry (a new claim, a completion marker), replacing the old one, to expire at
    /// the given absolute time. `None` only comes from PUT without PXAT, which leaves the key
    /// without expiry (AOF rewrites follow it with PEXPIREAT).
    Store { entry: Entry, expires_at: Option<i64> },
    /// Keep the entry, move its expiry.
    Renew { expires_at: i64 },
    /// Raise the entry's token in place; the expiry is unchanged.
    RaiseToken { token: u64 },
    /// Remove the key.
    Delete,
}

/// A reply plus the effect that produced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step<R> {
    pub reply: R,
    pub effect: Effect,
}

impl<R> Step<R> {
    fn read_only(reply: R) -> Step<R> {
        Step { reply, effect: Effect::None }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimReply {
    Claimed { token: u64, ttl_ms: i64 },
    Held { pttl: i64 },
    Done { pttl: i64, result: Option<Vec<u8>> },
    Mismatch { pttl: i64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusReply {
    Free,
    Claimed { pttl: i64, token: u64 },
    Done { pttl: i64, token: u64 },
}

/// The server's token range is used up; no new claim can get a larger token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokensExhausted;

/// An entry whose expiry has passed is FREE even if Redis has not reclaimed the key yet.
fn live(stored: Option<Stored<'_>>, now: i64) -> Option<Stored<'_>> {
    stored.filter(|s| s.expiry.is_live(now))
}

pub fn claim(
    stored: Option<Stored<'_>>,
    req: &ClaimRequest<'_>,
    now: i64,
    tokens: &mut TokenCounter,
) -> Result<Step<ClaimReply>, TokensExhausted> {
    let Some(Stored { entry, expiry }) = live(stored, now) else {
        let token = tokens.issue().ok_or(TokensExhausted)?;
        return Ok(Step {
            reply: ClaimReply::Claimed { token, ttl_ms: req.ttl_ms },
            effect: Effect::Store {
                entry: Entry::claimed(token, req.owner, req.fingerprint),
                expires_at: Some(now + req.ttl_ms),
            },
        });
    };
    let pttl = expiry.pttl(now);
    // A different payload under the same id is reported before anything else, even to the owner
    // and even once done: replaying a result computed from another payload would be wrong.
    if entry.fingerprint_conflicts(req.fingerprint) {
        return Ok(Step::read_only(ClaimReply::Mismatch { pttl }));
    }
    Ok(match entry.phase() {
        Phase::Done => Step::read_only(ClaimReply::Done { pttl, result: entry.result().map(<[u8]>::to_vec) }),
        Phase::Claimed if entry.owner() == req.owner => Step {
            reply: ClaimReply::Claimed { token: entry.token(), ttl_ms: req.ttl_ms },
            effect: Effect::Renew { expires_at: now + req.ttl_ms },
        },
        Phase::Claimed => Step::read_only(ClaimReply::Held { pttl }),
    })
}

/// Reply `true` means the lease now ends `ttl_ms` from `now`.
pub fn extend(stored: Option<Stored<'_>>, req: &ExtendRequest<'_>, now: i64) -> Step<bool> {
    match live(stored, now) {
        Some(s) if s.entry.is_claimed_by(req.owner) => {
            Step { reply: true, effect: Effect::Renew { expires_at: now + req.ttl_ms } }
        }
        _ => Step::read_only(false),
    }
}

/// Reply `true` means the claim was deleted. A DONE entry is never deleted this way.
pub fn release(stored: Option<Stored<'_>>, req: &ReleaseRequest<'_>, now: i64) -> Step<bool> {
    match live(stored, now) {
        Some(s) if s.entry.is_claimed_by(req.owner) => Step { reply: true, effect: Effect::Delete },
        _ => Step::read_only(false),
    }
}

/// Reply `true` means the entry is DONE by this owner: just now, or already (a retried COMPLETE
/// is idempotent and keeps the first result and retention).
pub fn complete(stored: Option<Stored<'_>>, req: &CompleteRequest<'_>, now: i64) -> Step<bool> {
    match live(stored, now) {
        Some(s) if s.entry.is_claimed_by(req.owner) => Step {
            reply: true,
            effect: Effect::Store {
                entry: s.entry.completed(req.result),
                expires_at: Some(now + req.retention_ms),
            },
        },
        Some(s) if s.entry.is_done_by(req.owner) => Step::read_only(true),
        _ => Step::read_only(false),
    }
}

/// Reply `true` means the owner's claim now carries at least `req.token`, and so does the
/// server's counter, so every later claim on this server gets a larger token.
pub fn fence(
    stored: Option<Stored<'_>>,
    req: &FenceRequest<'_>,
    now: i64,
    tokens: &mut TokenCounter,
) -> Step<bool> {
    match live(stored, now) {
        Some(s) if s.entry.is_claimed_by(req.owner) => {
            tokens.observe(req.token);
            let token = s.entry.token().max(req.token);
            let effect =
                if token == s.entry.token() { Effect::None } else { Effect::RaiseToken { token } };
            Step { reply: true, effect }
        }
        _ => Step::read_only(false),
    }
}

pub fn status(stored: Option<Stored<'_>>, now: i64) -> StatusReply {
    match live(stored, now) {
        None => StatusReply::Free,
        Some(Stored { entry, expiry }) => {
            let pttl = expiry.pttl(now);
            match entry.phase() {
                Phase::Claimed => StatusReply::Claimed { pttl, token: entry.token() },
                Phase::Done => StatusReply::Done { pttl, token: entry.token() },
            }
        }
    }
}

/// The entry to write as given, with its expiry, after raising the counter to cover its token and
/// any counter floor. PUT always stores, so it returns what to store rather than an [`Effect`].
pub fn put(req: &PutRequest<'_>, tokens: &mut TokenCounter) -> (Entry, Option<i64>) {
    tokens.observe(req.token);
    if let Some(floor) = req.counter_floor {
        tokens.observe(floor);
    }
    (Entry::new(req.phase, req.token, req.owner, req.fingerprint, req.result), req.expires_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;
    const ME: &[u8] = b"owner-me";
    const THEM: &[u8] = b"owner-them";

    fn claimed_by(owner: &[u8], token: u64, fp: Option<&[u8]>) -> Entry {
        Entry::claimed(token, owner, fp)
    }

    fn done_by(owner: &[u8], token: u64, fp: Option<&[u8]>, result: Option<&[u8]>) -> Entry {
        Entry::new(Phase::Done, token, owner, fp, result)
    }

    fn at(entry: &Entry, expires_at: i64) -> Option<Stored<'_>> {
        Some(Stored { entry, expiry: Expiry::At(expires_at) })
    }

    #[test]
    fn claim_table() {
        let mine = claimed_by(ME, 7, Some(b"fp1"));
        let theirs = claimed_by(THEM, 7, None);
        let done = done_by(THEM, 7, Some(b"fp1"), Some(b"record 42"));
        let done_no_result = done_by(THEM, 7, None, None);

        struct Case<'a> {
            name: &'a str,
            stored: Option<Stored<'a>>,
            owner: &'a [u8],
            fp: Option<&'a [u8]>,
            reply: ClaimReply,
            effect: Effect,
        }
        let cases = [
            Case {
                name: "free key: new claim with the next token",
                stored: None,
                owner: ME,
                fp: Some(b"fp1"),
                reply: ClaimReply::Claimed { token: 11, ttl_ms: 500 },
                effect: Effect::Store { entry: claimed_by(ME, 11, Some(b"fp1")), expires_at: Some(NOW + 500) },
            },
            Case {
                name: "expired claim counts as free",
                stored: at(&theirs, NOW - 1),
                owner: ME,
                fp: None,
                reply: ClaimReply::Claimed { token: 11, ttl_ms: 500 },
                effect: Effect::Store { entry: claimed_by(ME, 11, None), expires_at: Some(NOW + 500) },
            },
            Case {
                name: "claim at its exact expiry millisecond is still held",
                stored: at(&theirs, NOW),
                owner: ME,
                fp: None,
                reply: ClaimReply::Held { pttl: 0 },
                effect: Effect::None,
            },
            Case {
                name: "held by another owner",
                stored: at(&theirs, NOW + 300),
                owner: ME,
                fp: Some(b"anything"),
                reply: ClaimReply::Held { pttl: 300 },
                effect: Effect::None,
            },
            Case {
                name: "same owner again: same token, lease reset",
                stored: at(&mine, NOW + 10),
                owner: ME,
                fp: Some(b"fp1"),
                reply: ClaimReply::Claimed { token: 7, ttl_ms: 500 },
                effect: Effect::Renew { expires_at: NOW + 500 },
            },
            Case {
                name: "same owner with a different payload is a mismatch",
                stored: at(&mine, NOW + 10),
                owner: ME,
                fp: Some(b"fp2"),
                reply: ClaimReply::Mismatch { pttl: 10 },
                effect: Effect::None,
            },
            Case {
                name: "done: the stored result is replayed",
                stored: at(&done, NOW + 9_000),
                owner: ME,
                fp: Some(b"fp1"),
                reply: ClaimReply::Done { pttl: 9_000, result: Some(b"record 42".to_vec()) },
                effect: Effect::None,
            },
            Case {
                name: "done without fingerprint on the call",
                stored: at(&done, NOW + 9_000),
                owner: ME,
                fp: None,
                reply: ClaimReply::Done { pttl: 9_000, result: Some(b"record 42".to_vec()) },
                effect: Effect::None,
            },
            Case {
                name: "done without result replies nil",
                stored: at(&done_no_result, NOW + 5),
                owner: ME,
                fp: Some(b"x"),
                reply: ClaimReply::Done { pttl: 5, result: None },
                effect: Effect::None,
            },
            Case {
                name: "done with another payload is a mismatch",
                stored: at(&done, NOW + 9_000),
                owner: THEM,
                fp: Some(b"fp2"),
                reply: ClaimReply::Mismatch { pttl: 9_000 },
                effect: Effect::None,
            },
            Case {
                name: "expired done marker counts as free",
                stored: at(&done, NOW - 1),
                owner: ME,
                fp: None,
                reply: ClaimReply::Claimed { token: 11, ttl_ms: 500 },
                effect: Effect::Store { entry: claimed_by(ME, 11, None), expires_at: Some(NOW + 500) },
            },
        ];
        for case in cases {
            let mut tokens = TokenCounter::starting_at(10);
            let req = ClaimRequest { ttl_ms: 500, owner: case.owner, fingerprint: case.fp };
            let step = claim(case.stored, &req, NOW, &mut tokens).unwrap();
            assert_eq!(step.reply, case.reply, "{}", case.name);
            assert_eq!(step.effect, case.effect, "{}", case.name);
            let issued = matches!(case.effect, Effect::Store { .. });
            assert_eq!(tokens.last(), if issued { 11 } else { 10 }, "{}", case.name);
        }
    }

    #[test]
    fn claim_refuses_when_tokens_run_out_and_changes_nothing() {
        let mut tokens = TokenCounter::starting_at(crate::entry::MAX_TOKEN);
        let req = ClaimRequest { ttl_ms: 1, owner: ME, fingerprint: None };
        assert_eq!(claim(None, &req, NOW, &mut tokens), Err(TokensExhausted));
        assert_eq!(tokens.last(), crate::entry::MAX_TOKEN);
    }

    #[test]
    fn owner_operations_table() {
        let mine = claimed_by(ME, 3, None);
        let theirs = claimed_by(THEM, 3, None);
        let my_done = done_by(ME, 3, None, Some(b"r"));
        let their_done = done_by(THEM, 3, None, None);

        // (name, stored, extend, release, complete)
        let cases: [(&str, Option<Stored<'_>>, bool, bool, bool); 7] = [
            ("free", None, false, false, false),
            ("my claim", at(&mine, NOW + 100), true, true, true),
            ("my claim at its last millisecond", at(&mine, NOW), true, true, true),
            ("my claim just expired", at(&mine, NOW - 1), false, false, false),
            ("their claim", at(&theirs, NOW + 100), false, false, false),
            ("my done marker", at(&my_done, NOW + 100), false, false, true),
            ("their done marker", at(&their_done, NOW + 100), false, false, false),
        ];
        for (name, stored, extends, releases, completes) in cases {
            let e = extend(stored, &ExtendRequest { ttl_ms: 900, owner: ME }, NOW);
            assert_eq!(e.reply, extends, "extend: {name}");
            let want = if extends { Effect::Renew { expires_at: NOW + 900 } } else { Effect::None };
            assert_eq!(e.effect, want, "extend: {name}");

            let r = release(stored, &ReleaseRequest { owner: ME }, NOW);
            assert_eq!(r.reply, releases, "release: {name}");
            assert_eq!(r.effect, if releases { Effect::Delete } else { Effect::None }, "{name}");

            let req = CompleteRequest { retention_ms: 5_000, owner: ME, result: Some(b"new") };
            let c = complete(stored, &req, NOW);
            assert_eq!(c.reply, completes, "complete: {name}");
            let fresh = stored.is_some_and(|s| s.entry.phase() == Phase::Claimed) && completes;
            let want = if fresh {
                Effect::Store {
                    entry: done_by(ME, 3, None, Some(b"new")),
                    expires_at: Some(NOW + 5_000),
                }
            } else {
                Effect::None
            };
            assert_eq!(c.effect, want, "complete: {name}");
        }
    }

    #[test]
    fn fence_raises_entry_and_counter_but_never_lowers() {
        let mine = claimed_by(ME, 5, None);
        let theirs = claimed_by(THEM, 5, None);

        let mut tokens = TokenCounter::starting_at(5);
        let step = fence(at(&mine, NOW + 1), &FenceRequest { token: 40, owner: ME }, NOW, &mut tokens);
        assert_eq!(step, Step { reply: true, effect: Effect::RaiseToken { token: 40 } });
        assert_eq!(tokens.last(), 40);

        let mut tokens = TokenCounter::starting_at(90);
        let step = fence(at(&mine, NOW + 1), &FenceRequest { token: 2, owner: ME }, NOW, &mut tokens);
        assert_eq!(step, Step { reply: true, effect: Effect::None });
        assert_eq!(tokens.last(), 90);

        let mut tokens = TokenCounter::starting_at(5);
        let step =
            fence(at(&theirs, NOW + 1), &FenceRequest { token: 40, owner: ME }, NOW, &mut tokens);
        assert_eq!(step, Step::read_only(false));
        assert_eq!(tokens.last(), 5, "a refused fence must not move the counter");

        let step = fence(at(&mine, NOW - 1), &FenceRequest { token: 40, owner: ME }, NOW, &mut tokens);
        assert!(!step.reply, "an expired lease cannot be fenced");
    }

    #[test]
    fn status_table() {
        let c = claimed_by(THEM, 8, None);
        let d = done_by(THEM, 9, None, None);
        let never = Some(Stored { entry: &c, expiry: Expiry::Never });
        let cases = [
            (None, StatusReply::Free),
            (at(&c, NOW + 40), StatusReply::Claimed { pttl: 40, token: 8 }),
            (at(&c, NOW), StatusReply::Claimed { pttl: 0, token: 8 }),
            (at(&c, NOW - 1), StatusReply::Free),
            (at(&d, NOW + 1), StatusReply::Done { pttl: 1, token: 9 }),
            (never, StatusReply::Claimed { pttl: -1, token: 8 }),
        ];
        for (stored, want) in cases {
            assert_eq!(status(stored, NOW), want);
        }
    }

    #[test]
    fn put_observes_token_and_counter_floor() {
        let mut tokens = TokenCounter::starting_at(3);
        let req = PutRequest {
            token: 9,
            owner: ME,
            phase: Phase::Done,
            expires_at: Some(NOW + 1),
            counter_floor: Some(20),
            fingerprint: Some(b"f"),
            result: Some(b"r"),
        };
        let stored = put(&req, &mut tokens);
        assert_eq!(tokens.last(), 20);
        assert_eq!(stored, (done_by(ME, 9, Some(b"f"), Some(b"r")), Some(NOW + 1)));
    }

    #[test]
    fn lifecycle_with_a_moving_clock() {
        // One id through its whole life, with the clock injected step by step.
        let mut tokens = TokenCounter::default();
        let req = ClaimRequest { ttl_ms: 100, owner: ME, fingerprint: None };
        let Effect::Store { entry, expires_at: Some(expires_at) } = claim(None, &req, NOW, &mut tokens).unwrap().effect
        else {
            panic!("expected a new claim")
        };
        let mut expiry = Expiry::At(expires_at);
        let other = ClaimRequest { ttl_ms: 100, owner: THEM, fingerprint: None };
        let at_t = |t| claim(Some(Stored { entry: &entry, expiry }), &other, t, &mut TokenCounter::default());
        assert_eq!(at_t(NOW + 100).unwrap().reply, ClaimReply::Held { pttl: 0 });
        assert!(matches!(at_t(NOW + 101).unwrap().reply, ClaimReply::Claimed { .. }));

        let ext = extend(Some(Stored { entry: &entry, expiry }), &ExtendRequest { ttl_ms: 100, owner: ME }, NOW + 90);
        let Effect::Renew { expires_at } = ext.effect else { panic!("extend failed") };
        expiry = Expiry::At(expires_at);
        let creq = CompleteRequest { retention_ms: 1_000, owner: ME, result: None };
        let Effect::Store { entry, expires_at: Some(expires_at) } =
            complete(Some(Stored { entry: &entry, expiry }), &creq, NOW + 150).effect
        else {
            panic!("complete failed")
        };
        expiry = Expiry::At(expires_at);
        let s = status(Some(Stored { entry: &entry, expiry }), NOW + 1_150);
        assert_eq!(s, StatusReply::Done { pttl: 0, token: 1 });
        assert_eq!(status(Some(Stored { entry: &entry, expiry }), NOW + 1_151), StatusReply::Free);
    }
}
