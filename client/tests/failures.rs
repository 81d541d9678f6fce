//! Node failures on 3 and 5 servers: whatever fails, a failure is never read as a duplicate.

mod common;

use std::time::{Duration, Instant};

use common::{bounded, Nodes};
use dedup_client::{Claim, Dedup, Error, NodeError, NodeFailure};
use testkit::RedisServer;

/// How many nodes must fail for a majority to be gone.
fn majority_down(n: usize) -> usize {
    n - (n / 2 + 1) + 1
}

fn failed_nodes(failures: &[NodeFailure]) -> Vec<String> {
    failures.iter().map(|f| f.node().to_string()).collect()
}

/// Claims and completes `id`, which must be acquired; returns how many nodes recorded it.
async fn process(dedup: &Dedup, id: &str) -> usize {
    match bounded("claim", dedup.claim(id)).await {
        Ok(Claim::Acquired(lease)) => lease.complete(Some(id.as_bytes())).await.expect("complete").acked(),
        other => panic!("{id}: expected Acquired, got {other:?}"),
    }
}

/// Processes fresh ids until one is recorded by all `n` nodes (a node coming back), within a
/// bounded number of tries; returns the last count.
async fn processed_by_all(dedup: &Dedup, n: usize) -> usize {
    let mut acked = 0;
    for i in 0..100 {
        acked = process(dedup, &format!("after{i}")).await;
        if acked == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    acked
}

#[tokio::test]
async fn one_node_down_from_the_start_claims_work() {
    for n in [3, 5] {
        let mut nodes = Nodes::start(n);
        nodes.servers[0].kill();
        let dedup = bounded("connect", nodes.client()).await;
        let other = nodes.client().await;
        for i in 0..5 {
            let id = format!("evt{i}");
            let lease = bounded("claim", dedup.claim(&id)).await.unwrap().acquired().expect("acquired");
            assert!(matches!(other.claim(&id).await.unwrap(), Claim::InProgress { .. }));
            let completion = lease.complete(None).await.unwrap();
            assert_eq!(completion.acked(), n - 1);
            assert!(completion.is_durable());
            assert!(other.claim(&id).await.unwrap().is_completed());
        }
    }
}

#[tokio::test]
async fn all_nodes_down_from_the_start_connects_and_is_unavailable() {
    let mut nodes = Nodes::start(3);
    let names: Vec<String> = (0..3).map(|i| nodes.name(i)).collect();
    for server in &mut nodes.servers {
        server.kill();
    }
    let dedup = bounded("connect", nodes.client()).await;
    match bounded("claim", dedup.claim("evt")).await {
        Err(Error::Unavailable { failures, nodes: 3, quorum: 2 }) => {
            assert_eq!(failed_nodes(&failures), names);
            assert!(failures.iter().all(|f| matches!(f.error(), NodeError::Redis(_) | NodeError::Timeout(_))));
        }
        other => panic!("no nodes gave {other:?}"),
    }
}

#[tokio::test]
async fn a_majority_down_is_unavailable_never_in_progress_or_completed() {
    for n in [3, 5] {
        let mut nodes = Nodes::start(n);
        let holder = nodes.client().await;
        let dedup = nodes.client().await;
        let _held = holder.claim("held").await.unwrap().acquired().expect("acquired");

        let down = majority_down(n);
        for server in &mut nodes.servers[..down] {
            server.kill();
        }
        let dead: Vec<String> = (0..down).map(|i| nodes.name(i)).collect();

        // The live nodes still say HELD, but fewer than a quorum: that proves nothing.
        let started = Instant::now();
        match bounded("claim of a held id", dedup.claim("held")).await {
            Err(Error::Unavailable { failures, nodes: total, quorum }) => {
                assert_eq!((total, quorum), (n, n / 2 + 1));
                assert_eq!(failed_nodes(&failures), dead, "each failing node is named");
            }
            other => panic!("a held id with a majority down gave {other:?}"),
        }
        eprintln!("n={n}: Unavailable after {:?} (4 rounds, nodes refusing connections)", started.elapsed());

        match bounded("claim of a fresh id", dedup.claim("fresh")).await {
            Err(Error::Unavailable { failures, .. }) => assert_eq!(failed_nodes(&failures), dead),
            other => panic!("a fresh id with a majority down gave {other:?}"),
        }
        // The partial claims on the live nodes were released; the holder's claim is untouched.
        assert_eq!(nodes.phases(down..n, "fresh"), vec!["FREE"; n - down]);
        assert_eq!(nodes.phases(down..n, "held"), vec!["CLAIMED"; n - down]);
    }
}

#[tokio::test]
async fn a_node_killed_mid_run() {
    for n in [3, 5] {
        let mut nodes = Nodes::start(n);
        let dedup = nodes.client().await;
        let (reached, halfway) = tokio::sync::oneshot::channel();
        let worker = {
            let dedup = dedup.clone();
            tokio::spawn(async move {
                let mut reached = Some(reached);
                let mut acked = Vec::new();
                for i in 0..40 {
                    acked.push(process(&dedup, &format!("evt{i}")).await);
                    if i == 15 {
                        reached.take().unwrap().send(()).unwrap();
                    }
                }
                acked
            })
        };
        // A lease held across the kill.
        let held = dedup.claim("across").await.unwrap().acquired().unwrap();
        halfway.await.unwrap();
        nodes.servers[0].kill();

        let acked = bounded("worker", worker).await.unwrap();
        let quorum = n / 2 + 1;
        assert!(acked.iter().all(|&a| a >= quorum), "every completion durable: {acked:?}");
        assert_eq!(acked[..16], vec![n; 16][..], "before the kill, every node");
        assert_eq!(*acked.last().unwrap(), n - 1, "after the kill, the live nodes");
        let completion = held.complete(None).await.unwrap();
        assert_eq!(completion.acked(), n - 1);
        for i in 0..40 {
            assert_eq!(nodes.phases(1..n, &format!("evt{i}")), vec!["DONE"; n - 1]);
        }
    }
}

#[tokio::test]
async fn a_paused_node_costs_at_most_its_timeout_and_never_hangs() {
    for n in [3, 5] {
        let nodes = Nodes::start(n);
        let timeout = Duration::from_millis(50);
        let dedup = nodes.builder().node_timeout(timeout).connect().await.unwrap();
        assert_eq!(process(&dedup, "warm").await, n);

        nodes.servers[0].pause();
        assert_eq!(process(&dedup, "one-paused").await, n - 1, "the paused node's reply is not waited for");

        let down = majority_down(n);
        for server in &nodes.servers[1..down] {
            server.pause();
        }
        match bounded("claim with a majority paused", dedup.claim("majority-paused")).await {
            Err(Error::Unavailable { failures, .. }) => {
                let paused: Vec<String> = (0..down).map(|i| nodes.name(i)).collect();
                assert_eq!(failed_nodes(&failures), paused);
                for f in &failures {
                    assert!(matches!(f.error(), NodeError::Timeout(t) if *t == timeout), "{f}");
                }
            }
            other => panic!("a paused majority gave {other:?}"),
        }

        for server in &nodes.servers[..down] {
            server.resume();
        }
        // Back to full strength once the paused nodes have worked off their backlog.
        assert_eq!(processed_by_all(&dedup, n).await, n, "resumed nodes take part again");
        // The backlog ran in order: the paused majority's claim and its release cancel out.
        assert_eq!(nodes.phases(0..n, "majority-paused"), vec!["FREE"; n]);
    }
}

#[tokio::test]
async fn a_restarted_node_rejoins_and_done_survives_a_minority_restart() {
    for n in [3, 5] {
        let mut nodes = Nodes::start(n);
        let dedup = nodes.client().await;
        assert_eq!(process(&dedup, "before").await, n);

        // No persistence in these servers: the restarted node forgets everything.
        nodes.servers[0].restart();
        assert_eq!(nodes.status(0, "before").0, "FREE");
        assert!(bounded("claim", dedup.claim("before")).await.unwrap().is_completed());

        assert_eq!(processed_by_all(&dedup, n).await, n, "the restarted node takes part again");
    }
}

#[tokio::test]
async fn a_node_out_of_memory_counts_as_failed() {
    for n in [3, 5] {
        let nodes = Nodes::start(n);
        let holder = nodes.client().await;
        let dedup = nodes.client().await;
        let _held = holder.claim("held").await.unwrap().acquired().unwrap();
        let oom = |i: usize| {
            nodes.command(i, redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg("noeviction"));
            nodes.command(i, redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg("1"));
        };

        oom(0);
        let lease = dedup.claim("one-oom").await.unwrap().acquired().expect("a minority OOM is tolerated");
        assert_eq!(lease.complete(None).await.unwrap().acked(), n - 1);

        let down = majority_down(n);
        (1..down).for_each(oom);
        for id in ["held", "fresh"] {
            match bounded("claim", dedup.claim(id)).await {
                Err(Error::Unavailable { failures, .. }) => {
                    assert_eq!(failures.len(), down);
                    for f in &failures {
                        let NodeError::Redis(e) = f.error() else { panic!("{f}") };
                        assert_eq!(e.code(), Some("OOM"), "{f}");
                    }
                }
                other => panic!("{id} with a majority out of memory gave {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn servers_that_do_not_speak_dedup_count_as_failed() {
    // One without the module (unknown command), one read-only replica (READONLY or LOADING).
    let master = RedisServer::start();
    let plain = RedisServer::config().without_module().start();
    let replica = RedisServer::start();
    let mut con = replica.connection();
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(master.port()).query(&mut con).unwrap();
    let good = RedisServer::start();

    let dedup = Dedup::builder()
        .nodes([good.url(), plain.url(), replica.url()])
        .retry_delay(common::TEST_RETRY_DELAY)
        .connect()
        .await
        .unwrap();
    match bounded("claim", dedup.claim("evt")).await {
        Err(Error::Unavailable { failures, .. }) => {
            assert_eq!(failures.len(), 2);
            for f in &failures {
                assert!(matches!(f.error(), NodeError::Redis(e) if e.code().is_some()), "a server error: {f}");
            }
        }
        other => panic!("one usable node of three gave {other:?}"),
    }
}
