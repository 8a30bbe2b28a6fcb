//! The memory store against the shared conformance suite, and its own bounds.
#![cfg(feature = "testing")]

#[path = "common/replicas.rs"]
mod replicas;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use hookverify::store::memory::WhenFull;
use hookverify::store::{Claim, ClaimToken, DeliveryKeys, MessageDigest, Namespace};
use hookverify::{ConfigError, DeliveryStore, MemoryStore};

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
    hookverify::testing::run_conformance(|| async {
        MemoryStore::new(capacity(10_000)).expect("capacity")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_use_never_exceeds_capacity() {
    let store = Arc::new(MemoryStore::new(capacity(500)).expect("capacity"));
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
                        // If the other tasks pushed the keys out since the claim, nobody
                        // holds them: the completion writes them again.
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
    // Two keys per delivery, and a completion writes again the keys pushed out since its claim.
    assert_eq!(store.len(), 500);
    let written = 2 * 16 * 100..=2 * 16 * 100 + 2 * 16 * 50;
    assert!(
        written.contains(&(store.evictions() + 500)),
        "{} evictions",
        store.evictions()
    );
    assert_eq!(store.premature_evictions(), store.evictions());
}

/// Under the refusing policy a full store answers an error (the layer's 503) and never forgets
/// a delivery inside its retention, whatever the concurrency.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refusing_store_never_forgets_early() {
    let store = Arc::new(
        MemoryStore::new(capacity(200))
            .expect("capacity")
            .when_full(WhenFull::Refuse),
    );
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
    let store = Arc::new(MemoryStore::new(capacity(10_000)).expect("capacity"));
    let clock =
        Arc::new(hookverify::ManualClock::from_unix(replicas::START_UNIX).expect("in range"));
    replicas::each_delivery_handled_once(Arc::clone(&store), store, clock).await;
}

#[tokio::test]
async fn rotation_across_replicas_is_one_message() {
    let store = Arc::new(MemoryStore::new(capacity(10_000)).expect("capacity"));
    replicas::rotation_across_replicas_is_one_message(Arc::clone(&store), store).await;
}

/// A store with delivery `a` completed for 2 days and `b` for the default 630 s, then 700 s
/// later: `b`'s keys have expired behind `a`'s live ones in the LRU order, as with receivers of
/// different tolerances sharing one store.
async fn full_with_expired_keys_behind_a_live_one(
    policy: WhenFull,
) -> (MemoryStore, Arc<hookverify::ManualClock>) {
    let clock = Arc::new(hookverify::ManualClock::from_unix(1_764_000_000).expect("in range"));
    let store = MemoryStore::with_clock(capacity(4), Arc::clone(&clock))
        .expect("capacity")
        .when_full(policy);
    for (name, retain) in [("a", 2 * 86_400), ("b", 630)] {
        let token = ClaimToken::random().expect("randomness");
        let keys = delivery(name);
        let claim = store.claim(&keys, token, LEASE).await.expect("store");
        assert_eq!(claim, Claim::Fresh);
        let retain = Duration::from_secs(retain);
        assert!(store.complete(&keys, token, retain).await.expect("store"));
    }
    clock.advance(time::Duration::seconds(700));
    (store, clock)
}

/// A refusing store that is full takes a new delivery in place of expired keys, wherever they
/// sit, rather than answering 503 as if every key were live.
#[tokio::test]
async fn a_refusing_store_reclaims_expired_keys_behind_live_ones() {
    let (store, _clock) = full_with_expired_keys_behind_a_live_one(WhenFull::Refuse).await;
    let token = ClaimToken::random().expect("randomness");
    let claim = store.claim(&delivery("c"), token, LEASE).await;
    assert_eq!(claim.expect("room from expired keys"), Claim::Fresh);
    assert_eq!(store.evictions(), 2);
    assert_eq!(store.premature_evictions(), 0);
}

/// An evicting store that is full drops expired keys before a live one: the delivery still
/// inside its retention is still caught as a duplicate.
#[tokio::test]
async fn an_evicting_store_drops_expired_keys_before_live_ones() {
    let (store, _clock) = full_with_expired_keys_behind_a_live_one(WhenFull::EvictOldest).await;
    let token = ClaimToken::random().expect("randomness");
    let claim = store.claim(&delivery("c"), token, LEASE).await;
    assert_eq!(claim.expect("room from expired keys"), Claim::Fresh);
    let again = ClaimToken::random().expect("randomness");
    let claim = store
        .claim(&delivery("a"), again, LEASE)
        .await
        .expect("store");
    assert_eq!(claim, Claim::Completed, "a live delivery was forgotten");
    assert_eq!(store.premature_evictions(), 0);
}

/// A delivery whose keys expired comes again (the same id, re-signed) into a full store: its
/// own expired keys make its room, and no live key is pushed out, whichever of its two keys
/// expires first in the store's order.
#[tokio::test]
async fn a_returning_delivery_reuses_its_expired_keys_and_evicts_nothing_live() {
    for attempt in 0..8 {
        let clock = Arc::new(hookverify::ManualClock::from_unix(1_764_000_000).expect("in range"));
        let store = MemoryStore::with_clock(capacity(6), Arc::clone(&clock))
            .expect("capacity")
            .when_full(WhenFull::Refuse);
        // Another id each attempt: which of a delivery's two keys sorts first is a coin flip.
        let returning = format!("returning-{attempt}");
        for (name, retain) in [("live-1", 630), (returning.as_str(), 150), ("live-2", 630)] {
            let token = ClaimToken::random().expect("randomness");
            let keys = delivery(name);
            assert_eq!(
                store.claim(&keys, token, LEASE).await.expect("store"),
                Claim::Fresh
            );
            let retain = Duration::from_secs(retain);
            assert!(store.complete(&keys, token, retain).await.expect("store"));
        }
        assert_eq!(store.len(), 6);
        clock.advance(time::Duration::seconds(160));
        let resigned = DeliveryKeys::new(
            &Namespace::default(),
            Some(&returning),
            &MessageDigest::of(&[b"re-signed bytes"]),
        );
        let token = ClaimToken::random().expect("randomness");
        let claim = store.claim(&resigned, token, LEASE).await.expect("room");
        assert_eq!(claim, Claim::Fresh);
        for name in ["live-1", "live-2"] {
            let token = ClaimToken::random().expect("randomness");
            let claim = store.claim(&delivery(name), token, LEASE).await;
            assert_eq!(
                claim.expect("store"),
                Claim::Completed,
                "{name} was forgotten"
            );
        }
        assert_eq!(store.premature_evictions(), 0);
    }
}

/// One delivery takes two keys: a store of one key would push out a claim's id key with its
/// message key, so no delivery could be completed and each retry would be handled again. Such
/// a capacity is refused when the store is built; two keys remember a delivery.
#[tokio::test]
async fn a_capacity_below_one_delivery_is_refused() {
    let error = MemoryStore::new(capacity(1)).expect_err("one key holds no delivery");
    assert!(
        matches!(error, ConfigError::OutOfRange { setting, .. } if setting.contains("capacity")),
        "{error:?}"
    );
    assert!(error.to_string().contains("at least 2 keys"), "{error}");

    let store = MemoryStore::new(capacity(2)).expect("capacity");
    let (keys, token) = (delivery("a"), ClaimToken::random().expect("randomness"));
    let claim = store.claim(&keys, token, LEASE).await.expect("store");
    assert_eq!(claim, Claim::Fresh);
    assert!(store.complete(&keys, token, LEASE).await.expect("store"));
    let again = ClaimToken::random().expect("randomness");
    let claim = store.claim(&keys, again, LEASE).await.expect("store");
    assert_eq!(claim, Claim::Completed);
}
