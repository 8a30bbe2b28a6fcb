//! Many subscriptions, one receiver: each subscription (a fleet's or a customer's endpoint) has
//! its own method, labelled secrets and tolerance, looked up by a key taken from the request.
//!
//! A [`SubscriptionSource`] answers with the subscription's [`Verifier`] (its secrets keyed
//! once); [`Subscriptions`] keeps the answers in a bounded cache with a time to live, and each
//! subscription dedupes in its own namespace (providers reuse delivery ids across endpoints).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::error::ReceiveError;
use crate::receiver::{Receiver, bounded};
use crate::store::{DeliveryStore, Namespace};
use crate::verifier::Verifier;

/// A boxed future, so that sources can be held as trait objects.
pub type SourceFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Verifier>, SourceError>> + Send + 'a>>;

/// Where each subscription's configuration comes from: a map, a database, a secrets manager.
///
/// Answers `Ok(None)` for a subscription it does not know (the request gets 404 before its body
/// is read) and an error when it cannot answer (503: the provider retries; a request is never
/// let through unverified). A lookup is bounded by the base receiver's store timeout (default
/// 2 s): one that takes longer is an error too, rather than a request held open.
///
/// ```
/// use std::collections::HashMap;
/// use hookverify::{Method, Verifier};
///
/// let mut source = HashMap::new();
/// source.insert(
///     "fleet-a".to_owned(),
///     Verifier::builder().secret("2026-11", "whsec_a").build()?,
/// );
/// source.insert(
///     "stripe".to_owned(),
///     Verifier::builder().method(Method::Stripe).secret("live", "whsec_s").build()?,
/// );
/// # Ok::<(), hookverify::ConfigError>(())
/// ```
pub trait SubscriptionSource: Send + Sync + 'static {
    /// The verifier of `subscription`, if it exists.
    fn verifier<'a>(&'a self, subscription: &'a str) -> SourceFuture<'a>;
}

/// The simplest source: a fixed map from subscription key to verifier.
impl SubscriptionSource for HashMap<String, Verifier> {
    fn verifier<'a>(&'a self, subscription: &'a str) -> SourceFuture<'a> {
        let found = self.get(subscription).cloned();
        Box::pin(std::future::ready(Ok(found)))
    }
}

/// A source could not answer.
#[derive(Debug, Clone)]
pub struct SourceError {
    message: Arc<str>,
}

impl SourceError {
    /// An error described by `message` (never put secret material in it).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into().into(),
        }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SourceError {}

/// Default number of subscriptions kept keyed in memory.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// Default time a subscription's answer is kept before the source is asked again.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(60);

/// The subscriptions one receiver serves: a source, a bounded cache of its answers, and the
/// store, lease and store timeout they share (from `base`).
///
/// Each subscription dedupes in the namespace named by its key, so the key must be a valid
/// [`Namespace`] (1 to 64 ASCII letters, digits, `-`, `_`, `.`); any other key is answered as
/// unknown.
pub struct Subscriptions<S> {
    source: Arc<dyn SubscriptionSource>,
    base: Receiver<S>,
    cache: Mutex<LruCache<String, (Receiver<S>, Instant)>>,
    /// Bumped by every invalidation (under the cache's lock), so that an answer the source gave
    /// before an invalidation is not cached after it.
    generation: AtomicU64,
    ttl: Duration,
}

impl<S: DeliveryStore> Subscriptions<S> {
    /// Subscriptions from `source`, sharing `base`'s store and settings (its own verifier is
    /// not used), with a cache of [`DEFAULT_CACHE_CAPACITY`] entries kept
    /// [`DEFAULT_CACHE_TTL`].
    pub fn new(source: impl SubscriptionSource, base: Receiver<S>) -> Self {
        let capacity = NonZeroUsize::new(DEFAULT_CACHE_CAPACITY).unwrap_or(NonZeroUsize::MIN);
        Self {
            source: Arc::new(source),
            base,
            cache: Mutex::new(LruCache::new(capacity)),
            generation: AtomicU64::new(0),
            ttl: DEFAULT_CACHE_TTL,
        }
    }

    /// How many subscriptions stay keyed in memory; the least recently used go first.
    #[must_use]
    pub fn cache_capacity(self, capacity: NonZeroUsize) -> Self {
        self.lock().resize(capacity);
        self
    }

    /// How long an answer is kept before the source is asked again (a rotation reaches this
    /// receiver within it, or at once through [`invalidate`](Self::invalidate)).
    #[must_use]
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Forgets what the source said about `subscription`: call it on a rotation, once the
    /// source gives the new answer. A lookup that was already asking the source when this was
    /// called uses what it got for its own request but does not cache it, so the next request
    /// asks the source again.
    pub fn invalidate(&self, subscription: &str) {
        let mut cache = self.lock();
        cache.pop(subscription);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The receiver of `subscription`: from the cache, else from the source.
    pub async fn receiver(&self, subscription: &str) -> Result<Receiver<S>, ReceiveError> {
        let unknown = || ReceiveError::UnknownSubscription;
        let namespace = Namespace::new(subscription).ok_or_else(unknown)?;
        if let Some((receiver, at)) = self.lock().get(subscription)
            && at.elapsed() < self.ttl
        {
            return Ok(receiver.clone());
        }
        let generation = self.generation.load(Ordering::Acquire);
        let lookup = std::pin::pin!(self.source.verifier(subscription));
        let verifier = bounded(self.base.store_timeout(), lookup)
            .await
            .unwrap_or_else(|| {
                let limit = self.base.store_timeout().as_millis();
                Err(SourceError::new(format!("no answer within {limit} ms")))
            })
            .map_err(ReceiveError::SourceUnavailable)?
            .ok_or_else(unknown)?;
        let receiver = self.base.for_subscription(verifier, namespace);
        let mut cache = self.lock();
        // Compared under the lock that `invalidate` bumps it under: an invalidation since the
        // source was asked may have made this answer stale.
        if self.generation.load(Ordering::Relaxed) == generation {
            cache.put(subscription.to_owned(), (receiver.clone(), Instant::now()));
        }
        Ok(receiver)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, (Receiver<S>, Instant)>> {
        // The cache holds no invariant a panicking holder could break.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S> fmt::Debug for Subscriptions<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriptions")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}
