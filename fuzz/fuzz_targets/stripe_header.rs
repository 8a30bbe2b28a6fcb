//! The Stripe signature header: any bytes as `Stripe-Signature`, never a panic; accepted only
//! if it carries the true `t` and a true `v1`.
#![no_main]

use std::sync::LazyLock;

use hookverify::{HeaderValues, ManualClock, Method, Signer, Verifier};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "whsec_fuzz";
const NOW: i64 = 1_764_000_000;
const TIMESTAMP: &str = "1764000000";
const BODY: &[u8] = b"{\"type\":\"fuzz\"}";

static VERIFIER: LazyLock<Verifier> = LazyLock::new(|| {
    Verifier::builder()
        .method(Method::Stripe)
        .secret("fuzz", SECRET)
        .clock(ManualClock::from_unix(NOW).expect("in range"))
        .build()
        .expect("verifier")
});

/// The true `v1` entry, `v1=<hex>`, from the signer's `t=…,v1=<hex>`.
static TRUE_V1: LazyLock<String> = LazyLock::new(|| {
    let signed = Signer::for_method(Method::Stripe, SECRET)
        .expect("signer")
        .sign_with_timestamp("", TIMESTAMP, BODY);
    let (_, v1) = signed.signature().split_once(',').expect("t=…,v1=…");
    v1.to_owned()
});

fuzz_target!(|header: &[u8]| {
    let result = VERIFIER.verify_values(
        HeaderValues {
            signature: Some(header),
            ..HeaderValues::default()
        },
        BODY,
    );
    if result.is_ok() {
        // The pairs as Stripe separates them, spaces around them aside.
        let pairs: Vec<&[u8]> = header
            .split(|&byte| byte == b',')
            .map(<[u8]>::trim_ascii)
            .collect();
        let t = format!("t={TIMESTAMP}");
        assert!(
            pairs.iter().any(|pair| *pair == t.as_bytes()),
            "accepted without the true t"
        );
        assert!(
            pairs
                .iter()
                .any(|pair| pair.eq_ignore_ascii_case(TRUE_V1.as_bytes())),
            "accepted without the true v1"
        );
    }
});
