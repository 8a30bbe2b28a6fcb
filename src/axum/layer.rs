//! The layer: cheap configuration, cloned into each service.

use std::fmt;
use std::sync::Arc;

use std::time::Duration;

use http::request::Parts;
use http::{HeaderName, HeaderValue, StatusCode};
use tower_layer::Layer;

use super::service::Verify;
use crate::error::{ConfigError, ReceiveError};
use crate::receiver::{Duplicate, Receiver};
use crate::store::DeliveryStore;
use crate::subscription::Subscriptions;

/// The default body limit: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

/// The default bound on reading a body: the provider abandons an attempt after 10 s, so a body
/// still arriving later serves no one.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

const MIN_TIMEOUT: Duration = Duration::from_millis(1);
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

type RejectHook = Arc<dyn Fn(&ReceiveError) + Send + Sync>;
type Predicate = Arc<dyn Fn(&Parts) -> bool + Send + Sync>;
type KeyFn = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;

/// Where the layer finds the receiver of a request.
pub(crate) enum Receivers<St> {
    One(Receiver<St>),
    Many {
        subscriptions: Arc<Subscriptions<St>>,
        key: SubscriptionKey,
    },
}

impl<St> Clone for Receivers<St> {
    fn clone(&self) -> Self {
        match self {
            Self::One(receiver) => Self::One(receiver.clone()),
            Self::Many { subscriptions, key } => Self::Many {
                subscriptions: Arc::clone(subscriptions),
                key: key.clone(),
            },
        }
    }
}

/// Which subscription a request is for, read from its head (never its body).
///
/// ```
/// use hookverify::axum::SubscriptionKey;
///
/// // `/webhooks/{subscription}`: the path's last segment.
/// let from_path = SubscriptionKey::last_path_segment();
/// // Or a header the sender sets, or anything else in the request's head.
/// let from_header = SubscriptionKey::header(http::HeaderName::from_static("x-subscription"));
/// let from_host = SubscriptionKey::from_fn(|parts| {
///     let host = parts.headers.get(http::header::HOST)?.to_str().ok()?;
///     Some(host.split('.').next()?.to_owned())
/// });
/// ```
#[derive(Clone)]
pub struct SubscriptionKey(KeyFn);

impl SubscriptionKey {
    /// The last non-empty segment of the path: `fleet-a` in `/webhooks/fleet-a`.
    pub fn last_path_segment() -> Self {
        Self::from_fn(|parts| {
            let segment = parts.uri.path().rsplit('/').find(|s| !s.is_empty())?;
            Some(segment.to_owned())
        })
    }

    /// The value of a header, when it is visible ASCII.
    pub fn header(name: HeaderName) -> Self {
        Self::from_fn(move |parts| Some(parts.headers.get(&name)?.to_str().ok()?.to_owned()))
    }

    /// Any function of the request's head; `None` answers 404.
    pub fn from_fn(key: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static) -> Self {
        Self(Arc::new(key))
    }

    pub(crate) fn of(&self, parts: &Parts) -> Option<String> {
        (self.0)(parts)
    }
}

impl fmt::Debug for SubscriptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubscriptionKey(..)")
    }
}

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
/// let store = MemoryStore::new(NonZeroUsize::new(100_000).expect("non-zero"))?;
/// // `route_layer` on the method router: a wrong path or method gets its 404 or 405 without
/// // being verified or claimed.
/// let layer = VerifyLayer::new(Receiver::new(verifier, store));
/// let app: Router = Router::new().route("/webhooks", post(on_event).route_layer(layer));
/// # Ok::<(), hookverify::ConfigError>(())
/// ```
pub struct VerifyLayer<St> {
    pub(crate) receivers: Receivers<St>,
    pub(crate) applies_to: Option<Predicate>,
    pub(crate) endpoint: Option<Arc<str>>,
    pub(crate) max_body: usize,
    pub(crate) handler_timeout: Option<Duration>,
    pub(crate) body_timeout: Duration,
    pub(crate) retry_after: HeaderValue,
    pub(crate) duplicates: DuplicateStatuses,
    pub(crate) on_reject: Option<RejectHook>,
}

/// The status answered for each kind of [`Duplicate`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct DuplicateStatuses {
    pub(crate) completed: StatusCode,
    pub(crate) in_flight: StatusCode,
    pub(crate) replay: StatusCode,
}

