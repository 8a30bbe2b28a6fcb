//! What a user of the verifier relies on: the window, rotation, header handling, configuration
//! errors, redaction and the order of the checks.

use std::sync::Arc;

use hookverify::{
    BodyVerifier, Clock, ConfigError, DEFAULT_TOLERANCE, HeaderNames, HeaderValues, MAX_TOLERANCE,
    Malformed, ManualClock, Method, Secret, SignedHeaders, Signer, Verifier, VerifyError,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use time::{Duration, OffsetDateTime};

const SECRET: &str = "whsec_S3cr3t-value-0f-the-test";
const OLD_SECRET: &str = "whsec_0ld-value-0f-the-test";
const NOW: i64 = 1_764_000_000;
const BODY: &[u8] = br#"{"id":"evt_01","type":"thread.completed"}"#;

fn at(unix: i64) -> ManualClock {
    ManualClock::from_unix(unix).expect("in range")
}

fn verifier_at(unix: i64) -> Verifier {
    Verifier::builder()
        .secret("current", SECRET)
        .clock(at(unix))
        .build()
        .expect("valid configuration")
}

fn sign(secret: &str, timestamp: &str, body: &[u8]) -> SignedHeaders {
    Signer::new(secret)
        .expect("non-empty secret")
        .sign_with_timestamp("dlv_0001", timestamp, body)
}

fn headers(signed: &SignedHeaders) -> HeaderMap {
    signed.header_map().expect("valid header values")
}

/// A request signed with `secret` at `timestamp`, as a header map.
fn request(secret: &str, timestamp: &str) -> HeaderMap {
    headers(&sign(secret, timestamp, BODY))
}

fn kind<T>(result: Result<T, VerifyError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(error) => error.kind().as_str(),
    }
}

fn set(map: &mut HeaderMap, name: &str, value: &str) {
    map.insert(
        HeaderName::from_bytes(name.as_bytes()).expect("header name"),
        HeaderValue::from_str(value).expect("header value"),
    );
}

// ---------------------------------------------------------------------------------------------
// The window

#[test]
fn window_edges_are_inclusive_in_both_directions() {
    let headers = request(SECRET, &NOW.to_string());
    let cases = [
        (NOW, "ok"),
        (NOW + 300, "ok"),
        (NOW - 300, "ok"),
        (NOW + 301, "timestamp_out_of_tolerance"),
        (NOW - 301, "timestamp_out_of_tolerance"),
    ];
    for (now, expected) in cases {
        assert_eq!(
            kind(verifier_at(now).verify(&headers, BODY)),
            expected,
            "clock at NOW{:+}",
            now - NOW
        );
    }
}

#[test]
fn window_edges_hold_to_the_nanosecond() {
    // A millisecond timestamp: the window is measured from the exact instant, not the second.
    let headers = request(SECRET, "1764000000250");
    let signed_at =
        OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_250_000_000).expect("in range");
    let verify_at = |offset: Duration| {
        let verifier = Verifier::builder()
            .secret("current", SECRET)
            .clock(ManualClock::new(signed_at + offset))
            .build()
            .expect("valid configuration");
        kind(verifier.verify(&headers, BODY))
    };
    let edge = Duration::seconds(300);
    let tick = Duration::nanoseconds(1);
    assert_eq!(verify_at(edge), "ok");
    assert_eq!(verify_at(-edge), "ok");
    assert_eq!(verify_at(edge + tick), "timestamp_out_of_tolerance");
    assert_eq!(verify_at(-edge - tick), "timestamp_out_of_tolerance");
}

