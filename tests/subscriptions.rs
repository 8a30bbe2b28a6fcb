//! Many subscriptions behind one layer, over real TCP on 127.0.0.1: each subscription's own
//! secrets and method, its own dedupe namespace, rotation through the source (with and without
//! `invalidate`), an unknown subscription and a failing source answered before the body, and
//! `only_if` on a whole router.
#![cfg(feature = "axum")]

#[path = "common/watched.rs"]
mod watched;

#[path = "common/post.rs"]
mod post;

use post::post_path;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use watched::send_watched;

use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use hookverify::axum::{SubscriptionKey, VerifiedDelivery, VerifyLayer};
use hookverify::{
    ManualClock, MemoryStore, Method, Receiver, Signer, SourceError, SourceFuture,
    SubscriptionSource, Subscriptions, Verifier,
};
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NOW: i64 = 1_764_000_000;
const SECRET_A: &str = "whsec_fleet_a";
const SECRET_B: &str = "whsec_fleet_b";
const SECRET_STRIPE: &str = "whsec_stripe_live";
const BODY: &[u8] = br#"{"type":"thread.completed"}"#;

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::from_unix(NOW).expect("in range"))
}

fn verifier(clock: &Arc<ManualClock>, method: Method, label: &str, secret: &str) -> Verifier {
    Verifier::builder()
        .method(method)
        .secret(label, secret)
        .clock(Arc::clone(clock))
        .build()
        .expect("verifier")
}

fn signer(clock: &Arc<ManualClock>, method: Method, secret: &str) -> Signer {
    Signer::for_method(method, secret)
        .expect("signer")
        .clock(Arc::clone(clock))
}

fn store(clock: &Arc<ManualClock>) -> MemoryStore {
    MemoryStore::with_clock(
        NonZeroUsize::new(10_000).expect("non-zero"),
        Arc::clone(clock),
    )
    .expect("capacity")
}

/// A source whose answers the test changes while the server runs, and which counts its calls.
#[derive(Clone, Default)]
struct TestSource {
    verifiers: Arc<Mutex<HashMap<String, Verifier>>>,
    asked: Arc<AtomicUsize>,
}

impl TestSource {
    fn set(&self, subscription: &str, verifier: Verifier) {
        self.verifiers
            .lock()
            .expect("not poisoned")
            .insert(subscription.to_owned(), verifier);
    }

    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

impl SubscriptionSource for TestSource {
    fn verifier<'a>(&'a self, subscription: &'a str) -> SourceFuture<'a> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        let found = self
            .verifiers
            .lock()
            .expect("not poisoned")
            .get(subscription)
            .cloned();
        Box::pin(std::future::ready(Ok(found)))
    }
}

/// A source that cannot answer (its database is down, say).
struct DownSource;

impl SubscriptionSource for DownSource {
    fn verifier<'a>(&'a self, _: &'a str) -> SourceFuture<'a> {
        Box::pin(std::future::ready(Err(SourceError::new(
            "the subscriptions database is unreachable",
        ))))
    }
}

/// A source that never answers (its database hangs, say).
struct HangingSource;

impl SubscriptionSource for HangingSource {
    fn verifier<'a>(&'a self, _: &'a str) -> SourceFuture<'a> {
        Box::pin(std::future::pending())
    }
}

/// Counts each subscription's handled deliveries by id.
#[derive(Clone, Default)]
struct Handled(Arc<Mutex<Vec<(String, String)>>>);

impl Handled {
    fn count(&self, subscription: &str, id: &str) -> usize {
        self.0
            .lock()
            .expect("not poisoned")
            .iter()
            .filter(|(s, i)| s == subscription && i == id)
            .count()
    }

    fn total(&self) -> usize {
        self.0.lock().expect("not poisoned").len()
    }
}

/// `/webhooks/{subscription}` behind one layer over `subscriptions`.
fn app(subscriptions: impl Into<Arc<Subscriptions<MemoryStore>>>, handled: &Handled) -> Router {
    let handled = handled.clone();
    let handler = post(
        move |axum::extract::Path(subscription): axum::extract::Path<String>,
              delivery: VerifiedDelivery| async move {
            handled
                .0
                .lock()
                .expect("not poisoned")
                .push((subscription, delivery.delivery_id().to_owned()));
            format!(
                "handled {} ({})",
                delivery.delivery_id(),
                delivery.secret_label()
            )
        },
    );
    let layer = VerifyLayer::subscriptions(subscriptions, SubscriptionKey::last_path_segment());
    Router::new().route("/webhooks/{subscription}", handler.route_layer(layer))
}

fn signed(signer: &Signer, id: &str, body: &[u8]) -> HeaderMap {
    signer.sign(id, body).header_map().expect("headers")
}

