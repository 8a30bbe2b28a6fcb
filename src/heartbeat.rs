//! Renewing the claims of handlers that run long, so that a slow handler never loses its
//! delivery to the provider's retry.
//!
//! One task per receiver beats every sixth of a lease and renews each claim at the second beat
//! after it was made or renewed, so at most a third of a lease later; a renewal that fails is
//! tried again at the next beat, half-way through the lease. A request that finishes sooner
//! only adds and removes an entry in a map: no timer and no task of its own.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::store::{ClaimToken, DeliveryKeys, DeliveryStore};

/// Beats per lease: a claim is renewed every second beat (a third of a lease), which leaves
/// four tries, one a beat, before its lease ends.
const BEATS_PER_LEASE: u32 = 6;

/// The live claims of one receiver, and the task that renews them.
pub(crate) struct Heartbeat<S> {
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    store: Arc<S>,
    lease: Duration,
    store_timeout: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next: u64,
    live: HashMap<u64, Live>,
    task: Option<JoinHandle<()>>,
    /// The last beat, or when the task started.
    last_beat: Option<Instant>,
}

struct Live {
    keys: Arc<DeliveryKeys>,
    token: ClaimToken,
    /// The beat that last renewed the claim or, for a fresh claim, the last beat before it
    /// was made.
    renewed: Instant,
}

/// A claim on the heartbeat's list; dropping it takes the claim off.
pub(crate) struct Registration<S> {
    shared: Arc<Shared<S>>,
    id: u64,
}

impl<S: DeliveryStore> Heartbeat<S> {
    pub(crate) fn new(store: Arc<S>, lease: Duration, store_timeout: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                lease,
                store_timeout,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Puts a fresh claim on the list, starting the task on the current runtime if none runs
    /// there (outside a runtime nothing renews it, and the lease bounds it as before).
    pub(crate) fn register(&self, keys: Arc<DeliveryKeys>, token: ClaimToken) -> Registration<S> {
        let mut state = self.shared.lock();
        let id = state.next;
        state.next = state.next.wrapping_add(1);
        let running = state.task.as_ref().is_some_and(|task| !task.is_finished());
        if !running && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&self.shared);
            let period = self.shared.lease / BEATS_PER_LEASE;
            state.task = Some(runtime.spawn(beat(weak, period)));
            state.last_beat = Some(Instant::now());
        }
        // Dated from the last beat, a fresh claim comes due at the second beat after that one:
        // within a third of a lease of being made, never a beat later.
        let renewed = state.last_beat.unwrap_or_else(Instant::now);
        state.live.insert(
            id,
            Live {
                keys,
                token,
                renewed,
            },
        );
        drop(state);
        Registration {
            shared: Arc::clone(&self.shared),
            id,
        }
    }
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Each update is a single insert or remove: a panic cannot leave the map half-written.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<S> Drop for Registration<S> {
    fn drop(&mut self) {
        self.shared.lock().live.remove(&self.id);
    }
}

/// Every `period`, renews each claim last renewed two beats ago or more, each in a task of its
/// own so that one slow answer does not delay the others. A renewal still waiting on the store
/// at the next beat is tried again beside it: the store timeout may be longer than a beat.
async fn beat<S: DeliveryStore>(shared: Weak<Shared<S>>, period: Duration) {
    // Half a beat short of two, so that a timer firing a little early or late never pushes a
    // claim to the third beat (nor pulls it to the first).
    let due_after = period * 3 / 2;
    loop {
        tokio::time::sleep(period).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let now = Instant::now();
        let mut state = shared.lock();
        state.last_beat = Some(now);
        let due: Vec<(u64, Arc<DeliveryKeys>, ClaimToken)> = state
            .live
            .iter()
            .filter(|(_, live)| now.duration_since(live.renewed) >= due_after)
            .map(|(id, live)| (*id, Arc::clone(&live.keys), live.token))
            .collect();
        drop(state);
        for (id, keys, token) in due {
            tokio::spawn(renew(Arc::clone(&shared), id, keys, token, now));
        }
    }
}

async fn renew<S: DeliveryStore>(
    shared: Arc<Shared<S>>,
    id: u64,
    keys: Arc<DeliveryKeys>,
    token: ClaimToken,
    at: Instant,
) {
    let call = shared.store.renew(&keys, token, shared.lease);
    match tokio::time::timeout(shared.store_timeout, call).await {
        Ok(Ok(true)) => {
            if let Some(live) = shared.lock().live.get_mut(&id) {
                // An earlier try answering late must not date the claim back.
                live.renewed = live.renewed.max(at);
            }
        }
        Ok(Ok(false)) => {
            // Only if the handler is still running: a claim settled meanwhile is not lost.
            if shared.lock().live.remove(&id).is_some() {
                tracing::error!(
                    target: "hookverify",
                    delivery_id = keys.delivery_id(),
                    "claim lost while the handler runs (the store forgot it or another attempt \
                     took it over): the delivery may be handled twice"
                );
            }
        }
        Ok(Err(error)) => {
            tracing::warn!(
                target: "hookverify",
                delivery_id = keys.delivery_id(),
                %error,
                "could not renew the claim; trying again next beat"
            );
        }
        Err(_) => {
            tracing::warn!(
                target: "hookverify",
                delivery_id = keys.delivery_id(),
                "the store did not answer the renewal in time; trying again next beat"
            );
        }
    }
}

