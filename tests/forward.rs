//! `hookverify serve --forward URL` in front of a test upstream, over TCP on 127.0.0.1: each
//! verified delivery forwarded once, with its headers and the matched label; an upstream
//! failure (a status, a hang, no listener) releases the delivery so that the retry is
//! forwarded again; a forgery is never forwarded. And a shutdown that waits for a completion
//! the store could not record in time.
#![cfg(feature = "cli")]

#[path = "common/child.rs"]
mod child;
#[path = "common/serve.rs"]
mod serve;
#[path = "common/servers.rs"]
mod servers;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::post;
use hookverify::{HeaderNames, Method, Signer};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use serve::Serve;

const SECRET: &str = "whsec_forward_test_secret";

/// What the test upstream does with the next request.
#[derive(Debug, Clone, Copy)]
enum Action {
    Status(u16),
    /// Answers only after this long.
    Hang(Duration),
}

/// A test upstream: records every request, follows its script, then answers `201 accepted`.
#[derive(Default)]
struct Upstream {
    script: Mutex<VecDeque<Action>>,
    seen: Mutex<Vec<(HeaderMap, Bytes)>>,
}

impl Upstream {
    fn seen(&self) -> Vec<(HeaderMap, Bytes)> {
        self.seen.lock().expect("not poisoned").clone()
    }
}

