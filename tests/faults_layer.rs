//! Exactly once under faults, through the layer over real TCP: bodies that crawl past the
//! window, copies in flight, handlers that outlive their lease, a claim lost to a takeover.
//! Each test would fail on the protocol before the redesign (see issue 13's numbered cases).
#![cfg(feature = "axum")]

#[path = "common/post.rs"]
mod post;

use post::request_head;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use hookverify::axum::{VerifiedDelivery, VerifyLayer};
use hookverify::store::{Claim, ClaimToken};
use hookverify::{
    DeliveryStore, ManualClock, MemoryStore, Outcome, ReceiveError, Receiver, Signer, Verifier,
};
use http::{HeaderMap, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECRET: &str = "whsec_faults";
const NOW: i64 = 1_764_000_000;

fn capacity() -> NonZeroUsize {
    NonZeroUsize::new(10_000).expect("non-zero")
}

/// A handler that counts its runs and answers 200.
fn counting(layer: VerifyLayer<MemoryStore>, runs: &Arc<AtomicUsize>) -> Router {
    let runs = Arc::clone(runs);
    Router::new().route(
        "/hook",
        post(move |_: VerifiedDelivery| async move {
            runs.fetch_add(1, Ordering::SeqCst);
            "handled"
        })
        .route_layer(layer),
    )
}

/// Reads a whole response (the server closes or the response ends); answers the status and
/// the raw text.
async fn read_response(stream: &mut TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("a response within 10 s")
            .expect("read");
        if read == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&raw);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if raw.len() >= end + 4 + length {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    (status, text)
}

/// Case 1: a body that finishes after the window closed is rejected at the claim, whatever its
/// delivery id: headers sent inside the window no longer carry a replay through a slow body.
#[tokio::test]
async fn a_body_finishing_after_the_window_is_rejected() {
    let clock = Arc::new(ManualClock::from_unix(NOW).expect("in range"));
    let verifier = Verifier::builder()
        .secret("current", SECRET)
        .tolerance(time::Duration::seconds(5))
        .clock(Arc::clone(&clock))
        .build()
        .expect("verifier");
    let store = MemoryStore::with_clock(capacity(), Arc::clone(&clock)).expect("capacity");
    let runs = Arc::new(AtomicUsize::new(0));
    let addr = post::serve(counting(
        VerifyLayer::new(Receiver::new(verifier, store)),
        &runs,
    ))
    .await;
    let body = br#"{"type":"approval.granted"}"#;
    let signed = Signer::new(SECRET)
        .expect("signer")
        .sign_with_timestamp("dlv_original", &NOW.to_string(), body)
        .header_map()
        .expect("headers");

    for (n, id) in ["dlv_copy_1", "dlv_copy_2", "dlv_copy_3"]
        .iter()
        .enumerate()
    {
        clock.set(time::OffsetDateTime::from_unix_timestamp(NOW).expect("time"));
        clock.advance(time::Duration::milliseconds(4_600));
        let mut headers = signed.clone();
        headers.insert("x-agent-delivery-id", id.parse().expect("value"));
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(&request_head("/hook", &headers, body.len()))
            .await
            .expect("headers");
        stream.write_all(&body[..5]).await.expect("first bytes");
        // Headers checked at ts+4.6 s, inside the window; the last byte arrives at ts+7.6 s.
        tokio::time::sleep(Duration::from_millis(100)).await;
        clock.advance(time::Duration::seconds(3));
        stream.write_all(&body[5..]).await.expect("last bytes");
        let (status, text) = read_response(&mut stream).await;
        assert_eq!(status, 401, "copy {n}: {text}");
        assert!(text.ends_with("timestamp_out_of_tolerance"), "{text}");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

/// Case 1, second half: a delivery completed after its window closed still has its message
/// remembered for the full retention, so a replica whose clock is behind (where the window is
/// still open) does not handle the same bytes again under a fresh id.
#[tokio::test]
async fn the_message_is_kept_when_completion_comes_after_the_window() {
    let clock = Arc::new(ManualClock::from_unix(NOW).expect("in range"));
    let verifier = Verifier::builder()
        .secret("current", SECRET)
        .tolerance(time::Duration::seconds(5))
        .clock(Arc::clone(&clock))
        .build()
        .expect("verifier");
    let receiver = Receiver::new(verifier, MemoryStore::new(capacity()).expect("capacity"));
    let body = b"slow handler";
    let headers = Signer::new(SECRET)
        .expect("signer")
        .sign_with_timestamp("dlv_late", &NOW.to_string(), body)
        .header_map()
        .expect("headers");
    let Outcome::Fresh(guard) = receiver.receive(&headers, body).await.expect("receive") else {
        panic!("fresh");
    };
    // The handler runs past the window.
    clock.advance(time::Duration::seconds(6));
    guard.complete().await.expect("complete");
    // A replica whose clock is 5 s behind sees the replay inside its window.
    clock.advance(time::Duration::seconds(-5));
    let mut replay = headers.clone();
    replay.insert(
        "x-agent-delivery-id",
        "dlv_replayed".parse().expect("value"),
    );
    let answer = receiver.receive(&replay, body).await.expect("receive");
    assert!(
        matches!(answer, Outcome::Duplicate(hookverify::Duplicate::Replay)),
        "the message must be remembered after a late completion"
    );
}

/// A body still arriving after the body timeout gets 408 and the connection is closed.
#[tokio::test]
async fn a_crawling_body_gets_408_and_the_connection_closes() {
    let verifier = Verifier::builder()
        .secret("current", SECRET)
        .build()
        .expect("verifier");
    let layer = VerifyLayer::new(Receiver::new(
        verifier,
        MemoryStore::new(capacity()).expect("capacity"),
    ))
    .body_timeout(Duration::from_millis(300))
    .expect("valid");
    let runs = Arc::new(AtomicUsize::new(0));
    let addr = post::serve(counting(layer, &runs)).await;
    let body = vec![b'x'; 1000];
    let headers = Signer::new(SECRET)
        .expect("signer")
        .sign("dlv_crawl", &body)
        .header_map()
        .expect("headers");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(&request_head("/hook", &headers, body.len()))
        .await
        .expect("headers");
    let started = std::time::Instant::now();
    // A byte every 50 ms: 1000 bytes would take 50 s.
    let (status, text) = loop {
        let mut chunk = [0u8; 1024];
        tokio::select! {
            read = stream.read(&mut chunk) => {
                let read = read.expect("read");
                assert!(read > 0, "closed without an answer");
                let mut rest = chunk[..read].to_vec();
                // The rest of the response, up to the close.
                let mut more = [0u8; 1024];
                while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut more)).await {
                    if n == 0 { break; }
                    rest.extend_from_slice(&more[..n]);
                }
                let text = String::from_utf8_lossy(&rest).into_owned();
                let status: u16 = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status");
                break (status, text);
            }
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                if stream.write_all(b"x").await.is_err() {
                    panic!("the server closed the connection without an answer");
                }
            }
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no answer");
    };
    assert_eq!(status, 408, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(text.ends_with("body_timeout"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

/// Case 3: a copy of a message in flight under another id is 429, not "duplicate": if the
/// first attempt then fails, the provider's own delivery is retried and handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_in_flight_under_another_id_is_429_and_handled_after_a_failure() {
    let verifier = Verifier::builder()
        .secret("current", SECRET)
        .build()
        .expect("verifier");
    let receiver = Receiver::new(verifier, MemoryStore::new(capacity()).expect("capacity"));
    let started = Arc::new(tokio::sync::Notify::new());
    let finish = Arc::new(tokio::sync::Notify::new());
    let handled = Arc::new(std::sync::Mutex::new(Vec::<(String, u16)>::new()));
    let app = {
        let (started, finish, handled) = (
            Arc::clone(&started),
            Arc::clone(&finish),
            Arc::clone(&handled),
        );
        Router::new().route(
            "/hook",
            post(move |delivery: VerifiedDelivery| async move {
                let id = delivery.delivery_id().to_owned();
                if id == "dlv_attacker" {
                    // The attacker's copy: held until told, then it fails (or disconnects).
                    started.notify_one();
                    finish.notified().await;
                    handled.lock().expect("lock").push((id, 500));
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                handled.lock().expect("lock").push((id, 200));
                StatusCode::OK
            })
            .route_layer(VerifyLayer::new(receiver)),
        )
    };
    let addr = post::serve(app).await;
    let body = br#"{"type":"turn.completed"}"#;
    let original = Signer::new(SECRET)
        .expect("signer")
        .sign("dlv_provider", body)
        .header_map()
        .expect("headers");
    let mut attacker = original.clone();
    attacker.insert(
        "x-agent-delivery-id",
        "dlv_attacker".parse().expect("value"),
    );

    let attack = tokio::spawn(send(addr, attacker, body.to_vec()));
    started.notified().await;
    let (status, _) = send(addr, original.clone(), body.to_vec()).await;
    assert_eq!(status, 429, "a copy in flight must make the provider retry");
    finish.notify_one();
    assert_eq!(attack.await.expect("attack").0, 500);
    // The provider's retry, 1 s later in real life: now it is handled.
    let (status, _) = send(addr, original, body.to_vec()).await;
    assert_eq!(status, 200);
    let handled = handled.lock().expect("lock").clone();
    assert_eq!(
        handled,
        [
            ("dlv_attacker".to_owned(), 500),
            ("dlv_provider".to_owned(), 200)
        ]
    );
}

async fn send(addr: SocketAddr, headers: HeaderMap, body: Vec<u8>) -> (u16, String) {
    let mut stream = post::sent(addr, &headers, &body).await;
    read_response(&mut stream).await
}

fn signed(id: &str, body: &[u8]) -> HeaderMap {
    post::signed(SECRET, id, body)
}

/// Case 5: a handler that runs three times longer than the lease keeps its claim (the
/// heartbeat renews it): the provider's retry meanwhile is 429, and the handler runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_longer_than_the_lease_runs_once() {
    let verifier = Verifier::builder()
        .secret("current", SECRET)
        .build()
        .expect("verifier");
    let receiver = Receiver::builder(verifier, MemoryStore::new(capacity()).expect("capacity"))
        .lease(Duration::from_secs(1))
        .store_timeout(Duration::from_millis(200))
        .build()
        .expect("receiver");
    let runs = Arc::new(AtomicUsize::new(0));
    let app = {
        let runs = Arc::clone(&runs);
        Router::new().route(
            "/hook",
            post(move |_: VerifiedDelivery| async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(3)).await;
                "slow"
            })
            .route_layer(VerifyLayer::new(receiver)),
        )
    };
    let addr = post::serve(app).await;
    let body = b"long handler".to_vec();
    let headers = signed("dlv_long", &body);
    let first = tokio::spawn(send(addr, headers.clone(), body.clone()));
    // Past the lease, twice.
    for wait in [1500, 1000] {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let (status, text) = send(addr, headers.clone(), body.clone()).await;
        assert_eq!(status, 429, "the retry during a long handler: {text}");
    }
    assert_eq!(first.await.expect("first").0, 200);
    let (status, text) = send(addr, headers, body).await;
    assert_eq!((status, text.ends_with("duplicate")), (200, true), "{text}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// A client that hangs up while the handler runs (the provider does after 10 s): the server
/// drops the request, so the handler is cancelled, as the contract's "cancelled" row says, and
/// its claim released; the provider's retry is handled at once, not refused as in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_cancels_the_handler_and_its_retry_is_handled() {
    let verifier = Verifier::builder()
        .secret("current", SECRET)
        .build()
        .expect("verifier");
    let receiver = Receiver::new(verifier, MemoryStore::new(capacity()).expect("capacity"));
    let (runs, finished) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let started = Arc::new(tokio::sync::Notify::new());
    let app = {
        let (runs, finished, started) = (
            Arc::clone(&runs),
            Arc::clone(&finished),
            Arc::clone(&started),
        );
        Router::new().route(
            "/hook",
            post(move |_: VerifiedDelivery| async move {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    started.notify_one();
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
                finished.fetch_add(1, Ordering::SeqCst);
                "handled"
            })
            .route_layer(VerifyLayer::new(receiver)),
        )
    };
    let addr = post::serve(app).await;
    let body = b"slow handler".to_vec();
    let headers = signed("dlv_hung_up_handler", &body);
    let stream = post::sent(addr, &headers, &body).await;
    started.notified().await;
    drop(stream);

    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let (status, text) = loop {
        let (status, text) = send(addr, headers.clone(), body.clone()).await;
        if status != 429 || std::time::Instant::now() > deadline {
            break (status, text);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status, 200, "the retry after the hang-up: {text}");
    assert!(text.ends_with("handled"), "{text}");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "the first run was cancelled"
    );
}

/// Case 5, second half: a stale owner whose claim was taken over learns it: `complete` is an
/// error, not a silent success.
#[tokio::test]
async fn a_stale_owner_cannot_complete_silently() {
    let clock = Arc::new(ManualClock::from_unix(NOW).expect("in range"));
    let verifier = Verifier::builder()
        .secret("current", SECRET)
        .clock(Arc::clone(&clock))
        .build()
        .expect("verifier");
    let store =
        Arc::new(MemoryStore::with_clock(capacity(), Arc::clone(&clock)).expect("capacity"));
    let receiver: Receiver<MemoryStore> = Receiver::builder(verifier, Arc::clone(&store))
        .lease(Duration::from_secs(1))
        .store_timeout(Duration::from_millis(200))
        .build()
        .expect("receiver");
    let body = b"taken over";
    let headers = Signer::new(SECRET)
        .expect("signer")
        .clock(Arc::clone(&clock))
        .sign("dlv_stale", body)
        .header_map()
        .expect("headers");
    let Outcome::Fresh(guard) = receiver.receive(&headers, body).await.expect("receive") else {
        panic!("fresh");
    };
    // The process stalls past its lease on the store's clock; another attempt takes over.
    clock.advance(time::Duration::seconds(2));
    let (keys, _) = guard.claim();
    let keys = keys.clone();
    let other = ClaimToken::random().expect("randomness");
    assert_eq!(
        store
            .claim(&keys, other, Duration::from_secs(30))
            .await
            .expect("claim"),
        Claim::Fresh
    );
    let error = guard.complete().await.expect_err("the claim was lost");
    assert!(matches!(error, ReceiveError::ClaimLost), "{error}");
    assert_eq!(error.kind().as_str(), "claim_lost");
}
