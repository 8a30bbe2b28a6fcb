//! The timestamp header: strict parsing, and how far a timestamp lies from now.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::error::Malformed;

/// Longest timestamp header accepted (an RFC 3339 time with nanoseconds and an offset is 35).
pub const MAX_TIMESTAMP_LEN: usize = 64;

/// A timestamp header: its bytes exactly as sent (what the signature covers) and the instant
/// they denote, as nanoseconds since the Unix epoch (what the window check compares; the
/// calendar form is built only when asked for).
#[derive(Clone, Copy)]
pub(crate) struct Timestamp {
    unix_nanos: i128,
    raw: [u8; MAX_TIMESTAMP_LEN],
    len: usize,
}

impl Timestamp {
    /// Parses Unix seconds (1 to 11 digits), Unix milliseconds (13 digits) or RFC 3339.
    ///
    /// The numeric forms are ASCII digits only: no sign, space or fraction.
    pub(crate) fn parse(value: &[u8]) -> Result<Self, Malformed> {
        if value.is_empty() {
            return Err(Malformed::Empty);
        }
        if value.len() > MAX_TIMESTAMP_LEN {
            return Err(Malformed::TooLong {
                limit: MAX_TIMESTAMP_LEN,
            });
        }
        let unix_nanos = if value.iter().all(u8::is_ascii_digit) {
            parse_unix(value)?
        } else {
            parse_rfc3339(value)?
        };
        let mut raw = [0; MAX_TIMESTAMP_LEN];
        raw[..value.len()].copy_from_slice(value);
        Ok(Self {
            unix_nanos,
            raw,
            len: value.len(),
        })
    }

    /// The instant, in UTC.
    pub(crate) fn at(&self) -> OffsetDateTime {
        // Both parsers checked that the instant is inside `time`'s range.
        OffsetDateTime::from_unix_timestamp_nanos(self.unix_nanos)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// The instant, in nanoseconds since the Unix epoch.
    pub(crate) fn unix_nanos(&self) -> i128 {
        self.unix_nanos
    }

    /// The header's bytes, exactly as sent.
    pub(crate) fn raw(&self) -> &[u8] {
        &self.raw[..self.len]
    }
}

/// Unix seconds or milliseconds, from ASCII digits, in nanoseconds.
fn parse_unix(digits: &[u8]) -> Result<i128, Malformed> {
    let nanos_per_unit: i128 = match digits.len() {
        1..=11 => 1_000_000_000,
        13 => 1_000_000,
        _ => return Err(Malformed::NumericLength),
    };
    // At most 13 digits, all checked ASCII by the caller: the number fits a `u64` (a fold over
    // them, not `str::parse`, which would check the UTF-8 and the digits again).
    let number = digits
        .iter()
        .fold(0u64, |number, digit| number * 10 + u64::from(digit - b'0'));
    // At most 99,999,999,999 s or 9,999,999,999,999 ms: inside `time`'s range (the year 5138 at
    // the latest), which `Timestamp::at` relies on.
    Ok(i128::from(number) * nanos_per_unit)
}

/// An RFC 3339 date and time, through `time`, as nanoseconds since the Unix epoch.
fn parse_rfc3339(value: &[u8]) -> Result<i128, Malformed> {
    let text = std::str::from_utf8(value).map_err(|_| Malformed::NotATimestamp)?;
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| Malformed::NotATimestamp)?;
    // Through the instant: near the ends of `time`'s range the UTC date may not exist (a local
    // time on 9999-12-31 behind UTC is in the year 10000 there).
    OffsetDateTime::from_unix_timestamp_nanos(at.unix_timestamp_nanos())
        .map(OffsetDateTime::unix_timestamp_nanos)
        .map_err(|_| Malformed::OutOfRange)
}

/// How far `at` lies behind `now` (negative: ahead of it), `now` in nanoseconds since the Unix
/// epoch as [`Clock::unix_nanos`](crate::Clock::unix_nanos) reads it. Saturates at the ends of
/// [`Duration`]'s range, so any clock reading is safe.
pub(crate) fn drift(now: i128, at: i128) -> Duration {
    const NANOS_PER_SECOND: i128 = 1_000_000_000;
    let nanos = now.saturating_sub(at);
    match i64::try_from(nanos / NANOS_PER_SECOND) {
        // The remainder has the sign of the quotient and fewer than ten digits.
        Ok(seconds) => Duration::new(seconds, (nanos % NANOS_PER_SECOND) as i32),
        Err(_) if nanos < 0 => Duration::MIN,
        Err(_) => Duration::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(value: &str) -> Result<i128, Malformed> {
        Timestamp::parse(value.as_bytes()).map(|at| at.at().unix_timestamp_nanos())
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
        assert_eq!(unix("99999999999"), Ok(99_999_999_999_000_000_000));
        assert_eq!(unix("9999999999999"), Ok(9_999_999_999_999_000_000));
        // The instant is kept in UTC, and the bytes exactly as sent.
        let parsed = Timestamp::parse(b"2025-11-24T17:00:00+01:00").expect("valid");
        assert!(parsed.at().offset().is_utc());
        assert_eq!(parsed.raw(), b"2025-11-24T17:00:00+01:00");
    }

    /// The numeric forms against the standard library's parser, on every length around the
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
                    assert!(Timestamp::parse(&bad).is_err(), "{bad:?}");
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
        assert!(Timestamp::parse(&[0xff, 0xfe]).is_err());
        assert_eq!(
            unix(&"1".repeat(65)),
            Err(Malformed::TooLong { limit: 64 }),
            "too long before anything else"
        );
        assert_eq!(unix("176400000000"), Err(Malformed::NumericLength));
        // Valid RFC 3339 whose UTC date is past the year 9999: no panic, a typed error.
        assert_eq!(
            unix("9999-12-31T23:59:59-01:00"),
            Err(Malformed::OutOfRange)
        );
    }

    #[test]
    fn drift_has_the_sign_of_the_past_and_saturates() {
        const S: i128 = 1_000_000_000;
        let at = 4 * S;
        assert_eq!(drift(10 * S, at), Duration::seconds(6));
        assert_eq!(drift(S / 2, at), Duration::milliseconds(-3500));
        assert_eq!(drift(4 * S + 301_000_000_001, at), Duration::new(301, 1));
        assert_eq!(drift(i128::MAX, at), Duration::MAX);
        assert_eq!(drift(i128::MIN, at), Duration::MIN);
        assert!(drift(i128::MIN, at).abs() > Duration::days(1));
    }
}
