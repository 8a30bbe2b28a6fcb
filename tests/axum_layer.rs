//! The layer end to end: a real server on 127.0.0.1, a real HTTP client, one test per row of
//! the status table, and the dedupe guarantees under concurrency and failure.
#![cfg(feature = "axum")]

#[path = "common/post.rs"]
mod post;
#[path = "common/watched.rs"]
mod watched;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use watched::send_watched;

use axum::Router;
use axum::routing::post;
use bytes::Bytes;
use hookverify::axum::{VerifiedDelivery, VerifiedPayload, VerifyLayer};
use hookverify::store::{Claim, ClaimToken, DeliveryKeys};
use hookverify::{
    ConfigError, DeliveryStore, Duplicate, ManualClock, MemoryStore, Receiver, Signer, StoreError,
    Verifier,
};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;
use tower::ServiceExt;

const SECRET: &str = "whsec_layer_test";
const NOW: i64 = 1_764_000_000;

struct Setup {
    clock: Arc<ManualClock>,
    signer: Signer,
    receiver: Receiver<MemoryStore>,
}

fn setup() -> Setup {
    let clock = Arc::new(ManualClock::from_unix(NOW).expect("in range"));
    let verifier = Verifier::builder()
        .secret("current", SECRET)
        .clock(Arc::clone(&clock))
        .build()
        .expect("verifier");
    let store = MemoryStore::with_clock(
        NonZeroUsize::new(10_000).expect("non-zero"),
        Arc::clone(&clock),
    )
    .expect("capacity");
    let signer = Signer::new(SECRET)
        .expect("signer")
        .clock(Arc::clone(&clock));
    Setup {
        clock,
        signer,
        receiver: Receiver::new(verifier, store),
    }
}

/// POSTs to `/hook`: status, `Retry-After` and body.
async fn post_to(addr: SocketAddr, headers: &HeaderMap, body: &[u8]) -> post::Reply {
    post::post_reply(addr, "/hook", headers, body).await
}

/// A handler that counts its runs and answers what `respond` says for each run number.
fn counting_app(
    layer: VerifyLayer<MemoryStore>,
    runs: Arc<AtomicUsize>,
    respond: fn(usize) -> StatusCode,
) -> Router {
    Router::new()
        .route(
            "/hook",
            post(move |delivery: VerifiedDelivery| async move {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                (respond(run), format!("handled {}", delivery.delivery_id()))
            }),
        )
        .layer(layer)
}

