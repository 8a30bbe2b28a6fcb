//! The layer: cheap configuration, cloned into each service.

use std::fmt;
use std::sync::Arc;

use std::time::Duration;

use http::HeaderValue;
use tower_layer::Layer;

use super::service::Verify;
use crate::error::{ConfigError, ReceiveError};
use crate::receiver::Receiver;

/// The default body limit: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// The default bound on reading a body: the provider abandons an attempt after 10 s, so a body
/// still arriving later serves no one.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

const MIN_TIMEOUT: Duration = Duration::from_millis(1);
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

type RejectHook = Arc<dyn Fn(&ReceiveError) + Send + Sync>;

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
    pub(crate) handler_timeout: Option<Duration>,
    pub(crate) body_timeout: Duration,
    pub(crate) retry_after: HeaderValue,
    pub(crate) on_reject: Option<RejectHook>,
}

impl<St> VerifyLayer<St> {
    /// A layer around `receiver`'s verifier and store, with a 1 MiB body limit, a 10 s bound on
    /// reading the body, no handler timeout (the receiver's heartbeat keeps a long handler's
    /// claim) and `Retry-After: 1` on a delivery in flight.
    pub fn new(receiver: Receiver<St>) -> Self {
        Self {
            receiver,
            max_body: DEFAULT_MAX_BODY,
            handler_timeout: None,
            body_timeout: DEFAULT_BODY_TIMEOUT,
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

    /// Gives up on a handler after `timeout` (1 ms to 1 h), releases its claim and answers
    /// 503, so that the provider's retry is handled. Without it a handler may run as long as it
    /// needs: the heartbeat keeps its claim.
    pub fn handler_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        self.handler_timeout = Some(checked("handler_timeout", timeout)?);
        Ok(self)
    }

    /// Bounds reading the body, from the headers' arrival to its last byte (1 ms to 1 h,
    /// default 10 s): past it the answer is 408 and the connection is closed.
    pub fn body_timeout(mut self, timeout: Duration) -> Result<Self, ConfigError> {
        self.body_timeout = checked("body_timeout", timeout)?;
        Ok(self)
    }

    /// The `Retry-After` answered with a 429 for a delivery in flight, in seconds (default 1).
    #[must_use]
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = HeaderValue::from(seconds);
        self
    }

    /// Calls `hook` with every rejection's error (for metrics), besides logging it.
    #[must_use]
    pub fn on_reject(mut self, hook: impl Fn(&ReceiveError) + Send + Sync + 'static) -> Self {
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
            body_timeout: self.body_timeout,
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
            .field("body_timeout", &self.body_timeout)
            .field("retry_after", &self.retry_after)
            .field("on_reject", &self.on_reject.is_some())
            .finish()
    }
}

fn checked(setting: &'static str, timeout: Duration) -> Result<Duration, ConfigError> {
    if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&timeout) {
        return Err(ConfigError::OutOfRange {
            setting,
            allowed: "from 1 ms to 1 h".into(),
        });
    }
    Ok(timeout)
}
