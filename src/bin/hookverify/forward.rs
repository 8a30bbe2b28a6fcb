//! `serve --forward URL`: a verifying sidecar. Verified, deduplicated deliveries are POSTed to
//! the upstream with their original headers and body, plus `X-Hookverify-Secret-Label` (the
//! label of the secret that matched), so that a receiver in any language needs no signature
//! code.
//!
//! The forward is the handler behind the verifying layer, so the layer's protocol decides what
//! a delivery becomes: an upstream 2xx is relayed (status, content type and body) and completes
//! the claim; anything else releases it and answers a 5xx, so that the provider retries and the
//! retry is forwarded again:
//!
//! | upstream | answer |
//! | --- | --- |
//! | 2xx | the upstream's status, content type and body (up to 64 KiB) |
//! | any other status | 502 `upstream_status` |
//! | no connection, a reset, an unreadable answer | 503 `upstream_unavailable` |
//! | no complete answer within `--forward-timeout` (default 10 s) | 504 `upstream_timeout` |
//!
//! Headers are forwarded as a proxy forwards them (RFC 9110, section 7.6.1): the hop-by-hop
//! ones (`Connection` and every header it names, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`,
//! `Transfer-Encoding`, `Upgrade`) are dropped, `Host` and `Content-Length` are the client's
//! own, and any `X-Hookverify-*` header a sender set is dropped before the label is added: only
//! this process speaks under that prefix. The client is `reqwest`, as for `send`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, post};
use clap::Args;
use hookverify::axum::VerifiedDelivery;
use hookverify::{Method, Verifier};

/// The header that carries the matched secret's label to the upstream.
pub(crate) const LABEL_HEADER: &str = "x-hookverify-secret-label";

/// How much of the upstream's answer is relayed.
const MAX_RELAYED_BODY: usize = 64 * 1024;

/// Headers that concern one connection, not the message (RFC 9110, 7.6.1), and the two the
/// client sets itself.
const NOT_FORWARDED: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// The `serve` options of the sidecar.
#[derive(Debug, Args)]
pub(crate) struct ForwardArgs {
    /// Forward each verified, deduplicated delivery to this URL (http:// or https://) instead
    /// of printing it: the original headers (not a bearer or basic_auth credential, which is
    /// the secret itself) and body, plus X-Hookverify-Secret-Label. The
    /// upstream's 2xx is relayed and completes the delivery; any other status answers 502, no
    /// connection 503, no answer in time 504, and the delivery is released so that the
    /// provider's retry is forwarded again
    #[arg(long, value_name = "URL")]
    forward: Option<String>,

    /// With --forward: seconds to wait for the upstream's complete answer. 1-60 [default: 10]
    #[arg(long, value_name = "SECONDS", requires = "forward",
          value_parser = clap::value_parser!(u64).range(1..=60))]
    forward_timeout: Option<u64>,
}

impl ForwardArgs {
    /// The forwarder, if --forward was given.
    pub(crate) fn forwarder(&self) -> Result<Option<Forwarder>, String> {
        let Some(text) = &self.forward else {
            return Ok(None);
        };
        let url = reqwest::Url::parse(text).map_err(|error| format!("--forward: {error}"))?;
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err("--forward: expected http://HOST[:PORT]/PATH or https://…".into());
        }
        let client = reqwest::Client::builder()
            // The upstream is one fixed address: a redirect is an answer, not an instruction.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("hookverify-forward/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| format!("--forward: could not set up the HTTP client: {error}"))?;
        Ok(Some(Forwarder {
            client,
            url,
            timeout: Duration::from_secs(self.forward_timeout.unwrap_or(10)),
            credentials: Arc::new(Vec::new),
        }))
    }
}

/// Where deliveries go, and how.
#[derive(Clone)]
pub(crate) struct Forwarder {
    client: reqwest::Client,
    url: reqwest::Url,
    timeout: Duration,
    /// The headers that carry a shared secret itself, in the configuration in force.
    credentials: CredentialHeaders,
}

type CredentialHeaders = Arc<dyn Fn() -> Vec<HeaderName> + Send + Sync>;

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("url", &self.describe())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The header that carries `verifier`'s shared secret itself (`bearer`, `basic_auth`): never
/// forwarded, so the upstream and its logs never see the secret. A signature proves the
/// request without revealing the key, and goes on.
pub(crate) fn credential_header(verifier: &Verifier) -> Option<HeaderName> {
    matches!(verifier.method(), Method::Bearer | Method::BasicAuth)
        .then(|| verifier.header_names().signature.clone())
}

impl Forwarder {
    /// The upstream's URL without its user info, query and fragment, for the logs.
    pub(crate) fn describe(&self) -> String {
        let mut url = self.url.clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        url.set_fragment(None);
        url.to_string()
    }

    /// Reads the credential headers not to forward from `credentials`, for each delivery
    /// verified by `bearer` or `basic_auth`.
    pub(crate) fn hiding(
        mut self,
        credentials: impl Fn() -> Vec<HeaderName> + Send + Sync + 'static,
    ) -> Self {
        self.credentials = Arc::new(credentials);
        self
    }

