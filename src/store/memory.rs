//! The embedded store: a bounded LRU map in this process.

use std::collections::BTreeSet;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use lru::LruCache;

use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::store::{Claim, ClaimToken, DedupeKey, DeliveryKeys, DeliveryStore, StoreError, millis};

/// The default capacity: 500,000 keys (250,000 deliveries with an id), at most about 73 MB
/// with delivery ids of 14 characters (the id's length more per delivery).
pub const DEFAULT_CAPACITY: NonZeroUsize = match NonZeroUsize::new(500_000) {
    Some(capacity) => capacity,
    None => NonZeroUsize::MIN,
};

/// The smallest capacity: the keys one delivery takes (its id's and its message's). With less,
/// a claim's second key would push out its first, and no delivery could ever be completed.
pub const MIN_CAPACITY: NonZeroUsize = match NonZeroUsize::new(2) {
    Some(capacity) => capacity,
    None => NonZeroUsize::MIN,
};

/// How often, at most, the store warns that it is forgetting deliveries early.
const WARN_EVERY_MS: i64 = 60_000;

/// What a full store does with a claim that needs a new entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WhenFull {
    /// Once no entry has expired, evict the least recently used one (the default). The
    /// provider's retries come within seconds and are still caught; what is lost is the memory
    /// of old deliveries, so a replay of one would be handled again. Counted and logged.
    #[default]
    EvictOldest,
    /// Refuse the claim with a [`StoreError`] (HTTP 503: the provider retries) rather than
    /// forget a delivery whose retention has not ended. Expired entries still make room.
    Refuse,
}

/// One remembered key: 16 bytes of key digest and 32 of state, beside the LRU's own links and
/// the key's place in the expiry index.
#[derive(Clone)]
struct Entry {
    /// The owner's token, kept once completed so that a repeated completion is recognised.
    token: u64,
    /// Unix milliseconds (on the store's clock) at which the lease or the retention ends.
    until_ms: i64,
    status: Status,
}

/// Held, or settled (completed or released) by a delivery id. `Held` takes the pointer's null
/// niche, so the state costs one fat pointer: no separate flag.
#[derive(Clone)]
enum Status {
    Held,
    /// Completed: the delivery id that completed the key (on a message key, the delivery's own
    /// copy of its id; an empty text, which allocates nothing, on an id key, whose text is the
    /// id, and for a delivery without one). A copy rather than a share of the request's text: a
    /// shared one would keep a reference count beside it for as long as it is remembered.
    ///
    /// Or released: a message key whose attempt failed, kept as [`RELEASED`] followed by the
    /// delivery id it was claimed under. Released keys are few (failed attempts), so they pay a
    /// byte of text rather than every entry a tag for a third variant.
    Settled(Box<str>),
}

/// What starts a released key's text: no delivery id does (ids are visible ASCII).
const RELEASED: char = '\0';

const _: () = assert!(size_of::<Entry>() == 32, "an entry's size is in the docs");

impl Entry {
    fn held(token: u64, until_ms: i64) -> Self {
        Self {
            token,
            until_ms,
            status: Status::Held,
        }
    }

    fn completed_by(token: u64, until_ms: i64, delivery_id: Box<str>) -> Self {
        Self {
            token,
            until_ms,
            status: Status::Settled(delivery_id),
        }
    }

    /// A message key released by an attempt under `delivery_id`: no token holds it.
    fn released_by(until_ms: i64, delivery_id: &str) -> Self {
        let mut text = String::with_capacity(1 + delivery_id.len());
        text.push(RELEASED);
        text.push_str(delivery_id);
        Self {
            token: 0,
            until_ms,
            status: Status::Settled(text.into()),
        }
    }

    fn is_held(&self) -> bool {
        matches!(self.status, Status::Held)
    }

    fn is_completed(&self) -> bool {
        matches!(&self.status, Status::Settled(text) if !text.starts_with(RELEASED))
    }

    /// The delivery id whose attempt released the key, if it was released.
    fn releasing_id(&self) -> Option<&str> {
        match &self.status {
            Status::Settled(text) => text.strip_prefix(RELEASED),
            Status::Held => None,
        }
    }

