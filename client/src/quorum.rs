//! The quorum rules, as pure functions of the replies gathered so far.
//!
//! Nothing here does I/O or reads a clock: the caller passes the replies (a slot per node, `None`
//! while a node has not answered) and, for claims, the lease length and the time spent so far.
//! That keeps every rule of the crate's guarantees in one place, tested on its own with tables and
//! property tests.
//!
//! With `n` nodes the quorum is `q = n / 2 + 1`. The claim rules, in order of precedence:
//!
//! 1. any `DONE` → [`Verdict::Completed`] (final at once: nothing can outrank it);
//! 2. any `MISMATCH` → [`Verdict::Mismatch`];
//! 3. `CLAIMED` on at least `q` nodes and validity left → [`Verdict::Acquired`];
//! 4. `HELD` on at least `q` nodes → [`Verdict::InProgress`], and **only then**;
//! 5. anything else → [`Verdict::Retry`], whose [`RetryCause`] says whether node failures stood in
//!    the way of a quorum.
//!
//! Because `DONE` outranks everything, a verdict other than `Completed` is only certain once every
//! node has answered or failed (each node's request has its own timeout, so that wait is bounded).
//! [`decide`] returns [`Verdict::Pending`] until then.

use std::time::Duration;

/// The number of nodes that must agree among `nodes`: a strict majority.
///
/// Two majorities of the same node set always share at least one node; every guarantee of the
/// crate rests on that.
pub(crate) const fn quorum(nodes: usize) -> usize {
    nodes / 2 + 1
}

/// The clock-drift allowance taken off every lease: 1 % of its length plus 2 ms, as in Redlock.
pub(crate) fn drift(ttl: Duration) -> Duration {
    ttl / 100 + Duration::from_millis(2)
}

/// How long a lease of length `ttl` can be trusted once `elapsed` has passed since the request
/// went out: `ttl - elapsed - drift(ttl)`, or zero.
pub(crate) fn validity(ttl: Duration, elapsed: Duration) -> Duration {
    ttl.saturating_sub(elapsed).saturating_sub(drift(ttl))
}

/// One node's answer to `DEDUP.CLAIM`, as far as the quorum is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Vote {
    /// The node gave us the claim (new, or renewed for the same owner) with this token.
    Claimed { token: u64 },
    /// Another owner holds the claim there for this much longer.
    Held { pttl: Duration },
    /// The id is done there; the stored result, if any.
    Done { result: Option<Vec<u8>> },
    /// The id is stored there with another fingerprint.
    Mismatch,
    /// An error, a timeout, or a reply that is not a well-formed `DEDUP.CLAIM` reply. It counts
    /// against every quorum and is never read as any of the answers above.
    Failed,
}

impl std::fmt::Display for Vote {
    /// For logs: the word and its number, never a stored result.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Vote::Claimed { token } => write!(f, "CLAIMED(token={token})"),
            Vote::Held { pttl } => write!(f, "HELD(pttl={}ms)", pttl.as_millis()),
            Vote::Done { .. } => f.write_str("DONE"),
            Vote::Mismatch => f.write_str("MISMATCH"),
            Vote::Failed => f.write_str("FAILED"),
        }
    }
}

/// What to do with a claim round, given the replies so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not certain yet: wait for more replies.
    Pending,
    /// The id is done; `node` is the index of a node that said `DONE` (read its result).
    Completed { node: usize },
    /// The id is stored with another fingerprint.
    Mismatch,
    /// We hold the id on a quorum; `token` is the largest token among our `CLAIMED` replies.
    Acquired { token: u64, validity: Duration },
    /// Another owner holds the id on a quorum. `retry_after` is when enough of those leases end
    /// for a new claim to have a chance, if nobody extends or completes them.
    InProgress { retry_after: Duration },
    /// No verdict this round: release what we got and try again (or give up).
    Retry(RetryCause),
}

impl Verdict {
    /// Whether the round can stop here.
    pub(crate) fn is_final(&self) -> bool {
        !matches!(self, Verdict::Pending)
    }

    /// A short word for logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Verdict::Pending => "pending",
            Verdict::Completed { .. } => "completed",
            Verdict::Mismatch => "mismatch",
            Verdict::Acquired { .. } => "acquired",
            Verdict::InProgress { .. } => "in_progress",
            Verdict::Retry(RetryCause::Failures) => "retry_failures",
            Verdict::Retry(RetryCause::Split) => "retry_split",
            Verdict::Retry(RetryCause::Expired) => "retry_expired",
        }
    }
}

