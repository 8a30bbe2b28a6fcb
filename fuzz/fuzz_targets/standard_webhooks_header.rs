//! The Standard Webhooks signature list: any bytes as `webhook-signature`, with an HMAC secret
//! and an Ed25519 public key configured, never a panic; accepted only if the list carries a
//! true signature, of the kind of the key that reported the match.
#![no_main]

use std::sync::LazyLock;

use hookverify::{HeaderValues, ManualClock, Method, Signer, Verifier};
use libfuzzer_sys::fuzz_target;

/// HMAC key `fuzz-hmac-key-01`.
const HMAC_SECRET: &str = "whsec_ZnV6ei1obWFjLWtleS0wMQ==";
/// The Ed25519 seed: 32 bytes of 0x2a.
const ED25519_SEED: &str = "whsk_KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";
const NOW: i64 = 1_764_000_000;
const TIMESTAMP: &str = "1764000000";
const ID: &str = "msg_fuzz";
const BODY: &[u8] = b"{\"type\":\"fuzz\"}";

struct Fixture {
    verifier: Verifier,
    /// The true entries: `v1,<base64>` and `v1a,<base64>`.
    v1: String,
    v1a: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let sign = |secret: &str| {
        let signer = Signer::for_method(Method::StandardWebhooks, secret).expect("signer");
        let signature = signer
            .sign_with_timestamp(ID, TIMESTAMP, BODY)
            .signature()
            .to_owned();
        (signer, signature)
    };
    let (_, v1) = sign(HMAC_SECRET);
    let (ed25519, v1a) = sign(ED25519_SEED);
    let verifier = Verifier::builder()
        .method(Method::StandardWebhooks)
        .secret("hmac", HMAC_SECRET)
        .secret("ed25519", ed25519.public_key().expect("an Ed25519 signer"))
        .clock(ManualClock::from_unix(NOW).expect("in range"))
        .build()
        .expect("verifier");
    Fixture { verifier, v1, v1a }
});

fuzz_target!(|header: &[u8]| {
    let fixture = &*FIXTURE;
    let result = fixture.verifier.verify_values(
        HeaderValues {
            signature: Some(header),
            timestamp: Some(TIMESTAMP.as_bytes()),
            delivery_id: Some(ID.as_bytes()),
        },
        BODY,
    );
    if let Ok(verified) = result {
        let expected = match verified.secret_label() {
            "hmac" => &fixture.v1,
            "ed25519" => &fixture.v1a,
            other => panic!("matched an unknown secret {other:?}"),
        };
        assert!(
            header
                .split(|&byte| byte == b' ')
                .any(|entry| entry == expected.as_bytes()),
            "accepted by {} without its true signature",
            verified.secret_label()
        );
    }
});
