//! The evidence behind a claim's verdict: what every node answered, round by round.
//!
//! [`crate::Dedup::claim_with_report`] returns a [`ClaimReport`] next to the outcome. It exists
//! so that a verdict can be checked by someone who does not trust the client's own rules: a
//! fault-injection checker, an audit log, an incident review. It holds node addresses, tokens,
//! lease times and errors; never the owner (the claim's secret) and never a stored result.

use std::fmt;
use std::time::Duration;

use crate::error::NodeError;
use crate::quorum::{RetryCause, Verdict, Vote};

/// What one node answered to `DEDUP.CLAIM` in one round, as the quorum rules read it.
///
/// The module's reply words map one to one; anything that is not a well-formed reply is
/// [`NodeReply::Failed`], which the rules count as a failure and never as a vote.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum NodeReply {
    /// `CLAIMED`: the node gave this claim the lease, with this token.
    Claimed {
        /// The token the node issued (or kept, for a renewal by the same owner).
        token: u64,
    },
    /// `HELD`: another owner holds the id on this node.
    Held {
        /// How much longer that lease lasts on the node, at the latest.
        pttl: Duration,
    },
    /// `DONE`: the id is completed on this node. (The stored result is in the outcome,
    /// [`crate::Claim::Completed`], not repeated here.)
    Done,
    /// `MISMATCH`: the id is stored on this node with another fingerprint.
    Mismatch,
    /// An error reply, a timeout, a dropped connection, or a reply that is not a well-formed
    /// `DEDUP.CLAIM` reply.
    Failed(NodeError),
    /// The round ended before this node answered: a `DONE` from another node decides at once,
    /// and the replies still out are not waited for.
    Unanswered,
}

impl NodeReply {
    /// The word for this reply: `CLAIMED`, `HELD`, `DONE`, `MISMATCH`, `FAILED` or
    /// `UNANSWERED`.
    pub fn word(&self) -> &'static str {
        match self {
            NodeReply::Claimed { .. } => "CLAIMED",
            NodeReply::Held { .. } => "HELD",
            NodeReply::Done => "DONE",
            NodeReply::Mismatch => "MISMATCH",
            NodeReply::Failed(_) => "FAILED",
            NodeReply::Unanswered => "UNANSWERED",
        }
    }

    fn from_slot(slot: &Option<Result<Vote, NodeError>>) -> NodeReply {
        match slot {
            None => NodeReply::Unanswered,
            Some(Err(error)) => NodeReply::Failed(error.clone()),
            Some(Ok(Vote::Claimed { token })) => NodeReply::Claimed { token: *token },
            Some(Ok(Vote::Held { pttl })) => NodeReply::Held { pttl: *pttl },
            Some(Ok(Vote::Done { .. })) => NodeReply::Done,
            Some(Ok(Vote::Mismatch)) => NodeReply::Mismatch,
            // Parsing never produces this (errors stay `Err` until the rules read them); should it
            // ever, it is still a failure and never a vote.
            Some(Ok(Vote::Failed)) => {
                NodeReply::Failed(NodeError::Malformed { command: "DEDUP.CLAIM", reply: "a failed vote".to_string() })
            }
        }
    }
}

impl fmt::Display for NodeReply {
    /// `CLAIMED(token=7)`, `HELD(pttl=950ms)`, `FAILED(no reply within 50ms)`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeReply::Claimed { token } => write!(f, "CLAIMED(token={token})"),
            NodeReply::Held { pttl } => write!(f, "HELD(pttl={}ms)", pttl.as_millis()),
            NodeReply::Failed(error) => write!(f, "FAILED({error})"),
            other => f.write_str(other.word()),
        }
    }
}

/// How the rules read one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoundVerdict {
    /// A node said `DONE`: the claim ends with [`crate::Claim::Completed`].
    Completed,
    /// A node said `MISMATCH`: the claim ends with [`crate::Claim::Mismatch`].
    Mismatch,
    /// A quorum said `CLAIMED` with validity left. In fenced mode the fence comes next
    /// ([`ClaimReport::fence`]).
    Acquired,
    /// A quorum said `HELD`: the claim ends with [`crate::Claim::InProgress`].
    InProgress,
    /// No verdict, and failed nodes stood in the way of a quorum. The partial claims were
    /// released; the next round follows, or [`crate::Error::Unavailable`] after the last one.
    NoQuorumNodesFailed,
    /// No verdict: every node answered but racing claims split the votes. The next round
    /// follows, or [`crate::Error::Contended`] after the last one.
    NoQuorumSplit,
    /// A quorum said `CLAIMED`, but too late to leave any validity. The next round follows, or
    /// [`crate::Error::Contended`] after the last one.
    NoQuorumTooLate,
}

