//! The conformance suite every [`DeliveryStore`] runs: this crate's stores, and yours.
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread")]
//! async fn my_store_conforms() {
//!     hookverify::testing::run_conformance(|clock| async move { MyStore::new(clock) }).await;
//! }
//! ```
//!
//! Each case gets a fresh store built on a [`ManualClock`] that the case moves; the store must
//! judge expiry on that clock. Keys carry a random namespace, so stores backed by a shared
//! server need no cleanup between cases. A failing case panics with its name.

use std::future::Future;
use std::sync::Arc;

use time::Duration;

use crate::clock::ManualClock;
use crate::delivery::DeliveryId;
use crate::receiver::{Duplicate, Outcome, Receiver};
use crate::sign::Signer;
use crate::store::{Claim, ClaimToken, DedupeKey, DeliveryStore, Namespace};
use crate::verifier::Verifier;

/// Where every case's clock starts (2025-11-24T16:00:00Z).
pub const START_UNIX: i64 = 1_764_000_000;

const LEASE: Duration = Duration::seconds(30);
const SECRET: &str = "whsec_conformance";

/// A case: a name and what it runs against a fresh store and its clock.
type Case<S> = (
    &'static str,
    fn(Arc<S>, Arc<ManualClock>, Namespace) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
);

/// Runs every case, each on a store from `make_store`. Run it on a multi-threaded runtime, so
/// that the concurrency case really is concurrent.
pub async fn run_conformance<S, F, Fut>(make_store: F)
where
    S: DeliveryStore,
    F: Fn(Arc<ManualClock>) -> Fut,
    Fut: Future<Output = S>,
{
    let cases: [Case<S>; 10] = [
        ("claim_is_exclusive", |s, c, n| {
            Box::pin(claim_is_exclusive(s, c, n))
        }),
        ("concurrent_claims_have_one_winner", |s, c, n| {
            Box::pin(concurrent_claims_have_one_winner(s, c, n))
        }),
        ("released_claim_is_claimed_again", |s, c, n| {
            Box::pin(released_claim_is_claimed_again(s, c, n))
        }),
        ("completed_until_retention_ends", |s, c, n| {
            Box::pin(completed_until_retention_ends(s, c, n))
        }),
        ("expired_lease_is_claimable", |s, c, n| {
            Box::pin(expired_lease_is_claimable(s, c, n))
        }),
        ("stale_token_is_fenced", |s, c, n| {
            Box::pin(stale_token_is_fenced(s, c, n))
        }),
        ("keys_are_independent", |s, c, n| {
            Box::pin(keys_are_independent(s, c, n))
        }),
        ("mac_replay_under_new_id_is_duplicate", |s, c, n| {
            Box::pin(mac_replay_under_new_id_is_duplicate(s, c, n))
        }),
        ("released_delivery_is_handled_again", |s, c, n| {
            Box::pin(released_delivery_is_handled_again(s, c, n))
        }),
        ("dropped_guard_releases", |s, c, n| {
            Box::pin(dropped_guard_releases(s, c, n))
        }),
    ];
    for (name, case) in cases {
        let clock = Arc::new(ManualClock::from_unix(START_UNIX).unwrap_or_else(|| {
            panic!("conformance: the start time is out of range");
        }));
        let store = Arc::new(make_store(Arc::clone(&clock)).await);
        let run = tokio::spawn(case(store, clock, random_namespace(name)));
        if let Err(error) = run.await {
            panic!("conformance case `{name}` failed: {error}");
        }
    }
}

fn random_namespace(case: &str) -> Namespace {
    let token = ClaimToken::random().map_or(0, ClaimToken::get);
    let name = format!("conf-{}-{token:016x}", case.len());
    Namespace::new(&name).unwrap_or_default()
}

fn key(namespace: &Namespace, id: &str) -> DedupeKey {
    let id = DeliveryId::parse(id.as_bytes()).unwrap_or_else(|reason| panic!("bad id: {reason}"));
    DedupeKey::delivery(namespace, &id)
}

