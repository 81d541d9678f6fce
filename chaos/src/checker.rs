//! The checker: reads the history, the store and the fault log, and verifies each promise from
//! the raw evidence, without trusting the client's own rules.
//!
//! | rule | what must hold |
//! |---|---|
//! | 1 | no event's effect is applied twice (and no effect is written without an acquired lease) |
//! | 2 | every event is applied once in the end: nothing is lost |
//! | 3 | `InProgress` was only decided with a quorum of `HELD` replies |
//! | 4 | `Unavailable` was only decided when failed replies made a quorum impossible |
//! | 5 | fencing tokens increase in real-time order: per event, and across events as the client promises |
//! | 6 | every other verdict matches its replies (`Acquired`, `Completed`, `Contended`, `LeaseLost`); no `MISMATCH`, since every delivery of an event carries the same payload |
//! | 7 | a node's fencing counter never goes back across a SIGKILL and a restart from its AOF |

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::Serialize;

use crate::history::{ClaimEntry, Decision, Entry};
use crate::injector::FaultRecord;
use crate::plan::FaultKind;
use crate::store::StoredWrite;

/// Everything a run left behind.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    pub entries: Vec<Entry>,
    pub writes: Vec<StoredWrite>,
    /// Every event the run delivered: each must end up applied exactly once.
    pub events: Vec<String>,
    pub faults: Vec<FaultRecord>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Rule {
    NoEffectTwice = 1,
    EveryEventApplied = 2,
    InProgressNeedsHeldQuorum = 3,
    UnavailableNeedsFailures = 4,
    TokensFollowRealTime = 5,
    VerdictsMatchReplies = 6,
    CountersSurviveRestarts = 7,
}

impl Rule {
    pub const ALL: [Rule; 7] = [
        Rule::NoEffectTwice,
        Rule::EveryEventApplied,
        Rule::InProgressNeedsHeldQuorum,
        Rule::UnavailableNeedsFailures,
        Rule::TokensFollowRealTime,
        Rule::VerdictsMatchReplies,
        Rule::CountersSurviveRestarts,
    ];

    pub fn number(self) -> u8 {
        self as u8
    }

    pub fn describe(self) -> &'static str {
        match self {
            Rule::NoEffectTwice => "no effect applied twice",
            Rule::EveryEventApplied => "every event applied once in the end",
            Rule::InProgressNeedsHeldQuorum => "InProgress only with a quorum of HELD",
            Rule::UnavailableNeedsFailures => "Unavailable only when failures left no quorum",
            Rule::TokensFollowRealTime => "fenced tokens increase in real-time order",
            Rule::VerdictsMatchReplies => "every other verdict matches its replies",
            Rule::CountersSurviveRestarts => "token counters survive kill + AOF restart",
        }
    }
}

/// One broken promise, with the history lines that show it.
#[derive(Clone, Debug, Serialize)]
pub struct Violation {
    pub rule: Rule,
    pub what: String,
    /// The offending history entries (and store rows, fault records), one JSON object each.
    pub evidence: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "VIOLATION of rule {} ({}): {}", self.rule.number(), self.rule.describe(), self.what)?;
        for line in &self.evidence {
            writeln!(f, "    {line}")?;
        }
        Ok(())
    }
}

/// The checker's findings: how many items each rule examined, and what broke.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Findings {
    pub checked: BTreeMap<Rule, usize>,
    pub violations: Vec<Violation>,
}

impl Findings {
    pub fn violations_of(&self, rule: Rule) -> usize {
        self.violations.iter().filter(|v| v.rule == rule).count()
    }

    fn examined(&mut self, rule: Rule, items: usize) {
        *self.checked.entry(rule).or_default() += items;
    }

    fn violation(&mut self, rule: Rule, what: String, evidence: Vec<String>) {
        self.violations.push(Violation { rule, what, evidence });
    }
}

/// Checks every rule.
pub fn check(evidence: &Evidence) -> Findings {
    let mut findings = Findings::default();
    let claims: Vec<&ClaimEntry> = evidence
        .entries
        .iter()
        .filter_map(|e| match e {
            Entry::Claim(c) => Some(c),
            _ => None,
        })
        .collect();
    effects(evidence, &claims, &mut findings);
    for claim in &claims {
        verdict(claim, &mut findings);
    }
    tokens_in_real_time(&claims, &mut findings);
    counters(&evidence.faults, &mut findings);
    for rule in Rule::ALL {
        findings.checked.entry(rule).or_default();
    }
    findings
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("<unserializable: {e}>"))
}