/// Why a round ended without a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RetryCause {
    /// Failed nodes stood in the way: had they answered `CLAIMED` (or `HELD`), there would have
    /// been a quorum. Out of retries, this is [`crate::Error::Unavailable`].
    Failures,
    /// Every node answered, but they split between owners so that no quorum formed (racing
    /// claims). Out of retries, this is [`crate::Error::Contended`].
    Split,
    /// We got a quorum, but too late: the lease had no validity left. Out of retries, this is
    /// [`crate::Error::Contended`] (the nodes answered, just too slowly).
    Expired,
}

/// The claim decision: the one function that turns the replies of a round into a verdict.
///
/// `votes` has one slot per node, `None` while the node has not answered. `ttl` is the requested
/// lease and `elapsed` the time since the round's requests went out.
pub(crate) fn decide(votes: &[Option<Vote>], ttl: Duration, elapsed: Duration) -> Verdict {
    if let Some(node) = votes.iter().position(|v| matches!(v, Some(Vote::Done { .. }))) {
        return Verdict::Completed { node };
    }
    if votes.iter().any(Option::is_none) {
        return Verdict::Pending;
    }
    let q = quorum(votes.len());
    let (mut claimed, mut failed, mut mismatch) = (0, 0, false);
    let mut token = 0;
    let mut held = Vec::new();
    for vote in votes.iter().flatten() {
        match vote {
            Vote::Claimed { token: t } => {
                claimed += 1;
                token = token.max(*t);
            }
            Vote::Held { pttl } => held.push(*pttl),
            Vote::Mismatch => mismatch = true,
            Vote::Failed => failed += 1,
            Vote::Done { .. } => unreachable!("handled above"),
        }
    }
    if mismatch {
        return Verdict::Mismatch;
    }
    if claimed >= q {
        let validity = validity(ttl, elapsed);
        return if validity.is_zero() {
            Verdict::Retry(RetryCause::Expired)
        } else {
            Verdict::Acquired { token, validity }
        };
    }
    if held.len() >= q {
        // A new claim needs q nodes that are not held: n - held are free now, so the
        // (q - (n - held))-th earliest-ending lease has to end first.
        let n = claimed + failed + held.len();
        let must_end = q - (n - held.len());
        held.sort_unstable();
        return Verdict::InProgress { retry_after: held[must_end - 1] };
    }
    // Had the failed nodes answered, could there have been a quorum? Always, when any failed:
    // a split that no answer of theirs could decide needs claimed + failed < q and
    // held + failed < q, so n + failed < 2q, which leaves no room for a failure (2q - n is 1 or 2,
    // and with one failure on an even n the other two counts cannot add up to n - 1).
    if failed > 0 {
        Verdict::Retry(RetryCause::Failures)
    } else {
        Verdict::Retry(RetryCause::Split)
    }
}

/// Replies to the owner commands (`EXTEND`, `FENCE`, `COMPLETE`, `RELEASE`), counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Acks {
    /// Replied 1: done for this owner.
    pub(crate) yes: usize,
    /// Replied 0: the node does not hold the claim for this owner.
    pub(crate) no: usize,
    /// Failed or timed out.
    pub(crate) failed: usize,
    /// Not answered yet.
    pub(crate) pending: usize,
}

/// Where a quorum of acknowledgements stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AckVerdict {
    /// Not certain yet.
    Pending,
    /// At least a quorum said yes.
    Reached,
    /// More than `n - q` nodes said no: a quorum of nodes no longer holds the claim for us, so no
    /// retry can succeed.
    Rejected,
    /// No quorum, and it is not a rejection: failed nodes stood in the way.
    Unreachable,
}

impl Acks {
    /// Counts a slot per node: `None` while pending, `Some(Ok(ack))` or `Some(Err(_))`.
    pub(crate) fn count<E>(slots: &[Option<Result<bool, E>>]) -> Acks {
        let mut acks = Acks::default();
        for slot in slots {
            match slot {
                None => acks.pending += 1,
                Some(Ok(true)) => acks.yes += 1,
                Some(Ok(false)) => acks.no += 1,
                Some(Err(_)) => acks.failed += 1,
            }
        }
        acks
    }

    pub(crate) fn nodes(&self) -> usize {
        self.yes + self.no + self.failed + self.pending
    }

