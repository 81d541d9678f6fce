//! Many workers racing for the same ids: leases never overlap, and every id is done exactly once.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{bounded, Nodes};
use dedup_client::{Claim, Error};
use rand::seq::SliceRandom;
use rand::Rng;

const TASKS: usize = 64;
const IDS: usize = 500;

/// What happened to one id: each acquisition as (acquired, given up), and who completed it.
#[derive(Default)]
struct History {
    held: Vec<(Instant, Instant)>,
    completed_by: Vec<usize>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_workers_never_overlap_and_each_id_is_done_once() {
    let nodes = Nodes::start(3);
    let dedup = nodes.client().await;
    let history: Arc<Mutex<HashMap<usize, History>>> = Arc::default();
    let contended = Arc::new(std::sync::atomic::AtomicUsize::new(0));

    let workers: Vec<_> = (0..TASKS)
        .map(|task| {
            let (dedup, history, contended) = (dedup.clone(), history.clone(), contended.clone());
            tokio::spawn(async move {
                let mut ids: Vec<usize> = (0..IDS).collect();
                ids.shuffle(&mut rand::rng());
                // Every worker tries every id, in its own random order.
                for id in ids {
                    if rand::rng().random_bool(0.2) {
                        tokio::task::yield_now().await;
                    }
                    let key = format!("race:{id}");
                    let lease = match dedup.claim(&key).await {
                        Ok(Claim::Acquired(lease)) => lease,
                        Ok(Claim::InProgress { .. } | Claim::Completed { .. }) => continue,
                        Ok(Claim::Mismatch) => panic!("{key}: mismatch without fingerprints"),
                        Err(Error::Contended { .. }) => {
                            contended.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            continue;
                        }
                        Err(e) => panic!("{key}: {e}"),
                    };
                    let acquired = Instant::now();
                    let jitter = rand::rng().random_range(0..=1_500);
                    tokio::time::sleep(Duration::from_micros(jitter)).await;
                    let give_up = rand::rng().random_bool(0.3);
                    let released = Instant::now();
                    {
                        let mut history = history.lock().unwrap();
                        let entry = history.entry(id).or_default();
                        entry.held.push((acquired, released));
                        if !give_up {
                            entry.completed_by.push(task);
                        }
                    }
                    if give_up {
                        lease.release().await;
                    } else {
                        let completion = lease.complete(Some(task.to_string().as_bytes())).await.unwrap();
                        assert!(completion.is_durable(), "{key}: {completion:?}");
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        bounded("worker", worker).await.unwrap();
    }

    // Finish the ids nobody completed (not tried, or only released).
    for id in 0..IDS {
        let key = format!("race:{id}");
        if let Claim::Acquired(lease) = dedup.claim(&key).await.unwrap() {
            {
                let mut history = history.lock().unwrap();
                let entry = history.entry(id).or_default();
                let now = Instant::now();
                entry.held.push((now, now));
                entry.completed_by.push(usize::MAX);
            }
            lease.complete(Some(usize::MAX.to_string().as_bytes())).await.unwrap();
        }
    }

    let history = std::mem::take(&mut *history.lock().unwrap());
    let mut reacquired = 0;
    for id in 0..IDS {
        let key = format!("race:{id}");
        let entry = &history[&id];
        let mut held = entry.held.clone();
        held.sort();
        for pair in held.windows(2) {
            assert!(pair[1].0 >= pair[0].1, "{key}: two leases overlapped: {pair:?}");
        }
        reacquired += held.len() - 1;
        assert_eq!(entry.completed_by.len(), 1, "{key}: completed {} times", entry.completed_by.len());
        match dedup.claim(&key).await.unwrap() {
            Claim::Completed { result } => {
                assert_eq!(result, Some(entry.completed_by[0].to_string().into_bytes()), "{key}: stored result");
            }
            other => panic!("{key}: {other:?}"),
        }
        // A quorum at least: a racing claimant's partial claim can sit on one node while the
        // completer completes, which that node then refuses (the completion is still durable).
        let done = nodes.phases(0..3, &key).iter().filter(|p| *p == "DONE").count();
        assert!(done >= 2, "{key}: DONE on {done} nodes");
    }
    assert!(reacquired > 0, "released ids were acquired again");
    eprintln!(
        "{IDS} ids, {TASKS} workers: {reacquired} re-acquisitions after release, {} contended claims",
        contended.load(std::sync::atomic::Ordering::Relaxed)
    );
}
