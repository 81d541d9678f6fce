//! The outcomes of a claim and the lease operations, against real servers.

mod common;

use std::time::Duration;

use common::Nodes;
use dedup_client::{Claim, ClaimOptions, ConfigError, Error, LossReason};

#[tokio::test]
async fn acquire_complete_and_duplicates_get_the_stored_result() {
    for n in [3, 5] {
        let nodes = Nodes::start(n);
        let dedup = nodes.client().await;
        assert_eq!(dedup.quorum(), n / 2 + 1);

        let Claim::Acquired(lease) = dedup.claim("evt_1").await.unwrap() else { panic!("fresh id not acquired") };
        assert_eq!(lease.key(), "evt_1");
        assert_eq!(lease.token(), None, "no token without fencing");
        assert!(!lease.is_lost());
        assert!(lease.validity() > Duration::ZERO && lease.validity() <= Duration::from_secs(30));
        assert_eq!(nodes.phases(0..n, "evt_1"), vec!["CLAIMED"; n]);

        let completion = lease.complete(Some(b"record 42")).await.unwrap();
        assert_eq!((completion.acked(), completion.nodes()), (n, n));
        assert!(completion.is_durable());
        assert_eq!(nodes.phases(0..n, "evt_1"), vec!["DONE"; n]);

        for _ in 0..2 {
            match dedup.claim("evt_1").await.unwrap() {
                Claim::Completed { result } => assert_eq!(result.as_deref(), Some(&b"record 42"[..])),
                other => panic!("duplicate gave {other:?}"),
            }
        }
        // A duplicate's claim leaves nothing behind.
        assert_eq!(nodes.phases(0..n, "evt_1"), vec!["DONE"; n]);
    }
}

#[tokio::test]
async fn completing_without_a_result_replays_none() {
    let nodes = Nodes::start(3);
    let dedup = nodes.client().await;
    let lease = dedup.claim("evt").await.unwrap().acquired().unwrap();
    lease.complete(None).await.unwrap();
    assert!(matches!(dedup.claim("evt").await.unwrap(), Claim::Completed { result: None }));
}

#[tokio::test]
async fn a_held_id_is_in_progress_for_others_until_released() {
    let nodes = Nodes::start(3);
    let (a, b) = (nodes.client().await, nodes.client().await);
    let lease = a.claim("job").await.unwrap().acquired().expect("acquired");

    match b.claim("job").await.unwrap() {
        Claim::InProgress { retry_after } => assert!(retry_after <= Duration::from_secs(30)),
        other => panic!("held id gave {other:?}"),
    }
    // The same client, another claim: still someone else's lease.
    assert!(matches!(a.claim("job").await.unwrap(), Claim::InProgress { .. }));
    // Losing claims leave no partial claims behind.
    assert_eq!(nodes.phases(0..3, "job"), vec!["CLAIMED"; 3]);

    let released = lease.release().await;
    assert_eq!((released.acked(), released.nodes()), (3, 3));
    assert_eq!(nodes.phases(0..3, "job"), vec!["FREE"; 3]);
    assert!(matches!(b.claim("job").await.unwrap(), Claim::Acquired(_)));
}

#[tokio::test]
async fn fingerprints_catch_a_reused_id_with_another_payload() {
    let nodes = Nodes::start(3);
    let dedup = nodes.client().await;
    let fp = |f: &[u8]| ClaimOptions::new().fingerprint(f);

    let lease = dedup.claim_with("evt", fp(b"payload-a")).await.unwrap().acquired().unwrap();
    // While held: another payload is a mismatch, not "in progress".
    assert!(matches!(dedup.claim_with("evt", fp(b"payload-b")).await.unwrap(), Claim::Mismatch));
    assert!(matches!(dedup.claim_with("evt", fp(b"payload-a")).await.unwrap(), Claim::InProgress { .. }));
    lease.complete(Some(b"ok")).await.unwrap();

    assert!(matches!(dedup.claim_with("evt", fp(b"payload-b")).await.unwrap(), Claim::Mismatch));
    assert!(matches!(dedup.claim_with("evt", fp(b"payload-a")).await.unwrap(), Claim::Completed { .. }));
    assert!(matches!(dedup.claim("evt").await.unwrap(), Claim::Completed { .. }), "no fingerprint never mismatches");
}

#[tokio::test]
async fn extend_moves_the_validity_forward() {
    let nodes = Nodes::start(3);
    let dedup = nodes.builder().lease(Duration::from_secs(20)).connect().await.unwrap();
    let lease = dedup.claim("evt").await.unwrap().acquired().unwrap();
    let before = lease.valid_until();
    let validity = lease.extend().await.unwrap();
    assert!(validity > Duration::ZERO && validity <= Duration::from_secs(20));
    assert!(lease.valid_until() >= before);
    lease.release().await;
}