async fn upstream(
    State(state): State<Arc<Upstream>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    state
        .seen
        .lock()
        .expect("not poisoned")
        .push((headers, body));
    let action = state.script.lock().expect("not poisoned").pop_front();
    match action {
        Some(Action::Status(code)) => (
            StatusCode::from_u16(code).expect("a status"),
            "upstream says no",
        )
            .into_response(),
        Some(Action::Hang(pause)) => {
            tokio::time::sleep(pause).await;
            (StatusCode::OK, "too late").into_response()
        }
        None => (
            StatusCode::CREATED,
            [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "accepted",
        )
            .into_response(),
    }
}

/// An upstream following `script`, on a free port: its URL and its record.
async fn start_upstream(script: &[Action]) -> (String, Arc<Upstream>) {
    let state = Arc::new(Upstream {
        script: Mutex::new(script.iter().copied().collect()),
        seen: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/events", post(upstream))
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("the bound address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("the test upstream");
    });
    (format!("http://{addr}/events"), state)
}

/// `hookverify serve --forward UPSTREAM --forward-timeout SECONDS`.
fn start_sidecar(upstream: &str, timeout_seconds: u64) -> Serve {
    let secret = format!("test={SECRET}");
    let timeout = timeout_seconds.to_string();
    let forward = ["--forward", upstream, "--forward-timeout", &timeout];
    Serve::start(&[&["--secret", &secret][..], &forward].concat(), &[])
}

fn signed(secret: &str, id: &str, body: &[u8]) -> HeaderMap {
    Signer::new(secret)
        .expect("a signer")
        .sign(id, body)
        .header_map()
        .expect("valid headers")
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_delivery_is_forwarded_once_with_its_headers_and_label() {
    let (url, upstream) = start_upstream(&[]).await;
    let sidecar = start_sidecar(&url, 10);
    let body = br#"{"type":"thread.completed"}"#;
    let mut headers = signed(SECRET, "dlv_fwd_1", body);
    for (name, value) in [
        ("connection", "keep-alive, x-hop"),
        ("x-hop", "only for the next hop"),
        ("keep-alive", "timeout=5"),
        ("x-hookverify-secret-label", "forged-by-the-sender"),
        ("x-custom", "kept"),
        ("content-type", "application/json"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }

    // The control: sent straight to an upstream, the hop-by-hop headers do arrive.
    let (control_url, control) = start_upstream(&[]).await;
    let direct = sidecar.request(http::Method::POST, &control_url, headers.clone(), body);
    assert_eq!(direct.await.0, StatusCode::CREATED);
    let (direct_headers, _) = &control.seen()[0];
    for name in ["x-hop", "keep-alive"] {
        assert!(
            direct_headers.contains_key(name),
            "the control lacks {name}"
        );
    }

    // Through the sidecar: the upstream's answer is relayed.
    assert_eq!(
        sidecar.post("/hooks", headers.clone(), body).await,
        (StatusCode::CREATED, "accepted".into())
    );
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    let (forwarded, forwarded_body) = &seen[0];
    assert_eq!(forwarded_body.as_ref(), body);
    for name in [
        "x-agent-signature",
        "x-agent-timestamp",
        "x-agent-delivery-id",
        "x-custom",
        "content-type",
    ] {
        assert_eq!(
            header(forwarded, name),
            header(&headers, name),
            "{name} is forwarded as sent"
        );
    }
    assert_eq!(header(forwarded, "x-hookverify-secret-label"), Some("test"));
    assert_eq!(
        forwarded
            .get_all("x-hookverify-secret-label")
            .iter()
            .count(),
        1
    );
    for name in ["x-hop", "keep-alive"] {
        assert!(!forwarded.contains_key(name), "{name} was forwarded");
    }

    // The provider's retry of a completed delivery: acknowledged, not forwarded again.
    assert_eq!(
        sidecar.post("/hooks", headers, body).await,
        (StatusCode::OK, "duplicate".into())
    );
    // A forgery and an unsigned request: refused, not forwarded.
    let forged = signed("whsec_not_the_secret", "dlv_fwd_2", body);
    assert_eq!(
        sidecar.post("/hooks", forged, body).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sidecar.post("/hooks", HeaderMap::new(), body).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(upstream.seen().len(), 1, "forwarded once in all");
}

/// A `bearer` or `basic_auth` credential is the shared secret itself: it is checked, then kept
/// from the upstream (and its logs); the rest of the request goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_credential_is_not_forwarded() {
    let (url, upstream) = start_upstream(&[]).await;
    let token = "tok_forward_test_0123456789";
    let secret = format!("test={token}");
    let args = [
        "--scheme",
        "bearer",
        "--signature-header",
        "x-webhook-token",
        "--secret",
        &secret,
        "--forward",
        &url,
    ];
    let sidecar = Serve::start(&args, &[]);
    let body = br#"{"type":"run.finished"}"#;
    let headers = Signer::for_method(Method::Bearer, token)
        .expect("a signer")
        .header_names(HeaderNames {
            signature: HeaderName::from_static("x-webhook-token"),
            ..Method::Bearer.default_header_names()
        })
        .sign("dlv_token_1", body)
        .header_map()
        .expect("valid headers");
    assert!(header(&headers, "x-webhook-token").is_some_and(|value| value.contains(token)));
    assert_eq!(
        sidecar.post("/hooks", headers, body).await,
        (StatusCode::CREATED, "accepted".into())
    );
    let seen = upstream.seen();
    let (forwarded, _) = &seen[0];
    assert!(!forwarded.contains_key("x-webhook-token"), "{forwarded:?}");
    assert_eq!(
        header(forwarded, "x-agent-delivery-id"),
        Some("dlv_token_1")
    );
    assert_eq!(header(forwarded, "x-hookverify-secret-label"), Some("test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_500_releases_and_the_retry_is_forwarded_again() {
    let (url, upstream) = start_upstream(&[Action::Status(500)]).await;
    let sidecar = start_sidecar(&url, 10);
    let body = br#"{"type":"turn.failed"}"#;
    assert_eq!(
        sidecar
            .post("/hooks", signed(SECRET, "dlv_fwd_500", body), body)
            .await,
        (StatusCode::BAD_GATEWAY, "upstream_status".into())
    );
    // The provider's retry, signed again under the same id.
    assert_eq!(
        sidecar
            .post("/hooks", signed(SECRET, "dlv_fwd_500", body), body)
            .await,
        (StatusCode::CREATED, "accepted".into())
    );
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|(headers, _)| header(headers, "x-agent-delivery-id") == Some("dlv_fwd_500"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_upstream_times_out_and_releases() {
    let (url, upstream) = start_upstream(&[Action::Hang(Duration::from_secs(30))]).await;
    let sidecar = start_sidecar(&url, 1);
    let body = br#"{"type":"agent.created"}"#;
    let started = Instant::now();
    assert_eq!(
        sidecar
            .post("/hooks", signed(SECRET, "dlv_fwd_slow", body), body)
            .await,
        (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout".into())
    );
    // Given up at --forward-timeout, well before the provider's 10 s.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        sidecar
            .post("/hooks", signed(SECRET, "dlv_fwd_slow", body), body)
            .await,
        (StatusCode::CREATED, "accepted".into())
    );
    assert_eq!(upstream.seen().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_answers_503_and_releases() {
    // A port that was free a moment ago: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let sidecar = start_sidecar(&format!("http://127.0.0.1:{port}/events"), 10);
    let body = br#"{"type":"webhook.test"}"#;
    for _ in 0..2 {
        // Twice 503, never 429: the first attempt's claim was released.
        assert_eq!(
            sidecar
                .post("/hooks", signed(SECRET, "dlv_fwd_down", body), body)
                .await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "upstream_unavailable".into()
            )
        );
    }
}

#[test]
fn forward_options_are_checked() {
    for (args, expected) in [
        (&["--forward", "ftp://127.0.0.1/"][..], "--forward"),
        (&["--forward-timeout", "5"][..], "--forward"),
        (
            &["--forward", "http://127.0.0.1:1/", "--forward-timeout", "0"][..],
            "--forward-timeout",
        ),
    ] {
        let output = child::command(&["serve", "--addr", "127.0.0.1:0", "--secret", "whsec_x"])
            .args(args)
            .output()
            .expect("run hookverify serve");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// The upstream accepted a delivery while Redis was paused: `serve` answered, and its
/// completion, which timed out, goes on in the background. On SIGTERM it says so and waits
/// for the store rather than exiting with the delivery unrecorded (held for the lease, then
/// open to a replay under a fresh id); it exits once the completion landed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_waits_for_a_completion_retried_in_the_background() {
    let redis = servers::RedisServer::start();
    if !redis.is_owned() {
        eprintln!("skipped: HOOKVERIFY_TEST_REDIS_URL is set, and this test must pause the server");
        return;
    }
    let (url, upstream) = start_upstream(&[Action::Hang(Duration::from_millis(500))]).await;
    let secret = format!("test={SECRET}");
    let sidecar = Serve::start(
        &[
            "--secret",
            &secret,
            "--forward",
            &url,
            "--store",
            redis.url(),
        ],
        &[],
    );
    let body = br#"{"type":"run.finished"}"#;
    let headers = signed(SECRET, "dlv_shutdown", body);

    let sent = tokio::spawn({
        let (url, headers) = (sidecar.url("/hooks"), headers.clone());
        let client = reqwest::Client::new();
        async move {
            let response = client
                .post(url)
                .headers(headers)
                .body(body.to_vec())
                .send()
                .await
                .expect("an answer");
            response.status().as_u16()
        }
    });
    // Claimed and forwarded: the store pauses before the upstream answers, so the completion
    // waits out its 2 s store timeout and goes on in the background.
    let deadline = Instant::now() + Duration::from_secs(10);
    while upstream.seen().is_empty() {
        assert!(Instant::now() < deadline, "never forwarded");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pause = Duration::from_secs(6);
    let paused = Instant::now();
    redis.pause_for(pause);
    assert_eq!(sent.await.expect("the delivery"), 200);

    sidecar.signal("TERM");
    sidecar.stderr_until("waiting for the store to record");
    let (status, _, _) = sidecar.wait();
    assert!(status.success(), "{status:?}");
    assert!(
        paused.elapsed() >= pause,
        "exited {:?} into a {pause:?} pause, before the store could record anything",
        paused.elapsed()
    );

    // The completion landed: a receiver on the same store sees the delivery handled.
    let store = hookverify::store::redis::RedisStore::connect(redis.url())
        .await
        .expect("connect");
    let verifier = hookverify::Verifier::builder()
        .secret("test", SECRET)
        .build()
        .expect("verifier");
    let receiver =
        hookverify::Receiver::<hookverify::store::redis::RedisStore>::new(verifier, store);
    assert!(matches!(
        receiver.receive(&headers, body).await.expect("receive"),
        hookverify::Outcome::Duplicate(hookverify::Duplicate::Completed)
    ));
}