impl DuplicateStatuses {
    pub(crate) fn of(&self, duplicate: Duplicate) -> StatusCode {
        match duplicate {
            Duplicate::Completed => self.completed,
            Duplicate::InFlight => self.in_flight,
            Duplicate::Replay => self.replay,
        }
    }
}

impl Default for DuplicateStatuses {
    fn default() -> Self {
        Self {
            completed: StatusCode::OK,
            in_flight: StatusCode::TOO_MANY_REQUESTS,
            replay: StatusCode::OK,
        }
    }
}

impl<St> VerifyLayer<St> {
    /// A layer around `receiver`'s verifier and store, with a 1 MiB body limit, a 10 s bound on
    /// reading the body, no handler timeout (the receiver's heartbeat keeps a long handler's
    /// claim) and `Retry-After: 1` on a delivery in flight.
    pub fn new(receiver: Receiver<St>) -> Self {
        Self::with(Receivers::One(receiver))
    }

    /// A layer for many subscriptions: each request's key (read from its head by `key`) picks
    /// its subscription's verifier and dedupe namespace. An unknown key is answered 404 and a
    /// source that cannot answer 503, both before the body is read. Each subscription's key is
    /// its metrics and log `endpoint`.
    ///
    /// Pass an `Arc<Subscriptions>` and keep a clone of it to call
    /// [`invalidate`](Subscriptions::invalidate) on a rotation (a value is taken as well).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use std::num::NonZeroUsize;
    /// use axum::{Router, routing::post};
    /// use hookverify::axum::{SubscriptionKey, VerifiedDelivery, VerifyLayer};
    /// use hookverify::{MemoryStore, Receiver, Subscriptions, Verifier};
    ///
    /// async fn on_event(delivery: VerifiedDelivery) -> &'static str {
    ///     "ok"
    /// }
    ///
    /// let mut source = HashMap::new();
    /// source.insert("fleet-a".to_owned(), Verifier::builder().secret("k1", "whsec_a").build()?);
    /// source.insert("fleet-b".to_owned(), Verifier::builder().secret("k1", "whsec_b").build()?);
    /// let store = MemoryStore::new(NonZeroUsize::new(100_000).expect("non-zero"))?;
    /// // The base receiver lends its store, lease and timeouts; its verifier is not used.
    /// let base = Receiver::new(source["fleet-a"].clone(), store);
    /// let layer = VerifyLayer::subscriptions(
    ///     Subscriptions::new(source, base),
    ///     SubscriptionKey::last_path_segment(),
    /// );
    /// let app: Router = Router::new()
    ///     .route("/webhooks/{subscription}", post(on_event).route_layer(layer));
    /// # Ok::<(), hookverify::ConfigError>(())
    /// ```
    pub fn subscriptions(
        subscriptions: impl Into<Arc<Subscriptions<St>>>,
        key: SubscriptionKey,
    ) -> Self
    where
        St: DeliveryStore,
    {
        Self::with(Receivers::Many {
            subscriptions: subscriptions.into(),
            key,
        })
    }

    fn with(receivers: Receivers<St>) -> Self {
        Self {
            receivers,
            applies_to: None,
            endpoint: None,
            max_body: DEFAULT_MAX_BODY,
            handler_timeout: None,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            retry_after: HeaderValue::from_static("1"),
            duplicates: DuplicateStatuses::default(),
            on_reject: None,
        }
    }

    /// Verifies only the requests `predicate` accepts; the others go to the wrapped service
    /// untouched. With it the layer can wrap a whole router (`Router::layer`), health checks
    /// and all; without it, put the layer on the webhook routes only (`route_layer`).
    ///
    /// ```
    /// # use std::num::NonZeroUsize;
    /// # use axum::{Router, routing::{get, post}};
    /// # use hookverify::axum::{VerifiedDelivery, VerifyLayer};
    /// # use hookverify::{MemoryStore, Receiver, Verifier};
    /// # async fn on_event(_: VerifiedDelivery) -> &'static str { "ok" }
    /// # let verifier = Verifier::builder().secret("current", "whsec_example").build()?;
    /// # let store = MemoryStore::new(NonZeroUsize::new(1000).expect("non-zero"))?;
    /// let layer = VerifyLayer::new(Receiver::new(verifier, store))
    ///     .only_if(|parts| parts.uri.path().starts_with("/webhooks/"));
    /// let app: Router = Router::new()
    ///     .route("/health", get(|| async { "ok" }))
    ///     .route("/webhooks/agent", post(on_event))
    ///     .layer(layer);
    /// # Ok::<(), hookverify::ConfigError>(())
    /// ```
    #[must_use]
    pub fn only_if(mut self, predicate: impl Fn(&Parts) -> bool + Send + Sync + 'static) -> Self {
        self.applies_to = Some(Arc::new(predicate));
        self
    }

