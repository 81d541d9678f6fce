//! A worker process: the webhook receiver under test.
//!
//! It reads deliveries from stdin and handles up to `tasks` of them at once, each the way a
//! careful production handler would: claim the event on the quorum in fenced mode, check the
//! lease, do the work, write the effect to the store **with the lease's fencing token**, then
//! complete the claim. Every claim attempt, write and completion goes to the worker's history
//! file; the answer (as an HTTP status would carry it) goes back to the sender on stdout.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use dedup_client::{Claim, ClaimOptions, Dedup, Lease};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::clock::now_ns;
use crate::history::{self, ClaimEntry, CompleteEntry, Decision, Entry, HistoryWriter, Step, WriteEntry};
use crate::protocol::{Answer, Delivery, WorkerMessage};
use crate::store::{Store, WriteOutcome};

/// How a worker process is set up (its command line).
#[derive(Clone, Debug, clap::Args)]
pub struct WorkerSettings {
    /// This worker's name in the history, e.g. `w2`.
    #[arg(long)]
    pub name: String,
    /// Deliveries handled at once (each one a worker in the history: `w2.0`, `w2.1`, ...).
    #[arg(long, default_value_t = 4)]
    pub tasks: usize,
    /// A node URL; give it once per node.
    #[arg(long = "node", required = true)]
    pub nodes: Vec<String>,
    /// The shared SQLite store.
    #[arg(long)]
    pub store: PathBuf,
    /// The directory of history files; this worker writes `<name>.jsonl` there.
    #[arg(long)]
    pub history_dir: PathBuf,
    #[command(flatten)]
    pub client: ClientSettings,
}

/// How the workers' quorum clients are set up: `run` takes these options and hands them to
/// every worker it starts.
#[derive(Clone, Debug, clap::Args)]
pub struct ClientSettings {
    /// The claim lease, in milliseconds; node pauses last longer than this.
    #[arg(long, default_value_t = 1500)]
    pub lease_ms: u64,
    /// The per-node timeout, in milliseconds.
    #[arg(long, default_value_t = 150)]
    pub node_timeout_ms: u64,
    /// The per-node timeout during a client-side timeout storm, in microseconds: below what a
    /// busy node needs, so that live nodes miss it too.
    #[arg(long, default_value_t = 150)]
    pub storm_timeout_us: u64,
}

impl ClientSettings {
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    pub fn node_timeout(&self) -> Duration {
        Duration::from_millis(self.node_timeout_ms)
    }

    pub fn storm_timeout(&self) -> Duration {
        Duration::from_micros(self.storm_timeout_us)
    }

    /// The same settings as command-line arguments, for a worker process.
    pub fn args(&self) -> [String; 6] {
        [
            "--lease-ms".into(),
            self.lease_ms.to_string(),
            "--node-timeout-ms".into(),
            self.node_timeout_ms.to_string(),
            "--storm-timeout-us".into(),
            self.storm_timeout_us.to_string(),
        ]
    }
}

/// What every task of the process shares.
struct Shared {
    settings: WorkerSettings,
    /// Used outside storms.
    calm: Dedup,
    /// Used during storms: the same nodes, a tiny per-node timeout, no retries.
    storm: Dedup,
    store: Arc<Mutex<Store>>,
    history: HistoryWriter,
    out: mpsc::UnboundedSender<WorkerMessage>,
}

/// Runs the worker until stdin closes and every delivery in hand is answered.
pub async fn run(settings: WorkerSettings) -> anyhow::Result<()> {
    let client = |timeout: Duration, retries: u32| {
        Dedup::builder()
            .nodes(settings.nodes.clone())
            .lease(settings.client.lease())
            // Longer than any run: every duplicate of the run must find the marker.
            .retention(Duration::from_secs(3600))
            .fencing(true)
            .node_timeout(timeout)
            .retries(retries)
            .retry_delay(Duration::from_millis(100))
            .connect()
    };
    let calm = client(settings.client.node_timeout(), dedup_client::DEFAULT_RETRIES).await?;
    // The storm: a timeout below what a busy node needs (Tokio's timer rounds it up to about
    // 1 ms) and no second chance, so a live node's hiccup fails the claim instead of being
    // retried away. Claims must then come out Unavailable, never a duplicate verdict.
    let storm = client(settings.client.storm_timeout(), 0).await?;
    let store = Store::open(&settings.store)?;
    let history = HistoryWriter::create(&settings.history_dir.join(format!("{}.jsonl", settings.name)))?;

    let (out, mut outbox) = mpsc::unbounded_channel::<WorkerMessage>();
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(message) = outbox.recv().await {
            let mut line = serde_json::to_vec(&message)?;
            line.push(b'\n');
            stdout.write_all(&line).await?;
            stdout.flush().await?;
        }
        anyhow::Ok(())
    });

    let tasks = settings.tasks.max(1);
    let name = settings.name.clone();
    let context = Arc::new(Shared { settings, calm, storm, store: Arc::new(Mutex::new(store)), history, out });
    context.say(WorkerMessage::Ready { worker: name.clone() });

    // A free slot is a task number: taking one bounds the concurrency and names the worker.
    let (slot_back, mut slots) = mpsc::unbounded_channel::<usize>();
    for slot in 0..tasks {
        slot_back.send(slot)?;
    }
    let mut running = tokio::task::JoinSet::new();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let delivery: Delivery = serde_json::from_str(&line).with_context(|| format!("not a delivery: {line}"))?;
        let slot = slots.recv().await.context("slots never run out: each task gives its own back")?;
        let (context, slot_back) = (context.clone(), slot_back.clone());
        running.spawn(async move {
            let worker = format!("{}.{slot}", context.settings.name);
            let attempt = delivery.attempt;
            let answer = handle(&context, &worker, delivery).await;
            slot_back.send(slot).ok();
            let answer = answer?;
            context.say(WorkerMessage::Answer { attempt, answer });
            anyhow::Ok(())
        });
        // Surface a failed task at once rather than at the end.
        while let Some(done) = running.try_join_next() {
            done??;
        }
    }
    while let Some(done) = running.join_next().await {
        done??;
    }
    drop(context);
    writer.await??;
    Ok(())
}

