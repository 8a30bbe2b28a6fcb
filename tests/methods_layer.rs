//! Every signing method under the layer, end to end: a real server on 127.0.0.1, a real HTTP
//! client, requests signed with the crate's `Signer`, and a handler that counts its runs.
//!
//! For each method: a valid delivery runs the handler once (its own 202); a forged one is 401;
//! a stale one (methods with a timestamp) is 401; the same delivery again is 200 without a run;
//! a replay (the same signed bytes under a fresh delivery id) is 200 without a run where the id
//! is not signed, 401 where it is (Standard Webhooks). Methods that dedupe on the delivery id
//! refuse a request without one (400) before its body is read. A copy of a delivery still being
//! handled is 429 with `Retry-After`, whatever key the method claims.
#![cfg(feature = "axum")]

#[path = "common/watched.rs"]
mod watched;

#[path = "common/post.rs"]
mod post;

use post::{post_reply, post_to};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use watched::send_watched;

use axum::Router;
use axum::routing::post;
use hookverify::axum::{VerifiedDelivery, VerifyLayer};
use hookverify::{
    Clock, HeaderNames, ManualClock, MemoryStore, Method, Receiver, Signer, Verifier,
};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

const NOW: i64 = 1_764_000_000;

/// An Ed25519 seed (the `Signer` docs' example), to sign Standard Webhooks `v1a`.
const ED25519_SEED: &str = "whsk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// Another seed (32 bytes of `A`), whose signatures the receiver must refuse.
const ED25519_OTHER_SEED: &str = "whsk_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";

/// What the handler answers for a delivery it ran for: not the layer's 200.
const HANDLED: StatusCode = StatusCode::ACCEPTED;

