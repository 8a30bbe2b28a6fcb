//! Through the layer, on a real `redis-server` behind a TCP proxy that stalls: once the handler
//! succeeded, a completion the store cannot record never turns into a release (issue 13, case
//! 4). Before the redesign the guard released both keys when `complete` failed, and a replay
//! under a fresh id a second later ran the handler again.
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
use http::StatusCode;

use proxy::StallProxy;
use servers::RedisServer;

const SECRET: &str = "whsec_complete";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_completion_lost_to_a_stalled_store_never_releases() {
    let server = RedisServer::start();
    let proxy = StallProxy::in_front_of(server.url());
    let store = RedisStore::connect(&proxy.url_for(server.url()))
        .await
        .expect("connect")
        .timeout(Duration::from_secs(10));
    let verifier = Verifier::builder()
        .secret("current", SECRET)
        .build()
        .expect("verifier");
    let receiver = Receiver::builder(verifier, store)
        .store_timeout(Duration::from_millis(300))
        .build()
        .expect("receiver");

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
