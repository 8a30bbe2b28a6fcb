//! What a successful verification yields.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::delivery::DeliveryId;
use crate::signature::Tag;
use crate::timestamp::Timestamp;

/// A delivery whose signature matched and whose timestamp is inside the window.
///
/// Owned, with no lifetime: keep it past the request (a claim guard and the Axum extractors
/// do). It holds the delivery id inline and shares the secret's label, so building one does not
/// allocate.
#[derive(Clone)]
pub struct Verified {
    delivery_id: Option<DeliveryId>,
    timestamp: Timestamp,
    secret_label: Arc<str>,
    tag: Tag,
}

impl Verified {
    pub(crate) fn new(
        delivery_id: Option<DeliveryId>,
        timestamp: Timestamp,
        secret_label: Arc<str>,
        tag: Tag,
    ) -> Self {
        Self {
            delivery_id,
            timestamp,
            secret_label,
            tag,
        }
    }

    /// The delivery id header, if the request carried one.
    pub fn delivery_id(&self) -> Option<&str> {
        self.delivery_id.as_ref().map(DeliveryId::as_str)
    }

    /// The signed timestamp, in UTC.
    pub fn timestamp(&self) -> OffsetDateTime {
        self.timestamp.at()
    }

    /// The signed timestamp, in nanoseconds since the Unix epoch (what the window compares).
    pub(crate) fn unix_nanos(&self) -> i128 {
        self.timestamp.unix_nanos()
    }

    /// The timestamp header's bytes, exactly as signed (the message key covers them).
    pub fn timestamp_raw(&self) -> &[u8] {
        self.timestamp.raw()
    }

    /// The label of the secret that matched; when several match, the first one configured.
    pub fn secret_label(&self) -> &str {
        &self.secret_label
    }

    /// The tag that matched: the request's MAC, as carried in its signature header.
    pub fn tag(&self) -> &Tag {
        &self.tag
    }
}

impl fmt::Debug for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("delivery_id", &self.delivery_id())
            .field("timestamp", &self.timestamp())
            .field("secret", &self.secret_label())
            .finish_non_exhaustive()
    }
}
