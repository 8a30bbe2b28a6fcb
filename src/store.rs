//! Dedupe: the store contract every backend implements, and the keys it stores.
//!
//! A receiver handles each delivery once by claiming it in a [`DeliveryStore`] before running
//! its handler, then completing the claim (the handler succeeded: remember the delivery) or
//! releasing it (the handler failed: let the provider's retry through). [`Receiver`] runs that
//! protocol; a store only has to answer the three calls atomically.
//!
//! [`Receiver`]: crate::Receiver

pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use time::Duration;

use crate::delivery::DeliveryId;
use crate::signature::Tag;

pub use memory::MemoryStore;

/// Proof of owning a claim: only its holder can complete or release it.
///
/// A store hands out a token that no other live claim of the same key has, so a worker whose
/// lease ran out (and whose key someone else claimed since) can no longer touch the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimToken(u64);

impl ClaimToken {
    /// Wraps a store's raw token (stores choose how to make them unique).
    pub const fn new(raw: u64) -> Self {
        Self(raw)
    }

    /// A random token, for stores shared between processes.
    pub fn random() -> Result<Self, StoreError> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| StoreError::new(format!("no randomness: {e}")))?;
        Ok(Self(u64::from_le_bytes(bytes)))
    }

    /// The raw value, for storing.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// The answer to a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Nobody holds the key: the caller owns it now, until the lease ends.
    Fresh(ClaimToken),
    /// Another worker holds an unexpired claim on the key.
    InFlight,
    /// The key was completed and is still retained: a duplicate.
    Completed,
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

const ID_INFIX: &str = ":id:";
const MAC_INFIX: &str = ":mac:";

/// A key in a dedupe store: a namespace and a delivery id, or a namespace and a verified MAC.
///
/// The namespace keeps apart endpoints and subscriptions served by one store (providers reuse
/// delivery ids across them). The MAC key holds a hash of the MAC, never the MAC itself.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DedupeKey {
    text: String,
    digest: [u8; 16],
}

impl DedupeKey {
    /// The key that catches the provider's retries of one delivery.
    pub fn delivery(namespace: &Namespace, id: &DeliveryId) -> Self {
        // Built by hand rather than with `format!`: this runs for every delivery.
        let id = id.as_str();
        let mut text = String::with_capacity(namespace.0.len() + ID_INFIX.len() + id.len());
        text.push_str(&namespace.0);
        text.push_str(ID_INFIX);
        text.push_str(id);
        Self::from_text(text)
    }

    /// The key that catches a byte-for-byte replay under a fresh delivery id.
    pub fn mac(namespace: &Namespace, tag: &Tag) -> Self {
        let hashed = Sha256::digest(tag.as_bytes());
        let mut text = String::with_capacity(namespace.0.len() + MAC_INFIX.len() + 32);
        text.push_str(&namespace.0);
        text.push_str(MAC_INFIX);
        // Into a stack buffer rather than through `hex::encode`'s own `String`.
        let mut digits = [0u8; 32];
        if hex::encode_to_slice(&hashed[..16], &mut digits).is_ok() {
            text.push_str(std::str::from_utf8(&digits).unwrap_or_default());
        }
        Self::from_text(text)
    }

    fn from_text(text: String) -> Self {
        let hashed = Sha256::digest(text.as_bytes());
        let mut digest = [0u8; 16];
        digest.copy_from_slice(&hashed[..16]);
        Self { text, digest }
    }

    /// The key as text, for stores keyed by strings (`{namespace}:id:{id}`,
    /// `{namespace}:mac:{hash}`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A fixed-size 128-bit digest of the key, for stores that hold many keys in memory.
    pub fn digest(&self) -> &[u8; 16] {
        &self.digest
    }
}

impl fmt::Debug for DedupeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DedupeKey").field(&self.text).finish()
    }
}

/// A namespace for dedupe keys: 1 to 64 characters among ASCII letters, digits, `-`, `_`, `.`.
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

/// Unix milliseconds from a clock's [`unix_nanos`](crate::Clock::unix_nanos), rounded down
/// (also before 1970) and saturating: how stores keep deadlines.
pub(crate) fn unix_ms(nanos: i128) -> i64 {
    const NANOS_PER_MS: i64 = 1_000_000;
    match i64::try_from(nanos) {
        // Years 1677 to 2262: 64-bit arithmetic (this runs on every store call).
        Ok(nanos) => nanos.div_euclid(NANOS_PER_MS),
        Err(_) => i64::try_from(nanos.div_euclid(i128::from(NANOS_PER_MS)))
            .unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX }),
    }
}

