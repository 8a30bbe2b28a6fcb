//! `serve --metrics`: the Prometheus page scraped after a scripted run of accepted, duplicate,
//! replayed, forged and stale deliveries, every counter asserted.
//!
//! A delivery in flight is not scripted here: `serve`'s handler only prints a line, so no copy
//! can arrive while it runs. `tests/metrics.rs` counts it, with a handler that waits.
#![cfg(feature = "cli")]

#[path = "common/child.rs"]
mod child;
#[path = "common/serve.rs"]
mod serve;

use std::collections::BTreeMap;

use hookverify::Signer;
use http::{HeaderMap, StatusCode};
use serve::Serve;

const SECRET: &str = "whsec_cli_metrics_current";
const OLD: &str = "whsec_cli_metrics_old";

fn signed(secret: &str, id: &str, body: &[u8]) -> HeaderMap {
    Signer::new(secret)
        .expect("a signer")
        .sign(id, body)
        .header_map()
        .expect("valid headers")
}

/// `name{k="v",...}` (labels sorted) to value, for every sample on a Prometheus text page.
pub(crate) fn samples(page: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in page.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (key, value) = line.rsplit_once(' ').expect("NAME VALUE");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        let key = match key.split_once('{') {
            Some((name, labels)) => {
                let labels = labels.strip_suffix('}').expect("closing brace");
                let mut labels: Vec<&str> = labels.split(',').collect();
                labels.sort_unstable();
                format!("{name}{{{}}}", labels.join(","))
            }
            None => key.to_owned(),
        };
        samples.insert(key, value);
    }
    samples
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_metrics_counts_every_outcome() {
    let current = format!("current={SECRET}");
    let old = format!("old={OLD}");
    let server = Serve::start(
        &[
            "--secret",
            &current,
            "--secret",
            &old,
            "--metrics",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert!(server.metrics.is_some(), "{:?}", server.banner);
    assert_ne!(server.metrics, Some(server.addr));

    // Accepted (on each secret), a duplicate, a replay of the first one's bytes.
    let body = br#"{"type":"thread.completed"}"#;
    let first = signed(SECRET, "dlv_m1", body);
    assert_eq!(
        server.post("/", first.clone(), body).await.0,
        StatusCode::OK
    );
    let second = signed(OLD, "dlv_m2", b"second");
    assert_eq!(server.post("/", second, b"second").await.0, StatusCode::OK);
    assert_eq!(
        server.post("/", first.clone(), body).await,
        (StatusCode::OK, "duplicate".into())
    );
    let mut replay = first;
    replay.insert("x-agent-delivery-id", "dlv_m3".parse().expect("a value"));
    assert_eq!(
        server.post("/", replay, body).await,
        (StatusCode::OK, "duplicate".into())
    );

    // Forged, stale (an hour old), and one without any header.
    let forged = signed("whsec_a_guess", "dlv_forged", body);
    assert_eq!(
        server.post("/", forged, body).await,
        (StatusCode::UNAUTHORIZED, "signature_mismatch".into())
    );
    let an_hour_ago =
        (hookverify::time::OffsetDateTime::now_utc().unix_timestamp() - 3_600).to_string();
    let stale = Signer::new(SECRET)
        .expect("a signer")
        .sign_with_timestamp("dlv_stale", &an_hour_ago, body)
        .header_map()
        .expect("valid headers");
    assert_eq!(
        server.post("/", stale, body).await,
        (
            StatusCode::UNAUTHORIZED,
            "timestamp_out_of_tolerance".into()
        )
    );
    assert_eq!(
        server.post("/", HeaderMap::new(), body).await,
        (StatusCode::BAD_REQUEST, "missing_header".into())
    );

    let page = server.scrape().await;
    let samples = samples(&page);
    let counters: BTreeMap<&str, f64> = samples
        .iter()
        .filter(|(name, _)| name.contains("_total"))
        .map(|(name, value)| (name.as_str(), *value))
        .collect();
    let expected: BTreeMap<&str, f64> = [
        (r#"hookverify_deliveries_total{outcome="accepted"}"#, 2.0),
        (r#"hookverify_deliveries_total{outcome="duplicate"}"#, 1.0),
        (r#"hookverify_deliveries_total{outcome="replay"}"#, 1.0),
        (r#"hookverify_deliveries_total{outcome="rejected"}"#, 3.0),
        (r#"hookverify_rejections_total{kind="missing_header"}"#, 1.0),
        (
            r#"hookverify_rejections_total{kind="signature_mismatch"}"#,
            1.0,
        ),
        (
            r#"hookverify_rejections_total{kind="timestamp_out_of_tolerance"}"#,
            1.0,
        ),
        (r#"hookverify_secret_matches_total{label="current"}"#, 3.0),
        (r#"hookverify_secret_matches_total{label="old"}"#, 1.0),
    ]
    .into_iter()
    .collect();
    assert_eq!(counters, expected, "{page}");
    // One sample per verified delivery in each histogram.
    for histogram in ["hookverify_verify_seconds", "hookverify_store_seconds"] {
        assert_eq!(
            samples.get(&format!("{histogram}_count")),
            Some(&4.0),
            "{page}"
        );
        assert!(
            samples.contains_key(&format!("{histogram}_bucket{{le=\"+Inf\"}}")),
            "{page}"
        );
    }
    assert!(
        page.contains("# HELP hookverify_deliveries_total"),
        "{page}"
    );

    // Only /metrics is served there.
    let other = format!("http://{}/", server.metrics.expect("bound"));
    let (status, _) = server
        .request(http::Method::GET, &other, HeaderMap::new(), b"")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn a_metrics_address_in_use_fails_at_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let output = serve::command(
        &["serve", "--addr", "127.0.0.1:0", "--metrics", &addr],
        &[("HOOKVERIFY_SECRET", SECRET)],
    )
    .output()
    .expect("run hookverify");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("--metrics: could not listen on {addr}")),
        "{stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");
}
