//! The memory store against the shared conformance suite, and its own bounds.
#![cfg(feature = "testing")]

use std::num::NonZeroUsize;
use std::sync::Arc;

use hookverify::store::{Claim, DedupeKey, Namespace};
use hookverify::{DeliveryId, DeliveryStore, ManualClock, MemoryStore};
use time::Duration;

const LEASE: Duration = Duration::seconds(30);

fn capacity(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("non-zero")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conforms() {
    hookverify::testing::run_conformance(|clock| async move {
        MemoryStore::with_clock(capacity(10_000), clock)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_use_never_exceeds_capacity() {
    let clock = Arc::new(ManualClock::from_unix(1_764_000_000).expect("in range"));
    let store = Arc::new(MemoryStore::with_clock(capacity(500), clock));
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for n in 0..200 {
                    let id = DeliveryId::parse(format!("t{task}-{n}").as_bytes()).expect("id");
                    let key = DedupeKey::delivery(&Namespace::default(), &id);
                    let Ok(Claim::Fresh(token)) = store.claim(&key, Duration::seconds(30)).await
                    else {
                        panic!("every id is new");
                    };
                    assert!(store.len() <= 500);
                    if n % 2 == 0 {
                        // `false` if the other tasks pushed the key out since the claim (a
                        // worker thread descheduled between the two calls): not an error.
                        store
                            .complete(&key, token, Duration::seconds(600))
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
    assert_eq!(store.len(), 500);
    assert_eq!(store.evictions(), 16 * 200 - 500);
    assert_eq!(store.premature_evictions(), store.evictions());
}

fn key(name: &str) -> DedupeKey {
    DedupeKey::delivery(
        &Namespace::default(),
        &DeliveryId::parse(name.as_bytes()).expect("id"),
    )
}

#[tokio::test]
async fn released_and_expired_entries_make_room_without_evicting() {
    let clock = Arc::new(ManualClock::from_unix(1_764_000_000).expect("in range"));
    let store = MemoryStore::with_clock(capacity(10), Arc::clone(&clock));
    let mut tokens = Vec::new();
    for n in 0..10 {
        let Ok(Claim::Fresh(token)) = store.claim(&key(&format!("a{n}")), LEASE).await else {
            panic!("a{n} is new");
        };
        tokens.push(token);
    }
    assert_eq!(store.len(), 10);

    // A release gives its slot back: new keys fill it without pushing anything out.
    for (n, token) in tokens.iter().enumerate().take(5) {
        assert!(
            store
                .release(&key(&format!("a{n}")), *token)
                .await
                .expect("store")
        );
    }
    assert_eq!(store.len(), 5);
    for n in 0..5 {
        let claim = store.claim(&key(&format!("b{n}")), LEASE).await;
        assert!(matches!(claim, Ok(Claim::Fresh(_))), "b{n} is new");
    }
    assert_eq!(store.len(), 10);
    assert_eq!(store.evictions(), 0);

    // An expired entry is reused in place when its key is claimed again: still no eviction.
    clock.advance(LEASE + Duration::seconds(1));
    for n in 5..10 {
        let claim = store.claim(&key(&format!("a{n}")), LEASE).await;
        assert!(matches!(claim, Ok(Claim::Fresh(_))), "a{n}'s lease ran out");
    }
    assert_eq!(store.len(), 10);
    assert_eq!(store.evictions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interleaved_claims_completions_and_releases_account_for_every_entry() {
    let clock = Arc::new(ManualClock::from_unix(1_764_000_000).expect("in range"));
    let store = Arc::new(MemoryStore::with_clock(capacity(300), clock));
    let tasks: Vec<_> = (0..16)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut released = 0_u64;
                for n in 0..200 {
                    let key = key(&format!("t{task}-{n}"));
                    let Ok(Claim::Fresh(token)) = store.claim(&key, LEASE).await else {
                        panic!("every id is new");
                    };
                    assert!(store.len() <= 300);
                    // Complete a third, release a third, leave a third in flight. A key
                    // evicted meanwhile can no longer be completed or released.
                    match n % 3 {
                        0 => {
                            store
                                .complete(&key, token, Duration::seconds(600))
                                .await
                                .expect("store");
                        }
                        1 => {
                            let freed = store.release(&key, token).await.expect("store");
                            released += u64::from(freed);
                        }
                        _ => {}
                    }
                    assert!(store.len() <= 300);
                    tokio::task::yield_now().await;
                }
                released
            })
        })
        .collect();
    let mut released = 0;
    for task in tasks {
        released += task.await.expect("task");
    }
    // Every fresh claim added one entry; each left by a release or an eviction, or is held.
    assert!(released > 0);
    assert_eq!(store.len() as u64 + store.evictions() + released, 16 * 200);
    assert!(store.len() <= 300);
}
