//! The service: the protocol around one request.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use axum_core::body::Body;
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::FutureExt;
use http::{Request, StatusCode, header};
use tower_service::Service;

use super::body::{check_declared_length, read_limited};
use tracing::Instrument;

use super::extract::{ClientAddr, VerifiedDelivery};
use super::layer::{Receivers, VerifyLayer};
use super::rejection::{Rejection, plain};
use crate::delivery::DeliveryId;
use crate::error::ReceiveError;
use crate::metrics;
use crate::receiver::{ClaimGuard, Duplicate, Outcome, Receiver, bounded};
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
    B::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = VerifyFuture<S::Error>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), Self::Error>> {
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
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let (parts, body) = request.into_parts();
    if let Some(applies) = &config.applies_to
        && !applies(&parts)
    {
        let request = Request::from_parts(parts, Body::new(body));
        return inner
            .call(request)
            .await
            .map(|response| response.map(Body::new));
    }
    let client = parts.extensions.get::<ClientAddr>().map(|addr| addr.0);
    // The receiver of this request, found from its head alone: an unknown subscription or a
    // source that cannot answer is refused before the body is read.
    let (receiver, endpoint) = match &config.receivers {
        Receivers::One(receiver) => (Cow::Borrowed(receiver), config.endpoint.clone()),
        Receivers::Many { subscriptions, key } => {
            let found = match key.of(&parts) {
                Some(key) => subscriptions
                    .receiver(&key)
                    .await
                    .map(|receiver| (receiver, Arc::<str>::from(key))),
                None => Err(ReceiveError::UnknownSubscription),
            };
            match found {
                Ok((receiver, key)) => (Cow::Owned(receiver), Some(key)),
                Err(error) => {
                    let context = Context::new(&config, None, client, None);
                    return Ok(reject(&config, &context, &parts, error));
                }
            }
        }
    };
    let context = Context::new(&config, Some(&receiver), client, endpoint);
    // At debug: under a formatting subscriber at info, a span per request would cost more than
    // the rest of the layer (BENCHMARKS.md); rejections and duplicates carry their context as
    // fields anyway.
    let span = tracing::debug_span!(
        target: "hookverify",
        "delivery",
        endpoint = context.endpoint.as_deref(),
        method = receiver.verifier().method().name(),
        delivery_id = tracing::field::Empty,
        secret = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let run = handle_delivery(inner, &config, &receiver, &context, parts, body);
    run.instrument(span).await
}

/// What logs and metrics say about a request besides its outcome.
struct Context {
    endpoint: Option<Arc<str>>,
    client: Option<SocketAddr>,
    /// The delivery id header's name, to name an unverified id in a rejection's log.
    id_header: Option<http::HeaderName>,
}

impl Context {
    fn new<St: DeliveryStore>(
        config: &VerifyLayer<St>,
        receiver: Option<&Receiver<St>>,
        client: Option<SocketAddr>,
        endpoint: Option<Arc<str>>,
    ) -> Self {
        Self {
            endpoint: endpoint.or_else(|| config.endpoint.clone()),
            client,
            id_header: receiver.and_then(|r| r.verifier().header_names().delivery_id.clone()),
        }
    }
}

async fn handle_delivery<S, St, B, ResBody>(
    mut inner: S,
    config: &VerifyLayer<St>,
    receiver: &Receiver<St>,
    context: &Context,
    parts: http::request::Parts,
    body: B,
) -> Result<Response, S::Error>
where
    S: Service<Request<Body>, Response = http::Response<ResBody>>,
    St: DeliveryStore,
    B: http_body::Body<Data = Bytes>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    let span = tracing::Span::current();
    let endpoint = context.endpoint.as_ref();
    // Each phase keeps its locals in its own scope, so that they share space in this future
    // (it is boxed, and moved once, per request).
    let started = Instant::now();
    let (mut parts, body, verified) = match verify(config, receiver, parts, body).await {
        Ok(verified) => verified,
        Err((parts, error)) => return Ok(reject(config, context, &parts, error)),
    };
    metrics::verify_seconds(started.elapsed(), endpoint);
    metrics::secret_match(verified.secret_label_shared(), endpoint);
    span.record("delivery_id", verified.delivery_id());
    span.record("secret", verified.secret_label());
    // The receiver checks the window again, claims within its store timeout, and releases in
    // the background a claim whose answer was lost.
    let claimed = Instant::now();
    let claim = receiver.claim(verified, &body).await;
    metrics::store_seconds(claimed.elapsed(), endpoint);
    let mut guard = match claim {
        Ok(Outcome::Fresh(guard)) => guard,
        Ok(Outcome::Duplicate(duplicate)) => {
            span.record("outcome", duplicate.as_str());
            metrics::delivery(duplicate_outcome(duplicate), endpoint);
            return Ok(duplicate_response(config, duplicate));
        }
        Err(error) => return Ok(reject(config, context, &parts, error)),
    };

    let verifier = receiver.verifier();
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
    let (result, accepted) = match outcome {
        Some(Ok(Ok(response))) => {
            let success = response.status().is_success();
            if success {
                let _ = guard.complete_in_place().await;
            } else {
                let _ = guard.release_in_place().await;
            }
            (Ok(response.map(Body::new)), success)
        }
        Some(Ok(Err(error))) => {
            let _ = guard.release_in_place().await;
            (Err(error), false)
        }
        Some(Err(_panic)) => {
            log_handler_failure(&guard, "handler panicked; claim released");
            let _ = guard.release_in_place().await;
            let response = plain(StatusCode::INTERNAL_SERVER_ERROR, "handler_panicked");
            (Ok(response), false)
        }
        None => {
            log_handler_failure(&guard, "handler timed out; claim released");
            let _ = guard.release_in_place().await;
            let response = plain(StatusCode::SERVICE_UNAVAILABLE, "handler_timeout");
            (Ok(response), false)
        }
    };
    let outcome = if accepted {
        "accepted"
    } else {
        "handler_failed"
    };
    span.record("outcome", outcome);
    metrics::delivery(outcome, endpoint);
    result
}

