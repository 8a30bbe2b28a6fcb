//! The streaming path against the one-shot path: same verdict for any chunking.
#![no_main]

use std::sync::Arc;

use hookverify::{BodyVerifier, ManualClock, Signer, Verifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (bool, Vec<u16>, &[u8])| {
    let (tamper, cuts, body) = input;
    let clock = Arc::new(ManualClock::from_unix(1_764_000_000).expect("in range"));
    let verifier = Verifier::builder()
        .secret("old", "whsec_old")
        .secret("new", "whsec_new")
        .clock(Arc::clone(&clock))
        .build()
        .expect("verifier");
    let signer = Signer::new("whsec_new").expect("signer").clock(clock);
    let headers = signer.sign("dlv", body).header_map().expect("headers");
    let mut body = body.to_vec();
    if tamper && !body.is_empty() {
        body[0] ^= 1;
    }

    let one_shot = verifier.verify(&headers, &body);
    let precheck = verifier.precheck(&headers).expect("fresh headers");
    let mut stream = BodyVerifier::new(&verifier, precheck);
    let mut rest = &body[..];
    for cut in cuts {
        let at = usize::from(cut).min(rest.len());
        let (chunk, tail) = rest.split_at(at);
        stream.update(chunk);
        rest = tail;
    }
    stream.update(rest);
    let streamed = stream.finish();

    match (&one_shot, &streamed) {
        (Ok(a), Ok(b)) => assert_eq!(a.secret_label(), b.secret_label()),
        (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind()),
        _ => panic!("one-shot {one_shot:?} but streamed {streamed:?}"),
    }
    assert_eq!(one_shot.is_ok(), !tamper || body.is_empty());
});