impl RoundVerdict {
    fn from_verdict(verdict: &Verdict) -> RoundVerdict {
        match verdict {
            Verdict::Completed { .. } => RoundVerdict::Completed,
            Verdict::Mismatch => RoundVerdict::Mismatch,
            Verdict::Acquired { .. } => RoundVerdict::Acquired,
            Verdict::InProgress { .. } => RoundVerdict::InProgress,
            // A round only ends undecided once every reply is in; `claim` treats it as failures.
            Verdict::Retry(RetryCause::Failures) | Verdict::Pending => RoundVerdict::NoQuorumNodesFailed,
            Verdict::Retry(RetryCause::Split) => RoundVerdict::NoQuorumSplit,
            Verdict::Retry(RetryCause::Expired) => RoundVerdict::NoQuorumTooLate,
        }
    }
}

/// One round of `DEDUP.CLAIM` to every node.
#[derive(Clone, Debug)]
pub struct ClaimRound {
    attempt: u32,
    elapsed: Duration,
    replies: Vec<NodeReply>,
    verdict: RoundVerdict,
}

impl ClaimRound {
    /// Which round this was, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How long the round took, from sending the requests to the verdict.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// One reply per node, in the order of [`ClaimReport::nodes`].
    pub fn replies(&self) -> &[NodeReply] {
        &self.replies
    }

    /// How the rules read these replies.
    pub fn verdict(&self) -> RoundVerdict {
        self.verdict
    }
}

/// What one node answered to `DEDUP.FENCE`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum FenceReply {
    /// `1`: the node raised its counter (and the claim's token) to at least the token.
    Raised,
    /// `0`: the node no longer holds the claim for this owner; nothing changed there.
    Refused,
    /// An error, a timeout, or a malformed reply.
    Failed(NodeError),
    /// A quorum had already decided the fence when this node would have answered, or no time
    /// was left to ask it.
    Unanswered,
}

impl fmt::Display for FenceReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FenceReply::Raised => f.write_str("RAISED"),
            FenceReply::Refused => f.write_str("REFUSED"),
            FenceReply::Failed(error) => write!(f, "FAILED({error})"),
            FenceReply::Unanswered => f.write_str("UNANSWERED"),
        }
    }
}

/// The fence after an acquiring round, in fenced mode ([`crate::Builder::fencing`]).
#[derive(Clone, Debug)]
pub struct FenceRound {
    token: u64,
    replies: Vec<FenceReply>,
    fenced: bool,
}

impl FenceRound {
    /// The token sent to every node: the largest token of the acquiring round's `CLAIMED`
    /// replies.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// One reply per node, in the order of [`ClaimReport::nodes`].
    pub fn replies(&self) -> &[FenceReply] {
        &self.replies
    }

    /// Whether a quorum raised the token in time: the lease then carries it; otherwise the claim
    /// was released and failed with [`crate::LossReason::NotFenced`].
    pub fn fenced(&self) -> bool {
        self.fenced
    }
}

/// Every node's replies during one claim, round by round: the evidence behind its outcome.
///
/// From [`crate::Dedup::claim_with_report`]. The outcome follows from the last round (and the
/// fence, in fenced mode): `InProgress` when a quorum of its replies is `HELD`, `Unavailable`
/// when failed replies stood in the way of a quorum, and so on, as the
/// [crate docs](crate#the-rules) say. A claim refused before any request (an empty id, an
/// option out of range) has no rounds.
///
/// It never holds the owner value (the claim's secret) or a stored result.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), dedup_client::Error> {
/// # let servers: Vec<_> = (0..3).map(|_| testkit::RedisServer::start()).collect();
/// # let urls: Vec<String> = servers.iter().map(|s| s.url()).collect();
/// use dedup_client::{ClaimOptions, Dedup, NodeReply};
///
/// let dedup = Dedup::builder().nodes(urls).connect().await?;
/// let _held = dedup.claim("evt_1").await?;
/// let (outcome, report) = dedup.claim_with_report("evt_1", ClaimOptions::new()).await;
/// assert!(matches!(outcome, Ok(dedup_client::Claim::InProgress { .. })));
///
/// let last = report.rounds().last().expect("one round at least");
/// for (node, reply) in report.nodes().iter().zip(last.replies()) {
///     println!("{node}: {reply}"); // 127.0.0.1:7001: HELD(pttl=29998ms)
///     assert!(matches!(reply, NodeReply::Held { .. }));
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ClaimReport {
    nodes: Vec<String>,
    quorum: usize,
    rounds: Vec<ClaimRound>,
    fence: Option<FenceRound>,
}

impl ClaimReport {
    pub(crate) fn new(nodes: Vec<String>, quorum: usize) -> ClaimReport {
        ClaimReport { nodes, quorum, rounds: Vec::new(), fence: None }
    }

    pub(crate) fn record_round(
        &mut self,
        attempt: u32,
        elapsed: Duration,
        slots: &[Option<Result<Vote, NodeError>>],
        verdict: &Verdict,
    ) {
        self.rounds.push(ClaimRound {
            attempt,
            elapsed,
            replies: slots.iter().map(NodeReply::from_slot).collect(),
            verdict: RoundVerdict::from_verdict(verdict),
        });
    }

