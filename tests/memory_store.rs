//! The memory store against the shared conformance suite, and its own bounds.
#![cfg(feature = "testing")]

#[path = "common/replicas.rs"]
mod replicas;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use hookverify::store::memory::WhenFull;
use hookverify::store::{Claim, ClaimToken, DeliveryKeys, MessageDigest, Namespace};
use hookverify::{DeliveryStore, MemoryStore};

const LEASE: Duration = Duration::from_secs(30);

fn capacity(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("non-zero")
}

fn delivery(name: &str) -> DeliveryKeys {
    DeliveryKeys::new(
        &Namespace::default(),
        Some(name),
        &MessageDigest::of(&[name.as_bytes()]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conforms() {
    hookverify::testing::run_conformance(|| async { MemoryStore::new(capacity(10_000)) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_use_never_exceeds_capacity() {
    let store = Arc::new(MemoryStore::new(capacity(500)));
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for n in 0..100 {
                    let keys = delivery(&format!("t{task}-{n}"));
                    let token = ClaimToken::random().expect("randomness");
                    let claim = store.claim(&keys, token, LEASE).await.expect("store");
                    assert_eq!(claim, Claim::Fresh, "every delivery is new");
                    assert!(store.len() <= 500);
                    if n % 2 == 0 {
                        // `false` if the other tasks pushed the keys out since the claim: not
                        // an error.
                        store
                            .complete(&keys, token, Duration::from_secs(600))
                            .await
                            .expect("store");
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    // Two keys per delivery.
    assert_eq!(store.len(), 500);
    assert_eq!(store.evictions(), 2 * 16 * 100 - 500);
    assert_eq!(store.premature_evictions(), store.evictions());
}

/// Under the refusing policy a full store answers an error (the layer's 503) and never forgets
/// a delivery inside its retention, whatever the concurrency.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refusing_store_never_forgets_early() {
    let store = Arc::new(MemoryStore::new(capacity(200)).when_full(WhenFull::Refuse));
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                for n in 0..50 {
                    let keys = delivery(&format!("r{task}-{n}"));
                    let token = ClaimToken::random().expect("randomness");
                    if store.claim(&keys, token, LEASE).await.is_ok() {
                        assert!(store.complete(&keys, token, LEASE).await.expect("store"));
                        accepted.push(keys);
                    }
                }
                accepted
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for task in tasks {
        accepted.extend(task.await.expect("task"));
    }
    assert_eq!(accepted.len(), 100, "200 keys hold 100 deliveries");
    assert_eq!(store.evictions(), 0);
    for keys in accepted {
        let token = ClaimToken::random().expect("randomness");
        assert_eq!(
            store.claim(&keys, token, LEASE).await.expect("store"),
            Claim::Completed
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_receivers_on_one_store_handle_each_delivery_once() {
    let store = Arc::new(MemoryStore::new(capacity(10_000)));
    let clock =
        Arc::new(hookverify::ManualClock::from_unix(replicas::START_UNIX).expect("in range"));
    replicas::each_delivery_handled_once(Arc::clone(&store), store, clock).await;
}

#[tokio::test]
async fn rotation_across_replicas_is_one_message() {
    let store = Arc::new(MemoryStore::new(capacity(10_000)));
    replicas::rotation_across_replicas_is_one_message(Arc::clone(&store), store).await;
}