impl Shared {
    fn say(&self, message: WorkerMessage) {
        // The writer only stops when every sender is gone.
        let _ = self.out.send(message);
    }

    fn record(&self, entry: Entry) -> anyhow::Result<()> {
        self.history.append(&entry)
    }
}

/// Handles one delivery; an error means the history could not be written, and stops the worker.
async fn handle(context: &Shared, worker: &str, delivery: Delivery) -> anyhow::Result<Answer> {
    let client = if delivery.storm { &context.storm } else { &context.calm };
    let options = ClaimOptions::new().fingerprint(delivery.fingerprint.clone().into_bytes());
    let start_ns = now_ns();
    let (outcome, report) = client.claim_with_report(&delivery.event, options).await;
    let end_ns = now_ns();
    let (decision, failed_nodes) = history::decision_of(&outcome);
    let token = match &outcome {
        Ok(Claim::Acquired(lease)) => lease.token(),
        _ => None,
    };
    context.record(Entry::Claim(ClaimEntry {
        event: delivery.event.clone(),
        worker: worker.to_string(),
        attempt: delivery.attempt,
        start_ns,
        end_ns,
        storm: delivery.storm,
        nodes: report.nodes().to_vec(),
        quorum: report.quorum(),
        rounds: history::rounds_of(&report),
        fence: history::fence_of(&report),
        decision,
        token,
        error: outcome.as_ref().err().map(ToString::to_string),
        failed_nodes,
    }))?;
    let lease = match outcome {
        Ok(Claim::Acquired(lease)) => lease,
        Ok(Claim::Completed { .. }) => return Ok(Answer::Duplicate),
        Ok(Claim::InProgress { .. }) => return Ok(Answer::InProgress),
        Ok(Claim::Mismatch) => return Ok(Answer::Mismatch),
        Err(_) => {
            return Ok(match decision {
                Decision::Unavailable => Answer::Unavailable,
                Decision::Contended => Answer::Contended,
                Decision::LeaseLost => Answer::LeaseLost,
                _ => Answer::Failed,
            })
        }
    };
    let Some(token) = lease.token() else {
        anyhow::bail!("the client runs in fenced mode, yet an acquired lease has no token");
    };
    context.say(WorkerMessage::Acquired { attempt: delivery.attempt, token });
    process(context, worker, &delivery, lease, token).await
}

/// The work under a lease: check it, work, write through the token, complete.
async fn process(context: &Shared, worker: &str, delivery: &Delivery, mut lease: Lease, token: u64) -> anyhow::Result<Answer> {
    lease.keep_alive();
    // A step that started at `start_ns` and ends now.
    let step = |start_ns: u64| Step {
        event: delivery.event.clone(),
        worker: worker.to_string(),
        attempt: delivery.attempt,
        token,
        start_ns,
        end_ns: now_ns(),
    };
    let write = |start_ns: u64, outcome: &str, highest: Option<u64>, error: Option<String>| {
        Entry::Write(WriteEntry { step: step(start_ns), outcome: outcome.to_string(), highest, error })
    };
    // The last moment the worker can look at its lease. Whatever happens between here and the
    // write (a GC pause, a stalled VM, SIGSTOP) no lease check can catch: that is the window
    // only the store's token check closes.
    if lease.is_lost() {
        context.record(write(now_ns(), "not_attempted_lease_lost", None, None))?;
        lease.release().await;
        return Ok(Answer::LeaseLost);
    }
    if delivery.work_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delivery.work_ms)).await;
    }
    let start_ns = now_ns();
    let (store, event, name, attempt) = (context.store.clone(), delivery.event.clone(), worker.to_string(), delivery.attempt);
    let written = tokio::task::spawn_blocking(move || {
        let mut store = store.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        store.apply(&event, token, &name, attempt, now_ns())
    })
    .await?;
    match written {
        Ok(WriteOutcome::Applied) => {
            context.record(write(start_ns, "applied", None, None))?;
        }
        Ok(WriteOutcome::RejectedStale { highest }) => {
            context.record(write(start_ns, "rejected_stale", Some(highest), None))?;
            lease.release().await;
            return Ok(Answer::Stale);
        }
        Err(error) => {
            context.record(write(start_ns, "error", None, Some(format!("{error:#}"))))?;
            lease.release().await;
            return Ok(Answer::Failed);
        }
    }
    let start_ns = now_ns();
    let completion = lease.complete(Some(token.to_string().as_bytes())).await;
    context.record(Entry::Complete(CompleteEntry {
        step: step(start_ns),
        acked: completion.as_ref().map_or(0, |c| c.acked()),
        durable: completion.as_ref().is_ok_and(|c| c.is_durable()),
        error: completion.as_ref().err().map(ToString::to_string),
    }))?;
    // The effect is written: the event is processed, whatever the completion reached. Answering
    // 503 now would only invite the sender to have it processed again.
    Ok(Answer::Applied)
}
