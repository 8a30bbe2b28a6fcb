//! The memory store against the shared conformance suite, and its own bounds.
#![cfg(feature = "testing")]

use std::num::NonZeroUsize;
use std::sync::Arc;

use hookverify::store::{Claim, DedupeKey, Namespace};
use hookverify::{DeliveryId, DeliveryStore, ManualClock, MemoryStore};
use time::Duration;

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
                        assert!(
                            store
                                .complete(&key, token, Duration::seconds(600))
                                .await
                                .expect("store")
                        );
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
