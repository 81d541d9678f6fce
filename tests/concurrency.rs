//! Many clients claiming the same keys at once: exactly one CLAIMED per key, the rest HELD.

mod common;

use std::sync::{Arc, Barrier};

use common::*;
use testkit::RedisServer;

#[test]
fn exactly_one_claim_per_key_under_contention() {
    const CLIENTS: usize = 16;
    const KEYS: usize = 300;
    let server = RedisServer::start();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let mut con = server.connection();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let me = owner(&format!("client-{c}"));
                barrier.wait();
                // Each client walks the keys from a different starting point to mix the order.
                (0..KEYS)
                    .map(|i| (i + c * 7) % KEYS)
                    .map(|k| {
                        let key = format!("evt-{k}");
                        (k, claim(&mut con, key.as_bytes(), 60_000, &me, None))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut winners = vec![0usize; KEYS];
    let mut tokens = Vec::new();
    for worker in workers {
        for (k, reply) in worker.join().unwrap() {
            match reply {
                Reply::Claimed { token, .. } => {
                    winners[k] += 1;
                    tokens.push(token);
                }
                Reply::Held { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(winners.iter().all(|&n| n == 1), "claims per key: {winners:?}");
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), KEYS, "every claim got its own token");
    let con = &mut server.connection();
    assert_eq!(info_field(con, "dedup_claims_claimed"), KEYS as i64);
    assert_eq!(info_field(con, "dedup_claims_held"), ((CLIENTS - 1) * KEYS) as i64);
}
