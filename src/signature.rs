//! The signature header: a list of `sha256=<hex>` entries, and the constant-time comparison of
//! tags.

use std::fmt;

use hmac::Mac;
use hmac::digest::CtOutput;

use crate::error::Malformed;
use crate::secret::HmacSha256;

/// Most signatures one header may carry (a provider rotating secrets sends one per secret).
pub const MAX_SIGNATURES: usize = 8;

/// Longest signature header accepted; longer ones are rejected before any parsing.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 1024;

/// An HMAC-SHA256 tag.
///
/// Deliberately without `PartialEq`: tags are compared only through [`Tag::ct_eq`], in
/// constant time. `Debug` does not print the bytes.
#[derive(Clone, Copy)]
pub struct Tag([u8; 32]);

impl Tag {
    /// Wraps 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The tag a MAC computed.
    pub(crate) fn from_mac(mac: HmacSha256) -> Self {
        Self(mac.finalize().into_bytes().into())
    }

    /// Whether the two tags are equal, in a time that does not depend on their bytes.
    ///
    /// Through `digest`'s `CtOutput`, the comparison `Mac::verify_slice` makes.
    pub fn ct_eq(&self, other: &Self) -> bool {
        CtOutput::<HmacSha256>::new(self.0.into()) == CtOutput::new(other.0.into())
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tag(<redacted>)")
    }
}

/// The signatures one header carried, decoded once; at most [`MAX_SIGNATURES`], held inline.
#[derive(Clone, Copy)]
pub(crate) struct Signatures {
    tags: [Tag; MAX_SIGNATURES],
    len: usize,
}

impl Signatures {
    /// Parses a header value: at most 1024 bytes, one to eight `prefix` + 64 hex digits (either
    /// case), separated by commas or spaces.
    pub(crate) fn parse(value: &[u8], prefix: &[u8]) -> Result<Self, Malformed> {
        if value.len() > MAX_SIGNATURE_HEADER_LEN {
            return Err(Malformed::TooLong {
                limit: MAX_SIGNATURE_HEADER_LEN,
            });
        }
        let mut signatures = Self {
            tags: [Tag([0; 32]); MAX_SIGNATURES],
            len: 0,
        };
        let entries = value
            .split(|&byte| byte == b',' || byte == b' ')
            .filter(|entry| !entry.is_empty());
        for entry in entries {
            let Some(slot) = signatures.tags.get_mut(signatures.len) else {
                return Err(Malformed::TooManySignatures);
            };
            let digits = entry.strip_prefix(prefix).ok_or(Malformed::MissingPrefix)?;
            if digits.len() != 64 {
                return Err(Malformed::DigestLength);
            }
            hex::decode_to_slice(digits, &mut slot.0).map_err(|_| Malformed::NotHex)?;
            signatures.len += 1;
        }
        if signatures.len == 0 {
            return Err(Malformed::NoSignature);
        }
        Ok(signatures)
    }

    /// Whether `computed` equals one of the carried tags. Every carried tag is compared, in
    /// constant time, whatever the answer.
    pub(crate) fn contains(&self, computed: &Tag) -> bool {
        let mut found = false;
        for carried in &self.tags[..self.len] {
            // `|`, not `||`: no comparison is skipped.
            found |= carried.ct_eq(computed);
        }
        found
    }
}

impl fmt::Debug for Signatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signatures")
            .field("count", &self.len)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "8b97869b180d893b6e881d048de03257b14133f990b707ba7c2a5fcd1e698826";

    fn parse(value: &str) -> Result<Signatures, Malformed> {
        Signatures::parse(value.as_bytes(), b"sha256=")
    }

    fn tag(hex: &str) -> Tag {
        let mut bytes = [0; 32];
        hex::decode_to_slice(hex, &mut bytes).expect("hex");
        Tag(bytes)
    }

    #[test]
    fn accepts_lists_separated_by_commas_or_spaces() {
        let one = format!("sha256={HEX}");
        assert_eq!(parse(&one).map(|s| s.len), Ok(1));
        let list = format!("sha256={HEX}, sha256={HEX} sha256={HEX},");
        assert_eq!(parse(&list).map(|s| s.len), Ok(3));
    }

    #[test]
    fn rejects_bad_entries() {
        assert_eq!(parse("").err(), Some(Malformed::NoSignature));
        assert_eq!(parse(" , ").err(), Some(Malformed::NoSignature));
        assert_eq!(parse("sha256=").err(), Some(Malformed::DigestLength));
        assert!(parse(&format!("sha256={}", &HEX[..63])).is_err());
        assert!(parse(&format!("sha256={HEX}0")).is_err());
        assert_eq!(
            parse(&format!("SHA256={HEX}")).err(),
            Some(Malformed::MissingPrefix)
        );
        assert!(parse(&format!("sha256={HEX},v1=abc")).is_err());
        let nine = vec![format!("sha256={HEX}"); 9].join(",");
        assert_eq!(parse(&nine).err(), Some(Malformed::TooManySignatures));
        let eight = vec![format!("sha256={HEX}"); 8].join(",");
        assert!(parse(&eight).is_ok());
        let long = format!("sha256={HEX}{}", " ".repeat(1024));
        assert_eq!(parse(&long).err(), Some(Malformed::TooLong { limit: 1024 }));
    }

    /// Exactly the hex digits, in either case, are accepted, at every position of the digest.
    #[test]
    fn accepts_hex_digits_only_at_every_position() {
        let wanted = tag(HEX);
        for digits in [HEX.to_owned(), HEX.to_uppercase()] {
            let parsed = parse(&format!("sha256={digits}")).expect("hex");
            assert!(parsed.contains(&wanted), "{digits}");
        }
        for position in [0, 1, 31, 62, 63] {
            for byte in 0..=255u8 {
                let mut value = format!("sha256={HEX}").into_bytes();
                value[7 + position] = byte;
                let verdict = Signatures::parse(&value, b"sha256=");
                // A separator splits the digest in two: too short, not "not hex".
                let expected = byte.is_ascii_hexdigit();
                assert_eq!(verdict.is_ok(), expected, "{byte:#04x} at {position}");
            }
        }
    }

    #[test]
    fn contains_any_carried_tag_and_no_other() {
        let other = "00".repeat(32);
        let wanted = tag(HEX);
        let mut near = *wanted.as_bytes();
        near[31] ^= 1;
        let near = Tag(near);
        for value in [
            format!("sha256={HEX}"),
            format!("sha256={other},sha256={HEX}"),
            format!(" sha256={HEX} "),
        ] {
            let carried = parse(&value).expect("well formed");
            assert!(carried.contains(&wanted), "{value}");
            assert!(!carried.contains(&near), "{value}");
        }
        assert!(wanted.ct_eq(&tag(HEX)));
        assert!(!wanted.ct_eq(&near));
    }
}
