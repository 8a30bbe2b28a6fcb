//! Criterion benchmarks of the dedupe layer on a full [`MemoryStore`] of 1,000,000 entries.
//!
//! ```text
//! cargo bench --bench store
//! ```
//!
//! - `memory_store/claim_complete_evicting`: one `claim` of a new key then its `complete`. The
//!   store is filled with 1,000,000 completed keys first and every timed claim pushes the least
//!   recently used entry out, which is the steady state of a store in service: nothing else
//!   reclaims entries, so a store older than its retention window is always full.
//! - `memory_store/claim_duplicate`: one `claim` of a key the store holds (completed), the path
//!   of a retry or a replay.
//! - `receiver/claim_complete_evicting`: a whole verified delivery through [`Receiver`]: both
//!   keys built (id and MAC), claimed and completed, on a full store (500,000 deliveries).
//!   Verification is outside the timing (see the `verify` bench).
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
use hookverify::store::{Claim, DedupeKey, Namespace};
use hookverify::{
    DeliveryId, DeliveryStore, ManualClock, MemoryStore, Outcome, Receiver, Signer, Verified,
    Verifier,
};
use http::HeaderMap;
use time::Duration;
use tokio::runtime::Runtime;

/// Entries the store holds during every measurement: 1,000,000. `cargo test --benches` runs
/// each benchmark once to check it (no `--bench` argument); a small store does for that.
static ENTRIES: LazyLock<usize> = LazyLock::new(|| {
    let benchmarking = std::env::args().any(|arg| arg == "--bench")
        && !std::env::args().any(|arg| arg == "--test");
    if benchmarking { 1_000_000 } else { 1_000 }
});
/// The receiver's defaults (tolerance 300 s): lease 30 s, retention 2 × 300 s + 30 s.
const LEASE: Duration = Duration::seconds(30);
const RETAIN: Duration = Duration::seconds(630);
const SECRET: &str = "whsec_bench";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

fn capacity() -> NonZeroUsize {
    NonZeroUsize::new(*ENTRIES).expect("non-zero")
}

fn delivery_key(n: usize) -> DedupeKey {
    let id = DeliveryId::parse(format!("dlv_{n:010}").as_bytes()).expect("valid id");
    DedupeKey::delivery(&Namespace::default(), &id)
}

/// Claims a key that must be new, then completes it.
async fn claim_complete(store: &MemoryStore, key: &DedupeKey) {
    let Ok(Claim::Fresh(token)) = store.claim(key, LEASE).await else {
        panic!("{key:?} must be new");
    };
    let completed = store.complete(key, token, RETAIN).await;
    assert!(matches!(completed, Ok(true)), "{key:?} must complete");
}

/// A full store and a ring of `ENTRIES + 1` keys, of which the store holds all but `next`.
///
/// Claiming `keys[next]` evicts the least recently used entry, `keys[next + 1]` (cyclically),
/// which becomes the next key: the ring never runs out of new keys.
struct Full {
    runtime: Runtime,
    store: MemoryStore,
    keys: Vec<DedupeKey>,
    next: usize,
    timed_claims: u64,
}

impl Full {
    fn new() -> Self {
        let runtime = runtime();
        // The system clock, as in service: each call reads it once.
        let store = MemoryStore::new(capacity());
        let keys: Vec<DedupeKey> = (0..=*ENTRIES).map(delivery_key).collect();
        runtime.block_on(async {
            for key in &keys[..*ENTRIES] {
                claim_complete(&store, key).await;
            }
        });
        assert_eq!(store.len(), *ENTRIES);
        assert_eq!(store.evictions(), 0);
        Self {
            runtime,
            store,
            keys,
            next: *ENTRIES,
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
        // Every timed claim was fresh and pushed one entry out: the store stayed full.
        assert_eq!(full.store.len(), *ENTRIES);
        assert_eq!(full.store.evictions(), full.timed_claims);
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
                        let claim = full.store.claim(black_box(&full.keys[at]), LEASE).await;
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
        let receiver = Receiver::new(verifier, MemoryStore::with_clock(capacity(), clock));
        let runtime = runtime();
        runtime.block_on(async {
            for n in 0..*ENTRIES / 2 {
                let (headers, body) = delivery(&signer, n);
                let verified = receiver
                    .verifier()
                    .verify(&headers, body.as_bytes())
                    .expect("verifies");
                let Ok(Outcome::Fresh(guard)) = receiver.claim(verified).await else {
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
            let mut batch: Vec<Verified<'_>> = signed
                .iter()
                .map(|(headers, body)| verifier.verify(headers, body.as_bytes()).expect("verifies"))
                .collect();
            let elapsed = d.runtime.block_on(async {
                let start = Instant::now();
                for verified in batch.drain(..) {
                    let Ok(Outcome::Fresh(guard)) = d.receiver.claim(black_box(verified)).await
                    else {
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
