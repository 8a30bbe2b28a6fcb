//! The per-request entry point: verify, then claim; a guard completes or releases, and a
//! heartbeat renews the claims of handlers that run long.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use http::HeaderMap;
use tokio_util::task::TaskTracker;

use crate::error::{ConfigError, ReceiveError};
use crate::heartbeat::{Heartbeat, Registration};
use crate::store::{
    Claim, ClaimToken, DedupeKey, DeliveryKeys, DeliveryStore, Namespace, StoreError,
};
use crate::verified::Verified;
use crate::verifier::Verifier;

/// The default lease: longer than the provider's 10 s attempt timeout. While the handler runs,
/// the heartbeat renews it every third of a lease, so a slow handler keeps its claim and a
/// dead process's claim frees up within one lease.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// The default bound on one store call: past it the delivery is refused (503) and the provider
/// retries.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The most releases a receiver (with its subscriptions' receivers) keeps running in the
/// background. Each refused or abandoned claim leaves one, retried until its lease ends, so a
/// store outage under load would otherwise grow them with the rate; past this many, a claim is
/// left to its lease (its refusal is already logged at `warn` with the delivery id). Completions
/// are always kept: they follow handlers that ran.
pub const MAX_BACKGROUND_RELEASES: usize = 10_000;

const MIN_LEASE: Duration = Duration::from_secs(1);
const MAX_LEASE: Duration = Duration::from_secs(3600);
const MAX_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
const MIN_STORE_TIMEOUT: Duration = Duration::from_millis(10);

/// Verifies deliveries and claims each one in a store, so that it is handled once.
///
/// Each delivery is claimed under two keys at once ([`DeliveryKeys`]): its id (the provider's
/// retries) and a digest of its signed bytes (a captured request replayed under a fresh id,
/// since the id is not signed). A consequence of the second: two deliveries with different
/// ids but the same body and the same timestamp are the same signed message, and the second is
/// treated as a replay. Providers that put an event id in the body never hit this.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use hookverify::{MemoryStore, Outcome, Receiver, Signer, Verifier};
/// use hookverify::store::memory::DEFAULT_CAPACITY;
///
/// let verifier = Verifier::builder().secret("current", "whsec_example").build()?;
/// let receiver = Receiver::new(verifier, MemoryStore::new(DEFAULT_CAPACITY)?);
///
/// let body = br#"{"type":"run.finished"}"#;
/// let headers = Signer::new("whsec_example")?.sign("dlv_1", body).header_map()?;
/// match receiver.receive(&headers, body).await? {
///     Outcome::Fresh(claim) => {
///         // ... handle the event; on failure call `claim.release()` instead.
///         claim.complete().await?;
///     }
///     Outcome::Duplicate(_) => { /* acknowledge, do nothing */ }
/// }
/// // The provider's retry of the same delivery is now a duplicate.
/// assert!(matches!(receiver.receive(&headers, body).await?, Outcome::Duplicate(_)));
/// # Ok(())
/// # }
/// ```
pub struct Receiver<S> {
    verifier: Verifier,
    store: Arc<S>,
    settings: Arc<Settings>,
    heartbeat: Arc<Heartbeat<S>>,
}

/// What a claim guard needs of its receiver's configuration.
#[derive(Debug)]
struct Settings {
    namespace: Namespace,
    lease: Duration,
    retention: Duration,
    store_timeout: Duration,
    /// The completions and releases running in the background, shared with every subscription's
    /// receiver. Closed from the start: waiting on it returns whenever none runs.
    background: TaskTracker,
}

/// A tracker for [`Settings::background`].
fn background_tracker() -> TaskTracker {
    let tracker = TaskTracker::new();
    tracker.close();
    tracker
}

impl<S> Clone for Receiver<S> {
    fn clone(&self) -> Self {
        Self {
            verifier: self.verifier.clone(),
            store: Arc::clone(&self.store),
            settings: Arc::clone(&self.settings),
            heartbeat: Arc::clone(&self.heartbeat),
        }
    }
}

/// Configuration for a [`Receiver`]; every value is checked by [`build`](Self::build).
#[derive(Debug)]
pub struct ReceiverBuilder<S> {
    verifier: Verifier,
    store: Arc<S>,
    namespace: Namespace,
    lease: Duration,
    retention: Option<Duration>,
    store_timeout: Duration,
}

