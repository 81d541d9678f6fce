//! The scenario of Kleppmann's critique of Redlock, run for real: a worker process holds the
//! lease, checks it, and is then frozen (SIGSTOP) before its write, past the lease's end.
//! Another worker claims the event, writes and completes. The frozen one wakes and writes with
//! its old token. No lock can stop that write; the store must refuse it by its token.

use std::time::Duration;

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Serialize;

use crate::clock::{self, now_ns};
use crate::pool::{Pool, PoolSettings};
use crate::protocol::{Answer, Delivery, WorkerMessage};
use crate::store::{Store, StoredWrite};

/// The holder's simulated work between its lease check and its write: it is frozen inside it.
/// Long enough that the SIGSTOP, sent when the holder says it acquired, always lands first.
const HOLDER_WORK: Duration = Duration::from_millis(500);
/// How far past the lease's end the holder stays frozen before the rival claims.
const PAST_THE_LEASE: Duration = Duration::from_millis(500);
/// Bound on each wait for a worker's message.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// What happened, for the table and `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct KleppmannOutcome {
    pub event: String,
    pub holder_token: u64,
    pub rival_token: u64,
    pub frozen_for: Duration,
    pub holder_answer: Answer,
    pub rival_answer: Answer,
    /// The store's rows for the event, in commit order: (worker, token, accepted).
    pub writes: Vec<(String, u64, bool)>,
    /// The rival's write was applied and the holder's later write was refused by its token.
    pub late_write_rejected: bool,
}

/// Sends SIGCONT when dropped, so that an error midway never leaves a worker frozen.
struct Frozen(Pid);

impl Frozen {
    fn freeze(pid: u32) -> anyhow::Result<Frozen> {
        let pid = Pid::from_raw(i32::try_from(pid)?);
        kill(pid, Signal::SIGSTOP).context("SIGSTOP the holder")?;
        Ok(Frozen(pid))
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = kill(self.0, Signal::SIGCONT);
    }
}

/// Runs the scenario with two worker processes of its own (`k-holder`, `k-rival`) on the given
/// nodes and store; their history goes with the run's, so the checker sees them too.
pub async fn run(settings: &PoolSettings<'_>, event: &str) -> anyhow::Result<KleppmannOutcome> {
    let settings = PoolSettings { tasks: 1, ..settings.clone() };
    let mut pool = Pool::start(&["k-holder", "k-rival"], &settings).await?;
    let (holder, rival) = (0, 1);
    let delivery = |attempt: u64, work: Duration| Delivery {
        attempt,
        event: event.to_string(),
        fingerprint: "kleppmann-payload".to_string(),
        storm: false,
        work_ms: u64::try_from(work.as_millis()).unwrap_or(u64::MAX),
    };

    pool.send(holder, &delivery(1, HOLDER_WORK)).await?;
    let holder_token = match wait(&mut pool, holder).await? {
        WorkerMessage::Acquired { token, .. } => token,
        other => bail!("the holder did not acquire a fresh event: {other:?}"),
    };
    let frozen_at = now_ns();
    let frozen = Frozen::freeze(pool.pid(holder).context("the holder has a pid")?)?;
    tokio::time::sleep(settings.client.lease() + PAST_THE_LEASE).await;

    pool.send(rival, &delivery(2, Duration::ZERO)).await?;
    let rival_token = match wait(&mut pool, rival).await? {
        WorkerMessage::Acquired { token, .. } => token,
        other => bail!("the rival could not claim the event after the holder's lease ran out: {other:?}"),
    };
    let rival_answer = answer(wait(&mut pool, rival).await?)?;

    drop(frozen);
    let frozen_for = clock::since(frozen_at, now_ns());
    let holder_answer = answer(wait(&mut pool, holder).await?)?;
    pool.close().await?;

    let writes: Vec<StoredWrite> =
        Store::open(settings.store)?.writes()?.into_iter().filter(|w| w.event == event).collect();
    let rows: Vec<(String, u64, bool)> = writes.iter().map(|w| (w.worker.clone(), w.token, w.accepted)).collect();
    let late_write_rejected = rival_answer == Answer::Applied
        && holder_answer == Answer::Stale
        && holder_token < rival_token
        && matches!(rows.as_slice(), [(w1, t1, true), (w2, t2, false)]
            if w1.starts_with("k-rival") && *t1 == rival_token && w2.starts_with("k-holder") && *t2 == holder_token);
    Ok(KleppmannOutcome {
        event: event.to_string(),
        holder_token,
        rival_token,
        frozen_for,
        holder_answer,
        rival_answer,
        writes: rows,
        late_write_rejected,
    })
}

/// The next message from worker `from` (messages from the other are not expected here).
async fn wait(pool: &mut Pool, from: usize) -> anyhow::Result<WorkerMessage> {
    let (index, message) = tokio::time::timeout(STEP_TIMEOUT, pool.next())
        .await
        .with_context(|| format!("no word from {} within {STEP_TIMEOUT:?}", pool.name(from)))??;
    if index != from {
        bail!("expected {} to speak, but {} said {message:?}", pool.name(from), pool.name(index));
    }
    Ok(message)
}

fn answer(message: WorkerMessage) -> anyhow::Result<Answer> {
    match message {
        WorkerMessage::Answer { answer, .. } => Ok(answer),
        other => bail!("expected an answer, got {other:?}"),
    }
}