#[test]
fn tolerance_is_configurable_and_defaults_to_300_seconds() {
    assert_eq!(verifier_at(NOW).tolerance(), DEFAULT_TOLERANCE);
    assert_eq!(DEFAULT_TOLERANCE, Duration::seconds(300));

    let headers = request(SECRET, &NOW.to_string());
    let with_tolerance = |tolerance: Duration, now: i64| {
        let verifier = Verifier::builder()
            .secret("current", SECRET)
            .tolerance(tolerance)
            .clock(at(now))
            .build()
            .expect("valid configuration");
        kind(verifier.verify(&headers, BODY))
    };
    assert_eq!(with_tolerance(Duration::ZERO, NOW), "ok");
    assert_eq!(
        with_tolerance(Duration::ZERO, NOW + 1),
        "timestamp_out_of_tolerance"
    );
    assert_eq!(with_tolerance(Duration::seconds(3600), NOW - 3600), "ok");
    assert_eq!(
        with_tolerance(Duration::seconds(3600), NOW - 3601),
        "timestamp_out_of_tolerance"
    );
}

/// The largest numeric timestamps, the ends of `time`'s range and the widest window accepted:
/// every verdict is a typed error or a success, never a panic or an overflow.
#[test]
fn extreme_timestamps_and_the_widest_window_never_panic() {
    // The earliest and latest Unix seconds `time` represents (years -9999 and 9999).
    const MIN_UNIX: i64 = -377_705_116_800;
    const MAX_UNIX: i64 = 253_402_300_799;
    let widest = |clock: ManualClock| {
        Verifier::builder()
            .secret("current", SECRET)
            .tolerance(MAX_TOLERANCE)
            .clock(clock)
            .build()
            .expect("the largest tolerance is valid")
    };
    let far_future = [
        "99999999999",
        "9999999999999",
        "9999-12-31T23:59:59.999999999Z",
    ];
    let far_past = ["0", "0000000000000", "0000-01-01T00:00:00Z"];
    let cases: [(i64, Vec<&str>); 3] = [
        (NOW, [far_future, far_past].concat()),
        (MIN_UNIX, far_future.to_vec()),
        (MAX_UNIX, far_past.to_vec()),
    ];
    for (now, timestamps) in cases {
        let verifier = widest(at(now));
        for timestamp in timestamps {
            let error = verifier
                .verify(&request(SECRET, timestamp), BODY)
                .expect_err("far outside the window");
            assert!(
                matches!(error, VerifyError::TimestampOutOfTolerance { tolerance, .. } if tolerance == MAX_TOLERANCE),
                "{timestamp} at {now}: {error:?}"
            );
        }
    }

    // The largest Unix seconds, inside the widest window, up to its last second.
    let edge = 99_999_999_999 + MAX_TOLERANCE.whole_seconds();
    let largest = request(SECRET, "99999999999");
    assert_eq!(kind(widest(at(edge)).verify(&largest, BODY)), "ok");
    assert_eq!(
        kind(widest(at(edge + 1)).verify(&largest, BODY)),
        "timestamp_out_of_tolerance"
    );

    // A valid RFC 3339 time whose UTC instant lies past the year 9999: malformed, even with the
    // clock at the end of the range, where the window would hold it.
    let error = widest(at(MAX_UNIX))
        .verify(&request(SECRET, "9999-12-31T23:59:59-01:00"), BODY)
        .expect_err("past the range");
    assert!(
        matches!(
            error,
            VerifyError::MalformedTimestamp {
                reason: Malformed::OutOfRange,
                ..
            }
        ),
        "{error:?}"
    );

    // A clock reading far beyond any date: the drift saturates and is reported.
    #[derive(Debug)]
    struct Reads(i128);
    impl Clock for Reads {
        fn now(&self) -> OffsetDateTime {
            OffsetDateTime::UNIX_EPOCH
        }
        fn unix_nanos(&self) -> i128 {
            self.0
        }
    }
    for (reading, drift) in [(i128::MAX, Duration::MAX), (i128::MIN, Duration::MIN)] {
        let verifier = Verifier::builder()
            .secret("current", SECRET)
            .tolerance(MAX_TOLERANCE)
            .clock(Reads(reading))
            .build()
            .expect("valid configuration");
        let error = verifier
            .verify(&request(SECRET, "99999999999"), BODY)
            .expect_err("out of the window");
        assert_eq!(
            error,
            VerifyError::TimestampOutOfTolerance {
                drift,
                tolerance: MAX_TOLERANCE
            }
        );
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn the_clock_is_read_at_each_verification() {
    let clock = Arc::new(at(NOW));
    let verifier = Verifier::builder()
        .secret("current", SECRET)
        .clock(Arc::clone(&clock))
        .build()
        .expect("valid configuration");
    let headers = request(SECRET, &NOW.to_string());
    assert_eq!(kind(verifier.verify(&headers, BODY)), "ok");
    clock.advance(Duration::seconds(301));
    assert_eq!(
        kind(verifier.verify(&headers, BODY)),
        "timestamp_out_of_tolerance"
    );
    clock.advance(Duration::seconds(-1));
    assert_eq!(kind(verifier.verify(&headers, BODY)), "ok");
}

#[test]
fn all_three_timestamp_forms_are_signed_as_sent() {
    let verifier = verifier_at(NOW);
    for timestamp in [
        "1764000000",
        "1764000000000",
        "2025-11-24T16:00:00Z",
        "2025-11-24T17:00:00+01:00",
        "2025-11-24T16:00:00.000Z",
    ] {
        let headers = request(SECRET, timestamp);
        let verified = verifier
            .verify(&headers, BODY)
            .unwrap_or_else(|e| panic!("{timestamp}: {e}"));
        assert_eq!(
            verified.timestamp().map(|at| at.unix_timestamp()),
            Some(NOW),
            "{timestamp}"
        );
    }
    // The same instant written differently is a different signed message.
    let mut headers = request(SECRET, "2025-11-24T16:00:00Z");
    set(&mut headers, "x-agent-timestamp", "1764000000");
    assert_eq!(kind(verifier.verify(&headers, BODY)), "signature_mismatch");
}

#[test]
fn timestamps_are_parsed_strictly() {
    let verifier = verifier_at(NOW);
    for timestamp in [
        "+1764000000",
        " 1764000000",
        "1764000000.0",
        "176400000000",
        "17640000000000",
        "99999999999999999999999999999999999999999999999999",
    ] {
        // Signed over the bad text, so only the timestamp's form can be at fault.
        let signed = sign(SECRET, timestamp, BODY);
        let verdict = verifier.verify_values(
            HeaderValues {
                signature: Some(signed.signature().as_bytes()),
                timestamp: Some(timestamp.as_bytes()),
                delivery_id: None,
            },
            BODY,
        );
        assert_eq!(kind(verdict), "malformed_timestamp", "{timestamp:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Rotation

fn rotating(labels_and_secrets: &[(&str, &str)]) -> Verifier {
    Verifier::builder()
        .secrets(
            labels_and_secrets
                .iter()
                .map(|(label, secret)| Secret::new(*label, *secret)),
        )
        .clock(at(NOW))
        .build()
        .expect("valid configuration")
}

#[test]
fn rotation_reports_the_label_of_the_matching_secret() {
    let verifier = rotating(&[("new", SECRET), ("old", OLD_SECRET)]);
    let ts = NOW.to_string();
    let by_new = request(SECRET, &ts);
    let by_old = request(OLD_SECRET, &ts);
    let by_neither = request("whsec_someone-else", &ts);
    // Interleaved, so the secret tried first changes between calls.
    for (headers, expected) in [
        (&by_old, "old"),
        (&by_old, "old"),
        (&by_new, "new"),
        (&by_neither, "signature_mismatch"),
        (&by_old, "old"),
        (&by_neither, "signature_mismatch"),
        (&by_new, "new"),
        (&by_new, "new"),
    ] {
        let got = verifier.verify(headers, BODY).map_or_else(
            |e| e.kind().as_str().to_owned(),
            |v| v.secret_label().to_owned(),
        );
        assert_eq!(got, expected);
    }
}

#[test]
fn the_secret_that_matched_last_does_not_change_the_result() {
    // Three configured secrets and an outsider. Deliveries carry signatures by one, two or all of
    // them (a provider that rotates sends one signature per secret). Whatever matched before, the
    // answer is the one a fresh verifier gives: the first configured secret among those that
    // match.
    let configured = [
        ("a", "whsec_aaaa"),
        ("b", "whsec_bbbb"),
        ("c", "whsec_cccc"),
    ];
    let outsider = "whsec_zzzz";
    let ts = NOW.to_string();
    let delivery = |signers: &[&str]| -> HeaderMap {
        let signature = signers
            .iter()
            .map(|secret| sign(secret, &ts, BODY).signature().to_owned())
            .collect::<Vec<_>>()
            .join(",");
        let mut headers = request(outsider, &ts);
        set(&mut headers, "x-agent-signature", &signature);
        headers
    };
    let [(_, a), (_, b), (_, c)] = configured;
    let deliveries = [
        (delivery(&[a]), Some("a")),
        (delivery(&[b]), Some("b")),
        (delivery(&[c]), Some("c")),
        (delivery(&[b, c]), Some("b")),
        (delivery(&[c, b]), Some("b")),
        (delivery(&[c, a]), Some("a")),
        (delivery(&[outsider, c, b, a]), Some("a")),
        (delivery(&[outsider, c]), Some("c")),
        (delivery(&[outsider]), None),
    ];
    let label = |verifier: &Verifier, headers: &HeaderMap| -> Option<String> {
        verifier
            .verify(headers, BODY)
            .ok()
            .map(|v| v.secret_label().to_owned())
    };
    for (i, (before, _)) in deliveries.iter().enumerate() {
        for (j, (headers, expected)) in deliveries.iter().enumerate() {
            let verifier = rotating(&configured);
            let _ = label(&verifier, before);
            assert_eq!(
                label(&verifier, headers).as_deref(),
                *expected,
                "delivery {j}, after delivery {i}"
            );
        }
    }
}

#[test]
fn a_secret_removed_from_the_rotation_no_longer_verifies() {
    let headers = request(OLD_SECRET, &NOW.to_string());
    let both = rotating(&[("new", SECRET), ("old", OLD_SECRET)]);
    assert_eq!(
        both.verify(&headers, BODY)
            .map(|v| v.secret_label().to_owned())
            .ok(),
        Some("old".to_owned())
    );
    let new_only = rotating(&[("new", SECRET)]);
    assert_eq!(kind(new_only.verify(&headers, BODY)), "signature_mismatch");
}

// ---------------------------------------------------------------------------------------------
// Headers

#[test]
fn a_repeated_header_is_malformed_even_with_identical_values() {
    let verifier = verifier_at(NOW);
    // Small header maps are scanned once, large ones looked up by name: both ways must agree.
    for unrelated in [0, 8, 40] {
        let mut original = request(SECRET, &NOW.to_string());
        for index in 0..unrelated {
            set(&mut original, &format!("x-unrelated-{index}"), "value");
        }
        for (name, expected) in [
            ("x-agent-signature", "malformed_signature"),
            ("x-agent-timestamp", "malformed_timestamp"),
            ("x-agent-delivery-id", "malformed_delivery_id"),
        ] {
            let mut headers = original.clone();
            let value = headers.get(name).expect("present").clone();
            headers.append(name, value);
            assert_eq!(
                kind(verifier.verify(&headers, BODY)),
                expected,
                "{name} with {unrelated} other headers"
            );
            let mut without = original.clone();
            without.remove(name);
            let missing = if name == "x-agent-delivery-id" {
                "ok"
            } else {
                "missing_header"
            };
            assert_eq!(
                kind(verifier.verify(&without, BODY)),
                missing,
                "{name} removed"
            );
        }
        assert_eq!(
            kind(verifier.verify(&original, BODY)),
            "ok",
            "{unrelated} other headers"
        );
    }
}

#[test]
fn missing_headers_are_named() {
    let verifier = verifier_at(NOW);
    let full = request(SECRET, &NOW.to_string());
    for name in ["x-agent-signature", "x-agent-timestamp"] {
        let mut headers = full.clone();
        headers.remove(name);
        let error = verifier.verify(&headers, BODY).expect_err("missing header");
        assert_eq!(error.kind().as_str(), "missing_header");
        assert!(error.to_string().contains(name), "{error}");
    }
    // The delivery id is optional for the core (dedupe requires it, not the signature).
    let mut headers = full.clone();
    headers.remove("x-agent-delivery-id");
    let verified = verifier
        .verify(&headers, BODY)
        .expect("verifies without an id");
    assert!(verified.delivery_id().is_none());

    let verified = verifier.verify(&full, BODY).expect("verifies");
    assert_eq!(verified.delivery_id(), Some("dlv_0001"));
}

#[test]
fn delivery_ids_are_validated() {
    let verifier = verifier_at(NOW);
    let mut headers = request(SECRET, &NOW.to_string());
    for bad in ["", "has space", &"x".repeat(257), "caf\u{e9}"] {
        let verdict = verifier.verify_values(
            HeaderValues {
                signature: headers.get("x-agent-signature").map(HeaderValue::as_bytes),
                timestamp: headers.get("x-agent-timestamp").map(HeaderValue::as_bytes),
                delivery_id: Some(bad.as_bytes()),
            },
            BODY,
        );
        assert_eq!(kind(verdict), "malformed_delivery_id", "{bad:?}");
    }
    set(&mut headers, "x-agent-delivery-id", &"x".repeat(256));
    assert_eq!(kind(verifier.verify(&headers, BODY)), "ok");
}

#[test]
fn custom_header_names_are_used_for_reading_and_in_errors() {
    let names = HeaderNames {
        signature: HeaderName::from_static("x-hub-signature-256"),
        timestamp: Some(HeaderName::from_static("x-hub-timestamp")),
        delivery_id: Some(HeaderName::from_static("x-github-delivery")),
    };
    let verifier = Verifier::builder()
        .secret("current", SECRET)
        .header_names(names.clone())
        .clock(at(NOW))
        .build()
        .expect("valid configuration");
    assert_eq!(verifier.header_names(), &names);

    let signer = Signer::new(SECRET)
        .expect("non-empty secret")
        .header_names(names.clone());
    let signed = signer.sign_with_timestamp("dlv_1", &NOW.to_string(), BODY);
    let custom = headers(&signed);
    assert!(custom.contains_key("x-hub-signature-256"));
    assert_eq!(
        verifier
            .verify(&custom, BODY)
            .expect("verifies")
            .delivery_id(),
        Some("dlv_1")
    );

    // The default names are not read any more.
    let default_named = request(SECRET, &NOW.to_string());
    let error = verifier
        .verify(&default_named, BODY)
        .expect_err("default names are ignored");
    assert_eq!(error.kind().as_str(), "missing_header");
    assert!(error.to_string().contains("x-hub-signature-256"), "{error}");

    let mut repeated = custom.clone();
    repeated.append("x-hub-timestamp", HeaderValue::from_static("1764000000"));
    let error = verifier.verify(&repeated, BODY).expect_err("repeated");
    assert_eq!(error.kind().as_str(), "malformed_timestamp");
    assert!(error.to_string().contains("x-hub-timestamp"), "{error}");
}

#[test]
fn signature_lists_follow_the_contract() {
    let verifier = verifier_at(NOW);
    let ts = NOW.to_string();
    let good = sign(SECRET, &ts, BODY).signature().to_owned();
    let other = sign("whsec_other", &ts, BODY).signature().to_owned();
    let verdict = |signature: &str| {
        kind(verifier.verify_values(
            HeaderValues {
                signature: Some(signature.as_bytes()),
                timestamp: Some(ts.as_bytes()),
                delivery_id: None,
            },
            BODY,
        ))
    };
    assert_eq!(verdict(&good), "ok");
    assert_eq!(
        verdict(&good.to_uppercase().replace("SHA256=", "sha256=")),
        "ok"
    );
    assert_eq!(verdict(&format!("{other},{good}")), "ok");
    assert_eq!(verdict(&format!("{other} {good}")), "ok");
    assert_eq!(
        verdict(&format!("{}, {good}", [other.as_str(); 7].join(", "))),
        "ok"
    );
    assert_eq!(
        verdict(&format!("{},{good}", [other.as_str(); 8].join(","))),
        "malformed_signature"
    );
    assert_eq!(verdict(&other), "signature_mismatch");
    assert_eq!(verdict("sha256="), "malformed_signature");
    assert_eq!(verdict(&good[..good.len() - 1]), "malformed_signature");
    assert_eq!(verdict(&format!("{good}0")), "malformed_signature");
    assert_eq!(
        verdict(&good.replace("sha256=", "sha1=")),
        "malformed_signature"
    );
    assert_eq!(verdict(&format!("{good},v1=abc")), "malformed_signature");
    assert_eq!(
        verdict(&format!("{good}{}", " ".repeat(1024))),
        "malformed_signature"
    );
}

#[test]
fn the_body_is_verified_as_raw_bytes() {
    let verifier = verifier_at(NOW);
    let body: Vec<u8> = (0..=255u8).rev().chain([0xff, 0xfe, 0x00]).collect();
    assert!(std::str::from_utf8(&body).is_err());
    let headers = headers(&sign(SECRET, &NOW.to_string(), &body));
    assert_eq!(kind(verifier.verify(&headers, &body)), "ok");
    let mut altered = body.clone();
    altered[10] ^= 0x01;
    assert_eq!(
        kind(verifier.verify(&headers, &altered)),
        "signature_mismatch"
    );
    assert_eq!(
        kind(verifier.verify(&headers, &body[..body.len() - 1])),
        "signature_mismatch"
    );
    assert_eq!(kind(verifier.verify(&headers, b"")), "signature_mismatch");
}

#[test]
fn the_verified_tag_is_the_carried_signature() {
    let signed = sign(SECRET, &NOW.to_string(), BODY);
    let (verifier, headers) = (verifier_at(NOW), headers(&signed));
    let verified = verifier.verify(&headers, BODY).expect("verifies");
    assert_eq!(
        format!(
            "sha256={}",
            hex::encode(verified.tag().expect("a MAC").as_bytes())
        ),
        signed.signature()
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration

#[test]
fn configuration_errors() {
    let build = |builder: hookverify::VerifierBuilder| builder.build().map(|_| ()).err();
    assert_eq!(
        build(Verifier::builder()),
        Some(ConfigError::NoSecrets {
            method: Method::HmacSha256
        })
    );
    assert_eq!(
        build(
            Verifier::builder()
                .secret("current", SECRET)
                .secret("empty", "")
        ),
        Some(ConfigError::EmptySecret {
            label: "empty".to_owned()
        })
    );
    assert_eq!(
        build(
            Verifier::builder()
                .secret("same", SECRET)
                .secret("same", OLD_SECRET)
        ),
        Some(ConfigError::DuplicateLabel {
            label: "same".to_owned()
        })
    );
    assert_eq!(
        build(
            Verifier::builder()
                .secret("current", SECRET)
                .tolerance(Duration::seconds(-1))
        ),
        Some(ConfigError::NegativeTolerance)
    );
    assert_eq!(
        build(
            Verifier::builder()
                .secret("current", SECRET)
                .tolerance(-Duration::nanoseconds(1))
        ),
        Some(ConfigError::NegativeTolerance)
    );
    for tolerance in [Duration::ZERO, MAX_TOLERANCE] {
        assert_eq!(
            build(
                Verifier::builder()
                    .secret("current", SECRET)
                    .tolerance(tolerance)
            ),
            None,
            "{tolerance}"
        );
    }
    for tolerance in [MAX_TOLERANCE + Duration::nanoseconds(1), Duration::MAX] {
        assert!(
            matches!(
                build(
                    Verifier::builder()
                        .secret("current", SECRET)
                        .tolerance(tolerance)
                ),
                Some(ConfigError::OutOfRange {
                    setting: "tolerance",
                    ..
                })
            ),
            "{tolerance}"
        );
    }
    assert!(matches!(
        Signer::new(""),
        Err(ConfigError::EmptySecret { .. })
    ));
    // The messages say what is wrong and never show a secret.
    let duplicate = build(
        Verifier::builder()
            .secret("same", SECRET)
            .secret("same", OLD_SECRET),
    )
    .expect("duplicate label");
    let message = duplicate.to_string();
    assert!(message.contains("same"), "{message}");
    assert!(!message.contains(SECRET) && !message.contains(OLD_SECRET));
}

// ---------------------------------------------------------------------------------------------
// Redaction

/// Every way the secret or a tag could show up in text.
fn assert_redacted(what: &str, text: &str, secret: &str, tag: &[u8; 32]) {
    let hex_lower = hex::encode(tag);
    let forbidden = [
        secret.to_owned(),
        hex_lower.clone(),
        hex_lower.to_uppercase(),
        format!("{tag:?}"),
        format!("{:?}", secret.as_bytes()),
    ];
    for needle in forbidden {
        assert!(
            !text.contains(&needle),
            "{what} shows secret material: {text}"
        );
    }
}

#[test]
fn debug_output_never_shows_secrets_or_tags() {
    let secret_value = SECRET;
    let signer = Signer::new(secret_value).expect("non-empty secret");
    let signed = signer.sign_with_timestamp("dlv_0001", &NOW.to_string(), BODY);
    let verifier = Verifier::builder()
        .secret("current", secret_value)
        .clock(at(NOW))
        .build()
        .expect("valid configuration");
    let signed_headers = headers(&signed);
    let verified = verifier.verify(&signed_headers, BODY).expect("verifies");
    let tag: [u8; 32] = verified
        .tag()
        .expect("a MAC")
        .as_bytes()
        .try_into()
        .expect("32 bytes");
    let precheck = verifier.precheck(&headers(&signed)).expect("prechecks");

    let outputs = [
        (
            "Secret",
            format!("{:?}", Secret::new("current", secret_value)),
        ),
        ("Verifier", format!("{verifier:?}")),
        ("Signer", format!("{signer:?}")),
        ("SignedHeaders", format!("{signed:?}")),
        ("Tag", format!("{:?}", verified.tag())),
        ("Verified", format!("{verified:?}")),
        ("Precheck", format!("{precheck:?}")),
        ("HeaderMap", format!("{:?}", headers(&signed))),
    ];
    for (what, text) in &outputs {
        assert!(!text.is_empty(), "{what}");
        assert_redacted(what, text, secret_value, &tag);
    }
    // Redacted, not empty: the parts worth seeing are there.
    assert!(outputs[0].1.contains("current"));
    assert!(outputs[1].1.contains("current"));
    assert!(outputs[3].1.contains("dlv_0001"));
    assert!(outputs[5].1.contains("current") && outputs[5].1.contains("dlv_0001"));
}

#[test]
fn error_messages_name_the_problem_and_never_a_signature() {
    let ts = NOW.to_string();
    let signed = sign(SECRET, &ts, BODY);
    let expected_tag = {
        let (verifier, headers) = (verifier_at(NOW), headers(&signed));
        let verified = verifier.verify(&headers, BODY).expect("verifies");
        <[u8; 32]>::try_from(verified.tag().expect("a MAC").as_bytes()).expect("32 bytes")
    };

    // A mismatch: the carried signature is wrong; the message shows neither it nor the right one.
    let wrong = sign(SECRET, &ts, b"another body");
    let error = verifier_at(NOW)
        .verify(&headers(&wrong), BODY)
        .expect_err("mismatch");
    assert_eq!(error.kind().as_str(), "signature_mismatch");
    let message = format!("{error} {error:?}");
    assert_redacted("mismatch", &message, SECRET, &expected_tag);
    assert!(
        !message.contains(&wrong.signature()["sha256=".len()..]),
        "{message}"
    );

    // Out of the window: the drift, its direction and the window.
    for (now, direction) in [(NOW + 301, "in the past"), (NOW - 301, "in the future")] {
        let error = verifier_at(now)
            .verify(&headers(&signed), BODY)
            .expect_err("out of the window");
        let message = error.to_string();
        assert!(message.contains(direction), "{message}");
        assert!(
            message.contains(&Duration::seconds(301).to_string()),
            "{message}"
        );
        assert!(
            message.contains(&Duration::seconds(300).to_string()),
            "{message}"
        );
        match error {
            VerifyError::TimestampOutOfTolerance { drift, tolerance } => {
                assert_eq!(drift, Duration::seconds(now - NOW));
                assert_eq!(tolerance, Duration::seconds(300));
            }
            other => panic!("expected TimestampOutOfTolerance, got {other:?}"),
        }
        assert_redacted("stale", &format!("{error:?}"), SECRET, &expected_tag);
    }

    // Malformed: the header is named.
    let mut malformed = headers(&signed);
    set(&mut malformed, "x-agent-signature", "sha256=zz");
    let error = verifier_at(NOW)
        .verify(&malformed, BODY)
        .expect_err("malformed");
    assert!(error.to_string().contains("x-agent-signature"), "{error}");
    let mut malformed = headers(&signed);
    set(&mut malformed, "x-agent-timestamp", "yesterday");
    let error = verifier_at(NOW)
        .verify(&malformed, BODY)
        .expect_err("malformed");
    assert!(error.to_string().contains("x-agent-timestamp"), "{error}");
}

// ---------------------------------------------------------------------------------------------
// Order of the checks

#[test]
fn cheap_checks_come_before_the_hmac() {
    let ts = NOW.to_string();
    let wrong = sign("whsec_not-ours", &ts, BODY);
    let stale_and_wrong = headers(&wrong);

    // A stale timestamp with a wrong signature is reported as stale...
    let verifier = verifier_at(NOW + 301);
    assert_eq!(
        kind(verifier.verify(&stale_and_wrong, BODY)),
        "timestamp_out_of_tolerance"
    );
    // ...and that decision needs no body at all: the body is never hashed for it.
    assert_eq!(
        kind(verifier.precheck(&stale_and_wrong)),
        "timestamp_out_of_tolerance"
    );

    // Malformed headers are reported before the window.
    let mut malformed_and_stale = stale_and_wrong.clone();
    set(&mut malformed_and_stale, "x-agent-signature", "sha256=");
    assert_eq!(
        kind(verifier.verify(&malformed_and_stale, BODY)),
        "malformed_signature"
    );
    let mut bad_time = stale_and_wrong.clone();
    set(&mut bad_time, "x-agent-timestamp", "soon");
    assert_eq!(
        kind(verifier.verify(&bad_time, BODY)),
        "malformed_timestamp"
    );

    // Inside the window, the same wrong signature is a mismatch.
    assert_eq!(
        kind(verifier_at(NOW).verify(&stale_and_wrong, BODY)),
        "signature_mismatch"
    );
}

#[test]
fn precheck_then_the_body_matches_verify() {
    let verifier = verifier_at(NOW);
    let headers = request(SECRET, &NOW.to_string());
    let precheck = verifier.precheck(&headers).expect("prechecks");
    assert_eq!(
        precheck.timestamp().map(|at| at.unix_timestamp()),
        Some(NOW)
    );
    assert_eq!(
        precheck.delivery_id().map(|id| id.as_str()),
        Some("dlv_0001")
    );
    let body = |bytes: &[u8]| {
        let mut stream = BodyVerifier::new(&verifier, precheck.clone());
        stream.update(bytes);
        stream.finish()
    };
    let verified = body(BODY).expect("verifies");
    assert_eq!(verified.secret_label(), "current");
    assert_eq!(kind(body(b"tampered")), "signature_mismatch");
}