impl<S: DeliveryStore> ReceiverBuilder<S> {
    /// Keeps this receiver's keys apart from other endpoints' in a shared store.
    #[must_use]
    pub fn namespace(mut self, namespace: Namespace) -> Self {
        self.namespace = namespace;
        self
    }

    /// How long a claim holds without a heartbeat before another attempt may take the delivery
    /// over (a crashed process's claims): 1 s to 1 h, default 30 s.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long a handled delivery is remembered: at least twice the verifier's tolerance (a
    /// replay inside the window must still be caught) and at least the lease, at most 30 days.
    /// Default: twice the tolerance plus the lease.
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Bounds each store call: 10 ms to a quarter of the lease, default 2 s. A store slower
    /// than that counts as unavailable (503), and the claim it may still write is released in
    /// the background with its token.
    #[must_use]
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// Checks the configuration.
    pub fn build(self) -> Result<Receiver<S>, ConfigError> {
        let out_of_range = |setting: &'static str, allowed: String| {
            Err(ConfigError::OutOfRange { setting, allowed })
        };
        if !(MIN_LEASE..=MAX_LEASE).contains(&self.lease) {
            return out_of_range("lease", "from 1 s to 1 h".into());
        }
        let window = self.verifier.tolerance().unsigned_abs().saturating_mul(2);
        let retention = self
            .retention
            .unwrap_or_else(|| default_retention(&self.verifier, self.lease));
        let least = window.max(self.lease);
        if !(least..=MAX_RETENTION).contains(&retention) {
            return out_of_range(
                "retention",
                format!(
                    "from {} s (twice the tolerance, and at least the lease) to 30 days",
                    least.as_secs()
                ),
            );
        }
        let most = self.lease / 4;
        if !(MIN_STORE_TIMEOUT..=most).contains(&self.store_timeout) {
            return out_of_range(
                "store_timeout",
                format!(
                    "from 10 ms to a quarter of the lease ({} ms)",
                    most.as_millis()
                ),
            );
        }
        let settings = Settings {
            namespace: self.namespace,
            lease: self.lease,
            retention,
            store_timeout: self.store_timeout,
            background: background_tracker(),
        };
        Ok(Receiver::assemble(self.verifier, self.store, settings))
    }
}

/// Twice the tolerance (a replay from either edge of the window) plus the lease. The verifier
/// bounds its tolerance to a day, so this is always inside the allowed range.
fn default_retention(verifier: &Verifier, lease: Duration) -> Duration {
    let window = verifier.tolerance().unsigned_abs().saturating_mul(2);
    window.saturating_add(lease)
}

/// What a verified request turned out to be.
#[derive(Debug)]
#[must_use = "a fresh claim must be completed or released"]
#[allow(
    clippy::large_enum_variant,
    reason = "one per delivery, moved once: boxing the guard would cost an allocation"
)]
pub enum Outcome<S: DeliveryStore> {
    /// New: handle it, then complete or release the claim.
    Fresh(ClaimGuard<S>),
    /// Already handled or being handled: do not handle it again.
    Duplicate(Duplicate),
}

/// Why a delivery is a duplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicate {
    /// Its delivery id was handled successfully.
    Completed,
    /// Its delivery id or its signed bytes are being handled by another attempt right now; that
    /// attempt may still fail, so the provider should try again.
    InFlight,
    /// Its exact signed bytes were handled under another delivery id: a replay. The receiver
    /// logs it at `info` with both ids: `delivery_id` (this one) and `completed_by` (the one
    /// whose handler ran, as the store recorded it; absent for methods without an id).
    Replay,
}

impl Duplicate {
    /// A stable name: `completed`, `in_flight`, `replay`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::InFlight => "in_flight",
            Self::Replay => "replay",
        }
    }
}

impl<S: DeliveryStore> Receiver<S> {
    /// Composes a verifier and a store with the defaults: lease 30 s, retention twice the
    /// tolerance plus the lease, store timeout 2 s, namespace `default`.
    pub fn new(verifier: Verifier, store: impl Into<Arc<S>>) -> Self {
        let settings = Settings {
            namespace: Namespace::default(),
            lease: DEFAULT_LEASE,
            retention: default_retention(&verifier, DEFAULT_LEASE),
            store_timeout: DEFAULT_STORE_TIMEOUT,
            background: background_tracker(),
        };
        Self::assemble(verifier, store.into(), settings)
    }

