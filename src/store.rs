//! Dedupe: the store contract every backend implements, and the keys it stores.
//!
//! A receiver handles each delivery once by claiming it in a [`DeliveryStore`] before running
//! its handler, then completing the claim (the handler succeeded: remember the delivery) or
//! releasing it (the handler failed: let the provider's retry through). [`Receiver`] runs that
//! protocol; a store only has to answer the four calls atomically.
//!
//! # What identifies a delivery
//!
//! Up to two keys, claimed, renewed, completed and released together in one atomic step
//! ([`DeliveryKeys`]); which ones, the signing method says ([`Method`](crate::Method)):
//!
//! - the **delivery id** (when the method carries one): catches the provider's retries, which
//!   may be signed again with a later timestamp;
//! - the **message key**: a SHA-256 digest of the signed bytes themselves
//!   ([`MessageDigest`]). For the methods whose delivery id is not signed, a captured request
//!   can be replayed inside the window under a fresh id; its signed bytes are the same,
//!   whatever secret a replica happened to match first. Methods that sign the id need only
//!   the id's key, methods that sign nothing have no message to key, and methods without an id
//!   header (Stripe, Slack) have only the message key.
//!
//! [`Receiver`]: crate::Receiver

pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};

pub use memory::MemoryStore;

/// Proof of owning a claim: only its holder can renew, complete or release it.
///
/// The caller makes the token before it claims (a random 64-bit value), so that a claim whose
/// answer was lost (a timeout, a cut connection) can still be cleaned up with the token it was
/// written with, and a repeated claim with the same token is recognised as the same claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimToken(u64);

impl ClaimToken {
    /// Wraps a raw token (tests and stores that read tokens back).
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// A new token: distinct from every other this process makes, and random across processes
    /// (a per-process random seed, read once from the OS, and a counter, mixed by a bijection:
    /// no system call per claim).
    pub fn random() -> Result<Self, StoreError> {
        static SEED: OnceLock<Result<u64, String>> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let seed = SEED.get_or_init(|| {
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes)
                .map(|()| u64::from_le_bytes(bytes))
                .map_err(|e| format!("no randomness: {e}"))
        });
        let seed = seed.as_ref().map_err(|e| StoreError::new(e.clone()))?;
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        Ok(Self(mix(seed.wrapping_add(count))))
    }

    /// The raw value, for storing.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// SplitMix64's finalizer: a bijection on `u64`, so distinct counters give distinct tokens.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The answer to a claim.
///
/// A store writes the [`Replay`](Self::Replay) answer with the delivery id it recorded when
/// the message key was completed:
///
/// ```
/// use hookverify::store::Claim;
///
/// let replay = Claim::Replay { completed_by: Some("dlv_original".into()) };
/// assert_ne!(replay, Claim::Replay { completed_by: None });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Neither key is held or remembered (or both are held by this very token): the caller
    /// owns both now, until the lease ends.
    Fresh,
    /// Another token holds an unexpired claim on the delivery id or on the message key. The
    /// other attempt may still fail and release: answer so that the provider retries.
    InFlight,
    /// The delivery id was completed and is still retained: a duplicate.
    Completed,
    /// The message key was completed under another delivery id: a replay of accepted bytes.
    /// Or it was released by an attempt under another delivery id (its handler failed) that has
    /// completed since (the provider's retry, signed again): a copy of the failed attempt.
    Replay {
        /// The delivery id that completed the message key (the one whose handler ran), or whose
        /// failed attempt released it, for the logs: a replay under a fresh id is then seen
        /// next to the delivery it copies. `None` when the message was completed without an id
        /// (methods that dedupe on the message alone: Stripe, Slack), or by a store or an
        /// earlier version that did not record one.
        completed_by: Option<Arc<str>>,
    },
}

