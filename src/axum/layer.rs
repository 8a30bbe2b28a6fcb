//! The layer: cheap configuration, cloned into each service.

use std::fmt;
use std::sync::Arc;

use http::HeaderValue;
use time::Duration;
use tower_layer::Layer;

use super::service::Verify;
use crate::error::Error;
use crate::receiver::Receiver;

/// The default body limit: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// The default bound on a store call: past it the request gets a 503 and the provider retries.
const DEFAULT_STORE_TIMEOUT: Duration = Duration::seconds(2);

type RejectHook = Arc<dyn Fn(&Error) + Send + Sync>;

/// Verifies, dedupes and guards the wrapped service. See the [module docs](crate::axum) for
/// the status codes.
///
/// ```
/// use std::num::NonZeroUsize;
/// use axum::{Router, routing::post};
/// use hookverify::axum::{VerifiedDelivery, VerifyLayer};
/// use hookverify::{MemoryStore, Receiver, Verifier};
///
/// async fn on_event(delivery: VerifiedDelivery) -> &'static str {
///     println!("{} from {}", delivery.delivery_id(), delivery.secret_label());
///     "ok"
/// }
///
/// let verifier = Verifier::builder().secret("current", "whsec_example").build()?;
/// let store = MemoryStore::new(NonZeroUsize::new(100_000).expect("non-zero"));
/// // `route_layer` on the method router: a wrong path or method gets its 404 or 405 without
/// // being verified or claimed.
/// let layer = VerifyLayer::new(Receiver::new(verifier, store));
/// let app: Router = Router::new().route("/webhooks", post(on_event).route_layer(layer));
/// # Ok::<(), hookverify::ConfigError>(())
/// ```
pub struct VerifyLayer<St> {
    pub(crate) receiver: Receiver<St>,
    pub(crate) max_body: usize,
    pub(crate) handler_timeout: Option<std::time::Duration>,
    pub(crate) store_timeout: std::time::Duration,
    pub(crate) retry_after: HeaderValue,
    pub(crate) on_reject: Option<RejectHook>,
}

impl<St> VerifyLayer<St> {
    /// A layer around `receiver`'s verifier and store, with a 1 MiB body limit, a 2 s bound on
    /// each store call, no handler timeout and `Retry-After: 1` on a delivery in flight.
    pub fn new(receiver: Receiver<St>) -> Self {
        Self {
            receiver,
            max_body: DEFAULT_MAX_BODY,
            handler_timeout: None,
            store_timeout: DEFAULT_STORE_TIMEOUT.unsigned_abs(),
            retry_after: HeaderValue::from_static("1"),
            on_reject: None,
        }
    }

    /// The largest body accepted, in bytes; past it the answer is 413 and the rest is not read.
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Gives up on a handler after `timeout`, releases its claim and answers 503, so that the
    /// provider's retry is handled. Keep it under the provider's 10 s attempt timeout and under
    /// the lease.
    #[must_use]
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.handler_timeout = Some(timeout.unsigned_abs());
        self
    }

    /// Bounds each store call (default 2 s); a store slower than that counts as unavailable.
    #[must_use]
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout.unsigned_abs();
        self
    }

    /// The `Retry-After` answered with a 429 for a delivery in flight, in seconds (default 1).
    #[must_use]
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = HeaderValue::from(seconds);
        self
    }

    /// Calls `hook` with every rejection's error (for metrics), besides logging it.
    #[must_use]
    pub fn on_reject(mut self, hook: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.on_reject = Some(Arc::new(hook));
        self
    }
}

impl<St> Clone for VerifyLayer<St> {
    fn clone(&self) -> Self {
        Self {
            receiver: self.receiver.clone(),
            max_body: self.max_body,
            handler_timeout: self.handler_timeout,
            store_timeout: self.store_timeout,
            retry_after: self.retry_after.clone(),
            on_reject: self.on_reject.clone(),
        }
    }
}

impl<S, St> Layer<S> for VerifyLayer<St> {
    type Service = Verify<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        Verify::new(inner, Arc::new(self.clone()))
    }
}

impl<St> fmt::Debug for VerifyLayer<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyLayer")
            .field("receiver", &self.receiver)
            .field("max_body", &self.max_body)
            .field("handler_timeout", &self.handler_timeout)
            .field("store_timeout", &self.store_timeout)
            .field("retry_after", &self.retry_after)
            .field("on_reject", &self.on_reject.is_some())
            .finish()
    }
}