    /// A receiver over checked settings, with its heartbeat.
    fn assemble(verifier: Verifier, store: Arc<S>, settings: Settings) -> Self {
        let heartbeat = Heartbeat::new(Arc::clone(&store), settings.lease, settings.store_timeout);
        Self {
            verifier,
            store,
            settings: Arc::new(settings),
            heartbeat: Arc::new(heartbeat),
        }
    }

    /// Starts a configuration from the defaults of [`new`](Self::new).
    pub fn builder(verifier: Verifier, store: impl Into<Arc<S>>) -> ReceiverBuilder<S> {
        ReceiverBuilder {
            verifier,
            store: store.into(),
            namespace: Namespace::default(),
            lease: DEFAULT_LEASE,
            retention: None,
            store_timeout: DEFAULT_STORE_TIMEOUT,
        }
    }

    /// A receiver for one subscription: its own verifier and its own dedupe namespace, on this
    /// receiver's store, heartbeat, lease and store timeout. The retention grows to twice the
    /// subscription's tolerance plus the lease when that is longer.
    pub fn for_subscription(&self, verifier: Verifier, namespace: Namespace) -> Self {
        let settings = Settings {
            namespace,
            lease: self.settings.lease,
            retention: self
                .settings
                .retention
                .max(default_retention(&verifier, self.settings.lease)),
            store_timeout: self.settings.store_timeout,
            background: self.settings.background.clone(),
        };
        Self {
            verifier,
            store: Arc::clone(&self.store),
            settings: Arc::new(settings),
            heartbeat: Arc::clone(&self.heartbeat),
        }
    }

    /// The dedupe namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.settings.namespace
    }

    /// The verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The store.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The lease of each claim.
    pub fn lease(&self) -> Duration {
        self.settings.lease
    }

    /// How long a handled delivery is remembered.
    pub fn retention(&self) -> Duration {
        self.settings.retention
    }

    /// The bound on each store call.
    pub fn store_timeout(&self) -> Duration {
        self.settings.store_timeout
    }

    /// Waits until the completions and releases this receiver (and every receiver made from it
    /// by [`for_subscription`](Self::for_subscription)) runs in the background have finished:
    /// those of guards dropped without settling, of calls that timed out or whose request was
    /// dropped. Each retries until the store answers or the lease ends, so this takes at most a
    /// lease.
    ///
    /// Await it in a graceful shutdown, after the server stopped taking requests and finished
    /// those in flight: a process that exits sooner leaves those claims to their lease, and a
    /// completion not recorded then lets a replay under a fresh id run the handler again once
    /// the lease ended.
    pub async fn settled(&self) {
        self.settings.background.wait().await;
    }

    /// Verifies the request, then claims it. Unverified requests never reach the store.
    pub async fn receive(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Outcome<S>, ReceiveError> {
        let verified = self.verifier.verify(headers, body)?;
        self.claim(verified, body).await
    }

    /// Claims a delivery verified by [`Self::verifier`], whose body is `body`.
    ///
    /// The timestamp, if the method has one, is checked against the window again first (the
    /// body may have arrived long after the headers), then the keys the method dedupes on (the
    /// delivery id, required then, and the message key: see [`Method`](crate::Method)) are
    /// claimed in one store call, bounded by the store timeout. If that call fails or times out,
    /// or this future is dropped before the store answered, the claim (which may still land) is
    /// taken back in the background with its token, so the provider's retry is not refused as
    /// in flight.
    pub async fn claim(&self, verified: Verified, body: &[u8]) -> Result<Outcome<S>, ReceiveError> {
        let method = self.verifier.method();
        let id = match method.dedupes_on_id() {
            true => Some(
                verified
                    .delivery_id()
                    .ok_or_else(|| self.verifier.missing_delivery_id())?,
            ),
            false => None,
        };
        if let Some(unix_nanos) = verified.unix_nanos() {
            self.verifier.check_window(unix_nanos)?;
        }
        let namespace = &self.settings.namespace;
        let keys = match (method.dedupes_on_message(), id) {
            (false, Some(id)) => DeliveryKeys::id_only(namespace, id),
            _ => DeliveryKeys::new(namespace, id, &verified.message_digest(body)),
        };
        let token = ClaimToken::random()?;
        let keys = Arc::new(keys);
        // Until the store's answer is in, the claim may land unseen: if this future is dropped
        // (the client hung up) or the call fails, it is taken back with its token.
        let mut unanswered = Unanswered {
            receiver: self,
            keys: Some(Arc::clone(&keys)),
            token,
            how: Settle::TakeBack,
        };
        let (answer, waited) = {
            let claim = std::pin::pin!(self.store.claim(&keys, token, self.settings.lease));
            bounded_waited(self.settings.store_timeout, claim).await
        };
        if let (Some(Err(_)), false) = (&answer, waited) {
            // Refused at once, before anything could be on its way (a full memory store, no
            // connection): one release that answers settles it. A failure after a wait (a
            // connection cut mid-call) may still be followed by the claim landing.
            unanswered.how = Settle::Release;
        }
        let answer = match answered(answer, "claim") {
            Ok(answer) => {
                unanswered.taken();
                answer
            }
            Err(error) => {
                tracing::warn!(
                    target: "hookverify",
                    delivery_id = id,
                    %error,
                    "store unavailable: delivery refused (503); the provider's retry is handled \
                     if the store answers by then, else recover this delivery id from the \
                     provider"
                );
                return Err(ReceiveError::StoreUnavailable(error));
            }
        };
        let (duplicate, completed_by) = match answer {
            Claim::Fresh => {
                let registration = self.heartbeat.register(Arc::clone(&keys), token);
                return Ok(Outcome::Fresh(ClaimGuard {
                    verified,
                    keys,
                    token,
                    store: Arc::clone(&self.store),
                    settings: Arc::clone(&self.settings),
                    registration: Some(registration),
                    stage: Stage::Held,
                }));
            }
            Claim::InFlight => (Duplicate::InFlight, None),
            Claim::Completed => (Duplicate::Completed, None),
            Claim::Replay { completed_by } => (Duplicate::Replay, completed_by),
        };
        // A replay names both deliveries: this one, dropped, and the one whose handler ran.
        tracing::info!(
            target: "hookverify",
            delivery_id = id,
            completed_by = completed_by.as_deref(),
            message_key = keys.message().map(DedupeKey::as_str),
            duplicate = duplicate.as_str(),
            "duplicate delivery not handled again"
        );
        Ok(Outcome::Duplicate(duplicate))
    }
}

