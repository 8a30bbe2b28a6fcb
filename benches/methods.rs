//! Every signing method's `Verifier::verify` against its own bare floor, at 1 KiB, one group per
//! method (`method_<name>`):
//!
//! - `verify`: the whole check, headers parsed from an `http::HeaderMap`, one secret;
//! - `floor`: the cryptographic work alone, on bytes laid out in advance: the method's bare HMAC
//!   cloned from a state keyed once (SHA-256 or SHA-1), Ed25519's `verify` over the contiguous
//!   signed bytes, or for `bearer` and `basic_auth`, the SHA-256 of the credential and one
//!   constant-time comparison. `none` has no floor: it checks nothing.
//! - `floor_verify` (the HMAC methods): that HMAC and its check against the expected tag, as
//!   `hmac`'s own `Mac::verify_slice` does it: the bare HMAC *verify*.
//!
//! Run: `cargo bench --bench methods -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::Verifier as _;
use hmac::{Hmac, KeyInit, Mac};
use hookverify::{Method, Signer, Verifier};
use http::HeaderMap;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const SIZE: usize = 1024;
const SECRET: &str = "whsec_bench_current_4f1d2c9a7b3e11d0";
/// Standard Webhooks' HMAC key, as `whsec_` + base64, and its Ed25519 seed as `whsk_`.
const SW_KEY: &[u8] = b"bench-key-4f1d2c9a7b3e11d0-7b3e11d04f1d2c9a";
const SW_SEED: [u8; 32] = [7; 32];
const BASIC: &str = "hookverify:4f1d2c9a7b3e11d07b3e11d04f1d2c9a";

fn body() -> Vec<u8> {
    (0..SIZE)
        .map(|i| b' ' + (i.wrapping_mul(31) % 95) as u8)
        .collect()
}

/// What a verifier and a signer are given for `method` (`v1a`: the Ed25519 variant).
fn secrets(method: Method, v1a: bool) -> (String, String) {
    match method {
        Method::StandardWebhooks if v1a => {
            let signer = format!("whsk_{}", STANDARD.encode(SW_SEED));
            let public = Signer::for_method(method, signer.clone())
                .expect("a whsk_ key")
                .public_key()
                .expect("an Ed25519 signer");
            (public, signer)
        }
        Method::StandardWebhooks => {
            let secret = format!("whsec_{}", STANDARD.encode(SW_KEY));
            (secret.clone(), secret)
        }
        Method::BasicAuth => (BASIC.into(), BASIC.into()),
        Method::None => (String::new(), String::new()),
        _ => (SECRET.into(), SECRET.into()),
    }
}

fn bench_methods(c: &mut Criterion) {
    let body = body();
    let mut contenders: Vec<(String, Method, bool)> = Method::ALL
        .into_iter()
        .map(|method| (method.name().to_owned(), method, false))
        .collect();
    contenders.push((
        "standard_webhooks_v1a".into(),
        Method::StandardWebhooks,
        true,
    ));

    for (name, method, v1a) in contenders {
        let (verifier_secret, signer_secret) = secrets(method, v1a);
        let mut builder = Verifier::builder().method(method);
        if method != Method::None {
            builder = builder.secret("current", verifier_secret);
        }
        let verifier = builder.build().expect("valid configuration");
        let signer = Signer::for_method(method, signer_secret.clone()).expect("valid signer");
        let signed = signer.sign("msg_bench_0001", &body);
        let headers: HeaderMap = signed.header_map().expect("valid header values");
        verifier.verify(&headers, &body).expect("verifies");

        let mut group = c.benchmark_group(format!("method_{name}"));
        group.throughput(Throughput::Bytes(SIZE as u64));
        group.bench_function("verify", |b| {
            b.iter(|| {
                verifier
                    .verify(black_box(&headers), black_box(&body))
                    .expect("verifies")
            });
        });

        let timestamp = signed.timestamp().as_bytes().to_vec();
        let id = signed.delivery_id().as_bytes().to_vec();
        let prefix: Vec<u8> = match method {
            Method::StandardWebhooks => [&id[..], b".", &timestamp, b"."].concat(),
            Method::Slack => [&b"v0:"[..], &timestamp, b":"].concat(),
            Method::GitHub => Vec::new(),
            _ => [&timestamp[..], b"."].concat(),
        };
        match method {
            Method::HmacSha1 => {
                let keyed = Hmac::<Sha1>::new_from_slice(SECRET.as_bytes()).expect("any key");
                hmac_floors(&mut group, &keyed, &prefix, &body);
            }
            Method::StandardWebhooks if v1a => {
                let key = ed25519_dalek::SigningKey::from_bytes(&SW_SEED).verifying_key();
                let message = [&prefix[..], &body].concat();
                let encoded = signed.signature().strip_prefix("v1a,").expect("v1a");
                let bytes: [u8; 64] = STANDARD
                    .decode(encoded)
                    .expect("base64")
                    .try_into()
                    .expect("64 bytes");
                let signature = ed25519_dalek::Signature::from_bytes(&bytes);
                group.bench_function("floor", |b| {
                    b.iter(|| {
                        key.verify(black_box(&message), black_box(&signature))
                            .expect("verifies")
                    });
                });
            }
            Method::Bearer | Method::BasicAuth => {
                let expected: [u8; 32] = Sha256::digest(signer_secret.as_bytes()).into();
                let presented = signer_secret.clone();
                group.bench_function("floor", |b| {
                    b.iter(|| {
                        let digest: [u8; 32] =
                            Sha256::digest(black_box(presented.as_bytes())).into();
                        bool::from(digest.ct_eq(black_box(&expected)))
                    });
                });
            }
            Method::None => {}
            _ => {
                let key: Vec<u8> = match method {
                    Method::StandardWebhooks => SW_KEY.to_vec(),
                    _ => SECRET.as_bytes().to_vec(),
                };
                let keyed = Hmac::<Sha256>::new_from_slice(&key).expect("any key");
                hmac_floors(&mut group, &keyed, &prefix, &body);
            }
        }
        group.finish();
    }
}

/// The HMAC methods' floors: the MAC alone (`floor`), and the MAC checked against the expected
/// tag as `Mac::verify_slice` does (`floor_verify`), each from a state keyed once.
fn hmac_floors<M: Mac + Clone>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    keyed: &M,
    prefix: &[u8],
    body: &[u8],
) {
    group.bench_function("floor", |b| {
        b.iter(|| {
            let mut mac = black_box(keyed).clone();
            mac.update(black_box(prefix));
            mac.update(black_box(body));
            mac.finalize().into_bytes()
        });
    });
    let tag = keyed
        .clone()
        .chain_update(prefix)
        .chain_update(body)
        .finalize()
        .into_bytes();
    group.bench_function("floor_verify", |b| {
        b.iter(|| {
            let mut mac = black_box(keyed).clone();
            mac.update(black_box(prefix));
            mac.update(black_box(body));
            mac.verify_slice(black_box(&tag)).is_ok()
        });
    });
}

criterion_group!(benches, bench_methods);
criterion_main!(benches);
