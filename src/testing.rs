//! The conformance suite every [`DeliveryStore`] runs: this crate's stores, and yours.
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread")]
//! async fn my_store_conforms() {
//!     hookverify::testing::run_conformance(|| async { MyStore::connect(URL).await }).await;
//! }
//! ```
//!
//! Stores keep time on their own clock (a networked store on its server's), so the cases that
//! need a lease or a retention to end use short ones (a few hundred milliseconds) and wait for
//! real: the whole suite takes a few seconds. Keys carry a random namespace, so stores backed
//! by a shared server need no cleanup between cases. A failing case panics with its name.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::ManualClock;
use crate::method::Method;
use crate::receiver::{Duplicate, Outcome, Receiver};
use crate::sign::Signer;
use crate::store::{Claim, ClaimToken, DeliveryKeys, DeliveryStore, MessageDigest, Namespace};
use crate::verifier::Verifier;

/// Where the receivers' clock stands in the cases that sign deliveries (2025-11-24T16:00:00Z).
pub const START_UNIX: i64 = 1_764_000_000;

const LEASE: Duration = Duration::from_secs(30);
/// A lease or retention meant to end during a case.
const SHORT: Duration = Duration::from_millis(400);
/// Long enough past [`SHORT`] for any store's expiry to have happened.
const PAST_SHORT: Duration = Duration::from_millis(900);
const RETAIN: Duration = Duration::from_secs(600);
const SECRET: &str = "whsec_conformance";

type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type Case<S> = (&'static str, fn(Arc<S>, Namespace) -> CaseFuture);

/// Runs every case, each on a store from `make_store`. Run it on a multi-threaded runtime, so
/// that the concurrency cases really are concurrent.
pub async fn run_conformance<S, F, Fut>(make_store: F)
where
    S: DeliveryStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    let cases: [Case<S>; 22] = [
        ("claim_is_exclusive", |s, n| {
            Box::pin(claim_is_exclusive(s, n))
        }),
        ("either_key_in_flight_is_in_flight", |s, n| {
            Box::pin(either_key_in_flight_is_in_flight(s, n))
        }),
        ("concurrent_claims_have_one_winner", |s, n| {
            Box::pin(concurrent_claims_have_one_winner(s, n))
        }),
        ("claims_sharing_one_key_have_one_winner", |s, n| {
            Box::pin(claims_sharing_one_key_have_one_winner(s, n))
        }),
        ("claim_is_idempotent_for_its_token", |s, n| {
            Box::pin(claim_is_idempotent_for_its_token(s, n))
        }),
        ("orphan_is_released_with_its_token", |s, n| {
            Box::pin(orphan_is_released_with_its_token(s, n))
        }),
        ("completed_id_and_replayed_message", |s, n| {
            Box::pin(completed_id_and_replayed_message(s, n))
        }),
        ("replay_names_the_completing_id", |s, n| {
            Box::pin(replay_names_the_completing_id(s, n))
        }),
        ("retention_ends_on_the_store_clock", |s, n| {
            Box::pin(retention_ends_on_the_store_clock(s, n))
        }),
        ("expired_lease_is_claimable", |s, n| {
            Box::pin(expired_lease_is_claimable(s, n))
        }),
        ("renewal_keeps_the_claim", |s, n| {
            Box::pin(renewal_keeps_the_claim(s, n))
        }),
        ("stale_token_is_fenced", |s, n| {
            Box::pin(stale_token_is_fenced(s, n))
        }),
        ("lapsed_untaken_claim_still_completes", |s, n| {
            Box::pin(lapsed_untaken_claim_still_completes(s, n))
        }),
        ("keys_are_independent", |s, n| {
            Box::pin(keys_are_independent(s, n))
        }),
        ("message_only_deliveries", |s, n| {
            Box::pin(message_only_deliveries(s, n))
        }),
        ("id_only_deliveries", |s, n| {
            Box::pin(id_only_deliveries(s, n))
        }),
        ("replay_under_new_id_and_retry", |s, n| {
            Box::pin(replay_under_new_id_and_retry(s, n))
        }),
        ("methods_dedupe_on_their_own_keys", |s, n| {
            Box::pin(methods_dedupe_on_their_own_keys(s, n))
        }),
        ("released_delivery_is_handled_again", |s, n| {
            Box::pin(released_delivery_is_handled_again(s, n))
        }),
        ("released_message_is_kept_for_its_id", |s, n| {
            Box::pin(released_message_is_kept_for_its_id(s, n))
        }),
        ("replay_of_a_released_attempt_is_not_handled", |s, n| {
            Box::pin(replay_of_a_released_attempt_is_not_handled(s, n))
        }),
        ("dropped_guard_releases", |s, n| {
            Box::pin(dropped_guard_releases(s, n))
        }),
    ];
    for (name, case) in cases {
        let store = Arc::new(make_store().await);
        let run = tokio::spawn(case(store, random_namespace(name)));
        if let Err(error) = run.await {
            panic!("conformance case `{name}` failed: {error}");
        }
    }
}

