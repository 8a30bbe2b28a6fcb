//! Every signing method, proven: the providers' published vectors exactly as published, a
//! Stripe delivery built by hand from its definition, the Standard Webhooks peers (`svix`,
//! `standardwebhooks`) in both directions, Ed25519 `v1a`, and for each method the properties the
//! core promises (rotation labels, tampering, the window, never failing open, redaction).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use hookverify::{
    BodyVerifier, ConfigError, HeaderNames, Malformed, ManualClock, Method, Signer, Verified,
    Verifier, VerifyError,
};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use sha2::Sha256;

const NOW: i64 = 1_764_000_000;
const BODY: &[u8] = br#"{"id":"evt_01","type":"thread.completed"}"#;
const ID: &str = "dlv_0001";

fn at(unix: i64) -> ManualClock {
    ManualClock::from_unix(unix).expect("in range")
}

/// A verifier for `method` with the labelled secrets, its clock at `now`.
fn verifier(method: Method, secrets: &[(&str, &str)], now: i64) -> Verifier {
    secrets
        .iter()
        .fold(
            Verifier::builder().method(method),
            |builder, (label, value)| builder.secret(*label, *value),
        )
        .clock(at(now))
        .build()
        .expect("valid configuration")
}

fn signer(method: Method, secret: &str) -> Signer {
    Signer::for_method(method, secret).expect("a secret the method reads")
}

fn map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    map
}

fn kind<T>(result: Result<T, VerifyError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(error) => error.kind().as_str(),
    }
}

fn label(result: Result<Verified, VerifyError>) -> String {
    match result {
        Ok(verified) => verified.secret_label().to_owned(),
        Err(error) => format!("rejected: {error}"),
    }
}

/// `whsec_` and the base64 of `key`.
fn whsec(key: &[u8]) -> String {
    format!("whsec_{}", STANDARD.encode(key))
}

/// An Ed25519 private key for the signer: `whsk_` and the base64 of a 32-byte seed.
fn whsk(seed: u8) -> String {
    format!("whsk_{}", STANDARD.encode([seed; 32]))
}

fn unix(verified: &Verified) -> Option<i64> {
    verified.timestamp().map(|at| at.unix_timestamp())
}

// ---------------------------------------------------------------------------------------------
// Published vectors, exactly as published

struct Published {
    secret: &'static str,
    id: &'static str,
    timestamp: &'static str,
    body: &'static [u8],
    signature: &'static str,
}

const STANDARD_WEBHOOKS_VECTORS: [Published; 2] = [
    Published {
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp: "1614265330",
        body: br#"{"test": 2432232314}"#,
        signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    },
    Published {
        secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        id: "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        timestamp: "1649367553",
        body: br#"{"email":"test@example.com","username":"test_user"}"#,
        signature: "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
    },
];

#[test]
fn standard_webhooks_published_vectors_verify_and_are_reproduced() {
    for vector in &STANDARD_WEBHOOKS_VECTORS {
        let now: i64 = vector.timestamp.parse().expect("unix seconds");
        let verifier = verifier(
            Method::StandardWebhooks,
            &[("published", vector.secret)],
            now,
        );
        for prefix in ["webhook", "svix"] {
            let headers = map(&[
                (&format!("{prefix}-id"), vector.id),
                (&format!("{prefix}-timestamp"), vector.timestamp),
                (&format!("{prefix}-signature"), vector.signature),
            ]);
            let verified = verifier
                .verify(&headers, vector.body)
                .expect("the published vector verifies");
            assert_eq!(verified.secret_label(), "published", "{prefix}");
            assert_eq!(verified.method(), Method::StandardWebhooks);
            assert_eq!(verified.delivery_id(), Some(vector.id));
            assert_eq!(unix(&verified), Some(now));
        }
        let signed = signer(Method::StandardWebhooks, vector.secret).sign_with_timestamp(
            vector.id,
            vector.timestamp,
            vector.body,
        );
        assert_eq!(signed.signature(), vector.signature);
    }
}

/// The published counter-example: the first vector's signature with its last byte changed.
#[test]
fn standard_webhooks_published_wrong_signature_fails() {
    let vector = &STANDARD_WEBHOOKS_VECTORS[0];
    let verifier = verifier(
        Method::StandardWebhooks,
        &[("published", vector.secret)],
        1_614_265_330,
    );
    let headers = map(&[
        ("webhook-id", vector.id),
        ("webhook-timestamp", vector.timestamp),
        (
            "webhook-signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
        ),
    ]);
    assert_eq!(
        verifier.verify(&headers, vector.body).err(),
        Some(VerifyError::SignatureMismatch)
    );
}

#[test]
fn github_published_vector_verifies_and_is_reproduced() {
    let secret = "It's a Secret to Everybody";
    let body = b"Hello, World!";
    let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let id = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let headers = map(&[
        ("x-hub-signature-256", signature),
        ("x-github-delivery", id),
    ]);
    // No timestamp is signed: the clock plays no part.
    for now in [NOW, 0, NOW + 10 * 365 * 86_400] {
        let verified = verifier(Method::GitHub, &[("published", secret)], now)
            .verify(&headers, body)
            .expect("the published vector verifies");
        assert_eq!(verified.secret_label(), "published");
        assert_eq!(verified.method(), Method::GitHub);
        assert_eq!(verified.delivery_id(), Some(id));
        assert_eq!(verified.timestamp(), None);
    }
    let signed = signer(Method::GitHub, secret).sign_with_timestamp(id, "", body);
    assert_eq!(signed.signature(), signature);
}