    fn live(&self, now: i64) -> bool {
        self.until_ms > now
    }

    /// Held by another token, unexpired.
    fn held_by_other(&self, now: i64, token: u64) -> bool {
        self.live(now) && self.is_held() && self.token != token
    }

    fn completed(&self, now: i64) -> bool {
        self.live(now) && self.is_completed()
    }

    fn held_by(&self, now: i64, token: u64) -> bool {
        self.live(now) && self.is_held() && self.token == token
    }

    /// Held or completed by another token, unexpired: a key a completion must not take.
    fn taken_from(&self, now: i64, token: u64) -> bool {
        self.live(now) && self.releasing_id().is_none() && self.token != token
    }

    /// Released, unexpired, by an attempt under another delivery id than `delivery_id`.
    fn released_by_other(&self, now: i64, delivery_id: Option<&str>) -> Option<&str> {
        let by = self.releasing_id().filter(|_| self.live(now))?;
        (Some(by) != delivery_id).then_some(by)
    }

    /// The delivery id that completed the key, if it was completed under one.
    fn completing_id(&self) -> Option<Arc<str>> {
        match &self.status {
            Status::Settled(id) if !id.is_empty() && !id.starts_with(RELEASED) => {
                Some(Arc::from(&**id))
            }
            _ => None,
        }
    }
}

/// An in-process dedupe store, bounded to a number of keys.
///
/// Right for one receiver process. Receivers on several machines need a shared store (Redis,
/// PostgreSQL): this one cannot see the other machines' claims.
///
/// # Sizing
///
/// A delivery with an id takes two keys (its id and its message key), held for the retention
/// (default: twice the tolerance plus the lease, 630 s); a failed attempt keeps its message key
/// (released, for the retention) and frees its id. So:
///
/// ```text
/// capacity ≥ 2 × peak deliveries per second × retention in seconds
/// ```
///
/// Each key takes 122 to 142 bytes of heap when the store is full (the LRU's 64-byte node, its
/// share of the hash table, which is sized for the whole capacity up front but only touched as
/// keys arrive, and about 39 bytes in the expiry index), and the message key keeps a copy of
/// the delivery id that completed it (for the replay's log line): so 245 to 284 bytes per
/// remembered delivery, plus its id's length (`examples/store_memory.rs` counts them: 259 to
/// 298 with ids of 14 characters). The default capacity ([`DEFAULT_CAPACITY`], 500,000 keys,
/// at most about 73 MB with such ids) covers 630 s of retention at about 400 deliveries per
/// second.
///
/// # When full
///
/// Expired keys make room first, wherever they are in the LRU order: an index by expiry finds
/// them (a lookup and a removal in a B-tree, at most two per claim). Only when none has
/// expired does [`WhenFull`] decide: evict the least recently used key (the default), or
/// refuse the claim. Each eviction of a key that had not expired is counted
/// ([`premature_evictions`](Self::premature_evictions)) and, at most once a minute, logged at
/// `warn` with the window the store actually protects at the observed rate and the capacity
/// that rate needs.
///
/// Expiry follows the store's [`Clock`] (the system clock unless given another); nothing runs
/// in the background.
pub struct MemoryStore {
    state: Mutex<State>,
    clock: Arc<dyn Clock>,
    when_full: WhenFull,
    evictions: AtomicU64,
    premature_evictions: AtomicU64,
}

struct State {
    entries: Table,
    /// Keys claimed since `since_ms`, for the rate in the warning.
    claimed: u64,
    since_ms: i64,
    last_warning_ms: Option<i64>,
}

/// The entries in LRU order, and the same keys ordered by expiry, so that a full store finds
/// an expired key wherever it sits in the LRU order without walking the list. Every change
/// goes through here, which keeps the two in step.
struct Table {
    entries: LruCache<[u8; 16], Entry>,
    by_expiry: BTreeSet<(i64, [u8; 16])>,
}