    /// Names this endpoint in metrics (`endpoint` label) and logs, for an application that
    /// mounts several layers. A layer over [`subscriptions`](Self::subscriptions) uses each
    /// subscription's key instead.
    #[must_use]
    pub fn endpoint(mut self, name: impl Into<Arc<str>>) -> Self {
        self.endpoint = Some(name.into());
        self
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

    /// The status answered for a kind of duplicate, instead of the default: 200 for a
    /// duplicate of a completed delivery and for a replay, 429 (with `Retry-After`) for a
    /// delivery in flight. The body stays `duplicate` or `in_flight`.
    ///
    /// Refused with [`ConfigError::OutOfRange`] where the provider would misread it: a delivery
    /// in flight needs a status the provider retries (429 or a 5xx), since the attempt in flight
    /// may still fail; a completed delivery or a replay needs one it does not (a 2xx, or a 4xx
    /// other than 429), since a retry would only come back to the same answer.
    ///
    /// ```
    /// # use std::num::NonZeroUsize;
    /// # use hookverify::axum::VerifyLayer;
    /// # use hookverify::{Duplicate, MemoryStore, Receiver, Verifier};
    /// use http::StatusCode;
    /// # let verifier = Verifier::builder().secret("current", "whsec_example").build()?;
    /// # let store = MemoryStore::new(NonZeroUsize::new(1000).expect("non-zero"))?;
    /// let receiver = Receiver::new(verifier, store);
    /// // Flag replays (the same signed bytes under another id) as conflicts.
    /// let layer = VerifyLayer::new(receiver.clone())
    ///     .duplicate_status(Duplicate::Replay, StatusCode::CONFLICT)?;
    /// // A 200 for a delivery in flight would lose it if that attempt failed: refused.
    /// let refused = VerifyLayer::new(receiver).duplicate_status(Duplicate::InFlight, StatusCode::OK);
    /// assert!(refused.is_err());
    /// # Ok::<(), hookverify::ConfigError>(())
    /// ```
    pub fn duplicate_status(
        mut self,
        duplicate: Duplicate,
        status: StatusCode,
    ) -> Result<Self, ConfigError> {
        let retried = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
        let (fits, allowed) = match duplicate {
            Duplicate::InFlight => (retried, "429 or a 5xx"),
            Duplicate::Completed | Duplicate::Replay => (
                status.is_success() || (status.is_client_error() && !retried),
                "a 2xx, or a 4xx other than 429",
            ),
        };
        if !fits {
            return Err(ConfigError::OutOfRange {
                setting: match duplicate {
                    Duplicate::Completed => "duplicate_status(completed)",
                    Duplicate::InFlight => "duplicate_status(in_flight)",
                    Duplicate::Replay => "duplicate_status(replay)",
                },
                allowed: allowed.into(),
            });
        }
        match duplicate {
            Duplicate::Completed => self.duplicates.completed = status,
            Duplicate::InFlight => self.duplicates.in_flight = status,
            Duplicate::Replay => self.duplicates.replay = status,
        }
        Ok(self)
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
            receivers: self.receivers.clone(),
            applies_to: self.applies_to.clone(),
            endpoint: self.endpoint.clone(),
            max_body: self.max_body,
            handler_timeout: self.handler_timeout,
            body_timeout: self.body_timeout,
            retry_after: self.retry_after.clone(),
            duplicates: self.duplicates,
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
            .field(
                "receiver",
                match &self.receivers {
                    Receivers::One(receiver) => receiver as &dyn fmt::Debug,
                    Receivers::Many { subscriptions, .. } => subscriptions as &dyn fmt::Debug,
                },
            )
            .field("only_if", &self.applies_to.is_some())
            .field("endpoint", &self.endpoint)
            .field("max_body", &self.max_body)
            .field("handler_timeout", &self.handler_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("retry_after", &self.retry_after)
            .field("duplicates", &self.duplicates)
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
