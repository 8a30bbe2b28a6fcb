//! The signature header: parsing `sha256=<hex>` lists and comparing tags in constant time.

use std::fmt;

use subtle::{Choice, ConstantTimeEq};

/// Most signatures one header may carry (a provider rotating secrets sends one per secret).
pub const MAX_SIGNATURES: usize = 8;

/// Longest signature header accepted; longer ones are rejected before any parsing.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 1024;

/// An HMAC-SHA256 tag.
///
/// Deliberately without `PartialEq`: tags are compared only through [`Tag::ct_eq`]. `Debug`
/// does not print the bytes.
#[derive(Clone, Copy)]
pub struct Tag([u8; 32]);

impl Tag {
    /// Wraps 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes, e.g. to build a dedupe key.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &Self) -> Choice {
        // Compared as four 64-bit words, each through `subtle`: the same answer as byte by
        // byte, with an eighth of the optimization barriers.
        words(&self.0)[..].ct_eq(&words(&other.0)[..])
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tag(<redacted>)")
    }
}

/// The bytes of a tag as four native-endian words.
fn words(bytes: &[u8; 32]) -> [u64; 4] {
    let mut words = [0u64; 4];
    let (chunks, _) = bytes.as_chunks::<8>();
    for (word, chunk) in words.iter_mut().zip(chunks) {
        *word = u64::from_ne_bytes(*chunk);
    }
    words
}

/// The signatures found in one header, decoded, without allocation.
#[derive(Clone, Copy)]
pub(crate) struct Signatures {
    tags: [Tag; MAX_SIGNATURES],
    len: usize,
}

impl Signatures {
    /// Parses a header value carrying one or more `{prefix}<64 hex digits>` entries separated by
    /// `,` or spaces. Every entry must be well formed; the reason is a short static message.
    #[inline(always)]
    pub(crate) fn parse(value: &[u8], prefix: &[u8]) -> Result<Self, &'static str> {
        if value.len() > MAX_SIGNATURE_HEADER_LEN {
            return Err("longer than 1024 bytes");
        }
        let mut signatures = Self {
            tags: [Tag([0; 32]); MAX_SIGNATURES],
            len: 0,
        };
        // The common case, one signature and nothing else, without scanning for separators:
        // neither separator is a hex digit, so a value of this length that decodes is exactly
        // one entry. Anything else takes the general path, which also words the errors.
        if value.len() == prefix.len() + 64
            && value.starts_with(prefix)
            && let Some(tag) = decode_hex(&value[prefix.len()..])
        {
            signatures.tags[0] = Tag(tag);
            signatures.len = 1;
            return Ok(signatures);
        }
        for entry in value
            .split(|&b| b == b',' || b == b' ')
            .filter(|entry| !entry.is_empty())
        {
            if signatures.len == MAX_SIGNATURES {
                return Err("more than 8 signatures");
            }
            let digits = entry
                .strip_prefix(prefix)
                .ok_or("expected sha256=<64 hex digits>")?;
            if digits.len() != 64 {
                return Err("the digest must be exactly 64 hex digits");
            }
            let tag = decode_hex(digits).ok_or("the digest is not hex")?;
            signatures.tags[signatures.len] = Tag(tag);
            signatures.len += 1;
        }
        if signatures.len == 0 {
            return Err("no signature");
        }
        Ok(signatures)
    }

    /// How many signatures the header carried (at least one).
    pub(crate) fn count(&self) -> usize {
        self.len
    }

    /// Whether any carried tag equals `computed`. Every carried tag is compared, each in
    /// constant time.
    pub(crate) fn matches(&self, computed: &Tag) -> bool {
        let mut found = Choice::from(0);
        for tag in &self.tags[..self.len] {
            found |= tag.ct_eq(computed);
        }
        found.into()
    }
}

/// Decodes 64 hex digits (either case) into 32 bytes.
///
/// Written as straight-line arithmetic over fixed-size arrays, with no lookup and no branch on a
/// digit, so that the compiler turns it into a few vector instructions.
fn decode_hex(digits: &[u8]) -> Option<[u8; 32]> {
    let digits: &[u8; 64] = digits.try_into().ok()?;
    let mut invalid = 0u8;
    let nibbles: [u8; 64] = std::array::from_fn(|index| {
        let digit = digits[index];
        let decimal = digit.wrapping_sub(b'0');
        // Setting bit 5 folds `A`-`F` onto `a`-`f` and nothing else onto them.
        let letter = (digit | 0x20).wrapping_sub(b'a');
        let is_decimal = u8::from(decimal < 10);
        let is_letter = u8::from(letter < 6);
        invalid |= 1 ^ (is_decimal | is_letter);
        // Exactly one of the two masks is all ones for a valid digit.
        (decimal & is_decimal.wrapping_neg()) | (letter.wrapping_add(10) & is_letter.wrapping_neg())
    });
    let pairs = nibbles.as_chunks::<2>().0;
    let out: [u8; 32] = std::array::from_fn(|index| (pairs[index][0] << 4) | pairs[index][1]);
    (invalid == 0).then_some(out)
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

    fn parse(value: &str) -> Result<Signatures, &'static str> {
        Signatures::parse(value.as_bytes(), b"sha256=")
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
        assert!(parse("").is_err());
        assert!(parse(" , ").is_err());
        assert!(parse("sha256=").is_err());
        assert!(parse(&format!("sha256={}", &HEX[..63])).is_err());
        assert!(parse(&format!("sha256={HEX}0")).is_err());
        assert!(parse(&format!("SHA256={HEX}")).is_err());
        assert!(parse(&format!("sha256={HEX},v1=abc")).is_err());
        let nine = vec![format!("sha256={HEX}"); 9].join(",");
        assert_eq!(parse(&nine).err(), Some("more than 8 signatures"));
        let eight = vec![format!("sha256={HEX}"); 8].join(",");
        assert!(parse(&eight).is_ok());
        let long = format!("sha256={HEX}{}", " ".repeat(1024));
        assert_eq!(parse(&long).err(), Some("longer than 1024 bytes"));
    }

    #[test]
    fn hex_decoding_agrees_with_the_hex_crate_on_every_byte() {
        let mut wanted = [0u8; 32];
        hex::decode_to_slice(HEX, &mut wanted).expect("hex");
        assert_eq!(decode_hex(HEX.as_bytes()), Some(wanted));
        assert_eq!(decode_hex(HEX.to_uppercase().as_bytes()), Some(wanted));
        assert_eq!(decode_hex(&HEX.as_bytes()[..62]), None);
        for position in [0, 1, 31, 62, 63] {
            for byte in 0..=255u8 {
                let mut digits = HEX.as_bytes().to_vec();
                digits[position] = byte;
                let mut expected = [0u8; 32];
                let expected = hex::decode_to_slice(&digits, &mut expected)
                    .ok()
                    .map(|()| expected);
                assert_eq!(decode_hex(&digits), expected, "{byte:#04x} at {position}");
            }
        }
    }

    #[test]
    fn matches_any_carried_tag() {
        let other = "00".repeat(32);
        let sigs = parse(&format!("sha256={other},sha256={HEX}")).expect("well formed");
        let mut wanted = [0u8; 32];
        hex::decode_to_slice(HEX, &mut wanted).expect("hex");
        assert!(sigs.matches(&Tag(wanted)));
        wanted[31] ^= 1;
        assert!(!sigs.matches(&Tag(wanted)));
    }
}
