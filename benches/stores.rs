//! Criterion benchmarks of the networked stores: one `claim` of a new delivery (its id's key and
//! its message key) then its `complete`, against a Redis and a PostgreSQL server on loopback.
//!
//! ```text
//! cargo bench --bench stores --features redis,postgres
//! ```
//!
//! Each benchmark starts its own throwaway server (Debian packages `redis-server` and
//! `postgresql`, default settings: PostgreSQL commits with `fsync` on), or uses
//! `HOOKVERIFY_TEST_REDIS_URL` / `HOOKVERIFY_TEST_POSTGRES_URL` when set.
//!
//! - `<store>/claim_complete/sequential`: one delivery at a time; the figure is the inverse of
//!   the latency of two round trips.
//! - `<store>/claim_complete/concurrent_32`: 32 tasks on a multi-threaded runtime, each
//!   claiming and completing its own keys; the figure is the aggregate rate, what a busy
//!   receiver (or several sharing the server) gets.
//!
//! Throughput is reported in elements per second: one element is one claim plus one complete.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hookverify::DeliveryStore;
use hookverify::store::postgres::PostgresStore;
use hookverify::store::redis::RedisStore;
use hookverify::store::{Claim, ClaimToken, DeliveryKeys, MessageDigest, Namespace};
use tokio::runtime::Runtime;

#[path = "../tests/common/servers.rs"]
mod servers;

const LEASE: Duration = Duration::from_secs(30);
const RETAIN: Duration = Duration::from_secs(630);
const TASKS: u64 = 32;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a multi-threaded runtime")
}

/// New deliveries, never claimed before (a random namespace per run).
struct Keys {
    namespace: Namespace,
    next: AtomicU64,
}

impl Keys {
    fn new() -> Self {
        let token = ClaimToken::random().expect("randomness").get();
        Self {
            namespace: Namespace::new(&format!("bench-{token:016x}")).expect("valid namespace"),
            next: AtomicU64::new(0),
        }
    }

    fn next(&self) -> DeliveryKeys {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("dlv_{n:012}");
        let message = MessageDigest::of(&[b"1764000000.", id.as_bytes()]);
        DeliveryKeys::new(&self.namespace, Some(&id), &message)
    }
}

async fn claim_complete<S: DeliveryStore>(store: &S, keys: &DeliveryKeys) {
    let token = ClaimToken::random().expect("randomness");
    assert_eq!(
        store.claim(keys, token, LEASE).await.expect("claim"),
        Claim::Fresh,
        "a new delivery must be fresh"
    );
    assert!(
        store.complete(keys, token, RETAIN).await.expect("complete"),
        "the owner completes"
    );
}

fn bench_store<S: DeliveryStore>(c: &mut Criterion, name: &str, runtime: &Runtime, store: S) {
    let store = Arc::new(store);
    let keys = Arc::new(Keys::new());
    let mut group = c.benchmark_group(format!("{name}/claim_complete"));
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));

    group.bench_function("sequential", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                // Keys are built outside the timing.
                let batch: Vec<DeliveryKeys> = (0..iters).map(|_| keys.next()).collect();
                let started = Instant::now();
                for key in &batch {
                    claim_complete(&*store, key).await;
                }
                started.elapsed()
            })
        });
    });

    group.bench_function(format!("concurrent_{TASKS}"), |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let batches: Vec<Vec<DeliveryKeys>> = (0..TASKS)
                    .map(|task| {
                        let share = iters / TASKS + u64::from(task < iters % TASKS);
                        (0..share).map(|_| keys.next()).collect()
                    })
                    .collect();
                let started = Instant::now();
                let tasks: Vec<_> = batches
                    .into_iter()
                    .map(|batch| {
                        let store = Arc::clone(&store);
                        tokio::spawn(async move {
                            for key in &batch {
                                claim_complete(&*store, key).await;
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.expect("task");
                }
                started.elapsed()
            })
        });
    });
    group.finish();
}

fn redis(c: &mut Criterion) {
    let server = servers::RedisServer::start();
    let runtime = runtime();
    let store = runtime
        .block_on(RedisStore::connect(server.url()))
        .expect("connect")
        .prefix("hookverify-bench:");
    bench_store(c, "redis", &runtime, store);
}

fn postgres(c: &mut Criterion) {
    let server = servers::PostgresServer::start();
    let runtime = runtime();
    let store = runtime
        .block_on(PostgresStore::connect(server.url()))
        .expect("connect");
    runtime.block_on(store.migrate()).expect("migrate");
    bench_store(c, "postgres", &runtime, store);
}

criterion_group!(benches, redis, postgres);
criterion_main!(benches);
