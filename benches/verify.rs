//! `Verifier::verify` against a bare HMAC-SHA256 of the same bytes (`{timestamp}.{body}`), at
//! 64 B, 1 KiB, 64 KiB and 1 MiB bodies, one group per size:
//!
//! - `verify`: the whole check, headers parsed from an `http::HeaderMap`, one secret;
//! - `hmac_rekeyed`: a bare HMAC keyed on every call, what a naive receiver does;
//! - `hmac_prekeyed`: a bare HMAC cloned from a state keyed once, the floor;
//! - `verify_2_secrets_second_matches`: two secrets, the second matches (secrets are tried in
//!   configuration order: two HMACs), as during a rotation before the provider switches.
//!
//! Run: `cargo bench --bench verify -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use hookverify::{Signer, Verifier};
use http::HeaderMap;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const SECRET: &str = "whsec_bench_current_4f1d2c9a7b3e11d0";
const OLD_SECRET: &str = "whsec_bench_old_7b3e11d04f1d2c9a";

const SIZES: [(&str, usize); 4] = [
    ("64B", 64),
    ("1KiB", 1024),
    ("64KiB", 64 * 1024),
    ("1MiB", 1024 * 1024),
];

fn body(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i.wrapping_mul(31) % 251) as u8)
        .collect()
}

/// Headers signed now (the verifiers read the system clock), so each benchmark signs its own
/// request at its start and stays well inside the 300 s window.
fn signed(secret: &str, body: &[u8]) -> HeaderMap {
    Signer::new(secret)
        .expect("non-empty secret")
        .sign("dlv_bench_0001", body)
        .header_map()
        .expect("valid header values")
}

fn one_secret() -> Verifier {
    Verifier::builder()
        .secret("current", SECRET)
        .build()
        .expect("valid configuration")
}

fn two_secrets() -> Verifier {
    Verifier::builder()
        .secret("current", SECRET)
        .secret("old", OLD_SECRET)
        .build()
        .expect("valid configuration")
}

fn timestamp_of(headers: &HeaderMap) -> Vec<u8> {
    headers
        .get("x-agent-timestamp")
        .expect("signed")
        .as_bytes()
        .to_vec()
}

fn bench_verify(c: &mut Criterion) {
    for (name, size) in SIZES {
        let body = body(size);
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(size as u64));

        group.bench_function("verify", |b| {
            let verifier = one_secret();
            let headers = signed(SECRET, &body);
            b.iter(|| {
                verifier
                    .verify(black_box(&headers), black_box(&body))
                    .expect("verifies")
            });
        });

        group.bench_function("hmac_rekeyed", |b| {
            let timestamp = timestamp_of(&signed(SECRET, &body));
            b.iter(|| {
                let mut mac = HmacSha256::new_from_slice(black_box(SECRET.as_bytes()))
                    .expect("any key length");
                mac.update(black_box(&timestamp));
                mac.update(b".");
                mac.update(black_box(&body));
                mac.finalize().into_bytes()
            });
        });

        group.bench_function("hmac_prekeyed", |b| {
            let keyed = HmacSha256::new_from_slice(SECRET.as_bytes()).expect("any key length");
            let timestamp = timestamp_of(&signed(SECRET, &body));
            b.iter(|| {
                let mut mac = black_box(&keyed).clone();
                mac.update(black_box(&timestamp));
                mac.update(b".");
                mac.update(black_box(&body));
                mac.finalize().into_bytes()
            });
        });

        group.bench_function("verify_2_secrets_second_matches", |b| {
            let verifier = two_secrets();
            let headers = signed(OLD_SECRET, &body);
            let first = verifier.verify(&headers, &body).expect("verifies");
            assert_eq!(first.secret_label(), "old");
            b.iter(|| {
                verifier
                    .verify(black_box(&headers), black_box(&body))
                    .expect("verifies")
            });
        });

        group.finish();
    }
}

criterion_group!(benches, bench_verify);
criterion_main!(benches);