async fn claim<S: DeliveryStore>(store: &S, key: &DedupeKey, lease: Duration) -> Claim {
    match store.claim(key, lease).await {
        Ok(claim) => claim,
        Err(error) => panic!("claim failed: {error}"),
    }
}

async fn fresh<S: DeliveryStore>(store: &S, key: &DedupeKey) -> ClaimToken {
    match claim(store, key, LEASE).await {
        Claim::Fresh(token) => token,
        other => panic!("expected a fresh claim, got {other:?}"),
    }
}

async fn complete<S: DeliveryStore>(
    store: &S,
    key: &DedupeKey,
    token: ClaimToken,
    retain: Duration,
) -> bool {
    match store.complete(key, token, retain).await {
        Ok(done) => done,
        Err(error) => panic!("complete failed: {error}"),
    }
}

async fn release<S: DeliveryStore>(store: &S, key: &DedupeKey, token: ClaimToken) -> bool {
    match store.release(key, token).await {
        Ok(done) => done,
        Err(error) => panic!("release failed: {error}"),
    }
}

/// A second claim of a held key is in flight, not fresh.
pub async fn claim_is_exclusive<S: DeliveryStore>(
    store: Arc<S>,
    _clock: Arc<ManualClock>,
    ns: Namespace,
) {
    let key = key(&ns, "dlv_exclusive");
    fresh(&*store, &key).await;
    assert_eq!(claim(&*store, &key, LEASE).await, Claim::InFlight);
}

/// 64 tasks claiming one key at once: exactly one wins.
pub async fn concurrent_claims_have_one_winner<S: DeliveryStore>(
    store: Arc<S>,
    _clock: Arc<ManualClock>,
    ns: Namespace,
) {
    let key = Arc::new(key(&ns, "dlv_race"));
    let barrier = Arc::new(tokio::sync::Barrier::new(64));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (store, key, barrier) =
                (Arc::clone(&store), Arc::clone(&key), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                claim(&*store, &key, LEASE).await
            })
        })
        .collect();
    let mut fresh = 0;
    for task in tasks {
        match task.await {
            Ok(Claim::Fresh(_)) => fresh += 1,
            Ok(Claim::InFlight) => {}
            Ok(Claim::Completed) => panic!("nobody completed the key"),
            Err(error) => panic!("a claiming task failed: {error}"),
        }
    }
    assert_eq!(
        fresh, 1,
        "exactly one of 64 concurrent claims must be fresh"
    );
}

/// A released key is fresh again.
pub async fn released_claim_is_claimed_again<S: DeliveryStore>(
    store: Arc<S>,
    _clock: Arc<ManualClock>,
    ns: Namespace,
) {
    let key = key(&ns, "dlv_release");
    let token = fresh(&*store, &key).await;
    assert!(
        release(&*store, &key, token).await,
        "the owner's release must succeed"
    );
    fresh(&*store, &key).await;
}

/// A completed key answers completed until its retention ends, then fresh.
pub async fn completed_until_retention_ends<S: DeliveryStore>(
    store: Arc<S>,
    clock: Arc<ManualClock>,
    ns: Namespace,
) {
    let key = key(&ns, "dlv_complete");
    let token = fresh(&*store, &key).await;
    assert!(complete(&*store, &key, token, Duration::seconds(600)).await);
    assert_eq!(claim(&*store, &key, LEASE).await, Claim::Completed);
    clock.advance(Duration::seconds(599));
    assert_eq!(claim(&*store, &key, LEASE).await, Claim::Completed);
    // Completed keys cannot be released by their old owner.
    assert!(!release(&*store, &key, token).await);
    assert_eq!(claim(&*store, &key, LEASE).await, Claim::Completed);
    clock.advance(Duration::seconds(2));
    fresh(&*store, &key).await;
}

