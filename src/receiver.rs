//! The per-request entry point: verify, then claim; a guard completes or releases.

use std::fmt;
use std::sync::Arc;

use http::HeaderMap;
use time::Duration;

use crate::clock::Clock;
use crate::delivery::{KeptDelivery, Verified};
use crate::error::Error;
use crate::store::{Claim, ClaimToken, DedupeKey, DeliveryStore, Namespace};
use crate::verifier::Verifier;

/// The default lease: longer than the provider's 10 s attempt timeout, so a live handler keeps
/// its claim, short enough that a dead worker's claim frees up before the provider gives up.
pub const DEFAULT_LEASE: Duration = Duration::seconds(30);

/// Verifies deliveries and claims each one in a store, so that it is handled once.
///
/// Two keys are claimed per delivery: its id (catches the provider's retries, re-signed or not)
/// and its MAC (catches a captured request replayed under a fresh id, since the id is not
/// signed). A consequence of the second: two deliveries with different ids but the same body,
/// signed by the same secret in the same second, carry the same MAC, and the second is
/// treated as a replay. Providers that put an event id in the body never hit this.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::num::NonZeroUsize;
/// use hookverify::{MemoryStore, Outcome, Receiver, Signer, Verifier};
///
/// let verifier = Verifier::builder().secret("current", "whsec_example").build()?;
/// let store = MemoryStore::new(NonZeroUsize::new(100_000).expect("non-zero"));
/// let receiver = Receiver::new(verifier, store);
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
    namespace: Namespace,
    lease: Duration,
    retention: Duration,
}

impl<S> Clone for Receiver<S> {
    fn clone(&self) -> Self {
        Self {
            verifier: self.verifier.clone(),
            store: Arc::clone(&self.store),
            namespace: self.namespace.clone(),
            lease: self.lease,
            retention: self.retention,
        }
    }
}

/// What a verified request turned out to be.
#[derive(Debug)]
#[must_use = "a fresh claim must be completed or released"]
// The guard is moved once or twice per request; boxing it would cost an allocation each time.
#[allow(clippy::large_enum_variant)]
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
    /// Its delivery id is being handled by another worker right now.
    InFlight,
    /// Its exact signed bytes were accepted under another delivery id: a replay.
    Replay,
}

impl<S: DeliveryStore> Receiver<S> {
    /// Composes a verifier and a store, with the default lease (30 s), retention (twice the
    /// tolerance plus the lease) and namespace (`default`).
    pub fn new(verifier: Verifier, store: impl Into<Arc<S>>) -> Self {
        let retention = verifier
            .tolerance()
            .saturating_mul(2)
            .saturating_add(DEFAULT_LEASE);
        Self {
            verifier,
            store: store.into(),
            namespace: Namespace::default(),
            lease: DEFAULT_LEASE,
            retention,
        }
    }

    /// Keeps this receiver's keys apart from other endpoints' in a shared store.
    #[must_use]
    pub fn namespace(mut self, namespace: Namespace) -> Self {
        self.namespace = namespace;
        self
    }

    /// How long a claim holds before another worker may take the delivery over. Keep it longer
    /// than the handler's worst case.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How long a completed delivery id is remembered. Shorter than twice the tolerance lets a
    /// re-signed retry through again.
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
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
    pub fn lease_duration(&self) -> Duration {
        self.lease
    }

    /// Verifies the request, then claims it. Unverified requests never reach the store.
    pub async fn receive(&self, headers: &HeaderMap, body: &[u8]) -> Result<Outcome<S>, Error> {
        let verified = self.verifier.verify(headers, body)?;
        self.claim(verified).await
    }

    /// Claims a delivery verified by [`Self::verifier`]: first its delivery id (required
    /// here), then its MAC.
    pub async fn claim(&self, verified: Verified<'_>) -> Result<Outcome<S>, Error> {
        self.claim_kept(KeptDelivery::new(verified)).await
    }

    /// [`claim`](Self::claim) for a delivery already copied out of its request.
    pub(crate) async fn claim_kept(&self, kept: KeptDelivery) -> Result<Outcome<S>, Error> {
        let id = kept.delivery_id().ok_or_else(|| Error::MissingHeader {
            header: self.verifier.header_names().delivery_id.clone(),
        })?;
        let id_key = DedupeKey::delivery(&self.namespace, id);
        let id_token = match self.store.claim(&id_key, self.lease).await? {
            Claim::Fresh(token) => token,
            Claim::Completed => return Ok(Outcome::Duplicate(Duplicate::Completed)),
            Claim::InFlight => return Ok(Outcome::Duplicate(Duplicate::InFlight)),
        };
        let mut guard = ClaimGuard {
            verified: kept,
            store: Arc::clone(&self.store),
            clock: Arc::clone(self.verifier.clock()),
            tolerance: self.verifier.tolerance(),
            retention: self.retention,
            id: Some((id_key, id_token)),
            mac: None,
        };
        let mac_key = DedupeKey::mac(&self.namespace, guard.verified().tag());
        match self.store.claim(&mac_key, self.lease).await {
            Ok(Claim::Fresh(token)) => {
                guard.mac = Some((mac_key, token));
                Ok(Outcome::Fresh(guard))
            }
            Ok(Claim::Completed | Claim::InFlight) => {
                guard.release_in_place().await?;
                Ok(Outcome::Duplicate(Duplicate::Replay))
            }
            Err(error) => {
                // Best effort: if this fails too, the lease frees the id.
                let _ = guard.release_in_place().await;
                Err(error.into())
            }
        }
    }
}