/// A claim sent to the store whose answer was not taken (the call failed or timed out, or the
/// request was dropped): dropped, it releases the claim in the background with its token, in
/// case the claim landed.
struct Unanswered<'r, S: DeliveryStore> {
    receiver: &'r Receiver<S>,
    /// `None` once the answer is taken.
    keys: Option<Arc<DeliveryKeys>>,
    token: ClaimToken,
    /// [`Settle::TakeBack`] while the claim may still be on its way, [`Settle::Release`] once
    /// the store refused it at once.
    how: Settle,
}

impl<S: DeliveryStore> Unanswered<'_, S> {
    /// The store answered: the claim is the caller's to settle.
    fn taken(mut self) {
        self.keys = None;
    }
}

impl<S: DeliveryStore> Drop for Unanswered<'_, S> {
    fn drop(&mut self) {
        if let Some(keys) = self.keys.take() {
            let receiver = self.receiver;
            let (store, settings) = (&receiver.store, &receiver.settings);
            spawn_settle(
                Arc::clone(store),
                Arc::clone(settings),
                keys,
                self.token,
                self.how,
            );
        }
    }
}

impl<S> fmt::Debug for Receiver<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("verifier", &self.verifier)
            .field("namespace", &self.settings.namespace)
            .field("lease", &self.settings.lease)
            .field("retention", &self.settings.retention)
            .field("store_timeout", &self.settings.store_timeout)
            .finish_non_exhaustive()
    }
}

/// Ownership of a fresh delivery's claim.
///
/// While it lives, the receiver's heartbeat renews the claim every third of a lease, so a
/// handler may take as long as it needs and still is the only one to handle the delivery.
/// Call [`complete`](Self::complete) once the delivery is handled, or
/// [`release`](Self::release) if handling failed so that the provider's retry is handled.
/// Dropped without either (an early return, a panic, a cancelled future), it releases the claim
/// on the current Tokio runtime; outside one, the lease frees it. A `complete` or `release`
/// whose future is dropped before the store answered (a client that hung up meanwhile) is
/// finished in the background the same way: a completion is never turned into a release, nor
/// left to block the provider's retry for a lease.
pub struct ClaimGuard<S: DeliveryStore> {
    verified: Verified,
    keys: Arc<DeliveryKeys>,
    token: ClaimToken,
    store: Arc<S>,
    settings: Arc<Settings>,
    registration: Option<Registration<S>>,
    stage: Stage,
}

