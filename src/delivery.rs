//! What a verified request yields: the delivery id and the [`Verified`] result.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::signature::Tag;
use crate::timestamp::{MAX_TIMESTAMP_LEN, UnixNanos};

/// Longest delivery id accepted.
pub const MAX_DELIVERY_ID_LEN: usize = 256;

/// A delivery id: 1 to 256 visible ASCII characters, stored inline (no allocation).
///
/// The id is not covered by the signature: it identifies the provider's retries, it does not
/// prove anything by itself.
#[derive(Clone, Copy)]
pub struct DeliveryId {
    bytes: [u8; MAX_DELIVERY_ID_LEN],
    len: usize,
}

impl DeliveryId {
    /// Validates an id. The reason is a short static message.
    pub fn parse(value: &[u8]) -> Result<Self, &'static str> {
        Self::check(value)?;
        Ok(Self::from_checked(value))
    }

    /// The validation of [`parse`](Self::parse), without the copy.
    pub(crate) fn check(value: &[u8]) -> Result<(), &'static str> {
        if value.is_empty() {
            return Err("empty");
        }
        if value.len() > MAX_DELIVERY_ID_LEN {
            return Err("longer than 256 characters");
        }
        if !all_visible_ascii(value) {
            return Err("only visible ASCII characters are allowed");
        }
        Ok(())
    }

    /// Copies an id that passed [`check`](Self::check).
    #[inline(always)]
    pub(crate) fn from_checked(value: &[u8]) -> Self {
        let len = value.len().min(MAX_DELIVERY_ID_LEN);
        let mut bytes = [0; MAX_DELIVERY_ID_LEN];
        bytes[..len].copy_from_slice(&value[..len]);
        Self { bytes, len }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        checked_str(self.as_bytes())
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// An id that passed [`DeliveryId::check`], as text: only visible ASCII gets in, so this never
/// falls back.
fn checked_str(id: &[u8]) -> &str {
    std::str::from_utf8(id).unwrap_or_default()
}

/// Whether every byte is visible ASCII (`!` to `~`), eight bytes at a time.
#[inline(always)]
fn all_visible_ascii(value: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    // For a byte below 0x80, adding 0x5f sets its high bit when it is at least `!` (0x21), and
    // adding 1 when it is DEL (0x7f); neither carries into the next byte. A byte with its high
    // bit set fails on its own, whatever the carries do to the others.
    let invisible = |word: u64| word | !word.wrapping_add(0x5f * ONES) | word.wrapping_add(ONES);
    let (words, rest) = value.as_chunks::<8>();
    let bad = words
        .iter()
        .fold(0, |bad, word| bad | invisible(u64::from_ne_bytes(*word)));
    bad & HIGH == 0 && rest.iter().all(u8::is_ascii_graphic)
}

impl PartialEq for DeliveryId {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for DeliveryId {}

impl fmt::Debug for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DeliveryId").field(&self.as_str()).finish()
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A delivery whose signature matched and whose timestamp is inside the window.
///
/// Borrowed from the request's headers and from the verifier: `verify` copies nothing out of
/// the request, which is what keeps it cheap. It is small and `Copy`; copy out (`to_owned`)
/// what you keep beyond the request.
#[derive(Clone, Copy)]
pub struct Verified<'a> {
    /// Validated: 1 to 256 visible ASCII bytes.
    delivery_id: Option<&'a [u8]>,
    timestamp: UnixNanos,
    /// The timestamp header exactly as signed.
    timestamp_raw: &'a [u8],
    secret: &'a Arc<str>,
    tag: Tag,
}

impl<'a> Verified<'a> {
    pub(crate) fn new(
        delivery_id: Option<&'a [u8]>,
        timestamp: UnixNanos,
        timestamp_raw: &'a [u8],
        secret: &'a Arc<str>,
        tag: Tag,
    ) -> Self {
        Self {
            delivery_id,
            timestamp,
            timestamp_raw,
            secret,
            tag,
        }
    }

    /// The timestamp header's bytes, exactly as signed.
    pub fn timestamp_raw(&self) -> &'a [u8] {
        self.timestamp_raw
    }

    pub(crate) fn unix_nanos(&self) -> UnixNanos {
        self.timestamp
    }

    /// The delivery id header, if the request carried one.
    pub fn delivery_id(&self) -> Option<&'a str> {
        self.delivery_id.map(checked_str)
    }

    /// The signed timestamp.
    pub fn timestamp(&self) -> OffsetDateTime {
        self.timestamp.to_datetime()
    }

    /// The label of the secret that matched.
    pub fn secret_label(&self) -> &'a str {
        self.secret
    }

    /// The tag that matched: the request's MAC, which the dedupe layer remembers to catch a
    /// byte-for-byte replay under a fresh delivery id.
    pub fn tag(&self) -> &Tag {
        &self.tag
    }
}

