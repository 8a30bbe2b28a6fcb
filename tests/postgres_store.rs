//! The PostgreSQL store against a real server: the shared conformance suite, two receivers
//! sharing one database, an outage (fail closed, then recovery without rebuilding the store),
//! completions and claims inside the caller's transaction, and cleanup.
//!
//! Each test starts its own server (Debian package `postgresql`), or uses
//! `HOOKVERIFY_TEST_POSTGRES_URL` when set. Leases and retention run on the server's clock, so
//! the tests that need one to end use short ones and wait for real.
#![cfg(all(feature = "postgres", feature = "testing"))]

#[path = "common/replicas.rs"]
mod replicas;
#[path = "common/servers.rs"]
mod servers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookverify::store::postgres::PostgresStore;
use hookverify::store::{Claim, ClaimToken, DeliveryKeys, MessageDigest, Namespace};
use hookverify::{
    DeliveryStore, Duplicate, ManualClock, Outcome, ReceiveError, Receiver, Signer, Verifier,
};

use servers::PostgresServer;

const LEASE: Duration = Duration::from_secs(30);
const RETAIN: Duration = Duration::from_secs(600);
/// A lease or retention meant to end during a test.
const SHORT: Duration = Duration::from_secs(1);
/// Long enough past [`SHORT`] for it to have ended on the server.
const PAST_SHORT: Duration = Duration::from_millis(1_300);

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::from_unix(replicas::START_UNIX).expect("in range"))
}

fn keys(namespace: &Namespace, id: &str) -> DeliveryKeys {
    DeliveryKeys::new(
        namespace,
        Some(id),
        &MessageDigest::of(&[b"message of ", id.as_bytes()]),
    )
}

fn token() -> ClaimToken {
    ClaimToken::random().expect("randomness")
}

fn random_name(what: &str) -> String {
    format!("{what}_{:016x}", token().get())
}

fn random_namespace(what: &str) -> Namespace {
    Namespace::new(&random_name(what)).expect("valid namespace")
}