/// A span in whole milliseconds, saturating; a negative span counts as zero.
pub(crate) fn millis(span: Duration) -> i64 {
    i64::try_from(span.whole_milliseconds().max(0)).unwrap_or(i64::MAX)
}

/// `now + span` in milliseconds, saturating; a negative span counts as zero.
pub(crate) fn deadline(now_ms: i64, span: Duration) -> i64 {
    now_ms.saturating_add(millis(span))
}

/// Where claims live. One store may be shared by many receivers, tasks and (for networked
/// stores) processes.
///
/// # The implementor's obligations
///
/// - **Atomicity.** Each call is one atomic step. Of any number of concurrent `claim`s of one
///   key that nobody holds, exactly one answers [`Claim::Fresh`]; the others see
///   [`Claim::InFlight`]. `complete` and `release` check the token and change the key in the
///   same step, so a stale owner can never touch a newer claim.
/// - **Leases.** A claim that was neither completed nor released is held until `lease` has
///   passed, then the key may be claimed again (its worker is presumed dead).
/// - **Retention.** A completed key answers [`Claim::Completed`] until `retain` has passed, then
///   [`Claim::Fresh`] again.
/// - **Time.** Expiry is judged on the store's clock; a store that takes a
///   [`Clock`](crate::Clock) honours it, so the shared conformance suite can move time.
/// - **Failing closed.** A store that cannot answer returns [`StoreError`], never a guess.
///
/// The suite in `hookverify::testing` (feature `testing`) checks all of this; run it on every
/// store.
pub trait DeliveryStore: Send + Sync + 'static {
    /// Claims `key` for `lease`.
    fn claim(
        &self,
        key: &DedupeKey,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Marks the claim done and keeps the key for `retain`. Answers `false` if `token` no
    /// longer owns the key (its lease ran out and the key was claimed again, or it was
    /// released).
    fn complete(
        &self,
        key: &DedupeKey,
        token: ClaimToken,
        retain: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives the key up so the next claim is fresh. Answers `false` if `token` no longer owns
    /// the key.
    fn release(
        &self,
        key: &DedupeKey,
        token: ClaimToken,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl<S: DeliveryStore> DeliveryStore for Arc<S> {
    fn claim(
        &self,
        key: &DedupeKey,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        (**self).claim(key, lease)
    }

    fn complete(
        &self,
        key: &DedupeKey,
        token: ClaimToken,
        retain: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).complete(key, token, retain)
    }

    fn release(
        &self,
        key: &DedupeKey,
        token: ClaimToken,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).release(key, token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_texts_keep_their_format() {
        let namespace = Namespace::new("ns-1.a_b").expect("valid namespace");
        let id = DeliveryId::parse(b"dlv_42").expect("valid id");
        let key = DedupeKey::delivery(&namespace, &id);
        assert_eq!(key.as_str(), "ns-1.a_b:id:dlv_42");
        let full = Sha256::digest(key.as_str().as_bytes());
        assert_eq!(&key.digest()[..], &full[..16]);

        let tag = Tag::from_bytes([0xa5; 32]);
        let key = DedupeKey::mac(&namespace, &tag);
        let hashed = Sha256::digest([0xa5; 32]);
        assert_eq!(
            key.as_str(),
            format!("ns-1.a_b:mac:{}", hex::encode(&hashed[..16]))
        );
        let full = Sha256::digest(key.as_str().as_bytes());
        assert_eq!(&key.digest()[..], &full[..16]);
    }

    #[test]
    fn unix_ms_rounds_down() {
        assert_eq!(unix_ms(1_764_000_000_123_456_789), 1_764_000_000_123);
        assert_eq!(unix_ms(-1_500_000), -2);
        assert_eq!(unix_ms(0), 0);
        // Beyond 64-bit nanoseconds (after 2262), still exact; then saturating.
        assert_eq!(unix_ms(i128::from(i64::MAX) * 10), i64::MAX / 100_000);
        assert_eq!(unix_ms(i128::MAX), i64::MAX);
        assert_eq!(unix_ms(i128::MIN), i64::MIN);
    }

    #[test]
    fn deadlines_saturate() {
        assert_eq!(deadline(i64::MAX - 1, Duration::MAX), i64::MAX);
        assert_eq!(deadline(5, Duration::seconds(-10)), 5);
        assert_eq!(millis(Duration::seconds(-1)), 0);
    }
}
