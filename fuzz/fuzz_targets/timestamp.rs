//! The timestamp parser and the window: any bytes, never a panic; accepted only inside the
//! window, whatever the clock says.
#![no_main]

use std::sync::Arc;

use hookverify::{Clock, HeaderValues, MAX_TOLERANCE, ManualClock, Signer, Verifier};
use libfuzzer_sys::fuzz_target;
use time::Duration;

fuzz_target!(|input: (i64, u32, &[u8])| {
    let (now, tolerance, timestamp) = input;
    let Some(clock) = ManualClock::from_unix(now) else {
        return;
    };
    let clock = Arc::new(clock);
    // Any tolerance the verifier accepts: 0 to a day.
    let tolerance = Duration::seconds(i64::from(tolerance) % (MAX_TOLERANCE.whole_seconds() + 1));
    let verifier = Verifier::builder()
        .secret("fuzz", "whsec_fuzz")
        .clock(Arc::clone(&clock))
        .tolerance(tolerance)
        .build()
        .expect("verifier");
    // Sign over the exact bytes when they are text, so the HMAC is right and only the timestamp
    // decides; otherwise any well-formed signature exercises the parser.
    let signature = match std::str::from_utf8(timestamp) {
        Ok(text) => Signer::new("whsec_fuzz")
            .expect("signer")
            .sign_with_timestamp("dlv", text, b"body")
            .signature()
            .to_owned(),
        Err(_) => format!("sha256={}", "0".repeat(64)),
    };
    let result = verifier.verify_values(
        HeaderValues {
            signature: Some(signature.as_bytes()),
            timestamp: Some(timestamp),
            delivery_id: None,
        },
        b"body",
    );
    if let Ok(verified) = result {
        let signed = verified
            .timestamp()
            .expect("hmac_sha256 verifies a timestamp");
        let drift = clock.now() - signed;
        assert!(
            drift.abs() <= tolerance,
            "accepted a timestamp outside the window"
        );
        assert!(
            !timestamp.is_empty() && timestamp.len() <= hookverify::MAX_TIMESTAMP_LEN,
            "accepted a timestamp of impossible length"
        );
    }
});