fn random_namespace(case: &str) -> Namespace {
    let name = format!("conf-{}-{:016x}", case.len(), token().get());
    Namespace::new(&name).unwrap_or_default()
}

fn token() -> ClaimToken {
    ClaimToken::random().unwrap_or_else(|error| panic!("randomness: {error}"))
}

/// The keys of a delivery with id `id` (if any) whose signed bytes are `message`.
fn keys(ns: &Namespace, id: Option<&str>, message: &str) -> DeliveryKeys {
    DeliveryKeys::new(ns, id, &MessageDigest::of(&[message.as_bytes()]))
}

async fn claim<S: DeliveryStore>(
    store: &S,
    keys: &DeliveryKeys,
    token: ClaimToken,
    lease: Duration,
) -> Claim {
    store
        .claim(keys, token, lease)
        .await
        .unwrap_or_else(|error| panic!("claim failed: {error}"))
}

/// Claims with a new token; panics unless fresh.
async fn fresh<S: DeliveryStore>(store: &S, keys: &DeliveryKeys, lease: Duration) -> ClaimToken {
    let token = token();
    match claim(store, keys, token, lease).await {
        Claim::Fresh => token,
        other => panic!("expected a fresh claim, got {other:?}"),
    }
}

/// Claims with a new token and answers what came back.
async fn other<S: DeliveryStore>(store: &S, keys: &DeliveryKeys) -> Claim {
    claim(store, keys, token(), LEASE).await
}

async fn complete<S: DeliveryStore>(
    store: &S,
    keys: &DeliveryKeys,
    token: ClaimToken,
    retain: Duration,
) -> bool {
    store
        .complete(keys, token, retain)
        .await
        .unwrap_or_else(|error| panic!("complete failed: {error}"))
}

async fn renew<S: DeliveryStore>(
    store: &S,
    keys: &DeliveryKeys,
    token: ClaimToken,
    lease: Duration,
) -> bool {
    store
        .renew(keys, token, lease)
        .await
        .unwrap_or_else(|error| panic!("renew failed: {error}"))
}

async fn release<S: DeliveryStore>(store: &S, keys: &DeliveryKeys, token: ClaimToken) -> bool {
    release_for(store, keys, token, RETAIN).await
}

/// Releases, keeping a released message key for `retain`.
async fn release_for<S: DeliveryStore>(
    store: &S,
    keys: &DeliveryKeys,
    token: ClaimToken,
    retain: Duration,
) -> bool {
    store
        .release(keys, token, retain)
        .await
        .unwrap_or_else(|error| panic!("release failed: {error}"))
}

/// A second claim of a held delivery is in flight, not fresh.
pub async fn claim_is_exclusive<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let delivery = keys(&ns, Some("dlv_exclusive"), "m1");
    fresh(&*store, &delivery, LEASE).await;
    assert_eq!(other(&*store, &delivery).await, Claim::InFlight);
}

/// A held id makes a claim of a new message under it in flight, and a held message makes a
/// claim of it under a new id in flight (not a replay: the holder may still fail); neither
/// losing claim takes the other key.
pub async fn either_key_in_flight_is_in_flight<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let held = keys(&ns, Some("dlv_held"), "m_held");
    let holder = fresh(&*store, &held, LEASE).await;
    let same_id = keys(&ns, Some("dlv_held"), "m_resigned");
    let same_message = keys(&ns, Some("dlv_copy"), "m_held");
    assert_eq!(other(&*store, &same_id).await, Claim::InFlight);
    assert_eq!(other(&*store, &same_message).await, Claim::InFlight);
    // The losers took nothing: once the holder lets go, both their keys are free.
    assert!(release(&*store, &held, holder).await);
    fresh(&*store, &keys(&ns, Some("dlv_copy"), "m_resigned"), LEASE).await;
}

/// 64 tasks claiming one delivery at once, each with its own token: exactly one wins.
pub async fn concurrent_claims_have_one_winner<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let delivery = Arc::new(keys(&ns, Some("dlv_race"), "m_race"));
    let winners = race(&store, (0..64).map(|_| Arc::clone(&delivery)).collect()).await;
    assert_eq!(
        winners, 1,
        "exactly one of 64 concurrent claims must be fresh"
    );
}