/// Rules 1 and 2, from the store's rows.
fn effects(evidence: &Evidence, claims: &[&ClaimEntry], findings: &mut Findings) {
    let mut applied: HashMap<&str, Vec<&StoredWrite>> = HashMap::new();
    for write in evidence.writes.iter().filter(|w| w.accepted) {
        applied.entry(write.event.as_str()).or_default().push(write);
    }
    let acquired: HashMap<(&str, u64), &ClaimEntry> = claims
        .iter()
        .filter_map(|c| Some(((c.event.as_str(), c.token?), *c)).filter(|_| c.decision == Decision::Acquired))
        .collect();
    let claims_of = |event: &str| -> Vec<String> { claims.iter().filter(|c| c.event == event).map(json).collect() };

    findings.examined(Rule::NoEffectTwice, evidence.events.len());
    let mut events: Vec<&&str> = applied.keys().collect();
    events.sort();
    for event in events {
        let writes = &applied[*event];
        if writes.len() > 1 {
            let mut shown: Vec<String> = writes.iter().map(|w| format!("store row {w:?}")).collect();
            shown.extend(claims_of(event));
            findings.violation(Rule::NoEffectTwice, format!("{event} was applied {} times", writes.len()), shown);
        }
        for write in writes {
            if !acquired.contains_key(&(write.event.as_str(), write.token)) {
                findings.violation(
                    Rule::NoEffectTwice,
                    format!("{event} was written with token {} that no acquired claim holds", write.token),
                    vec![format!("store row {write:?}")],
                );
            }
        }
    }
    findings.examined(Rule::EveryEventApplied, evidence.events.len());
    for event in &evidence.events {
        if !applied.contains_key(event.as_str()) {
            findings.violation(Rule::EveryEventApplied, format!("{event} was never applied"), claims_of(event));
        }
    }
}

/// Rules 3, 4 and 6, for one claim attempt, from its last round's replies.
fn verdict(claim: &ClaimEntry, findings: &mut Findings) {
    let q = claim.quorum;
    let (claimed, held, done, mismatch, failed) =
        (claim.count("CLAIMED"), claim.count("HELD"), claim.count("DONE"), claim.count("MISMATCH"), claim.count("FAILED"));
    let mut broken = |rule: Rule, what: String| findings.violation(rule, what, vec![json(claim)]);
    let who = format!("{} by {} (attempt {})", claim.event, claim.worker, claim.attempt);
    match claim.decision {
        Decision::InProgress => {
            if held < q || done > 0 || mismatch > 0 {
                broken(Rule::InProgressNeedsHeldQuorum, format!("{who}: InProgress with {held} HELD of quorum {q}"));
            }
        }
        Decision::Unavailable => {
            // Had the failed nodes answered, could a quorum have formed? And did the answers
            // that came in fail to form one?
            let stood_in_the_way = failed > 0 && (claimed + failed >= q || held + failed >= q);
            let no_verdict = claimed < q && held < q && done == 0 && mismatch == 0;
            let failed_nodes: Vec<&String> = claim
                .nodes
                .iter()
                .zip(claim.last_replies())
                .filter(|(_, r)| r.reply == "FAILED")
                .map(|(n, _)| n)
                .collect();
            let named_match = failed_nodes.iter().map(|n| n.as_str()).eq(claim.failed_nodes.iter().map(String::as_str));
            if !(stood_in_the_way && no_verdict && named_match) {
                broken(
                    Rule::UnavailableNeedsFailures,
                    format!("{who}: Unavailable with {claimed} CLAIMED, {held} HELD, {failed} FAILED of quorum {q}; error names {:?}", claim.failed_nodes),
                );
            }
        }
        Decision::Acquired => {
            let largest = claim.last_replies().iter().filter_map(|r| r.token).max();
            let fence = claim.fence.as_ref();
            let raised = fence.map_or(0, |f| f.replies.iter().filter(|r| *r == "RAISED").count());
            let fenced = fence.is_some_and(|f| f.fenced && Some(f.token) == largest && claim.token == Some(f.token));
            if claimed < q || done > 0 || mismatch > 0 || raised < q || !fenced {
                broken(
                    Rule::VerdictsMatchReplies,
                    format!("{who}: Acquired with {claimed} CLAIMED, {raised} RAISED of quorum {q}, token {:?}, largest {largest:?}", claim.token),
                );
            }
        }
        Decision::Completed => {
            if done == 0 {
                broken(Rule::VerdictsMatchReplies, format!("{who}: Completed without a DONE reply"));
            }
        }
        Decision::Contended => {
            let too_late = claim.rounds.last().is_some_and(|r| r.verdict == "NoQuorumTooLate");
            if !(too_late || (failed == 0 && claimed < q && held < q)) || done > 0 || mismatch > 0 {
                broken(Rule::VerdictsMatchReplies, format!("{who}: Contended with {claimed} CLAIMED, {held} HELD, {failed} FAILED"));
            }
        }
        Decision::LeaseLost => {
            if claim.fence.as_ref().is_none_or(|f| f.fenced) {
                broken(Rule::VerdictsMatchReplies, format!("{who}: LeaseLost at claim time without a failed fence"));
            }
        }
        Decision::Mismatch => {
            broken(Rule::VerdictsMatchReplies, format!("{who}: MISMATCH, yet every delivery carries the same payload"));
        }
        Decision::Error => {
            broken(Rule::VerdictsMatchReplies, format!("{who}: an unexpected error: {:?}", claim.error));
        }
    }
    let rule = match claim.decision {
        Decision::InProgress => Rule::InProgressNeedsHeldQuorum,
        Decision::Unavailable => Rule::UnavailableNeedsFailures,
        _ => Rule::VerdictsMatchReplies,
    };
    findings.examined(rule, 1);
}