#[tokio::test]
async fn each_subscription_has_its_own_secrets_method_and_namespace() {
    let clock = clock();
    let mut source = HashMap::new();
    source.insert(
        "fleet-a".to_owned(),
        verifier(&clock, Method::HmacSha256, "a-2026", SECRET_A),
    );
    source.insert(
        "fleet-b".to_owned(),
        verifier(&clock, Method::HmacSha256, "b-2026", SECRET_B),
    );
    source.insert(
        "stripe".to_owned(),
        verifier(&clock, Method::Stripe, "live", SECRET_STRIPE),
    );
    let base = Receiver::new(source["fleet-a"].clone(), store(&clock));
    let handled = Handled::default();
    let addr = post::serve(app(Subscriptions::new(source, base), &handled)).await;
    let a = signer(&clock, Method::HmacSha256, SECRET_A);
    let b = signer(&clock, Method::HmacSha256, SECRET_B);
    let stripe = signer(&clock, Method::Stripe, SECRET_STRIPE);

    // Signed for one subscription: refused on the others, whatever their method.
    let for_a = signed(&a, "dlv_a1", BODY);
    let (status, body) = post_path(addr, "/webhooks/fleet-b", &for_a, BODY).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::UNAUTHORIZED, "signature_mismatch")
    );
    // Stripe's own header is missing from it.
    let (status, body) = post_path(addr, "/webhooks/stripe", &for_a, BODY).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "missing_header")
    );
    let for_stripe = signed(&stripe, "evt_1", BODY);
    let (status, body) = post_path(addr, "/webhooks/fleet-a", &for_stripe, BODY).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "missing_header")
    );
    assert_eq!(handled.total(), 0);

    // Each accepted on its own.
    let (status, body) = post_path(addr, "/webhooks/fleet-a", &for_a, BODY).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "handled dlv_a1 (a-2026)")
    );
    let (status, body) = post_path(addr, "/webhooks/stripe", &for_stripe, BODY).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.ends_with("(live)"), "{body}");

    // One delivery id (and the very same signed bytes: same timestamp, same body) on two
    // subscriptions: handled once in each, since each dedupes in its own namespace.
    let shared = br#"{"type":"thread.failed"}"#;
    let shared_a = signed(&a, "dlv_shared", shared);
    let shared_b = signed(&b, "dlv_shared", shared);
    assert_eq!(shared_a["x-agent-timestamp"], shared_b["x-agent-timestamp"]);
    for _ in 0..2 {
        assert_eq!(
            post_path(addr, "/webhooks/fleet-a", &shared_a, shared)
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            post_path(addr, "/webhooks/fleet-b", &shared_b, shared)
                .await
                .0,
            StatusCode::OK
        );
    }
    assert_eq!(handled.count("fleet-a", "dlv_shared"), 1);
    assert_eq!(handled.count("fleet-b", "dlv_shared"), 1);
    let (_, again) = post_path(addr, "/webhooks/fleet-b", &shared_b, shared).await;
    assert_eq!(again, "duplicate");
}

#[tokio::test]
async fn rotation_through_the_source_with_and_without_invalidate() {
    const TTL: Duration = Duration::from_millis(1_000);
    let clock = clock();
    let source = TestSource::default();
    source.set(
        "fleet-a",
        verifier(&clock, Method::HmacSha256, "v1", "whsec_v1"),
    );
    let base = Receiver::new(
        verifier(&clock, Method::HmacSha256, "unused", "whsec_unused"),
        store(&clock),
    );
    let subscriptions = Arc::new(Subscriptions::new(source.clone(), base).cache_ttl(TTL));
    let handled = Handled::default();
    let addr = post::serve(app(Arc::clone(&subscriptions), &handled)).await;
    let path = "/webhooks/fleet-a";
    let v1 = signer(&clock, Method::HmacSha256, "whsec_v1");
    let v2 = signer(&clock, Method::HmacSha256, "whsec_v2");
    let v3 = signer(&clock, Method::HmacSha256, "whsec_v3");
    let mut next = 0;
    let mut send = |signer: &Signer| {
        next += 1;
        // A body of its own: the same signed bytes under another id would be a replay.
        let body = format!("{{\"type\":\"turn.completed\",\"n\":{next}}}");
        let headers = signed(signer, &format!("dlv_rot{next}"), body.as_bytes());
        async move { post_path(addr, path, &headers, body.as_bytes()).await.0 }
    };

    // The answer is cached: the source is asked once for two deliveries.
    assert_eq!(send(&v1).await, StatusCode::OK);
    let cached_at = std::time::Instant::now();
    assert_eq!(send(&v1).await, StatusCode::OK);
    assert_eq!(source.asked(), 1);

    // The source rotates to v2 without telling the layer: the old answer stays until the TTL.
    source.set(
        "fleet-a",
        verifier(&clock, Method::HmacSha256, "v2", "whsec_v2"),
    );
    assert_eq!(send(&v2).await, StatusCode::UNAUTHORIZED);
    assert_eq!(send(&v1).await, StatusCode::OK);
    assert!(
        cached_at.elapsed() < TTL,
        "the machine is too slow for this test's TTL"
    );
    tokio::time::sleep(TTL.saturating_sub(cached_at.elapsed()) + Duration::from_millis(50)).await;
    assert_eq!(send(&v2).await, StatusCode::OK);
    assert_eq!(send(&v1).await, StatusCode::UNAUTHORIZED);

    // Rotated to v3 with `invalidate`: at once.
    source.set(
        "fleet-a",
        verifier(&clock, Method::HmacSha256, "v3", "whsec_v3"),
    );
    subscriptions.invalidate("fleet-a");
    assert_eq!(send(&v3).await, StatusCode::OK);
    assert_eq!(send(&v2).await, StatusCode::UNAUTHORIZED);
    assert_eq!(handled.total(), 5);
}