impl Table {
    fn new(capacity: NonZeroUsize) -> Self {
        Self {
            entries: LruCache::new(capacity),
            by_expiry: BTreeSet::new(),
        }
    }

    fn peek(&self, key: &[u8; 16]) -> Option<&Entry> {
        self.entries.peek(key)
    }

    fn contains(&self, key: &[u8; 16]) -> bool {
        self.entries.contains(key)
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn cap(&self) -> NonZeroUsize {
        self.entries.cap()
    }

    /// Sets `key`'s entry, as the most recently used.
    fn put(&mut self, key: [u8; 16], entry: Entry) {
        let until_ms = entry.until_ms;
        // `push` hands back the key's old entry, or the one it pushed out if the table was full.
        if let Some((old_key, old)) = self.entries.push(key, entry) {
            self.by_expiry.remove(&(old.until_ms, old_key));
        }
        self.by_expiry.insert((until_ms, key));
    }

    fn remove(&mut self, key: &[u8; 16]) -> Option<Entry> {
        let entry = self.entries.pop(key)?;
        self.by_expiry.remove(&(entry.until_ms, *key));
        Some(entry)
    }

    fn pop_lru(&mut self) -> Option<Entry> {
        let (key, entry) = self.entries.pop_lru()?;
        self.by_expiry.remove(&(entry.until_ms, key));
        Some(entry)
    }

    /// Removes the entry that expires first, if it has expired by `now`.
    fn pop_expired(&mut self, now: i64) -> Option<Entry> {
        let &(until_ms, key) = self.by_expiry.first()?;
        if until_ms > now {
            return None;
        }
        self.remove(&key)
    }
}

impl MemoryStore {
    /// A store for at most `capacity` keys, on the system clock, evicting the oldest when full.
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] if `capacity` is below [`MIN_CAPACITY`], the keys of one
    /// delivery.
    pub fn new(capacity: NonZeroUsize) -> Result<Self, ConfigError> {
        Self::with_clock(capacity, SystemClock)
    }

    /// A store for at most `capacity` keys whose expiry follows `clock`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::OutOfRange`] if `capacity` is below [`MIN_CAPACITY`], the keys of one
    /// delivery.
    pub fn with_clock(capacity: NonZeroUsize, clock: impl Clock) -> Result<Self, ConfigError> {
        if capacity < MIN_CAPACITY {
            return Err(ConfigError::OutOfRange {
                setting: "memory store capacity",
                allowed: format!(
                    "at least {MIN_CAPACITY} keys, the two of one delivery (its id and its message)"
                ),
            });
        }
        let now = crate::clock::unix_ms(clock.unix_nanos());
        Ok(Self {
            state: Mutex::new(State {
                entries: Table::new(capacity),
                claimed: 0,
                since_ms: now,
                last_warning_ms: None,
            }),
            clock: Arc::new(clock),
            when_full: WhenFull::default(),
            evictions: AtomicU64::new(0),
            premature_evictions: AtomicU64::new(0),
        })
    }

    /// What to do when the store is full (default [`WhenFull::EvictOldest`]).
    #[must_use]
    pub fn when_full(mut self, policy: WhenFull) -> Self {
        self.when_full = policy;
        self
    }

    /// Keys held now, including expired ones not yet reclaimed or evicted.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most keys the store holds.
    pub fn capacity(&self) -> NonZeroUsize {
        self.lock().entries.cap()
    }

