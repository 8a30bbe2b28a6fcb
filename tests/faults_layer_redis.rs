//! Through the layer, on a real `redis-server` behind a TCP proxy that stalls: once the handler
//! succeeded, a completion the store cannot record never turns into a release (issue 13, case
//! 4). Before the redesign the guard released both keys when `complete` failed, and a replay
//! under a fresh id a second later ran the handler again.
//!
//! And a client that hangs up while the claim, the completion or the release waits on the
//! store: the server drops the request's future mid-call, and what the call was for is finished
//! in the background (a claim is taken back with its token). Before, the dropped call was simply
//! lost: the claim held for the whole lease (30 s), so the provider's retry a second later got
//! `429` (lost for good), and after a completion, a replay under a fresh id once the lease
//! ended would have run the handler again.
#![cfg(all(feature = "redis", feature = "axum", feature = "testing"))]

#[path = "common/proxy.rs"]
mod proxy;
#[path = "common/servers.rs"]
mod servers;

#[path = "common/post.rs"]
mod post;

use post::post_to;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use hookverify::axum::{VerifiedDelivery, VerifyLayer};
use hookverify::store::redis::RedisStore;
use hookverify::{Receiver, Signer, Verifier};
use http::{HeaderMap, StatusCode};
use tokio::net::TcpStream;

use proxy::StallProxy;
use servers::RedisServer;

const SECRET: &str = "whsec_complete";

/// A receiver on `server` through `proxy`, its store calls bounded by `store_timeout` (the
/// client's own bound, 20 s, never ends them first).
async fn receiver_behind(
    server: &RedisServer,
    proxy: &StallProxy,
    store_timeout: Duration,
) -> Receiver<RedisStore> {
    let store = RedisStore::connect(&proxy.url_for(server.url()))
        .await
        .expect("connect")
        .timeout(Duration::from_secs(20));
    let verifier = Verifier::builder()
        .secret("current", SECRET)
        .build()
        .expect("verifier");
    Receiver::builder(verifier, store)
        .store_timeout(store_timeout)
        .build()
        .expect("receiver")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_completion_lost_to_a_stalled_store_never_releases() {
    let server = RedisServer::start();
    let proxy = StallProxy::in_front_of(server.url());
    let receiver = receiver_behind(&server, &proxy, Duration::from_millis(300)).await;

    let started = Arc::new(tokio::sync::Notify::new());
    let go = Arc::new(tokio::sync::Notify::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let app = {
        let (started, go, runs) = (Arc::clone(&started), Arc::clone(&go), Arc::clone(&runs));
        Router::new().route(
            "/hook",
            post(move |_: VerifiedDelivery| async move {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    started.notify_one();
                    go.notified().await;
                }
                "handled"
            })
            .route_layer(VerifyLayer::new(receiver)),
        )
    };
    let addr = post::serve(app).await;

    let body = br#"{"type":"schedule.triggered"}"#;
    let headers = Signer::new(SECRET)
        .expect("signer")
        .sign("dlv_complete", body)
        .header_map()
        .expect("headers");
    let first = tokio::spawn({
        let headers = headers.clone();
        async move { post_to(addr, &headers, body).await }
    });
    started.notified().await;
    // The handler succeeds while the store cannot be reached: the completion times out.
    proxy.stall();
    go.notify_one();
    let (status, text) = first.await.expect("first");
    assert_eq!((status, text.as_str()), (StatusCode::OK, "handled"));

    // A replay under a fresh id a second later, while the store is still stalled: refused.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut replay = headers.clone();
    replay.insert(
        "x-agent-delivery-id",
        "dlv_replayed".parse().expect("value"),
    );
    let (status, _) = post_to(addr, &replay, body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // The store comes back: the completion lands (first attempt or background retry), and
    // neither the replay nor the provider's retry is handled again.
    proxy.resume();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, text) = post_to(addr, &replay, body).await;
        match status {
            StatusCode::OK => {
                assert_eq!(text, "duplicate");
                break;
            }
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                assert!(Instant::now() < deadline, "the completion never landed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("unexpected {other}: {text}"),
        }
    }
    let (status, text) = post_to(addr, &headers, body).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "duplicate"));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// A handler whose first run waits for `go`, then answers `status`; later runs answer 200.
struct Gate {
    started: Arc<tokio::sync::Notify>,
    go: Arc<tokio::sync::Notify>,
    runs: Arc<AtomicUsize>,
}

