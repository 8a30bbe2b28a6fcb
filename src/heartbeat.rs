//! Renewing the claims of handlers that run long, so that a slow handler never loses its
//! delivery to the provider's retry.
//!
//! One task per receiver walks the live claims every third of a lease and renews those that
//! have held that long. A request that finishes sooner only adds and removes an entry in a
//! map: no timer and no task of its own.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::store::{ClaimToken, DeliveryKeys, DeliveryStore};

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
}

struct Live {
    keys: Arc<DeliveryKeys>,
    token: ClaimToken,
    /// When the claim was made or last renewed.
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
        state.live.insert(
            id,
            Live {
                keys,
                token,
                renewed: Instant::now(),
            },
        );
        let running = state.task.as_ref().is_some_and(|task| !task.is_finished());
        if !running && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(&self.shared);
            state.task = Some(runtime.spawn(beat(weak, self.shared.lease / 3)));
        }
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

/// Every `period`, renews each claim that has held for a period, each in a task of its own so
/// that one slow answer does not delay the others.
async fn beat<S: DeliveryStore>(shared: Weak<Shared<S>>, period: Duration) {
    loop {
        tokio::time::sleep(period).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let now = Instant::now();
        let due: Vec<(u64, Arc<DeliveryKeys>, ClaimToken)> = shared
            .lock()
            .live
            .iter()
            .filter(|(_, live)| now.duration_since(live.renewed) >= period)
            .map(|(id, live)| (*id, Arc::clone(&live.keys), live.token))
            .collect();
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
                live.renewed = at;
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