/// Rule 5: if fenced claim A returned before fenced claim B started, then `T_A < T_B`. Checked
/// per event (what a store keyed by event relies on) and across all events (what the client
/// promises).
fn tokens_in_real_time(claims: &[&ClaimEntry], findings: &mut Findings) {
    let acquired: Vec<&ClaimEntry> =
        claims.iter().copied().filter(|c| c.decision == Decision::Acquired && c.token.is_some()).collect();
    findings.examined(Rule::TokensFollowRealTime, acquired.len());
    let mut by_event: HashMap<&str, Vec<&ClaimEntry>> = HashMap::new();
    for claim in &acquired {
        by_event.entry(claim.event.as_str()).or_default().push(claim);
    }
    let mut events: Vec<&&str> = by_event.keys().collect();
    events.sort();
    for event in events {
        for (a, b) in out_of_order(&by_event[*event]) {
            findings.violation(
                Rule::TokensFollowRealTime,
                format!("{event}: token {:?} returned before a claim that got {:?} started", a.token, b.token),
                vec![json(a), json(b)],
            );
        }
    }
    for (a, b) in out_of_order(&acquired) {
        if a.event != b.event {
            findings.violation(
                Rule::TokensFollowRealTime,
                format!("across events: {} got {:?} after {} returned with {:?}", b.event, b.token, a.event, a.token),
                vec![json(a), json(b)],
            );
        }
    }
}

/// Pairs (A, B) with A ended before B started and `T_A >= T_B`: for each B, against the largest
/// token among the claims that had ended by B's start.
fn out_of_order<'a>(claims: &[&'a ClaimEntry]) -> Vec<(&'a ClaimEntry, &'a ClaimEntry)> {
    let mut by_end: Vec<&ClaimEntry> = claims.to_vec();
    by_end.sort_by_key(|c| c.end_ns);
    let mut by_start: Vec<&ClaimEntry> = claims.to_vec();
    by_start.sort_by_key(|c| c.start_ns);
    let mut ended = 0;
    let mut largest: Option<&ClaimEntry> = None;
    let mut pairs = Vec::new();
    for b in by_start {
        while ended < by_end.len() && by_end[ended].end_ns < b.start_ns {
            let a = by_end[ended];
            if largest.is_none_or(|l| a.token > l.token) {
                largest = Some(a);
            }
            ended += 1;
        }
        if let Some(a) = largest {
            if a.token >= b.token {
                pairs.push((a, b));
            }
        }
    }
    pairs
}

