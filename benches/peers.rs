//! hookverify against its peers, in one run, on the same bodies (64 B, 1 KiB, 64 KiB, 1 MiB), one
//! group per size (`peers_<size>`, with `Throughput::Bytes`):
//!
//! - `hookverify`: `Verifier::verify`, headers from hookverify's `Signer`, one secret;
//! - `hookverify_standard_webhooks`: `Verifier::verify` with the `standard_webhooks` method, on
//!   the very headers `standardwebhooks` signed (so the two agree on every delivery here);
//! - `floor_standard_webhooks`: a bare HMAC-SHA256 of `{id}.{timestamp}.{body}`, pre-keyed;
//! - `floor_hmac_prekeyed`: a bare HMAC-SHA256 of `{timestamp}.{body}`, cloned from a state keyed
//!   once: what no verifier of this scheme can beat;
//! - `standardwebhooks`: `standardwebhooks::Webhook::verify` (1.x), inputs from its own `sign`;
//! - `svix`: `svix::webhooks::Webhook::verify` (2.x), inputs from its own `sign` (the crate is
//!   built with `native-tls` only: 2.9 does not compile without a TLS feature).
//!
//! The peers sign `{id}.{timestamp}.{body}` and require the body to be UTF-8, so every body here
//! is printable ASCII (the same bytes for all four). Their `verify` reads the system clock, so
//! each benchmark signs at the current time when it starts; hookverify's does too (its
//! `Verifier` is on the system clock). All four use the same key bytes; the peers get them as
//! `whsec_` + base64.
//!
//! A last group, `stream_finish`, measures hookverify's streaming path from the last body byte
//! to the verdict: `BodyVerifier::finish` on a verifier that has just been fed the whole body
//! (in 16 KiB chunks, outside the timing), at 1 KiB and 1 MiB. Each call is timed on its own
//! (`BatchSize::PerIteration`), so that figure includes one clock read (tens of ns) at both sizes.
//! The setup hashes the body once per iteration and criterion budgets wall time, setup included,
//! so at 1 MiB a 3 s measurement holds 3,000 to 4,000 calls. `stream_finish_code_warm` repeats it
//! after another delivery's `finish` has run in the setup: a body larger than the L2 cache evicts
//! `finish`'s code and the verifier's shared data, and the difference between the two groups is
//! those cache misses, not work that grows with the body. On a busy machine read the median
//! (`target/criterion/stream_finish/*/new/estimates.json`), not the mean: a call that the
//! scheduler interrupts weighs thousands of normal ones.
//!
//! Run: `cargo bench --bench peers -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use hmac::{Hmac, KeyInit, Mac};
use hookverify::{BodyVerifier, Method, Signer, Verifier};
use http::{HeaderMap, HeaderValue};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The key bytes every contender uses.
const KEY: &[u8] = b"bench-key-4f1d2c9a7b3e11d0-7b3e11d04f1d2c9a";

const DELIVERY_ID: &str = "msg_bench_0001";

const SIZES: [(&str, usize); 4] = [
    ("64B", 64),
    ("1KiB", 1024),
    ("64KiB", 64 * 1024),
    ("1MiB", 1024 * 1024),
];

/// Printable ASCII (valid UTF-8, as the peers require), not a repeating short pattern.
fn body(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| b' ' + (i.wrapping_mul(31).wrapping_add(i >> 7) % 95) as u8)
        .collect()
}

/// The peers' secret format: `whsec_` + base64 of the key bytes.
fn peer_secret() -> String {
    format!("whsec_{}", STANDARD.encode(KEY))
}

fn unix_now() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since.as_secs()).expect("in range")
}

fn header(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).expect("valid header value")
}

fn hookverify_verifier() -> Verifier {
    Verifier::builder()
        .secret("current", KEY)
        .build()
        .expect("valid configuration")
}

/// Headers signed now by hookverify's own signer.
fn hookverify_headers(body: &[u8]) -> HeaderMap {
    Signer::new(KEY)
        .expect("non-empty secret")
        .sign(DELIVERY_ID, body)
        .header_map()
        .expect("valid header values")
}

fn standardwebhooks_headers(webhook: &standardwebhooks::Webhook, body: &[u8]) -> HeaderMap {
    let now = unix_now();
    let signature = webhook
        .sign(DELIVERY_ID, now, body)
        .expect("UTF-8 body signs");
    let mut headers = HeaderMap::new();
    headers.insert(standardwebhooks::HEADER_WEBHOOK_ID, header(DELIVERY_ID));
    headers.insert(
        standardwebhooks::HEADER_WEBHOOK_TIMESTAMP,
        header(&now.to_string()),
    );
    headers.insert(
        standardwebhooks::HEADER_WEBHOOK_SIGNATURE,
        header(&signature),
    );
    headers
}

fn svix_headers(webhook: &svix::webhooks::Webhook, body: &[u8]) -> HeaderMap {
    let now = unix_now();
    let signature = webhook
        .sign(DELIVERY_ID, now, body)
        .expect("UTF-8 body signs");
    let mut headers = HeaderMap::new();
    headers.insert("svix-id", header(DELIVERY_ID));
    headers.insert("svix-timestamp", header(&now.to_string()));
    headers.insert("svix-signature", header(&signature));
    headers
}