impl Gate {
    fn new() -> Self {
        Self {
            started: Arc::new(tokio::sync::Notify::new()),
            go: Arc::new(tokio::sync::Notify::new()),
            runs: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn app(&self, receiver: Receiver<RedisStore>, status: StatusCode) -> Router {
        let (started, go, runs) = (
            Arc::clone(&self.started),
            Arc::clone(&self.go),
            Arc::clone(&self.runs),
        );
        Router::new().route(
            "/hook",
            post(move |_: VerifiedDelivery| async move {
                if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                    started.notify_one();
                    go.notified().await;
                    return (status, "first run");
                }
                (StatusCode::OK, "handled")
            })
            .route_layer(VerifyLayer::new(receiver)),
        )
    }
}

/// A Redis behind a stalling proxy, and the gated handler behind the layer on a receiver whose
/// store calls may wait 7.5 s (the most the default lease allows): the clients here hang up
/// well before, so that nothing else ends their requests.
struct Rig {
    _server: RedisServer,
    proxy: StallProxy,
    gate: Gate,
    addr: std::net::SocketAddr,
}

impl Rig {
    /// The handler's first run answers `first_run`.
    async fn start(first_run: StatusCode) -> Self {
        let server = RedisServer::start();
        let proxy = StallProxy::in_front_of(server.url());
        let receiver = receiver_behind(&server, &proxy, Duration::from_millis(7500)).await;
        let gate = Gate::new();
        let addr = post::serve(gate.app(receiver, first_run)).await;
        Self {
            _server: server,
            proxy,
            gate,
            addr,
        }
    }

    /// Sends the delivery; once the handler's first run has been let go, the store stalls
    /// before the layer can settle the claim, and the client hangs up. Then the held bytes are
    /// dropped (`cut`), the store comes back, and only a background settle can reach it.
    async fn hang_up_while_the_store_stalls(&self, headers: &HeaderMap, body: &[u8]) {
        let stream = post::sent(self.addr, headers, body).await;
        self.gate.started.notified().await;
        self.proxy.stall();
        self.gate.go.notify_one();
        // The handler has answered; its settle waits on the stalled store. The client hangs up
        // (as the provider does at its 10 s timeout), and the server drops the request's
        // future.
        hang_up(stream).await;
        // The call the dropped future had sent is lost with the connection.
        self.proxy.cut();
        self.proxy.resume();
    }
}

/// Closes the connection after 300 ms, and gives the server 300 ms to notice.
async fn hang_up(stream: TcpStream) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(300)).await;
}

fn signed(id: &str, body: &[u8]) -> HeaderMap {
    post::signed(SECRET, id, body)
}

/// POSTs until the answer is not "in flight" (or a store error) any more, for at most 10 s
/// (a third of the lease): the answer then.
async fn settled_answer(
    addr: std::net::SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, text) = post_to(addr, headers, body).await;
        match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                assert!(
                    Instant::now() < deadline,
                    "still {status} after 10 s: the claim was left to its lease"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            _ => return (status, text),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_completion_cut_short_by_a_client_that_hung_up_still_lands() {
    let rig = Rig::start(StatusCode::OK).await;
    let body = br#"{"type":"run.finished"}"#;
    let headers = signed("dlv_hung_up_done", body);

    rig.hang_up_while_the_store_stalls(&headers, body).await;

    // The provider's retry, and a replay under a fresh id: both duplicates once the background
    // completion lands, and the handler ran once.
    let (status, text) = settled_answer(rig.addr, &headers, body).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "duplicate"));
    let mut replay = headers.clone();
    replay.insert(
        "x-agent-delivery-id",
        "dlv_hung_up_replay".parse().expect("value"),
    );
    let (status, text) = post_to(rig.addr, &replay, body).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "duplicate"));
    assert_eq!(rig.gate.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_cut_short_by_a_client_that_hung_up_still_lands() {
    let rig = Rig::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    let body = br#"{"type":"run.failed"}"#;
    let headers = signed("dlv_hung_up_failed", body);

    rig.hang_up_while_the_store_stalls(&headers, body).await;

    // The first run failed: the provider's retry is handled, well inside the lease.
    let (status, text) = settled_answer(rig.addr, &headers, body).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "handled"));
    assert_eq!(rig.gate.runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_cut_short_by_a_client_that_hung_up_is_taken_back() {
    let rig = Rig::start(StatusCode::OK).await;
    // A first delivery, handled at once, loads the store's scripts.
    rig.gate.go.notify_one();
    let before = br#"{"type":"schedule.fired"}"#;
    let (status, text) = post_to(rig.addr, &signed("dlv_before", before), before).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "first run"));
    let body = br#"{"type":"approval.requested"}"#;
    let headers = signed("dlv_hung_up_claim", body);

    // The store stalls before the request arrives: its claim waits, and the client hangs up.
    rig.proxy.stall();
    hang_up(post::sent(rig.addr, &headers, body).await).await;
    // The claim the dropped future sent lands now, with nobody to take its answer.
    rig.proxy.resume();

    // The provider's retry is handled, not refused as in flight for the lease.
    let (status, text) = settled_answer(rig.addr, &headers, body).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "handled"));
    assert_eq!(rig.gate.runs.load(Ordering::SeqCst), 2);
}
