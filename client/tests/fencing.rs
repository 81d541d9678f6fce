//! Fenced mode: tokens increase across clients, ids and quorums, whatever the node counters were.

mod common;

use common::{bounded, Nodes};
use dedup_client::{Claim, Dedup};

const SEEDED: u64 = 5_000;

/// Drives node `i`'s token counter to `SEEDED` with claims on other keys.
fn seed(nodes: &Nodes, i: usize) {
    let mut con = nodes.servers[i].connection();
    let mut pipe = redis::pipe();
    for k in 0..SEEDED {
        pipe.cmd("DEDUP.CLAIM").arg(format!("seed:{k}")).arg(60_000).arg("seeder").ignore();
    }
    pipe.query::<()>(&mut con).expect("seed claims");
}

/// A fenced claim of `id`, released (so the id can be claimed again) or completed.
async fn fenced_token(dedup: &Dedup, id: &str, complete: bool) -> u64 {
    let lease = match bounded("claim", dedup.claim(id)).await {
        Ok(Claim::Acquired(lease)) => lease,
        other => panic!("{id}: {other:?}"),
    };
    let token = lease.token().expect("fenced mode gives a token");
    if complete {
        lease.complete(None).await.unwrap();
    } else {
        lease.release().await;
    }
    token
}

/// Six sequential claims, alternating clients: on one shared id, released each time, and on
/// fresh ids, completed.
async fn phase(clients: &[Dedup; 2], tokens: &mut Vec<u64>) {
    for _ in 0..6 {
        let step = tokens.len();
        let token = if step % 3 == 0 {
            fenced_token(&clients[step % 2], &format!("fresh:{step}"), true).await
        } else {
            fenced_token(&clients[step % 2], "shared", false).await
        };
        tokens.push(token);
    }
}

#[tokio::test]
async fn sequential_claims_get_increasing_tokens_across_clients_ids_and_quorums() {
    let mut nodes = Nodes::start(3);
    seed(&nodes, 0);
    assert_eq!(nodes.status(0, &format!("seed:{}", SEEDED - 1)).1, SEEDED as i64);

    let clients = [
        nodes.builder().fencing(true).connect().await.unwrap(),
        nodes.builder().fencing(true).connect().await.unwrap(),
    ];
    let mut tokens = Vec::new();

    // All nodes up: the quorum includes the seeded node, so the first token is past the seed.
    phase(&clients, &mut tokens).await;
    assert!(tokens[0] > SEEDED, "the largest node token wins: {tokens:?}");

    // Seeded node down: nodes 1 and 2 issue tokens from their own counters, which fencing raised.
    nodes.servers[0].kill();
    phase(&clients, &mut tokens).await;

    // Seeded node back with no memory of its counter, node 2 down: nodes 0 and 1 decide.
    nodes.servers[0].restart();
    nodes.servers[2].kill();
    phase(&clients, &mut tokens).await;

    eprintln!("tokens: {tokens:?}");
    for pair in tokens.windows(2) {
        assert!(pair[1] > pair[0], "tokens must strictly increase: {tokens:?}");
    }
}

#[tokio::test]
async fn without_fencing_there_is_no_token() {
    let nodes = Nodes::start(3);
    seed(&nodes, 1);
    let dedup = nodes.client().await;
    let lease = dedup.claim("evt").await.unwrap().acquired().unwrap();
    assert_eq!(lease.token(), None);
    assert_eq!(lease.watch().token(), None);
}

#[tokio::test]
async fn a_fenced_claim_raises_the_token_on_every_node() {
    let nodes = Nodes::start(3);
    seed(&nodes, 2);
    let dedup = nodes.builder().fencing(true).connect().await.unwrap();
    let lease = dedup.claim("evt").await.unwrap().acquired().unwrap();
    let token = lease.token().unwrap();
    assert_eq!(token, SEEDED + 1);
    for i in 0..3 {
        assert_eq!(nodes.status(i, "evt"), ("CLAIMED".to_string(), token as i64), "node {i}");
    }
    lease.complete(None).await.unwrap();
}
