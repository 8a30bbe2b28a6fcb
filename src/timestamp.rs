//! The timestamp header: strict parsing, and the freshness window.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// Longest timestamp header accepted (an RFC 3339 time with nanoseconds and an offset is 35).
pub const MAX_TIMESTAMP_LEN: usize = 64;

/// A parsed timestamp in nanoseconds since the Unix epoch.
///
/// Kept as a number on the hot path (the window check is a subtraction); turned into an
/// [`OffsetDateTime`] only when asked for. Always inside `time`'s range: the numeric forms end
/// in the year 5138, and RFC 3339 is parsed by `time` itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnixNanos(pub(crate) i128);

impl UnixNanos {
    /// The timestamp as a date and time in UTC.
    pub(crate) fn to_datetime(self) -> OffsetDateTime {
        // In range by construction, as above: the fallback is never taken.
        OffsetDateTime::from_unix_timestamp_nanos(self.0).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// Parses Unix seconds (1 to 11 digits), Unix milliseconds (13 digits) or RFC 3339.
///
/// Numeric forms are ASCII digits only: no sign, space or fraction. The reason is a short static
/// message.
pub(crate) fn parse(value: &[u8]) -> Result<UnixNanos, &'static str> {
    if value.is_empty() {
        return Err("empty");
    }
    if value.len() > MAX_TIMESTAMP_LEN {
        return Err("longer than 64 bytes");
    }
    const NUMERIC_LENGTHS: &str = "Unix seconds take 1 to 11 digits, milliseconds exactly 13";
    match short_number(value) {
        Some(seconds) if value.len() <= 11 => Ok(UnixNanos(i128::from(seconds) * 1_000_000_000)),
        Some(millis) if value.len() == 13 => Ok(UnixNanos(i128::from(millis) * 1_000_000)),
        Some(_) => Err(NUMERIC_LENGTHS),
        // Digits only, but too many to read as a number.
        None if value.iter().all(u8::is_ascii_digit) => Err(NUMERIC_LENGTHS),
        None => parse_rfc3339(value),
    }
}

/// An RFC 3339 date and time, through `time`.
fn parse_rfc3339(value: &[u8]) -> Result<UnixNanos, &'static str> {
    let text = std::str::from_utf8(value).map_err(|_| "not ASCII")?;
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|at| UnixNanos(at.unix_timestamp_nanos()))
        .map_err(|_| "neither Unix seconds, Unix milliseconds nor RFC 3339")
}

/// Eight ASCII zeros as a word: subtracted from eight digits, it leaves their values.
const ZEROS: u64 = u64::from_le_bytes([b'0'; 8]);

/// The value of 1 to 16 ASCII digits, or `None` if there are more or anything else is there.
///
/// From eight digits on, whole words at a time: the first eight bytes and the last eight
/// (overlapping when fewer than sixteen) are checked, then each word is turned into its number
/// in three multiply-and-shift steps instead of a multiplication per digit.
#[inline(always)]
fn short_number(value: &[u8]) -> Option<u64> {
    match value.len() {
        0 => None,
        1..=7 => value.iter().try_fold(0, |number: u64, &byte| {
            let digit = byte.wrapping_sub(b'0');
            (digit <= 9).then(|| number * 10 + u64::from(digit))
        }),
        len @ 8..=16 => {
            let first = u64::from_le_bytes(*value.first_chunk::<8>()?);
            let last = u64::from_le_bytes(*value.last_chunk::<8>()?);
            if !all_digits(first) || !all_digits(last) {
                return None;
            }
            // The digits before the last eight, moved to the top of the word (the low end of a
            // little-endian number holds the first byte, the most significant digit), with
            // zeros below.
            let leading = (first - ZEROS)
                .checked_shl(8 * (16 - len as u32))
                .unwrap_or(0);
            Some(eight_digits(leading) * 100_000_000 + eight_digits(last - ZEROS))
        }
        _ => None,
    }
}

/// Whether the eight bytes of `word` are all ASCII digits.
#[inline(always)]
fn all_digits(word: u64) -> bool {
    const HIGH_NIBBLES: u64 = u64::from_le_bytes([0xf0; 8]);
    const SIXES: u64 = u64::from_le_bytes([6; 8]);
    // `0x30..=0x39` has a high nibble of 3, and keeps it when 6 is added; `0x3a..=0x3f` does not.
    word & HIGH_NIBBLES == ZEROS && word.wrapping_add(SIXES) & HIGH_NIBBLES == ZEROS
}

