//! What a successful verification yields.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::delivery::DeliveryId;
use crate::method::Method;
use crate::signature::Tag;
use crate::store::MessageDigest;
use crate::timestamp::Timestamp;

/// A delivery whose signature (or credential) matched and whose timestamp, if its method has
/// one, is inside the window.
///
/// Owned, with no lifetime: keep it past the request (a claim guard and the Axum extractors
/// do). It holds the delivery id inline and shares the secret's label, so building one does not
/// allocate.
#[derive(Clone)]
pub struct Verified {
    method: Method,
    delivery_id: Option<DeliveryId>,
    timestamp: Option<Timestamp>,
    secret_label: Arc<str>,
    tag: Option<Tag>,
}

impl Verified {
    pub(crate) fn new(
        method: Method,
        delivery_id: Option<DeliveryId>,
        timestamp: Option<Timestamp>,
        secret_label: Arc<str>,
        tag: Option<Tag>,
    ) -> Self {
        Self {
            method,
            delivery_id,
            timestamp,
            secret_label,
            tag,
        }
    }

    /// The method it was verified with.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The delivery id header, if the request carried one.
    pub fn delivery_id(&self) -> Option<&str> {
        self.delivery_id.as_ref().map(DeliveryId::as_str)
    }

    /// The signed timestamp, in UTC; `None` for methods that sign none.
    pub fn timestamp(&self) -> Option<OffsetDateTime> {
        self.timestamp.as_ref().map(Timestamp::at)
    }

    /// The signed timestamp, in nanoseconds since the Unix epoch (what the window compares).
    pub(crate) fn unix_nanos(&self) -> Option<i128> {
        self.timestamp.as_ref().map(Timestamp::unix_nanos)
    }

    /// The timestamp's bytes, exactly as signed (the message key covers them).
    pub fn timestamp_raw(&self) -> Option<&[u8]> {
        self.timestamp.as_ref().map(Timestamp::raw)
    }

    /// The label of the secret (or public key) that matched; when several match, the first
    /// one configured. `unsigned` for the method `none`.
    pub fn secret_label(&self) -> &str {
        &self.secret_label
    }

    /// The label, shared (for metrics labels).
    #[cfg(feature = "axum")]
    pub(crate) fn secret_label_shared(&self) -> &Arc<str> {
        &self.secret_label
    }

    /// The signature that matched, as carried (an HMAC tag or an Ed25519 signature); `None` for
    /// the methods that sign nothing.
    pub fn tag(&self) -> Option<&Tag> {
        self.tag.as_ref()
    }

    /// The digest of the signed bytes, whose body is `body`: the message key dedupe remembers.
    pub(crate) fn message_digest(&self, body: &[u8]) -> MessageDigest {
        let id = self
            .delivery_id
            .as_ref()
            .map_or(&[][..], DeliveryId::as_bytes);
        let timestamp = self.timestamp_raw().unwrap_or_default();
        let [a, b, c, d] = self.method.signed_prefix(id, timestamp);
        MessageDigest::of(&[a, b, c, d, body])
    }
}

impl fmt::Debug for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("method", &self.method)
            .field("delivery_id", &self.delivery_id())
            .field("timestamp", &self.timestamp())
            .field("secret", &self.secret_label())
            .finish_non_exhaustive()
    }
}