/// A migrated store on `server`.
async fn store(server: &PostgresServer) -> PostgresStore {
    let store = PostgresStore::connect(server.url()).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

async fn claim(store: &PostgresStore, keys: &DeliveryKeys) -> Claim {
    store.claim(keys, token(), LEASE).await.expect("claim")
}

async fn fresh_for(store: &PostgresStore, keys: &DeliveryKeys, lease: Duration) -> ClaimToken {
    let token = token();
    match store.claim(keys, token, lease).await.expect("claim") {
        Claim::Fresh => token,
        other => panic!("fresh claim expected, got {other:?}"),
    }
}

async fn fresh(store: &PostgresStore, keys: &DeliveryKeys) -> ClaimToken {
    fresh_for(store, keys, LEASE).await
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

/// Rows of the namespace in the store's table.
async fn rows(store: &PostgresStore, ns: &Namespace) -> i64 {
    let client = store.pool().get().await.expect("connection");
    client
        .query_one(
            "SELECT count(*) FROM hookverify_deliveries WHERE key LIKE $1",
            &[&format!("{}:%", ns.as_str())],
        )
        .await
        .expect("count")
        .get(0)
}

fn verifier(secret: &str, clock: &Arc<ManualClock>) -> Verifier {
    Verifier::builder()
        .secret("current", secret)
        .clock(Arc::clone(clock))
        .build()
        .expect("verifier")
}

fn signed(secret: &str, clock: &Arc<ManualClock>, id: &str, body: &[u8]) -> http::HeaderMap {
    Signer::new(secret)
        .expect("signer")
        .clock(Arc::clone(clock))
        .sign(id, body)
        .header_map()
        .expect("headers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_store_conforms() {
    let server = PostgresServer::start();
    store(&server).await;
    let url = server.url().to_owned();
    hookverify::testing::run_conformance(|| {
        let url = url.clone();
        async move { PostgresStore::connect(&url).await.expect("connect") }
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

/// A table made by the previous version (completed rows without a token, a check on that) is
/// upgraded in place, and its completed deliveries are still remembered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migration_upgrades_the_previous_table() {
    let server = PostgresServer::start();
    let store = PostgresStore::connect(server.url()).await.expect("connect");
    let ns = random_namespace("upgrade");
    let done = keys(&ns, "dlv_done_before");
    {
        let client = store.pool().get().await.expect("connection");
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS hookverify_deliveries (
                    key text PRIMARY KEY, token bigint, until_ms bigint NOT NULL,
                    completed boolean NOT NULL DEFAULT false,
                    CONSTRAINT hookverify_deliveries_state CHECK (completed = (token IS NULL)));",
            )
            .await
            .expect("old table");
        let id = done.id().expect("an id").as_str();
        client
            .execute(
                "INSERT INTO hookverify_deliveries (key, token, until_ms, completed)
                 VALUES ($1, NULL, (extract(epoch FROM now()) * 1000)::bigint + 600000, true)",
                &[&id],
            )
            .await
            .expect("old row");
    }
    store.migrate().await.expect("migrate");
    assert_eq!(claim(&store, &done).await, Claim::Completed);
    let token = fresh(&store, &keys(&ns, "dlv_after")).await;
    assert!(
        store
            .complete(&keys(&ns, "dlv_after"), token, RETAIN)
            .await
            .expect("complete")
    );
}

/// A database made by the version before the claim recorded delivery ids (its table and
/// functions, verbatim) is upgraded in place: a message it completed is still a replay (naming
/// no id, since none was recorded), a receiver of that version keeps claiming and completing
/// through its own signatures during a rolling upgrade, and new completions name their id. In
/// a schema of its own, so that a shared server's other tests are not disturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migration_upgrades_the_version_before_delivery_ids() {
    let server = PostgresServer::start();
    let schema = random_name("before_ids");
    {
        let admin = PostgresStore::connect(server.url()).await.expect("connect");
        let client = admin.pool().get().await.expect("connection");
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .expect("schema");
    }
    let separator = if server.url().contains('?') { '&' } else { '?' };
    let url = format!(
        "{}{separator}options=-csearch_path%3D{schema}",
        server.url()
    );
    let store = PostgresStore::connect(&url).await.expect("connect");
    let client = store.pool().get().await.expect("connection");
    client
        .batch_execute(include_str!(
            "fixtures/postgres_migration_before_delivery_id.sql"
        ))
        .await
        .expect("the previous migration");
    // What a receiver of the previous version sends: `SELECT hookverify_claim($1, $2, $3, $4)`.
    let previous_claim = |keys: &DeliveryKeys, token: ClaimToken| {
        let keys: Vec<String> = keys.all().map(|key| key.as_str().to_owned()).collect();
        let token = i64::from_le_bytes(token.get().to_le_bytes());
        let client = &client;
        async move {
            client
                .query_one(
                    "SELECT hookverify_claim($1::text[], $2::bigint, $3::bigint, $4::integer)",
                    &[&keys, &token, &30_000_i64, &1_000_i32],
                )
                .await
                .expect("the previous claim")
                .get::<_, i32>(0)
        }
    };
    // And its completion: `SELECT hookverify_complete($1, $2, $3, $4)`.
    let previous_complete = |keys: &DeliveryKeys, token: ClaimToken| {
        let keys: Vec<String> = keys.all().map(|key| key.as_str().to_owned()).collect();
        let token = i64::from_le_bytes(token.get().to_le_bytes());
        let retain = i64::try_from(RETAIN.as_millis()).expect("in range");
        let client = &client;
        async move {
            client
                .query_one(
                    "SELECT hookverify_complete($1::text[], $2::bigint, $3::bigint, $4::integer)",
                    &[&keys, &token, &retain, &1_000_i32],
                )
                .await
                .expect("the previous completion")
                .get::<_, bool>(0)
        }
    };
    let ns = random_namespace("before_ids");
    let before = keys(&ns, "dlv_before");
    let owner = token();
    assert_eq!(previous_claim(&before, owner).await, 0, "fresh");
    assert!(previous_complete(&before, owner).await);

    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrate again");
    let replay = DeliveryKeys::new(
        &ns,
        Some("dlv_copy"),
        &MessageDigest::of(&[b"message of ", b"dlv_before"]),
    );
    assert_eq!(
        claim(&store, &replay).await,
        Claim::Replay { completed_by: None }
    );
    assert_eq!(claim(&store, &before).await, Claim::Completed);

    // A receiver not upgraded yet: its claims still work and still exclude the others.
    let during = keys(&ns, "dlv_during");
    let owner = token();
    assert_eq!(previous_claim(&during, owner).await, 0, "fresh");
    assert_eq!(previous_claim(&during, token()).await, 1, "in flight");
    assert_eq!(claim(&store, &during).await, Claim::InFlight);
    assert!(previous_complete(&during, owner).await);
    let replay = DeliveryKeys::new(
        &ns,
        Some("dlv_copy"),
        &MessageDigest::of(&[b"message of ", b"dlv_during"]),
    );
    assert_eq!(previous_claim(&replay, token()).await, 3, "a replay");

    // Upgraded receivers record the id, and a replay names it.
    let after = keys(&ns, "dlv_after");
    let owner = fresh(&store, &after).await;
    assert!(
        store
            .complete(&after, owner, RETAIN)
            .await
            .expect("complete")
    );
    let replay = DeliveryKeys::new(
        &ns,
        Some("dlv_copy"),
        &MessageDigest::of(&[b"message of ", b"dlv_after"]),
    );
    assert_eq!(
        claim(&store, &replay).await,
        Claim::Replay {
            completed_by: Some("dlv_after".into())
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_receivers_sharing_postgres_handle_each_delivery_once() {
    let server = PostgresServer::start();
    // Two pools: as two processes would have.
    let a = store(&server).await;
    let b = store(&server).await;
    let tally = replicas::each_delivery_handled_once(a, b, clock()).await;
    eprintln!("postgres replicas: {tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_across_replicas_sharing_postgres_is_one_message() {
    let server = PostgresServer::start();
    let a = store(&server).await;
    let b = store(&server).await;
    replicas::rotation_across_replicas_is_one_message(a, b).await;
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
    let store = Arc::new(store(&server).await.timeout(Duration::from_millis(500)));
    let ns = random_namespace("outage");
    let before = keys(&ns, "dlv_before");
    let token = fresh(&store, &before).await;

    server.kill();

    let during = keys(&ns, "dlv_during");
    for _ in 0..5 {
        let started = Instant::now();
        assert!(store.claim(&during, self::token(), LEASE).await.is_err());
        assert!(store.renew(&before, token, LEASE).await.is_err());
        assert!(store.complete(&before, token, RETAIN).await.is_err());
        assert!(store.release(&before, token, RETAIN).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    let receiver =
        Receiver::<PostgresStore>::builder(verifier("whsec_outage", &clock), Arc::clone(&store))
            .namespace(ns.clone())
            .store_timeout(Duration::from_millis(500))
            .build()
            .expect("receiver");
    let headers = signed("whsec_outage", &clock, "dlv_outage", b"{}");
    match receiver.receive(&headers, b"{}").await {
        Err(error @ ReceiveError::StoreUnavailable(_)) => {
            assert_eq!(error.kind().as_str(), "store_unavailable")
        }
        Err(other) => panic!("expected store_unavailable, got {other}"),
        Ok(_) => panic!("a delivery was accepted while the store was down"),
    }

    server.restart();

    let started = Instant::now();
    loop {
        match store
            .claim(&keys(&ns, "dlv_after"), self::token(), LEASE)
            .await
        {
            Ok(Claim::Fresh) => break,
            Ok(other) => panic!("fresh claim expected, got {other:?}"),
            Err(error) => {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "the store did not recover: {error}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
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

/// The recipe with the store alone: claim, do the work and `complete_in` inside one
/// transaction. Rolled back, nothing is recorded and the claim is released; committed, the
/// delivery is completed together with its effect, and a later `complete` with the same
/// token (the guard's) confirms it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn completion_commits_or_rolls_back_with_the_callers_transaction() {
    let server = PostgresServer::start();
    let store = store(&server).await;
    let table = effects_table(&store).await;
    let keys = keys(&random_namespace("recipe"), "dlv_recipe");

    let token = fresh(&store, &keys).await;
    {
        let mut client = store.pool().get().await.expect("connection");
        let tx = client.transaction().await.expect("begin");
        tx.execute(&format!("INSERT INTO {table} (id) VALUES (1)"), &[])
            .await
            .expect("effect");
        assert!(
            store
                .complete_in(&*tx, &keys, token, RETAIN)
                .await
                .expect("complete_in")
        );
        tx.rollback().await.expect("rollback");
    }
    assert_eq!(effects(&store, &table).await, 0);
    // The rollback undid the completion: the claim is still held, and its owner releases it.
    assert_eq!(claim(&store, &keys).await, Claim::InFlight);
    assert!(store.release(&keys, token, RETAIN).await.expect("release"));

    let token = fresh(&store, &keys).await;
    {
        let mut client = store.pool().get().await.expect("connection");
        let tx = client.transaction().await.expect("begin");
        tx.execute(&format!("INSERT INTO {table} (id) VALUES (1)"), &[])
            .await
            .expect("effect");
        assert!(
            store
                .complete_in(&*tx, &keys, token, RETAIN)
                .await
                .expect("complete_in")
        );
        tx.commit().await.expect("commit");
    }
    assert_eq!(effects(&store, &table).await, 1);
    assert_eq!(claim(&store, &keys).await, Claim::Completed);
    // Completing again with the same token confirms it; another token cannot.
    assert!(
        store
            .complete(&keys, token, RETAIN)
            .await
            .expect("complete")
    );
    assert!(
        !store
            .complete(&keys, self::token(), RETAIN)
            .await
            .expect("complete")
    );
    // A completed delivery can be neither released nor renewed by its old owner.
    assert!(!store.release(&keys, token, RETAIN).await.expect("release"));
    assert!(!store.renew(&keys, token, LEASE).await.expect("renew"));
    assert_eq!(claim(&store, &keys).await, Claim::Completed);
}

/// A rolled-back completion whose claim is never released lapses with the lease; the stale
/// owner's later `complete_in` and `release_in` answer false (and the caller rolls back).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolled_back_claim_lapses_and_the_stale_owner_is_fenced() {
    let server = PostgresServer::start();
    let store = store(&server).await;
    let keys = keys(&random_namespace("lapse"), "dlv_lapse");

    let stale = fresh_for(&store, &keys, SHORT).await;
    {
        let mut client = store.pool().get().await.expect("connection");
        let tx = client.transaction().await.expect("begin");
        assert!(
            store
                .complete_in(&*tx, &keys, stale, RETAIN)
                .await
                .expect("complete_in")
        );
        tx.rollback().await.expect("rollback");
    }
    assert_eq!(claim(&store, &keys).await, Claim::InFlight);
    tokio::time::sleep(PAST_SHORT).await;
    let current = fresh(&store, &keys).await;

    let mut client = store.pool().get().await.expect("connection");
    let tx = client.transaction().await.expect("begin");
    assert!(
        !store
            .complete_in(&*tx, &keys, stale, RETAIN)
            .await
            .expect("complete_in")
    );
    assert!(
        !store
            .release_in(&*tx, &keys, stale, RETAIN)
            .await
            .expect("release_in")
    );
    // The stale owner's failed attempts hold no lock: the current owner completes while the
    // stale transaction is still open.
    let started = Instant::now();
    assert!(
        store
            .complete(&keys, current, RETAIN)
            .await
            .expect("complete")
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    tx.rollback().await.expect("rollback");
    assert_eq!(claim(&store, &keys).await, Claim::Completed);
}

/// While a transaction holds an uncommitted completion, a concurrent claim waits for it,
/// even past the lease: a commit makes it a duplicate, a rollback lets it through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrent_claim_waits_for_the_completing_transaction() {
    let server = PostgresServer::start();
    let store = Arc::new(store(&server).await.timeout(Duration::from_secs(5)));
    let ns = random_namespace("wait");

    for commit in [true, false] {
        let keys = Arc::new(keys(
            &ns,
            if commit { "dlv_commit" } else { "dlv_rollback" },
        ));
        let token = fresh_for(&store, &keys, SHORT).await;
        let mut client = store.pool().get().await.expect("connection");
        let tx = client.transaction().await.expect("begin");
        assert!(
            store
                .complete_in(&*tx, &keys, token, RETAIN)
                .await
                .expect("complete_in")
        );
        // Past the lease: were the claim not held by the transaction, it would be fresh now.
        tokio::time::sleep(PAST_SHORT).await;
        let contender = {
            let (store, keys) = (Arc::clone(&store), Arc::clone(&keys));
            tokio::spawn(async move { store.claim(&keys, self::token(), LEASE).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !contender.is_finished(),
            "the contender must wait for the transaction"
        );
        if commit {
            tx.commit().await.expect("commit");
            let answer = contender.await.expect("task").expect("claim");
            assert_eq!(answer, Claim::Completed, "never fresh after a commit");
        } else {
            tx.rollback().await.expect("rollback");
            let answer = contender.await.expect("task").expect("claim");
            assert_eq!(
                answer,
                Claim::Fresh,
                "the lease ran out and the completion was rolled back"
            );
        }
    }
}

/// Claiming inside a transaction: a rollback undoes the claim, no release needed; a commit
/// publishes it together with its completion.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claim_in_a_transaction_is_undone_by_rollback() {
    let server = PostgresServer::start();
    let store = store(&server).await;
    let keys = keys(&random_namespace("claim-in"), "dlv_claim_in");
    let mut client = store.pool().get().await.expect("connection");

    let tx = client.transaction().await.expect("begin");
    assert_eq!(
        store
            .claim_in(&*tx, &keys, token(), LEASE)
            .await
            .expect("claim_in"),
        Claim::Fresh
    );
    tx.rollback().await.expect("rollback");

    let tx = client.transaction().await.expect("begin");
    let token = token();
    assert_eq!(
        store
            .claim_in(&*tx, &keys, token, LEASE)
            .await
            .expect("claim_in"),
        Claim::Fresh,
        "the rolled-back claim left nothing behind"
    );
    assert!(
        store
            .complete_in(&*tx, &keys, token, RETAIN)
            .await
            .expect("complete_in")
    );
    tx.commit().await.expect("commit");
    assert_eq!(claim(&store, &keys).await, Claim::Completed);
}

/// A `claim_in` that loses keeps nothing in its (still open) transaction: not the key it took
/// before losing, not a lock on the key it lost. The owner completes at once, and the loser's
/// delivery id is free for another claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_claim_in_keeps_no_key_and_no_lock() {
    let server = PostgresServer::start();
    let store = store(&server).await.timeout(Duration::from_secs(2));
    let ns = random_namespace("loser");
    let message = MessageDigest::of(&[b"the shared message"]);
    let owned = DeliveryKeys::new(&ns, Some("dlv_owner"), &message);
    // The same signed bytes under another id: the loser takes its id, then loses the message.
    let copy = DeliveryKeys::new(&ns, Some("dlv_copy"), &message);
    let owner = fresh(&store, &owned).await;

    let mut client = store.pool().get().await.expect("connection");
    let tx = client.transaction().await.expect("begin");
    assert_eq!(
        store
            .claim_in(&*tx, &copy, token(), LEASE)
            .await
            .expect("claim_in"),
        Claim::InFlight
    );
    // Another transaction also loses on the owner's delivery id itself.
    let mut other_client = store.pool().get().await.expect("connection");
    let other_tx = other_client.transaction().await.expect("begin");
    assert_eq!(
        store
            .claim_in(&*other_tx, &owned, token(), LEASE)
            .await
            .expect("claim_in"),
        Claim::InFlight
    );

    // Both losers' transactions are open. The copy's id is free...
    let elsewhere = DeliveryKeys::new(&ns, Some("dlv_copy"), &MessageDigest::of(&[b"other"]));
    let started = Instant::now();
    fresh(&store, &elsewhere).await;
    // ...and the owner renews and completes at once.
    assert!(store.renew(&owned, owner, LEASE).await.expect("renew"));
    assert!(
        store
            .complete(&owned, owner, RETAIN)
            .await
            .expect("complete")
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "the losers' transactions held locks ({:?})",
        started.elapsed()
    );
    // The functions restored the caller's lock_timeout (the server default, off).
    let setting: String = tx
        .query_one("SHOW lock_timeout", &[])
        .await
        .expect("show")
        .get(0);
    assert_eq!(setting, "0");
    tx.commit().await.expect("commit");
    other_tx.commit().await.expect("commit");
    assert_eq!(claim(&store, &owned).await, Claim::Completed);
    assert_eq!(
        claim(&store, &copy).await,
        Claim::InFlight,
        "the copy's id is held by the claim made meanwhile"
    );
}

/// The message key is checked after the id, in the documented order, and a lost claim of a
/// delivery without an id answers a replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_follow_the_documented_order() {
    let server = PostgresServer::start();
    let store = store(&server).await;
    let ns = random_namespace("order");
    let done = keys(&ns, "dlv_done");
    let held = keys(&ns, "dlv_held");
    let token = fresh(&store, &done).await;
    assert!(
        store
            .complete(&done, token, RETAIN)
            .await
            .expect("complete")
    );
    fresh(&store, &held).await;
    // Completed id with a held message: completed (the id comes first).
    let mixed = DeliveryKeys::new(
        &ns,
        Some("dlv_done"),
        &MessageDigest::of(&[b"message of ", b"dlv_held"]),
    );
    assert_eq!(claim(&store, &mixed).await, Claim::Completed);
    // Held id with a completed message: in flight.
    let mixed = DeliveryKeys::new(
        &ns,
        Some("dlv_held"),
        &MessageDigest::of(&[b"message of ", b"dlv_done"]),
    );
    assert_eq!(claim(&store, &mixed).await, Claim::InFlight);
    // A free id with a completed message: a replay.
    let replay = DeliveryKeys::new(
        &ns,
        Some("dlv_new"),
        &MessageDigest::of(&[b"message of ", b"dlv_done"]),
    );
    let by_done = Claim::Replay {
        completed_by: Some("dlv_done".into()),
    };
    assert_eq!(claim(&store, &replay).await, by_done);
    let anonymous = DeliveryKeys::new(
        &ns,
        None,
        &MessageDigest::of(&[b"message of ", b"dlv_done"]),
    );
    assert_eq!(claim(&store, &anonymous).await, by_done);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cleanup_deletes_expired_rows_only() {
    let server = PostgresServer::start();
    let store = store(&server).await.cleanup_every(0);
    let ns = random_namespace("cleanup");
    let lapsed = keys(&ns, "dlv_lapsed");
    let done = keys(&ns, "dlv_done");
    let young = keys(&ns, "dlv_young");
    fresh_for(&store, &lapsed, SHORT).await;
    let token = fresh(&store, &done).await;
    assert!(
        store
            .complete(&done, token, Duration::from_secs(2))
            .await
            .expect("complete")
    );
    tokio::time::sleep(PAST_SHORT).await;
    fresh(&store, &young).await;
    assert_eq!(rows(&store, &ns).await, 6, "two keys per delivery");
    // The expired lease goes; the completed (2 s) and the young claim stay.
    assert!(store.cleanup().await.expect("cleanup") >= 2);
    assert_eq!(rows(&store, &ns).await, 4);
    assert_eq!(claim(&store, &done).await, Claim::Completed);
    assert_eq!(claim(&store, &young).await, Claim::InFlight);
    tokio::time::sleep(Duration::from_secs(2)).await;
    store.cleanup().await.expect("cleanup");
    assert_eq!(rows(&store, &ns).await, 2, "only the young claim is left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn background_cleanup_runs_every_n_claims() {
    let server = PostgresServer::start();
    let store = store(&server).await.cleanup_every(10);
    let ns = random_namespace("background");
    for n in 0..9 {
        fresh_for(&store, &keys(&ns, &format!("dlv_{n}")), SHORT).await;
    }
    tokio::time::sleep(PAST_SHORT).await;
    // The tenth claim starts a batch that deletes the nine expired claims.
    fresh(&store, &keys(&ns, "dlv_tenth")).await;
    let started = Instant::now();
    loop {
        let count = rows(&store, &ns).await;
        if count == 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the background cleanup did not run ({count} rows)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_store_error_not_a_hang() {
    let port = servers::free_port();
    let started = Instant::now();
    let result = PostgresStore::connect(&format!("postgres://postgres@127.0.0.1:{port}/x")).await;
    assert!(result.is_err(), "nothing listens on port {port}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(PostgresStore::connect("postgres://[bad").await.is_err());
}

/// The exactly-once recipe through `Receiver`: the guard hands out its keys and token, the
/// delivery completes inside the caller's transaction with the effects, and the guard's
/// `complete` then confirms it. A rolled-back attempt is released and its retry handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn receiver_guard_completes_inside_the_callers_transaction() {
    let server = PostgresServer::start();
    let clock = clock();
    let store = Arc::new(store(&server).await);
    let table = effects_table(&store).await;
    let receiver =
        Receiver::<PostgresStore>::builder(verifier("whsec_recipe", &clock), Arc::clone(&store))
            .namespace(random_namespace("tx"))
            .build()
            .expect("receiver");
    let body = br#"{"type":"order.placed"}"#;
    let headers = signed("whsec_recipe", &clock, "dlv_tx", body);

    for commit in [false, true] {
        let Outcome::Fresh(guard) = receiver.receive(&headers, body).await.expect("receive") else {
            panic!("the delivery must be fresh (commit = {commit})");
        };
        let (keys, token) = guard.claim();
        let mut client = store.pool().get().await.expect("connection");
        let tx = client.transaction().await.expect("begin");
        tx.execute(&format!("INSERT INTO {table} (id) VALUES (1)"), &[])
            .await
            .expect("effect");
        assert!(
            store
                .complete_in(&*tx, keys, token, receiver.retention())
                .await
                .expect("complete_in")
        );
        if commit {
            tx.commit().await.expect("commit");
            guard
                .complete()
                .await
                .expect("the guard confirms the completion");
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
        Outcome::Duplicate(Duplicate::Completed)
    ));
    let mut replay = headers.clone();
    replay.insert(
        "x-agent-delivery-id",
        "dlv_tx_forged".parse().expect("value"),
    );
    assert!(matches!(
        receiver.receive(&replay, body).await.expect("receive"),
        Outcome::Duplicate(Duplicate::Replay)
    ));
}
