//! Streaming verification gives the one-shot verdicts, for any chunking.

use std::sync::Arc;

use hookverify::{BodyVerifier, ManualClock, Signer, Verifier};
use proptest::prelude::*;

fn setup() -> (Verifier, Signer, Signer) {
    let clock = Arc::new(ManualClock::from_unix(1_764_000_000).expect("in range"));
    let verifier = Verifier::builder()
        .secret("old", "whsec_old")
        .secret("new", "whsec_new")
        .clock(Arc::clone(&clock))
        .build()
        .expect("verifier");
    let old = Signer::new("whsec_old")
        .expect("signer")
        .clock(Arc::clone(&clock));
    let new = Signer::new("whsec_new").expect("signer").clock(clock);
    (verifier, old, new)
}

/// Feeds `body` cut at the given points (each taken modulo what is left).
fn streamed(
    verifier: &Verifier,
    headers: &http::HeaderMap,
    body: &[u8],
    cuts: &[usize],
) -> Result<String, &'static str> {
    let precheck = verifier.precheck(headers).map_err(|e| e.kind().as_str())?;
    let mut stream = BodyVerifier::new(verifier, precheck);
    let mut rest = body;
    for &cut in cuts {
        let (chunk, tail) = rest.split_at(cut % (rest.len() + 1));
        stream.update(chunk);
        rest = tail;
    }
    stream.update(rest);
    stream
        .finish()
        .map(|v| v.secret_label().to_owned())
        .map_err(|e| e.kind().as_str())
}

fn one_shot(
    verifier: &Verifier,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<String, &'static str> {
    verifier
        .verify(headers, body)
        .map(|v| v.secret_label().to_owned())
        .map_err(|e| e.kind().as_str())
}

proptest! {
    #[test]
    fn any_chunking_gives_the_one_shot_verdict(
        body in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
        use_old in any::<bool>(),
        flip in proptest::option::of(any::<usize>()),
    ) {
        let (verifier, old, new) = setup();
        let signer = if use_old { &old } else { &new };
        let headers = signer.sign("dlv_stream", &body).header_map().expect("headers");
        let mut received = body.clone();
        if let (Some(at), false) = (flip, received.is_empty()) {
            let at = at % received.len();
            received[at] ^= 0x01;
        }
        let expected = one_shot(&verifier, &headers, &received);
        prop_assert_eq!(streamed(&verifier, &headers, &received, &cuts), expected.clone());
        let tampered = flip.is_some() && !body.is_empty();
        let label = if use_old { "old" } else { "new" };
        prop_assert_eq!(expected, if tampered { Err("signature_mismatch") } else { Ok(label.to_owned()) });
    }
}

#[test]
fn an_empty_stream_verifies_an_empty_body() {
    let (verifier, _, new) = setup();
    let headers = new.sign("dlv_empty", b"").header_map().expect("headers");
    assert_eq!(
        streamed(&verifier, &headers, b"", &[]),
        Ok("new".to_owned())
    );
    assert_eq!(
        streamed(&verifier, &headers, b"x", &[]),
        Err("signature_mismatch")
    );
}

/// `finish` judges exactly the body fed: a prefix does not verify, the whole body does.
#[test]
fn finish_judges_the_body_fed() {
    let (verifier, old, _) = setup();
    let headers = old
        .sign("dlv_grow", b"hello, world")
        .header_map()
        .expect("headers");
    let start = || BodyVerifier::new(&verifier, verifier.precheck(&headers).expect("prechecks"));
    let mut prefix = start();
    prefix.update(b"hello, ");
    assert_eq!(
        prefix
            .finish()
            .map(|v| v.secret_label().to_owned())
            .map_err(|e| e.kind().as_str()),
        Err("signature_mismatch")
    );
    let mut whole = start();
    whole.update(b"hello, ");
    whole.update(b"world");
    let verified = whole.finish().expect("the whole body verifies");
    assert_eq!(verified.secret_label(), "old");
    assert_eq!(verified.delivery_id(), Some("dlv_grow"));
}