    pub(crate) fn record_fence(&mut self, token: u64, slots: &[Option<Result<bool, NodeError>>], fenced: bool) {
        let replies = slots
            .iter()
            .map(|slot| match slot {
                None => FenceReply::Unanswered,
                Some(Ok(true)) => FenceReply::Raised,
                Some(Ok(false)) => FenceReply::Refused,
                Some(Err(error)) => FenceReply::Failed(error.clone()),
            })
            .collect();
        self.fence = Some(FenceRound { token, replies, fenced });
    }

    /// The nodes' addresses (`host:port`), in the client's order: the order of every reply list.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    /// How many nodes must agree: `nodes / 2 + 1`.
    pub fn quorum(&self) -> usize {
        self.quorum
    }

    /// The claim rounds, in order; the last one decided the outcome (unless the fence failed).
    pub fn rounds(&self) -> &[ClaimRound] {
        &self.rounds
    }

    /// The fence, when the claim ran in fenced mode and a round acquired the id.
    pub fn fence(&self) -> Option<&FenceRound> {
        self.fence.as_ref()
    }
}

impl fmt::Display for ClaimReport {
    /// One line per round: `round 1 (2ms) acquired: a:1=CLAIMED(token=4) b:2=FAILED(...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines = 0;
        let mut line = |f: &mut fmt::Formatter<'_>| if lines == 0 { lines += 1; Ok(()) } else { f.write_str("\n") };
        for round in &self.rounds {
            line(f)?;
            write!(f, "round {} ({}ms) {:?}:", round.attempt, round.elapsed.as_millis(), round.verdict)?;
            for (node, reply) in self.nodes.iter().zip(&round.replies) {
                write!(f, " {node}={reply}")?;
            }
        }
        if let Some(fence) = &self.fence {
            line(f)?;
            write!(f, "fence token={} fenced={}:", fence.token, fence.fenced)?;
            for (node, reply) in self.nodes.iter().zip(&fence.replies) {
                write!(f, " {node}={reply}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ClaimReport {
        ClaimReport::new(vec!["a:1".into(), "b:2".into(), "c:3".into()], 2)
    }

    #[test]
    fn slots_become_replies_with_their_errors_and_gaps() {
        let mut r = report();
        let slots = vec![
            Some(Ok(Vote::Claimed { token: 4 })),
            Some(Err(NodeError::Timeout(Duration::from_millis(50)))),
            None,
        ];
        r.record_round(1, Duration::from_millis(3), &slots, &Verdict::Retry(RetryCause::Failures));
        let round = &r.rounds()[0];
        assert_eq!(round.attempt(), 1);
        assert_eq!(round.verdict(), RoundVerdict::NoQuorumNodesFailed);
        let words: Vec<_> = round.replies().iter().map(NodeReply::word).collect();
        assert_eq!(words, ["CLAIMED", "FAILED", "UNANSWERED"]);
        assert!(matches!(round.replies()[0], NodeReply::Claimed { token: 4 }));
        assert!(matches!(round.replies()[1], NodeReply::Failed(NodeError::Timeout(_))));
    }

    #[test]
    fn done_replies_do_not_carry_the_stored_result() {
        let mut r = report();
        let slots = vec![Some(Ok(Vote::Done { result: Some(b"secret result".to_vec()) })), None, None];
        r.record_round(1, Duration::ZERO, &slots, &Verdict::Completed { node: 0 });
        let shown = format!("{r:?} {r}");
        assert!(!shown.contains("secret result"), "{shown}");
        assert_eq!(r.rounds()[0].verdict(), RoundVerdict::Completed);
    }

    #[test]
    fn verdicts_map_one_to_one() {
        let table = [
            (Verdict::Mismatch, RoundVerdict::Mismatch),
            (Verdict::Acquired { token: 1, validity: Duration::from_secs(1) }, RoundVerdict::Acquired),
            (Verdict::InProgress { retry_after: Duration::ZERO }, RoundVerdict::InProgress),
            (Verdict::Retry(RetryCause::Split), RoundVerdict::NoQuorumSplit),
            (Verdict::Retry(RetryCause::Expired), RoundVerdict::NoQuorumTooLate),
        ];
        for (verdict, expected) in table {
            assert_eq!(RoundVerdict::from_verdict(&verdict), expected, "{verdict:?}");
        }
    }

    #[test]
    fn the_fence_is_recorded_per_node_and_displayed() {
        let mut r = report();
        let slots = vec![Some(Ok(true)), Some(Ok(false)), Some(Err(NodeError::Timeout(Duration::from_millis(5))))];
        r.record_fence(9, &slots, false);
        let fence = r.fence().unwrap();
        assert_eq!((fence.token(), fence.fenced()), (9, false));
        assert_eq!(
            r.to_string(),
            "fence token=9 fenced=false: a:1=RAISED b:2=REFUSED c:3=FAILED(no reply within 5ms)"
        );
    }
}
