//! `claim_with_report`: the per-node replies behind each verdict, against real servers.

mod common;

use common::{bounded, Nodes};
use dedup_client::{Claim, ClaimOptions, ClaimReport, Error, FenceReply, NodeError, NodeReply, RoundVerdict};

fn words(replies: &[NodeReply]) -> Vec<&'static str> {
    replies.iter().map(NodeReply::word).collect()
}

fn last(report: &ClaimReport) -> &dedup_client::ClaimRound {
    report.rounds().last().expect("at least one round")
}

/// Whether `text` holds a run of 40 lowercase hex digits: the shape of an owner value.
fn has_owner_shaped_text(text: &str) -> bool {
    let mut run = 0;
    for c in text.chars() {
        run = if c.is_ascii_digit() || ('a'..='f').contains(&c) { run + 1 } else { 0 };
        if run >= 40 {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn each_verdict_comes_with_the_replies_that_made_it() {
    let nodes = Nodes::start(3);
    let dedup = nodes.client().await;
    let names: Vec<String> = (0..3).map(|i| nodes.name(i)).collect();

    let (outcome, report) = dedup.claim_with_report("evt", ClaimOptions::new()).await;
    let lease = outcome.unwrap().acquired().expect("a fresh id is acquired");
    assert_eq!(report.nodes(), names);
    assert_eq!(report.quorum(), 2);
    assert_eq!(report.rounds().len(), 1);
    assert_eq!(last(&report).attempt(), 1);
    assert_eq!(last(&report).verdict(), RoundVerdict::Acquired);
    assert_eq!(words(last(&report).replies()), ["CLAIMED"; 3]);
    assert!(report.fence().is_none(), "no fence without fenced mode");

    let (outcome, report) = dedup.claim_with_report("evt", ClaimOptions::new()).await;
    assert!(matches!(outcome, Ok(Claim::InProgress { .. })));
    assert_eq!(last(&report).verdict(), RoundVerdict::InProgress);
    assert_eq!(words(last(&report).replies()), ["HELD"; 3]);

    lease.complete(Some(b"the stored result")).await.unwrap();
    let (outcome, report) = dedup.claim_with_report("evt", ClaimOptions::new()).await;
    assert!(outcome.unwrap().is_completed());
    assert_eq!(last(&report).verdict(), RoundVerdict::Completed);
    // A DONE decides at once; the other replies may or may not have been waited for.
    let seen = words(last(&report).replies());
    assert!(seen.contains(&"DONE") && seen.iter().all(|w| ["DONE", "UNANSWERED"].contains(w)), "{seen:?}");

    let shown = format!("{report:?}\n{report}");
    assert!(!shown.contains("the stored result"), "a report never shows stored results: {shown}");
    assert!(!has_owner_shaped_text(&shown), "a report never shows an owner: {shown}");
}

#[tokio::test]
async fn fenced_claims_report_the_fence_and_its_token() {
    let nodes = Nodes::start(3);
    let dedup = nodes.builder().fencing(true).connect().await.unwrap();
    let (outcome, report) = dedup.claim_with_report("evt", ClaimOptions::new()).await;
    let lease = outcome.unwrap().acquired().expect("acquired");
    let fence = report.fence().expect("fenced mode reports the fence");
    let largest = last(&report)
        .replies()
        .iter()
        .filter_map(|r| match r {
            NodeReply::Claimed { token } => Some(*token),
            _ => None,
        })
        .max()
        .unwrap();
    assert_eq!(fence.token(), largest, "the fence sends the largest token of the round");
    assert_eq!(lease.token(), Some(fence.token()));
    assert!(fence.fenced());
    assert!(fence.replies().iter().filter(|r| matches!(r, FenceReply::Raised)).count() >= 2);
}

#[tokio::test]
async fn failed_nodes_show_as_failures_with_their_errors_in_every_round() {
    let mut nodes = Nodes::start(3);
    let dedup = nodes.builder().retries(2).connect().await.unwrap();
    nodes.servers[0].kill();

    let (outcome, report) = bounded("claim", dedup.claim_with_report("one-down", ClaimOptions::new())).await;
    assert!(outcome.unwrap().acquired().is_some(), "one node of three down is tolerated");
    assert_eq!(words(last(&report).replies()), ["FAILED", "CLAIMED", "CLAIMED"]);

    nodes.servers[1].kill();
    let (outcome, report) = bounded("claim", dedup.claim_with_report("two-down", ClaimOptions::new())).await;
    let Err(Error::Unavailable { failures, .. }) = outcome else { panic!("a majority down gave {outcome:?}") };
    assert_eq!(report.rounds().len(), 3, "retries(2): three rounds");
    for (i, round) in report.rounds().iter().enumerate() {
        assert_eq!(round.attempt() as usize, i + 1);
        assert_eq!(round.verdict(), RoundVerdict::NoQuorumNodesFailed);
        assert_eq!(words(round.replies()), ["FAILED", "FAILED", "CLAIMED"]);
        for reply in &round.replies()[..2] {
            let NodeReply::Failed(error) = reply else { unreachable!() };
            assert!(matches!(error, NodeError::Redis(_) | NodeError::Timeout(_)), "{error}");
        }
    }
    // The error names the same nodes that the last round shows failing.
    let failed: Vec<&str> = failures.iter().map(|f| f.node()).collect();
    assert_eq!(failed, [nodes.name(0), nodes.name(1)]);
}

#[tokio::test]
async fn a_claim_refused_before_any_request_has_an_empty_report() {
    let nodes = Nodes::start(1);
    let dedup = nodes.client().await;
    let (outcome, report) = dedup.claim_with_report("", ClaimOptions::new()).await;
    assert!(matches!(outcome, Err(Error::Config(_))));
    assert!(report.rounds().is_empty() && report.fence().is_none());
    let (outcome, report) = dedup.claim_with_report("evt", ClaimOptions::new().fingerprint(Vec::new())).await;
    assert!(matches!(outcome, Err(Error::Config(_))));
    assert!(report.rounds().is_empty());
}

#[test]
fn the_blocking_client_reports_too() {
    let nodes = Nodes::start(3);
    let dedup = dedup_client::blocking::Dedup::builder().nodes(nodes.urls()).connect().unwrap();
    let _held = dedup.claim("evt").unwrap().acquired().expect("acquired");
    let (outcome, report) = dedup.claim_with_report("evt", ClaimOptions::new());
    assert!(matches!(outcome, Ok(Claim::InProgress { .. })));
    assert_eq!(words(last(&report).replies()), ["HELD"; 3]);
}