fn duplicate_outcome(duplicate: Duplicate) -> &'static str {
    match duplicate {
        Duplicate::Completed => "duplicate",
        Duplicate::Replay => "replay",
        Duplicate::InFlight => "in_flight",
    }
}

/// Verifies the request: its headers alone first (nothing is read for a malformed, stale or
/// oversized request, or one without the delivery id that dedupe needs), then its body, hashed
/// as it arrives so that the verdict is ready with the last byte. The body must arrive within
/// the body timeout. A refusal gives the head back, for the log.
async fn verify<St, B>(
    config: &VerifyLayer<St>,
    receiver: &Receiver<St>,
    parts: http::request::Parts,
    body: B,
) -> Result<(http::request::Parts, Bytes, Verified), (http::request::Parts, ReceiveError)>
where
    St: DeliveryStore,
    B: http_body::Body<Data = Bytes>,
{
    let verifier = receiver.verifier();
    let precheck = match verifier.precheck(&parts.headers) {
        Ok(precheck) => precheck,
        Err(error) => return Err((parts, error.into())),
    };
    // Dedupe needs the id: refuse before the body rather than after it.
    if verifier.method().dedupes_on_id() && precheck.delivery_id().is_none() {
        return Err((parts, verifier.missing_delivery_id().into()));
    }
    if let Err(error) = check_declared_length(&parts.headers, config.max_body) {
        return Err((parts, error));
    }
    let mut stream = BodyVerifier::new(verifier, precheck);
    let read = {
        let read = std::pin::pin!(read_limited(body, config.max_body, |chunk| {
            stream.update(chunk)
        }));
        bounded(config.body_timeout, read).await
    };
    let read = read.unwrap_or(Err(ReceiveError::BodyTimeout {
        limit: config.body_timeout,
    }));
    match read.and_then(|body| Ok((body, stream.finish()?))) {
        Ok((body, verified)) => Ok((parts, body, verified)),
        Err(error) => Err((parts, error)),
    }
}

fn log_handler_failure<St: DeliveryStore>(guard: &ClaimGuard<St>, message: &'static str) {
    let id = guard.verified().delivery_id();
    tracing::error!(target: "hookverify", delivery_id = id, "{message}");
}

fn reject<St>(
    config: &VerifyLayer<St>,
    context: &Context,
    parts: &http::request::Parts,
    error: ReceiveError,
) -> Response {
    // The id as sent, unverified: only when it is a well-formed id, so the log stays clean.
    let delivery_id = context
        .id_header
        .as_ref()
        .and_then(|name| parts.headers.get(name))
        .and_then(|value| DeliveryId::parse(value.as_bytes()).ok());
    let kind = error.kind().as_str();
    tracing::warn!(
        target: "hookverify",
        kind,
        client = context.client.map(tracing::field::display),
        endpoint = context.endpoint.as_deref(),
        delivery_id = delivery_id.as_ref().map(DeliveryId::as_str),
        path = parts.uri.path(),
        error = %error,
        "webhook rejected"
    );
    metrics::rejection(kind, context.endpoint.as_ref());
    if let Some(hook) = &config.on_reject {
        hook(&error);
    }
    Rejection::from(error).into_response()
}

fn duplicate_response<St>(config: &VerifyLayer<St>, duplicate: Duplicate) -> Response {
    let status = config.duplicates.of(duplicate);
    match duplicate {
        Duplicate::Completed | Duplicate::Replay => plain(status, "duplicate"),
        Duplicate::InFlight => {
            let mut response = plain(status, "in_flight");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, config.retry_after.clone());
            response
        }
    }
}
