//! The timestamp header: strict parsing, and the freshness window.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// Longest timestamp header accepted (an RFC 3339 time with nanoseconds and an offset is 35).
pub const MAX_TIMESTAMP_LEN: usize = 64;

/// Parses Unix seconds (1 to 11 digits), Unix milliseconds (13 digits) or RFC 3339.
///
/// Numeric forms are ASCII digits only: no sign, space or fraction. The reason is a short static
/// message.
pub(crate) fn parse(value: &[u8]) -> Result<OffsetDateTime, &'static str> {
    if value.is_empty() {
        return Err("empty");
    }
    if value.len() > MAX_TIMESTAMP_LEN {
        return Err("longer than 64 bytes");
    }
    if value.iter().all(u8::is_ascii_digit) {
        // The length is checked before the digits are summed: at most 13 digits fit an i64
        // with room to spare, so the sum cannot overflow.
        let number = || {
            value
                .iter()
                .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0'))
        };
        return match value.len() {
            1..=11 => OffsetDateTime::from_unix_timestamp(number()).map_err(|_| "out of range"),
            13 => OffsetDateTime::from_unix_timestamp_nanos(i128::from(number()) * 1_000_000)
                .map_err(|_| "out of range"),
            _ => Err("Unix seconds take 1 to 11 digits, milliseconds exactly 13"),
        };
    }
    let text = std::str::from_utf8(value).map_err(|_| "not ASCII")?;
    OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| "neither Unix seconds, Unix milliseconds nor RFC 3339")
}

/// How far `timestamp` lies behind `now` (negative when it is in the future).
///
/// Both values are inside `time`'s range (±9999 years), so the difference cannot overflow.
pub(crate) fn drift(now: OffsetDateTime, timestamp: OffsetDateTime) -> Duration {
    now - timestamp
}

/// Whether a drift is inside a window of `tolerance` either way, bounds included.
pub(crate) fn within(drift: Duration, tolerance: Duration) -> bool {
    drift.unsigned_abs() <= tolerance.unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(value: &str) -> Result<i128, &'static str> {
        parse(value.as_bytes()).map(OffsetDateTime::unix_timestamp_nanos)
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
        let five = Duration::seconds(300);
        assert!(within(Duration::seconds(300), five));
        assert!(within(Duration::seconds(-300), five));
        assert!(!within(Duration::seconds(301), five));
        assert!(!within(Duration::seconds(-301), five));
        assert!(!within(Duration::MIN, five));
        assert!(within(Duration::ZERO, Duration::ZERO));
    }
}
