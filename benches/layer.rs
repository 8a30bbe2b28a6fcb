//! The layer's cost in process: the same handler behind `VerifyLayer` (verify, claim in a
//! memory store, complete) and bare, driven with tower's `oneshot`, 1 KiB bodies.
//!
//! Run: `cargo bench --features axum --bench layer`

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::post;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hookverify::axum::{VerifiedDelivery, VerifyLayer};
use hookverify::{ManualClock, MemoryStore, Receiver, Signer, Verifier};
use http::Request;
use tower::ServiceExt;

const SECRET: &str = "whsec_layer_bench";
const BODY_LEN: usize = 1024;

fn bench_layer(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let clock = Arc::new(ManualClock::from_unix(1_764_000_000).expect("in range"));
    let verifier = Verifier::builder()
        .secret("bench", SECRET)
        .clock(Arc::clone(&clock))
        .build()
        .expect("verifier");
    let store = MemoryStore::with_clock(
        NonZeroUsize::new(4_000_000).expect("non-zero"),
        Arc::clone(&clock),
    )
    .expect("capacity");
    let signer = Signer::new(SECRET)
        .expect("signer")
        .clock(Arc::clone(&clock));
    let body = Bytes::from(vec![b'x'; BODY_LEN]);

    let layered = Router::new()
        .route(
            "/",
            post(|d: VerifiedDelivery| async move { black_box(d.body().len()).to_string() }),
        )
        .layer(VerifyLayer::new(Receiver::new(verifier, store)));
    let bare = Router::new().route(
        "/",
        post(|b: Bytes| async move { black_box(b.len()).to_string() }),
    );

    let next_id = AtomicU64::new(0);
    let signed_request = || {
        // A new delivery each time: the layer verifies, claims and completes it.
        let id = format!("dlv_{}", next_id.fetch_add(1, Ordering::Relaxed));
        let mut request = Request::post("/")
            .body(Body::from(body.clone()))
            .expect("request");
        request
            .headers_mut()
            .extend(signer.sign(&id, &body).header_map().expect("headers"));
        request
    };

    let mut group = c.benchmark_group("layer_1KiB");
    group.throughput(Throughput::Bytes(BODY_LEN as u64));
    group.bench_function("bare_handler", |b| {
        b.iter_batched(
            signed_request,
            |request| {
                runtime
                    .block_on(bare.clone().oneshot(request))
                    .expect("infallible")
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("verify_layer_fresh", |b| {
        b.iter_batched(
            signed_request,
            |request| {
                let response = runtime
                    .block_on(layered.clone().oneshot(request))
                    .expect("infallible");
                assert!(response.status().is_success());
                response
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_layer);
criterion_main!(benches);
