//! What the layer reports through the [`metrics`](https://docs.rs/metrics) facade (feature
//! `metrics`, with `axum`), to whatever recorder the application installs (a Prometheus
//! exporter, say). Without the feature these are no-ops.
//!
//! | name | kind | labels |
//! | --- | --- | --- |
//! | `hookverify_deliveries_total` | counter | `outcome`: `accepted`, `duplicate`, `replay`, `in_flight`, `rejected`, `handler_failed` |
//! | `hookverify_rejections_total` | counter | `kind`: an [`ErrorKind`](crate::ErrorKind) name |
//! | `hookverify_secret_matches_total` | counter | `label`: the matched secret's label |
//! | `hookverify_verify_seconds` | histogram | (from the headers' check to the verdict, body reading included) |
//! | `hookverify_store_seconds` | histogram | (one claim, bounded by the store timeout) |
//!
//! Each also carries `endpoint` (the subscription key) when the layer serves several
//! subscriptions, or the name given to [`VerifyLayer::endpoint`](crate::axum::VerifyLayer::endpoint).

#[cfg(feature = "metrics")]
mod enabled {
    use std::sync::Arc;
    use std::time::Duration;

    use metrics::{counter, histogram};

    pub(crate) fn delivery(outcome: &'static str, endpoint: Option<&Arc<str>>) {
        match endpoint {
            Some(endpoint) => counter!("hookverify_deliveries_total", "outcome" => outcome, "endpoint" => Arc::clone(endpoint)).increment(1),
            None => counter!("hookverify_deliveries_total", "outcome" => outcome).increment(1),
        }
    }

    pub(crate) fn rejection(kind: &'static str, endpoint: Option<&Arc<str>>) {
        delivery("rejected", endpoint);
        match endpoint {
            Some(endpoint) => counter!("hookverify_rejections_total", "kind" => kind, "endpoint" => Arc::clone(endpoint)).increment(1),
            None => counter!("hookverify_rejections_total", "kind" => kind).increment(1),
        }
    }

    pub(crate) fn secret_match(label: &Arc<str>, endpoint: Option<&Arc<str>>) {
        let label = Arc::clone(label);
        match endpoint {
            Some(endpoint) => counter!("hookverify_secret_matches_total", "label" => label, "endpoint" => Arc::clone(endpoint)).increment(1),
            None => counter!("hookverify_secret_matches_total", "label" => label).increment(1),
        }
    }

    pub(crate) fn verify_seconds(spent: Duration, endpoint: Option<&Arc<str>>) {
        match endpoint {
            Some(endpoint) => {
                histogram!("hookverify_verify_seconds", "endpoint" => Arc::clone(endpoint))
                    .record(spent)
            }
            None => histogram!("hookverify_verify_seconds").record(spent),
        }
    }

    pub(crate) fn store_seconds(spent: Duration, endpoint: Option<&Arc<str>>) {
        match endpoint {
            Some(endpoint) => {
                histogram!("hookverify_store_seconds", "endpoint" => Arc::clone(endpoint))
                    .record(spent)
            }
            None => histogram!("hookverify_store_seconds").record(spent),
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod enabled {
    use std::sync::Arc;
    use std::time::Duration;

    pub(crate) fn delivery(_: &'static str, _: Option<&Arc<str>>) {}
    pub(crate) fn rejection(_: &'static str, _: Option<&Arc<str>>) {}
    pub(crate) fn secret_match(_: &Arc<str>, _: Option<&Arc<str>>) {}
    pub(crate) fn verify_seconds(_: Duration, _: Option<&Arc<str>>) {}
    pub(crate) fn store_seconds(_: Duration, _: Option<&Arc<str>>) {}
}

pub(crate) use enabled::*;
