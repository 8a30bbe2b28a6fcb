//! The memory store's warning when it starts forgetting deliveries inside their retention. Alone
//! in its test binary: `tracing` caches per call site whether anyone listens, and tests running
//! beside it without a subscriber would race that cache.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hookverify::store::{ClaimToken, DeliveryKeys, MessageDigest, Namespace};
use hookverify::{DeliveryStore, ManualClock, MemoryStore};

/// A writer the test subscriber appends to.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The moment eviction cuts into the retention, a warning names the window the store protects
/// at the observed rate and the capacity that rate needs; then at most one a minute.
#[test]
fn forgetting_early_is_warned_with_the_capacity_needed() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let clock = Arc::new(ManualClock::from_unix(1_764_000_000).expect("in range"));
    let store = MemoryStore::with_clock(
        NonZeroUsize::new(100).expect("non-zero"),
        Arc::clone(&clock),
    )
    .expect("capacity");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let claim = |n: u64| {
        let id = format!("dlv_{n}");
        let keys = DeliveryKeys::new(
            &Namespace::default(),
            Some(&id),
            &MessageDigest::of(&[id.as_bytes()]),
        );
        runtime
            .block_on(store.claim(&keys, ClaimToken::new(n + 1), Duration::from_secs(30)))
            .expect("answer");
    };
    tracing::subscriber::with_default(subscriber, || {
        // 50 deliveries (100 keys) over 10 s: 10 keys a second, the store just full.
        for n in 0..50 {
            claim(n);
            if n % 5 == 4 {
                clock.advance(time::Duration::seconds(1));
            }
        }
        assert_eq!(store.premature_evictions(), 0);
        // More deliveries evict live keys: warned once, not again within the minute.
        for n in 50..60 {
            claim(n);
        }
    });
    let text = String::from_utf8_lossy(&captured.0.lock().expect("lock")).into_owned();
    assert_eq!(text.matches("memory store full").count(), 1, "{text}");
    assert!(text.contains("keys_per_second=10"), "{text}");
    assert!(text.contains("protected_seconds=10"), "{text}");
    assert!(text.contains("capacity_needed="), "{text}");
    assert_eq!(store.premature_evictions(), 20);
}