#[tokio::test]
async fn fresh_delivery_is_handled_once_and_completed() {
    let s = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let addr = post::serve(counting_app(
        VerifyLayer::new(s.receiver),
        Arc::clone(&runs),
        |_| StatusCode::ACCEPTED,
    ))
    .await;
    let body = br#"{"type":"run.finished"}"#;
    let headers = s.signer.sign("dlv_1", body).header_map().expect("headers");

    let first = post_to(addr, &headers, body).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(first.body, "handled dlv_1");

    let again = post_to(addr, &headers, body).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, "duplicate");

    // The provider's retry, re-signed a second later, is a duplicate too.
    s.clock.advance(time::Duration::seconds(1));
    let resigned = s.signer.sign("dlv_1", body).header_map().expect("headers");
    assert_eq!(post_to(addr, &resigned, body).await.status, StatusCode::OK);

    // The same bytes under a fresh id are a replay: acknowledged, not handled.
    let mut replay = headers.clone();
    replay.insert("x-agent-delivery-id", "dlv_forged".parse().expect("value"));
    assert_eq!(post_to(addr, &replay, body).await.status, StatusCode::OK);

    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn failed_handler_releases_and_the_retry_is_handled() {
    let s = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let addr = post::serve(counting_app(
        VerifyLayer::new(s.receiver),
        Arc::clone(&runs),
        |run| {
            if run == 0 {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            }
        },
    ))
    .await;
    let body = b"fails once";
    let headers = s
        .signer
        .sign("dlv_retry", body)
        .header_map()
        .expect("headers");

    assert_eq!(
        post_to(addr, &headers, body).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    s.clock.advance(time::Duration::seconds(1));
    let retry = post_to(addr, &headers, body).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.body, "handled dlv_retry");
    assert_eq!(post_to(addr, &headers, body).await.body, "duplicate");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn panicking_handler_answers_500_and_releases() {
    let s = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let app = Router::new()
        .route(
            "/hook",
            post(move |_: VerifiedDelivery| async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("the handler blew up");
                }
                "recovered"
            }),
        )
        .layer(VerifyLayer::new(s.receiver));
    let addr = post::serve(app).await;
    let body = b"panics once";
    let headers = s
        .signer
        .sign("dlv_panic", body)
        .header_map()
        .expect("headers");

    let first = post_to(addr, &headers, body).await;
    assert_eq!(first.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(first.body, "handler_panicked");
    let retry = post_to(addr, &headers, body).await;
    assert_eq!(
        (retry.status, retry.body.as_str()),
        (StatusCode::OK, "recovered")
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn in_flight_duplicate_gets_429_with_retry_after() {
    let s = setup();
    let started = Arc::new(tokio::sync::Notify::new());
    let finish = Arc::new(tokio::sync::Notify::new());
    let (started_tx, finish_rx) = (Arc::clone(&started), Arc::clone(&finish));
    let app = Router::new()
        .route(
            "/hook",
            post(move |_: VerifiedDelivery| async move {
                started_tx.notify_one();
                finish_rx.notified().await;
                "slow but done"
            }),
        )
        .layer(VerifyLayer::new(s.receiver).retry_after(7));
    let addr = post::serve(app).await;
    let body = b"slow";
    let headers = s
        .signer
        .sign("dlv_slow", body)
        .header_map()
        .expect("headers");

    let first = tokio::spawn({
        let headers = headers.clone();
        async move { post_to(addr, &headers, body).await }
    });
    started.notified().await;
    let second = post_to(addr, &headers, body).await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.body, "in_flight");
    assert_eq!(second.retry_after.as_deref(), Some("7"));

    finish.notify_one();
    assert_eq!(first.await.expect("first").status, StatusCode::OK);
    assert_eq!(post_to(addr, &headers, body).await.body, "duplicate");
}

/// The duplicate answers are a policy: each kind gets the status configured for it, and a
/// status the provider would misread is refused.
#[tokio::test]
async fn duplicate_statuses_follow_the_configured_policy() {
    let s = setup();
    let started = Arc::new(tokio::sync::Notify::new());
    let finish = Arc::new(tokio::sync::Notify::new());
    let (started_tx, finish_rx) = (Arc::clone(&started), Arc::clone(&finish));
    let layer = VerifyLayer::new(s.receiver.clone())
        .duplicate_status(Duplicate::Completed, StatusCode::ALREADY_REPORTED)
        .and_then(|layer| layer.duplicate_status(Duplicate::Replay, StatusCode::CONFLICT))
        .and_then(|layer| {
            layer.duplicate_status(Duplicate::InFlight, StatusCode::SERVICE_UNAVAILABLE)
        })
        .expect("statuses the provider reads right");
    let app = Router::new()
        .route(
            "/hook",
            post(move |_: VerifiedDelivery| async move {
                started_tx.notify_one();
                finish_rx.notified().await;
                "done"
            }),
        )
        .layer(layer);
    let addr = post::serve(app).await;
    let body = b"policy";
    let headers = s.signer.sign("dlv_a", body).header_map().expect("headers");

    let first = tokio::spawn({
        let headers = headers.clone();
        async move { post_to(addr, &headers, body).await }
    });
    started.notified().await;
    let in_flight = post_to(addr, &headers, body).await;
    assert_eq!(
        (in_flight.status, in_flight.body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "in_flight")
    );
    assert_eq!(in_flight.retry_after.as_deref(), Some("1"));
    finish.notify_one();
    assert_eq!(first.await.expect("first").status, StatusCode::OK);

    let again = post_to(addr, &headers, body).await;
    assert_eq!(
        (again.status, again.body.as_str()),
        (StatusCode::ALREADY_REPORTED, "duplicate")
    );
    let mut replay = headers.clone();
    replay.insert("x-agent-delivery-id", "dlv_b".parse().expect("value"));
    let replayed = post_to(addr, &replay, body).await;
    assert_eq!(
        (replayed.status, replayed.body.as_str()),
        (StatusCode::CONFLICT, "duplicate")
    );

    for (duplicate, status, accepted) in [
        (Duplicate::InFlight, StatusCode::OK, false),
        (Duplicate::InFlight, StatusCode::CONFLICT, false),
        (Duplicate::InFlight, StatusCode::TOO_MANY_REQUESTS, true),
        (Duplicate::InFlight, StatusCode::BAD_GATEWAY, true),
        (Duplicate::Completed, StatusCode::TOO_MANY_REQUESTS, false),
        (
            Duplicate::Completed,
            StatusCode::INTERNAL_SERVER_ERROR,
            false,
        ),
        (Duplicate::Completed, StatusCode::MOVED_PERMANENTLY, false),
        (Duplicate::Completed, StatusCode::NO_CONTENT, true),
        (Duplicate::Replay, StatusCode::SERVICE_UNAVAILABLE, false),
        (Duplicate::Replay, StatusCode::GONE, true),
    ] {
        let result = VerifyLayer::new(s.receiver.clone()).duplicate_status(duplicate, status);
        match result {
            Ok(_) => assert!(accepted, "{duplicate:?} {status} accepted"),
            Err(ConfigError::OutOfRange { setting, .. }) => {
                assert!(!accepted, "{duplicate:?} {status} refused");
                assert!(setting.contains(duplicate.as_str()), "{setting}");
            }
            Err(other) => panic!("{duplicate:?} {status}: {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_copies_are_handled_exactly_once() {
    let s = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let addr = post::serve(counting_app(
        VerifyLayer::new(s.receiver),
        Arc::clone(&runs),
        |_| StatusCode::OK,
    ))
    .await;
    let body = Bytes::from_static(b"one delivery, many copies");
    let headers = s
        .signer
        .sign("dlv_storm", &body)
        .header_map()
        .expect("headers");
    let barrier = Arc::new(tokio::sync::Barrier::new(32));
    let copies: Vec<_> = (0..32)
        .map(|_| {
            let (headers, body, barrier) = (headers.clone(), body.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                post_to(addr, &headers, &body).await
            })
        })
        .collect();
    let mut handled = 0;
    for copy in copies {
        let reply = copy.await.expect("copy");
        match (reply.status, reply.body.as_str()) {
            (StatusCode::OK, "handled dlv_storm") => handled += 1,
            (StatusCode::OK, "duplicate") | (StatusCode::TOO_MANY_REQUESTS, "in_flight") => {}
            other => panic!("unexpected reply {other:?}"),
        }
    }
    assert_eq!(handled, 1);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn header_problems_are_400_and_never_reach_the_handler() {
    let s = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let rejected = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&rejected);
    let layer = VerifyLayer::new(s.receiver).on_reject(move |error| {
        seen.lock().expect("lock").push(error.kind().as_str());
    });
    let addr = post::serve(counting_app(layer, Arc::clone(&runs), |_| StatusCode::OK)).await;
    let body = b"{}";
    let good = s.signer.sign("dlv_h", body).header_map().expect("headers");

    let mut missing = good.clone();
    missing.remove("x-agent-timestamp");
    let mut malformed = good.clone();
    malformed.insert("x-agent-signature", "sha256=zz".parse().expect("value"));
    let mut no_id = good.clone();
    no_id.remove("x-agent-delivery-id");
    let mut repeated = good.clone();
    repeated.append("x-agent-delivery-id", "dlv_other".parse().expect("value"));

    for (headers, kind) in [
        (missing, "missing_header"),
        (malformed, "malformed_signature"),
        (no_id, "missing_header"),
        (repeated, "malformed_delivery_id"),
    ] {
        let reply = post_to(addr, &headers, body).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::BAD_REQUEST, kind)
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(
        *rejected.lock().expect("lock"),
        [
            "missing_header",
            "malformed_signature",
            "missing_header",
            "malformed_delivery_id"
        ]
    );
}

#[tokio::test]
async fn forged_and_stale_requests_are_401_with_the_kind_only() {
    let s = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let addr = post::serve(counting_app(
        VerifyLayer::new(s.receiver),
        Arc::clone(&runs),
        |_| StatusCode::OK,
    ))
    .await;
    let body = b"{}";
    let forged = Signer::new("not the secret")
        .expect("signer")
        .clock(Arc::clone(&s.clock))
        .sign("dlv_forged", body)
        .header_map()
        .expect("headers");
    let reply = post_to(addr, &forged, body).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::UNAUTHORIZED, "signature_mismatch")
    );

    let tampered = s.signer.sign("dlv_t", body).header_map().expect("headers");
    assert_eq!(
        post_to(addr, &tampered, b"{ }").await.status,
        StatusCode::UNAUTHORIZED
    );

    let stale = s
        .signer
        .sign("dlv_stale", body)
        .header_map()
        .expect("headers");
    s.clock.advance(time::Duration::seconds(301));
    let reply = post_to(addr, &stale, body).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::UNAUTHORIZED, "timestamp_out_of_tolerance")
    );
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