/// The number written by eight digit values (0 to 9), one per byte, the first byte the most
/// significant digit: pairs, then fours, then all eight.
#[inline(always)]
fn eight_digits(digits: u64) -> u64 {
    let pairs = (digits * 10 + (digits >> 8)) & 0x00ff_00ff_00ff_00ff;
    let fours = (pairs * 100 + (pairs >> 16)) & 0x0000_ffff_0000_ffff;
    (fours * 10_000 + (fours >> 32)) & 0xffff_ffff
}

/// How far `timestamp` lies behind `now` (negative when it is in the future), both in
/// nanoseconds since the Unix epoch. Saturates, so any clock reading is safe.
pub(crate) fn drift(now: i128, timestamp: i128) -> i128 {
    now.saturating_sub(timestamp)
}

/// Whether a drift is inside a window of `tolerance` nanoseconds either way, bounds included.
pub(crate) fn within(drift: i128, tolerance: u128) -> bool {
    drift.unsigned_abs() <= tolerance
}

/// A drift as a [`Duration`], for the error that reports it; saturates at `Duration`'s range.
pub(crate) fn drift_duration(drift: i128) -> Duration {
    const NANOS_PER_SECOND: i128 = 1_000_000_000;
    match i64::try_from(drift / NANOS_PER_SECOND) {
        // The remainder has the sign of the quotient and fewer than ten digits.
        Ok(seconds) => Duration::new(seconds, (drift % NANOS_PER_SECOND) as i32),
        Err(_) if drift < 0 => Duration::MIN,
        Err(_) => Duration::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(value: &str) -> Result<i128, &'static str> {
        parse(value.as_bytes()).map(|at| at.0)
    }

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(unix("1764000000"), Ok(1_764_000_000_000_000_000));
        assert_eq!(unix("0"), Ok(0));
        assert_eq!(unix("1764000000250"), Ok(1_764_000_000_250_000_000));
        assert_eq!(unix("2025-11-24T16:00:00Z"), Ok(1_764_000_000_000_000_000));
        assert_eq!(
            unix("2025-11-24T17:00:00.5+01:00"),
            Ok(1_764_000_000_500_000_000)
        );
        assert!(unix("99999999999").is_ok());
        // The largest numeric forms still convert to a date (no fallback to the epoch).
        for largest in ["99999999999", "9999999999999"] {
            let at = parse(largest.as_bytes()).expect("in range");
            assert_eq!(at.to_datetime().unix_timestamp_nanos(), at.0);
        }
    }

    /// The one-pass digit parser against the standard library's, on every length around the
    /// accepted ones and with a non-digit at every position.
    #[test]
    fn numeric_forms_agree_with_str_parse() {
        for len in 1..=20usize {
            let digits: String = (0..len)
                .map(|i| char::from(b'0' + ((i * 7 + 3) % 10) as u8))
                .collect();
            let expected = match (len, digits.parse::<i64>()) {
                (1..=11, Ok(seconds)) => Ok(i128::from(seconds) * 1_000_000_000),
                (13, Ok(millis)) => Ok(i128::from(millis) * 1_000_000),
                _ => Err(()),
            };
            assert_eq!(unix(&digits).map_err(|_| ()), expected, "{digits}");
            for position in 0..len {
                for intruder in (0..=255u8).filter(|byte| !byte.is_ascii_digit()) {
                    let mut bad = digits.clone().into_bytes();
                    bad[position] = intruder;
                    assert!(parse(&bad).is_err(), "{bad:?}");
                }
            }
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "+1764000000",
            "-1",
            " 1764000000",
            "1764000000 ",
            "1764000000.5",
            "176400000000",
            "17640000000000",
            "9999999999999999999999999999999999999999",
            "yesterday",
            "2025-11-24 16:00:00",
            "2025-11-24T16:00:00",
        ] {
            assert!(unix(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(parse(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn window_is_inclusive_both_ways() {
        const S: i128 = 1_000_000_000;
        let five = 300 * S as u128;
        assert!(within(300 * S, five));
        assert!(within(-300 * S, five));
        assert!(!within(300 * S + 1, five));
        assert!(!within(-300 * S - 1, five));
        assert!(!within(i128::MIN, five));
        assert!(within(0, 0));
        assert_eq!(drift(i128::MIN, i128::MAX), i128::MIN);
        assert_eq!(drift(10 * S, 4 * S), 6 * S);
    }

    #[test]
    fn drift_converts_to_a_duration_with_its_sign() {
        assert_eq!(
            drift_duration(-1_500_000_000),
            Duration::milliseconds(-1500)
        );
        assert_eq!(drift_duration(301_000_000_001), Duration::new(301, 1));
        assert_eq!(drift_duration(i128::MAX), Duration::MAX);
        assert_eq!(drift_duration(i128::MIN), Duration::MIN);
    }
}