/// A claim whose lease ran out (its worker died) can be claimed again.
pub async fn expired_lease_is_claimable<S: DeliveryStore>(
    store: Arc<S>,
    clock: Arc<ManualClock>,
    ns: Namespace,
) {
    let key = key(&ns, "dlv_lease");
    fresh(&*store, &key).await;
    clock.advance(LEASE - Duration::seconds(1));
    assert_eq!(claim(&*store, &key, LEASE).await, Claim::InFlight);
    clock.advance(Duration::seconds(2));
    fresh(&*store, &key).await;
}

/// The owner of an expired lease can neither complete nor release the newer claim.
pub async fn stale_token_is_fenced<S: DeliveryStore>(
    store: Arc<S>,
    clock: Arc<ManualClock>,
    ns: Namespace,
) {
    let key = key(&ns, "dlv_fence");
    let stale = fresh(&*store, &key).await;
    clock.advance(LEASE + Duration::seconds(1));
    let current = fresh(&*store, &key).await;
    assert_ne!(stale, current, "a new claim needs a new token");
    assert!(!complete(&*store, &key, stale, Duration::seconds(600)).await);
    assert!(!release(&*store, &key, stale).await);
    assert_eq!(claim(&*store, &key, LEASE).await, Claim::InFlight);
    assert!(complete(&*store, &key, current, Duration::seconds(600)).await);
    assert_eq!(claim(&*store, &key, LEASE).await, Claim::Completed);
}

/// Claims on different ids, and on one id in different namespaces, do not interfere; tokens
/// of one key do nothing to another.
pub async fn keys_are_independent<S: DeliveryStore>(
    store: Arc<S>,
    _clock: Arc<ManualClock>,
    ns: Namespace,
) {
    let a = key(&ns, "dlv_a");
    let b = key(&ns, "dlv_b");
    let other_ns = Namespace::new(&format!("{}-other", ns.as_str())).unwrap_or_default();
    let a_elsewhere = key(&other_ns, "dlv_a");
    let token_a = fresh(&*store, &a).await;
    let token_b = fresh(&*store, &b).await;
    fresh(&*store, &a_elsewhere).await;
    assert!(!release(&*store, &a, token_b).await);
    assert!(!complete(&*store, &b, token_a, Duration::seconds(600)).await);
    assert_eq!(claim(&*store, &a, LEASE).await, Claim::InFlight);
    assert_eq!(claim(&*store, &b, LEASE).await, Claim::InFlight);
    let never = key(&ns, "dlv_never_claimed");
    assert!(!release(&*store, &never, token_a).await);
    assert!(!complete(&*store, &never, token_a, Duration::seconds(600)).await);
    fresh(&*store, &never).await;
}

fn receiver<S: DeliveryStore>(
    store: Arc<S>,
    clock: Arc<ManualClock>,
    ns: Namespace,
) -> Receiver<S> {
    let verifier = Verifier::builder()
        .secret("conformance", SECRET)
        .clock(clock)
        .build()
        .unwrap_or_else(|error| panic!("verifier: {error}"));
    Receiver::new(verifier, store).namespace(ns)
}

fn signed(clock: &Arc<ManualClock>, id: &str, body: &[u8]) -> http::HeaderMap {
    let signer = Signer::new(SECRET)
        .unwrap_or_else(|error| panic!("signer: {error}"))
        .clock(Arc::clone(clock));
    signer
        .sign(id, body)
        .header_map()
        .unwrap_or_else(|error| panic!("headers: {error}"))
}

