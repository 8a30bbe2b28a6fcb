//! The `Authorization` header of `basic_auth` and `bearer`: any bytes, never a panic; accepted
//! only for the exact credential, after the scheme's name (in any case) and spaces.
#![no_main]

use std::sync::LazyLock;

use hookverify::{HeaderValues, Method, Signer, Verifier};
use libfuzzer_sys::fuzz_target;

const TOKEN: &str = "tok_fuzz-0123";
const USER_PASSWORD: &str = "hooks:fuzz:pass";

struct Fixture {
    bearer: Verifier,
    basic: Verifier,
    /// The base64 of `USER_PASSWORD`, as the signer sends it.
    basic_credential: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let verifier = |method, secret| {
        Verifier::builder()
            .method(method)
            .secret("fuzz", secret)
            .build()
            .expect("verifier")
    };
    let signed = Signer::for_method(Method::BasicAuth, USER_PASSWORD)
        .expect("signer")
        .sign("dlv_fuzz", b"");
    let (_, basic_credential) = signed.signature().split_once(' ').expect("Basic <base64>");
    Fixture {
        bearer: verifier(Method::Bearer, TOKEN),
        basic: verifier(Method::BasicAuth, USER_PASSWORD),
        basic_credential: basic_credential.to_owned(),
    }
});

/// Whether `value` is `scheme` (any case), then a space, then `credential` between spaces.
fn carries(value: &[u8], scheme: &str, credential: &str) -> bool {
    value.len() > scheme.len()
        && value[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
        && value[scheme.len()] == b' '
        && value[scheme.len()..].trim_ascii() == credential.as_bytes()
}

fuzz_target!(|value: &[u8]| {
    let fixture = &*FIXTURE;
    let values = HeaderValues {
        signature: Some(value),
        delivery_id: Some(b"dlv_fuzz"),
        ..HeaderValues::default()
    };
    if fixture.bearer.verify_values(values, b"").is_ok() {
        assert!(
            carries(value, "Bearer", TOKEN),
            "bearer accepted another token"
        );
    }
    if fixture.basic.verify_values(values, b"").is_ok() {
        assert!(
            carries(value, "Basic", &fixture.basic_credential),
            "basic_auth accepted other credentials"
        );
    }
});
