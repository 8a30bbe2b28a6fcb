//! Criterion benchmarks of the dedupe layer on a full [`MemoryStore`] of 1,000,000 entries.
//!
//! ```text
//! cargo bench --bench store
//! ```
//!
//! - `memory_store/claim_complete_evicting`: one `claim` of a new delivery (its id key and its
//!   message key) then its `complete`. The store is filled with 500,000 completed deliveries
//!   first and every timed claim pushes the two least recently used entries out, which is the
//!   steady state of a store in service: nothing else reclaims entries, so a store older than
//!   its retention window is always full.
//! - `memory_store/claim_duplicate`: one `claim` of a delivery the store holds (completed), the
//!   path of a retry.
//! - `receiver/claim_complete_evicting`: a whole verified delivery through [`Receiver`]: the
//!   window checked again, the message digest computed over the body, both keys built, claimed
//!   and completed, on a full store (500,000 deliveries). Verification is outside the timing
//!   (see the `verify` bench).
//!
//! The async calls are driven by a current-thread Tokio runtime, entered once per sample (not
//! per call): the store's futures are ready at once, so this times the store, not an executor.
//! Keys and verified deliveries are built outside the timed loops. The memory taken per
//! delivery is measured by `cargo run --release --example store_memory`.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::{Arc, LazyLock};
use std::time::{Duration as StdDuration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hookverify::store::{Claim, ClaimToken, DeliveryKeys, MessageDigest, Namespace};
use hookverify::{
    DeliveryStore, ManualClock, MemoryStore, Outcome, Receiver, Signer, Verified, Verifier,
};
use http::HeaderMap;
use std::time::Duration;
use tokio::runtime::Runtime;

/// Entries the store holds during every measurement: 1,000,000. `cargo test --benches` runs
/// each benchmark once to check it (no `--bench` argument); a small store does for that.
static ENTRIES: LazyLock<usize> = LazyLock::new(|| {
    let benchmarking = std::env::args().any(|arg| arg == "--bench")
        && !std::env::args().any(|arg| arg == "--test");
    if benchmarking { 1_000_000 } else { 1_000 }
});
/// The receiver's defaults (tolerance 300 s): lease 30 s, retention 2 × 300 s + 30 s.
const LEASE: Duration = Duration::from_secs(30);
const RETAIN: Duration = Duration::from_secs(630);
const SECRET: &str = "whsec_bench";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

fn capacity() -> NonZeroUsize {
    NonZeroUsize::new(*ENTRIES).expect("non-zero")
}

fn delivery_keys(n: usize) -> DeliveryKeys {
    let id = format!("dlv_{n:010}");
    let message = MessageDigest::of(&[id.as_bytes()]);
    DeliveryKeys::new(&Namespace::default(), Some(&id), &message)
}

/// Claims a delivery that must be new, then completes it.
async fn claim_complete(store: &MemoryStore, keys: &DeliveryKeys) {
    let token = ClaimToken::new(1);
    let claim = store.claim(keys, token, LEASE).await;
    assert!(matches!(claim, Ok(Claim::Fresh)), "{keys:?} must be new");
    let completed = store.complete(keys, token, RETAIN).await;
    assert!(matches!(completed, Ok(true)), "{keys:?} must complete");
}

/// A full store and a ring of `ENTRIES / 2 + 1` deliveries, of which the store holds all but
/// `next`.
///
/// Claiming `keys[next]` evicts the least recently used delivery's two keys, `keys[next + 1]`
/// (cyclically), which becomes the next one: the ring never runs out of new deliveries.
struct Full {
    runtime: Runtime,
    store: MemoryStore,
    keys: Vec<DeliveryKeys>,
    next: usize,
    timed_claims: u64,
}

impl Full {
    fn new() -> Self {
        let runtime = runtime();
        // The system clock, as in service: each call reads it once.
        let store = MemoryStore::new(capacity()).expect("capacity");
        let deliveries = *ENTRIES / 2;
        let keys: Vec<DeliveryKeys> = (0..=deliveries).map(delivery_keys).collect();
        runtime.block_on(async {
            for delivery in &keys[..deliveries] {
                claim_complete(&store, delivery).await;
            }
        });
        assert_eq!(store.len(), *ENTRIES);
        assert_eq!(store.evictions(), 0);
        Self {
            runtime,
            store,
            keys,
            next: deliveries,
            timed_claims: 0,
        }
    }
}

fn memory_store(c: &mut Criterion) {
    let mut full: Option<Full> = None;
    let mut group = c.benchmark_group("memory_store");

    group.bench_function("claim_complete_evicting", |b| {
        let Full {
            runtime,
            store,
            keys,
            next,
            timed_claims,
        } = full.get_or_insert_with(Full::new);
        b.iter_custom(|iters| {
            let elapsed = runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    claim_complete(store, black_box(&keys[*next])).await;
                    *next = if *next + 1 == keys.len() {
                        0
                    } else {
                        *next + 1
                    };
                }
                start.elapsed()
            });
            *timed_claims += iters;
            elapsed
        });
    });
    if let Some(full) = &full {
        // Every timed claim was fresh and pushed two entries out: the store stayed full.
        assert_eq!(full.store.len(), *ENTRIES);
        assert_eq!(full.store.evictions(), 2 * full.timed_claims);
    }

    group.bench_function("claim_duplicate", |b| {
        let full = full.get_or_insert_with(Full::new);
        b.iter_custom(|iters| {
            full.runtime.block_on(async {
                let mut elapsed = StdDuration::ZERO;
                let mut left = iters;
                while left > 0 {
                    // The held keys are the ring after `next`, up to (not including) `next`.
                    let held = (full.next + 1..full.keys.len()).chain(0..full.next);
                    let start = Instant::now();
                    for at in held.take(usize::try_from(left).unwrap_or(usize::MAX)) {
                        let keys = black_box(&full.keys[at]);
                        let claim = full.store.claim(keys, ClaimToken::new(2), LEASE).await;
                        assert!(matches!(claim, Ok(Claim::Completed)));
                        left -= 1;
                    }
                    elapsed += start.elapsed();
                }
                elapsed
            })
        });
    });
    group.finish();
}

