//! The module in a 3-master Redis Cluster: cluster-aware clients route DEDUP.* by key.

mod common;

use std::process::Command;

use common::*;
use redis::cluster::ClusterClient;
use testkit::start_cluster;

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli").arg("-c").arg("-p").arg(port.to_string()).args(args).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn cluster_clients_route_dedup_commands_by_key() {
    let nodes = start_cluster(3);
    let first = nodes[0].port();

    // redis-cli -c follows MOVED redirects to the node that owns each key.
    for i in 0..20 {
        let key = format!("webhook:evt_{i}");
        let reply = cli(first, &["DEDUP.CLAIM", &key, "60000", "s3cret-cli"]);
        assert!(reply.starts_with("CLAIMED"), "{key}: {reply}");
        let again = cli(nodes[1].port(), &["DEDUP.CLAIM", &key, "60000", "s3cret-other"]);
        assert!(again.starts_with("HELD"), "{key}: {again}");
    }

    // redis-rs's cluster client computes the slot from the key positions the module declared.
    let client = ClusterClient::new(nodes.iter().map(|n| n.url()).collect::<Vec<_>>()).unwrap();
    let mut con = client.get_connection().unwrap();
    let me = owner("rs");
    for i in 0..100 {
        let key = format!("webhook:rs_{i}");
        let reply: redis::Value = redis::cmd("DEDUP.CLAIM").arg(&key).arg(60_000).arg(&me).query(&mut con).unwrap();
        assert!(format!("{reply:?}").contains("CLAIMED"), "{key}: {reply:?}");
        let done: i64 = redis::cmd("DEDUP.COMPLETE").arg(&key).arg(60_000).arg(&me).arg("RESULT").arg(i).query(&mut con).unwrap();
        assert_eq!(done, 1);
    }

    // Each key lives only on the node that owns its slot, and the keys are spread over all three.
    let mut per_node = Vec::new();
    for node in &nodes {
        let c = &mut node.connection();
        let keys: Vec<String> = redis::cmd("KEYS").arg("webhook:rs_*").query(c).unwrap();
        for key in &keys {
            assert!(matches!(status(c, key.as_bytes()), Reply::StatusDone { .. }));
        }
        per_node.push(keys.len());
    }
    assert_eq!(per_node.iter().sum::<usize>(), 100);
    assert!(per_node.iter().all(|&n| n > 0), "keys per node: {per_node:?}");
}