/// Claims that share only the message key (a replay under fresh ids, racing the original):
/// exactly one wins, and no loser keeps its id.
pub async fn claims_sharing_one_key_have_one_winner<S: DeliveryStore>(
    store: Arc<S>,
    ns: Namespace,
) {
    let all: Vec<_> = (0..32)
        .map(|n| Arc::new(keys(&ns, Some(&format!("dlv_race_{n}")), "m_shared")))
        .collect();
    assert_eq!(race(&store, all).await, 1, "one message, one winner");
    // Every loser's id is free: a new message under it is fresh; only the winner's is held.
    let mut held = 0;
    for n in 0..32 {
        let id = format!("dlv_race_{n}");
        match other(&*store, &keys(&ns, Some(&id), &format!("m_new_{n}"))).await {
            Claim::Fresh => {}
            Claim::InFlight => held += 1,
            answer => panic!("unexpected {answer:?}"),
        }
    }
    assert_eq!(held, 1, "a losing claim kept its delivery id");
}

/// Claims each delivery in its own task, all at once; answers how many were fresh.
async fn race<S: DeliveryStore>(store: &Arc<S>, deliveries: Vec<Arc<DeliveryKeys>>) -> usize {
    let barrier = Arc::new(tokio::sync::Barrier::new(deliveries.len()));
    let tasks: Vec<_> = deliveries
        .into_iter()
        .map(|delivery| {
            let (store, barrier) = (Arc::clone(store), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                other(&*store, &delivery).await
            })
        })
        .collect();
    let mut fresh = 0;
    for task in tasks {
        match task.await {
            Ok(Claim::Fresh) => fresh += 1,
            Ok(Claim::InFlight) => {}
            Ok(answer) => panic!("nobody completed anything, yet {answer:?}"),
            Err(error) => panic!("a claiming task failed: {error}"),
        }
    }
    fresh
}

/// A claim retried with the same token (its first answer was lost) is fresh again, and is
/// still one claim: others see it in flight. The same holds for a repeated completion.
pub async fn claim_is_idempotent_for_its_token<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let delivery = keys(&ns, Some("dlv_again"), "m_again");
    let token = fresh(&*store, &delivery, LEASE).await;
    assert_eq!(claim(&*store, &delivery, token, LEASE).await, Claim::Fresh);
    assert_eq!(other(&*store, &delivery).await, Claim::InFlight);
    assert!(complete(&*store, &delivery, token, RETAIN).await);
    assert_eq!(
        claim(&*store, &delivery, token, LEASE).await,
        Claim::Completed
    );
    // A completion retried with its token (its first answer was lost) is recognised; another
    // token's is not.
    assert!(complete(&*store, &delivery, token, RETAIN).await);
    let stranger = ClaimToken::new(token.get() ^ 1);
    assert!(!complete(&*store, &delivery, stranger, RETAIN).await);
    assert_eq!(other(&*store, &delivery).await, Claim::Completed);
}

/// A claim whose caller gave up on the answer is taken back with the token it was written
/// with, so the provider's retry is fresh.
pub async fn orphan_is_released_with_its_token<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let delivery = keys(&ns, Some("dlv_orphan"), "m_orphan");
    let orphan = token();
    // The caller timed out, but the store wrote the claim.
    let _ = claim(&*store, &delivery, orphan, LEASE).await;
    assert!(release(&*store, &delivery, orphan).await);
    fresh(&*store, &delivery, LEASE).await;
    // Releasing a claim that never landed changes nothing.
    let never = keys(&ns, Some("dlv_never"), "m_never");
    assert!(!release(&*store, &never, token()).await);
    fresh(&*store, &never, LEASE).await;
}

/// A completed id is a duplicate whatever its message; a completed message under another id
/// is a replay; a completed delivery cannot be released.
pub async fn completed_id_and_replayed_message<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let delivery = keys(&ns, Some("dlv_done"), "m_done");
    let token = fresh(&*store, &delivery, LEASE).await;
    assert!(complete(&*store, &delivery, token, RETAIN).await);
    assert_eq!(other(&*store, &delivery).await, Claim::Completed);
    let resigned = keys(&ns, Some("dlv_done"), "m_resigned");
    assert_eq!(other(&*store, &resigned).await, Claim::Completed);
    let replay = keys(&ns, Some("dlv_fresh_id"), "m_done");
    assert_eq!(other(&*store, &replay).await, replay_of(Some("dlv_done")));
    assert!(!release(&*store, &delivery, token).await);
    assert!(!renew(&*store, &delivery, token, LEASE).await);
    assert_eq!(other(&*store, &delivery).await, Claim::Completed);
    // The replay's own id was not taken.
    fresh(&*store, &keys(&ns, Some("dlv_fresh_id"), "m_other"), LEASE).await;
}

/// The answer to a claim of a message completed under `id` (`None`: under no id).
fn replay_of(id: Option<&str>) -> Claim {
    Claim::Replay {
        completed_by: id.map(Into::into),
    }
}