    /// The verdict for operations that need a quorum (`EXTEND`, `FENCE`), certain as early as
    /// possible: it never changes as pending slots fill in.
    pub(crate) fn quorum_verdict(&self) -> AckVerdict {
        let n = self.nodes();
        let q = quorum(n);
        if self.yes >= q {
            AckVerdict::Reached
        } else if self.yes + self.pending >= q {
            AckVerdict::Pending
        } else if self.no > n - q {
            AckVerdict::Rejected
        } else if self.no + self.pending <= n - q {
            AckVerdict::Unreachable
        } else {
            AckVerdict::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TTL: Duration = Duration::from_millis(10_000);
    const EARLY: Duration = Duration::from_millis(3);

    fn claimed(token: u64) -> Option<Vote> {
        Some(Vote::Claimed { token })
    }
    fn held(ms: u64) -> Option<Vote> {
        Some(Vote::Held { pttl: Duration::from_millis(ms) })
    }
    fn done(result: &[u8]) -> Option<Vote> {
        Some(Vote::Done { result: Some(result.to_vec()) })
    }
    const MISMATCH: Option<Vote> = Some(Vote::Mismatch);
    const FAILED: Option<Vote> = Some(Vote::Failed);
    const PENDING: Option<Vote> = None;

    #[test]
    fn quorum_is_a_strict_majority() {
        let table = [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 4), (7, 4)];
        for (n, q) in table {
            assert_eq!(quorum(n), q, "n = {n}");
            assert!(2 * quorum(n) > n, "two quorums of {n} nodes must intersect");
        }
    }

    #[test]
    fn validity_takes_off_elapsed_time_and_drift() {
        assert_eq!(drift(TTL), Duration::from_millis(102));
        assert_eq!(validity(TTL, EARLY), Duration::from_millis(10_000 - 3 - 102));
        assert_eq!(validity(TTL, Duration::from_millis(9_898)), Duration::ZERO);
        assert_eq!(validity(TTL, Duration::from_millis(9_897)), Duration::from_millis(1));
        assert_eq!(validity(TTL, Duration::from_secs(60)), Duration::ZERO);
        assert_eq!(validity(Duration::from_millis(2), Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn decision_table() {
        let acquired = |token| Verdict::Acquired { token, validity: validity(TTL, EARLY) };
        let in_progress = |ms| Verdict::InProgress { retry_after: Duration::from_millis(ms) };
        let cases: Vec<(&str, Vec<Option<Vote>>, Verdict)> = vec![
            ("one node, claimed", vec![claimed(4)], acquired(4)),
            ("one node, held", vec![held(50)], in_progress(50)),
            ("one node, failed", vec![FAILED], Verdict::Retry(RetryCause::Failures)),
            ("all claimed: the largest token", vec![claimed(4), claimed(9), claimed(7)], acquired(9)),
            ("quorum claimed, one failed", vec![claimed(4), FAILED, claimed(5)], acquired(5)),
            ("quorum claimed, one held", vec![claimed(4), held(9), claimed(5)], acquired(5)),
            ("all held: earliest of the two that must end", vec![held(30), held(10), held(20)], in_progress(20)),
            ("quorum held, one failed", vec![held(30), FAILED, held(20)], in_progress(20)),
            ("quorum held, one ours", vec![held(30), claimed(1), held(20)], in_progress(20)),
            ("five: three held, two ours", vec![held(5), claimed(1), held(9), claimed(2), held(7)], in_progress(5)),
            ("five: four held", vec![held(5), held(1), held(9), held(8), claimed(3)], in_progress(5)),
            ("done wins over everything", vec![claimed(1), claimed(2), done(b"r")], Verdict::Completed { node: 2 }),
            ("done before anyone else answered", vec![PENDING, done(b"r"), PENDING], Verdict::Completed { node: 1 }),
            ("done among failures", vec![FAILED, FAILED, done(b"r")], Verdict::Completed { node: 2 }),
            ("done outranks mismatch", vec![MISMATCH, done(b"r"), claimed(1)], Verdict::Completed { node: 1 }),
            ("mismatch outranks a claimed quorum", vec![claimed(1), claimed(2), MISMATCH], Verdict::Mismatch),
            ("mismatch waits for the rest", vec![MISMATCH, PENDING, PENDING], Verdict::Pending),
            ("a claimed quorum waits for the rest", vec![claimed(1), claimed(2), PENDING], Verdict::Pending),
            ("a held quorum waits for the rest", vec![held(1), held(2), PENDING], Verdict::Pending),
            ("majority failed: unavailable, not in progress", vec![FAILED, held(5), FAILED], Verdict::Retry(RetryCause::Failures)),
            ("majority failed: unavailable, not acquired", vec![FAILED, claimed(5), FAILED], Verdict::Retry(RetryCause::Failures)),
            ("all failed", vec![FAILED, FAILED, FAILED], Verdict::Retry(RetryCause::Failures)),
            ("split with a failure that could have decided", vec![claimed(1), held(5), FAILED], Verdict::Retry(RetryCause::Failures)),
            ("four nodes, two against two", vec![claimed(1), held(5), held(7), claimed(2)], Verdict::Retry(RetryCause::Split)),
            (
                "five: two against two, and the failure could have decided",
                vec![claimed(1), claimed(2), held(5), held(7), FAILED],
                Verdict::Retry(RetryCause::Failures),
            ),
            (
                "seven: 2 claimed, 2 held, 3 more held: in progress",
                vec![claimed(1), claimed(2), held(5), held(7), held(1), held(2), held(3)],
                in_progress(2),
            ),
            (
                "seven: 3 claimed, 3 held, 1 failed: failure stood in the way",
                vec![claimed(1), claimed(2), claimed(3), held(7), held(1), held(2), FAILED],
                Verdict::Retry(RetryCause::Failures),
            ),
            (
                "six: 3 claimed, 3 held: a tie is a split",
                vec![claimed(1), claimed(2), claimed(3), held(7), held(1), held(2)],
                Verdict::Retry(RetryCause::Split),
            ),
        ];
        for (name, votes, want) in cases {
            assert_eq!(decide(&votes, TTL, EARLY), want, "{name}");
        }
    }

    #[test]
    fn a_quorum_that_arrives_too_late_is_not_acquired() {
        let votes = [claimed(1), claimed(2), claimed(3)];
        assert_eq!(decide(&votes, TTL, Duration::from_millis(9_898)), Verdict::Retry(RetryCause::Expired));
        assert!(matches!(decide(&votes, TTL, Duration::from_millis(9_897)), Verdict::Acquired { .. }));
    }

    #[test]
    fn ack_table() {
        fn acks(yes: usize, no: usize, failed: usize, pending: usize) -> AckVerdict {
            Acks { yes, no, failed, pending }.quorum_verdict()
        }
        assert_eq!(acks(2, 0, 0, 1), AckVerdict::Reached);
        assert_eq!(acks(2, 1, 0, 0), AckVerdict::Reached);
        assert_eq!(acks(1, 0, 0, 2), AckVerdict::Pending);
        assert_eq!(acks(0, 2, 0, 1), AckVerdict::Rejected);
        assert_eq!(acks(1, 2, 0, 0), AckVerdict::Rejected);
        assert_eq!(acks(0, 0, 2, 1), AckVerdict::Unreachable, "one more no cannot make a rejection");
        assert_eq!(acks(0, 0, 3, 0), AckVerdict::Unreachable);
        assert_eq!(acks(1, 1, 1, 0), AckVerdict::Unreachable);
        assert_eq!(acks(0, 1, 1, 1), AckVerdict::Pending);
        assert_eq!(acks(0, 1, 2, 2), AckVerdict::Pending, "five nodes: two more no would reject");
        assert_eq!(acks(0, 0, 3, 2), AckVerdict::Unreachable, "five nodes: two no cannot reject");
        assert_eq!(acks(1, 0, 0, 0), AckVerdict::Reached);
        assert_eq!(acks(0, 1, 0, 0), AckVerdict::Rejected);
    }

    #[test]
    fn acks_count_each_kind_of_slot() {
        let slots: Vec<Option<Result<bool, ()>>> =
            vec![Some(Ok(true)), Some(Ok(false)), Some(Err(())), None, Some(Ok(true))];
        assert_eq!(Acks::count(&slots), Acks { yes: 2, no: 1, failed: 1, pending: 1 });
    }

    fn vote() -> impl Strategy<Value = Vote> {
        prop_oneof![
            (1u64..50).prop_map(|token| Vote::Claimed { token }),
            (0u64..20_000).prop_map(|ms| Vote::Held { pttl: Duration::from_millis(ms) }),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..4))
                .prop_map(|result| Vote::Done { result }),
            Just(Vote::Mismatch),
            Just(Vote::Failed),
        ]
    }

    /// A round in progress: n = 1..=7 slots, some still pending, and a fill for the pending ones.
    fn round() -> impl Strategy<Value = (Vec<Option<Vote>>, Vec<Vote>, Duration)> {
        (1usize..=7)
            .prop_flat_map(|n| {
                (
                    proptest::collection::vec(proptest::option::weighted(0.8, vote()), n),
                    proptest::collection::vec(vote(), n),
                    (0u64..12_000).prop_map(Duration::from_millis),
                )
            })
    }

    fn count(votes: &[Option<Vote>], f: impl Fn(&Vote) -> bool) -> usize {
        votes.iter().flatten().filter(|v| f(v)).count()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn invariants_hold_for_every_vote_vector((votes, _, elapsed) in round()) {
            let n = votes.len();
            let q = quorum(n);
            let verdict = decide(&votes, TTL, elapsed);
            let claimed = count(&votes, |v| matches!(v, Vote::Claimed { .. }));
            let held = count(&votes, |v| matches!(v, Vote::Held { .. }));
            let failed = count(&votes, |v| matches!(v, Vote::Failed));
            let any_done = count(&votes, |v| matches!(v, Vote::Done { .. })) > 0;
            let pending = votes.iter().filter(|v| v.is_none()).count();

            // Any DONE gives Completed, pointing at a DONE.
            if any_done {
                let Verdict::Completed { node } = verdict else {
                    return Err(TestCaseError::fail(format!("DONE present but {verdict:?}")));
                };
                let points_at_done = matches!(votes[node], Some(Vote::Done { .. }));
                prop_assert!(points_at_done);
            }
            match &verdict {
                Verdict::InProgress { .. } => prop_assert!(held >= q, "InProgress with {held} HELD of {n}"),
                Verdict::Acquired { token, validity } => {
                    prop_assert!(claimed >= q, "Acquired with {claimed} CLAIMED of {n}");
                    prop_assert!(!validity.is_zero());
                    let max = votes.iter().flatten().filter_map(|v| match v {
                        Vote::Claimed { token } => Some(*token),
                        _ => None,
                    }).max();
                    prop_assert_eq!(Some(*token), max);
                }
                Verdict::Mismatch => prop_assert!(!any_done && count(&votes, |v| *v == Vote::Mismatch) > 0),
                Verdict::Retry(RetryCause::Failures) => prop_assert!(failed > 0),
                Verdict::Completed { .. } => prop_assert!(any_done),
                Verdict::Pending => prop_assert!(pending > 0),
                Verdict::Retry(_) => {}
            }
            // Only a DONE makes a verdict before every node has answered.
            if pending > 0 && !any_done {
                prop_assert_eq!(&verdict, &Verdict::Pending);
            }
            // A failed majority can never look like a duplicate or a held claim.
            if failed > n - q {
                prop_assert!(
                    matches!(verdict, Verdict::Retry(RetryCause::Failures) | Verdict::Completed { .. }
                        | Verdict::Mismatch | Verdict::Pending),
                    "{failed} of {n} failed but {verdict:?}"
                );
            }
            // A round that got no quorum blames the nodes exactly when some failed.
            if let Verdict::Retry(cause @ (RetryCause::Failures | RetryCause::Split)) = verdict {
                prop_assert_eq!(cause == RetryCause::Failures, failed > 0);
            }
        }

        #[test]
        fn an_early_verdict_is_the_final_verdict((votes, fill, elapsed) in round()) {
            let early = decide(&votes, TTL, elapsed);
            let complete: Vec<Option<Vote>> = votes
                .iter()
                .zip(fill)
                .map(|(slot, filler)| Some(slot.clone().unwrap_or(filler)))
                .collect();
            let last = decide(&complete, TTL, elapsed);
            prop_assert!(last.is_final(), "a complete round must decide");
            if early.is_final() {
                // Any DONE node will do: they all store the one result of the one completer.
                let kind = |v: Verdict| match v {
                    Verdict::Completed { .. } => Verdict::Completed { node: 0 },
                    other => other,
                };
                prop_assert_eq!(kind(early), kind(last));
            }
        }

        #[test]
        fn an_early_ack_verdict_is_the_final_verdict(
            slots in (1usize..=7).prop_flat_map(|n| (
                proptest::collection::vec(proptest::option::weighted(0.7, proptest::option::of(any::<bool>())), n),
                proptest::collection::vec(proptest::option::of(any::<bool>()), n),
            ))
        ) {
            let (partial, fill) = slots;
            let to_slot = |s: Option<bool>| s.ok_or(());
            let early: Vec<Option<Result<bool, ()>>> = partial.iter().map(|s| s.map(to_slot)).collect();
            let complete: Vec<Option<Result<bool, ()>>> = partial
                .iter()
                .zip(fill)
                .map(|(s, f)| Some(to_slot(s.unwrap_or(f))))
                .collect();
            let (early, last) = (Acks::count(&early), Acks::count(&complete));
            let q = quorum(last.nodes());
            let verdict = last.quorum_verdict();
            prop_assert_ne!(verdict, AckVerdict::Pending);
            prop_assert_eq!(verdict == AckVerdict::Reached, last.yes >= q);
            if verdict == AckVerdict::Rejected {
                prop_assert!(last.no > last.nodes() - q);
            }
            if early.quorum_verdict() != AckVerdict::Pending {
                prop_assert_eq!(early.quorum_verdict(), verdict);
            }
        }
    }
}