/// A receiver whose full store holds `ENTRIES / 2` deliveries, and a source of new ones.
struct Deliveries {
    runtime: Runtime,
    receiver: Receiver<MemoryStore>,
    signer: Signer,
    next: usize,
    timed: u64,
}

impl Deliveries {
    fn new() -> Self {
        // A clock that stands still, so that every delivery stays inside the window however
        // long the run; the store reads it too (a lock per call instead of the system clock).
        let clock = Arc::new(ManualClock::from_unix(1_764_000_000).expect("in range"));
        let verifier = Verifier::builder()
            .secret("current", SECRET)
            .clock(Arc::clone(&clock))
            .build()
            .expect("a verifier");
        let signer = Signer::new(SECRET)
            .expect("a signer")
            .clock(Arc::clone(&clock));
        let receiver = Receiver::new(
            verifier,
            MemoryStore::with_clock(capacity(), clock).expect("capacity"),
        );
        let runtime = runtime();
        runtime.block_on(async {
            for n in 0..*ENTRIES / 2 {
                let (headers, body) = delivery(&signer, n);
                let verified = receiver
                    .verifier()
                    .verify(&headers, body.as_bytes())
                    .expect("verifies");
                let Ok(Outcome::Fresh(guard)) = receiver.claim(verified, body.as_bytes()).await
                else {
                    panic!("every delivery is new");
                };
                guard.complete().await.expect("completes");
            }
        });
        assert_eq!(receiver.store().len(), *ENTRIES);
        assert_eq!(receiver.store().evictions(), 0);
        Self {
            runtime,
            receiver,
            signer,
            next: *ENTRIES / 2,
            timed: 0,
        }
    }
}

/// Delivery `n`, signed: its own id and its own body (so its own MAC).
fn delivery(signer: &Signer, n: usize) -> (HeaderMap, String) {
    let id = format!("dlv_{n:010}");
    let body = format!(r#"{{"type":"run.finished","n":{n}}}"#);
    let headers = signer
        .sign(&id, body.as_bytes())
        .header_map()
        .expect("valid headers");
    (headers, body)
}

fn receiver(c: &mut Criterion) {
    let mut deliveries: Option<Deliveries> = None;
    let mut group = c.benchmark_group("receiver");
    group.bench_function("claim_complete_evicting", |b| {
        let d = deliveries.get_or_insert_with(Deliveries::new);
        b.iter_custom(|iters| {
            let first = d.next;
            d.next += usize::try_from(iters).expect("iterations fit in memory");
            // Verified before the clock starts: only the claims are timed.
            let signed: Vec<_> = (first..d.next).map(|n| delivery(&d.signer, n)).collect();
            let verifier = d.receiver.verifier();
            let mut batch: Vec<(Verified, &[u8])> = signed
                .iter()
                .map(|(headers, body)| {
                    let verified = verifier.verify(headers, body.as_bytes()).expect("verifies");
                    (verified, body.as_bytes())
                })
                .collect();
            let elapsed = d.runtime.block_on(async {
                let start = Instant::now();
                for (verified, body) in batch.drain(..) {
                    let claim = d.receiver.claim(black_box(verified), body).await;
                    let Ok(Outcome::Fresh(guard)) = claim else {
                        panic!("every delivery is new");
                    };
                    guard.complete().await.expect("completes");
                }
                start.elapsed()
            });
            d.timed += iters;
            elapsed
        });
    });
    group.finish();
    if let Some(d) = &deliveries {
        // Two keys per delivery, each pushing one entry out of the full store.
        assert_eq!(d.receiver.store().len(), *ENTRIES);
        assert_eq!(d.receiver.store().evictions(), 2 * d.timed);
    }
}

criterion_group!(benches, memory_store, receiver);
criterion_main!(benches);
