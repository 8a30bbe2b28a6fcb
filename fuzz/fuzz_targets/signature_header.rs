//! The signature header parser: any bytes, never a panic; accepted only if the header carries
//! the true tag.
#![no_main]

use std::sync::Arc;

use hookverify::{HeaderValues, ManualClock, Signer, Verifier};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "whsec_fuzz";
const TIMESTAMP: &str = "1764000000";
const BODY: &[u8] = b"{\"type\":\"fuzz\"}";

fuzz_target!(|signature: &[u8]| {
    let clock = Arc::new(ManualClock::from_unix(1_764_000_000).expect("in range"));
    let verifier = Verifier::builder()
        .secret("fuzz", SECRET)
        .clock(clock)
        .build()
        .expect("verifier");
    let result = verifier.verify_values(
        HeaderValues {
            signature: Some(signature),
            timestamp: Some(TIMESTAMP.as_bytes()),
            delivery_id: Some(b"dlv_fuzz"),
        },
        BODY,
    );
    if result.is_ok() {
        let expected = Signer::new(SECRET)
            .expect("signer")
            .sign_with_timestamp("dlv_fuzz", TIMESTAMP, BODY);
        let hex = &expected.signature()["sha256=".len()..];
        let carried = String::from_utf8_lossy(signature).to_ascii_lowercase();
        assert!(
            carried.contains(hex),
            "accepted a header without the true tag"
        );
    }
});
