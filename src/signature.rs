//! Carried signatures: the tags a credential header held, decoded once, and their
//! constant-time comparison.

use std::fmt;

use subtle::ConstantTimeEq;

use crate::error::Malformed;
use crate::method::Alg;

/// Most signatures one header may carry (a provider rotating secrets sends one per secret); they
/// may also take at most 256 bytes in all, which allows four 64-byte Ed25519 signatures.
pub const MAX_SIGNATURES: usize = 8;

/// Longest credential header accepted; longer ones are rejected before any parsing.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 1024;

/// The longest tag: an Ed25519 signature.
const MAX_TAG_LEN: usize = 64;

/// A signature's bytes: an HMAC tag (20 or 32 bytes) or an Ed25519 signature (64).
///
/// Deliberately without `PartialEq`: compare tags with [`Tag::ct_eq`], in constant time (the
/// verifier compares a computed MAC as `Mac::verify_slice` does). `Debug` does not print the
/// bytes.
#[derive(Clone, Copy)]
pub struct Tag {
    bytes: [u8; MAX_TAG_LEN],
    len: u8,
}

impl Tag {
    /// Copies up to 64 bytes; `None` if longer.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut tag = Self {
            bytes: [0; MAX_TAG_LEN],
            len: u8::try_from(bytes.len()).ok()?,
        };
        tag.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(tag)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Whether the two tags are equal, in a time that does not depend on their bytes (tags of
    /// different lengths are unequal, and lengths are public).
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tag(<redacted>)")
    }
}

/// The signatures one header carried, each with its algorithm, decoded back to back: at most
/// [`MAX_SIGNATURES`] of them and [`SIGNATURE_BYTES`] bytes in all (eight HMAC-SHA256 tags, or
/// four Ed25519 signatures), held inline.
#[derive(Clone, Copy)]
pub(crate) struct Signatures {
    bytes: [u8; SIGNATURE_BYTES],
    /// Where each signature ends in `bytes`; the first starts at 0.
    ends: [u16; MAX_SIGNATURES],
    algs: [Alg; MAX_SIGNATURES],
    len: usize,
}

/// Room for the decoded signatures of one header.
pub(crate) const SIGNATURE_BYTES: usize = 256;

impl Default for Signatures {
    fn default() -> Self {
        Self {
            bytes: [0; SIGNATURE_BYTES],
            ends: [0; MAX_SIGNATURES],
            algs: [Alg::HmacSha256; MAX_SIGNATURES],
            len: 0,
        }
    }
}

impl Signatures {
    /// Adds a signature whose bytes `decode` writes into the buffer it is given, answering how
    /// many it wrote.
    pub(crate) fn push(
        &mut self,
        alg: Alg,
        decode: impl FnOnce(&mut [u8; MAX_TAG_LEN]) -> Result<usize, Malformed>,
    ) -> Result<(), Malformed> {
        if self.len == MAX_SIGNATURES {
            return Err(Malformed::TooManySignatures);
        }
        let mut decoded = [0u8; MAX_TAG_LEN];
        let written = decode(&mut decoded)?.min(MAX_TAG_LEN);
        let start = self.end(self.len);
        let end = start + written;
        self.bytes
            .get_mut(start..end)
            .ok_or(Malformed::TooManySignatures)?
            .copy_from_slice(&decoded[..written]);
        // At most 256: the buffer's length.
        self.ends[self.len] = end as u16;
        self.algs[self.len] = alg;
        self.len += 1;
        Ok(())
    }

    /// Where the signatures before `index` end.
    fn end(&self, index: usize) -> usize {
        index
            .checked_sub(1)
            .map_or(0, |last| usize::from(self.ends[last]))
    }

    /// Adds a signature given as exactly `digest_len` bytes of hex (either case).
    pub(crate) fn push_hex(
        &mut self,
        alg: Alg,
        digits: &[u8],
        digest_len: usize,
    ) -> Result<(), Malformed> {
        self.push(alg, |buffer| {
            let out = buffer
                .get_mut(..digest_len)
                .ok_or(Malformed::DigestLength {
                    digits: 2 * MAX_TAG_LEN,
                })?;
            if digits.len() != 2 * digest_len {
                return Err(Malformed::DigestLength {
                    digits: 2 * digest_len,
                });
            }
            hex::decode_to_slice(digits, out).map_err(|_| Malformed::NotHex)?;
            Ok(digest_len)
        })
    }