/// A replay names the delivery id that completed the message, for the logs: the first id,
/// whatever ids the replays carry; the last owner's after a lapsed claim was taken over;
/// none for a message completed without an id (Stripe, Slack), even when a copy brings one.
pub async fn replay_names_the_completing_id<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let first = keys(&ns, Some("dlv_first"), "m_named");
    let token = fresh(&*store, &first, LEASE).await;
    assert!(complete(&*store, &first, token, RETAIN).await);
    for id in ["dlv_second", "dlv_third", "dlv_second"] {
        let replay = keys(&ns, Some(id), "m_named");
        assert_eq!(other(&*store, &replay).await, replay_of(Some("dlv_first")));
    }
    // A completion retried with its token keeps the id.
    assert!(complete(&*store, &first, token, RETAIN).await);
    let replay = keys(&ns, Some("dlv_fourth"), "m_named");
    assert_eq!(other(&*store, &replay).await, replay_of(Some("dlv_first")));

    // A claim that lapsed is taken over under another id: the completion is the new owner's.
    let lapsed = keys(&ns, Some("dlv_lapsed"), "m_taken_over");
    fresh(&*store, &lapsed, SHORT).await;
    tokio::time::sleep(PAST_SHORT).await;
    let taker = keys(&ns, Some("dlv_taker"), "m_taken_over");
    let token = fresh(&*store, &taker, LEASE).await;
    assert!(complete(&*store, &taker, token, RETAIN).await);
    let replay = keys(&ns, Some("dlv_late_copy"), "m_taken_over");
    assert_eq!(other(&*store, &replay).await, replay_of(Some("dlv_taker")));

    // Completed without an id: a replay names none, with or without an id of its own.
    let anonymous = keys(&ns, None, "m_named_anonymous");
    let token = fresh(&*store, &anonymous, LEASE).await;
    assert!(complete(&*store, &anonymous, token, RETAIN).await);
    assert_eq!(other(&*store, &anonymous).await, replay_of(None));
    let with_id = keys(&ns, Some("dlv_with_id"), "m_named_anonymous");
    assert_eq!(other(&*store, &with_id).await, replay_of(None));
    // The replays took nothing: their ids are free.
    for id in ["dlv_second", "dlv_late_copy", "dlv_with_id"] {
        fresh(
            &*store,
            &keys(&ns, Some(id), &format!("m_free_{id}")),
            LEASE,
        )
        .await;
    }
}

/// A completed delivery is remembered for its retention, measured on the store's clock.
pub async fn retention_ends_on_the_store_clock<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let delivery = keys(&ns, Some("dlv_retained"), "m_retained");
    let token = fresh(&*store, &delivery, LEASE).await;
    assert!(complete(&*store, &delivery, token, SHORT).await);
    assert_eq!(other(&*store, &delivery).await, Claim::Completed);
    tokio::time::sleep(PAST_SHORT).await;
    fresh(&*store, &delivery, LEASE).await;
}

/// A claim whose lease ran out (its process died) can be claimed again.
pub async fn expired_lease_is_claimable<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let delivery = keys(&ns, Some("dlv_lease"), "m_lease");
    fresh(&*store, &delivery, SHORT).await;
    assert_eq!(other(&*store, &delivery).await, Claim::InFlight);
    tokio::time::sleep(PAST_SHORT).await;
    fresh(&*store, &delivery, LEASE).await;
}

/// Renewing extends the lease from now; only the owner can renew.
pub async fn renewal_keeps_the_claim<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let delivery = keys(&ns, Some("dlv_renew"), "m_renew");
    let token = fresh(&*store, &delivery, SHORT).await;
    assert!(!renew(&*store, &delivery, ClaimToken::new(token.get() ^ 1), LEASE).await);
    assert!(renew(&*store, &delivery, token, LEASE).await);
    tokio::time::sleep(PAST_SHORT).await;
    assert_eq!(other(&*store, &delivery).await, Claim::InFlight);
    assert!(complete(&*store, &delivery, token, RETAIN).await);
    assert_eq!(other(&*store, &delivery).await, Claim::Completed);
}

/// The owner of an expired lease can neither renew, complete nor release the newer claim.
pub async fn stale_token_is_fenced<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let delivery = keys(&ns, Some("dlv_fence"), "m_fence");
    let stale = fresh(&*store, &delivery, SHORT).await;
    tokio::time::sleep(PAST_SHORT).await;
    // The provider's retry, signed again: same id, another message.
    let retry = keys(&ns, Some("dlv_fence"), "m_fence_retry");
    let current = fresh(&*store, &retry, LEASE).await;
    assert!(!renew(&*store, &delivery, stale, LEASE).await);
    assert!(!complete(&*store, &delivery, stale, RETAIN).await);
    assert!(!release(&*store, &retry, stale).await);
    assert_eq!(other(&*store, &retry).await, Claim::InFlight);
    assert!(complete(&*store, &retry, current, RETAIN).await);
    assert_eq!(other(&*store, &delivery).await, Claim::Completed);
}

