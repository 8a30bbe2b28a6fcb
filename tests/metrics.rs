//! What the layer reports through the `metrics` facade, counted exactly after a scripted run
//! over real TCP: accepted, duplicate, replayed, in-flight, failed, forged and stale deliveries.
//!
//! A recorder is global to the process, so this binary holds one test.
#![cfg(all(feature = "axum", feature = "metrics"))]

#[path = "common/post.rs"]
mod post;

use post::post_to;
use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use hookverify::axum::{VerifiedDelivery, VerifyLayer};
use hookverify::{ManualClock, MemoryStore, Receiver, Signer, Verifier};
use http::StatusCode;
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tokio::sync::{Notify, Semaphore};

const NOW: i64 = 1_764_000_000;
const CURRENT: &str = "whsec_metrics_current";
const OLD: &str = "whsec_metrics_old";

/// `name{labels}` for a metric key, labels sorted.
fn describe(name: &str, labels: impl Iterator<Item = (String, String)>) -> String {
    let mut labels: Vec<String> = labels.map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_outcome_is_counted_once() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this process");

    let clock = Arc::new(ManualClock::from_unix(NOW).expect("in range"));
    let verifier = Verifier::builder()
        .secret("current", CURRENT)
        .secret("old", OLD)
        .clock(Arc::clone(&clock))
        .build()
        .expect("verifier");
    let store = MemoryStore::with_clock(
        NonZeroUsize::new(1_000).expect("non-zero"),
        Arc::clone(&clock),
    )
    .expect("capacity");
    let layer = VerifyLayer::new(Receiver::new(verifier, store)).endpoint("agent");
    // `hold` waits for the test (a delivery in flight); `fail` answers 500.
    let entered = Arc::new(Notify::new());
    let gate = Arc::new(Semaphore::new(0));
    let (entered_in, gate_in) = (Arc::clone(&entered), Arc::clone(&gate));
    let app = Router::new().route(
        "/hook",
        post(move |delivery: VerifiedDelivery| {
            let (entered, gate) = (Arc::clone(&entered_in), Arc::clone(&gate_in));
            async move {
                match delivery.body().as_ref() {
                    b"hold" => {
                        entered.notify_one();
                        let _open = gate.acquire().await.expect("never closed");
                        StatusCode::OK
                    }
                    b"fail" => StatusCode::INTERNAL_SERVER_ERROR,
                    _ => StatusCode::OK,
                }
            }
        })
        .route_layer(layer),
    );
    let addr = post::serve(app).await;

    let current = Signer::new(CURRENT)
        .expect("signer")
        .clock(Arc::clone(&clock));
    let old = Signer::new(OLD).expect("signer").clock(Arc::clone(&clock));
    let forger = Signer::new("whsec_guess")
        .expect("signer")
        .clock(Arc::clone(&clock));
    let sign = |signer: &Signer, id: &str, body: &[u8]| {
        signer.sign(id, body).header_map().expect("headers")
    };

    // Accepted, then a duplicate of it, then a replay of its bytes under another id.
    let first = sign(&current, "dlv_1", b"first");
    assert_eq!(post_to(addr, &first, b"first").await.0, StatusCode::OK);
    assert_eq!(
        post_to(addr, &first, b"first").await,
        (StatusCode::OK, "duplicate".into())
    );
    let mut replay = first.clone();
    replay.insert(
        "x-agent-delivery-id",
        "dlv_replayed".parse().expect("value"),
    );
    assert_eq!(
        post_to(addr, &replay, b"first").await,
        (StatusCode::OK, "duplicate".into())
    );

    // In flight: a copy arrives while the first is being handled.
    let hold = sign(&current, "dlv_hold", b"hold");
    let held = {
        let hold = hold.clone();
        tokio::spawn(async move { post_to(addr, &hold, b"hold").await.0 })
    };
    entered.notified().await;
    assert_eq!(
        post_to(addr, &hold, b"hold").await,
        (StatusCode::TOO_MANY_REQUESTS, "in_flight".into())
    );
    gate.add_permits(1);
    assert_eq!(held.await.expect("joined"), StatusCode::OK);

    // A handler that fails, on the old secret.
    let fail = sign(&old, "dlv_fail", b"fail");
    assert_eq!(
        post_to(addr, &fail, b"fail").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );

    // Forged and stale.
    let forged = sign(&forger, "dlv_forged", b"forged");
    assert_eq!(
        post_to(addr, &forged, b"forged").await,
        (StatusCode::UNAUTHORIZED, "signature_mismatch".into())
    );
    let stale = current
        .sign_with_timestamp("dlv_stale", &(NOW - 301).to_string(), b"stale")
        .header_map()
        .expect("headers");
    assert_eq!(
        post_to(addr, &stale, b"stale").await,
        (
            StatusCode::UNAUTHORIZED,
            "timestamp_out_of_tolerance".into()
        )
    );

    let mut counters = BTreeMap::new();
    let mut histograms = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels = key
            .key()
            .labels()
            .map(|label| (label.key().to_owned(), label.value().to_owned()));
        let name = describe(key.key().name(), labels);
        match (key.kind(), value) {
            (MetricKind::Counter, DebugValue::Counter(count)) => {
                counters.insert(name, count);
            }
            (MetricKind::Histogram, DebugValue::Histogram(samples)) => {
                histograms.insert(name, samples.len());
            }
            other => panic!("unexpected metric {name}: {other:?}"),
        }
    }
    let expected: BTreeMap<String, u64> = [
        (
            "hookverify_deliveries_total{endpoint=agent,outcome=accepted}",
            2,
        ),
        (
            "hookverify_deliveries_total{endpoint=agent,outcome=duplicate}",
            1,
        ),
        (
            "hookverify_deliveries_total{endpoint=agent,outcome=replay}",
            1,
        ),
        (
            "hookverify_deliveries_total{endpoint=agent,outcome=in_flight}",
            1,
        ),
        (
            "hookverify_deliveries_total{endpoint=agent,outcome=handler_failed}",
            1,
        ),
        (
            "hookverify_deliveries_total{endpoint=agent,outcome=rejected}",
            2,
        ),
        (
            "hookverify_rejections_total{endpoint=agent,kind=signature_mismatch}",
            1,
        ),
        (
            "hookverify_rejections_total{endpoint=agent,kind=timestamp_out_of_tolerance}",
            1,
        ),
        // Every verified delivery, whatever the store said of it afterwards.
        (
            "hookverify_secret_matches_total{endpoint=agent,label=current}",
            5,
        ),
        (
            "hookverify_secret_matches_total{endpoint=agent,label=old}",
            1,
        ),
    ]
    .into_iter()
    .map(|(name, count)| (name.to_owned(), count))
    .collect();
    assert_eq!(counters, expected);
    // One sample per verified delivery: the six that passed the check, and their six claims.
    let samples: BTreeMap<String, usize> = [
        ("hookverify_store_seconds{endpoint=agent}", 6),
        ("hookverify_verify_seconds{endpoint=agent}", 6),
    ]
    .into_iter()
    .map(|(name, count)| (name.to_owned(), count))
    .collect();
    assert_eq!(histograms, samples);
}