#[tokio::test]
async fn a_lease_that_expired_on_the_nodes_cannot_be_extended_or_completed() {
    let nodes = Nodes::start(3);
    let dedup = nodes.builder().lease(Duration::from_millis(250)).connect().await.unwrap();
    let lease = dedup.claim("evt").await.unwrap().acquired().unwrap();
    // Wait until the nodes themselves have let the claim go.
    for _ in 0..200 {
        if nodes.phases(0..3, "evt") == vec!["FREE"; 3] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(nodes.phases(0..3, "evt"), vec!["FREE"; 3]);
    assert!(lease.is_lost(), "the local validity ends before the nodes' lease");
    assert!(matches!(lease.extend().await, Err(Error::LeaseLost { reason: LossReason::Expired, .. })));
    match lease.complete(Some(b"late")).await {
        Err(Error::LeaseLost { key, reason: LossReason::Rejected }) => assert_eq!(key, "evt"),
        other => panic!("completing an expired claim gave {other:?}"),
    }
    assert!(matches!(dedup.claim("evt").await.unwrap(), Claim::Acquired(_)), "the id is free again");
}

#[tokio::test]
async fn completion_on_a_minority_is_reported_and_on_no_node_is_an_error() {
    let mut nodes = Nodes::start(3);
    let dedup = nodes.client().await;
    let one = dedup.claim("one").await.unwrap().acquired().unwrap();
    let none = dedup.claim("none").await.unwrap().acquired().unwrap();

    nodes.servers[1].kill();
    nodes.servers[2].kill();
    let completion = one.complete(Some(b"r")).await.unwrap();
    assert_eq!((completion.acked(), completion.quorum(), completion.is_durable()), (1, 2, false));

    nodes.servers[0].kill();
    match none.complete(Some(b"r")).await {
        Err(Error::Unavailable { failures, nodes: 3, quorum: 2 }) => {
            let named: Vec<&str> = failures.iter().map(|f| f.node()).collect();
            assert_eq!(named, [nodes.name(0), nodes.name(1), nodes.name(2)]);
        }
        other => panic!("completing on no node gave {other:?}"),
    }
}

#[tokio::test]
async fn a_dropped_lease_is_released_in_the_background() {
    let nodes = Nodes::start(3);
    let dedup = nodes.client().await;
    let lease = dedup.claim("evt").await.unwrap().acquired().unwrap();
    let watch = lease.watch();
    drop(lease);
    assert_eq!(watch.lost().await, LossReason::Ended);
    // The lease is 30 s long: getting the id back now shows it was released.
    let mut claim = dedup.claim("evt").await.unwrap();
    for _ in 0..100 {
        if matches!(claim, Claim::Acquired(_)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        claim = dedup.claim("evt").await.unwrap();
    }
    assert!(matches!(claim, Claim::Acquired(_)), "still {claim:?}");
}

#[tokio::test]
async fn arguments_that_can_never_work_are_errors_not_outcomes() {
    let nodes = Nodes::start(1);
    let dedup = nodes.client().await;
    assert!(matches!(dedup.claim("").await, Err(Error::Config(ConfigError::EmptyId))));
    let long = ClaimOptions::new().fingerprint(vec![0u8; 65]);
    assert!(matches!(
        dedup.claim_with("evt", long).await,
        Err(Error::Config(ConfigError::InvalidFingerprint { len: 65 }))
    ));
    let short = ClaimOptions::new().lease(Duration::from_millis(2));
    assert!(matches!(dedup.claim_with("evt", short).await, Err(Error::Config(_))));
    assert_eq!(nodes.status(0, "evt").0, "FREE", "nothing was sent");
}

#[tokio::test]
async fn a_single_node_is_its_own_quorum() {
    let nodes = Nodes::start(1);
    let dedup = nodes.client().await;
    assert_eq!(dedup.quorum(), 1);
    let lease = dedup.claim("evt").await.unwrap().acquired().unwrap();
    assert!(matches!(dedup.claim("evt").await.unwrap(), Claim::InProgress { .. }));
    assert!(lease.complete(None).await.unwrap().is_durable());
}

#[tokio::test]
async fn results_are_binary_safe() {
    let nodes = Nodes::start(3);
    let dedup = nodes.client().await;
    let result: Vec<u8> = (0..=255).collect();
    dedup.claim("bin").await.unwrap().acquired().unwrap().complete(Some(&result)).await.unwrap();
    match dedup.claim("bin").await.unwrap() {
        Claim::Completed { result: Some(stored) } => assert_eq!(stored, result),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_cancelled_claim_releases_what_it_claimed() {
    let nodes = Nodes::start(3);
    let dedup = nodes.builder().node_timeout(Duration::from_secs(5)).connect().await.unwrap();
    // With node 2 paused, the round cannot end before node 2's 5 s timeout: cancel it midway.
    nodes.servers[2].pause();
    let cancelled = tokio::time::timeout(Duration::from_millis(100), dedup.claim("evt")).await;
    assert!(cancelled.is_err(), "the claim should still be waiting for the paused node");
    let mut phases = nodes.phases(0..2, "evt");
    for _ in 0..200 {
        if phases == ["FREE", "FREE"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        phases = nodes.phases(0..2, "evt");
    }
    assert_eq!(phases, ["FREE", "FREE"], "the cancelled claim was released");
    nodes.servers[2].resume();
}

#[tokio::test]
async fn resp3_connections_read_the_same_replies() {
    let nodes = Nodes::start(3);
    let urls: Vec<String> = nodes.urls().into_iter().map(|u| format!("{u}?protocol=resp3")).collect();
    let dedup = dedup_client::Dedup::builder().nodes(urls).connect().await.unwrap();
    let other = nodes.client().await;
    let lease = dedup.claim_with("evt", ClaimOptions::new().fingerprint(*b"a")).await.unwrap().acquired().unwrap();
    assert!(matches!(dedup.claim("evt").await.unwrap(), Claim::InProgress { .. }));
    assert!(lease.extend().await.is_ok());
    lease.complete(Some(b"r3")).await.unwrap();
    assert!(matches!(dedup.claim("evt").await.unwrap(), Claim::Completed { result: Some(r) } if r == b"r3"));
    assert!(matches!(dedup.claim_with("evt", ClaimOptions::new().fingerprint(*b"b")).await.unwrap(), Claim::Mismatch));
    assert!(matches!(other.claim("evt").await.unwrap(), Claim::Completed { .. }));
    let completed = dedup.claim("none").await.unwrap().acquired().unwrap();
    completed.complete(None).await.unwrap();
    assert!(matches!(dedup.claim("none").await.unwrap(), Claim::Completed { result: None }));
}