/// A body that sends its first bytes and then nothing more, never ending: a slow client.
struct Stalling {
    sent: bool,
}

impl hyper::body::Body for Stalling {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if std::mem::replace(&mut self.sent, true) {
            return Poll::Pending;
        }
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{\"par")))))
    }
}

/// `VerifiedPayload` bounds reading the body as the layer does: a body still arriving after
/// 10 s is answered 408 and its connection closed, not waited for forever.
#[tokio::test(start_paused = true)]
async fn the_plain_extractor_gives_a_crawling_body_408_after_10_s() {
    let s = setup();
    let app = Router::new()
        .route(
            "/hook",
            post(|payload: VerifiedPayload| async move { payload.body().len().to_string() }),
        )
        .with_state(s.receiver.verifier().clone());
    let mut request = Request::post("/hook")
        .body(axum::body::Body::new(Stalling { sent: false }))
        .expect("request");
    let headers = s
        .signer
        .sign("dlv_crawl", b"{\"partial\": true}")
        .header_map()
        .expect("headers");
    request.headers_mut().extend(headers);
    let started = tokio::time::Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(60), app.oneshot(request))
        .await
        .expect("answered within a minute")
        .expect("infallible");
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(
        response.headers().get(http::header::CONNECTION),
        Some(&http::HeaderValue::from_static("close"))
    );
    let body = response.into_body().collect().await.expect("body");
    assert_eq!(body.to_bytes(), "body_timeout");
}

