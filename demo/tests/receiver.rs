//! The receiver's handlers over real HTTP, against three real redis-servers with the module: every
//! answer the dedup handler can give, and what each leaves in the database.

use std::path::PathBuf;
use std::time::Duration;

use dedup_client::Dedup;
use testkit::RedisServer;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use webhook_demo::receiver::{router, Processor};
use webhook_demo::store::{self, RecordId, Store};
use webhook_demo::webhook::{Answer, Outcome, ID_HEADER, PATH};

/// A receiver served in this process on a free port, over a fresh database.
struct Receiver {
    url: String,
    database: PathBuf,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Receiver {
    async fn start(dedup: Option<Dedup>, processing_delay: Duration) -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("records.sqlite3");
        let processor = Processor::new(Store::open(&database).unwrap(), "test-receiver", processing_delay);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{PATH}", listener.local_addr().unwrap());
        let app = router(processor, dedup);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, database, http: reqwest::Client::new(), _dir: dir }
    }

    async fn deliver(&self, id: Option<&str>, body: &str) -> (u16, Answer) {
        let mut request = self.http.post(&self.url).body(body.to_owned());
        if let Some(id) = id {
            request = request.header(ID_HEADER, id);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, serde_json::from_slice(&response.bytes().await.unwrap()).unwrap())
    }

    fn records(&self, id: &str) -> u64 {
        store::records_per_event(&self.database).unwrap().get(id).copied().unwrap_or(0)
    }
}

fn nodes() -> Vec<RedisServer> {
    (0..3).map(|_| RedisServer::start()).collect()
}

async fn client(nodes: &[RedisServer]) -> Dedup {
    Dedup::builder().nodes(nodes.iter().map(RedisServer::url)).connect().await.unwrap()
}

fn record(answer: &Answer) -> RecordId {
    answer.record.unwrap_or_else(|| panic!("no record in {answer:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_duplicate_gets_the_first_record_back_and_creates_none() {
    let nodes = nodes();
    let receiver = Receiver::start(Some(client(&nodes).await), Duration::ZERO).await;

    let (status, first) = receiver.deliver(Some("msg_1"), r#"{"n":1}"#).await;
    assert_eq!((status, first.outcome), (200, Outcome::Processed));
    let (status, again) = receiver.deliver(Some("msg_1"), r#"{"n":1}"#).await;
    assert_eq!((status, again.outcome), (200, Outcome::Replayed));
    assert_eq!(record(&again), record(&first));
    assert_eq!(receiver.records("msg_1"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_deliveries_of_one_event_create_exactly_one_record() {
    let nodes = nodes();
    // Long enough that every copy arrives while the first is still processing.
    let receiver = std::sync::Arc::new(Receiver::start(Some(client(&nodes).await), Duration::from_millis(300)).await);

    let mut copies = JoinSet::new();
    for _ in 0..8 {
        let receiver = receiver.clone();
        copies.spawn(async move { receiver.deliver(Some("msg_2"), r#"{"n":2}"#).await });
    }
    let answers: Vec<(u16, Answer)> = copies.join_all().await;
    let processed: Vec<&Answer> = answers.iter().map(|(_, a)| a).filter(|a| a.outcome == Outcome::Processed).collect();
    assert_eq!(processed.len(), 1, "{answers:?}");
    for (status, answer) in &answers {
        match answer.outcome {
            Outcome::Processed => assert_eq!(*status, 200),
            Outcome::InProgress => assert_eq!(*status, 409),
            Outcome::Replayed => assert_eq!(record(answer), record(processed[0])),
            other => panic!("unexpected {other:?} in {answers:?}"),
        }
    }
    assert_eq!(receiver.records("msg_2"), 1);

    // The sender's retry of a 409 gets the record.
    let (status, retry) = receiver.deliver(Some("msg_2"), r#"{"n":2}"#).await;
    assert_eq!((status, retry.outcome, record(&retry)), (200, Outcome::Replayed, record(processed[0])));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_id_with_another_body_is_refused_with_422() {
    let nodes = nodes();
    let receiver = Receiver::start(Some(client(&nodes).await), Duration::ZERO).await;

    assert_eq!(receiver.deliver(Some("msg_3"), r#"{"amount":10}"#).await.0, 200);
    let (status, answer) = receiver.deliver(Some("msg_3"), r#"{"amount":99}"#).await;
    assert_eq!((status, answer.outcome), (422, Outcome::Mismatch));
    assert_eq!(receiver.records("msg_3"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_without_an_event_id_is_a_400() {
    let nodes = nodes();
    let receiver = Receiver::start(Some(client(&nodes).await), Duration::ZERO).await;

    let (status, answer) = receiver.deliver(None, "{}").await;
    assert_eq!((status, answer.outcome), (400, Outcome::BadRequest));
    assert_eq!(answer.detail.as_deref(), Some("the webhook-id header is missing"));
    let (status, _) = receiver.deliver(Some(""), "{}").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_majority_of_nodes_down_the_answer_is_503_and_the_event_is_processed_later() {
    let mut nodes = nodes();
    let receiver = Receiver::start(Some(client(&nodes).await), Duration::ZERO).await;
    nodes[1].stop();
    nodes[2].stop();

    let (status, answer) = receiver.deliver(Some("msg_4"), "{}").await;
    assert_eq!((status, answer.outcome), (503, Outcome::Unavailable), "{answer:?}");
    assert_eq!(receiver.records("msg_4"), 0, "nothing is processed without a quorum");

    nodes[1].restart();
    nodes[2].restart();
    // As a sender would: retry until the client has reconnected to the restarted nodes.
    let mut retries = Vec::new();
    let processed = loop {
        let (status, answer) = receiver.deliver(Some("msg_4"), "{}").await;
        if status == 200 {
            break answer;
        }
        assert_eq!(answer.outcome, Outcome::Unavailable, "only the outage may refuse it: {answer:?}");
        retries.push(answer);
        assert!(retries.len() < 100, "still refused after 100 retries: {retries:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(processed.outcome, Outcome::Processed);
    assert_eq!(receiver.records("msg_4"), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn naive_mode_finds_the_record_of_a_duplicate_that_comes_after_processing() {
    let receiver = Receiver::start(None, Duration::ZERO).await;

    let (_, first) = receiver.deliver(Some("msg_5"), "{}").await;
    let (status, again) = receiver.deliver(Some("msg_5"), "{}").await;
    assert_eq!((first.outcome, status, again.outcome), (Outcome::Processed, 200, Outcome::AlreadyProcessed));
    assert_eq!(record(&again), record(&first));
}
