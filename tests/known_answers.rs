//! Published HMAC-SHA256 known answers.
//!
//! The crate signs `{timestamp}.{body}`, never a bare message, so a published answer over a bare
//! message reaches the crate only where the message splits at a `.`:
//!
//! - GitHub's `X-Hub-Signature-256` example and RFC 4231 test case 2 contain no `.`. They are
//!   checked against the HMAC routine the crate is built on (`hmac` + `sha2`), computed the way
//!   the verifier computes it (a state keyed once, cloned, fed in pieces), and the verifier and
//!   signer are then shown to agree with that routine on a framed message under the same key.
//! - RFC 4231 test case 7 contains a `.`: the signer, which frames any timestamp text as given,
//!   reproduces it exactly, through the crate's own keying and framing.

use hmac::{Hmac, KeyInit, Mac};
use hookverify::{ManualClock, Signer, Verifier};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// docs.github.com, "Validating webhook deliveries", "Testing the webhook payload validation".
const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const GITHUB_PAYLOAD: &[u8] = b"Hello, World!";
const GITHUB_SIGNATURE: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

/// RFC 4231, section 4.3, test case 2.
const RFC4231_2_KEY: &[u8] = b"Jefe";
const RFC4231_2_DATA: &[u8] = b"what do ya want for nothing?";
const RFC4231_2_HMAC_SHA256: &str =
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

/// RFC 4231, section 4.8, test case 7: a key and data both longer than SHA-256's block.
const RFC4231_7_KEY: [u8; 131] = [0xaa; 131];
const RFC4231_7_DATA: &str = "This is a test using a larger than block-size key and a larger than \
                              block-size data. The key needs to be hashed before being used by \
                              the HMAC algorithm.";
const RFC4231_7_HMAC_SHA256: &str =
    "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2";

const NOW: i64 = 1_764_000_000;

fn hex_tag(mac: HmacSha256) -> String {
    hex::encode(mac.finalize().into_bytes())
}

/// The HMAC of `parts` concatenated, the way the verifier computes it: the key absorbed once
/// into a state that each message clones and feeds piece by piece.
fn pre_keyed(key: &[u8], parts: &[&[u8]]) -> String {
    let keyed = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    let mut mac = keyed.clone();
    for part in parts {
        mac.update(part);
    }
    hex_tag(mac)
}

fn one_shot(key: &[u8], message: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    hex_tag(mac)
}

/// Shows that the verifier and the signer compute what [`pre_keyed`] computes over
/// `{timestamp}.{body}`, for the given key: the verifier accepts the independently computed
/// signature and reports it as the matched tag, and the signer produces the same header.
fn assert_crate_agrees(key: &[u8], body: &[u8]) {
    let timestamp = NOW.to_string();
    let expected = pre_keyed(key, &[timestamp.as_bytes(), b".", body]);

    let verifier = Verifier::builder()
        .secret("kat", key)
        .clock(ManualClock::from_unix(NOW).expect("in range"))
        .build()
        .expect("valid configuration");
    let signature = format!("sha256={expected}");
    let verified = verifier
        .verify_values(
            hookverify::HeaderValues {
                signature: Some(signature.as_bytes()),
                timestamp: Some(timestamp.as_bytes()),
                delivery_id: Some(b"dlv_kat"),
            },
            body,
        )
        .expect("the verifier accepts the independently computed signature");
    assert_eq!(
        hex::encode(verified.tag().expect("a MAC").as_bytes()),
        expected
    );

    let signed = Signer::new(key)
        .expect("non-empty key")
        .sign_with_timestamp("dlv_kat", &timestamp, body);
    assert_eq!(signed.signature(), signature);
}

#[test]
fn github_example_hmac() {
    let key = GITHUB_SECRET.as_bytes();
    assert_eq!(one_shot(key, GITHUB_PAYLOAD), GITHUB_SIGNATURE);
    assert_eq!(
        pre_keyed(key, &[b"Hello", b", ", b"World!"]),
        GITHUB_SIGNATURE
    );
    assert_crate_agrees(key, GITHUB_PAYLOAD);
}

#[test]
fn rfc4231_test_case_2_hmac() {
    assert_eq!(
        one_shot(RFC4231_2_KEY, RFC4231_2_DATA),
        RFC4231_2_HMAC_SHA256
    );
    assert_eq!(
        pre_keyed(RFC4231_2_KEY, &[b"what do ya", b" want for nothing?"]),
        RFC4231_2_HMAC_SHA256
    );
    assert_crate_agrees(RFC4231_2_KEY, RFC4231_2_DATA);
}

#[test]
fn rfc4231_test_case_7_through_the_signer() {
    let (timestamp, body) = RFC4231_7_DATA
        .split_once('.')
        .expect("the message contains a dot");
    let signed = Signer::new(RFC4231_7_KEY.as_slice())
        .expect("non-empty key")
        .sign_with_timestamp("dlv_kat", timestamp, body.as_bytes());
    assert_eq!(
        signed.signature(),
        format!("sha256={RFC4231_7_HMAC_SHA256}")
    );
    assert_crate_agrees(&RFC4231_7_KEY, body.as_bytes());
}