#[test]
fn slack_published_vector_verifies_and_is_reproduced() {
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let timestamp = "1531420618";
    let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    let headers = map(&[
        ("x-slack-signature", signature),
        ("x-slack-request-timestamp", timestamp),
    ]);
    let verified = verifier(Method::Slack, &[("published", secret)], 1_531_420_618)
        .verify(&headers, body)
        .expect("the published vector verifies");
    assert_eq!(verified.secret_label(), "published");
    assert_eq!(verified.method(), Method::Slack);
    assert_eq!(verified.delivery_id(), None);
    assert_eq!(unix(&verified), Some(1_531_420_618));
    let signed = signer(Method::Slack, secret).sign_with_timestamp("", timestamp, body);
    assert_eq!(signed.signature(), signature);
    // The vector is a real one: it is stale today.
    assert_eq!(
        kind(verifier(Method::Slack, &[("published", secret)], NOW).verify(&headers, body)),
        "timestamp_out_of_tolerance"
    );
}

// ---------------------------------------------------------------------------------------------
// Stripe, built by hand from its definition

const STRIPE_SECRET: &str = "whsec_stripe-test-0123456789abcdef";

/// The hex HMAC-SHA256 of `{t}.{body}` keyed with the whole `whsec_…` string, computed here
/// with the `hmac` and `sha2` crates, not through this crate.
fn stripe_v1(secret: &str, t: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn stripe(header: &str, now: i64) -> Result<Verified, VerifyError> {
    verifier(Method::Stripe, &[("stripe", STRIPE_SECRET)], now)
        .verify(&map(&[("stripe-signature", header)]), BODY)
}

#[test]
fn stripe_signature_built_by_hand_verifies_and_is_reproduced() {
    let t = NOW.to_string();
    let good = stripe_v1(STRIPE_SECRET, &t, BODY);
    let verified = stripe(&format!("t={t},v1={good}"), NOW).expect("the hand-built header");
    assert_eq!(verified.secret_label(), "stripe");
    assert_eq!(verified.method(), Method::Stripe);
    assert_eq!(verified.delivery_id(), None);
    assert_eq!(unix(&verified), Some(NOW));
    let signed = signer(Method::Stripe, STRIPE_SECRET).sign_with_timestamp(ID, &t, BODY);
    assert_eq!(signed.signature(), format!("t={t},v1={good}"));
    // The key is the whole string: the base64 after `whsec_` decoded is another key.
    let decoded = STANDARD
        .decode(STRIPE_SECRET.trim_start_matches("whsec_"))
        .unwrap_or_default();
    let mut other = Hmac::<Sha256>::new_from_slice(&decoded).expect("any key length");
    other.update(format!("{t}.").as_bytes());
    other.update(BODY);
    let other = hex::encode(other.finalize().into_bytes());
    assert_eq!(
        kind(stripe(&format!("t={t},v1={other}"), NOW)),
        "signature_mismatch"
    );
}

#[test]
fn stripe_header_forms() {
    let t = NOW.to_string();
    let good = stripe_v1(STRIPE_SECRET, &t, BODY);
    let bad = stripe_v1("whsec_another", &t, BODY);
    let accepted = [
        format!("t={t},v1={good}"),
        format!("v1={good},t={t}"),
        // Several `v1` (Stripe sends one per secret during a rotation): any may match.
        format!("t={t},v1={bad},v1={good}"),
        format!("t={t},v1={good},v1={bad}"),
        // `v0` is ignored, whatever it holds.
        format!("t={t},v1={good},v0={bad}"),
        format!("t={t},v0=not-even-hex,v1={good}"),
        // Unknown keys are ignored.
        format!("t={t},scheme=v9,v1={good},foo=bar"),
        format!("t={t},v1={}", good.to_uppercase()),
    ];
    for header in &accepted {
        assert_eq!(label(stripe(header, NOW)), "stripe", "{header}");
    }

    let header = || HeaderName::from_static("stripe-signature");
    let bad_list = |reason| VerifyError::MalformedSignature {
        header: header(),
        reason,
    };
    let bad_time = |reason| VerifyError::MalformedTimestamp {
        header: header(),
        reason,
    };
    let rejected = [
        // A missing `t` is malformed, not a mismatch.
        (format!("v1={good}"), bad_list(Malformed::NoTimestamp)),
        (format!("T={t},v1={good}"), bad_list(Malformed::NoTimestamp)),
        (
            format!("t={t},t={t},v1={good}"),
            bad_list(Malformed::NoTimestamp),
        ),
        (format!("t=,v1={good}"), bad_time(Malformed::Empty)),
        (
            format!("t=yesterday,v1={good}"),
            bad_time(Malformed::NotATimestamp),
        ),
        // A `v0` carrying the true MAC counts for nothing.
        (format!("t={t},v0={good}"), bad_list(Malformed::NoSignature)),
        (format!("t={t}"), bad_list(Malformed::NoSignature)),
        (
            format!("t={t},v1={}", &good[..62]),
            bad_list(Malformed::DigestLength { digits: 64 }),
        ),
        (
            format!("t={t},v1={}zz", &good[..62]),
            bad_list(Malformed::NotHex),
        ),
        (format!("t={t},v1={bad}"), VerifyError::SignatureMismatch),
        // The signed `t` is the one carried: another `t` with the same MAC does not verify.
        (
            format!("t={},v1={good}", NOW + 1),
            VerifyError::SignatureMismatch,
        ),
    ];
    for (header, expected) in rejected {
        assert_eq!(stripe(&header, NOW).err(), Some(expected), "{header}");
    }

    let header = format!("t={t},v1={good}");
    assert_eq!(kind(stripe(&header, NOW + 300)), "ok");
    assert_eq!(
        kind(stripe(&header, NOW + 301)),
        "timestamp_out_of_tolerance"
    );
    assert_eq!(
        kind(stripe(&header, NOW - 301)),
        "timestamp_out_of_tolerance"
    );
}

// ---------------------------------------------------------------------------------------------
// The peers, both directions

fn svix_names() -> HeaderNames {
    HeaderNames {
        signature: HeaderName::from_static("svix-signature"),
        timestamp: Some(HeaderName::from_static("svix-timestamp")),
        delivery_id: Some(HeaderName::from_static("svix-id")),
    }
}

fn peer_headers(prefix: &str, id: &str, timestamp: i64, signature: &str) -> HeaderMap {
    map(&[
        (&format!("{prefix}-id"), id),
        (&format!("{prefix}-timestamp"), &timestamp.to_string()),
        (&format!("{prefix}-signature"), signature),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// What `standardwebhooks` and `svix` sign, our verifier accepts (under both spellings of
    /// the header names), and rejects once the body is changed.
    #[test]
    fn peers_signatures_verify_here(
        key in prop::collection::vec(any::<u8>(), 1..64),
        id in "[A-Za-z0-9_]{1,40}",
        timestamp in 0i64..=99_999_999_999,
        body in any::<String>(),
    ) {
        let secret = whsec(&key);
        let ours = verifier(Method::StandardWebhooks, &[("peer", &secret)], timestamp);
        let by_standardwebhooks = standardwebhooks::Webhook::new(&secret)
            .expect("whsec_ secret")
            .sign(&id, timestamp, body.as_bytes())
            .expect("a UTF-8 body");
        let by_svix = svix::webhooks::Webhook::new(&secret)
            .expect("whsec_ secret")
            .sign(&id, timestamp, body.as_bytes())
            .expect("a UTF-8 body");
        let tampered = format!("{body}.");
        for (prefix, signature) in [
            ("webhook", &by_standardwebhooks),
            ("webhook", &by_svix),
            ("svix", &by_svix),
        ] {
            let headers = peer_headers(prefix, &id, timestamp, signature);
            let verified = ours.verify(&headers, body.as_bytes());
            prop_assert_eq!(label(verified), "peer", "{} {}", prefix, signature);
            prop_assert_eq!(
                ours.verify(&headers, tampered.as_bytes()).err(),
                Some(VerifyError::SignatureMismatch)
            );
        }
    }

    /// What our `Signer` signs, the peers' own verify functions accept (and reject once the
    /// body is changed). `standardwebhooks` reads the wall clock, so these deliveries are
    /// signed at the system clock's time, the signer's default.
    #[test]
    fn our_signatures_verify_with_the_peers(
        key in prop::collection::vec(any::<u8>(), 1..64),
        id in "[A-Za-z0-9_]{1,40}",
        body in any::<String>(),
    ) {
        let secret = whsec(&key);
        let ours = signer(Method::StandardWebhooks, &secret);
        let signed = ours.sign(&id, body.as_bytes());
        let headers = signed.header_map().expect("header values");
        let tampered = format!("{body}.");

        let standardwebhooks = standardwebhooks::Webhook::new(&secret).expect("whsec_ secret");
        prop_assert!(standardwebhooks.verify(body.as_bytes(), &headers).is_ok());
        prop_assert!(standardwebhooks.verify(tampered.as_bytes(), &headers).is_err());

        let svix = svix::webhooks::Webhook::new(&secret).expect("whsec_ secret");
        prop_assert!(svix.verify(body.as_bytes(), &headers).is_ok());
        prop_assert!(svix.verify(tampered.as_bytes(), &headers).is_err());

        let under_svix_names = ours
            .header_names(svix_names())
            .sign_with_timestamp(&id, signed.timestamp(), body.as_bytes());
        let headers = under_svix_names.header_map().expect("header values");
        prop_assert!(headers.contains_key("svix-signature"));
        prop_assert!(svix.verify_ignoring_timestamp(body.as_bytes(), &headers).is_ok());
        prop_assert!(svix.verify_ignoring_timestamp(tampered.as_bytes(), &headers).is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// Ed25519 `v1a`

fn ed25519_verifier(secrets: &[(&str, &str)]) -> Verifier {
    verifier(Method::StandardWebhooks, secrets, NOW)
}

fn public_key(signer: &Signer) -> String {
    signer.public_key().expect("an Ed25519 signer")
}

/// The signature header a signer produces for `BODY` at `NOW` under the id `ID`.
fn signature_of(signer: &Signer, body: &[u8]) -> String {
    signer
        .sign_with_timestamp(ID, &NOW.to_string(), body)
        .signature()
        .to_owned()
}

fn standard_webhooks_request(signature: &str) -> HeaderMap {
    map(&[
        ("webhook-id", ID),
        ("webhook-timestamp", &NOW.to_string()),
        ("webhook-signature", signature),
    ])
}

#[test]
fn ed25519_signer_verifies_with_its_public_key() {
    let ed = signer(Method::StandardWebhooks, &whsk(7));
    let key = public_key(&ed);
    assert!(key.starts_with("whpk_"), "{key}");
    assert_eq!(ed.public_key(), Some(key.clone()), "stable");
    let signature = signature_of(&ed, BODY);
    assert!(signature.starts_with("v1a,"), "{signature}");
    let verifier = ed25519_verifier(&[("ed25519", &key)]);
    let verified = verifier
        .verify(&standard_webhooks_request(&signature), BODY)
        .expect("a v1a signature by the key");
    assert_eq!(verified.secret_label(), "ed25519");
    assert_eq!(verified.delivery_id(), Some(ID));
    assert_eq!(unix(&verified), Some(NOW));
    assert_eq!(verified.tag().map(|tag| tag.as_bytes().len()), Some(64));

    // Signed by another key: no match.
    let other = signature_of(&signer(Method::StandardWebhooks, &whsk(8)), BODY);
    assert_eq!(
        kind(verifier.verify(&standard_webhooks_request(&other), BODY)),
        "signature_mismatch"
    );
    // A tampered body, id or timestamp: no match.
    assert_eq!(
        kind(verifier.verify(&standard_webhooks_request(&signature), b"{}")),
        "signature_mismatch"
    );
    let mut moved = standard_webhooks_request(&signature);
    moved.insert("webhook-id", HeaderValue::from_static("dlv_0002"));
    assert_eq!(kind(verifier.verify(&moved, BODY)), "signature_mismatch");
    let mut moved = standard_webhooks_request(&signature);
    moved.insert(
        "webhook-timestamp",
        HeaderValue::from_str(&(NOW + 1).to_string()).expect("digits"),
    );
    assert_eq!(kind(verifier.verify(&moved, BODY)), "signature_mismatch");
}

/// Labelled secrets, as a verifier is configured with them.
type Secrets<'a> = &'a [(&'a str, &'a str)];

#[test]
fn v1_and_v1a_in_one_header_with_mixed_secrets() {
    let hmac_secret = whsec(b"mixed-header-hmac-key");
    let ed = signer(Method::StandardWebhooks, &whsk(7));
    let v1 = signature_of(&signer(Method::StandardWebhooks, &hmac_secret), BODY);
    let v1a = signature_of(&ed, BODY);
    let bad_v1 = signature_of(&signer(Method::StandardWebhooks, &whsec(b"other")), BODY);
    let bad_v1a = signature_of(&signer(Method::StandardWebhooks, &whsk(9)), BODY);
    let key = public_key(&ed);

    let both = format!("{v1a} {v1}");
    let cases: [(Secrets<'_>, &str, &str); 6] = [
        (&[("hmac", &hmac_secret), ("ed25519", &key)], &both, "hmac"),
        (
            &[("ed25519", &key), ("hmac", &hmac_secret)],
            &both,
            "ed25519",
        ),
        (&[("hmac", &hmac_secret)], &both, "hmac"),
        (&[("ed25519", &key)], &both, "ed25519"),
        (
            &[("hmac", &hmac_secret), ("ed25519", &key)],
            &format!("{bad_v1} {v1a}"),
            "ed25519",
        ),
        (
            &[("hmac", &hmac_secret), ("ed25519", &key)],
            &format!("{bad_v1a} {v1}"),
            "hmac",
        ),
    ];
    for (secrets, header, expected) in cases {
        let got = label(ed25519_verifier(secrets).verify(&standard_webhooks_request(header), BODY));
        assert_eq!(got, expected, "{header}");
    }
    let neither = format!("{bad_v1a} {bad_v1}");
    assert_eq!(
        kind(
            ed25519_verifier(&[("hmac", &hmac_secret), ("ed25519", &key)])
                .verify(&standard_webhooks_request(&neither), BODY)
        ),
        "signature_mismatch"
    );
}

#[test]
fn unknown_versions_are_skipped_but_never_accepted_alone() {
    let ed = signer(Method::StandardWebhooks, &whsk(7));
    let hmac_secret = whsec(b"unknown-version-key");
    let verifier = ed25519_verifier(&[("hmac", &hmac_secret), ("ed25519", &public_key(&ed))]);
    let v1 = signature_of(&signer(Method::StandardWebhooks, &hmac_secret), BODY);
    let v1a = signature_of(&ed, BODY);
    let v2 = format!("v2,{}", &v1[3..]);
    for header in [
        format!("{v2} {v1}"),
        format!("{v1} v2,whatever"),
        format!("v3,@@@ {v1a}"),
    ] {
        assert_eq!(
            kind(verifier.verify(&standard_webhooks_request(&header), BODY)),
            "ok",
            "{header}"
        );
    }
    // An unknown version carrying the true MAC is not a signature.
    assert_eq!(
        verifier.verify(&standard_webhooks_request(&v2), BODY).err(),
        Some(VerifyError::MalformedSignature {
            header: HeaderName::from_static("webhook-signature"),
            reason: Malformed::NoSignature,
        })
    );
    // A known version that does not decode is malformed.
    let truncated = &v1a[..v1a.len() - 4];
    assert_eq!(
        kind(verifier.verify(&standard_webhooks_request(truncated), BODY)),
        "malformed_signature"
    );
    let v1_as_v1a = format!("v1a,{}", &v1[3..]);
    assert_eq!(
        verifier
            .verify(&standard_webhooks_request(&v1_as_v1a), BODY)
            .err(),
        Some(VerifyError::MalformedSignature {
            header: HeaderName::from_static("webhook-signature"),
            reason: Malformed::SignatureLength { bytes: 64 },
        })
    );
}

/// The verdict of [`BodyVerifier`] fed `body` in chunks of `size`, against `verify`.
fn streamed(verifier: &Verifier, headers: &HeaderMap, body: &[u8], size: usize) -> String {
    let precheck = match verifier.precheck(headers) {
        Ok(precheck) => precheck,
        Err(error) => return format!("rejected: {error}"),
    };
    let mut stream = BodyVerifier::new(verifier, precheck);
    for chunk in body.chunks(size.max(1)) {
        stream.update(chunk);
    }
    label(stream.finish())
}

#[test]
fn streaming_agrees_with_verify_for_ed25519_and_mixed_headers() {
    let ed = signer(Method::StandardWebhooks, &whsk(7));
    let hmac_secret = whsec(b"streaming-hmac-key");
    let body: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    let v1 = signature_of(&signer(Method::StandardWebhooks, &hmac_secret), &body);
    let v1a = signature_of(&ed, &body);
    let other = signature_of(&signer(Method::StandardWebhooks, &whsk(9)), &body);
    let verifiers = [
        ed25519_verifier(&[("ed25519", &public_key(&ed))]),
        ed25519_verifier(&[("hmac", &hmac_secret), ("ed25519", &public_key(&ed))]),
        ed25519_verifier(&[("ed25519", &public_key(&ed)), ("hmac", &hmac_secret)]),
    ];
    let mut tampered = body.clone();
    tampered[1500] ^= 1;
    let headers = [
        v1a.clone(),
        format!("{v1a} {v1}"),
        format!("{other} {v1a}"),
        other.clone(),
    ];
    for verifier in &verifiers {
        for header in &headers {
            let request = standard_webhooks_request(header);
            for body in [&body[..], &tampered[..], &[][..]] {
                let whole = label(verifier.verify(&request, body));
                for size in [1, 7, 64, 1000, body.len()] {
                    assert_eq!(
                        streamed(verifier, &request, body, size),
                        whole,
                        "{header}, {} bytes in chunks of {size}",
                        body.len()
                    );
                }
            }
        }
    }
    // And the verdicts are not all the same.
    let request = standard_webhooks_request(&v1a);
    assert_eq!(streamed(&verifiers[0], &request, &body, 7), "ed25519");
    assert!(streamed(&verifiers[0], &request, &tampered, 7).starts_with("rejected"));
}

// ---------------------------------------------------------------------------------------------
// Every method

/// A method's credentials: the two secrets of a rotation as the verifier takes them, the same
/// as the signer takes them, and one that matches neither.
struct Credentials {
    current: String,
    old: String,
    signer_current: String,
    signer_old: String,
    wrong: String,
}

fn credentials(method: Method) -> Credentials {
    let same = |current: &str, old: &str, wrong: &str| Credentials {
        current: current.into(),
        old: old.into(),
        signer_current: current.into(),
        signer_old: old.into(),
        wrong: wrong.into(),
    };
    match method {
        Method::Bearer => same("tok_current_0123", "tok_old_4567", "tok_wrong_89ab"),
        Method::BasicAuth => same("hooks:current-pass", "hooks:old-pass", "hooks:wrong-pass"),
        Method::None => same("", "", ""),
        Method::StandardWebhooks => same(
            &whsec(b"every-method-current-key"),
            &whsec(b"every-method-old-key"),
            &whsec(b"every-method-wrong-key"),
        ),
        _ => same("whsec_current-0123", "whsec_old-4567", "whsec_wrong-89ab"),
    }
}

fn rotating(method: Method, now: i64) -> Verifier {
    let credentials = credentials(method);
    if method == Method::None {
        return verifier(method, &[], now);
    }
    verifier(
        method,
        &[("current", &credentials.current), ("old", &credentials.old)],
        now,
    )
}

fn signed(method: Method, secret: &str, body: &[u8]) -> HeaderMap {
    signer(method, secret)
        .sign_with_timestamp(ID, &NOW.to_string(), body)
        .header_map()
        .expect("header values")
}

#[test]
fn every_method_verifies_its_signers_deliveries_and_reports_the_result() {
    for method in Method::ALL {
        let credentials = credentials(method);
        let verifier = rotating(method, NOW);
        let headers = signed(method, &credentials.signer_current, BODY);
        let verified = verifier
            .verify(&headers, BODY)
            .unwrap_or_else(|error| panic!("{method}: {error}"));
        let expected = if method == Method::None {
            "unsigned"
        } else {
            "current"
        };
        assert_eq!(verified.secret_label(), expected, "{method}");
        assert_eq!(verified.method(), method);
        assert_eq!(
            unix(&verified),
            method.has_timestamp().then_some(NOW),
            "{method}"
        );
        let sends_id = method.default_header_names().delivery_id.is_some();
        assert_eq!(verified.delivery_id(), sends_id.then_some(ID), "{method}");
        assert_eq!(verified.tag().is_some(), method.signs_body(), "{method}");
        assert_eq!(verifier.method(), method);

        // The second secret of a rotation matches with its own label.
        if method != Method::None {
            let by_old = signed(method, &credentials.signer_old, BODY);
            assert_eq!(label(verifier.verify(&by_old, BODY)), "old", "{method}");
        }

        // Streamed, the same verdict.
        assert_eq!(streamed(&verifier, &headers, BODY, 5), expected, "{method}");
    }
}

#[test]
fn every_method_rejects_forgeries() {
    let tampered = br#"{"id":"evt_01","type":"thread.completed!"}"#;
    for method in Method::ALL {
        let credentials = credentials(method);
        let verifier = rotating(method, NOW);
        let headers = signed(method, &credentials.signer_current, BODY);
        match method {
            Method::None => {
                // Nothing is checked: that is what `none` means.
                assert_eq!(kind(verifier.verify(&headers, tampered)), "ok");
            }
            Method::Bearer | Method::BasicAuth => {
                let wrong = signed(method, &credentials.wrong, BODY);
                assert_eq!(
                    verifier.verify(&wrong, BODY).err(),
                    Some(VerifyError::SignatureMismatch),
                    "{method}"
                );
                // The body is not signed: the credential alone decides.
                assert_eq!(kind(verifier.verify(&headers, tampered)), "ok", "{method}");
            }
            _ => {
                assert_eq!(
                    verifier.verify(&headers, tampered).err(),
                    Some(VerifyError::SignatureMismatch),
                    "{method}"
                );
                let wrong = signed(method, &credentials.wrong, BODY);
                assert_eq!(
                    verifier.verify(&wrong, BODY).err(),
                    Some(VerifyError::SignatureMismatch),
                    "{method}"
                );
            }
        }
    }
}

#[test]
fn every_method_with_a_timestamp_keeps_the_window() {
    for method in Method::ALL {
        let credentials = credentials(method);
        let headers = signed(method, &credentials.signer_current, BODY);
        if method.has_timestamp() {
            for now in [NOW + 300, NOW - 300] {
                assert_eq!(kind(rotating(method, now).verify(&headers, BODY)), "ok");
            }
            for now in [NOW + 301, NOW - 301] {
                let result = rotating(method, now).verify(&headers, BODY);
                assert_eq!(kind(result), "timestamp_out_of_tolerance", "{method}");
                // Checked before the body: the precheck says so already.
                let precheck = rotating(method, now).precheck(&headers);
                assert_eq!(kind(precheck), "timestamp_out_of_tolerance", "{method}");
            }
        } else {
            // No timestamp, no window: the clock plays no part.
            for now in [NOW + 86_400 * 365, 0] {
                assert_eq!(
                    kind(rotating(method, now).verify(&headers, BODY)),
                    "ok",
                    "{method}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// `bearer` and `basic_auth`

fn authorization(method: Method, secret: &str, value: &str) -> Result<Verified, VerifyError> {
    verifier(method, &[("token", secret)], NOW).verify(
        &map(&[("authorization", value), ("x-agent-delivery-id", ID)]),
        BODY,
    )
}

fn malformed(reason: Malformed) -> Result<String, VerifyError> {
    Err(VerifyError::MalformedSignature {
        header: AUTHORIZATION,
        reason,
    })
}

#[test]
fn bearer_credentials() {
    let token = "tok_0123456789";
    let ok = || Ok("token".to_owned());
    let cases = [
        (format!("Bearer {token}"), ok()),
        (format!("bearer {token}"), ok()),
        (format!("BEARER {token}"), ok()),
        (format!("Bearer   {token}  "), ok()),
        (
            format!("Token {token}"),
            malformed(Malformed::WrongAuthScheme { expected: "Bearer" }),
        ),
        (
            format!("Basic {token}"),
            malformed(Malformed::WrongAuthScheme { expected: "Bearer" }),
        ),
        (
            format!("Bearer{token}"),
            malformed(Malformed::WrongAuthScheme { expected: "Bearer" }),
        ),
        (
            "Bear".to_owned(),
            malformed(Malformed::WrongAuthScheme { expected: "Bearer" }),
        ),
        ("Bearer ".to_owned(), malformed(Malformed::Empty)),
        ("Bearer    ".to_owned(), malformed(Malformed::Empty)),
        (
            format!("Bearer {token}0"),
            Err(VerifyError::SignatureMismatch),
        ),
        (
            format!("Bearer {}", &token[..token.len() - 1]),
            Err(VerifyError::SignatureMismatch),
        ),
        (
            format!("Bearer {}", token.to_uppercase()),
            Err(VerifyError::SignatureMismatch),
        ),
    ];
    for (value, expected) in cases {
        let got = authorization(Method::Bearer, token, &value)
            .map(|verified| verified.secret_label().to_owned());
        assert_eq!(got, expected, "{value:?}");
    }
}

#[test]
fn basic_credentials() {
    // Sixteen bytes: its base64 ends in padding.
    let secret = "hooks:p4ss:w0rd!";
    let basic = |pair: &str| format!("Basic {}", STANDARD.encode(pair));
    let ok = || Ok("token".to_owned());
    let cases = [
        (basic(secret), ok()),
        (format!("basic {}", STANDARD.encode(secret)), ok()),
        (
            format!("Bearer {}", STANDARD.encode(secret)),
            malformed(Malformed::WrongAuthScheme { expected: "Basic" }),
        ),
        (
            format!("Digest {}", STANDARD.encode(secret)),
            malformed(Malformed::WrongAuthScheme { expected: "Basic" }),
        ),
        ("Basic ".to_owned(), malformed(Malformed::Empty)),
        (
            basic("hookspassword"),
            malformed(Malformed::NotUserPassword),
        ),
        (
            "Basic !!!not-base64!!!".to_owned(),
            malformed(Malformed::NotBase64),
        ),
        (
            format!("Basic {}", STANDARD.encode(secret).trim_end_matches('=')),
            malformed(Malformed::NotBase64),
        ),
        (
            basic("hooks:p4ss:w0rd!x"),
            Err(VerifyError::SignatureMismatch),
        ),
        (basic("hooks:p4ss"), Err(VerifyError::SignatureMismatch)),
        (
            basic("HOOKS:p4ss:w0rd!"),
            Err(VerifyError::SignatureMismatch),
        ),
        (basic(":"), Err(VerifyError::SignatureMismatch)),
    ];
    for (value, expected) in cases {
        let got = authorization(Method::BasicAuth, secret, &value)
            .map(|verified| verified.secret_label().to_owned());
        assert_eq!(got, expected, "{value:?}");
    }
}

/// For the methods that sign no body, the credential is checked before the body is read.
#[test]
fn token_credentials_are_checked_in_precheck() {
    for method in [Method::Bearer, Method::BasicAuth] {
        let credentials = credentials(method);
        let verifier = rotating(method, NOW);
        let wrong = signed(method, &credentials.wrong, BODY);
        assert_eq!(
            verifier.precheck(&wrong).err(),
            Some(VerifyError::SignatureMismatch),
            "{method}"
        );
        let good = signed(method, &credentials.signer_old, BODY);
        let precheck = verifier.precheck(&good).expect("the right credential");
        // No body at all: the verdict is already in.
        let verified = BodyVerifier::new(&verifier, precheck)
            .finish()
            .expect("verified without a body");
        assert_eq!(verified.secret_label(), "old", "{method}");
    }
}

// ---------------------------------------------------------------------------------------------
// Never fail open

/// A timestamp header given to a method that has none in its own header (Stripe's is inside
/// the signature) is refused: the verifier would otherwise demand a header the provider never
/// sends, and refuse every genuine delivery.
#[test]
fn a_timestamp_header_a_method_does_not_have_is_a_configuration_error() {
    for method in [Method::Stripe, Method::GitHub, Method::Bearer] {
        let mut names = method.default_header_names();
        names.timestamp = Some(HeaderName::from_static("x-timestamp"));
        let secret = if method == Method::Bearer {
            "token"
        } else {
            "whsec_x"
        };
        let error = Verifier::builder()
            .method(method)
            .secret("current", secret)
            .header_names(names)
            .build()
            .expect_err("refused");
        assert!(
            matches!(
                error,
                hookverify::ConfigError::HeaderNotUsed {
                    header: "timestamp",
                    ..
                }
            ),
            "{method}: {error:?}"
        );
        assert!(error.to_string().contains(method.name()), "{error}");
    }
}

#[test]
fn a_signing_method_without_a_secret_is_a_configuration_error() {
    for method in Method::ALL {
        let built = Verifier::builder().method(method).clock(at(NOW)).build();
        if method == Method::None {
            assert!(built.is_ok());
            continue;
        }
        let error = built.expect_err("no secret");
        assert_eq!(error, ConfigError::NoSecrets { method }, "{method}");
        let message = error.to_string();
        assert!(message.contains("none"), "{method}: {message}");
        assert!(message.contains(method.name()), "{method}: {message}");

        let empty = Verifier::builder()
            .method(method)
            .secret("blank", "")
            .build()
            .expect_err("an empty secret");
        assert_eq!(
            empty,
            ConfigError::EmptySecret {
                label: "blank".into()
            },
            "{method}"
        );
        assert!(empty.to_string().contains("none"), "{method}: {empty}");
        // An empty secret beside a good one is still refused.
        let beside = Verifier::builder()
            .method(method)
            .secret("good", credentials(method).current)
            .secret("blank", "")
            .build();
        assert!(
            matches!(beside, Err(ConfigError::EmptySecret { .. })),
            "{method}"
        );
        assert!(
            matches!(
                Signer::for_method(method, ""),
                Err(ConfigError::EmptySecret { .. })
            ),
            "{method}"
        );
    }
    assert_eq!(
        Verifier::builder()
            .method(Method::None)
            .secret("stray", "whsec_abc")
            .build()
            .err(),
        Some(ConfigError::SecretWithoutSigning {
            label: "stray".into()
        })
    );
    assert!(matches!(
        Signer::for_method(Method::None, "whsec_abc"),
        Err(ConfigError::SecretWithoutSigning { .. })
    ));
}

#[test]
fn secrets_that_do_not_decode_are_refused() {
    let encoding = |method: Method, value: &str| {
        Verifier::builder()
            .method(method)
            .secret("bad", value)
            .build()
            .err()
    };
    let not_standard_webhooks = [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        "whsec_".to_owned(),
        "whsec_not base64!".to_owned(),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS".to_owned(),
        "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        "whpk_".to_owned(),
        format!("whpk_{}", STANDARD.encode([1u8; 31])),
        format!("whpk_{}", STANDARD.encode([1u8; 33])),
        // A private key is not what the receiving side holds.
        whsk(7),
    ];
    for value in &not_standard_webhooks {
        let error = encoding(Method::StandardWebhooks, value);
        assert!(
            matches!(
                &error,
                Some(ConfigError::SecretEncoding {
                    method: Method::StandardWebhooks,
                    label,
                    ..
                }) if label == "bad"
            ),
            "{value}: {error:?}"
        );
        let message = error.map(|error| error.to_string()).unwrap_or_default();
        assert!(message.contains("standard_webhooks"), "{message}");
        if value.len() > 12 {
            assert!(
                !message.contains(value.as_str()),
                "echoes the secret: {message}"
            );
        }
    }
    let error = encoding(Method::BasicAuth, "hookspassword");
    assert!(
        matches!(
            &error,
            Some(ConfigError::SecretEncoding {
                method: Method::BasicAuth,
                ..
            })
        ),
        "{error:?}"
    );
    let message = error.map(|error| error.to_string()).unwrap_or_default();
    assert!(
        message.contains("basic_auth") && message.contains("user:password"),
        "{message}"
    );

    // The signer reads secrets the same way.
    for value in [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_not base64!",
        "whsk_AAAA",
    ] {
        assert!(
            matches!(
                Signer::for_method(Method::StandardWebhooks, value),
                Err(ConfigError::SecretEncoding { .. })
            ),
            "{value}"
        );
    }
    // The seed is exactly 32 bytes: a longer one is not silently cut.
    for bytes in [31, 33, 64] {
        let value = format!("whsk_{}", STANDARD.encode(vec![7u8; bytes]));
        assert!(
            matches!(
                Signer::for_method(Method::StandardWebhooks, value),
                Err(ConfigError::SecretEncoding { .. })
            ),
            "a {bytes}-byte seed"
        );
    }
    assert!(matches!(
        Signer::for_method(Method::BasicAuth, "hookspassword"),
        Err(ConfigError::SecretEncoding { .. })
    ));
}

#[test]
fn none_accepts_a_request_without_any_credential() {
    let verifier = rotating(Method::None, NOW);
    let verified = verifier
        .verify(&HeaderMap::new(), BODY)
        .expect("nothing is checked");
    assert_eq!(verified.secret_label(), "unsigned");
    assert_eq!(verified.method(), Method::None);
    assert_eq!(verified.delivery_id(), None);
    assert_eq!(verified.timestamp(), None);
    assert!(verified.tag().is_none());
    let with_id = verifier
        .verify(&map(&[("x-agent-delivery-id", ID)]), b"")
        .expect("nothing is checked");
    assert_eq!(with_id.delivery_id(), Some(ID));
    // Whatever else the request carries is not read.
    let noise = map(&[
        ("authorization", "Bearer anything"),
        ("x-agent-signature", "junk"),
    ]);
    assert_eq!(label(verifier.verify(&noise, BODY)), "unsigned");
    // A malformed delivery id is still refused.
    let bad_id = map(&[("x-agent-delivery-id", "dlv 1")]);
    assert_eq!(
        kind(verifier.verify(&bad_id, BODY)),
        "malformed_delivery_id"
    );
}

// ---------------------------------------------------------------------------------------------
// Redaction

#[test]
fn debug_never_shows_a_secret_or_a_signature() {
    let mut methods: Vec<(Method, String, Option<String>)> = Method::ALL
        .into_iter()
        .map(|method| (method, credentials(method).current, None))
        .collect();
    let ed = signer(Method::StandardWebhooks, &whsk(7));
    methods.push((Method::StandardWebhooks, whsk(7), Some(public_key(&ed))));
    for (method, signing_secret, public) in methods {
        let receiving_secret = public.unwrap_or_else(|| signing_secret.clone());
        let signer = signer(method, &signing_secret).clock(at(NOW));
        let verifier = if method == Method::None {
            rotating(method, NOW)
        } else {
            verifier(method, &[("current", &receiving_secret)], NOW)
        };
        let signed = signer.sign(ID, BODY);
        let headers = signed.header_map().expect("header values");
        let verified = verifier.verify(&headers, BODY).expect("verifies");

        let mut forbidden: Vec<String> = vec![signing_secret.clone()];
        let key = ["whsec_", "whsk_"]
            .iter()
            .find_map(|prefix| signing_secret.strip_prefix(prefix));
        forbidden.extend(key.map(str::to_owned));
        if !signed.signature().is_empty() {
            forbidden.push(signed.signature().to_owned());
        }
        // Each part of the credential header that could carry the tag or the token.
        forbidden.extend(
            signed
                .signature()
                .split([',', ' ', '='])
                .filter(|part| part.len() >= 12)
                .map(str::to_owned),
        );
        if let Some(tag) = verified.tag() {
            forbidden.push(hex::encode(tag.as_bytes()));
            forbidden.push(STANDARD.encode(tag.as_bytes()));
        }
        forbidden.retain(|text| !text.is_empty());

        let outputs = [
            format!("{signer:?}"),
            format!("{signer:#?}"),
            format!("{verifier:?}"),
            format!("{verifier:#?}"),
            format!("{verified:?}"),
            format!("{verified:#?}"),
            format!("{signed:?}"),
            format!("{signed:#?}"),
            format!("{headers:?}"),
            format!("{:?}", verified.tag()),
        ];
        for output in &outputs {
            for text in &forbidden {
                assert!(
                    !output.contains(text.as_str()),
                    "{method}: {text:?} in {output}"
                );
            }
        }
    }
}