/// Where a guard's claim stands: what dropping the guard has to finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Nobody settled it yet: dropping releases it.
    Held,
    /// A `complete` is waiting for the store: dropping finishes it in the background.
    Completing,
    /// A `release` is waiting for the store: dropping finishes it in the background.
    Releasing,
    /// The store answered, or a background task took over.
    Settled,
}

impl<S: DeliveryStore> ClaimGuard<S> {
    /// The verified delivery.
    pub fn verified(&self) -> &Verified {
        &self.verified
    }

    /// The keys this guard holds, and its token: for stores that complete inside the caller's
    /// own transaction (PostgreSQL's `complete_in`), followed by [`complete`](Self::complete)
    /// (which then finds the work done and answers `Ok`).
    pub fn claim(&self) -> (&DeliveryKeys, ClaimToken) {
        (&self.keys, self.token)
    }

    /// Remembers the delivery as handled, for the retention.
    ///
    /// Call it only once the handler succeeded: from then on the claim is never released. If
    /// the store fails or is too slow, the completion is retried in the background until the
    /// lease ends, and the claim holds until then (a retry meanwhile is answered "in flight").
    /// A claim whose lease ran out while nobody took the delivery over (renewals failed in a
    /// store outage) is still completed. If the claim was lost (its lease ran out and another
    /// attempt took the delivery over: it holds or completed it), the error is
    /// [`ReceiveError::ClaimLost`], logged at `error`: the delivery may have been handled twice.
    pub async fn complete(mut self) -> Result<(), ReceiveError> {
        self.complete_in_place().await
    }

    /// Gives the delivery back, so the provider's retry is handled. Its signed bytes stay
    /// remembered for the retention, as released by this delivery id: once the retry under this
    /// id is handled, a copy of them under another id is a replay.
    pub async fn release(mut self) -> Result<(), ReceiveError> {
        self.release_in_place().await
    }

    /// [`complete`](Self::complete) through a borrow.
    pub(crate) async fn complete_in_place(&mut self) -> Result<(), ReceiveError> {
        if self.stage != Stage::Held {
            return Ok(());
        }
        // Past this point the claim is never released: the handler succeeded.
        self.stage = Stage::Completing;
        self.stop_heartbeat();
        let (store, keys, token) = (&self.store, &self.keys, self.token);
        let call = std::pin::pin!(store.complete(keys, token, self.settings.retention));
        let answer = answered(bounded(self.settings.store_timeout, call).await, "complete");
        self.stage = Stage::Settled;
        match answer {
            Ok(true) => Ok(()),
            Ok(false) => {
                tracing::error!(
                    target: "hookverify",
                    delivery_id = self.keys.delivery_id(),
                    "claim lost before completion (its lease ran out and another attempt took \
                     the delivery over: it holds or completed it): it may have been handled twice"
                );
                Err(ReceiveError::ClaimLost)
            }
            Err(error) => {
                tracing::warn!(
                    target: "hookverify",
                    delivery_id = self.keys.delivery_id(),
                    %error,
                    "could not record the delivery as handled; retrying in the background, the \
                     claim holds until its lease ends"
                );
                self.settle_later(Settle::Complete);
                Err(ReceiveError::StoreUnavailable(error))
            }
        }
    }

    /// [`release`](Self::release) through a borrow.
    pub(crate) async fn release_in_place(&mut self) -> Result<(), ReceiveError> {
        if self.stage != Stage::Held {
            return Ok(());
        }
        self.stage = Stage::Releasing;
        self.stop_heartbeat();
        let retain = self.settings.retention;
        let call = std::pin::pin!(self.store.release(&self.keys, self.token, retain));
        let answer = answered(bounded(self.settings.store_timeout, call).await, "release");
        self.stage = Stage::Settled;
        match answer {
            Ok(_) => Ok(()),
            Err(error) => {
                self.settle_later(Settle::Release);
                Err(ReceiveError::StoreUnavailable(error))
            }
        }
    }

