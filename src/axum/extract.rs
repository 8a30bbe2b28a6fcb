//! The extractors that hand a handler its verified delivery.

use axum_core::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use http::request::Parts;
use time::OffsetDateTime;

use super::body::{check_declared_length, read_limited};
use super::layer::{DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY};
use super::rejection::Rejection;
use crate::error::ReceiveError;
use crate::receiver::bounded;
use crate::stream::BodyVerifier;
use crate::verified::Verified;
use crate::verifier::Verifier;

/// The client's address, for the layer's rejection logs: insert it into the request's
/// extensions where the server knows it (`hookverify serve` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// A delivery that [`VerifyLayer`](super::VerifyLayer) verified and claimed, with its raw body.
///
/// Works with any router state. Without the layer in front of the route it answers 500
/// (`verify_layer_missing`): a configuration mistake, never an unverified pass.
#[derive(Debug, Clone)]
pub struct VerifiedDelivery {
    verified: Verified,
    body: Bytes,
}

impl VerifiedDelivery {
    pub(crate) fn new(verified: Verified, body: Bytes) -> Self {
        Self { verified, body }
    }

    /// What verification established.
    pub fn verified(&self) -> &Verified {
        &self.verified
    }

    /// The delivery id, or `""` when the method sends none (Stripe, Slack).
    pub fn delivery_id(&self) -> &str {
        self.verified.delivery_id().unwrap_or_default()
    }

    /// The signed timestamp; `None` for methods that sign none.
    pub fn timestamp(&self) -> Option<OffsetDateTime> {
        self.verified.timestamp()
    }

    /// The label of the secret that matched.
    pub fn secret_label(&self) -> &str {
        self.verified.secret_label()
    }

    /// The raw body bytes, exactly as signed.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Takes the body.
    pub fn into_body(self) -> Bytes {
        self.body
    }
}

impl<S: Send + Sync> FromRequestParts<S> for VerifiedDelivery {
    type Rejection = MissingLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or(MissingLayer)
    }
}

/// [`VerifiedDelivery`] was used on a route that [`VerifyLayer`](super::VerifyLayer) does not
/// wrap. Answers 500 `verify_layer_missing`.
#[derive(Debug, Clone, Copy)]
pub struct MissingLayer;

impl IntoResponse for MissingLayer {
    fn into_response(self) -> Response {
        super::rejection::plain(StatusCode::INTERNAL_SERVER_ERROR, "verify_layer_missing")
    }
}

/// Verification without the layer (signature and window; no dedupe), for apps that only want
/// to know a request is genuine and fresh.
///
/// Takes the [`Verifier`] from the router's state through [`FromRef`], reads the body up to
/// `LIMIT` bytes (default [`DEFAULT_MAX_BODY`], 1 MiB; a larger declared or streamed body gets
/// 413 before the rest is read) within [`DEFAULT_BODY_TIMEOUT`] (10 s; a body still arriving
/// then gets 408 and the connection is closed), and rejects with [`Rejection`] (the same
/// statuses as the layer). It reads the body, so it must be the handler's last extractor.
///
/// ```
/// use axum::{Router, routing::post};
/// use hookverify::Verifier;
/// use hookverify::axum::VerifiedPayload;
///
/// async fn on_event(payload: VerifiedPayload) -> String {
///     format!("{} bytes from {}", payload.body().len(), payload.verified().secret_label())
/// }
///
/// // The limit is part of the type: 64 KiB here.
/// async fn on_small_event(payload: VerifiedPayload<{ 64 * 1024 }>) -> String {
///     format!("{} bytes", payload.body().len())
/// }
///
/// let verifier = Verifier::builder().secret("current", "whsec_example").build()?;
/// let app: Router = Router::new()
///     .route("/webhooks", post(on_event))
///     .route("/webhooks/small", post(on_small_event))
///     .with_state(verifier);
/// # Ok::<(), hookverify::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct VerifiedPayload<const LIMIT: usize = DEFAULT_MAX_BODY> {
    verified: Verified,
    body: Bytes,
}

impl<const LIMIT: usize> VerifiedPayload<LIMIT> {
    /// What verification established.
    pub fn verified(&self) -> &Verified {
        &self.verified
    }

    /// The raw body bytes, exactly as signed.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Takes the body.
    pub fn into_body(self) -> Bytes {
        self.body
    }
}

impl<S, const LIMIT: usize> FromRequest<S> for VerifiedPayload<LIMIT>
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Verifier::from_ref(state);
        let (parts, body) = request.into_parts();
        let precheck = verifier.precheck(&parts.headers)?;
        check_declared_length(&parts.headers, LIMIT)?;
        let mut stream = BodyVerifier::new(&verifier, precheck);
        let read = {
            let read = std::pin::pin!(read_limited(body, LIMIT, |chunk| stream.update(chunk)));
            bounded(DEFAULT_BODY_TIMEOUT, read).await
        };
        let body = read.unwrap_or(Err(ReceiveError::BodyTimeout {
            limit: DEFAULT_BODY_TIMEOUT,
        }))?;
        let verified = stream.finish()?;
        Ok(Self { verified, body })
    }
}
