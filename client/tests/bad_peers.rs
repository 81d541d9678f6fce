//! Nodes that are not Redis at all: an HTTP server, a peer sending binary junk, one that closes
//! every connection, one that never answers, and one that answers `+OK` to everything. Each must
//! be that node's clear error, never a vote, and never a hang.

mod common;

use std::time::Duration;

use common::{bounded, Nodes};
use dedup_client::{Claim, ClaimOptions, Dedup, Error, NodeError, NodeFailure, NodeReply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How a fake peer treats each connection.
#[derive(Clone, Copy, Debug)]
enum Peer {
    /// An HTTP server: answers the first bytes with `400 Bad Request` and closes.
    Http,
    /// Answers whatever it receives with bytes that are no RESP type.
    Junk,
    /// Accepts, then closes at once.
    Hangup,
    /// Accepts and reads, and never writes a byte.
    Silent,
    /// A well-formed RESP peer that is not the module: `+OK` to every request.
    AlwaysOk,
}

impl Peer {
    const ALL: [Peer; 5] = [Peer::Http, Peer::Junk, Peer::Hangup, Peer::Silent, Peer::AlwaysOk];

    /// Whether `error` is the error this peer must produce.
    fn explains(self, error: &NodeError) -> bool {
        match self {
            // Nothing came back: the node timeout, or the connection's own handshake timing out
            // first (the client then fails fast until a new connection is made).
            Peer::Silent => match error {
                NodeError::Timeout(_) => true,
                NodeError::Redis(e) => e.is_timeout(),
                _ => false,
            },
            // RESP that parses, but is not a DEDUP.CLAIM reply.
            Peer::AlwaysOk => matches!(error, NodeError::Malformed { command: "DEDUP.CLAIM", .. }),
            // Unparsable bytes or a closed connection: the Redis library's own error.
            Peer::Http | Peer::Junk | Peer::Hangup => matches!(error, NodeError::Redis(_)),
        }
    }
}

/// Starts `peer` on a free loopback port; it serves until the test's runtime ends.
async fn start(peer: Peer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(peer, stream));
        }
    });
    url
}

async fn serve(peer: Peer, mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    match peer {
        Peer::Hangup => {}
        Peer::Http => {
            if stream.read(&mut buf).await.unwrap_or(0) > 0 {
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
            }
        }
        Peer::Junk | Peer::Silent => loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) if matches!(peer, Peer::Silent) => {}
                Ok(_) => {
                    if stream.write_all(b"\x00\xff\x13junk\x7f\r\n").await.is_err() {
                        break;
                    }
                }
            }
        },
        Peer::AlwaysOk => {
            // One `+OK` per whole request, so that the client's pipelined handshake and its
            // commands each get their own reply: the replies are well-formed, just not DEDUP's.
            let mut pending = Vec::new();
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                }
                while let Some(used) = request_length(&pending) {
                    pending.drain(..used);
                    if stream.write_all(b"+OK\r\n").await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// The length of the first complete RESP request (`*N` then N bulk strings) in `bytes`, if
/// there is one.
fn request_length(bytes: &[u8]) -> Option<usize> {
    fn line(bytes: &[u8], at: usize, prefix: u8) -> Option<(usize, usize)> {
        let end = at + bytes.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
        if bytes.get(at) != Some(&prefix) {
            return None;
        }
        let n = std::str::from_utf8(&bytes[at + 1..end]).ok()?.parse().ok()?;
        Some((n, end + 2))
    }
    let (count, mut at) = line(bytes, 0, b'*')?;
    for _ in 0..count {
        let (len, start) = line(bytes, at, b'$')?;
        at = start + len + 2;
        if at > bytes.len() {
            return None;
        }
    }
    Some(at)
}

/// A client over `urls` that fails fast: the silent peer costs one short timeout per request.
async fn client(urls: Vec<String>) -> Dedup {
    Dedup::builder()
        .nodes(urls)
        .node_timeout(Duration::from_millis(200))
        .connect_timeout(Duration::from_millis(300))
        .retries(1)
        .retry_delay(common::TEST_RETRY_DELAY)
        .connect()
        .await
        .expect("a client starts whatever its nodes are")
}

#[test]
fn requests_are_split_where_they_end() {
    let two = b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    assert_eq!(request_length(two), Some(14));
    assert_eq!(request_length(&two[14..]), Some(two.len() - 14));
    assert_eq!(request_length(&two[..10]), None, "an incomplete request waits for more bytes");
}

fn failure_of<'a>(failures: &'a [NodeFailure], url: &str) -> &'a NodeFailure {
    let name = url.trim_start_matches("redis://").trim_end_matches('/');
    failures.iter().find(|f| f.node() == name).unwrap_or_else(|| panic!("{name} is not among {failures:?}"))
}

#[tokio::test]
async fn one_bad_peer_among_three_is_a_failure_and_the_others_decide() {
    let nodes = Nodes::start(2);
    for peer in Peer::ALL {
        let bad = start(peer).await;
        let dedup = client(vec![nodes.urls()[0].clone(), bad.clone(), nodes.urls()[1].clone()]).await;
        let id = format!("evt-{peer:?}");

        let (outcome, report) = bounded("claim", dedup.claim_with_report(&id, ClaimOptions::new())).await;
        let lease = match outcome {
            Ok(Claim::Acquired(lease)) => lease,
            other => panic!("{peer:?}: two good nodes of three gave {other:?}"),
        };
        let replies = report.rounds().last().unwrap().replies();
        let NodeReply::Failed(error) = &replies[1] else { panic!("{peer:?} was read as {}", replies[1]) };
        assert!(peer.explains(error), "{peer:?} gave {error}");
        assert!(!error.to_string().is_empty());
        eprintln!("{peer:?}: {error}");

        let completion = lease.complete(None).await.unwrap();
        assert_eq!(completion.acked(), 2, "{peer:?}: only the real nodes record the completion");
    }
}

#[tokio::test]
async fn bad_peers_never_turn_an_outage_into_a_duplicate_verdict() {
    // Two real nodes hold the id for another worker; three bad peers make up the rest of five.
    // Had a bad peer's reply been read as HELD, this would be InProgress.
    let nodes = Nodes::start(2);
    let holder = client(nodes.urls()).await;
    let _held = holder.claim("held").await.unwrap().acquired().expect("two real nodes of two");

    for trio in [[Peer::Http, Peer::Junk, Peer::AlwaysOk], [Peer::Hangup, Peer::Silent, Peer::AlwaysOk]] {
        let mut bad = Vec::new();
        for peer in trio {
            bad.push(start(peer).await);
        }
        let mut urls = nodes.urls();
        urls.extend(bad.iter().cloned());
        let dedup = client(urls).await;

        for id in ["held", "fresh"] {
            match bounded("claim", dedup.claim(id)).await {
                Err(Error::Unavailable { failures, nodes: 5, quorum: 3 }) => {
                    assert_eq!(failures.len(), 3, "{trio:?}: exactly the bad peers failed: {failures:?}");
                    for (peer, url) in trio.iter().zip(&bad) {
                        let failure = failure_of(&failures, url);
                        assert!(peer.explains(failure.error()), "{peer:?} gave {failure}");
                    }
                }
                other => panic!("{trio:?}: {id} gave {other:?}"),
            }
        }
    }
}
