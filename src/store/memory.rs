//! The embedded store: a bounded LRU map in this process.

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use lru::LruCache;
use time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::store::{Claim, ClaimToken, DedupeKey, DeliveryStore, StoreError, deadline, unix_ms};

/// Marks an entry as completed rather than held by a claim (tokens start at 1).
const COMPLETED: u64 = 0;

/// One remembered key: 16 bytes of key digest and 16 of state, beside the LRU's own links.
#[derive(Clone, Copy)]
struct Entry {
    /// The owner's token, or [`COMPLETED`].
    token: u64,
    /// Unix milliseconds at which the lease or the retention ends.
    until_ms: i64,
}

/// An in-process dedupe store, bounded to a number of entries.
///
/// Right for one receiver process. Receivers on several machines need a shared store (Redis,
/// PostgreSQL): this one cannot see the other machines' claims.
///
/// # Sizing
///
/// Each delivery takes two entries (its id and its MAC), held for the retention window
/// (default: twice the tolerance plus the lease, 630 s). So:
///
/// ```text
/// capacity ≥ 2 × peak deliveries per second × retention in seconds
/// ```
///
/// e.g. 50 deliveries/s with the defaults need 63,000 entries, about 5 MiB of heap (6 MiB
/// resident, with the allocator's own overhead). A full store takes 67 to 87 bytes of heap per
/// entry (135 to 174 per delivery), depending on where the capacity falls between powers of
/// two: the hash table is allocated for the whole capacity when the store is created, each
/// entry's 48-byte node when it is first used. See `BENCHMARKS.md` for the measurements.
///
/// When the store is full, the least recently used entry makes room, expired or not. Evicting
/// an entry that had not expired yet shrinks the guarantee: a retry or replay of that delivery
/// would be handled again. [`premature_evictions`](Self::premature_evictions) counts those;
/// if it grows, raise the capacity.
///
/// Expiry follows the injected [`Clock`]; nothing runs in the background.
pub struct MemoryStore {
    entries: Mutex<LruCache<[u8; 16], Entry>>,
    clock: Arc<dyn Clock>,
    next_token: AtomicU64,
    evictions: AtomicU64,
    premature_evictions: AtomicU64,
}

impl MemoryStore {
    /// A store for at most `capacity` entries, on the system clock.
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self::with_clock(capacity, SystemClock)
    }

    /// A store for at most `capacity` entries whose expiry follows `clock`.
    pub fn with_clock(capacity: NonZeroUsize, clock: impl Clock) -> Self {
        Self {
            entries: Mutex::new(LruCache::new(capacity)),
            clock: Arc::new(clock),
            next_token: AtomicU64::new(COMPLETED + 1),
            evictions: AtomicU64::new(0),
            premature_evictions: AtomicU64::new(0),
        }
    }

    /// Entries held now, including expired ones not yet reclaimed or evicted.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries the store holds.
    pub fn capacity(&self) -> NonZeroUsize {
        self.lock().cap()
    }

    /// Entries pushed out to make room, since the store was created.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Evictions of entries that had not expired yet: each one weakens dedupe for its delivery.
    pub fn premature_evictions(&self) -> u64 {
        self.premature_evictions.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<[u8; 16], Entry>> {
        // Every update below is a single assignment: a panic cannot leave an entry half-written.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> i64 {
        unix_ms(self.clock.unix_nanos())
    }

    fn claim_now(&self, key: &DedupeKey, lease: Duration) -> Claim {
        let now = self.now_ms();
        let until_ms = deadline(now, lease);
        let mut entries = self.lock();
        if let Some(entry) = entries.get_mut(key.digest()) {
            if entry.until_ms > now {
                return if entry.token == COMPLETED {
                    Claim::Completed
                } else {
                    Claim::InFlight
                };
            }
            let token = self.next_token.fetch_add(1, Ordering::Relaxed);
            *entry = Entry { token, until_ms };
            return Claim::Fresh(ClaimToken::new(token));
        }
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        if let Some((_, evicted)) = entries.push(*key.digest(), Entry { token, until_ms }) {
            self.evictions.fetch_add(1, Ordering::Relaxed);
            if evicted.until_ms > now {
                self.premature_evictions.fetch_add(1, Ordering::Relaxed);
            }
        }
        Claim::Fresh(ClaimToken::new(token))
    }

    fn complete_now(&self, key: &DedupeKey, token: ClaimToken, retain: Duration) -> bool {
        let until_ms = deadline(self.now_ms(), retain);
        let mut entries = self.lock();
        match entries.peek_mut(key.digest()) {
            Some(entry) if entry.token == token.get() && entry.token != COMPLETED => {
                *entry = Entry {
                    token: COMPLETED,
                    until_ms,
                };
                true
            }
            _ => false,
        }
    }

    fn release_now(&self, key: &DedupeKey, token: ClaimToken) -> bool {
        let mut entries = self.lock();
        match entries.peek(key.digest()) {
            Some(entry) if entry.token == token.get() && entry.token != COMPLETED => {
                entries.pop(key.digest());
                true
            }
            _ => false,
        }
    }
}

impl DeliveryStore for MemoryStore {
    async fn claim(&self, key: &DedupeKey, lease: Duration) -> Result<Claim, StoreError> {
        Ok(self.claim_now(key, lease))
    }

    async fn complete(
        &self,
        key: &DedupeKey,
        token: ClaimToken,
        retain: Duration,
    ) -> Result<bool, StoreError> {
        Ok(self.complete_now(key, token, retain))
    }

    async fn release(&self, key: &DedupeKey, token: ClaimToken) -> Result<bool, StoreError> {
        Ok(self.release_now(key, token))
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("evictions", &self.evictions())
            .field("premature_evictions", &self.premature_evictions())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::Namespace;

    fn key(n: usize) -> DedupeKey {
        let id = crate::DeliveryId::parse(format!("dlv_{n}").as_bytes()).expect("valid id");
        DedupeKey::delivery(&Namespace::default(), &id)
    }

    fn store(capacity: usize) -> (MemoryStore, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::from_unix(1_764_000_000).expect("in range"));
        let capacity = NonZeroUsize::new(capacity).expect("non-zero");
        (MemoryStore::with_clock(capacity, Arc::clone(&clock)), clock)
    }

    #[test]
    fn capacity_is_never_exceeded_and_evictions_are_counted() {
        let (store, _clock) = store(100);
        for n in 0..250 {
            assert!(matches!(
                store.claim_now(&key(n), Duration::seconds(30)),
                Claim::Fresh(_)
            ));
            assert!(store.len() <= 100);
        }
        assert_eq!(store.len(), 100);
        assert_eq!(store.evictions(), 150);
        // All of them were live claims: every eviction was premature.
        assert_eq!(store.premature_evictions(), 150);
        // The oldest keys are gone, the newest are still held.
        assert!(matches!(
            store.claim_now(&key(0), Duration::seconds(30)),
            Claim::Fresh(_)
        ));
        assert_eq!(
            store.claim_now(&key(249), Duration::seconds(30)),
            Claim::InFlight
        );
    }

    #[test]
    fn evicting_expired_entries_is_not_premature() {
        let (store, clock) = store(10);
        for n in 0..10 {
            store.claim_now(&key(n), Duration::seconds(1));
        }
        clock.advance(Duration::seconds(2));
        for n in 10..20 {
            store.claim_now(&key(n), Duration::seconds(1));
        }
        assert_eq!(store.evictions(), 10);
        assert_eq!(store.premature_evictions(), 0);
    }
}