    /// Parses a list of `prefix` + hex digest entries (either case), separated by commas or
    /// spaces: one to eight of them, each exactly `digest_len` bytes.
    pub(crate) fn parse_hex_list(
        &mut self,
        value: &[u8],
        prefix: &'static [u8],
        alg: Alg,
        digest_len: usize,
    ) -> Result<(), Malformed> {
        for entry in entries(value, b',', b' ') {
            let digits = entry
                .strip_prefix(prefix)
                .ok_or(Malformed::MissingPrefix { prefix })?;
            self.push_hex(alg, digits, digest_len)?;
        }
        if self.is_empty() {
            return Err(Malformed::NoSignature);
        }
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The carried signatures of one algorithm.
    pub(crate) fn of(&self, alg: Alg) -> impl Iterator<Item = &[u8]> {
        (0..self.len)
            .filter(move |&index| self.algs[index] == alg)
            .map(|index| &self.bytes[self.end(index)..usize::from(self.ends[index])])
    }

    /// Whether `computed` equals one of the carried tags of its algorithm (a token's digest; a
    /// MAC is compared through its `CtOutput`, in `secret.rs`). Every one of them is compared,
    /// in constant time, whatever the answer.
    pub(crate) fn contains(&self, alg: Alg, computed: &Tag) -> bool {
        let mut found = false;
        for carried in self.of(alg) {
            // `|`, not `||`: no comparison is skipped.
            found |= bool::from(carried.ct_eq(computed.as_bytes()));
        }
        found
    }
}

/// The non-empty entries of a list separated by either of two bytes.
pub(crate) fn entries(value: &[u8], one: u8, other: u8) -> impl Iterator<Item = &[u8]> {
    let ends = memchr::memchr2_iter(one, other, value).chain(std::iter::once(value.len()));
    let mut start = 0;
    ends.filter_map(move |end| {
        let entry = value.get(start..end);
        start = end + 1;
        entry.filter(|entry| !entry.is_empty())
    })
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
        let mut signatures = Signatures::default();
        signatures.parse_hex_list(value.as_bytes(), b"sha256=", Alg::HmacSha256, 32)?;
        Ok(signatures)
    }

    fn tag(hex: &str) -> Tag {
        Tag::from_slice(&hex::decode(hex).expect("hex")).expect("short")
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
        assert_eq!(
            parse("sha256=").err(),
            Some(Malformed::DigestLength { digits: 64 })
        );
        assert!(parse(&format!("sha256={}", &HEX[..63])).is_err());
        assert!(parse(&format!("sha256={HEX}0")).is_err());
        assert_eq!(
            parse(&format!("SHA256={HEX}")).err(),
            Some(Malformed::MissingPrefix { prefix: b"sha256=" })
        );
        assert!(parse(&format!("sha256={HEX},v1=abc")).is_err());
        let nine = vec![format!("sha256={HEX}"); 9].join(",");
        assert_eq!(parse(&nine).err(), Some(Malformed::TooManySignatures));
        let eight = vec![format!("sha256={HEX}"); 8].join(",");
        assert!(parse(&eight).is_ok());
    }

    /// Exactly the hex digits, in either case, are accepted, at every position of the digest.
    #[test]
    fn accepts_hex_digits_only_at_every_position() {
        let wanted = tag(HEX);
        for digits in [HEX.to_owned(), HEX.to_uppercase()] {
            let parsed = parse(&format!("sha256={digits}")).expect("hex");
            assert!(parsed.contains(Alg::HmacSha256, &wanted), "{digits}");
        }
        for position in [0, 1, 31, 62, 63] {
            for byte in 0..=255u8 {
                let mut value = format!("sha256={HEX}").into_bytes();
                value[7 + position] = byte;
                let verdict =
                    Signatures::default().parse_hex_list(&value, b"sha256=", Alg::HmacSha256, 32);
                // A separator splits the digest in two: too short, not "not hex".
                let expected = byte.is_ascii_hexdigit();
                assert_eq!(verdict.is_ok(), expected, "{byte:#04x} at {position}");
            }
        }
    }

    #[test]
    fn list_entries_skip_empty_ones() {
        fn split(value: &[u8]) -> Vec<&[u8]> {
            entries(value, b',', b' ').collect()
        }
        assert_eq!(split(b"a,b c"), [&b"a"[..], b"b", b"c"]);
        assert_eq!(split(b" ,a,, b ,"), [&b"a"[..], b"b"]);
        assert!(split(b"").is_empty());
        assert!(split(b", ,").is_empty());
    }

    #[test]
    fn contains_any_carried_tag_and_no_other() {
        let other = "00".repeat(32);
        let wanted = tag(HEX);
        let mut near = wanted.as_bytes().to_vec();
        near[31] ^= 1;
        let near = Tag::from_slice(&near).expect("short");
        for value in [
            format!("sha256={HEX}"),
            format!("sha256={other},sha256={HEX}"),
            format!(" sha256={HEX} "),
        ] {
            let carried = parse(&value).expect("well formed");
            assert!(carried.contains(Alg::HmacSha256, &wanted), "{value}");
            assert!(!carried.contains(Alg::HmacSha256, &near), "{value}");
        }
        assert!(wanted.ct_eq(&tag(HEX)));
        assert!(!wanted.ct_eq(&near));
    }
}
