//! A Redis Cluster as one of the quorum's nodes (`Builder::cluster_node`, feature `cluster`).
#![cfg(feature = "cluster")]

use std::time::Duration;

use dedup_client::{Claim, Dedup};
use testkit::{start_cluster, RedisServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_votes_as_one_node_and_shards_the_ids() {
    let cluster = start_cluster(3);
    let servers = [RedisServer::start(), RedisServer::start()];
    let dedup = Dedup::builder()
        .nodes(servers.iter().map(RedisServer::url))
        .cluster_node(cluster.iter().take(2).map(RedisServer::url))
        .lease(Duration::from_secs(10))
        .connect()
        .await
        .unwrap();
    assert_eq!(dedup.quorum(), 2);
    assert!(dedup.nodes().any(|n| n.starts_with("cluster(")), "{:?}", dedup.nodes().collect::<Vec<_>>());

    for i in 0..60 {
        let id = format!("webhook:evt_{i}");
        let Claim::Acquired(lease) = dedup.claim(&id).await.unwrap() else { panic!("{id} not acquired") };
        lease.complete(Some(format!("record {i}").as_bytes())).await.unwrap();
        match dedup.claim(&id).await.unwrap() {
            Claim::Completed { result } => assert_eq!(result, Some(format!("record {i}").into_bytes())),
            other => panic!("{id}: {other:?}"),
        }
    }
    // The ids are spread over the cluster's masters, each on the master owning its slot.
    let per_master: Vec<i64> = cluster
        .iter()
        .map(|m| redis::cmd("DBSIZE").query::<i64>(&mut m.connection()).unwrap())
        .collect();
    assert_eq!(per_master.iter().sum::<i64>(), 60);
    assert!(per_master.iter().all(|&n| n > 0), "{per_master:?}");

    // With both single servers gone, the cluster alone is not a majority: never a verdict.
    drop(servers);
    assert!(dedup.claim("webhook:after").await.is_err());
}