impl<S> fmt::Debug for Receiver<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("verifier", &self.verifier)
            .field("namespace", &self.namespace)
            .field("lease", &self.lease)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

/// Ownership of a fresh delivery's claims.
///
/// Call [`complete`](Self::complete) once the delivery is handled, or
/// [`release`](Self::release) if handling failed so that the provider's retry is handled.
/// Dropped without either (an early return, a panic, a cancelled future), it releases the claims
/// on the current Tokio runtime; outside one, the lease frees them.
pub struct ClaimGuard<S: DeliveryStore> {
    verified: KeptDelivery,
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    tolerance: Duration,
    retention: Duration,
    id: Option<(DedupeKey, ClaimToken)>,
    mac: Option<(DedupeKey, ClaimToken)>,
}

impl<S: DeliveryStore> ClaimGuard<S> {
    /// The verified delivery.
    pub fn verified(&self) -> Verified<'_> {
        self.verified.verified()
    }

    /// The delivery id's key and claim token, while the guard holds them, with the retention
    /// that [`complete`](Self::complete) would give the id.
    ///
    /// For stores that can complete inside the caller's own transaction (PostgreSQL's
    /// `complete_in`): complete the id in the transaction that holds the handler's writes,
    /// commit, then call [`complete`](Self::complete) for the MAC (the id's second completion
    /// is a no-op). If the transaction rolls back, [`release`](Self::release) instead.
    pub fn delivery_claim(&self) -> Option<(&DedupeKey, ClaimToken, Duration)> {
        self.id
            .as_ref()
            .map(|(key, token)| (key, *token, self.retention))
    }

    /// Remembers the delivery as handled: its id for the retention window, its MAC until its
    /// timestamp leaves the tolerance window (after that, a replay fails verification anyway).
    ///
    /// The MAC is completed first: if the store fails between the two, the id's claim lapses
    /// with its lease and a later copy is still caught by the MAC.
    pub async fn complete(mut self) -> Result<(), Error> {
        self.complete_in_place().await
    }

    /// Gives the delivery back, so the provider's retry is handled.
    pub async fn release(mut self) -> Result<(), Error> {
        self.release_in_place().await
    }

    /// [`complete`](Self::complete) through a borrow: the future holds a pointer rather than
    /// the whole guard, so that callers' futures stay small. Whatever it has not settled when
    /// it fails is released when the guard is dropped.
    pub(crate) async fn complete_in_place(&mut self) -> Result<(), Error> {
        if let Some((key, token)) = &self.mac {
            let left = self.verified().timestamp() + self.tolerance - self.clock.now();
            if left.is_positive() {
                self.store.complete(key, *token, left).await?;
            } else {
                self.store.release(key, *token).await?;
            }
            self.mac = None;
        }
        if let Some((key, token)) = &self.id {
            self.store.complete(key, *token, self.retention).await?;
            self.id = None;
        }
        Ok(())
    }

    /// [`release`](Self::release) through a borrow, like
    /// [`complete_in_place`](Self::complete_in_place).
    pub(crate) async fn release_in_place(&mut self) -> Result<(), Error> {
        for slot in [&mut self.mac, &mut self.id] {
            if let Some((key, token)) = slot {
                self.store.release(key, *token).await?;
                *slot = None;
            }
        }
        Ok(())
    }
}

impl<S: DeliveryStore> Drop for ClaimGuard<S> {
    fn drop(&mut self) {
        let claims: Vec<_> = self.mac.take().into_iter().chain(self.id.take()).collect();
        if claims.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let store = Arc::clone(&self.store);
            runtime.spawn(async move {
                for (key, token) in claims {
                    // A failure here leaves the claim to its lease.
                    let _ = store.release(&key, token).await;
                }
            });
        }
    }
}

impl<S: DeliveryStore> fmt::Debug for ClaimGuard<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimGuard")
            .field("verified", &self.verified)
            .field("settled", &(self.id.is_none() && self.mac.is_none()))
            .finish_non_exhaustive()
    }
}