    /// Keys pushed out to make room, since the store was created.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Evictions of keys that had not expired yet: each one weakens dedupe for its delivery.
    pub fn premature_evictions(&self) -> u64 {
        self.premature_evictions.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update below is a single assignment: a panic cannot leave an entry half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> i64 {
        crate::clock::unix_ms(self.clock.unix_nanos())
    }

    fn claim_now(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let now = self.now_ms();
        let token = token.get();
        let mut state = self.lock();
        if let Some(id) = keys.id() {
            match state.entries.peek(id.digest()) {
                Some(entry) if entry.completed(now) => return Ok(Claim::Completed),
                Some(entry) if entry.held_by_other(now, token) => return Ok(Claim::InFlight),
                _ => {}
            }
        }
        if let Some(message) = keys.message() {
            match state.entries.peek(message.digest()) {
                Some(entry) if entry.held_by_other(now, token) => return Ok(Claim::InFlight),
                Some(entry) if entry.completed(now) => {
                    return Ok(Claim::Replay {
                        completed_by: entry.completing_id(),
                    });
                }
                Some(entry) => {
                    // Released by a failed attempt under another id: once that id completed
                    // (its retry, signed again), these bytes are a copy; while that id is held,
                    // in flight; else free (the copy may be the genuine delivery).
                    if let Some(by) = entry.released_by_other(now, keys.delivery_id()) {
                        let owner = DeliveryKeys::id_only(keys.namespace(), by);
                        let owner = owner.id().and_then(|id| state.entries.peek(id.digest()));
                        if owner.is_some_and(|entry| entry.completed(now)) {
                            return Ok(Claim::Replay {
                                completed_by: Some(by.into()),
                            });
                        }
                        if owner.is_some_and(|entry| entry.held_by_other(now, token)) {
                            return Ok(Claim::InFlight);
                        }
                    }
                }
                None => {}
            }
        }
        // This delivery's own expired keys are free: gone first, so that making room can never
        // pick one of them and leave the other key's insertion to push out a live one.
        for key in keys.all() {
            if state
                .entries
                .peek(key.digest())
                .is_some_and(|entry| !entry.live(now))
            {
                state.entries.remove(key.digest());
            }
        }
        // Room for both keys next, so that a refusal changes nothing more.
        let new_keys = keys
            .all()
            .filter(|key| !state.entries.contains(key.digest()))
            .count();
        self.make_room(&mut state, now, new_keys)?;
        let entry = Entry::held(token, now.saturating_add(millis(lease)));
        for key in keys.all() {
            state.entries.put(*key.digest(), entry.clone());
        }
        state.claimed += new_keys as u64;
        Ok(Claim::Fresh)
    }

    /// Frees `needed` slots: expired keys first, then as the policy says.
    fn make_room(&self, state: &mut State, now: i64, needed: usize) -> Result<(), StoreError> {
        let capacity = state.entries.cap().get();
        for _ in 0..needed {
            if state.entries.len() + needed <= capacity {
                return Ok(());
            }
            if state.entries.pop_expired(now).is_some() {
                self.evictions.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // Nothing has expired: every key is within its lease or retention.
            if self.when_full == WhenFull::Refuse {
                return Err(StoreError::new(format!(
                    "memory store full: all {capacity} keys are within their lease or \
                     retention; raise the capacity"
                )));
            }
            if let Some(evicted) = state.entries.pop_lru() {
                self.evictions.fetch_add(1, Ordering::Relaxed);
                self.premature_evictions.fetch_add(1, Ordering::Relaxed);
                warn_forgetting(state, now, evicted.until_ms - now, capacity);
            }
        }
        Ok(())
    }

    fn renew_now(&self, keys: &DeliveryKeys, token: ClaimToken, lease: Duration) -> bool {
        let (now, token) = (self.now_ms(), token.get());
        self.settle(
            keys,
            |entry| entry.held_by(now, token),
            |_| Entry::held(token, now.saturating_add(millis(lease))),
        )
    }

    /// Completes every key unless another token holds or completed one: a key this token
    /// holds (even past its lease), or that nobody holds any more, is the delivery's to record.
    fn complete_now(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        retain: Duration,
    ) -> Result<bool, StoreError> {
        let (now, token) = (self.now_ms(), token.get());
        let until_ms = now.saturating_add(millis(retain));
        // Copied before the lock is taken; only the message key keeps it.
        let mut delivery_id = keys.message().and(keys.delivery_id()).map(Box::from);
        let mut state = self.lock();
        let taken = keys.all().any(|key| {
            (state.entries.peek(key.digest())).is_some_and(|entry| entry.taken_from(now, token))
        });
        if taken {
            return Ok(false);
        }
        // A key whose lease lapsed may have been reclaimed meanwhile: room for it first.
        let new_keys = keys
            .all()
            .filter(|key| !state.entries.contains(key.digest()))
            .count();
        self.make_room(&mut state, now, new_keys)?;
        for key in keys.all() {
            let id = match Some(key) == keys.message() {
                true => delivery_id.take(),
                false => None,
            };
            let entry = Entry::completed_by(token, until_ms, id.unwrap_or_default());
            state.entries.put(*key.digest(), entry);
        }
        Ok(true)
    }

    /// If every key's entry passes `ours`, replaces each with `next(key)`.
    fn settle(
        &self,
        keys: &DeliveryKeys,
        ours: impl Fn(&Entry) -> bool,
        mut next: impl FnMut(&DedupeKey) -> Entry,
    ) -> bool {
        let mut state = self.lock();
        let all_ours = keys
            .all()
            .all(|key| state.entries.peek(key.digest()).is_some_and(&ours));
        if all_ours {
            for key in keys.all() {
                state.entries.put(*key.digest(), next(key));
            }
        }
        all_ours
    }

    /// Frees each key the token holds; a message key claimed under a delivery id is kept,
    /// released by that id, for `retain`.
    fn release_now(&self, keys: &DeliveryKeys, token: ClaimToken, retain: Duration) -> bool {
        let now = self.now_ms();
        let mut state = self.lock();
        let mut released = 0;
        for key in keys.all() {
            let ours = (state.entries.peek(key.digest()))
                .is_some_and(|entry| entry.is_held() && entry.token == token.get());
            if !ours {
                continue;
            }
            match keys.delivery_id().filter(|_| Some(key) == keys.message()) {
                Some(id) => {
                    let until_ms = now.saturating_add(millis(retain));
                    state
                        .entries
                        .put(*key.digest(), Entry::released_by(until_ms, id));
                }
                None => {
                    state.entries.remove(key.digest());
                }
            }
            released += 1;
        }
        released > 0
    }
}

/// Logs, at most once a minute, that a key was evicted `left_ms` before its expiry, with the
/// window the store protects at the observed rate and the capacity that rate needs.
fn warn_forgetting(state: &mut State, now: i64, left_ms: i64, capacity: usize) {
    if state
        .last_warning_ms
        .is_some_and(|last| now - last < WARN_EVERY_MS)
    {
        return;
    }
    let elapsed_s = ((now - state.since_ms).max(1) as f64) / 1000.0;
    let rate = state.claimed as f64 / elapsed_s;
    let protected_s = if rate > 0.0 {
        capacity as f64 / rate
    } else {
        f64::INFINITY
    };
    let needed = capacity as f64 + rate * (left_ms as f64 / 1000.0);
    tracing::warn!(
        target: "hookverify",
        keys_per_second = rate.round(),
        protected_seconds = protected_s.round(),
        evicted_seconds_early = left_ms / 1000,
        capacity,
        capacity_needed = needed.ceil(),
        "memory store full: forgetting deliveries before their retention ends; a replay of one \
         would be handled again. Raise the capacity, or refuse new claims when full"
    );
    state.last_warning_ms = Some(now);
    state.claimed = 0;
    state.since_ms = now;
}

impl DeliveryStore for MemoryStore {
    async fn claim(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        self.claim_now(keys, token, lease)
    }

    async fn renew(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        Ok(self.renew_now(keys, token, lease))
    }

    async fn complete(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        retain: Duration,
    ) -> Result<bool, StoreError> {
        self.complete_now(keys, token, retain)
    }

    async fn release(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        retain: Duration,
    ) -> Result<bool, StoreError> {
        Ok(self.release_now(keys, token, retain))
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("when_full", &self.when_full)
            .field("evictions", &self.evictions())
            .field("premature_evictions", &self.premature_evictions())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::{MessageDigest, Namespace};

    fn keys(n: usize) -> DeliveryKeys {
        let body = n.to_string();
        DeliveryKeys::new(
            &Namespace::default(),
            Some(&format!("dlv_{n}")),
            &MessageDigest::of(&[body.as_bytes()]),
        )
    }

    fn store(capacity: usize) -> (MemoryStore, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::from_unix(1_764_000_000).expect("in range"));
        let capacity = NonZeroUsize::new(capacity).expect("non-zero");
        let store = MemoryStore::with_clock(capacity, Arc::clone(&clock)).expect("capacity");
        (store, clock)
    }

    const LEASE: Duration = Duration::from_secs(30);

    fn claim(store: &MemoryStore, n: usize) -> Result<Claim, StoreError> {
        store.claim_now(&keys(n), ClaimToken::new(n as u64 + 1), LEASE)
    }

    #[test]
    fn capacity_is_never_exceeded_and_evictions_are_counted() {
        let (store, _clock) = store(100);
        for n in 0..125 {
            assert_eq!(claim(&store, n).expect("answer"), Claim::Fresh);
            assert!(store.len() <= 100);
        }
        assert_eq!(store.len(), 100);
        // Two keys per delivery: 250 keys for 100 slots.
        assert_eq!(store.evictions(), 150);
        assert_eq!(store.premature_evictions(), 150);
        // The oldest deliveries are gone, the newest are still held.
        assert_eq!(claim(&store, 0).expect("answer"), Claim::Fresh);
        let other = ClaimToken::new(999);
        assert_eq!(
            store.claim_now(&keys(124), other, LEASE).expect("answer"),
            Claim::InFlight
        );
    }

    #[test]
    fn evicting_expired_entries_is_not_premature() {
        let (store, clock) = store(10);
        for n in 0..5 {
            claim(&store, n).expect("answer");
        }
        clock.advance(time::Duration::seconds(31));
        for n in 5..10 {
            claim(&store, n).expect("answer");
        }
        assert_eq!(store.evictions(), 10);
        assert_eq!(store.premature_evictions(), 0);
    }

    /// Claims, renewals, completions, releases, reclaimed and evicted keys: the expiry index
    /// holds exactly the table's keys, at their expiries, after each.
    #[test]
    fn the_expiry_index_stays_in_step_with_the_table() {
        let (store, clock) = store(6);
        let in_step = |store: &MemoryStore| {
            let state = store.lock();
            let table = &state.entries;
            assert_eq!(table.by_expiry.len(), table.entries.len());
            for (key, entry) in table.entries.iter() {
                assert!(table.by_expiry.contains(&(entry.until_ms, *key)));
            }
        };
        let token = |n: usize| ClaimToken::new(n as u64 + 1);
        for n in 0..3 {
            claim(&store, n).expect("answer");
        }
        assert!(store.renew_now(&keys(0), token(0), LEASE * 2));
        assert!(
            store
                .complete_now(&keys(1), token(1), LEASE * 20)
                .expect("room")
        );
        assert!(store.release_now(&keys(2), token(2), LEASE));
        in_step(&store);
        clock.advance(time::Duration::seconds(61));
        // Delivery 2's released message key has expired and makes room for 3, delivery 0 for
        // 4; 5 evicts the live delivery 1.
        for n in 3..6 {
            claim(&store, n).expect("answer");
            in_step(&store);
        }
        assert_eq!(store.evictions(), 5);
        assert_eq!(store.premature_evictions(), 2);
    }

    #[test]
    fn a_full_refusing_store_changes_nothing() {
        let (store, clock) = store(4);
        let store = store.when_full(WhenFull::Refuse);
        for n in 0..2 {
            assert_eq!(claim(&store, n).expect("answer"), Claim::Fresh);
        }
        let error = claim(&store, 2).expect_err("full");
        assert!(error.to_string().contains("memory store full"), "{error}");
        assert_eq!(store.len(), 4);
        assert_eq!(store.evictions(), 0);
        // Once the leases end, expired keys make room again.
        clock.advance(time::Duration::seconds(31));
        assert_eq!(claim(&store, 2).expect("answer"), Claim::Fresh);
        assert_eq!(store.premature_evictions(), 0);
    }
}
