//! What the layer logs, read back from a `tracing` subscriber writing to a buffer: about a
//! rejection, the kind, the delivery id, the endpoint and the client address, never the secret
//! or a signature; about a replay, both delivery ids.
//!
//! The subscriber is global (the server runs on other threads) and installed once for the
//! binary; each test reads only the lines that carry its own delivery ids.
#![cfg(feature = "axum")]

#[path = "common/post.rs"]
mod post;

use post::post_to;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::routing::post;
use hookverify::axum::{ClientAddr, VerifiedDelivery, VerifyLayer};
use hookverify::{ManualClock, MemoryStore, Receiver, Signer, Verifier};
use http::{Request, StatusCode};
use tower::util::MapRequestLayer;

const NOW: i64 = 1_764_000_000;
const SECRET: &str = "whsec_logs_secret_never_printed";

/// Everything the subscriber writes.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .expect("not poisoned")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }
}

/// The buffer the binary's one subscriber writes to, at `info` (the default level).
fn logs() -> &'static Buffer {
    static LOGS: OnceLock<Buffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .init();
        buffer
    })
}

/// A server with the layer on `/hook` for `endpoint` (its handler answers `ok`), on a clock
/// standing at [`NOW`].
async fn serve(endpoint: &'static str) -> (SocketAddr, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::from_unix(NOW).expect("in range"));
    let verifier = Verifier::builder()
        .secret("current", SECRET)
        .clock(Arc::clone(&clock))
        .build()
        .expect("verifier");
    let store = MemoryStore::with_clock(
        NonZeroUsize::new(1_000).expect("non-zero"),
        Arc::clone(&clock),
    )
    .expect("capacity");
    let layer = VerifyLayer::new(Receiver::new(verifier, store)).endpoint(endpoint);
    // What `serve` does for each connection: the peer's address, for the layer's logs.
    let client: SocketAddr = "203.0.113.7:4242".parse().expect("address");
    let app = Router::new()
        .route(
            "/hook",
            post(|_: VerifiedDelivery| async { "ok" }).route_layer(layer),
        )
        .layer(MapRequestLayer::new(move |mut request: Request<Body>| {
            request.extensions_mut().insert(ClientAddr(client));
            request
        }));
    let addr = post::serve(app).await;
    (addr, clock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_is_logged_with_its_context_and_no_secret() {
    let buffer = logs();
    let (addr, clock) = serve("agent-prod").await;
    let genuine = Signer::new(SECRET)
        .expect("signer")
        .clock(Arc::clone(&clock));
    let forger = Signer::new("whsec_a_guess")
        .expect("signer")
        .clock(Arc::clone(&clock));
    let body = br#"{"type":"thread.completed"}"#;
    let forged = forger.sign("dlv_forged_7", body);
    let expected = genuine.sign("dlv_forged_7", body);
    assert_ne!(forged.signature(), expected.signature());
    let (status, answer) = post_to(addr, &forged.header_map().expect("headers"), body).await;
    assert_eq!(
        (status, answer.as_str()),
        (StatusCode::UNAUTHORIZED, "signature_mismatch")
    );
    let stale = genuine
        .sign_with_timestamp("dlv_stale_8", &(NOW - 3_600).to_string(), body)
        .header_map()
        .expect("headers");
    assert_eq!(
        post_to(addr, &stale, body).await.0,
        StatusCode::UNAUTHORIZED
    );

    let logs = buffer.text();
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("webhook rejected"))
        .filter(|line| line.contains("agent-prod"))
        .collect();
    assert_eq!(warnings.len(), 2, "{logs}");
    for (line, kind, id) in [
        (warnings[0], "signature_mismatch", "dlv_forged_7"),
        (warnings[1], "timestamp_out_of_tolerance", "dlv_stale_8"),
    ] {
        for part in [
            format!("kind=\"{kind}\""),
            format!("delivery_id=\"{id}\""),
            "endpoint=\"agent-prod\"".to_owned(),
            "client=203.0.113.7:4242".to_owned(),
        ] {
            assert!(line.contains(&part), "{part} missing from: {line}");
        }
    }
    // Neither the secret, nor the signature sent, nor the one expected, nor their hex alone.
    for secret in [
        SECRET,
        forged.signature(),
        expected.signature(),
        forged.signature().trim_start_matches("sha256="),
        expected.signature().trim_start_matches("sha256="),
    ] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
}

/// A byte-for-byte replay under a fresh id is dropped (200 `duplicate`, the handler does not
/// run) and logged at `info` with both ids: its own and the one whose handler ran. The
/// provider's retry of the original is logged with its id alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_is_logged_with_both_delivery_ids() {
    let buffer = logs();
    let (addr, clock) = serve("agent-replays").await;
    let signer = Signer::new(SECRET).expect("signer").clock(clock);
    let body = br#"{"type":"run.finished","run":"r_replayed"}"#;
    let original = signer
        .sign("dlv_original_9", body)
        .header_map()
        .expect("headers");
    let answer = post_to(addr, &original, body).await;
    assert_eq!((answer.0, answer.1.as_str()), (StatusCode::OK, "ok"));

    let mut replay = original.clone();
    replay.insert(
        "x-agent-delivery-id",
        http::HeaderValue::from_static("dlv_replayed_10"),
    );
    let answer = post_to(addr, &replay, body).await;
    assert_eq!((answer.0, answer.1.as_str()), (StatusCode::OK, "duplicate"));
    let answer = post_to(addr, &original, body).await;
    assert_eq!((answer.0, answer.1.as_str()), (StatusCode::OK, "duplicate"));

    let logs = buffer.text();
    let dropped: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("duplicate delivery not handled again"))
        .filter(|line| line.contains("dlv_replayed_10") || line.contains("dlv_original_9"))
        .collect();
    assert_eq!(dropped.len(), 2, "{logs}");
    for part in [
        " INFO ",
        "delivery_id=\"dlv_replayed_10\"",
        "completed_by=\"dlv_original_9\"",
        "duplicate=\"replay\"",
    ] {
        assert!(
            dropped[0].contains(part),
            "{part} missing from: {}",
            dropped[0]
        );
    }
    for part in [
        " INFO ",
        "delivery_id=\"dlv_original_9\"",
        "duplicate=\"completed\"",
    ] {
        assert!(
            dropped[1].contains(part),
            "{part} missing from: {}",
            dropped[1]
        );
    }
    assert!(!dropped[1].contains("completed_by"), "{}", dropped[1]);
}