    /// Completes or releases in the background (see [`spawn_settle`]).
    fn settle_later(&self, how: Settle) {
        spawn_settle(
            Arc::clone(&self.store),
            Arc::clone(&self.settings),
            Arc::clone(&self.keys),
            self.token,
            how,
        );
    }

    fn stop_heartbeat(&mut self) {
        // Dropping the registration takes the claim off the heartbeat's list.
        self.registration = None;
    }
}

impl<S: DeliveryStore> Drop for ClaimGuard<S> {
    fn drop(&mut self) {
        let how = match self.stage {
            Stage::Held | Stage::Releasing => Settle::Release,
            Stage::Completing => Settle::Complete,
            Stage::Settled => return,
        };
        self.stage = Stage::Settled;
        self.stop_heartbeat();
        self.settle_later(how);
    }
}

impl<S: DeliveryStore> fmt::Debug for ClaimGuard<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimGuard")
            .field("verified", &self.verified)
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
enum Settle {
    Complete,
    Release,
    /// Releases a claim that did not answer, or failed after a wait: it may land after the
    /// release looked (behind a lock, on another connection), or partly before it (a claim
    /// still being written can overtake a release on a key the release already passed), so
    /// the release is sent again, whatever it answered, until the claim can no longer land (a
    /// store timeout from now: the caller gave up on it by then, and the stores bound its wait
    /// on their side).
    TakeBack,
}

/// Completes or releases in the background, retrying with backoff until the store answers (a
/// take-back: until its window has passed too) or the lease ends (after which the store frees
/// the claim by itself). Outside a Tokio runtime, the lease does it.
fn spawn_settle<S: DeliveryStore>(
    store: Arc<S>,
    settings: Arc<Settings>,
    keys: Arc<DeliveryKeys>,
    token: ClaimToken,
    how: Settle,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let background = settings.background.clone();
    if !matches!(how, Settle::Complete) && background.len() >= MAX_BACKGROUND_RELEASES {
        tracing::debug!(
            target: "hookverify",
            delivery_id = keys.delivery_id(),
            "too many releases pending in the background; this claim lapses with its lease"
        );
        return;
    }
    runtime.spawn(background.track_future(async move {
        let now = tokio::time::Instant::now();
        let (give_up, landed_by) = (now + settings.lease, now + settings.store_timeout);
        let mut pause = Duration::from_millis(50);
        loop {
            let call = async {
                match how {
                    Settle::Complete => store.complete(&keys, token, settings.retention).await,
                    Settle::Release | Settle::TakeBack => {
                        store.release(&keys, token, settings.retention).await
                    }
                }
            };
            if let Ok(Ok(done)) = tokio::time::timeout(settings.store_timeout, call).await {
                let look_again =
                    matches!(how, Settle::TakeBack) && tokio::time::Instant::now() < landed_by;
                if !look_again {
                    if matches!(how, Settle::Complete) && !done {
                        tracing::error!(
                            target: "hookverify",
                            delivery_id = keys.delivery_id(),
                            "claim lost before completion: the delivery may have been handled \
                             twice"
                        );
                    }
                    return;
                }
            }
            if tokio::time::Instant::now() + pause >= give_up {
                tracing::warn!(
                    target: "hookverify",
                    delivery_id = keys.delivery_id(),
                    action = ?how,
                    "store still unavailable; the claim lapses with its lease"
                );
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }));
}

/// Runs a store call within `limit`; `None` if it did not finish in time.
///
/// The call is polled before any timer exists: one that finishes on its first poll (the memory
/// store's always do) costs no timer. A call that has to wait gets one from its first wait, so
/// it stays bounded.
pub(crate) async fn bounded<F: Future>(limit: Duration, call: Pin<&mut F>) -> Option<F::Output> {
    bounded_waited(limit, call).await.0
}

/// [`bounded`], and whether the call had to wait (it did not finish on its first poll).
async fn bounded_waited<F: Future>(
    limit: Duration,
    mut call: Pin<&mut F>,
) -> (Option<F::Output>, bool) {
    let mut timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let output = std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = call.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await;
    (output, timer.is_some())
}

/// A bounded store call's answer, a timeout counting as an error.
fn answered<T>(outcome: Option<Result<T, StoreError>>, call: &str) -> Result<T, StoreError> {
    outcome.unwrap_or_else(|| {
        Err(StoreError::new(format!(
            "the store did not answer the {call} in time"
        )))
    })
}
