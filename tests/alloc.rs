//! `Verifier::verify` does not touch the heap: every allocation in the process is counted by an
//! instrumenting global allocator while it runs.
//!
//! One test function only: the counters are process-wide, so another test running on a second
//! thread would be counted too.

use std::alloc::System;

use hookverify::{ManualClock, Signer, Verifier};
use http::{HeaderMap, HeaderValue};
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

    // Each scenario must end the way it is named for, or the count proves nothing.
    let cases: [(&str, Check<'_>); 4] = [
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