/// A completion after the lease lapsed untaken (renewals failed while the store was out, and
/// no other attempt claimed the delivery) still records the delivery: the handler ran. A
/// replay under a fresh id is then `Replay`, the same id is `Completed`. Once another attempt
/// took the delivery over and completed it, the stale owner's completion changes nothing.
pub async fn lapsed_untaken_claim_still_completes<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let delivery = keys(&ns, Some("dlv_lapsed"), "m_lapsed");
    let token = fresh(&*store, &delivery, SHORT).await;
    tokio::time::sleep(PAST_SHORT).await;
    assert!(complete(&*store, &delivery, token, RETAIN).await);
    let replay = keys(&ns, Some("dlv_replayed"), "m_lapsed");
    assert_eq!(other(&*store, &replay).await, replay_of(Some("dlv_lapsed")));
    assert_eq!(other(&*store, &delivery).await, Claim::Completed);
    // Completed, not held: the token cannot release or renew it.
    assert!(!release(&*store, &delivery, token).await);
    assert_eq!(other(&*store, &delivery).await, Claim::Completed);
    // Without an id, the message alone is recorded.
    let anonymous = keys(&ns, None, "m_lapsed_anonymous");
    let token = fresh(&*store, &anonymous, SHORT).await;
    tokio::time::sleep(PAST_SHORT).await;
    assert!(complete(&*store, &anonymous, token, RETAIN).await);
    assert_eq!(other(&*store, &anonymous).await, replay_of(None));

    // Taken over and completed by the provider's retry: the stale completion is refused.
    let stale_delivery = keys(&ns, Some("dlv_taken"), "m_taken");
    let stale = fresh(&*store, &stale_delivery, SHORT).await;
    tokio::time::sleep(PAST_SHORT).await;
    let current = fresh(&*store, &stale_delivery, LEASE).await;
    assert!(complete(&*store, &stale_delivery, current, RETAIN).await);
    assert!(!complete(&*store, &stale_delivery, stale, RETAIN).await);
    // Only one key taken over (the retry, signed again, shares the id alone) is enough.
    let half = keys(&ns, Some("dlv_half"), "m_half");
    let stale = fresh(&*store, &half, SHORT).await;
    tokio::time::sleep(PAST_SHORT).await;
    let resigned = keys(&ns, Some("dlv_half"), "m_half_resigned");
    fresh(&*store, &resigned, LEASE).await;
    assert!(!complete(&*store, &half, stale, RETAIN).await);
    // Refused, it wrote nothing: the message it did not take is still free.
    fresh(&*store, &keys(&ns, Some("dlv_half_copy"), "m_half"), LEASE).await;
}

/// Claims on different deliveries, and on one delivery in different namespaces, do not
/// interfere; a token of one delivery does nothing to another.
pub async fn keys_are_independent<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let a = keys(&ns, Some("dlv_a"), "m_a");
    let b = keys(&ns, Some("dlv_b"), "m_b");
    let other_ns = Namespace::new(&format!("{}-other", ns.as_str())).unwrap_or_default();
    let a_elsewhere = keys(&other_ns, Some("dlv_a"), "m_a");
    let token_a = fresh(&*store, &a, LEASE).await;
    let token_b = fresh(&*store, &b, LEASE).await;
    fresh(&*store, &a_elsewhere, LEASE).await;
    assert!(!release(&*store, &a, token_b).await);
    assert!(!complete(&*store, &b, token_a, RETAIN).await);
    assert!(!renew(&*store, &b, token_a, LEASE).await);
    assert_eq!(other(&*store, &a).await, Claim::InFlight);
    assert_eq!(other(&*store, &b).await, Claim::InFlight);
}

/// Deliveries without an id (Stripe, Slack) dedupe on their message alone: in flight while
/// held, a replay once completed; renewed, released and fenced like any other.
pub async fn message_only_deliveries<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let delivery = keys(&ns, None, "m_anonymous");
    let token = fresh(&*store, &delivery, LEASE).await;
    assert_eq!(other(&*store, &delivery).await, Claim::InFlight);
    assert!(!renew(&*store, &delivery, ClaimToken::new(token.get() ^ 1), LEASE).await);
    assert!(renew(&*store, &delivery, token, LEASE).await);
    assert!(complete(&*store, &delivery, token, RETAIN).await);
    assert_eq!(other(&*store, &delivery).await, replay_of(None));
    assert!(!release(&*store, &delivery, token).await);
    assert_eq!(other(&*store, &delivery).await, replay_of(None));
    // A released one is free again.
    let released = keys(&ns, None, "m_anonymous_released");
    let token = fresh(&*store, &released, LEASE).await;
    assert!(release(&*store, &released, token).await);
    fresh(&*store, &released, LEASE).await;
}