async fn receive<S: DeliveryStore>(
    receiver: &Receiver<S>,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Outcome<S> {
    receiver
        .receive(headers, body)
        .await
        .unwrap_or_else(|error| panic!("receive failed: {error}"))
}

/// The same signed bytes under a fresh delivery id are a replay; the provider's re-signed
/// retry under the same id is a duplicate.
pub async fn mac_replay_under_new_id_is_duplicate<S: DeliveryStore>(
    store: Arc<S>,
    clock: Arc<ManualClock>,
    ns: Namespace,
) {
    let receiver = receiver(store, Arc::clone(&clock), ns);
    let body = br#"{"type":"run.finished"}"#;
    let original = signed(&clock, "dlv_original", body);
    let Outcome::Fresh(guard) = receive(&receiver, &original, body).await else {
        panic!("the first delivery must be fresh");
    };
    let in_flight_replay = with_id(&original, "dlv_forged_1");
    assert!(matches!(
        receive(&receiver, &in_flight_replay, body).await,
        Outcome::Duplicate(Duplicate::Replay)
    ));
    guard
        .complete()
        .await
        .unwrap_or_else(|error| panic!("complete: {error}"));

    let replay = with_id(&original, "dlv_forged_2");
    assert!(matches!(
        receive(&receiver, &replay, body).await,
        Outcome::Duplicate(Duplicate::Replay)
    ));
    clock.advance(Duration::seconds(5));
    let resigned = signed(&clock, "dlv_original", body);
    assert!(matches!(
        receive(&receiver, &resigned, body).await,
        Outcome::Duplicate(Duplicate::Completed)
    ));
    // A different delivery is still fresh.
    let other = signed(&clock, "dlv_other", b"{}");
    assert!(matches!(
        receive(&receiver, &other, b"{}").await,
        Outcome::Fresh(_)
    ));
}

fn with_id(headers: &http::HeaderMap, id: &'static str) -> http::HeaderMap {
    let mut headers = headers.clone();
    headers.insert("x-agent-delivery-id", http::HeaderValue::from_static(id));
    headers
}

/// A failed handler's release lets the provider's retry through, with no trace of the first
/// attempt (neither its id nor its MAC).
pub async fn released_delivery_is_handled_again<S: DeliveryStore>(
    store: Arc<S>,
    clock: Arc<ManualClock>,
    ns: Namespace,
) {
    let receiver = receiver(store, Arc::clone(&clock), ns);
    let body = b"retry me";
    let headers = signed(&clock, "dlv_retry", body);
    let Outcome::Fresh(guard) = receive(&receiver, &headers, body).await else {
        panic!("the first attempt must be fresh");
    };
    assert!(matches!(
        receive(&receiver, &headers, body).await,
        Outcome::Duplicate(Duplicate::InFlight)
    ));
    guard
        .release()
        .await
        .unwrap_or_else(|error| panic!("release: {error}"));
    clock.advance(Duration::seconds(1));
    let Outcome::Fresh(guard) = receive(&receiver, &headers, body).await else {
        panic!("the retry after a release must be fresh");
    };
    guard
        .complete()
        .await
        .unwrap_or_else(|error| panic!("complete: {error}"));
    assert!(matches!(
        receive(&receiver, &headers, body).await,
        Outcome::Duplicate(Duplicate::Completed)
    ));
}

/// A guard dropped without completing or releasing (a panic, a cancelled future) releases.
pub async fn dropped_guard_releases<S: DeliveryStore>(
    store: Arc<S>,
    clock: Arc<ManualClock>,
    ns: Namespace,
) {
    let receiver = receiver(store, Arc::clone(&clock), ns);
    let body = b"dropped";
    let headers = signed(&clock, "dlv_dropped", body);
    let outcome = receive(&receiver, &headers, body).await;
    assert!(matches!(outcome, Outcome::Fresh(_)));
    drop(outcome);
    // The release runs on a spawned task: give it turns, without waiting on real time.
    for _ in 0..10_000 {
        match receive(&receiver, &headers, body).await {
            Outcome::Fresh(_) => return,
            Outcome::Duplicate(Duplicate::InFlight) => tokio::task::yield_now().await,
            Outcome::Duplicate(other) => panic!("unexpected duplicate: {other:?}"),
        }
    }
    panic!("the dropped guard's claim was never released");
}