/// A request whose body never comes: the answer can only be given from the head.
async fn head_only(addr: SocketAddr, path: &str, headers: &HeaderMap) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = post::request_head(path, headers, 1000);
    stream.write_all(&head).await.expect("write head");
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    // The body is never sent, so a server that waited for it would never answer.
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let read = stream.read(&mut buffer).await.expect("read");
            received.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&received);
            if read == 0
                || text
                    .split_once("\r\n\r\n")
                    .is_some_and(|(_, body)| !body.is_empty())
            {
                break;
            }
        }
    })
    .await
    .expect("answered without the body");
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn an_unknown_subscription_is_404_before_the_body() {
    let clock = clock();
    let source = TestSource::default();
    source.set(
        "fleet-a",
        verifier(&clock, Method::HmacSha256, "k", SECRET_A),
    );
    let base = Receiver::new(
        verifier(&clock, Method::HmacSha256, "k", SECRET_A),
        store(&clock),
    );
    let handled = Handled::default();
    let app = app(Subscriptions::new(source.clone(), base), &handled);
    let addr = post::serve(app.clone()).await;
    let headers = signed(&signer(&clock, Method::HmacSha256, SECRET_A), "dlv_u", b"");

    // Over TCP: a body announced and never sent still gets its answer.
    let answer = head_only(addr, "/webhooks/nobody", &headers).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert!(answer.ends_with("unknown_subscription"), "{answer}");
    // A key that is no valid namespace is unknown without asking the source.
    let asked = source.asked();
    let answer = head_only(addr, "/webhooks/no%3Acolon", &headers).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    assert_eq!(source.asked(), asked);

    // And the body is never polled; a known subscription's is.
    assert_eq!(
        send_watched(&app, "/webhooks/nobody", &headers).await,
        (
            StatusCode::NOT_FOUND,
            "unknown_subscription".to_owned(),
            false
        )
    );
    let (status, _, was_polled) = send_watched(&app, "/webhooks/fleet-a", &headers).await;
    assert_eq!((status, was_polled), (StatusCode::OK, true));
    assert_eq!(handled.total(), 1);
}

#[tokio::test]
async fn a_source_that_cannot_answer_is_503_and_nothing_runs() {
    let clock = clock();
    let base = Receiver::new(
        verifier(&clock, Method::HmacSha256, "k", SECRET_A),
        store(&clock),
    );
    let handled = Handled::default();
    let app = app(Subscriptions::new(DownSource, base), &handled);
    let addr = post::serve(app.clone()).await;
    let headers = signed(&signer(&clock, Method::HmacSha256, SECRET_A), "dlv_d", BODY);

    let (status, body) = post_path(addr, "/webhooks/fleet-a", &headers, BODY).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "source_unavailable")
    );
    let answer = head_only(addr, "/webhooks/fleet-a", &headers).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(!send_watched(&app, "/webhooks/fleet-a", &headers).await.2);
    assert_eq!(handled.total(), 0);
}

