//! A webhook endpoint in an axum app: [`VerifyLayer`] in front of the route, the handler takes a
//! [`VerifiedDelivery`].
//!
//! ```text
//! WEBHOOK_SECRET=whsec_example cargo run --example axum --features axum
//! # in another shell:
//! echo '{"type":"ping"}' > body.json
//! HOOKVERIFY_SECRET=whsec_example cargo run -q --features cli -- sign --file body.json \
//!   | curl -sS -H @- --data-binary @body.json http://127.0.0.1:3000/webhooks
//! ```
//!
//! The layer does all the checking before the handler runs: headers (400 if missing or
//! malformed), the timestamp window (401), the body limit (413), the signature (401) and the
//! dedupe claim (a copy of a handled delivery gets 200 without running the handler again; a
//! copy of one in flight gets 429). The handler's answer decides the claim: a 2xx completes it,
//! anything else releases it so the provider's retry is handled.

use std::num::NonZeroUsize;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use hookverify::axum::{VerifiedDelivery, VerifyLayer};
use hookverify::{MemoryStore, Receiver, Verifier};
use tokio::net::TcpListener;

/// Runs once per genuine, fresh, new delivery.
async fn on_delivery(delivery: VerifiedDelivery) -> StatusCode {
    println!(
        "delivery {} signed at {:?} with secret {:?}: {} bytes",
        delivery.delivery_id(),
        delivery.timestamp(),
        delivery.secret_label(),
        delivery.body().len(),
    );
    // Do the work here (or queue it). Return an error status if it failed: the claim is then
    // released and the provider's retry is handled instead of being dropped as a duplicate.
    StatusCode::NO_CONTENT
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The layer logs rejections (kind, client, delivery id) at warn and duplicates at info,
    // under the target `hookverify`: a subscriber prints them.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .init();
    let secret = std::env::var("WEBHOOK_SECRET")
        .map_err(|_| "set WEBHOOK_SECRET to the secret the provider signs with")?;

    // During a rotation, add the new secret beside the old one: deliveries signed with either
    // verify, and `secret_label()` tells which one matched.
    let verifier = Verifier::builder().secret("current", secret).build()?;
    // One process: the in-memory store. Two entries per delivery, kept ~630 s by default.
    let store = MemoryStore::new(NonZeroUsize::new(100_000).ok_or("capacity must be non-zero")?)?;
    let receiver = Receiver::<MemoryStore>::new(verifier, store);
    // Kept for the shutdown: see the end.
    let background = receiver.clone();

    let app = Router::new()
        // The layer wraps this POST handler only: other paths and methods get a plain 404 or
        // 405, unverified, and `/health` stays open.
        .route(
            "/webhooks",
            post(on_delivery).route_layer(VerifyLayer::new(receiver).max_body(256 * 1024)),
        )
        .route("/health", get(|| async { "ok" }));

    let listener = TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}/webhooks", listener.local_addr()?);
    // Ctrl-C: stop accepting, finish the requests in flight.
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // Then let the store record what is still retried in the background (a completion or a
    // release it could not take in time; at most a lease): exiting sooner leaves those claims
    // to their lease.
    background.settled().await;
    Ok(())
}
