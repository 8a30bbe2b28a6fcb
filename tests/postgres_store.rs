//! The PostgreSQL store against a real server: the shared conformance suite, two receivers
//! sharing one database, an outage (fail closed, then recovery without rebuilding the store),
//! completions inside the caller's transaction, and cleanup.
//!
//! Each test starts its own server (Debian package `postgresql`), or uses
//! `HOOKVERIFY_TEST_POSTGRES_URL` when set.
#![cfg(all(feature = "postgres", feature = "testing"))]

#[path = "common/replicas.rs"]
mod replicas;
#[path = "common/servers.rs"]
mod servers;

use std::sync::Arc;
use std::time::Instant;

use hookverify::store::postgres::PostgresStore;
use hookverify::store::{Claim, ClaimToken, DedupeKey, Namespace};
use hookverify::{
    DeliveryId, DeliveryStore, Error, ManualClock, Outcome, Receiver, Signer, Verifier,
};
use time::Duration;

use servers::PostgresServer;

const LEASE: Duration = Duration::seconds(30);
const RETAIN: Duration = Duration::seconds(600);

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::from_unix(replicas::START_UNIX).expect("in range"))
}

fn key(namespace: &Namespace, id: &str) -> DedupeKey {
    DedupeKey::delivery(
        namespace,
        &DeliveryId::parse(id.as_bytes()).expect("valid id"),
    )
}

fn random_name(what: &str) -> String {
    let token = ClaimToken::random().expect("randomness").get();
    format!("{what}_{token:016x}")
}

fn random_namespace(what: &str) -> Namespace {
    Namespace::new(&random_name(what)).expect("valid namespace")
}

/// A migrated store on `server`, on `clock`.
async fn store(server: &PostgresServer, clock: &Arc<ManualClock>) -> PostgresStore {
    let store = PostgresStore::connect(server.url())
        .await
        .expect("connect")
        .clock(Arc::clone(clock));
    store.migrate().await.expect("migrate");
    store
}

async fn claim(store: &PostgresStore, key: &DedupeKey) -> Claim {
    store.claim(key, LEASE).await.expect("claim")
}

async fn fresh(store: &PostgresStore, key: &DedupeKey) -> ClaimToken {
    match claim(store, key).await {
        Claim::Fresh(token) => token,
        other => panic!("fresh claim expected, got {other:?}"),
    }
}

/// A table for a test's own effects (a fresh name, so a shared server needs no cleanup).
async fn effects_table(store: &PostgresStore) -> String {
    let table = random_name("effects");
    let client = store.pool().get().await.expect("connection");
    client
        .batch_execute(&format!("CREATE TABLE {table} (id bigint NOT NULL)"))
        .await
        .expect("create table");
    table
}

