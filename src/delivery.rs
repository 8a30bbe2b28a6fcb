//! The delivery id header.

use std::fmt;

use crate::error::Malformed;

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
    /// Validates an id.
    pub fn parse(value: &[u8]) -> Result<Self, Malformed> {
        Self::check(value)?;
        Ok(Self::from_checked(value))
    }

    /// An id that passed [`check`](Self::check).
    pub(crate) fn from_checked(value: &[u8]) -> Self {
        let len = value.len().min(MAX_DELIVERY_ID_LEN);
        let mut bytes = [0; MAX_DELIVERY_ID_LEN];
        bytes[..len].copy_from_slice(&value[..len]);
        Self { bytes, len }
    }

    /// Checks that `value` is a valid id without copying it (the verifier copies it once, into
    /// its result).
    pub(crate) fn check(value: &[u8]) -> Result<(), Malformed> {
        if value.is_empty() {
            return Err(Malformed::Empty);
        }
        if value.len() > MAX_DELIVERY_ID_LEN {
            return Err(Malformed::TooLong {
                limit: MAX_DELIVERY_ID_LEN,
            });
        }
        if !value.iter().all(u8::is_ascii_graphic) {
            return Err(Malformed::NotVisibleAscii);
        }
        Ok(())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only visible ASCII gets in, so this never falls back.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
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
        assert_eq!(
            DeliveryId::parse(&[b'a'; 257]),
            Err(Malformed::TooLong { limit: 256 })
        );
        assert_eq!(DeliveryId::parse(b""), Err(Malformed::Empty));
        assert_eq!(
            DeliveryId::parse(b"has space"),
            Err(Malformed::NotVisibleAscii)
        );
        assert!(DeliveryId::parse(b"tab\t").is_err());
        assert!(DeliveryId::parse("é".as_bytes()).is_err());
    }

    /// Every byte value at every position of ids of every length up to 24: accepted exactly
    /// when it is visible ASCII, and kept as given.
    #[test]
    fn every_byte_is_checked() {
        for len in 1..=24 {
            for position in 0..len {
                for byte in 0..=255u8 {
                    let mut id = vec![b'a'; len];
                    id[position] = byte;
                    let parsed = DeliveryId::parse(&id);
                    assert_eq!(
                        parsed.is_ok(),
                        byte.is_ascii_graphic(),
                        "{byte:#04x} at {position} of {len}"
                    );
                    if let Ok(parsed) = parsed {
                        assert_eq!(parsed.as_bytes(), id);
                    }
                }
            }
        }
    }
}