impl fmt::Debug for Verified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verified")
            .field("delivery_id", &self.delivery_id())
            .field("timestamp", &self.timestamp())
            .field("secret", &self.secret_label())
            .finish_non_exhaustive()
    }
}

/// A [`Verified`] delivery, owned: what a claim guard and the extractors keep after the
/// request's headers are gone.
#[derive(Clone)]
pub(crate) struct KeptDelivery {
    delivery_id: Option<DeliveryId>,
    timestamp: UnixNanos,
    timestamp_raw: [u8; MAX_TIMESTAMP_LEN],
    timestamp_len: usize,
    secret: Arc<str>,
    tag: Tag,
}

impl KeptDelivery {
    pub(crate) fn new(verified: Verified<'_>) -> Self {
        // The parser rejected any timestamp longer than the buffer.
        let timestamp_len = verified.timestamp_raw.len().min(MAX_TIMESTAMP_LEN);
        let mut timestamp_raw = [0; MAX_TIMESTAMP_LEN];
        timestamp_raw[..timestamp_len].copy_from_slice(&verified.timestamp_raw[..timestamp_len]);
        Self {
            delivery_id: verified.delivery_id.map(DeliveryId::from_checked),
            timestamp: verified.timestamp,
            timestamp_raw,
            timestamp_len,
            secret: Arc::clone(verified.secret),
            tag: verified.tag,
        }
    }

    pub(crate) fn delivery_id(&self) -> Option<&DeliveryId> {
        self.delivery_id.as_ref()
    }

    /// The delivery, borrowed again.
    pub(crate) fn verified(&self) -> Verified<'_> {
        Verified {
            delivery_id: self.delivery_id.as_ref().map(DeliveryId::as_bytes),
            timestamp: self.timestamp,
            timestamp_raw: &self.timestamp_raw[..self.timestamp_len],
            secret: &self.secret,
            tag: self.tag,
        }
    }
}

impl fmt::Debug for KeptDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.verified().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_are_bounded_visible_ascii() {
        assert_eq!(
            DeliveryId::parse(b"dlv_0001").map(|id| id.to_string()),
            Ok("dlv_0001".into())
        );
        assert!(DeliveryId::parse(&[b'a'; 256]).is_ok());
        assert!(DeliveryId::parse(&[b'a'; 257]).is_err());
        assert!(DeliveryId::parse(b"").is_err());
        assert!(DeliveryId::parse(b"has space").is_err());
        assert!(DeliveryId::parse(b"tab\t").is_err());
        assert!(DeliveryId::parse("é".as_bytes()).is_err());
    }

    /// The word-at-a-time check against the byte-at-a-time definition: every byte value at
    /// every position of ids of every length up to three words.
    #[test]
    fn visibility_check_agrees_with_is_ascii_graphic() {
        for len in 1..=24 {
            for position in 0..len {
                for byte in 0..=255u8 {
                    let mut id = vec![b'a'; len];
                    id[position] = byte;
                    assert_eq!(
                        DeliveryId::check(&id).is_ok(),
                        byte.is_ascii_graphic(),
                        "{byte:#04x} at {position} of {len}"
                    );
                }
            }
        }
    }
}