async fn effects(store: &PostgresStore, table: &str) -> i64 {
    let client = store.pool().get().await.expect("connection");
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_conforms() {
    let server = PostgresServer::start();
    store(&server, &clock()).await;
    let url = server.url().to_owned();
    hookverify::testing::run_conformance(|clock| {
        let url = url.clone();
        async move {
            PostgresStore::connect(&url)
                .await
                .expect("connect")
                .clock(clock)
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migration_is_idempotent_and_concurrent_safe() {
    let server = PostgresServer::start();
    let store = PostgresStore::connect(server.url()).await.expect("connect");
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.migrate().await })
        })
        .collect();
    for run in runs {
        run.await.expect("task").expect("migrate");
    }
    store.migrate().await.expect("migrate again");
    let client = store.pool().get().await.expect("connection");
    client
        .batch_execute(hookverify::store::postgres::MIGRATION)
        .await
        .expect("the documented SQL runs as is");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_receivers_sharing_postgres_handle_each_delivery_once() {
    let server = PostgresServer::start();
    let clock = clock();
    // Two pools: as two processes would have.
    let a = store(&server, &clock).await;
    let b = store(&server, &clock).await;
    let tally = replicas::each_delivery_handled_once(a, b, clock).await;
    eprintln!("postgres replicas: {tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outage_fails_closed_then_recovers_without_rebuilding() {
    let mut server = PostgresServer::start();
    if !server.is_owned() {
        eprintln!(
            "skipped: HOOKVERIFY_TEST_POSTGRES_URL is set, and this test must stop the server"
        );
        return;
    }
    let clock = clock();
    let store = Arc::new(
        store(&server, &clock)
            .await
            .timeout(Duration::milliseconds(500)),
    );
    let ns = random_namespace("outage");
    let before = key(&ns, "dlv_before");
    let token = fresh(&store, &before).await;

    server.kill();

    let during = key(&ns, "dlv_during");
    for _ in 0..5 {
        let started = Instant::now();
        assert!(store.claim(&during, LEASE).await.is_err());
        assert!(store.complete(&before, token, RETAIN).await.is_err());
        assert!(store.release(&before, token).await.is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
    }
    let verifier = Verifier::builder()
        .secret("outage", "whsec_outage")
        .clock(Arc::clone(&clock))
        .build()
        .expect("verifier");
    let receiver =
        Receiver::<PostgresStore>::new(verifier, Arc::clone(&store)).namespace(ns.clone());
    let headers = Signer::new("whsec_outage")
        .expect("signer")
        .clock(Arc::clone(&clock))
        .sign("dlv_outage", b"{}")
        .header_map()
        .expect("headers");
    match receiver.receive(&headers, b"{}").await {
        Err(error @ Error::StoreUnavailable(_)) => assert_eq!(error.kind(), "store_unavailable"),
        Err(other) => panic!("expected store_unavailable, got {other}"),
        Ok(_) => panic!("a delivery was accepted while the store was down"),
    }

    server.restart();

    let started = Instant::now();
    loop {
        match store.claim(&key(&ns, "dlv_after"), LEASE).await {
            Ok(Claim::Fresh(_)) => break,
            Ok(other) => panic!("fresh claim expected, got {other:?}"),
            Err(error) => {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(20),
                    "the store did not recover: {error}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    // The data survived the restart: the claim made before the outage still holds, and its
    // owner can still complete it.
    assert_eq!(claim(&store, &before).await, Claim::InFlight);
    assert!(
        store
            .complete(&before, token, RETAIN)
            .await
            .expect("complete")
    );
    assert_eq!(claim(&store, &before).await, Claim::Completed);
    assert!(matches!(
        receiver.receive(&headers, b"{}").await.expect("receive"),
        Outcome::Fresh(_)
    ));
}

/// The recipe: claim with the pool, do the work and `complete_in` inside one transaction.
/// Rolled back, nothing is recorded and the claim is released; committed, the delivery is
/// completed together with its effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn completion_commits_or_rolls_back_with_the_callers_transaction() {
    let server = PostgresServer::start();
    let store = store(&server, &clock()).await;
    let table = effects_table(&store).await;
    let key = key(&random_namespace("recipe"), "dlv_recipe");

    let token = fresh(&store, &key).await;
    {
        let mut client = store.pool().get().await.expect("connection");
        let tx = client.transaction().await.expect("begin");
        tx.execute(&format!("INSERT INTO {table} (id) VALUES (1)"), &[])
            .await
            .expect("effect");
        assert!(
            store
                .complete_in(&*tx, &key, token, RETAIN)
                .await
                .expect("complete_in")
        );
        tx.rollback().await.expect("rollback");
    }
    assert_eq!(effects(&store, &table).await, 0);
    // The rollback undid the completion: the claim is still held, and its owner releases it.
    assert_eq!(claim(&store, &key).await, Claim::InFlight);
    assert!(store.release(&key, token).await.expect("release"));

    let token = fresh(&store, &key).await;
    {
        let mut client = store.pool().get().await.expect("connection");
        let tx = client.transaction().await.expect("begin");
        tx.execute(&format!("INSERT INTO {table} (id) VALUES (1)"), &[])
            .await
            .expect("effect");
        assert!(
            store
                .complete_in(&*tx, &key, token, RETAIN)
                .await
                .expect("complete_in")
        );
        tx.commit().await.expect("commit");
    }
    assert_eq!(effects(&store, &table).await, 1);
    assert_eq!(claim(&store, &key).await, Claim::Completed);
    // A completed delivery cannot be released by its old owner.
    assert!(!store.release(&key, token).await.expect("release"));
}

/// A rolled-back completion whose claim is never released lapses with the lease; the stale
/// owner's later `complete_in` answers false (and the caller rolls back).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolled_back_claim_lapses_and_the_stale_owner_is_fenced() {
    let server = PostgresServer::start();
    let clock = clock();
    let store = store(&server, &clock).await;
    let key = key(&random_namespace("lapse"), "dlv_lapse");

    let stale = fresh(&store, &key).await;
    {
        let mut client = store.pool().get().await.expect("connection");
        let tx = client.transaction().await.expect("begin");
        assert!(
            store
                .complete_in(&*tx, &key, stale, RETAIN)
                .await
                .expect("complete_in")
        );
        tx.rollback().await.expect("rollback");
    }
    clock.advance(LEASE - Duration::seconds(1));
    assert_eq!(claim(&store, &key).await, Claim::InFlight);
    clock.advance(Duration::seconds(2));
    let current = fresh(&store, &key).await;

    let mut client = store.pool().get().await.expect("connection");
    let tx = client.transaction().await.expect("begin");
    assert!(
        !store
            .complete_in(&*tx, &key, stale, RETAIN)
            .await
            .expect("complete_in")
    );
    assert!(
        !store
            .release_in(&*tx, &key, stale)
            .await
            .expect("release_in")
    );
    tx.rollback().await.expect("rollback");
    assert_eq!(claim(&store, &key).await, Claim::InFlight);
    assert!(
        store
            .complete(&key, current, RETAIN)
            .await
            .expect("complete")
    );
    assert_eq!(claim(&store, &key).await, Claim::Completed);
}

/// While a transaction holds an uncommitted completion, a concurrent claim of the key waits
/// for it, even past the lease: a commit makes it a duplicate, a rollback lets it through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrent_claim_waits_for_the_completing_transaction() {
    let server = PostgresServer::start();
    let clock = clock();
    let store = Arc::new(store(&server, &clock).await);
    let ns = random_namespace("wait");

    for commit in [true, false] {
        let key = Arc::new(key(&ns, if commit { "dlv_commit" } else { "dlv_rollback" }));
        let token = fresh(&store, &key).await;
        let mut client = store.pool().get().await.expect("connection");
        let tx = client.transaction().await.expect("begin");
        assert!(
            store
                .complete_in(&*tx, &key, token, RETAIN)
                .await
                .expect("complete_in")
        );
        // Past the lease: were the claim not held by the transaction, it would be fresh now.
        clock.advance(LEASE + Duration::seconds(1));
        let contender = {
            let (store, key) = (Arc::clone(&store), Arc::clone(&key));
            tokio::spawn(async move { store.claim(&key, LEASE).await })
        };
        // Not a wait on the clock under test: it gives the contender time to block on the row.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !contender.is_finished(),
            "the contender must wait for the transaction"
        );
        if commit {
            tx.commit().await.expect("commit");
            let answer = contender.await.expect("task").expect("claim");
            assert!(
                matches!(answer, Claim::InFlight | Claim::Completed),
                "never fresh after a commit: {answer:?}"
            );
            assert_eq!(claim(&store, &key).await, Claim::Completed);
        } else {
            tx.rollback().await.expect("rollback");
            let answer = contender.await.expect("task").expect("claim");
            assert!(
                matches!(answer, Claim::Fresh(_)),
                "the lease ran out and the completion was rolled back: {answer:?}"
            );
        }
    }
}

/// Claiming inside a transaction: a rollback undoes the claim, no release needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claim_in_a_transaction_is_undone_by_rollback() {
    let server = PostgresServer::start();
    let store = store(&server, &clock()).await;
    let key = key(&random_namespace("claim-in"), "dlv_claim_in");
    let mut client = store.pool().get().await.expect("connection");

    let tx = client.transaction().await.expect("begin");
    assert!(matches!(
        store.claim_in(&*tx, &key, LEASE).await.expect("claim_in"),
        Claim::Fresh(_)
    ));
    tx.rollback().await.expect("rollback");

    let tx = client.transaction().await.expect("begin");
    let Claim::Fresh(token) = store.claim_in(&*tx, &key, LEASE).await.expect("claim_in") else {
        panic!("the rolled-back claim left nothing behind");
    };
    assert!(
        store
            .complete_in(&*tx, &key, token, RETAIN)
            .await
            .expect("complete_in")
    );
    tx.commit().await.expect("commit");
    assert_eq!(claim(&store, &key).await, Claim::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cleanup_deletes_expired_rows_only() {
    let server = PostgresServer::start();
    let clock = clock();
    let store = store(&server, &clock).await.cleanup_every(0);
    let ns = random_namespace("cleanup");
    let held = key(&ns, "dlv_held");
    let done = key(&ns, "dlv_done");
    let young = key(&ns, "dlv_young");
    fresh(&store, &held).await;
    let token = fresh(&store, &done).await;
    assert!(
        store
            .complete(&done, token, Duration::seconds(60))
            .await
            .expect("complete")
    );
    clock.advance(LEASE + Duration::seconds(1));
    fresh(&store, &young).await;
    let rows = |store: PostgresStore, ns: Namespace| async move {
        let client = store.pool().get().await.expect("connection");
        let count: i64 = client
            .query_one(
                "SELECT count(*) FROM hookverify_deliveries WHERE key LIKE $1",
                &[&format!("{}:%", ns.as_str())],
            )
            .await
            .expect("count")
            .get(0);
        count
    };
    assert_eq!(rows(store.clone(), ns.clone()).await, 3);
    // The expired lease goes; the completed (60 s) and the young claim stay.
    assert!(store.cleanup().await.expect("cleanup") >= 1);
    assert_eq!(rows(store.clone(), ns.clone()).await, 2);
    assert_eq!(claim(&store, &done).await, Claim::Completed);
    assert_eq!(claim(&store, &young).await, Claim::InFlight);
    clock.advance(Duration::seconds(60));
    store.cleanup().await.expect("cleanup");
    assert_eq!(rows(store.clone(), ns.clone()).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn background_cleanup_runs_every_n_claims() {
    let server = PostgresServer::start();
    let clock = clock();
    let store = store(&server, &clock).await.cleanup_every(10);
    let ns = random_namespace("background");
    for n in 0..9 {
        fresh(&store, &key(&ns, &format!("dlv_{n}"))).await;
    }
    clock.advance(LEASE + Duration::seconds(1));
    // The tenth claim starts a batch that deletes the nine expired claims.
    fresh(&store, &key(&ns, "dlv_tenth")).await;
    let client = store.pool().get().await.expect("connection");
    let started = Instant::now();
    loop {
        let count: i64 = client
            .query_one(
                "SELECT count(*) FROM hookverify_deliveries WHERE key LIKE $1",
                &[&format!("{}:%", ns.as_str())],
            )
            .await
            .expect("count")
            .get(0);
        if count == 1 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the background cleanup did not run ({count} rows)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_store_error_not_a_hang() {
    let port = servers::free_port();
    let started = Instant::now();
    let result = PostgresStore::connect(&format!("postgres://postgres@127.0.0.1:{port}/x")).await;
    assert!(result.is_err(), "nothing listens on port {port}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(PostgresStore::connect("postgres://[bad").await.is_err());
}

/// The exactly-once recipe through `Receiver`: the guard hands out the delivery id's claim,
/// the id completes inside the caller's transaction with the effects, and the guard then
/// completes the MAC. A rolled-back attempt is released and its retry handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receiver_guard_completes_inside_the_callers_transaction() {
    let server = PostgresServer::start();
    let clock = clock();
    let store = Arc::new(store(&server, &clock).await);
    let table = effects_table(&store).await;
    let verifier = Verifier::builder()
        .secret("current", "whsec_recipe")
        .clock(Arc::clone(&clock))
        .build()
        .expect("verifier");
    let receiver = Receiver::<PostgresStore>::new(verifier, Arc::clone(&store))
        .namespace(random_namespace("tx"));
    let signer = Signer::new("whsec_recipe")
        .expect("signer")
        .clock(Arc::clone(&clock));
    let body = br#"{"type":"order.placed"}"#;
    let headers = signer.sign("dlv_tx", body).header_map().expect("headers");

    for commit in [false, true] {
        let Outcome::Fresh(guard) = receiver.receive(&headers, body).await.expect("receive") else {
            panic!("the delivery must be fresh (commit = {commit})");
        };
        let (key, token, retain) = guard.delivery_claim().expect("held by the guard");
        let (key, token, retain) = (key.clone(), token, retain);
        let mut client = store.pool().get().await.expect("connection");
        let tx = client.transaction().await.expect("begin");
        tx.execute(&format!("INSERT INTO {table} (id) VALUES (1)"), &[])
            .await
            .expect("effect");
        assert!(
            store
                .complete_in(&*tx, &key, token, retain)
                .await
                .expect("complete_in")
        );
        if commit {
            tx.commit().await.expect("commit");
            guard.complete().await.expect("complete the MAC");
        } else {
            tx.rollback().await.expect("rollback");
            guard.release().await.expect("release");
        }
    }
    assert_eq!(
        effects(&store, &table).await,
        1,
        "exactly one attempt's effects"
    );
    assert!(matches!(
        receiver.receive(&headers, body).await.expect("receive"),
        Outcome::Duplicate(hookverify::Duplicate::Completed)
    ));
    let mut replay = headers.clone();
    replay.insert(
        "x-agent-delivery-id",
        "dlv_tx_forged".parse().expect("value"),
    );
    assert!(matches!(
        receiver.receive(&replay, body).await.expect("receive"),
        Outcome::Duplicate(hookverify::Duplicate::Replay)
    ));
}