/// One method's configuration for a test.
struct Case {
    method: Method,
    /// The receiver's secrets (or public keys), by label.
    secrets: Vec<(&'static str, String)>,
    /// The signing keys of genuine deliveries, each with the label of the receiver's secret it
    /// should match (Standard Webhooks: a `whsec_` key for `v1`, an Ed25519 seed for `v1a`).
    keys: Vec<(String, &'static str)>,
    /// Signing keys of the same form but wrong (none for `none`, which checks nothing).
    impostors: Vec<String>,
}

impl Case {
    /// A signer with the first key, and the label it should match.
    fn first_signer(&self, clock: &Arc<ManualClock>) -> (Signer, &'static str) {
        let (key, label) = &self.keys[0];
        (signer(self.method, key, clock), label)
    }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::from_unix(NOW).expect("in range"))
}

fn signer(method: Method, secret: &str, clock: &Arc<ManualClock>) -> Signer {
    Signer::for_method(method, secret)
        .unwrap_or_else(|error| panic!("{method}: signer: {error}"))
        .clock(Arc::clone(clock))
}

fn case(method: Method, clock: &Arc<ManualClock>) -> Case {
    // The right secret, and a wrong one of the same form.
    let (secret, wrong) = match method {
        Method::HmacSha256 | Method::HmacSha1 => ("whsec_layer_agent", "whsec_layer_other"),
        Method::Bearer => ("tok_layer_bearer_0123456789", "tok_layer_bearer_0123456780"),
        Method::BasicAuth => ("hooks:correct-horse", "hooks:battery-staple"),
        Method::None => ("", ""),
        Method::StandardWebhooks => (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        ),
        Method::Stripe => ("whsec_layer_stripe", "whsec_layer_stripe_other"),
        Method::GitHub => ("It's a Secret to Everybody", "It's a Secret to Nobody"),
        Method::Slack => (
            "8f742231b10e8888abcd99yyyzzz85a5",
            "8f742231b10e8888abcd99yyyzzz85a6",
        ),
        other => panic!("{other}: a new method needs its case in this test"),
    };
    match method {
        Method::None => Case {
            method,
            secrets: Vec::new(),
            keys: vec![(String::new(), "unsigned")],
            impostors: Vec::new(),
        },
        Method::StandardWebhooks => {
            let public_key = signer(method, ED25519_SEED, clock)
                .public_key()
                .expect("an Ed25519 signer");
            Case {
                method,
                secrets: vec![("v1", secret.to_owned()), ("v1a", public_key)],
                keys: vec![(secret.to_owned(), "v1"), (ED25519_SEED.to_owned(), "v1a")],
                impostors: vec![wrong.to_owned(), ED25519_OTHER_SEED.to_owned()],
            }
        }
        _ => Case {
            method,
            secrets: vec![("current", secret.to_owned())],
            keys: vec![(secret.to_owned(), "current")],
            impostors: vec![wrong.to_owned()],
        },
    }
}

/// The layer over a memory store on the test clock, for the case's method and secrets.
fn layer(case: &Case, clock: &Arc<ManualClock>) -> VerifyLayer<MemoryStore> {
    let mut verifier = Verifier::builder()
        .method(case.method)
        .clock(Arc::clone(clock));
    for (label, value) in &case.secrets {
        verifier = verifier.secret(*label, value.clone());
    }
    let verifier = verifier
        .build()
        .unwrap_or_else(|error| panic!("{}: verifier: {error}", case.method));
    let store = MemoryStore::with_clock(
        NonZeroUsize::new(10_000).expect("non-zero"),
        Arc::clone(clock),
    )
    .expect("capacity");
    VerifyLayer::new(Receiver::new(verifier, store))
}

/// A handler that counts its runs and answers 202 with the delivery id (`-` for none) and the
/// label of the secret that matched, behind the layer.
fn app(case: &Case, clock: &Arc<ManualClock>, runs: &Arc<AtomicUsize>) -> Router {
    let runs = Arc::clone(runs);
    Router::new()
        .route(
            "/hook",
            post(move |delivery: VerifiedDelivery| async move {
                runs.fetch_add(1, Ordering::SeqCst);
                let id = delivery.verified().delivery_id().unwrap_or("-");
                (HANDLED, format!("{id} {}", delivery.secret_label()))
            }),
        )
        .layer(layer(case, clock))
}

fn headers(signer: &Signer, id: &str, body: &[u8]) -> HeaderMap {
    signer.sign(id, body).header_map().expect("headers")
}

fn stale_headers(signer: &Signer, id: &str, seconds: i64, body: &[u8]) -> HeaderMap {
    signer
        .sign_with_timestamp(id, &seconds.to_string(), body)
        .header_map()
        .expect("headers")
}

/// The method's delivery id header, if it has one.
fn id_header(method: Method) -> Option<HeaderName> {
    method.default_header_names().delivery_id
}

/// `headers` with the delivery id header set to `id`.
fn with_id(method: Method, headers: &HeaderMap, id: &'static str) -> HeaderMap {
    let name = id_header(method).unwrap_or_else(|| panic!("{method} has no id header"));
    let mut headers = headers.clone();
    headers.insert(name, HeaderValue::from_static(id));
    headers
}

/// What the handler answers for a delivery with `id` verified by the secret `label`.
fn handled(method: Method, id: &str, label: &str) -> (StatusCode, String) {
    let id = if id_header(method).is_some() { id } else { "-" };
    (HANDLED, format!("{id} {label}"))
}

fn duplicate() -> (StatusCode, String) {
    (StatusCode::OK, "duplicate".into())
}

fn unauthorized(kind: &str) -> (StatusCode, String) {
    (StatusCode::UNAUTHORIZED, kind.into())
}

/// Runs every check on one method, on its own server; `runs` is compared after each request.
async fn exercise(method: Method) {
    let clock = clock();
    let case = case(method, &clock);
    let runs = Arc::new(AtomicUsize::new(0));
    let addr = post::serve(app(&case, &clock, &runs)).await;
    let mut expected = 0;
    let ran = |expected: usize, what: &str| {
        assert_eq!(
            runs.load(Ordering::SeqCst),
            expected,
            "{method}: handler runs after {what}"
        );
    };

    for (n, (key, label)) in case.keys.iter().enumerate() {
        let signer = &signer(method, key, &clock);
        let body = format!(r#"{{"type":"run.finished","signer":{n}}}"#);
        let body = body.as_bytes();
        let id = ["dlv_valid_0", "dlv_valid_1"][n];
        let valid = headers(signer, id, body);

        // Valid: the handler runs once and answers.
        assert_eq!(
            post_to(addr, &valid, body).await,
            handled(method, id, label),
            "{method}: valid ({label})"
        );
        expected += 1;
        ran(expected, "a valid delivery");

        // The same delivery again: acknowledged, not handled.
        assert_eq!(
            post_to(addr, &valid, body).await,
            duplicate(),
            "{method}: duplicate ({label})"
        );
        ran(expected, "a duplicate");

        // Forged by tampering with the body: only methods that sign the body notice.
        if method.signs_body() {
            assert_eq!(
                post_to(addr, &valid, br#"{"type":"run.tampered"}"#).await,
                unauthorized("signature_mismatch"),
                "{method}: tampered body ({label})"
            );
            ran(expected, "a tampered body");
        }

        // A replay: the same signed bytes under a fresh delivery id.
        match method {
            // The id is not signed; the message key catches the copy.
            Method::HmacSha256 | Method::HmacSha1 | Method::GitHub => {
                let replay = with_id(method, &valid, "dlv_replayed");
                assert_eq!(
                    post_to(addr, &replay, body).await,
                    duplicate(),
                    "{method}: replay"
                );
                ran(expected, "a replay");
            }
            // The id is signed: a new id breaks the signature.
            Method::StandardWebhooks => {
                let replay = with_id(method, &valid, "msg_replayed");
                assert_eq!(
                    post_to(addr, &replay, body).await,
                    unauthorized("signature_mismatch"),
                    "{method}: replay under a new id ({label})"
                );
                ran(expected, "a replay");
            }
            // No id header: a replay is the same request again, caught by the message key.
            Method::Stripe | Method::Slack => {
                assert_eq!(id_header(method), None, "{method} sends no id header");
                assert_eq!(
                    post_to(addr, &valid, body).await,
                    duplicate(),
                    "{method}: replay"
                );
                ran(expected, "a replay");
            }
            // These methods sign nothing: dedupe sees only the id, so the same body and
            // credential under a fresh id is a new delivery, and the handler runs again. (Their
            // docs say so: use them only over TLS.)
            Method::Bearer | Method::BasicAuth | Method::None => {
                let again = with_id(method, &valid, "dlv_fresh_id");
                assert_eq!(
                    post_to(addr, &again, body).await,
                    handled(method, "dlv_fresh_id", label),
                    "{method}: same body under a fresh id"
                );
                expected += 1;
                ran(expected, "a fresh id");
            }
            other => panic!("{other}: a new method needs its replay case"),
        }

        // The provider's retry, signed again a second later.
        clock.advance(time::Duration::seconds(1));
        let retry = headers(signer, id, body);
        if method.dedupes_on_id() {
            // Same id: a duplicate, whatever the new signature.
            assert_eq!(
                post_to(addr, &retry, body).await,
                duplicate(),
                "{method}: re-signed retry ({label})"
            );
        } else if method.has_timestamp() {
            // No id, a new timestamp: a new message, handled again (the method's docs say so:
            // dedupe on the event id in the body where that matters).
            assert_eq!(
                post_to(addr, &retry, body).await,
                handled(method, id, label),
                "{method}: re-signed retry"
            );
            expected += 1;
        }
        ran(expected, "a re-signed retry");
    }

    let body = br#"{"type":"run.started"}"#;
    let (first, first_label) = case.first_signer(&clock);
    let first = &first;

    // Forged with the wrong secret, token or key.
    for wrong in &case.impostors {
        let forged = headers(&signer(method, wrong, &clock), "dlv_forged", body);
        assert_eq!(
            post_to(addr, &forged, body).await,
            unauthorized("signature_mismatch"),
            "{method}: wrong secret"
        );
    }
    ran(expected, "forged deliveries");

    // Stale, either way: out of the window.
    if method.has_timestamp() {
        let now = clock.now().unix_timestamp();
        for (id, at) in [("dlv_old", now - 301), ("dlv_future", now + 301)] {
            assert_eq!(
                post_to(addr, &stale_headers(first, id, at, body), body).await,
                unauthorized("timestamp_out_of_tolerance"),
                "{method}: timestamp {at}, now {now}"
            );
        }
        ran(expected, "stale deliveries");
        // The edge of the window is still inside it.
        let edge = stale_headers(first, "dlv_edge", now - 300, body);
        assert_eq!(
            post_to(addr, &edge, body).await,
            handled(method, "dlv_edge", first_label),
            "{method}: at the edge of the window"
        );
        expected += 1;
        ran(expected, "a delivery at the edge of the window");
    }

    // Standard Webhooks: Svix's header names are read too.
    if method == Method::StandardWebhooks {
        let svix = HeaderNames {
            signature: HeaderName::from_static("svix-signature"),
            timestamp: Some(HeaderName::from_static("svix-timestamp")),
            delivery_id: Some(HeaderName::from_static("svix-id")),
        };
        for ((key, label), id) in case.keys.iter().zip(["msg_svix_v1", "msg_svix_v1a"]) {
            let svix_signer = signer(method, key, &clock).header_names(svix.clone());
            let sent = headers(&svix_signer, id, body);
            assert!(sent.contains_key("svix-signature"), "{sent:?}");
            assert_eq!(
                post_to(addr, &sent, body).await,
                handled(method, id, label),
                "{method}: svix- headers ({label})"
            );
            expected += 1;
        }
        ran(expected, "svix- deliveries");
    }
}

macro_rules! every_method {
    ($($test:ident => $method:expr),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                exercise($method).await;
            }
        )*

        /// A method added to `Method::ALL` without a test here fails this.
        #[test]
        fn every_method_has_its_test() {
            let tested = [$($method),*];
            for method in Method::ALL {
                assert!(tested.contains(&method), "{method} is not exercised");
            }
        }
    };
}

every_method! {
    hmac_sha256 => Method::HmacSha256,
    hmac_sha1 => Method::HmacSha1,
    bearer => Method::Bearer,
    basic_auth => Method::BasicAuth,
    none => Method::None,
    standard_webhooks => Method::StandardWebhooks,
    stripe => Method::Stripe,
    github => Method::GitHub,
    slack => Method::Slack,
}

/// Cheap checks first, for every method: a request refused on its headers (no delivery id where
/// the method dedupes on it, a stale timestamp, a wrong token for the methods whose credential
/// is a header) is answered without its body ever being polled. The last request of each
/// method, valid, shows that the probe does see a read.
#[tokio::test]
async fn refusals_on_the_headers_never_read_the_body() {
    for method in Method::ALL {
        let clock = clock();
        let case = case(method, &clock);
        let runs = Arc::new(AtomicUsize::new(0));
        let app = app(&case, &clock, &runs);
        let (signer, label) = case.first_signer(&clock);
        let signer = &signer;
        let valid = headers(signer, "dlv_cheap", b"");

        let mut refusals: Vec<(HeaderMap, StatusCode, &str)> = Vec::new();
        match id_header(method) {
            Some(name) if method.dedupes_on_id() => {
                let mut no_id = valid.clone();
                assert!(no_id.remove(&name).is_some(), "{method}: {valid:?}");
                refusals.push((no_id, StatusCode::BAD_REQUEST, "missing_header"));
            }
            Some(_) => panic!("{method} has an id header it does not dedupe on"),
            None => assert!(!method.dedupes_on_id(), "{method} dedupes on no header"),
        }
        if method.has_timestamp() {
            let stale = stale_headers(signer, "dlv_stale", NOW - 301, b"");
            refusals.push((
                stale,
                StatusCode::UNAUTHORIZED,
                "timestamp_out_of_tolerance",
            ));
        }
        if !method.signs_body() {
            for wrong in &case.impostors {
                let forged = headers(&self::signer(method, wrong, &clock), "dlv_forged", b"");
                refusals.push((forged, StatusCode::UNAUTHORIZED, "signature_mismatch"));
            }
        }
        for (headers, status, kind) in refusals {
            assert_eq!(
                send_watched(&app, "/hook", &headers).await,
                (status, kind.to_owned(), false),
                "{method}: {kind}"
            );
        }
        assert_eq!(runs.load(Ordering::SeqCst), 0, "{method}");

        let (status, body, polled) = send_watched(&app, "/hook", &valid).await;
        assert_eq!(
            ((status, body), polled),
            (handled(method, "dlv_cheap", label), true),
            "{method}: the valid request"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{method}");
    }
}

/// Without a delivery id, the methods that dedupe on it answer 400 over TCP too, naming only
/// the kind; Stripe and Slack need none.
#[tokio::test]
async fn the_id_is_required_exactly_where_dedupe_needs_it() {
    for method in Method::ALL {
        let clock = clock();
        let case = case(method, &clock);
        let runs = Arc::new(AtomicUsize::new(0));
        let addr = post::serve(app(&case, &clock, &runs)).await;
        let body = br#"{"type":"no.id"}"#;
        let (signer, label) = case.first_signer(&clock);
        let mut sent = headers(&signer, "dlv_no_id", body);
        if let Some(name) = id_header(method) {
            sent.remove(name);
        }
        let reply = post_to(addr, &sent, body).await;
        if method.dedupes_on_id() {
            assert_eq!(
                reply,
                (StatusCode::BAD_REQUEST, "missing_header".into()),
                "{method}"
            );
            assert_eq!(runs.load(Ordering::SeqCst), 0, "{method}");
        } else {
            assert_eq!(reply, handled(method, "-", label), "{method}");
            assert_eq!(runs.load(Ordering::SeqCst), 1, "{method}");
        }
    }
}

/// For every method: a copy of a delivery whose handler is still running is 429 with
/// `Retry-After` (the first attempt may still fail), whichever key the method claims; so is a
/// replay under a fresh id where the message key is claimed. Once the handler is done, the copy
/// is a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_a_delivery_in_flight_is_429_for_every_method() {
    for method in Method::ALL {
        let clock = clock();
        let case = case(method, &clock);
        let started = Arc::new(tokio::sync::Notify::new());
        let finish = Arc::new(tokio::sync::Notify::new());
        let (started_tx, finish_rx) = (Arc::clone(&started), Arc::clone(&finish));
        let app = Router::new()
            .route(
                "/hook",
                post(move |_: VerifiedDelivery| async move {
                    started_tx.notify_one();
                    finish_rx.notified().await;
                    HANDLED
                }),
            )
            .layer(layer(&case, &clock).retry_after(7));
        let addr = post::serve(app).await;
        let (signer, _) = case.first_signer(&clock);
        let body = br#"{"type":"slow"}"#;
        let sent = headers(&signer, "dlv_slow", body);

        let first = tokio::spawn({
            let sent = sent.clone();
            async move { post_reply(addr, "/hook", &sent, body).await }
        });
        started.notified().await;
        let mut copies = vec![sent.clone()];
        if method.dedupes_on_message() && id_header(method).is_some() {
            copies.push(with_id(method, &sent, "dlv_slow_copy"));
        }
        for copy in &copies {
            let reply = post_reply(addr, "/hook", copy, body).await;
            assert_eq!(
                (
                    reply.status,
                    reply.retry_after.as_deref(),
                    reply.body.as_str()
                ),
                (StatusCode::TOO_MANY_REQUESTS, Some("7"), "in_flight"),
                "{method}: {copy:?}"
            );
        }
        finish.notify_one();
        assert_eq!(first.await.expect("first").status, HANDLED, "{method}");
        for copy in &copies {
            assert_eq!(
                post_to(addr, copy, body).await,
                duplicate(),
                "{method}: {copy:?}"
            );
        }
    }
}