/// A store could not answer. Receivers fail closed on it: nothing is accepted unclaimed.
#[derive(Clone)]
pub struct StoreError {
    message: Arc<str>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl StoreError {
    /// An error described by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into().into(),
            source: None,
        }
    }

    /// An error caused by a backend's own error.
    pub fn from_source(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            message: message.into().into(),
            source: Some(Arc::new(source)),
        }
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreError")
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// A SHA-256 digest of a delivery's signed bytes (`{timestamp}.{body}` for the default
/// method): the same on every replica, whichever of its secrets matched.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageDigest([u8; 32]);

impl MessageDigest {
    /// The digest of the signed bytes, given in the pieces they are made of.
    pub fn of(parts: &[&[u8]]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Self(hasher.finalize().into())
    }

    /// Wraps a digest computed elsewhere.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest's bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for MessageDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageDigest({})", hex::encode(&self.0[..8]))
    }
}

/// One key in a dedupe store: its text and a fixed-size digest of it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DedupeKey {
    text: String,
    digest: [u8; 16],
}

impl DedupeKey {
    fn new(text: String) -> Self {
        let hashed = Sha256::digest(text.as_bytes());
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&hashed[..16]);
        Self { text, digest }
    }

    /// The key as text: `{namespace}:id:{delivery id}` or `{namespace}:msg:{32 hex digits}`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A 128-bit digest of the key, for stores that hold many keys in memory.
    pub fn digest(&self) -> &[u8; 16] {
        &self.digest
    }
}

impl fmt::Debug for DedupeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DedupeKey").field(&self.text).finish()
    }
}

/// Everything that identifies one delivery in a store: its namespace, its delivery id's key
/// (when it has one) and its message key (when its method dedupes on one); at least one of the
/// two. Stores act on all of them in one atomic step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryKeys {
    namespace: Namespace,
    id: Option<DedupeKey>,
    message: Option<DedupeKey>,
}

impl DeliveryKeys {
    /// The keys of a delivery in `namespace`, with a message key. The delivery id, when given,
    /// is one that passed validation (1 to 256 visible ASCII characters).
    pub fn new(namespace: &Namespace, delivery_id: Option<&str>, message: &MessageDigest) -> Self {
        let mut text = String::with_capacity(namespace.0.len() + 5 + 32);
        text.push_str(&namespace.0);
        text.push_str(":msg:");
        // The first 128 bits of the digest: as unique as the key digests stores keep anyway.
        let mut first_half = [0u8; 16];
        first_half.copy_from_slice(&message.0[..16]);
        text.push_str(hex::Buffer::<16>::new().format(&first_half));
        Self {
            namespace: namespace.clone(),
            id: delivery_id.map(|id| id_key(namespace, id)),
            message: Some(DedupeKey::new(text)),
        }
    }

    /// The keys of a delivery identified by its delivery id alone (methods whose id is signed,
    /// or that sign nothing).
    pub fn id_only(namespace: &Namespace, delivery_id: &str) -> Self {
        Self {
            namespace: namespace.clone(),
            id: Some(id_key(namespace, delivery_id)),
            message: None,
        }
    }

    /// The namespace the keys live in.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The delivery id the keys were made from, if any.
    pub fn delivery_id(&self) -> Option<&str> {
        // The id key's text is `{namespace}:id:{delivery id}`.
        let prefix = self.namespace.0.len() + ID_MARK.len();
        self.id.as_ref().and_then(|key| key.as_str().get(prefix..))
    }

    /// The delivery id's key, when the delivery carries an id.
    pub fn id(&self) -> Option<&DedupeKey> {
        self.id.as_ref()
    }

    /// The message key, when the delivery's method dedupes on one.
    pub fn message(&self) -> Option<&DedupeKey> {
        self.message.as_ref()
    }

    /// The keys, the delivery id's first: the order stores lock them in (one fixed order for
    /// every claim, so two claims never wait on each other in a cycle).
    pub fn all(&self) -> impl Iterator<Item = &DedupeKey> {
        self.id.iter().chain(self.message.iter())
    }
}

/// What separates the namespace from the delivery id in an id key.
const ID_MARK: &str = ":id:";