/// Rule 7, from the injector's readings around each kill.
fn counters(faults: &[FaultRecord], findings: &mut Findings) {
    for fault in faults.iter().filter(|f| f.kind == FaultKind::KillRestart) {
        for ((node, before), after) in fault.nodes.iter().zip(&fault.token_before).zip(&fault.token_after) {
            if let (Some(before), Some(after)) = (before, after) {
                findings.examined(Rule::CountersSurviveRestarts, 1);
                if after < before {
                    findings.violation(
                        Rule::CountersSurviveRestarts,
                        format!("{node}: the fencing counter went from {before} to {after} across a restart"),
                        vec![json(fault)],
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{FenceEntry, ReplyEntry, RoundEntry};

    const NODES: [&str; 3] = ["a:1", "b:2", "c:3"];

    fn reply(word: &str) -> ReplyEntry {
        let mut r = ReplyEntry { reply: word.to_string(), token: None, pttl_ms: None, error: None };
        match word {
            "HELD" => r.pttl_ms = Some(900),
            "FAILED" => r.error = Some("no reply within 3ms".into()),
            _ => {}
        }
        r
    }

    fn claimed(token: u64) -> ReplyEntry {
        ReplyEntry { reply: "CLAIMED".into(), token: Some(token), pttl_ms: None, error: None }
    }

    fn claim(event: &str, decision: Decision, replies: Vec<ReplyEntry>, span: (u64, u64)) -> ClaimEntry {
        ClaimEntry {
            event: event.into(),
            worker: "w0.0".into(),
            attempt: span.0,
            start_ns: span.0,
            end_ns: span.1,
            storm: false,
            nodes: NODES.iter().map(|n| n.to_string()).collect(),
            quorum: 2,
            rounds: vec![RoundEntry { attempt: 1, elapsed_us: 100, verdict: format!("{decision:?}"), replies }],
            fence: None,
            decision,
            token: None,
            error: None,
            failed_nodes: Vec::new(),
        }
    }

    /// An acquired, fenced claim of `event` with `token` on every node.
    fn acquired(event: &str, token: u64, span: (u64, u64)) -> ClaimEntry {
        let mut c = claim(event, Decision::Acquired, vec![claimed(token), claimed(token), claimed(token)], span);
        c.fence = Some(FenceEntry { token, fenced: true, replies: vec!["RAISED".into(); 3] });
        c.token = Some(token);
        c
    }

    fn write(event: &str, token: u64, accepted: bool) -> StoredWrite {
        StoredWrite { seq: 0, event: event.into(), token, worker: "w0.0".into(), attempt: 1, at_ns: 1, accepted }
    }

    fn run(claims: Vec<ClaimEntry>, writes: Vec<StoredWrite>, events: &[&str]) -> Findings {
        check(&Evidence {
            entries: claims.into_iter().map(Entry::Claim).collect(),
            writes,
            events: events.iter().map(|e| e.to_string()).collect(),
            faults: Vec::new(),
        })
    }

    fn broken(findings: &Findings) -> Vec<Rule> {
        findings.violations.iter().map(|v| v.rule).collect()
    }

    #[test]
    fn a_clean_history_passes_every_rule() {
        let mut unavailable = claim("e1", Decision::Unavailable, vec![reply("FAILED"), reply("FAILED"), claimed(9)], (30, 40));
        unavailable.failed_nodes = vec!["a:1".into(), "b:2".into()];
        let claims = vec![
            acquired("e1", 5, (10, 20)),
            claim("e1", Decision::InProgress, vec![reply("HELD"), reply("HELD"), reply("FAILED")], (12, 18)),
            claim("e1", Decision::Completed, vec![reply("DONE"), reply("UNANSWERED"), reply("UNANSWERED")], (25, 26)),
            unavailable,
            acquired("e2", 7, (21, 29)),
        ];
        let writes = vec![write("e1", 5, true), write("e1", 3, false), write("e2", 7, true)];
        let findings = run(claims, writes, &["e1", "e2"]);
        assert!(findings.violations.is_empty(), "{:#?}", findings.violations);
        assert_eq!(findings.checked[&Rule::TokensFollowRealTime], 2);
        assert_eq!(findings.checked[&Rule::InProgressNeedsHeldQuorum], 1);
    }

    #[test]
    fn a_second_effect_and_a_lost_event_are_caught() {
        let claims = vec![acquired("e1", 5, (10, 20)), acquired("e1", 8, (30, 40))];
        let writes = vec![write("e1", 5, true), write("e1", 8, true)];
        let findings = run(claims, writes, &["e1", "e2"]);
        assert_eq!(broken(&findings), [Rule::NoEffectTwice, Rule::EveryEventApplied]);
        assert!(findings.violations[0].evidence.len() >= 4, "both rows and both claims are shown");
    }

    #[test]
    fn a_write_without_a_lease_is_caught() {
        let findings = run(vec![acquired("e1", 5, (10, 20))], vec![write("e1", 6, true)], &["e1"]);
        assert_eq!(broken(&findings), [Rule::NoEffectTwice]);
    }

    #[test]
    fn in_progress_without_a_held_quorum_is_caught() {
        let c = claim("e", Decision::InProgress, vec![reply("HELD"), reply("FAILED"), reply("FAILED")], (1, 2));
        assert_eq!(broken(&run(vec![c], vec![], &[])), [Rule::InProgressNeedsHeldQuorum]);
    }

    #[test]
    fn unavailable_is_caught_when_the_answers_could_decide_or_nothing_failed() {
        // Two HELD of quorum two: the answers decided; that is InProgress, not Unavailable.
        let mut decided = claim("e", Decision::Unavailable, vec![reply("HELD"), reply("HELD"), reply("FAILED")], (1, 2));
        decided.failed_nodes = vec!["c:3".into()];
        // Nothing failed: a split is Contended.
        let split = claim("e", Decision::Unavailable, vec![reply("HELD"), claimed(3), reply("CLAIMED")], (1, 2));
        // The error names a node that answered.
        let mut misnamed = claim("e", Decision::Unavailable, vec![reply("FAILED"), reply("FAILED"), claimed(3)], (1, 2));
        misnamed.failed_nodes = vec!["a:1".into(), "c:3".into()];
        let findings = run(vec![decided, split, misnamed], vec![], &[]);
        assert_eq!(broken(&findings), [Rule::UnavailableNeedsFailures; 3]);
    }

    #[test]
    fn tokens_out_of_real_time_order_are_caught_per_event_and_across_events() {
        // e1: a claim that started after another returned got a smaller token.
        let findings = run(vec![acquired("e1", 9, (10, 20)), acquired("e1", 4, (30, 40))], vec![], &[]);
        assert_eq!(broken(&findings), [Rule::TokensFollowRealTime]);
        // Overlapping claims may come in either order.
        let findings = run(vec![acquired("e1", 9, (10, 35)), acquired("e2", 4, (30, 40))], vec![], &[]);
        assert!(broken(&findings).is_empty());
        // Across events, as the client promises.
        let findings = run(vec![acquired("e1", 9, (10, 20)), acquired("e2", 9, (30, 40))], vec![], &[]);
        assert_eq!(broken(&findings), [Rule::TokensFollowRealTime]);
        assert!(findings.violations[0].what.contains("across events"));
    }

    #[test]
    fn verdicts_that_do_not_match_their_replies_are_caught() {
        let mut unfenced = acquired("e", 5, (1, 2));
        unfenced.fence = Some(FenceEntry { token: 5, fenced: true, replies: vec!["RAISED".into(), "FAILED: x".into(), "REFUSED".into()] });
        // The fence must carry the largest CLAIMED token of the round, 8 here, not 7.
        let mut wrong_token = acquired("e", 7, (3, 4));
        wrong_token.rounds[0].replies[1] = claimed(8);
        let no_done = claim("e", Decision::Completed, vec![reply("HELD"), reply("HELD"), reply("HELD")], (5, 6));
        let mismatch = claim("e", Decision::Mismatch, vec![reply("MISMATCH"), reply("HELD"), reply("HELD")], (7, 8));
        let contended = claim("e", Decision::Contended, vec![reply("HELD"), reply("FAILED"), claimed(2)], (9, 10));
        let findings = run(vec![unfenced, wrong_token, no_done, mismatch, contended], vec![], &[]);
        assert_eq!(broken(&findings), [Rule::VerdictsMatchReplies; 5]);
    }

    #[test]
    fn a_counter_set_back_by_a_restart_is_caught() {
        let fault = |before: u64, after: u64| FaultRecord {
            kind: FaultKind::KillRestart,
            nodes: vec!["a:1".into()],
            start_ns: 1,
            end_ns: 2,
            token_before: vec![Some(before)],
            token_after: vec![Some(after)],
            keys_after: vec![Some(10)],
        };
        let evidence = Evidence { faults: vec![fault(50, 50), fault(50, 49)], ..Evidence::default() };
        let findings = check(&evidence);
        assert_eq!(broken(&findings), [Rule::CountersSurviveRestarts]);
        assert_eq!(findings.checked[&Rule::CountersSurviveRestarts], 2);
    }
}
