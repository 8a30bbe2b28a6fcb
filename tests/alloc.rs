//! `Verifier::verify` does not touch the heap: every allocation in the process is counted by an
//! instrumenting global allocator while it runs.
//!
//! One test function only: the counters are process-wide, so another test running on a second
//! thread would be counted too.

use std::alloc::System;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hookverify::{HeaderNames, ManualClock, Method, Signer, Verifier};
use http::{HeaderMap, HeaderName, HeaderValue};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const NOW: i64 = 1_764_000_000;

#[test]
fn verify_does_not_allocate() {
    let body: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    let timestamp = NOW.to_string();
    let current = Signer::new("whsec_current").expect("non-empty secret");
    let old = Signer::new("whsec_old").expect("non-empty secret");
    let by_current = current
        .sign_with_timestamp("dlv_0001", &timestamp, &body)
        .header_map()
        .expect("valid header values");
    let by_old = old
        .sign_with_timestamp("dlv_0002", &timestamp, &body)
        .header_map()
        .expect("valid header values");
    let mut wrong: HeaderMap = by_current.clone();
    wrong.insert(
        "x-agent-signature",
        HeaderValue::from_str(&format!("sha256={}", "ab".repeat(32))).expect("header value"),
    );
    let stale_verifier = Verifier::builder()
        .secret("current", "whsec_current")
        .clock(ManualClock::from_unix(NOW + 301).expect("in range"))
        .build()
        .expect("valid configuration");
    let verifier = Verifier::builder()
        .secret("current", "whsec_current")
        .secret("old", "whsec_old")
        .clock(ManualClock::from_unix(NOW).expect("in range"))
        .build()
        .expect("valid configuration");

    let methods = method_cases(&body);

    // Each scenario must end the way it is named for, or the count proves nothing.
    let mut cases: Vec<(&str, Check<'_>)> = vec![
        (
            "success",
            Box::new(|| expect(verifier.verify(&by_current, &body), Ok("current"))),
        ),
        (
            "success with the second secret",
            Box::new(|| expect(verifier.verify(&by_old, &body), Ok("old"))),
        ),
        (
            "signature mismatch",
            Box::new(|| expect(verifier.verify(&wrong, &body), Err("signature_mismatch"))),
        ),
        (
            "stale timestamp",
            Box::new(|| {
                expect(
                    stale_verifier.verify(&by_current, &body),
                    Err("timestamp_out_of_tolerance"),
                )
            }),
        ),
    ];
    for case in &methods {
        cases.push((
            &case.name,
            Box::new(|| {
                expect(
                    case.verifier.verify(&case.headers, &case.body),
                    case.expected,
                )
            }),
        ));
    }
    let mut failures = Vec::new();
    for (name, check) in &cases {
        // Once to warm up (lazy statics, CPU feature detection), then counted.
        let _ = check();
        let region = Region::new(GLOBAL);
        let verdict = check();
        let change = region.change();
        if let Err(why) = verdict {
            failures.push(format!("{name}: {why}"));
        }
        if (
            change.allocations,
            change.reallocations,
            change.deallocations,
        ) != (0, 0, 0)
        {
            failures.push(format!(
                "{name}: {} allocations, {} reallocations, {} deallocations",
                change.allocations, change.reallocations, change.deallocations
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

type Check<'a> = Box<dyn Fn() -> Result<(), &'static str> + 'a>;

/// Whether a verification ended as expected: `Ok(label)` for a success with that secret,
/// `Err(kind)` for a rejection of that kind. Allocates nothing.
fn expect(
    result: Result<hookverify::Verified, hookverify::VerifyError>,
    expected: Result<&str, &str>,
) -> Result<(), &'static str> {
    match (result, expected) {
        (Ok(verified), Ok(label)) if verified.secret_label() == label => Ok(()),
        (Err(error), Err(kind)) if error.kind().as_str() == kind => Ok(()),
        (Ok(_), Ok(_)) => Err("verified with the wrong secret"),
        (Err(_), Err(_)) => Err("rejected for the wrong reason"),
        (Ok(_), Err(_)) => Err("verified, but a rejection was expected"),
        (Err(_), Ok(_)) => Err("rejected, but a success was expected"),
    }
}

/// One verification of one method, and how it must end.
struct MethodCase {
    name: String,
    verifier: Verifier,
    headers: HeaderMap,
    body: Vec<u8>,
    expected: Result<&'static str, &'static str>,
}

/// For every method: a success with the second secret of a rotation (so the first one is tried
/// and fails first), and a rejection (a tampered body, or for the methods that sign no body a
/// wrong credential). For Standard Webhooks also Ed25519 `v1a`, and Svix's header names.
fn method_cases(body: &[u8]) -> Vec<MethodCase> {
    let timestamp = NOW.to_string();
    let mut tampered = body.to_vec();
    tampered[100] ^= 1;
    let mut cases = Vec::new();
    for method in Method::ALL {
        let [current, old, wrong] = match method {
            Method::Bearer => ["tok_current", "tok_old", "tok_wrong"],
            Method::BasicAuth => ["hooks:current", "hooks:old", "hooks:wrong"],
            Method::None => ["", "", ""],
            Method::StandardWebhooks => [
                "whsec_Y3VycmVudC1rZXktMDEyMzQ1Njc4OQ==",
                "whsec_b2xkLWtleS0wMTIzNDU2Nzg5",
                "whsec_d3Jvbmcta2V5LTAxMjM0NTY3ODk=",
            ],
            _ => ["whsec_current", "whsec_old", "whsec_wrong"],
        };
        let mut builder = Verifier::builder()
            .method(method)
            .clock(ManualClock::from_unix(NOW).expect("in range"));
        if method != Method::None {
            builder = builder.secret("current", current).secret("old", old);
        }
        let verifier = builder.build().expect("valid configuration");
        let sign = |secret: &str| {
            Signer::for_method(method, secret)
                .expect("a secret the method reads")
                .sign_with_timestamp("dlv_0001", &timestamp, body)
                .header_map()
                .expect("valid header values")
        };
        let (success, label) = match method {
            Method::None => (sign(""), "unsigned"),
            _ => (sign(old), "old"),
        };
        let (rejected, rejected_body) = match method {
            Method::None => (None, body),
            Method::Bearer | Method::BasicAuth => (Some(sign(wrong)), body),
            _ => (Some(sign(current)), &tampered[..]),
        };
        cases.push(MethodCase {
            name: format!("{method}: success"),
            verifier: verifier.clone(),
            headers: success,
            body: body.to_vec(),
            expected: Ok(label),
        });
        if let Some(headers) = rejected {
            cases.push(MethodCase {
                name: format!("{method}: rejected"),
                verifier,
                headers,
                body: rejected_body.to_vec(),
                expected: Err("signature_mismatch"),
            });
        }
    }

    let seed = format!("whsk_{}", STANDARD.encode([7u8; 32]));
    let ed25519 = Signer::for_method(Method::StandardWebhooks, seed).expect("a 32-byte seed");
    let public_key = ed25519.public_key().expect("an Ed25519 signer");
    let verifier = Verifier::builder()
        .method(Method::StandardWebhooks)
        .secret("hmac", "whsec_aG1hYy1rZXk=")
        .secret("ed25519", public_key)
        .clock(ManualClock::from_unix(NOW).expect("in range"))
        .build()
        .expect("valid configuration");
    let v1a = ed25519
        .sign_with_timestamp("dlv_0001", &timestamp, body)
        .header_map()
        .expect("valid header values");
    cases.push(MethodCase {
        name: "standard_webhooks v1a: success".into(),
        verifier: verifier.clone(),
        headers: v1a.clone(),
        body: body.to_vec(),
        expected: Ok("ed25519"),
    });
    cases.push(MethodCase {
        name: "standard_webhooks v1a: rejected".into(),
        verifier: verifier.clone(),
        headers: v1a,
        body: tampered,
        expected: Err("signature_mismatch"),
    });
    let svix_names = HeaderNames {
        signature: HeaderName::from_static("svix-signature"),
        timestamp: Some(HeaderName::from_static("svix-timestamp")),
        delivery_id: Some(HeaderName::from_static("svix-id")),
    };
    let under_svix_names = Signer::for_method(Method::StandardWebhooks, "whsec_aG1hYy1rZXk=")
        .expect("a whsec_ secret")
        .header_names(svix_names)
        .sign_with_timestamp("dlv_0001", &timestamp, body)
        .header_map()
        .expect("valid header values");
    cases.push(MethodCase {
        name: "standard_webhooks under svix- names: success".into(),
        verifier,
        headers: under_svix_names,
        body: body.to_vec(),
        expected: Ok("hmac"),
    });
    cases
}