/// A source that hangs holds no request open: the lookup is bounded by the store timeout, and
/// the answer is 503 (the provider retries), before the body is read.
#[tokio::test]
async fn a_source_that_hangs_is_503_within_the_store_timeout() {
    let clock = clock();
    let base = Receiver::builder(
        verifier(&clock, Method::HmacSha256, "k", SECRET_A),
        store(&clock),
    )
    .store_timeout(Duration::from_millis(200))
    .build()
    .expect("receiver");
    let handled = Handled::default();
    let app = app(Subscriptions::new(HangingSource, base), &handled);
    let addr = post::serve(app.clone()).await;
    let headers = signed(&signer(&clock, Method::HmacSha256, SECRET_A), "dlv_h", BODY);

    let started = std::time::Instant::now();
    let (status, body) = tokio::time::timeout(
        Duration::from_secs(5),
        post_path(addr, "/webhooks/fleet-a", &headers, BODY),
    )
    .await
    .expect("an answer, not a request held open");
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "source_unavailable")
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(!send_watched(&app, "/webhooks/fleet-a", &headers).await.2);
    assert_eq!(handled.total(), 0);
}

#[tokio::test]
async fn only_if_lets_the_layer_wrap_a_whole_router() {
    let clock = clock();
    let mut source = HashMap::new();
    source.insert(
        "fleet-a".to_owned(),
        verifier(&clock, Method::HmacSha256, "k", SECRET_A),
    );
    let base = Receiver::new(source["fleet-a"].clone(), store(&clock));
    let layer = VerifyLayer::subscriptions(
        Subscriptions::new(source, base),
        SubscriptionKey::last_path_segment(),
    )
    .only_if(|parts| parts.uri.path().starts_with("/webhooks/"));
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&runs);
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/webhooks/{subscription}",
            post(move |delivery: VerifiedDelivery| async move {
                counter.fetch_add(1, Ordering::SeqCst);
                format!("handled {}", delivery.delivery_id())
            }),
        )
        .layer(layer);
    let addr = post::serve(app).await;

    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let health = client
        .get(format!("http://{addr}/health").parse().expect("uri"))
        .await
        .expect("response");
    assert_eq!(health.status(), StatusCode::OK);
    let body = health.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&body[..], b"ok");

    // The webhook routes are verified.
    let (status, body) = post_path(addr, "/webhooks/fleet-a", &HeaderMap::new(), BODY).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "missing_header")
    );
    let headers = signed(&signer(&clock, Method::HmacSha256, SECRET_A), "dlv_o", BODY);
    let (status, body) = post_path(addr, "/webhooks/fleet-a", &headers, BODY).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "handled dlv_o"));
    let (status, _) = post_path(addr, "/webhooks/other", &headers, BODY).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

/// A source that reads its answer at once, then waits for the test to open its gate.
#[derive(Clone)]
struct GatedSource {
    inner: TestSource,
    entered: Arc<tokio::sync::Notify>,
    gate: Arc<tokio::sync::Semaphore>,
}

impl SubscriptionSource for GatedSource {
    fn verifier<'a>(&'a self, subscription: &'a str) -> SourceFuture<'a> {
        let answer = self.inner.verifier(subscription);
        Box::pin(async move {
            let answer = answer.await;
            self.entered.notify_one();
            let _open = self.gate.acquire().await.expect("never closed");
            answer
        })
    }
}

/// A lookup that asked the source before a rotation finishes after `invalidate`: it may use
/// the old answer for its own request, but must not put it back in the cache.
#[tokio::test]
async fn an_invalidation_during_a_lookup_is_not_undone_by_it() {
    let clock = clock();
    let inner = TestSource::default();
    inner.set(
        "fleet-a",
        verifier(&clock, Method::HmacSha256, "v1", "whsec_v1"),
    );
    let source = GatedSource {
        inner: inner.clone(),
        entered: Arc::new(tokio::sync::Notify::new()),
        gate: Arc::new(tokio::sync::Semaphore::new(0)),
    };
    let base = Receiver::new(
        verifier(&clock, Method::HmacSha256, "unused", "whsec_unused"),
        store(&clock),
    );
    let subscriptions = Arc::new(Subscriptions::new(source.clone(), base));
    let handled = Handled::default();
    let addr = post::serve(app(Arc::clone(&subscriptions), &handled)).await;
    let path = "/webhooks/fleet-a";

    let old = signed(
        &signer(&clock, Method::HmacSha256, "whsec_v1"),
        "dlv_old",
        b"old",
    );
    let in_lookup = tokio::spawn(async move { post_path(addr, path, &old, b"old").await.0 });
    source.entered.notified().await;
    inner.set(
        "fleet-a",
        verifier(&clock, Method::HmacSha256, "v2", "whsec_v2"),
    );
    subscriptions.invalidate("fleet-a");
    source.gate.add_permits(1_000);
    assert_eq!(in_lookup.await.expect("joined"), StatusCode::OK);

    let new = signed(
        &signer(&clock, Method::HmacSha256, "whsec_v2"),
        "dlv_new",
        b"new",
    );
    assert_eq!(post_path(addr, path, &new, b"new").await.0, StatusCode::OK);
    assert_eq!(handled.total(), 2);
}
