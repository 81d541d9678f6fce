//! The blocking client: the same outcomes, without an async runtime.

mod common;

use std::time::Duration;

use common::{Nodes, TEST_RETRY_DELAY};
use dedup_client::blocking::{Claim, Dedup};
use dedup_client::{Error, Once, OnceError};

fn client(nodes: &Nodes) -> Dedup {
    Dedup::builder().nodes(nodes.urls()).retry_delay(TEST_RETRY_DELAY).connect().unwrap()
}

#[test]
fn claim_complete_and_replay() {
    let nodes = Nodes::start(3);
    let dedup = client(&nodes);
    assert_eq!(dedup.nodes().count(), 3);
    let Claim::Acquired(lease) = dedup.claim("evt").unwrap() else { panic!("not acquired") };
    assert!(lease.validity() > Duration::ZERO);
    assert!(matches!(client(&nodes).claim("evt").unwrap(), Claim::InProgress { .. }));
    assert!(lease.complete(Some(b"42")).unwrap().is_durable());
    assert!(matches!(dedup.claim("evt").unwrap(), Claim::Completed { result: Some(r) } if r == b"42"));
}

#[test]
fn a_dropped_lease_is_released_before_drop_returns() {
    let nodes = Nodes::start(3);
    let dedup = client(&nodes);
    let lease = dedup.claim("evt").unwrap().acquired().unwrap();
    drop(lease);
    assert_eq!(nodes.phases(0..3, "evt"), vec!["FREE"; 3]);
    let lease = dedup.claim("evt").unwrap().acquired().expect("free again");
    assert_eq!(lease.release().acked(), 3);
}

#[test]
fn keep_alive_runs_while_the_caller_blocks() {
    let nodes = Nodes::start(3);
    let dedup = Dedup::builder().nodes(nodes.urls()).lease(Duration::from_millis(900)).connect().unwrap();
    let mut lease = dedup.claim("evt").unwrap().acquired().unwrap();
    lease.keep_alive();
    std::thread::sleep(Duration::from_millis(2_700));
    assert!(!lease.is_lost(), "{lease:?}");
    assert!(lease.extend().unwrap() > Duration::ZERO);
    assert!(lease.complete(None).unwrap().is_durable());
}

#[test]
fn once_runs_once_replays_and_releases_on_error() {
    let nodes = Nodes::start(3);
    let dedup = client(&nodes);
    let failed = dedup.once("evt", |_| Err::<String, _>(std::io::Error::other("boom")));
    assert!(matches!(failed, Err(OnceError::Job(_))));
    let ran = dedup.once("evt", |lease| Ok::<_, std::io::Error>(format!("ran under {}", lease.key()))).unwrap();
    assert!(matches!(&ran, Once::Ran { output, completion: Ok(c) } if output == "ran under evt" && c.is_durable()));
    let replayed = dedup.once("evt", |_| Ok::<String, std::io::Error>("again".into())).unwrap();
    assert_eq!(replayed.output().as_deref(), Some("ran under evt"));
}

#[test]
fn one_node_down_works_and_a_majority_down_is_unavailable() {
    let mut nodes = Nodes::start(3);
    nodes.servers[0].kill();
    let dedup = client(&nodes);
    let lease = dedup.claim("a").unwrap().acquired().unwrap();
    assert_eq!(lease.complete(None).unwrap().acked(), 2);
    nodes.servers[1].kill();
    assert!(matches!(dedup.claim("b"), Err(Error::Unavailable { ref failures, .. }) if failures.len() == 2));
}

#[test]
fn dropping_the_client_inside_async_code_does_not_panic() {
    let nodes = Nodes::start(1);
    let dedup = client(&nodes);
    let lease = dedup.claim("evt").unwrap().acquired().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        drop(lease);
        drop(dedup);
    });
}
