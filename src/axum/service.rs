//! The service: the protocol around one request.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::FutureExt;
use http::{Request, StatusCode, header};
use tower_service::Service;

use super::body::{check_declared_length, read_limited};
use super::extract::VerifiedDelivery;
use super::layer::VerifyLayer;
use super::rejection::{Rejection, plain};
use crate::error::{ReceiveError, VerifyError};
use crate::receiver::{ClaimGuard, Duplicate, Outcome, bounded};
use crate::store::DeliveryStore;
use crate::stream::BodyVerifier;
use crate::verified::Verified;

/// The response future of [`Verify`].
pub type VerifyFuture<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The service [`VerifyLayer`] wraps around a handler.
pub struct Verify<S, St> {
    inner: S,
    config: Arc<VerifyLayer<St>>,
}

impl<S, St> Verify<S, St> {
    pub(crate) fn new(inner: S, config: Arc<VerifyLayer<St>>) -> Self {
        Self { inner, config }
    }
}

impl<S: Clone, St> Clone for Verify<S, St> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

impl<S: fmt::Debug, St> fmt::Debug for Verify<S, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verify")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

impl<S, St, B, ResBody> Service<Request<B>> for Verify<S, St>
where
    S: Service<Request<Body>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    St: DeliveryStore,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = VerifyFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone is not ready yet: keep it for the next call, use the one that is.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(handle(inner, Arc::clone(&self.config), request))
    }
}

async fn handle<S, St, B, ResBody>(
    mut inner: S,
    config: Arc<VerifyLayer<St>>,
    request: Request<B>,
) -> Result<Response, S::Error>
where
    S: Service<Request<Body>, Response = http::Response<ResBody>>,
    St: DeliveryStore,
    B: http_body::Body<Data = Bytes>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    // Each phase keeps its locals in its own scope, so that they share space in this future
    // (it is boxed, and moved once, per request).
    let (mut parts, body, verified) = match verify(&config, request).await {
        Ok(verified) => verified,
        Err(error) => return Ok(reject(&config, error)),
    };
    // The receiver checks the window again, claims within its store timeout, and releases in
    // the background a claim whose answer was lost.
    let mut guard = match config.receiver.claim(verified, &body).await {
        Ok(Outcome::Fresh(guard)) => guard,
        Ok(Outcome::Duplicate(duplicate)) => {
            return Ok(duplicate_response(&config, duplicate));
        }
        Err(error) => return Ok(reject(&config, error)),
    };

    let verifier = config.receiver.verifier();
    if let Some(signature) = parts.headers.get_mut(&verifier.header_names().signature) {
        signature.set_sensitive(true);
    }
    parts.extensions.insert(VerifiedDelivery::new(
        guard.verified().clone(),
        body.clone(),
    ));
    let request = Request::from_parts(parts, Body::from(body));

    // A panic while building the future or while running it releases the claim alike.
    let call = std::panic::catch_unwind(AssertUnwindSafe(|| inner.call(request)));
    let outcome = match call {
        Ok(future) => {
            let future = AssertUnwindSafe(future).catch_unwind();
            match config.handler_timeout {
                Some(limit) => tokio::time::timeout(limit, future).await.ok(),
                None => Some(future.await),
            }
        }
        Err(panic) => Some(Err(panic)),
    };

    // The receiver logs what it could not settle: after a success nothing is released (a
    // failed completion is retried in the background), after a failure the claim is released.
    match outcome {
        Some(Ok(Ok(response))) => {
            if response.status().is_success() {
                let _ = guard.complete_in_place().await;
            } else {
                let _ = guard.release_in_place().await;
            }
            Ok(response.map(Body::new))
        }
        Some(Ok(Err(error))) => {
            let _ = guard.release_in_place().await;
            Err(error)
        }
        Some(Err(_panic)) => {
            log_handler_failure(&guard, "handler panicked; claim released");
            let _ = guard.release_in_place().await;
            Ok(plain(StatusCode::INTERNAL_SERVER_ERROR, "handler_panicked"))
        }
        None => {
            log_handler_failure(&guard, "handler timed out; claim released");
            let _ = guard.release_in_place().await;
            Ok(plain(StatusCode::SERVICE_UNAVAILABLE, "handler_timeout"))
        }
    }
}

/// Verifies the request: its headers alone first (nothing is read for a malformed, stale or
/// oversized request, or one without the delivery id that dedupe needs), then its body, hashed
/// as it arrives so that the verdict is ready with the last byte. The body must arrive within
/// the body timeout.
async fn verify<St, B>(
    config: &VerifyLayer<St>,
    request: Request<B>,
) -> Result<(http::request::Parts, Bytes, Verified), ReceiveError>
where
    St: DeliveryStore,
    B: http_body::Body<Data = Bytes>,
{
    let (parts, body) = request.into_parts();
    let verifier = config.receiver.verifier();
    let precheck = verifier.precheck(&parts.headers)?;
    // Dedupe needs the id: refuse before the body rather than after it.
    if verifier.method().dedupes_on_id() && precheck.delivery_id().is_none() {
        let names = verifier.header_names();
        return Err(VerifyError::MissingHeader {
            header: names.delivery_id.clone().unwrap_or(names.signature.clone()),
        }
        .into());
    }
    check_declared_length(&parts.headers, config.max_body)?;
    let mut stream = BodyVerifier::new(verifier, precheck);
    let read = {
        let read = std::pin::pin!(read_limited(body, config.max_body, |chunk| {
            stream.update(chunk)
        }));
        bounded(config.body_timeout, read).await
    };
    let body = read.unwrap_or(Err(ReceiveError::BodyTimeout {
        limit: config.body_timeout,
    }))?;
    let verified = stream.finish()?;
    Ok((parts, body, verified))
}

fn log_handler_failure<St: DeliveryStore>(guard: &ClaimGuard<St>, message: &'static str) {
    let id = guard.verified().delivery_id();
    tracing::error!(target: "hookverify", delivery_id = id, "{message}");
}

fn reject<St>(config: &VerifyLayer<St>, error: ReceiveError) -> Response {
    tracing::warn!(
        target: "hookverify",
        kind = error.kind().as_str(),
        error = %error,
        "webhook rejected"
    );
    if let Some(hook) = &config.on_reject {
        hook(&error);
    }
    let close = matches!(error, ReceiveError::BodyTimeout { .. });
    let mut response = Rejection::from(error).into_response();
    if close {
        // The rest of a crawling body is not worth reading.
        response
            .headers_mut()
            .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    }
    response
}

fn duplicate_response<St>(config: &VerifyLayer<St>, duplicate: Duplicate) -> Response {
    match duplicate {
        Duplicate::Completed | Duplicate::Replay => plain(StatusCode::OK, "duplicate"),
        Duplicate::InFlight => {
            let mut response = plain(StatusCode::TOO_MANY_REQUESTS, "in_flight");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, config.retry_after.clone());
            response
        }
    }
}
