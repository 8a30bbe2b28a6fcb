//! Properties over generated inputs: what is signed verifies; any single flipped bit of the body,
//! the timestamp or the signature is rejected; no input makes the verifier panic.

use hookverify::{HeaderValues, MAX_TOLERANCE, ManualClock, Signer, Verifier, VerifyError};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use proptest::sample::Index;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

/// The earliest and latest Unix seconds `time` represents (years -9999 and 9999).
const MIN_UNIX: i64 = -377_705_116_800;
const MAX_UNIX: i64 = 253_402_300_799;

/// A timestamp header in one of the three accepted forms, with the instant it denotes.
#[derive(Debug, Clone)]
struct Timestamp {
    text: String,
    instant: OffsetDateTime,
}

fn unix_seconds() -> impl Strategy<Value = Timestamp> {
    // 1 to 11 digits.
    (0..=99_999_999_999i64).prop_map(|seconds| Timestamp {
        text: seconds.to_string(),
        instant: OffsetDateTime::from_unix_timestamp(seconds).expect("in range"),
    })
}

fn unix_millis() -> impl Strategy<Value = Timestamp> {
    // Exactly 13 digits.
    (1_000_000_000_000..=9_999_999_999_999i64).prop_map(|millis| Timestamp {
        text: millis.to_string(),
        instant: OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
            .expect("in range"),
    })
}

fn rfc3339() -> impl Strategy<Value = Timestamp> {
    // A day away from the ends of the range, so any offset keeps the local year in 0000..=9999.
    let seconds = 86_400..=MAX_UNIX - 86_400;
    let nanos = prop_oneof![Just(0u32), 0..1_000_000_000u32];
    let offset_minutes = -(23 * 60 + 59)..=(23 * 60 + 59);
    (seconds, nanos, offset_minutes).prop_map(|(seconds, nanos, minutes)| {
        let offset = UtcOffset::from_whole_seconds(minutes * 60).expect("in range");
        let instant = (OffsetDateTime::from_unix_timestamp(seconds).expect("in range")
            + Duration::nanoseconds(i64::from(nanos)))
        .to_offset(offset);
        Timestamp {
            text: instant.format(&Rfc3339).expect("formattable"),
            instant,
        }
    })
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![unix_seconds(), unix_millis(), rfc3339()]
}

/// A signed delivery with a verifier whose clock sits inside the window.
#[derive(Debug, Clone)]
struct Delivery {
    secret: Vec<u8>,
    timestamp: Timestamp,
    tolerance: Duration,
    /// Where the clock sits, relative to the timestamp; within the tolerance.
    offset: Duration,
    delivery_id: String,
    body: Vec<u8>,
}

impl Delivery {
    fn verifier(&self) -> Verifier {
        Verifier::builder()
            .secret("only", self.secret.clone())
            .tolerance(self.tolerance)
            .clock(ManualClock::new(self.timestamp.instant + self.offset))
            .build()
            .expect("valid configuration")
    }

    fn signer(&self) -> Signer {
        Signer::new(self.secret.clone()).expect("non-empty secret")
    }

    /// The signature header's value.
    fn signature(&self) -> String {
        self.signer()
            .sign_with_timestamp(&self.delivery_id, &self.timestamp.text, &self.body)
            .signature()
            .to_owned()
    }
}

fn delivery() -> impl Strategy<Value = Delivery> {
    let secret = prop::collection::vec(any::<u8>(), 1..100);
    let tolerance_ms = 0..=86_400_000i64;
    let body = prop::collection::vec(any::<u8>(), 0..1024);
    (
        secret,
        timestamp(),
        tolerance_ms,
        any::<Index>(),
        any::<bool>(),
        "[!-~]{1,64}",
        body,
    )
        .prop_map(
            |(secret, timestamp, tolerance_ms, offset, negative, delivery_id, body)| {
                let offset_ms = offset.index(usize::try_from(tolerance_ms).expect("small") + 1);
                let offset_ms = i64::try_from(offset_ms).expect("small");
                Delivery {
                    secret,
                    timestamp,
                    tolerance: Duration::milliseconds(tolerance_ms),
                    offset: Duration::milliseconds(if negative { -offset_ms } else { offset_ms }),
                    delivery_id,
                    body,
                }
            },
        )
}