/// Deliveries identified by their id alone (Standard Webhooks, whose id is signed; bearer,
/// Basic and `none`, which sign nothing): in flight while held, a duplicate once completed
/// (`Completed`, never `Replay`: there is no message key); renewed, released and fenced like any
/// other. The id key is the one a delivery with a message key claims too.
pub async fn id_only_deliveries<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let delivery = DeliveryKeys::id_only(&ns, "dlv_id_only");
    let with_message = keys(&ns, Some("dlv_id_only"), "m_id_only");
    let token = fresh(&*store, &delivery, LEASE).await;
    assert_eq!(other(&*store, &delivery).await, Claim::InFlight);
    assert_eq!(other(&*store, &with_message).await, Claim::InFlight);
    assert!(!renew(&*store, &delivery, ClaimToken::new(token.get() ^ 1), LEASE).await);
    assert!(renew(&*store, &delivery, token, LEASE).await);
    assert!(complete(&*store, &delivery, token, RETAIN).await);
    assert_eq!(other(&*store, &delivery).await, Claim::Completed);
    assert_eq!(other(&*store, &with_message).await, Claim::Completed);
    assert!(!release(&*store, &delivery, token).await);
    assert_eq!(other(&*store, &delivery).await, Claim::Completed);
    // The losing claim with a message key took nothing: its message is free.
    fresh(
        &*store,
        &keys(&ns, Some("dlv_other_id"), "m_id_only"),
        LEASE,
    )
    .await;
    // A released one is free again.
    let released = DeliveryKeys::id_only(&ns, "dlv_id_released");
    let token = fresh(&*store, &released, LEASE).await;
    assert!(release(&*store, &released, token).await);
    fresh(&*store, &released, LEASE).await;
}

fn receiver<S: DeliveryStore>(
    store: Arc<S>,
    clock: &Arc<ManualClock>,
    ns: Namespace,
) -> Receiver<S> {
    method_receiver(Method::HmacSha256, SECRET, store, clock, ns)
}

fn method_receiver<S: DeliveryStore>(
    method: Method,
    secret: &str,
    store: Arc<S>,
    clock: &Arc<ManualClock>,
    ns: Namespace,
) -> Receiver<S> {
    let verifier = Verifier::builder()
        .method(method)
        .secret("conformance", secret)
        .clock(Arc::clone(clock))
        .build()
        .unwrap_or_else(|error| panic!("{method} verifier: {error}"));
    Receiver::builder(verifier, store)
        .namespace(ns)
        .build()
        .unwrap_or_else(|error| panic!("receiver: {error}"))
}

fn clock() -> Arc<ManualClock> {
    Arc::new(
        ManualClock::from_unix(START_UNIX)
            .unwrap_or_else(|| panic!("conformance: the start time is out of range")),
    )
}

fn signed(clock: &Arc<ManualClock>, id: &str, body: &[u8]) -> http::HeaderMap {
    method_signed(Method::HmacSha256, SECRET, clock, id, body)
}

fn method_signed(
    method: Method,
    secret: &str,
    clock: &Arc<ManualClock>,
    id: &str,
    body: &[u8],
) -> http::HeaderMap {
    Signer::for_method(method, secret)
        .unwrap_or_else(|error| panic!("{method} signer: {error}"))
        .clock(Arc::clone(clock))
        .sign(id, body)
        .header_map()
        .unwrap_or_else(|error| panic!("headers: {error}"))
}

