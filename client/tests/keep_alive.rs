//! Keep-alive: a lease outlives several lease lengths, and its holder learns of a loss before the
//! validity ends.

mod common;

use std::time::Duration;

use common::{bounded, Nodes};
use dedup_client::{Claim, Lease, LossReason};

/// Long enough that scheduling noise on a busy machine stays far below a third of it.
const LEASE: Duration = Duration::from_millis(900);

/// A lease on "job" with keep-alive running.
async fn kept_alive(nodes: &Nodes) -> Lease {
    let dedup = nodes.builder().lease(LEASE).connect().await.unwrap();
    let mut lease = dedup.claim("job").await.unwrap().acquired().unwrap();
    lease.keep_alive();
    lease
}

/// Waits for the loss signal and checks that it came before the validity ended.
async fn loss_in_time(lease: &Lease) -> LossReason {
    let reason = bounded("lost", lease.lost()).await;
    let (recorded, noticed_at) = lease.watch().lost_reason().expect("declared lost");
    assert_eq!(recorded, reason);
    assert!(noticed_at < lease.valid_until(), "told at {noticed_at:?}, validity ends {:?}", lease.valid_until());
    assert!(lease.is_lost());
    reason
}

#[tokio::test]
async fn a_kept_alive_lease_outlives_several_lease_lengths() {
    let nodes = Nodes::start(3);
    let dedup = nodes.builder().lease(LEASE).connect().await.unwrap();
    let other = nodes.client().await;
    let mut lease = dedup.claim("long-job").await.unwrap().acquired().unwrap();
    let first_until = lease.valid_until();
    lease.keep_alive();
    lease.keep_alive(); // idempotent

    tokio::time::sleep(LEASE * 4).await;
    assert!(!lease.is_lost(), "{lease:?}");
    assert!(lease.valid_until() > first_until, "the validity moved forward");
    assert!(matches!(other.claim("long-job").await.unwrap(), Claim::InProgress { .. }));
    assert_eq!(nodes.phases(0..3, "long-job"), vec!["CLAIMED"; 3]);

    let watch = lease.watch();
    assert!(lease.complete(None).await.unwrap().is_durable());
    assert_eq!(watch.lost().await, LossReason::Ended, "watchers learn that the lease ended");
}

#[tokio::test]
async fn losing_the_nodes_is_signalled_before_the_validity_ends() {
    let mut nodes = Nodes::start(3);
    let lease = kept_alive(&nodes).await;
    tokio::time::sleep(LEASE).await; // at least one extension happened
    assert!(!lease.is_lost());

    nodes.servers[1].kill();
    nodes.servers[2].kill();
    let reason = loss_in_time(&lease).await;
    assert!(matches!(reason, LossReason::Unconfirmed { ref failures } if failures.len() == 2), "{reason:?}");
}

#[tokio::test]
async fn a_paused_majority_is_signalled_before_the_validity_ends() {
    let nodes = Nodes::start(5);
    let lease = kept_alive(&nodes).await;
    for server in &nodes.servers[..3] {
        server.pause();
    }
    let reason = loss_in_time(&lease).await;
    assert!(matches!(reason, LossReason::Unconfirmed { ref failures } if failures.len() == 3), "{reason:?}");
    for server in &nodes.servers[..3] {
        server.resume();
    }
}

#[tokio::test]
async fn a_quorum_that_no_longer_holds_the_claim_is_a_loss_at_the_next_extension() {
    let nodes = Nodes::start(3);
    let lease = kept_alive(&nodes).await;
    // Someone deletes the claim on two nodes (an operator, a flush): the next extension is refused.
    for i in [0, 2] {
        nodes.command(i, redis::cmd("DEL").arg("job"));
    }
    assert_eq!(loss_in_time(&lease).await, LossReason::Rejected);
}

#[tokio::test]
async fn without_keep_alive_the_lease_is_lost_when_its_validity_ends() {
    let nodes = Nodes::start(3);
    let dedup = nodes.builder().lease(Duration::from_millis(300)).connect().await.unwrap();
    let lease = dedup.claim("job").await.unwrap().acquired().unwrap();
    assert!(!lease.is_lost());
    assert_eq!(bounded("lost", lease.lost()).await, LossReason::Expired);
    assert!(lease.is_lost());
    assert_eq!(lease.validity(), Duration::ZERO);
}
