//! `Dedup::once`: runs a job at most once per id and replays its stored output.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{bounded, Nodes};
use dedup_client::{ClaimOptions, Error, LossReason, Once, OnceError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Receipt {
    record: u64,
    note: String,
}

#[tokio::test]
async fn runs_once_and_replays_the_stored_output_to_duplicates() {
    let nodes = Nodes::start(3);
    let (first, second) = (nodes.client().await, nodes.client().await);
    let runs = Arc::new(AtomicUsize::new(0));
    let job = |runs: Arc<AtomicUsize>| {
        move |_lease| async move {
            let n = runs.fetch_add(1, Ordering::SeqCst) as u64;
            Ok::<_, std::io::Error>(Receipt { record: 42 + n, note: "créé ✓".into() })
        }
    };

    let outcome = first.once("evt", job(runs.clone())).await.unwrap();
    let Once::Ran { output, completion } = outcome else { panic!("first call must run: {outcome:?}") };
    assert_eq!(output, Receipt { record: 42, note: "créé ✓".into() });
    assert!(completion.unwrap().is_durable());

    for dedup in [&first, &second] {
        match dedup.once("evt", job(runs.clone())).await.unwrap() {
            Once::Replayed(replayed) => assert_eq!(replayed, output),
            other => panic!("duplicate must replay: {other:?}"),
        }
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failed_job_releases_its_claim_so_a_retry_runs() {
    let nodes = Nodes::start(3);
    let dedup = nodes.client().await;
    let failed = dedup.once("evt", |_| async { Err::<u32, _>(std::io::Error::other("downstream 500")) }).await;
    match failed {
        Err(OnceError::Job(e)) => assert_eq!(e.to_string(), "downstream 500"),
        other => panic!("{other:?}"),
    }
    assert_eq!(nodes.phases(0..3, "evt"), vec!["FREE"; 3]);
    let retried = dedup.once("evt", |_| async { Ok::<u32, std::io::Error>(7) }).await.unwrap();
    assert!(matches!(retried, Once::Ran { output: 7, .. }));
}

#[tokio::test]
async fn a_concurrent_duplicate_is_in_progress_then_replayed() {
    let nodes = Nodes::start(3);
    let dedup = nodes.client().await;
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let (finish, finish_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = {
        let dedup = dedup.clone();
        tokio::spawn(async move {
            dedup
                .once("evt", |lease| async move {
                    assert!(!lease.is_lost());
                    started_tx.send(()).unwrap();
                    finish_rx.await.unwrap();
                    Ok::<_, std::io::Error>(vec![1u8, 2, 3])
                })
                .await
        })
    };
    started.await.unwrap();
    let runs = AtomicUsize::new(0);
    let busy = dedup
        .once("evt", |_| async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<Vec<u8>, std::io::Error>(vec![])
        })
        .await
        .unwrap();
    assert!(matches!(busy, Once::InProgress { .. }), "{busy:?}");
    finish.send(()).unwrap();
    assert!(matches!(bounded("runner", runner).await.unwrap().unwrap(), Once::Ran { .. }));
    let replay = dedup.once("evt", |_| async { Ok::<Vec<u8>, std::io::Error>(vec![]) }).await.unwrap();
    assert_eq!(replay.output(), Some(vec![1, 2, 3]));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn another_payload_under_the_same_id_is_a_mismatch() {
    let nodes = Nodes::start(3);
    let dedup = nodes.client().await;
    let fp = |f: &[u8]| ClaimOptions::new().fingerprint(f);
    let ok = |v: u8| move |_| async move { Ok::<u8, std::io::Error>(v) };
    assert!(matches!(dedup.once_with("evt", fp(b"a"), ok(1)).await.unwrap(), Once::Ran { output: 1, .. }));
    assert!(matches!(dedup.once_with("evt", fp(b"b"), ok(2)).await.unwrap(), Once::Mismatch));
    assert!(matches!(dedup.once_with("evt", fp(b"a"), ok(3)).await.unwrap(), Once::Replayed(1)));
}

#[tokio::test]
async fn a_stored_result_of_another_type_is_a_decode_error() {
    let nodes = Nodes::start(3);
    let dedup = nodes.client().await;
    let lease = dedup.claim("evt").await.unwrap().acquired().unwrap();
    lease.complete(Some(b"not json")).await.unwrap();
    let outcome = dedup.once("evt", |_| async { Ok::<u8, std::io::Error>(1) }).await;
    assert!(matches!(outcome, Err(OnceError::Dedup(Error::Decode(_)))), "{outcome:?}");
}

/// Sets a flag when dropped: shows that `once` stopped the job.
struct DropFlag(Arc<AtomicUsize>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_job_whose_lease_is_lost_is_stopped() {
    let mut nodes = Nodes::start(3);
    let dedup = nodes.builder().lease(Duration::from_millis(600)).connect().await.unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let job = {
        let flag = DropFlag(dropped.clone());
        move |_lease| async move {
            let _flag = flag;
            started_tx.send(()).unwrap();
            std::future::pending::<Result<(), std::io::Error>>().await
        }
    };
    let running = tokio::spawn({
        let dedup = dedup.clone();
        async move { dedup.once("evt", job).await }
    });
    started.await.unwrap();
    nodes.servers[0].kill();
    nodes.servers[1].kill();
    match bounded("once", running).await.unwrap() {
        Err(OnceError::Dedup(Error::LeaseLost { key, reason: LossReason::Unconfirmed { failures } })) => {
            assert_eq!(key, "evt");
            assert_eq!(failures.len(), 2, "{failures:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "the job's future was dropped");
}
