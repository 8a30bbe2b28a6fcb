//! The whole verify over arbitrary headers, body and clock: never a panic, and never an
//! acceptance of a body the secret did not sign.
#![no_main]

use std::sync::Arc;

use hookverify::{ManualClock, Signer, Verifier};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

/// Splits the input into header lines (`name:value`, separated by `\n`) and a body after an
/// empty line.
fn parse(data: &[u8]) -> (HeaderMap, &[u8]) {
    let mut headers = HeaderMap::new();
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&data[..at], &data[at + 2..]),
        None => (data, &[][..]),
    };
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(&line[colon + 1..]),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    (headers, body)
}

fuzz_target!(|input: (i64, &[u8])| {
    let (now, data) = input;
    let Some(clock) = ManualClock::from_unix(now) else {
        return;
    };
    let verifier = Verifier::builder()
        .secret("a", "whsec_fuzz_a")
        .secret("b", "whsec_fuzz_b")
        .clock(Arc::new(clock))
        .build()
        .expect("verifier");
    let (headers, body) = parse(data);
    if let Ok(verified) = verifier.verify(&headers, body) {
        // An acceptance must be explained by one of the secrets signing exactly these bytes.
        let secret = match verified.secret_label() {
            "a" => "whsec_fuzz_a",
            _ => "whsec_fuzz_b",
        };
        let timestamp = headers
            .get("x-agent-timestamp")
            .and_then(|v| v.to_str().ok())
            .expect("an accepted request has a text timestamp");
        let expected = Signer::new(secret)
            .expect("signer")
            .sign_with_timestamp("", timestamp, body);
        let carried = headers
            .get("x-agent-signature")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase())
            .expect("an accepted request has a signature");
        assert!(carried.contains(&expected.signature()["sha256=".len()..]));
    }
});