impl<S> fmt::Debug for Registration<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("id", &self.id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::future::{Future, ready};

    use super::*;
    use crate::store::{Claim, Namespace, StoreError};

    const LEASE: Duration = Duration::from_secs(30);

    /// Records when each delivery's renewals were tried; the first try of each fails, as a
    /// store hiccup would.
    #[derive(Default)]
    struct HiccupStore {
        tries: Mutex<HashMap<String, Vec<Instant>>>,
    }

    impl DeliveryStore for HiccupStore {
        fn claim(
            &self,
            _: &DeliveryKeys,
            _: ClaimToken,
            _: Duration,
        ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
            ready(Err(StoreError::new("the heartbeat never claims")))
        }

        fn renew(
            &self,
            keys: &DeliveryKeys,
            _: ClaimToken,
            _: Duration,
        ) -> impl Future<Output = Result<bool, StoreError>> + Send {
            let mut tries = self.tries.lock().expect("not poisoned");
            let id = keys.delivery_id().expect("test keys have an id").to_owned();
            let tries = tries.entry(id).or_default();
            tries.push(Instant::now());
            if tries.len() == 1 {
                ready(Err(StoreError::new("hiccup")))
            } else {
                ready(Ok(true))
            }
        }

        fn complete(
            &self,
            _: &DeliveryKeys,
            _: ClaimToken,
            _: Duration,
        ) -> impl Future<Output = Result<bool, StoreError>> + Send {
            ready(Err(StoreError::new("the heartbeat never completes")))
        }

        fn release(
            &self,
            _: &DeliveryKeys,
            _: ClaimToken,
            _: Duration,
        ) -> impl Future<Output = Result<bool, StoreError>> + Send {
            ready(Err(StoreError::new("the heartbeat never releases")))
        }
    }

    /// Claims made at every phase of the heartbeat are each tried within a third of a lease,
    /// and, that try failing, tried again well before the lease ends; later renewals come a
    /// third of a lease apart at most.
    #[tokio::test(start_paused = true)]
    async fn every_claim_is_renewed_within_a_third_of_a_lease_and_a_failure_retried_in_time() {
        let store = Arc::new(HiccupStore::default());
        let heartbeat = Heartbeat::new(Arc::clone(&store), LEASE, Duration::from_secs(2));
        let start = Instant::now();
        let mut claims = Vec::new();
        for ms in 0..45_000u64 {
            // The first claim starts the heartbeat, so its beats fall on whole seconds; the
            // others come every 250 ms from 1 ms on (so 1 ms after some beats), across more
            // than a third of a lease.
            if ms == 0 || (ms % 250 == 1 && ms < 12_000) {
                let id = format!("d-{ms}");
                let keys = DeliveryKeys::id_only(&Namespace::default(), &id);
                let registration = heartbeat.register(Arc::new(keys), ClaimToken::new(ms));
                claims.push((id, Instant::now(), registration));
            }
            // Lets the heartbeat and its renewals run before the clock moves on.
            tokio::task::yield_now().await;
            tokio::time::advance(Duration::from_millis(1)).await;
        }

        let tries = store.tries.lock().expect("not poisoned");
        let mut first_worst = Duration::ZERO;
        let mut retry_worst = Duration::ZERO;
        let mut gap_worst = Duration::ZERO;
        for (id, claimed, _) in &claims {
            let at = tries.get(id).map(Vec::as_slice).unwrap_or_default();
            assert!(
                at.len() >= 2,
                "{id}, claimed at {:?}: tried at {at:?}",
                *claimed - start
            );
            first_worst = first_worst.max(at[0] - *claimed);
            // The first try failed: the claim still runs on the lease it was claimed with.
            retry_worst = retry_worst.max(at[1] - *claimed);
            for pair in at[1..].windows(2) {
                gap_worst = gap_worst.max(pair[1] - pair[0]);
            }
        }
        println!(
            "{} claims: first try at most {first_worst:?} after the claim, the retry at most \
             {retry_worst:?}, later renewals at most {gap_worst:?} apart",
            claims.len()
        );
        assert!(
            first_worst <= LEASE / 3,
            "first try {first_worst:?} after the claim"
        );
        assert!(
            retry_worst < LEASE * 2 / 3,
            "retry {retry_worst:?} after the claim"
        );
        assert!(gap_worst <= LEASE / 3, "renewals {gap_worst:?} apart");
    }
}