fn bench_peers(c: &mut Criterion) {
    for (name, size) in SIZES {
        let body = body(size);
        let mut group = c.benchmark_group(format!("peers_{name}"));
        group.throughput(Throughput::Bytes(size as u64));

        group.bench_function("hookverify", |b| {
            let verifier = hookverify_verifier();
            let headers = hookverify_headers(&body);
            b.iter(|| {
                verifier
                    .verify(black_box(&headers), black_box(&body))
                    .expect("verifies")
            });
        });

        group.bench_function("floor_hmac_prekeyed", |b| {
            let keyed = HmacSha256::new_from_slice(KEY).expect("any key length");
            let headers = hookverify_headers(&body);
            let timestamp = headers
                .get("x-agent-timestamp")
                .expect("signed")
                .as_bytes()
                .to_vec();
            b.iter(|| {
                let mut mac = black_box(&keyed).clone();
                mac.update(black_box(&timestamp));
                mac.update(b".");
                mac.update(black_box(&body));
                mac.finalize().into_bytes()
            });
        });

        group.bench_function("hookverify_standard_webhooks", |b| {
            let verifier = Verifier::builder()
                .method(Method::StandardWebhooks)
                .secret("current", peer_secret())
                .build()
                .expect("valid configuration");
            let webhook =
                standardwebhooks::Webhook::new(&peer_secret()).expect("whsec_ + base64 secret");
            let headers = standardwebhooks_headers(&webhook, &body);
            b.iter(|| {
                verifier
                    .verify(black_box(&headers), black_box(&body))
                    .expect("verifies")
            });
        });

        group.bench_function("floor_standard_webhooks", |b| {
            let keyed = HmacSha256::new_from_slice(KEY).expect("any key length");
            let prefix = format!("{DELIVERY_ID}.{}.", unix_now()).into_bytes();
            b.iter(|| {
                let mut mac = black_box(&keyed).clone();
                mac.update(black_box(&prefix));
                mac.update(black_box(&body));
                mac.finalize().into_bytes()
            });
        });

        group.bench_function("standardwebhooks", |b| {
            let webhook =
                standardwebhooks::Webhook::new(&peer_secret()).expect("whsec_ + base64 secret");
            let headers = standardwebhooks_headers(&webhook, &body);
            b.iter(|| {
                webhook
                    .verify(black_box(&body), black_box(&headers))
                    .expect("verifies");
            });
        });

        group.bench_function("svix", |b| {
            let webhook =
                svix::webhooks::Webhook::new(&peer_secret()).expect("whsec_ + base64 secret");
            let headers = svix_headers(&webhook, &body);
            b.iter(|| {
                webhook
                    .verify(black_box(&body), black_box(&headers))
                    .expect("verifies");
            });
        });

        group.finish();
    }
}

/// Chunk size the streaming setup feeds, about what an HTTP/1 body frame carries.
const CHUNK: usize = 16 * 1024;

fn bench_stream_finish(c: &mut Criterion) {
    // `stream_finish`: as a server meets it, with whatever the body's bytes evicted from the
    // caches (past the L2, that includes `finish`'s own code and the verifier's shared data).
    // `stream_finish_code_warm`: the same, after another delivery's `finish` has brought the code
    // and the shared data back, which isolates the work `finish` does from the cache misses.
    for (group_name, warm_code) in [("stream_finish", false), ("stream_finish_code_warm", true)] {
        let mut group = c.benchmark_group(group_name);
        // Criterion sizes the run by wall time, setup included, so at 1 MiB the measurement time
        // buys a few thousand iterations, too few to spread over growing (linear) sample sizes.
        group.sampling_mode(SamplingMode::Flat);
        for (name, size) in [("1KiB", 1024), ("1MiB", 1024 * 1024)] {
            let body = body(size);
            let verifier = hookverify_verifier();
            let headers = hookverify_headers(&body);
            let other_headers = hookverify_headers(b"{}");
            group.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_batched(
                    || {
                        let precheck = verifier.precheck(&headers).expect("fresh, well formed");
                        let mut stream = BodyVerifier::new(&verifier, precheck);
                        for chunk in body.chunks(CHUNK) {
                            stream.update(chunk);
                        }
                        if warm_code {
                            let precheck = verifier.precheck(&other_headers).expect("fresh");
                            let mut other = BodyVerifier::new(&verifier, precheck);
                            other.update(b"{}");
                            black_box(other.finish().expect("verifies"));
                        }
                        stream
                    },
                    |stream| stream.finish().expect("verifies").tag().is_some(),
                    // One setup right before each timed call, as in a server: the states have
                    // just absorbed the last chunk. Batching would time `finish` on states that
                    // the later setups' bodies evicted, which no server sees.
                    BatchSize::PerIteration,
                );
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_peers, bench_stream_finish);
criterion_main!(benches);
