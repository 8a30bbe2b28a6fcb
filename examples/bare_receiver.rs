//! The baselines for the load test (`scripts/loadtest.sh`): a bare axum handler that reads the
//! body and answers 200, with no verification; and, with `--layer SECRET`, the same handler
//! behind `VerifyLayer` (verify, memory-store dedupe of CAPACITY keys, default 500,000), to
//! measure the layer alone.
//!
//! `cargo run --release --features axum --example bare_receiver -- 127.0.0.1:18788 [--layer SECRET [CAPACITY]]`

use std::num::NonZeroUsize;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use hookverify::axum::{VerifiedDelivery, VerifyLayer};
use hookverify::{MemoryStore, Receiver, Verifier};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18788".to_owned());
    let app = match (args.next().as_deref(), args.next()) {
        (Some("--layer"), Some(secret)) => {
            // `serve`'s default capacity unless given.
            let capacity: NonZeroUsize = args.next().as_deref().unwrap_or("500000").parse()?;
            let verifier = Verifier::builder().secret("load", secret).build()?;
            let store = MemoryStore::new(capacity)?;
            let layer = VerifyLayer::new(Receiver::new(verifier, store));
            Router::new().route(
                "/",
                post(|d: VerifiedDelivery| async move { d.body().len().to_string() })
                    .route_layer(layer),
            )
        }
        _ => Router::new().route(
            "/",
            post(|body: Bytes| async move { body.len().to_string() }),
        ),
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
