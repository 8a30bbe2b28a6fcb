//! The baseline for the load test: a bare axum handler that reads the body and answers 200,
//! with no verification. `scripts/loadtest.sh` runs it beside `hookverify serve`.

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18788".to_owned());
    let app = Router::new().route(
        "/",
        post(|body: Bytes| async move { body.len().to_string() }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await
}