    /// The POST route whose handler forwards (the verifying layer goes around it).
    pub(crate) fn route(self) -> MethodRouter {
        post(move |headers: HeaderMap, delivery: VerifiedDelivery| {
            let forwarder = self.clone();
            async move { forwarder.forward(&headers, delivery).await }
        })
    }

    async fn forward(&self, headers: &HeaderMap, delivery: VerifiedDelivery) -> Response {
        let id = delivery.delivery_id().to_owned();
        let mut headers = forwarded_headers(headers);
        if matches!(
            delivery.verified().method(),
            Method::Bearer | Method::BasicAuth
        ) {
            for name in (self.credentials)() {
                headers.remove(name);
            }
        }
        let mut request = self
            .client
            .post(self.url.clone())
            .timeout(self.timeout)
            .headers(headers);
        if let Ok(label) = HeaderValue::from_str(delivery.secret_label()) {
            request = request.header(LABEL_HEADER, label);
        }
        let started = Instant::now();
        let result = match request.body(delivery.into_body()).send().await {
            Ok(response) => relay(response).await,
            Err(error) => Err(error),
        };
        let elapsed = started.elapsed();
        match result {
            Ok(Relayed::Success(response)) => {
                tracing::info!(delivery_id = id, status = %response.status(), ?elapsed, "forwarded");
                response
            }
            Ok(Relayed::Refused(status)) => {
                tracing::warn!(delivery_id = id, upstream_status = %status, ?elapsed,
                    "the upstream refused the delivery: released for the provider's retry");
                (StatusCode::BAD_GATEWAY, "upstream_status").into_response()
            }
            Err(error) if error.is_timeout() => {
                tracing::warn!(
                    delivery_id = id,
                    ?elapsed,
                    "no answer from the upstream in time: released for the provider's retry"
                );
                (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout").into_response()
            }
            Err(error) => {
                let error = error.without_url();
                tracing::warn!(delivery_id = id, error = %error_chain(&error), ?elapsed,
                    "the upstream could not be reached: released for the provider's retry");
                (StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable").into_response()
            }
        }
    }
}

/// What the upstream answered.
enum Relayed {
    /// A 2xx, as the answer to relay.
    Success(Response),
    /// Any other status.
    Refused(StatusCode),
}

/// A 2xx as a response to relay (its body read within the request's timeout); any other
/// status as is.
async fn relay(mut response: reqwest::Response) -> Result<Relayed, reqwest::Error> {
    let status = response.status();
    if !status.is_success() {
        return Ok(Relayed::Refused(status));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RELAYED_BODY.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    let mut relayed = (status, body).into_response();
    if let Some(content_type) = response.headers().get(header::CONTENT_TYPE) {
        relayed
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type.clone());
    }
    Ok(Relayed::Success(relayed))
}

/// The request's headers as a proxy forwards them: without the hop-by-hop ones, those the
/// `Connection` header names, and any `X-Hookverify-*`.
pub(crate) fn forwarded_headers(headers: &HeaderMap) -> HeaderMap {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    let mut forwarded = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let dropped = NOT_FORWARDED.contains(&name.as_str())
            || named.contains(name)
            || name.as_str().starts_with("x-hookverify-");
        if !dropped {
            forwarded.append(name.clone(), value.clone());
        }
    }
    forwarded
}

/// `error` and its sources, for a log line (the URL taken out first: it may carry credentials,
/// and the startup line names the upstream already).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        text.push_str(": ");
        text.push_str(&source.to_string());
        next = source.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_own_headers_are_not_forwarded() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-agent-signature", "sha256=ab"),
            ("x-agent-delivery-id", "dlv_1"),
            ("content-type", "application/json"),
            ("connection", "keep-alive, X-Trace-Hop"),
            ("x-trace-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("host", "127.0.0.1:8787"),
            ("content-length", "2"),
            ("x-hookverify-secret-label", "forged"),
            ("accept", "*/*"),
            ("accept", "text/plain"),
        ] {
            headers.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let forwarded = forwarded_headers(&headers);
        let names: Vec<&str> = forwarded.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            names,
            [
                "x-agent-signature",
                "x-agent-delivery-id",
                "content-type",
                "accept"
            ]
        );
        assert_eq!(forwarded.get_all("accept").iter().count(), 2);
    }

    #[test]
    fn the_logged_url_has_no_credentials() -> Result<(), String> {
        let args = ForwardArgs {
            forward: Some("http://user:pw@127.0.0.1:9000/hooks?token=t#x".into()),
            forward_timeout: None,
        };
        let forwarder = args.forwarder()?.ok_or("a forwarder")?;
        assert_eq!(forwarder.describe(), "http://127.0.0.1:9000/hooks");
        assert_eq!(forwarder.timeout, Duration::from_secs(10));
        let bad = ForwardArgs {
            forward: Some("ftp://127.0.0.1/".into()),
            forward_timeout: None,
        };
        assert!(bad.forwarder().is_err());
        Ok(())
    }
}