fn id_key(namespace: &Namespace, id: &str) -> DedupeKey {
    let mut text = String::with_capacity(namespace.0.len() + ID_MARK.len() + id.len());
    text.push_str(&namespace.0);
    text.push_str(ID_MARK);
    text.push_str(id);
    DedupeKey::new(text)
}

/// A namespace for dedupe keys: 1 to 64 characters among ASCII letters, digits, `-`, `_`, `.`.
///
/// It keeps apart endpoints and subscriptions served by one store (providers reuse delivery
/// ids across them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace(Arc<str>);

impl Namespace {
    /// Validates a namespace; `None` if it is empty, too long or has other characters (a `:`
    /// could make two namespaces' keys collide).
    pub fn new(name: &str) -> Option<Self> {
        let valid = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        valid.then(|| Self(name.into()))
    }

    /// The namespace's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Self("default".into())
    }
}

/// A span in whole milliseconds, at least 1 (stores that count in milliseconds never write a
/// zero or negative expiry), saturating.
pub(crate) fn millis(span: Duration) -> i64 {
    i64::try_from(span.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// Where claims live. One store may be shared by many receivers, tasks and (for networked
/// stores) processes.
///
/// # The implementor's obligations
///
/// - **One atomic step per call, over all of a delivery's keys.** Of any number of concurrent
///   `claim`s whose keys overlap, with different tokens, at most one answers [`Claim::Fresh`].
///   A claim takes every key or none.
/// - **Answers.** `claim` answers, in this order: [`Claim::Completed`] if the delivery id was
///   completed and is retained; [`Claim::InFlight`] if any key is held by another token whose
///   lease has not ended; [`Claim::Replay`] if the message key was completed, with the delivery
///   id it was completed under (`completed_by`: recorded with the key, in the same step as the
///   claim or the completion that wrote it; `None` if that delivery had no id), or if it was
///   released by an attempt under another delivery id (than the claim's, or the claim has none)
///   whose id key is now completed (the provider's retry, signed again, was handled), with that
///   id; else [`Claim::Fresh`], and every key is now held by `token` for `lease`. A message key
///   released under an id that another token holds is [`Claim::InFlight`]; released under an id
///   neither completed nor held (the claim's own: the provider's retry with the same bytes; or
///   another, which may be the genuine delivery and the failed attempt a copy) it is free.
/// - **Idempotent for one token.** A key held by the claiming token counts as free: a claim
///   retried with the same token after a lost answer gets [`Claim::Fresh`] again.
/// - **Fencing.** `renew`, `complete` and `release` check the token and change the keys in the
///   same step, so a stale owner can never touch a newer claim. `renew` acts only if every key
///   is still held by the token. `complete` acts unless another token holds an unexpired claim
///   on a key or completed one that is still retained: a key held by the token (even past its
///   lease), or held by nobody any more (its lease lapsed and nobody took the delivery over), is
///   the delivery's to record, since its handler ran; it also answers `true`, again, for keys
///   the token already completed (stores keep the token of a completion); a released key counts
///   as free. `release` frees each key the token still holds: it deletes the delivery id's key
///   (so the provider's retry under that id is fresh) and keeps the message key, released by
///   that delivery id, for `retain` (a copy of the failed attempt's bytes under another id is
///   then a [`Claim::Replay`] once that id completed, so it no longer runs the handler after
///   the retry completed under a new signature); a message key of a delivery without an id is
///   deleted. A released key is
///   held by no token: nothing renews or releases it. A completed key is never released.
/// - **The store's own clock.** Leases and retention are measured on the store's clock (the
///   server's, for a networked store), never on the caller's: replicas whose clocks disagree
///   cannot shorten a lease.
/// - **Failing closed.** A store that cannot answer returns [`StoreError`], never a guess.
///
/// The suite in `hookverify::testing` (feature `testing`) checks all of this; run it on every
/// store.
pub trait DeliveryStore: Send + Sync + 'static {
    /// Claims the delivery for `token`, for `lease`.
    fn claim(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Extends a claim the token still holds to `lease` from now. Answers `false` if the token
    /// no longer holds every key.
    fn renew(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        lease: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks the delivery handled and remembers every key for `retain` from now, completed by
    /// this token. Answers `true` if each key is held by the token (its lease still running or
    /// not), already completed by it (a completion whose answer was lost can be retried), or
    /// free (absent, or expired: the lease lapsed, say while renewals failed in a store outage,
    /// and nobody took the delivery over); `false`, changing nothing, if another token holds an
    /// unexpired claim on a key or completed one: its lease ran out and another attempt took
    /// the delivery over, so it may have been handled twice.
    fn complete(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        retain: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives up every key the token still holds, so that the provider's retry (under the same
    /// delivery id) is fresh. The message key of a delivery with an id is kept for `retain`
    /// from now, released by that id: a claim of the same bytes under another id is a
    /// [`Claim::Replay`] once that id completed. Answers `false` if the token held none of the
    /// keys.
    fn release(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        retain: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl<S: DeliveryStore> DeliveryStore for Arc<S> {
    fn claim(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        (**self).claim(keys, token, lease)
    }

    fn renew(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        lease: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).renew(keys, token, lease)
    }

    fn complete(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        retain: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).complete(keys, token, retain)
    }

    fn release(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        retain: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).release(keys, token, retain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_texts_keep_their_format() {
        let namespace = Namespace::new("ns-1.a_b").expect("valid namespace");
        let message = MessageDigest::of(&[b"1764000000", b".", b"{}"]);
        assert_eq!(
            message.as_bytes(),
            &<[u8; 32]>::from(Sha256::digest(b"1764000000.{}"))
        );
        let keys = DeliveryKeys::new(&namespace, Some("dlv_42"), &message);
        let id = keys.id().expect("an id key");
        assert_eq!(id.as_str(), "ns-1.a_b:id:dlv_42");
        assert_eq!(
            &id.digest()[..],
            &Sha256::digest(id.as_str().as_bytes())[..16]
        );
        assert_eq!(
            keys.message().map(DedupeKey::as_str),
            Some(&*format!(
                "ns-1.a_b:msg:{}",
                hex::encode(&message.as_bytes()[..16])
            ))
        );
        assert_eq!(keys.all().count(), 2);
        let anonymous = DeliveryKeys::new(&namespace, None, &message);
        assert_eq!(
            anonymous.all().map(Some).collect::<Vec<_>>(),
            [keys.message()]
        );
        let by_id = DeliveryKeys::id_only(&namespace, "dlv_42");
        assert_eq!(by_id.all().collect::<Vec<_>>(), [id]);
        assert_eq!(by_id.message(), None);
        // The delivery id, read back from its key, whatever it holds.
        assert_eq!(keys.delivery_id(), Some("dlv_42"));
        assert_eq!(by_id.delivery_id(), Some("dlv_42"));
        assert_eq!(anonymous.delivery_id(), None);
        let odd = DeliveryKeys::new(&namespace, Some("a:id:b:msg:c"), &message);
        assert_eq!(odd.delivery_id(), Some("a:id:b:msg:c"));
    }

    #[test]
    fn tokens_are_distinct() {
        let tokens: std::collections::HashSet<u64> = (0..10_000)
            .map(|_| ClaimToken::random().expect("randomness").get())
            .collect();
        assert_eq!(tokens.len(), 10_000);
    }

    #[test]
    fn namespaces_are_checked() {
        assert!(Namespace::new("a").is_some());
        assert!(Namespace::new(&"a".repeat(64)).is_some());
        assert!(Namespace::new(&"a".repeat(65)).is_none());
        assert!(Namespace::new("").is_none());
        assert!(Namespace::new("a:b").is_none());
        assert!(Namespace::new("a{b}").is_none());
    }

    #[test]
    fn millis_are_positive_and_saturate() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 1);
        assert_eq!(millis(Duration::from_secs(30)), 30_000);
        assert_eq!(millis(Duration::MAX), i64::MAX);
    }
}