/// The verdict of `verify_values` on raw header values (the verified result itself is checked
/// through `verify`).
fn verify_raw(
    verifier: &Verifier,
    signature: &[u8],
    timestamp: &[u8],
    delivery_id: &[u8],
    body: &[u8],
) -> Result<(), VerifyError> {
    verifier
        .verify_values(
            HeaderValues {
                signature: Some(signature),
                timestamp: Some(timestamp),
                delivery_id: Some(delivery_id),
            },
            body,
        )
        .map(drop)
}

fn flip(bytes: &[u8], bit: &Index) -> Vec<u8> {
    let bit = bit.index(bytes.len() * 8);
    let mut flipped = bytes.to_vec();
    flipped[bit / 8] ^= 1 << (bit % 8);
    flipped
}

proptest! {
    #[test]
    fn signed_deliveries_verify(delivery in delivery()) {
        let verifier = delivery.verifier();
        let signed = delivery.signer().sign_with_timestamp(
            &delivery.delivery_id,
            &delivery.timestamp.text,
            &delivery.body,
        );

        let headers = signed.header_map().expect("valid header values");
        let verified = verifier
            .verify(&headers, &delivery.body)
            .map_err(|e| TestCaseError::fail(format!("{} ({e})", e.kind().as_str())))?;
        prop_assert_eq!(verified.secret_label(), "only");
        prop_assert_eq!(verified.timestamp(), Some(delivery.timestamp.instant));
        prop_assert_eq!(
            verified.delivery_id(),
            Some(delivery.delivery_id.as_str())
        );
        prop_assert_eq!(
            format!("sha256={}", hex::encode(verified.tag().expect("a MAC").as_bytes())),
            signed.signature()
        );

        // The same through plain values.
        let again = verify_raw(
            &verifier,
            signed.signature().as_bytes(),
            signed.timestamp().as_bytes(),
            signed.delivery_id().as_bytes(),
            &delivery.body,
        );
        prop_assert!(again.is_ok());
    }

    #[test]
    fn a_flipped_body_bit_is_a_mismatch(delivery in delivery(), bit in any::<Index>()) {
        prop_assume!(!delivery.body.is_empty());
        let body = flip(&delivery.body, &bit);
        let verdict = verify_raw(
            &delivery.verifier(),
            delivery.signature().as_bytes(),
            delivery.timestamp.text.as_bytes(),
            delivery.delivery_id.as_bytes(),
            &body,
        );
        prop_assert_eq!(verdict.err().map(|e| e.kind().as_str()), Some("signature_mismatch"));
    }

    #[test]
    fn a_flipped_timestamp_bit_is_rejected(delivery in delivery(), bit in any::<Index>()) {
        let timestamp = flip(delivery.timestamp.text.as_bytes(), &bit);
        let verdict = verify_raw(
            &delivery.verifier(),
            delivery.signature().as_bytes(),
            &timestamp,
            delivery.delivery_id.as_bytes(),
            &delivery.body,
        );
        prop_assert!(verdict.is_err(), "accepted timestamp {:?}", String::from_utf8_lossy(&timestamp));
    }

    #[test]
    fn a_flipped_signature_bit_is_rejected(delivery in delivery(), bit in any::<Index>()) {
        let original = delivery.signature();
        let signature = flip(original.as_bytes(), &bit);
        let verdict = verify_raw(
            &delivery.verifier(),
            &signature,
            delivery.timestamp.text.as_bytes(),
            delivery.delivery_id.as_bytes(),
            &delivery.body,
        );
        // Hex digits are accepted in either case, so flipping the case bit of a hex letter in
        // the digest leaves the signature intact. Any other flip breaks it.
        let position = bit.index(original.len() * 8) / 8;
        let case_flip = position >= "sha256=".len()
            && original.as_bytes()[position].is_ascii_hexdigit()
            && signature[position].is_ascii_hexdigit()
            && original.as_bytes()[position].eq_ignore_ascii_case(&signature[position]);
        if case_flip {
            prop_assert!(verdict.is_ok(), "{:?}", verdict.err());
        } else {
            prop_assert!(verdict.is_err(), "accepted {:?}", String::from_utf8_lossy(&signature));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary input

/// Header bytes: anything, or near misses of each form, so that the parsers' deeper paths run.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80),
        "(sha256=[0-9a-fA-FxX]{0,66}[ ,]{0,2}){0,10}".prop_map(String::into_bytes),
        "[0-9]{0,14}".prop_map(String::into_bytes),
        "[0-9]{14,70}".prop_map(String::into_bytes),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?([Zz]|[+-][0-9]{2}:[0-9]{2})?"
            .prop_map(String::into_bytes),
        "[!-~]{0,300}".prop_map(String::into_bytes),
    ]
}

fn any_verifier() -> impl Strategy<Value = Verifier> {
    (
        prop::collection::vec(prop::collection::vec(any::<u8>(), 1..40), 1..4),
        MIN_UNIX..=MAX_UNIX,
        // Up to the largest tolerance accepted, and that one often: the window's arithmetic
        // at its widest, with clocks at the ends of the range.
        prop_oneof![
            0..=600i64,
            0..=MAX_TOLERANCE.whole_seconds(),
            Just(MAX_TOLERANCE.whole_seconds()),
        ],
    )
        .prop_map(|(secrets, now, tolerance)| {
            Verifier::builder()
                .secrets(
                    secrets
                        .into_iter()
                        .enumerate()
                        .map(|(i, secret)| hookverify::Secret::new(i.to_string(), secret)),
                )
                .tolerance(Duration::seconds(tolerance))
                .clock(ManualClock::from_unix(now).expect("in range"))
                .build()
                .expect("valid configuration")
        })
}

const NAMES: [&str; 3] = [
    "x-agent-signature",
    "x-agent-timestamp",
    "x-agent-delivery-id",
];
const MALFORMED: [&str; 3] = [
    "malformed_signature",
    "malformed_timestamp",
    "malformed_delivery_id",
];

proptest! {
    #[test]
    fn tolerances_outside_zero_to_a_day_are_configuration_errors(
        seconds in prop_oneof![i64::MIN..0, MAX_TOLERANCE.whole_seconds() + 1..=i64::MAX],
        nanos in prop_oneof![Just(0i32), 1..1_000_000_000i32],
    ) {
        let tolerance = Duration::new(seconds, if seconds < 0 { -nanos } else { nanos });
        let built = Verifier::builder()
            .secret("only", "whsec_only")
            .tolerance(tolerance)
            .build();
        prop_assert!(built.is_err(), "{tolerance} accepted");
    }

    #[test]
    fn arbitrary_header_values_never_panic(
        verifier in any_verifier(),
        signature in prop::option::of(header_bytes()),
        timestamp in prop::option::of(header_bytes()),
        delivery_id in prop::option::of(header_bytes()),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let verdict = verifier.verify_values(
            HeaderValues {
                signature: signature.as_deref(),
                timestamp: timestamp.as_deref(),
                delivery_id: delivery_id.as_deref(),
            },
            &body,
        );
        if signature.is_none() || timestamp.is_none() {
            prop_assert_eq!(verdict.err().map(|e| e.kind().as_str()), Some("missing_header"));
        }
    }

    #[test]
    fn arbitrary_header_maps_never_panic(
        verifier in any_verifier(),
        values in [
            prop::collection::vec(header_bytes(), 0..3),
            prop::collection::vec(header_bytes(), 0..3),
            prop::collection::vec(header_bytes(), 0..3),
        ],
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut headers = HeaderMap::new();
        let mut counts = [0usize; 3];
        for ((name, values), count) in NAMES.iter().zip(&values).zip(&mut counts) {
            for value in values {
                // Only what an HTTP stack could hand over.
                if let Ok(value) = HeaderValue::from_bytes(value) {
                    headers.append(HeaderName::from_static(name), value);
                    *count += 1;
                }
            }
        }
        let verdict = verifier.verify(&headers, &body);
        if counts.iter().any(|&n| n > 1) {
            // Never pick one of a repeated header's values.
            let kind = verdict.as_ref().err().map(|e| e.kind().as_str());
            let repeated: Vec<&str> = counts
                .iter()
                .zip(MALFORMED)
                .filter(|(n, _)| **n > 1)
                .map(|(_, kind)| kind)
                .collect();
            prop_assert!(
                kind.is_some_and(|k| repeated.contains(&k) || k == "missing_header"),
                "{:?} with counts {:?}", kind, counts
            );
        } else if counts[0] == 0 || counts[1] == 0 {
            prop_assert_eq!(verdict.err().map(|e| e.kind().as_str()), Some("missing_header"));
        }
    }
}
