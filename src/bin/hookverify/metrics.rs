//! `serve --metrics ADDR`: the layer's `hookverify_*` counters and histograms in the Prometheus
//! text format at `http://ADDR/metrics`.
//!
//! `metrics-exporter-prometheus` records and renders; its recorder is served here by a route on
//! the same bounded accept loop as the deliveries (`server.rs`: header and idle timeouts, a cap
//! on connections) rather than by the exporter's own HTTP listener, which would bring a second
//! HTTP server without those bounds, and which starts only inside a runtime it spawns onto.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;

use crate::Failure;
use crate::server::{self, Limits};

/// Histogram buckets, in seconds: from a verification in memory to a store at its timeout.
const BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// How often the recorder's histograms are drained (the exporter's own default).
const UPKEEP: Duration = Duration::from_secs(5);

/// Installs the recorder for the whole process, binds `addr` and serves `/metrics` on it
/// until the process ends. Returns the bound address (`addr` may have port 0).
pub(crate) async fn start(addr: SocketAddr) -> Result<SocketAddr, Failure> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
        .map_err(|error| Failure::runtime(format!("--metrics: {error}")))?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|_| Failure::runtime("--metrics: a metrics recorder is already installed"))?;
    describe();

    let listener = TcpListener::bind(addr).await.map_err(|error| {
        Failure::runtime(format!("--metrics: could not listen on {addr}: {error}"))
    })?;
    let local = listener.local_addr().map_err(|error| {
        Failure::runtime(format!(
            "--metrics: could not read the bound address: {error}"
        ))
    })?;
    if !local.ip().is_loopback() {
        tracing::warn!(
            "--metrics listens on {}, not a loopback address: anyone who can reach it can read \
             the delivery counts and secret labels",
            local.ip()
        );
    }

    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let router = Router::new().route("/metrics", get(move || render(handle.clone())));
    let limits = Limits {
        header_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(30),
        max_connections: 16,
        max_large_bodies: 1,
        max_body: 0,
    };
    // Stops with the runtime, once the deliveries are done.
    tokio::spawn(server::serve(
        listener,
        router,
        limits,
        std::future::pending(),
    ));
    Ok(local)
}

async fn render(handle: PrometheusHandle) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
}

/// The `# HELP` lines.
fn describe() {
    metrics::describe_counter!(
        "hookverify_deliveries_total",
        "Requests to a webhook endpoint, by outcome: accepted, duplicate, replay, in_flight, \
         rejected, handler_failed"
    );
    metrics::describe_counter!(
        "hookverify_rejections_total",
        "Rejected requests, by error kind"
    );
    metrics::describe_counter!(
        "hookverify_secret_matches_total",
        "Verified deliveries, by the label of the secret that matched"
    );
    metrics::describe_histogram!(
        "hookverify_verify_seconds",
        metrics::Unit::Seconds,
        "From the headers' check to the verdict, body reading included"
    );
    metrics::describe_histogram!(
        "hookverify_store_seconds",
        metrics::Unit::Seconds,
        "One claim in the dedupe store"
    );
}