/// A body that never ends: only a server that stops reading at the limit can answer.
struct Endless;

impl hyper::body::Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
            &[b'x'; 16 * 1024],
        )))))
    }
}

#[tokio::test]
async fn oversized_bodies_are_413_declared_or_chunked() {
    let s = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let layer = VerifyLayer::new(s.receiver).max_body(64 * 1024);
    let addr = post::serve(counting_app(layer, Arc::clone(&runs), |_| StatusCode::OK)).await;

    let big = vec![b'x'; 64 * 1024 + 1];
    let headers = s
        .signer
        .sign("dlv_big", &big)
        .header_map()
        .expect("headers");
    let reply = post_to(addr, &headers, &big).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );

    // Exactly at the limit is fine.
    let edge = vec![b'x'; 64 * 1024];
    let headers = s
        .signer
        .sign("dlv_edge", &edge)
        .header_map()
        .expect("headers");
    assert_eq!(post_to(addr, &headers, &edge).await.status, StatusCode::OK);

    // A chunked body with no end: the server must answer without reading it all.
    let client: Client<_, Endless> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::post(format!("http://{addr}/hook"))
        .body(Endless)
        .expect("request");
    let headers = s
        .signer
        .sign("dlv_endless", b"")
        .header_map()
        .expect("headers");
    request.headers_mut().extend(headers);
    let response = client.request(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// Cheap checks first: a request that its headers condemn (no delivery id, a malformed header,
/// a stale timestamp, a declared length over the limit) is answered without its body ever being
/// polled. The last request, well formed, shows that the probe does see a read.
#[tokio::test]
async fn requests_refused_on_their_headers_never_have_their_body_read() {
    let s = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let layer = VerifyLayer::new(s.receiver).max_body(1024);
    let app = counting_app(layer, Arc::clone(&runs), |_| StatusCode::OK);
    let good = s
        .signer
        .sign("dlv_cheap", b"")
        .header_map()
        .expect("headers");

    let mut no_id = good.clone();
    no_id.remove("x-agent-delivery-id");
    let mut malformed = good.clone();
    malformed.insert("x-agent-timestamp", "soon".parse().expect("value"));
    let stale = s
        .signer
        .sign_with_timestamp("dlv_stale", &(NOW - 301).to_string(), b"")
        .header_map()
        .expect("headers");
    let mut oversized = good.clone();
    oversized.insert("content-length", "1025".parse().expect("value"));

    for (headers, status, kind) in [
        (no_id, StatusCode::BAD_REQUEST, "missing_header"),
        (malformed, StatusCode::BAD_REQUEST, "malformed_timestamp"),
        (
            stale,
            StatusCode::UNAUTHORIZED,
            "timestamp_out_of_tolerance",
        ),
        (oversized, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
    ] {
        assert_eq!(
            send_watched(&app, "/hook", &headers).await,
            (status, kind.to_owned(), false),
            "{kind}"
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 0);

    let (status, _, polled) = send_watched(&app, "/hook", &good).await;
    assert_eq!((status, polled), (StatusCode::OK, true));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn layer_timeouts_are_validated() {
    let s = setup();
    let layer = || VerifyLayer::new(s.receiver.clone());
    let setting = |built: Result<VerifyLayer<MemoryStore>, ConfigError>| match built {
        Ok(_) => None,
        Err(ConfigError::OutOfRange { setting, .. }) => Some(setting),
        Err(other) => panic!("unexpected error {other:?}"),
    };
    for bad in [
        Duration::ZERO,
        Duration::from_nanos(999_999),
        Duration::from_secs(3600) + Duration::from_nanos(1),
    ] {
        assert_eq!(
            setting(layer().body_timeout(bad)),
            Some("body_timeout"),
            "{bad:?}"
        );
        assert_eq!(
            setting(layer().handler_timeout(bad)),
            Some("handler_timeout"),
            "{bad:?}"
        );
    }
    for good in [Duration::from_millis(1), Duration::from_secs(3600)] {
        assert_eq!(setting(layer().body_timeout(good)), None, "{good:?}");
        assert_eq!(setting(layer().handler_timeout(good)), None, "{good:?}");
    }
}

/// A store that is down, or never answers.
#[derive(Debug)]
struct BrokenStore {
    hang: bool,
}

impl DeliveryStore for BrokenStore {
    async fn claim(
        &self,
        _: &DeliveryKeys,
        _: ClaimToken,
        _: Duration,
    ) -> Result<Claim, StoreError> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        Err(StoreError::new("connection refused"))
    }
    async fn renew(
        &self,
        _: &DeliveryKeys,
        _: ClaimToken,
        _: Duration,
    ) -> Result<bool, StoreError> {
        Err(StoreError::new("connection refused"))
    }
    async fn complete(
        &self,
        _: &DeliveryKeys,
        _: ClaimToken,
        _: Duration,
    ) -> Result<bool, StoreError> {
        Err(StoreError::new("connection refused"))
    }
    async fn release(
        &self,
        _: &DeliveryKeys,
        _: ClaimToken,
        _: Duration,
    ) -> Result<bool, StoreError> {
        Err(StoreError::new("connection refused"))
    }
}

/// A memory store whose `complete` never answers.
#[derive(Debug)]
struct HangingComplete(MemoryStore);

impl DeliveryStore for HangingComplete {
    async fn claim(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        self.0.claim(keys, token, lease).await
    }
    async fn renew(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        self.0.renew(keys, token, lease).await
    }
    async fn complete(
        &self,
        _: &DeliveryKeys,
        _: ClaimToken,
        _: Duration,
    ) -> Result<bool, StoreError> {
        std::future::pending().await
    }
    async fn release(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        retain: Duration,
    ) -> Result<bool, StoreError> {
        self.0.release(keys, token, retain).await
    }
}

/// After the handler succeeded nothing releases the claim, even when the completion cannot
/// be recorded: the answer stands, and neither the provider's retry nor a replay under a
/// fresh id runs the handler again.
#[tokio::test]
async fn a_hanging_complete_is_bounded_and_never_releases() {
    let s = setup();
    let store = Arc::new(HangingComplete(
        MemoryStore::new(NonZeroUsize::new(100).expect("non-zero")).expect("capacity"),
    ));
    let receiver: Receiver<HangingComplete> =
        Receiver::builder(s.receiver.verifier().clone(), Arc::clone(&store))
            .store_timeout(Duration::from_millis(50))
            .build()
            .expect("receiver");
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let app = Router::new()
        .route(
            "/hook",
            post(move |_: VerifiedDelivery| async move {
                counter.fetch_add(1, Ordering::SeqCst);
                "handled"
            }),
        )
        .layer(VerifyLayer::new(receiver));
    let addr = post::serve(app).await;
    let headers = s
        .signer
        .sign("dlv_hang", b"{}")
        .header_map()
        .expect("headers");
    // The handler ran: its answer stands, within the store timeout.
    let reply = post_to(addr, &headers, b"{}").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "handled")
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let retry = post_to(addr, &headers, b"{}").await;
    assert_eq!(retry.status, StatusCode::TOO_MANY_REQUESTS);
    let mut replay = headers.clone();
    replay.insert(
        "x-agent-delivery-id",
        "dlv_hang_replay".parse().expect("value"),
    );
    let replay = post_to(addr, &replay, b"{}").await;
    assert_eq!(replay.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// A memory store whose claims land late, as one in transit or queued behind a lock does: each
/// is written `LANDS_AFTER` after it was made, whether or not its caller still waits.
#[derive(Debug)]
struct LateClaims {
    store: Arc<MemoryStore>,
    /// Whether the next call fails after 20 ms (a connection cut mid-call), its claim landing
    /// all the same.
    cut_next: AtomicBool,
}

const LANDS_AFTER: Duration = Duration::from_millis(200);

impl DeliveryStore for LateClaims {
    async fn claim(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let (store, keys) = (Arc::clone(&self.store), keys.clone());
        let landing = tokio::spawn(async move {
            tokio::time::sleep(LANDS_AFTER).await;
            store.claim(&keys, token, lease).await
        });
        if self.cut_next.swap(false, Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            return Err(StoreError::new("connection reset"));
        }
        landing
            .await
            .map_err(|error| StoreError::new(error.to_string()))?
    }
    async fn renew(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        self.store.renew(keys, token, lease).await
    }
    async fn complete(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        retain: Duration,
    ) -> Result<bool, StoreError> {
        self.store.complete(keys, token, retain).await
    }
    async fn release(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        retain: Duration,
    ) -> Result<bool, StoreError> {
        self.store.release(keys, token, retain).await
    }
}

/// A claim whose caller stopped waiting (the request was dropped, or the call failed after a
/// wait, as on a connection cut) and that lands after the background release first looked:
/// the release looks again until the claim can no longer land, so the provider's retry is
/// fresh rather than "in flight" for the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_landing_after_its_release_looked_is_still_taken_back() {
    for cut in [false, true] {
        let s = setup();
        let store = LateClaims {
            store: Arc::new(
                MemoryStore::new(NonZeroUsize::new(100).expect("non-zero")).expect("capacity"),
            ),
            cut_next: AtomicBool::new(cut),
        };
        let receiver = Receiver::builder(s.receiver.verifier().clone(), store)
            .store_timeout(Duration::from_secs(1))
            .build()
            .expect("receiver");
        let headers = s
            .signer
            .sign("dlv_late", b"{}")
            .header_map()
            .expect("headers");
        let first = receiver.receive(&headers, b"{}");
        if cut {
            assert!(matches!(
                first.await,
                Err(hookverify::ReceiveError::StoreUnavailable(_))
            ));
        } else {
            let dropped = tokio::time::timeout(Duration::from_millis(20), first).await;
            assert!(dropped.is_err(), "the claim has not landed yet");
        }

        let started = std::time::Instant::now();
        loop {
            match receiver.receive(&headers, b"{}").await.expect("receive") {
                hookverify::Outcome::Fresh(guard) => {
                    guard.complete().await.expect("complete");
                    break;
                }
                hookverify::Outcome::Duplicate(hookverify::Duplicate::InFlight) => {
                    assert!(
                        started.elapsed() < Duration::from_secs(3),
                        "the late claim was never taken back (cut: {cut}; it holds for the \
                         30 s lease)"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

/// A store that refuses every claim with an error (as a full memory store set to refuse does)
/// and counts the releases it is sent.
#[derive(Debug, Default)]
struct RefusingStore {
    releases: AtomicUsize,
}

impl DeliveryStore for RefusingStore {
    async fn claim(
        &self,
        _: &DeliveryKeys,
        _: ClaimToken,
        _: Duration,
    ) -> Result<Claim, StoreError> {
        Err(StoreError::new("full"))
    }
    async fn renew(
        &self,
        _: &DeliveryKeys,
        _: ClaimToken,
        _: Duration,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn complete(
        &self,
        _: &DeliveryKeys,
        _: ClaimToken,
        _: Duration,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }
    async fn release(
        &self,
        _: &DeliveryKeys,
        _: ClaimToken,
        _: Duration,
    ) -> Result<bool, StoreError> {
        self.releases.fetch_add(1, Ordering::SeqCst);
        Ok(false)
    }
}

/// A claim the store refused at once (its call answered on the first poll) is released once,
/// in case it half landed, and not looked for again: a store refusing under load is not sent
/// more work for it.
#[tokio::test]
async fn a_refused_claim_is_released_once() {
    let s = setup();
    let store = Arc::new(RefusingStore::default());
    let receiver: Receiver<RefusingStore> =
        Receiver::builder(s.receiver.verifier().clone(), Arc::clone(&store))
            .store_timeout(Duration::from_millis(500))
            .build()
            .expect("receiver");
    let headers = s
        .signer
        .sign("dlv_refused", b"{}")
        .header_map()
        .expect("headers");
    assert!(receiver.receive(&headers, b"{}").await.is_err());
    // Past the store timeout, when a claim that never answered stops being looked for.
    tokio::time::timeout(Duration::from_secs(2), receiver.settled())
        .await
        .expect("settled");
    assert_eq!(store.releases.load(Ordering::SeqCst), 1);
}

/// A store that is down after a wait (every call answers an error once it has waited), and
/// records every token a release was sent for.
#[derive(Debug, Default)]
struct DownAfterAWait {
    released: std::sync::Mutex<std::collections::HashSet<u64>>,
}

impl DownAfterAWait {
    async fn fail<T>() -> Result<T, StoreError> {
        tokio::task::yield_now().await;
        Err(StoreError::new("connection reset"))
    }
}

impl DeliveryStore for DownAfterAWait {
    async fn claim(
        &self,
        _: &DeliveryKeys,
        _: ClaimToken,
        _: Duration,
    ) -> Result<Claim, StoreError> {
        Self::fail().await
    }
    async fn renew(
        &self,
        _: &DeliveryKeys,
        _: ClaimToken,
        _: Duration,
    ) -> Result<bool, StoreError> {
        Self::fail().await
    }
    async fn complete(
        &self,
        _: &DeliveryKeys,
        _: ClaimToken,
        _: Duration,
    ) -> Result<bool, StoreError> {
        Self::fail().await
    }
    async fn release(
        &self,
        _: &DeliveryKeys,
        token: ClaimToken,
        _: Duration,
    ) -> Result<bool, StoreError> {
        self.released
            .lock()
            .expect("not poisoned")
            .insert(token.get());
        Self::fail().await
    }
}

/// During an outage every refused claim leaves a release retried in the background until its
/// lease ends; their number is bounded, so memory does not grow with the rate of refusals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_releases_are_bounded_during_an_outage() {
    let s = setup();
    let store = Arc::new(DownAfterAWait::default());
    let receiver: Receiver<DownAfterAWait> =
        Receiver::builder(s.receiver.verifier().clone(), Arc::clone(&store))
            .build()
            .expect("receiver");
    let headers = s
        .signer
        .sign("dlv_outage", b"{}")
        .header_map()
        .expect("headers");
    let refused = hookverify::MAX_BACKGROUND_RELEASES + 500;
    for _ in 0..refused {
        assert!(receiver.receive(&headers, b"{}").await.is_err());
    }
    // Every release that was kept has made its first attempt by now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let released = store.released.lock().expect("not poisoned").len();
    assert_eq!(released, hookverify::MAX_BACKGROUND_RELEASES);
}

#[tokio::test]
async fn store_outage_is_503_and_nothing_is_handled() {
    for hang in [false, true] {
        let s = setup();
        let receiver = Receiver::builder(s.receiver.verifier().clone(), BrokenStore { hang })
            .store_timeout(Duration::from_millis(50))
            .build()
            .expect("receiver");
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&runs);
        let app = Router::new()
            .route(
                "/hook",
                post(move |_: VerifiedDelivery| async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    "handled"
                }),
            )
            .layer(VerifyLayer::new(receiver));
        let addr = post::serve(app).await;
        let headers = s
            .signer
            .sign("dlv_down", b"{}")
            .header_map()
            .expect("headers");
        let reply = post_to(addr, &headers, b"{}").await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            "hang = {hang}"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    }
}

#[tokio::test]
async fn handler_timeout_releases_the_claim() {
    let s = setup();
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let app = Router::new()
        .route(
            "/hook",
            post(move |_: VerifiedDelivery| async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    std::future::pending::<()>().await;
                }
                "second time lucky"
            }),
        )
        .layer(
            VerifyLayer::new(s.receiver)
                .handler_timeout(Duration::from_millis(50))
                .expect("valid"),
        );
    let addr = post::serve(app).await;
    let headers = s
        .signer
        .sign("dlv_timeout", b"{}")
        .header_map()
        .expect("headers");
    let first = post_to(addr, &headers, b"{}").await;
    assert_eq!(
        (first.status, first.body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "handler_timeout")
    );
    let retry = post_to(addr, &headers, b"{}").await;
    assert_eq!(
        (retry.status, retry.body.as_str()),
        (StatusCode::OK, "second time lucky")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_request_future_releases_its_claim() {
    let s = setup();
    let started = Arc::new(tokio::sync::Notify::new());
    let notify = Arc::clone(&started);
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let app = Router::new()
        .route(
            "/hook",
            post(move |_: VerifiedDelivery| async move {
                if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                    notify.notify_one();
                    std::future::pending::<()>().await;
                }
                "handled"
            }),
        )
        .layer(VerifyLayer::new(s.receiver));
    let headers = s
        .signer
        .sign("dlv_cancel", b"{}")
        .header_map()
        .expect("headers");
    let request = || {
        let mut request = Request::post("/hook")
            .body(axum::body::Body::from("{}"))
            .expect("request");
        request.headers_mut().extend(headers.clone());
        request
    };

    let in_flight = tokio::spawn(app.clone().oneshot(request()));
    started.notified().await;
    in_flight.abort();
    assert!(in_flight.await.expect_err("aborted").is_cancelled());

    // The guard's release runs on a spawned task; the retry is answered 429 until it has run.
    for _ in 0..10_000 {
        let response = app.clone().oneshot(request()).await.expect("infallible");
        match response.status() {
            StatusCode::OK => {
                assert_eq!(runs.load(Ordering::SeqCst), 2);
                return;
            }
            StatusCode::TOO_MANY_REQUESTS => tokio::task::yield_now().await,
            other => panic!("unexpected status {other}"),
        }
    }
    panic!("the cancelled request's claim was never released");
}

#[tokio::test]
async fn the_handler_sees_the_delivery_and_a_sensitive_signature() {
    let s = setup();
    let app = Router::new()
        .route(
            "/hook",
            post(
                |headers: HeaderMap, delivery: VerifiedDelivery| async move {
                    let sensitive = headers
                        .get("x-agent-signature")
                        .is_some_and(http::HeaderValue::is_sensitive);
                    format!(
                        "{} {} {} {} {}",
                        delivery.delivery_id(),
                        delivery.secret_label(),
                        delivery.timestamp().map_or(0, |at| at.unix_timestamp()),
                        String::from_utf8_lossy(delivery.body()),
                        sensitive
                    )
                },
            ),
        )
        .layer(VerifyLayer::new(s.receiver));
    let headers = s
        .signer
        .sign("dlv_seen", b"payload")
        .header_map()
        .expect("headers");
    let response = app
        .oneshot({
            let mut request = Request::post("/hook")
                .body(axum::body::Body::from("payload"))
                .expect("request");
            request.headers_mut().extend(headers);
            request
        })
        .await
        .expect("infallible");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(
        &body[..],
        format!("dlv_seen current {NOW} payload true").as_bytes()
    );
}

#[tokio::test]
async fn the_extractor_verifies_without_the_layer() {
    let s = setup();
    let app = Router::new()
        .route(
            "/hook",
            post(|payload: VerifiedPayload| async move {
                format!(
                    "{} bytes from {}",
                    payload.body().len(),
                    payload.verified().secret_label()
                )
            }),
        )
        .with_state(s.receiver.verifier().clone());
    let addr = post::serve(app).await;
    let headers = s
        .signer
        .sign("dlv_plain", b"hello")
        .header_map()
        .expect("headers");
    let reply = post_to(addr, &headers, b"hello").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "5 bytes from current")
    );
    let reply = post_to(addr, &headers, b"hellO").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::UNAUTHORIZED, "signature_mismatch")
    );
    let mut missing = headers.clone();
    missing.remove("x-agent-signature");
    assert_eq!(
        post_to(addr, &missing, b"hello").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn the_extractor_limit_is_part_of_its_type() {
    let s = setup();
    let app = Router::new()
        .route(
            "/hook",
            post(|payload: VerifiedPayload<16>| async move { payload.body().len().to_string() }),
        )
        .with_state(s.receiver.verifier().clone());
    let addr = post::serve(app).await;
    for (body, expected) in [
        (&b"sixteen bytes..."[..], StatusCode::OK),
        (&b"seventeen bytes.."[..], StatusCode::PAYLOAD_TOO_LARGE),
    ] {
        let headers = s
            .signer
            .sign("dlv_small", body)
            .header_map()
            .expect("headers");
        assert_eq!(post_to(addr, &headers, body).await.status, expected);
    }
}

#[tokio::test]
async fn the_delivery_extractor_without_the_layer_is_a_500_not_a_pass() {
    let app: Router =
        Router::new().route("/hook", post(|_: VerifiedDelivery| async { "unreachable" }));
    let response = app
        .oneshot(
            Request::post("/hook")
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
