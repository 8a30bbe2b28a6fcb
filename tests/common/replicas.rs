//! Two receivers (standing in for two replicas of one service) over two handles onto one shared
//! store, hit concurrently with copies of the same deliveries: each delivery must be handled
//! exactly once in total.
//!
//! Include it with `#[path = "common/replicas.rs"] mod replicas;`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hookverify::store::Namespace;
use hookverify::{DeliveryStore, Duplicate, ManualClock, Outcome, Receiver, Signer, Verifier};

const SECRET: &str = "whsec_replicas";
/// Where the receivers' clock stands (2025-11-24T16:00:00Z).
pub(crate) const START_UNIX: i64 = 1_764_000_000;
pub(crate) const DELIVERIES: usize = 20;
pub(crate) const COPIES: usize = 8;

/// The tally of one run.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) fresh: Vec<usize>,
    pub(crate) in_flight: usize,
    pub(crate) completed: usize,
    pub(crate) replay: usize,
}

/// Sends `COPIES` copies of each of `DELIVERIES` deliveries, all at once, half to each
/// receiver; a fresh claim is completed at once. Half the copies are byte-for-byte the
/// original, half the provider's re-signed retry (same id, a later timestamp, another MAC).
pub(crate) async fn each_delivery_handled_once<S: DeliveryStore>(
    a: S,
    b: S,
    clock: Arc<ManualClock>,
) -> Tally {
    let namespace = random_namespace("replicas");
    let receivers = [
        receiver(a, &clock, &namespace),
        receiver(b, &clock, &namespace),
    ];
    let signer = Signer::new(SECRET).expect("signer");
    let fresh: Arc<Vec<AtomicUsize>> =
        Arc::new((0..DELIVERIES).map(|_| AtomicUsize::new(0)).collect());
    let barrier = Arc::new(tokio::sync::Barrier::new(DELIVERIES * COPIES));
    let mut tasks = Vec::new();
    for delivery in 0..DELIVERIES {
        let id = format!("dlv_replica_{delivery}");
        let body = format!(r#"{{"delivery":{delivery}}}"#).into_bytes();
        for copy in 0..COPIES {
            // Copies 0, 2, 4, … are the original; 1, 3, 5, … a retry signed a second later.
            let timestamp = (START_UNIX + i64::try_from(copy % 2).expect("small")).to_string();
            let headers = signer
                .sign_with_timestamp(&id, &timestamp, &body)
                .header_map()
                .expect("headers");
            let receiver = receivers[(delivery + copy) % 2].clone();
            let (fresh, barrier, body) = (Arc::clone(&fresh), Arc::clone(&barrier), body.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                match receiver.receive(&headers, &body).await.expect("receive") {
                    Outcome::Fresh(guard) => {
                        fresh[delivery].fetch_add(1, Ordering::SeqCst);
                        guard.complete().await.expect("complete");
                        None
                    }
                    Outcome::Duplicate(kind) => Some(kind),
                }
            }));
        }
    }
    let mut tally = Tally::default();
    for task in tasks {
        match task.await.expect("task") {
            None => {}
            Some(Duplicate::InFlight) => tally.in_flight += 1,
            Some(Duplicate::Completed) => tally.completed += 1,
            Some(Duplicate::Replay) => tally.replay += 1,
        }
    }
    tally.fresh = fresh.iter().map(|n| n.load(Ordering::SeqCst)).collect();
    assert_eq!(
        tally.fresh,
        vec![1; DELIVERIES],
        "each delivery must be fresh exactly once across both receivers ({tally:?})"
    );
    assert_eq!(
        tally.in_flight + tally.completed + tally.replay,
        DELIVERIES * (COPIES - 1),
        "every other copy is a duplicate"
    );

    // Afterwards every copy, on either receiver, is a duplicate of a completed delivery.
    for delivery in 0..DELIVERIES {
        let id = format!("dlv_replica_{delivery}");
        let body = format!(r#"{{"delivery":{delivery}}}"#).into_bytes();
        let headers = signer
            .sign_with_timestamp(&id, &START_UNIX.to_string(), &body)
            .header_map()
            .expect("headers");
        for receiver in &receivers {
            assert!(matches!(
                receiver.receive(&headers, &body).await.expect("receive"),
                Outcome::Duplicate(Duplicate::Completed)
            ));
        }
    }
    tally
}

fn receiver<S: DeliveryStore>(
    store: S,
    clock: &Arc<ManualClock>,
    namespace: &Namespace,
) -> Receiver<S> {
    let verifier = Verifier::builder()
        .secret("replicas", SECRET)
        .clock(Arc::clone(clock))
        .build()
        .expect("verifier");
    Receiver::builder(verifier, store)
        .namespace(namespace.clone())
        .build()
        .expect("receiver")
}

fn random_namespace(what: &str) -> Namespace {
    let token = hookverify::store::ClaimToken::random()
        .expect("randomness")
        .get();
    Namespace::new(&format!("{what}-{token:016x}")).expect("valid namespace")
}

/// During a rotation, replica `a` lists `[old, new]` and replica `b` only `[new]`; the provider
/// signs with both. A delivery handled on `a` (where `old` matches first) is a replay on `b`
/// under a fresh id and a duplicate under its own: the message key does not depend on which
/// secret matched.
pub(crate) async fn rotation_across_replicas_is_one_message<S: DeliveryStore>(a: S, b: S) {
    let clock = Arc::new(ManualClock::from_unix(START_UNIX).expect("in range"));
    let namespace = random_namespace("rotation");
    let both = Verifier::builder()
        .secret("old", "whsec_old")
        .secret("new", "whsec_new")
        .clock(Arc::clone(&clock))
        .build()
        .expect("verifier");
    let only_new = Verifier::builder()
        .secret("new", "whsec_new")
        .clock(Arc::clone(&clock))
        .build()
        .expect("verifier");
    let a = Receiver::builder(both, a)
        .namespace(namespace.clone())
        .build()
        .expect("receiver");
    let b = Receiver::builder(only_new, b)
        .namespace(namespace)
        .build()
        .expect("receiver");

    let body = br#"{"type":"rotation"}"#;
    let timestamp = START_UNIX.to_string();
    let signed = |id: &str| {
        let old = Signer::new("whsec_old").expect("signer");
        let new = Signer::new("whsec_new").expect("signer");
        let mut headers = new
            .sign_with_timestamp(id, &timestamp, body)
            .header_map()
            .expect("headers");
        let both = format!(
            "{},{}",
            old.sign_with_timestamp(id, &timestamp, body).signature(),
            new.sign_with_timestamp(id, &timestamp, body).signature()
        );
        headers.insert(
            "x-agent-signature",
            both.parse().expect("a valid header value"),
        );
        headers
    };

    match a
        .receive(&signed("dlv_rotation"), body)
        .await
        .expect("receive")
    {
        Outcome::Fresh(guard) => {
            assert_eq!(guard.verified().secret_label(), "old");
            guard.complete().await.expect("complete");
        }
        Outcome::Duplicate(kind) => panic!("the first copy must be fresh, got {kind:?}"),
    }
    let replay = b
        .receive(&signed("dlv_forged"), body)
        .await
        .expect("receive");
    assert!(
        matches!(replay, Outcome::Duplicate(Duplicate::Replay)),
        "the same signed bytes on the other replica, under a fresh id, must be a replay"
    );
    let retry = b
        .receive(&signed("dlv_rotation"), body)
        .await
        .expect("receive");
    assert!(matches!(retry, Outcome::Duplicate(Duplicate::Completed)));
}
