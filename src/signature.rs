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
        // The differences of the four 64-bit words, OR-ed together without a branch, then one
        // comparison through `subtle`: the same answer as byte by byte, with one optimization
        // barrier instead of thirty-two.
        let (ours, theirs) = (words(&self.0), words(&other.0));
        let differ = ours
            .iter()
            .zip(&theirs)
            .fold(0, |differ, (ours, theirs)| differ | (ours ^ theirs));
        differ.ct_eq(&0)
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

/// What the verifier needs of the signatures a header carried: how many, and whether one of
/// them equals a computed tag (in constant time).
pub(crate) trait Candidates {
    /// How many signatures the header carried.
    fn count(&self) -> usize;

    /// Whether any of them equals `computed`; every one is compared, whatever the result.
    fn matches(&self, computed: &Tag) -> bool;
}

/// The signatures of a header value, checked well formed and still borrowed from it.
///
/// The usual header carries one signature: it is decoded once and kept as its tag alone. A list
/// is decoded again at each comparison, which spares the single case the copying of eight.
#[derive(Clone, Copy)]
pub(crate) enum Carried<'a> {
    /// The header is exactly one `sha256=<hex>`, decoded.
    One(Tag),
    /// Any other layout: one to eight entries separated by commas or spaces, all well formed.
    List {
        value: &'a [u8],
        prefix: &'a [u8],
        count: usize,
    },
}

impl<'a> Carried<'a> {
    /// Checks a header value: at most 1024 bytes, one to eight `prefix` + 64 hex digits,
    /// separated by commas or spaces.
    #[inline(always)]
    pub(crate) fn parse(value: &'a [u8], prefix: &'a [u8]) -> Result<Self, &'static str> {
        if value.len() > MAX_SIGNATURE_HEADER_LEN {
            return Err("longer than 1024 bytes");
        }
        // The common case, one signature and nothing else, without scanning for separators:
        // neither separator is a hex digit, so a value of this length that decodes is exactly
        // one entry. Anything else takes the general path, which also words the errors.
        if value.len() == prefix.len() + 64
            && let Some(digits) = value.strip_prefix(prefix)
            && let Some(tag) = decode_hex(digits)
        {
            return Ok(Self::One(Tag(tag)));
        }
        let mut count = 0;
        for digits in entries(value, prefix) {
            if count == MAX_SIGNATURES {
                return Err("more than 8 signatures");
            }
            decode_hex(digits?).ok_or("the digest is not hex")?;
            count += 1;
        }
        match count {
            0 => Err("no signature"),
            _ => Ok(Self::List {
                value,
                prefix,
                count,
            }),
        }
    }

    /// The decoded tags, owned.
    pub(crate) fn to_signatures(self) -> Signatures {
        let mut signatures = Signatures {
            tags: [Tag([0; 32]); MAX_SIGNATURES],
            len: 0,
        };
        let list = match self {
            Self::One(tag) => {
                signatures.tags[0] = tag;
                signatures.len = 1;
                return signatures;
            }
            Self::List { value, prefix, .. } => decoded(value, prefix),
        };
        // `parse` allowed at most `MAX_SIGNATURES` entries.
        for (slot, tag) in signatures.tags.iter_mut().zip(list) {
            *slot = tag;
            signatures.len += 1;
        }
        signatures
    }
}

impl Candidates for Carried<'_> {
    fn count(&self) -> usize {
        match self {
            Self::One(_) => 1,
            Self::List { count, .. } => *count,
        }
    }

    #[inline(always)]
    fn matches(&self, computed: &Tag) -> bool {
        match self {
            Self::One(tag) => tag.ct_eq(computed).into(),
            Self::List { value, prefix, .. } => any_equal(decoded(value, prefix), computed),
        }
    }
}

/// Whether any of `tags` equals `computed`, comparing every one.
fn any_equal(tags: impl IntoIterator<Item = Tag>, computed: &Tag) -> bool {
    tags.into_iter()
        .fold(Choice::from(0), |found, tag| found | tag.ct_eq(computed))
        .into()
}

/// The tags of a list that `Carried::parse` accepted (where every entry decodes).
fn decoded<'a>(value: &'a [u8], prefix: &'a [u8]) -> impl Iterator<Item = Tag> + 'a {
    entries(value, prefix).filter_map(|digits| decode_hex(digits.ok()?).map(Tag))
}

/// The hex digits of each entry of a signature list, or why an entry is malformed.
fn entries<'a>(
    value: &'a [u8],
    prefix: &'a [u8],
) -> impl Iterator<Item = Result<&'a [u8], &'static str>> + 'a {
    value
        .split(|&b| b == b',' || b == b' ')
        .filter(|entry| !entry.is_empty())
        .map(move |entry| {
            let digits = entry
                .strip_prefix(prefix)
                .ok_or("expected sha256=<64 hex digits>")?;
            if digits.len() != 64 {
                return Err("the digest must be exactly 64 hex digits");
            }
            Ok(digits)
        })
}

/// The signatures found in one header, decoded and owned, without allocation: what a
/// [`Precheck`](crate::Precheck) keeps while the body is read.
#[derive(Clone, Copy)]
pub(crate) struct Signatures {
    tags: [Tag; MAX_SIGNATURES],
    len: usize,
}

impl Candidates for Signatures {
    fn count(&self) -> usize {
        self.len
    }

    fn matches(&self, computed: &Tag) -> bool {
        any_equal(self.tags[..self.len].iter().copied(), computed)
    }
}

/// Decodes 64 hex digits (either case) into 32 bytes.
///
/// Straight-line arithmetic over fixed-size arrays, with no lookup and no branch on a digit
/// (each digit to its value, anything else to 0xff, then one check), so that the compiler turns
/// it into a few vector instructions.
fn decode_hex(digits: &[u8]) -> Option<[u8; 32]> {
    let digits: &[u8; 64] = digits.try_into().ok()?;
    let nibbles: [u8; 64] = std::array::from_fn(|index| {
        let digit = digits[index];
        let decimal = digit.wrapping_sub(b'0');
        // Setting bit 5 folds `A`-`F` onto `a`-`f` and nothing else onto them.
        let letter = (digit | 0x20).wrapping_sub(b'a');
        let letter_value = if letter < 6 { letter + 10 } else { 0xff };
        if decimal < 10 { decimal } else { letter_value }
    });
    let invalid = nibbles.iter().fold(0, |any, &nibble| any | nibble) > 0x0f;
    let pairs = nibbles.as_chunks::<2>().0;
    let out: [u8; 32] = std::array::from_fn(|index| (pairs[index][0] << 4) | pairs[index][1]);
    (!invalid).then_some(out)
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
        Carried::parse(value.as_bytes(), b"sha256=").map(Carried::to_signatures)
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
        let mut wanted = [0u8; 32];
        hex::decode_to_slice(HEX, &mut wanted).expect("hex");
        let mut other_tag = wanted;
        other_tag[31] ^= 1;
        for value in [
            format!("sha256={HEX}"),
            format!("sha256={other},sha256={HEX}"),
            format!(" sha256={HEX} "),
        ] {
            let carried = Carried::parse(value.as_bytes(), b"sha256=").expect("well formed");
            let owned = carried.to_signatures();
            assert_eq!(carried.count(), owned.count(), "{value}");
            assert!(carried.matches(&Tag(wanted)), "{value}");
            assert!(owned.matches(&Tag(wanted)), "{value}");
            assert!(!carried.matches(&Tag(other_tag)), "{value}");
            assert!(!owned.matches(&Tag(other_tag)), "{value}");
        }
    }
}