/// Receives a delivery (it must be fresh), checks that a copy is in flight while it is held,
/// completes it, and answers what a copy is then.
async fn handle_then_copy<S: DeliveryStore>(
    receiver: &Receiver<S>,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Outcome<S> {
    let Outcome::Fresh(guard) = receive(receiver, headers, body).await else {
        panic!("the first delivery must be fresh");
    };
    assert!(matches!(
        receive(receiver, headers, body).await,
        Outcome::Duplicate(Duplicate::InFlight)
    ));
    guard
        .complete()
        .await
        .unwrap_or_else(|error| panic!("complete: {error}"));
    receive(receiver, headers, body).await
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

fn with_id(headers: &http::HeaderMap, id: &'static str) -> http::HeaderMap {
    let mut headers = headers.clone();
    headers.insert("x-agent-delivery-id", http::HeaderValue::from_static(id));
    headers
}

/// Through a receiver: the same signed bytes under a fresh id are in flight while the original
/// is, a replay once it completed; the provider's re-signed retry under the same id is a
/// duplicate.
pub async fn replay_under_new_id_and_retry<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let clock = clock();
    let receiver = receiver(store, &clock, ns);
    let body = br#"{"type":"run.finished"}"#;
    let original = signed(&clock, "dlv_original", body);
    let Outcome::Fresh(guard) = receive(&receiver, &original, body).await else {
        panic!("the first delivery must be fresh");
    };
    let copy = with_id(&original, "dlv_forged_1");
    assert!(matches!(
        receive(&receiver, &copy, body).await,
        Outcome::Duplicate(Duplicate::InFlight)
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
    clock.advance(time::Duration::seconds(5));
    let resigned = signed(&clock, "dlv_original", body);
    assert!(matches!(
        receive(&receiver, &resigned, body).await,
        Outcome::Duplicate(Duplicate::Completed)
    ));
    let unrelated = signed(&clock, "dlv_other", b"{}");
    assert!(matches!(
        receive(&receiver, &unrelated, b"{}").await,
        Outcome::Fresh(_)
    ));
}

/// Through receivers of the methods that claim one key only: a bearer delivery (its id alone)
/// is a duplicate of a completed id (`Completed`), and the same token and body under a fresh id
/// is a new delivery (bearer signs nothing); a Stripe delivery (its message alone) is in flight
/// while held and a replay once completed, and the same event signed again later is a new
/// message.
pub async fn methods_dedupe_on_their_own_keys<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let clock = clock();
    let body = br#"{"type":"run.finished"}"#;

    let token = "tok_conformance";
    let bearer = method_receiver(
        Method::Bearer,
        token,
        Arc::clone(&store),
        &clock,
        ns.clone(),
    );
    let headers = method_signed(Method::Bearer, token, &clock, "dlv_bearer", body);
    assert!(matches!(
        handle_then_copy(&bearer, &headers, body).await,
        Outcome::Duplicate(Duplicate::Completed)
    ));
    let fresh_id = method_signed(Method::Bearer, token, &clock, "dlv_bearer_2", body);
    assert!(matches!(
        receive(&bearer, &fresh_id, body).await,
        Outcome::Fresh(_)
    ));

    let secret = "whsec_conformance_stripe";
    let stripe = method_receiver(Method::Stripe, secret, store, &clock, ns);
    let headers = method_signed(Method::Stripe, secret, &clock, "", body);
    assert!(matches!(
        handle_then_copy(&stripe, &headers, body).await,
        Outcome::Duplicate(Duplicate::Replay)
    ));
    clock.advance(time::Duration::seconds(5));
    let resigned = method_signed(Method::Stripe, secret, &clock, "", body);
    assert!(matches!(
        receive(&stripe, &resigned, body).await,
        Outcome::Fresh(_)
    ));
}

/// A failed handler's release lets the provider's retry through.
pub async fn released_delivery_is_handled_again<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let clock = clock();
    let receiver = receiver(store, &clock, ns);
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

/// A released delivery frees its id but keeps its message key, released by that id, for the
/// retention: the same bytes under the same id (the provider's retry) are fresh; under another
/// id they are in flight while that id is held, and a replay naming it once that id completed
/// (its retry, signed again), but fresh before (the other id may be the genuine delivery, and
/// the failed one a copy). The marker blocks nothing once its retention ends. Without an id,
/// the message key is simply freed.
pub async fn released_message_is_kept_for_its_id<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let attempt = keys(&ns, Some("dlv_failed"), "m_attempt_1");
    let token = fresh(&*store, &attempt, LEASE).await;
    assert!(release(&*store, &attempt, token).await);
    // The provider's retry with the same bytes: fresh, and released again when it fails too.
    let token = fresh(&*store, &attempt, LEASE).await;
    let copy = keys(&ns, Some("dlv_copy"), "m_attempt_1");
    assert_eq!(other(&*store, &copy).await, Claim::InFlight);
    assert!(release(&*store, &attempt, token).await);
    // Held by no token: a stale release or renewal of it does nothing.
    assert!(!release(&*store, &attempt, token).await);
    assert!(!renew(&*store, &attempt, token, LEASE).await);
    // The retry signed again: new bytes under the same id, fresh; the copy waits for it.
    let retry = keys(&ns, Some("dlv_failed"), "m_attempt_2");
    let token = fresh(&*store, &retry, LEASE).await;
    assert_eq!(other(&*store, &copy).await, Claim::InFlight);
    assert!(complete(&*store, &retry, token, RETAIN).await);
    assert_eq!(other(&*store, &copy).await, replay_of(Some("dlv_failed")));
    assert_eq!(other(&*store, &attempt).await, Claim::Completed);
    // The copies took nothing: their id is free.
    fresh(&*store, &keys(&ns, Some("dlv_copy"), "m_copy_own"), LEASE).await;

    // A failed copy that came first does not drop the delivery it copied.
    let copied_first = keys(&ns, Some("dlv_first_copy"), "m_raced");
    let token = fresh(&*store, &copied_first, LEASE).await;
    assert!(release(&*store, &copied_first, token).await);
    fresh(&*store, &keys(&ns, Some("dlv_genuine"), "m_raced"), LEASE).await;

    // Without an id, nothing is kept.
    let anonymous = keys(&ns, None, "m_released_anonymous");
    let token = fresh(&*store, &anonymous, LEASE).await;
    assert!(release(&*store, &anonymous, token).await);
    fresh(&*store, &anonymous, LEASE).await;

    // The marker lasts the retention given to the release, on the store's clock.
    let brief = keys(&ns, Some("dlv_brief"), "m_brief");
    let token = fresh(&*store, &brief, LEASE).await;
    assert!(release_for(&*store, &brief, token, SHORT).await);
    let resigned = keys(&ns, Some("dlv_brief"), "m_brief_resigned");
    let token = fresh(&*store, &resigned, LEASE).await;
    assert!(complete(&*store, &resigned, token, RETAIN).await);
    let late_copy = keys(&ns, Some("dlv_late_copy"), "m_brief");
    assert_eq!(
        other(&*store, &late_copy).await,
        replay_of(Some("dlv_brief"))
    );
    tokio::time::sleep(PAST_SHORT).await;
    fresh(&*store, &late_copy, LEASE).await;

    // A lapsed claim completed over a released key records the delivery.
    let lapsed = keys(&ns, Some("dlv_lapsed_first"), "m_released_then_done");
    let first = fresh(&*store, &lapsed, SHORT).await;
    tokio::time::sleep(PAST_SHORT).await;
    let taker = keys(&ns, Some("dlv_taker"), "m_released_then_done");
    let second = fresh(&*store, &taker, LEASE).await;
    assert!(release(&*store, &taker, second).await);
    assert!(complete(&*store, &lapsed, first, RETAIN).await);
    assert_eq!(
        other(&*store, &taker).await,
        replay_of(Some("dlv_lapsed_first"))
    );
}

/// Through a receiver: an attempt whose handler failed is released; the provider's retry,
/// signed again, is handled; a captured copy of the failed attempt replayed under a fresh id
/// inside its window is a replay, and its handler does not run again.
pub async fn replay_of_a_released_attempt_is_not_handled<S: DeliveryStore>(
    store: Arc<S>,
    ns: Namespace,
) {
    let clock = clock();
    let receiver = receiver(store, &clock, ns);
    let body = br#"{"type":"run.finished","n":1}"#;
    let first = signed(&clock, "dlv_released", body);
    let Outcome::Fresh(guard) = receive(&receiver, &first, body).await else {
        panic!("the first attempt must be fresh");
    };
    guard
        .release()
        .await
        .unwrap_or_else(|error| panic!("release: {error}"));
    clock.advance(time::Duration::seconds(1));
    let retry = signed(&clock, "dlv_released", body);
    let Outcome::Fresh(guard) = receive(&receiver, &retry, body).await else {
        panic!("the provider's retry must be fresh");
    };
    guard
        .complete()
        .await
        .unwrap_or_else(|error| panic!("complete: {error}"));
    let copy = with_id(&first, "dlv_attacker");
    assert!(matches!(
        receive(&receiver, &copy, body).await,
        Outcome::Duplicate(Duplicate::Replay)
    ));
    assert!(matches!(
        receive(&receiver, &first, body).await,
        Outcome::Duplicate(Duplicate::Completed)
    ));
}

/// A guard dropped without completing or releasing (a panic, a cancelled future) releases.
pub async fn dropped_guard_releases<S: DeliveryStore>(store: Arc<S>, ns: Namespace) {
    let clock = clock();
    let receiver = receiver(store, &clock, ns);
    let body = b"dropped";
    let headers = signed(&clock, "dlv_dropped", body);
    let outcome = receive(&receiver, &headers, body).await;
    assert!(matches!(outcome, Outcome::Fresh(_)));
    drop(outcome);
    // The release runs on a spawned task; a networked store answers within milliseconds.
    for _ in 0..200 {
        match receive(&receiver, &headers, body).await {
            Outcome::Fresh(_) => return,
            Outcome::Duplicate(Duplicate::InFlight) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Outcome::Duplicate(other) => panic!("unexpected duplicate: {other:?}"),
        }
    }
    panic!("the dropped guard's claim was never released");
}
