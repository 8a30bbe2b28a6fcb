//! Faults injected for real on a throwaway PostgreSQL server, and the guarantee a receiver
//! keeps through each:
//!
//! - a table locked by another session (a stalled store): the delivery fails with
//!   `StoreUnavailable`, the server cancels the stuck claim itself, and the provider's retry
//!   after the stall is fresh (no orphaned claim answers "in flight");
//! - a server that finishes a claim after the client gave up (a slow commit): the receiver
//!   releases that claim with its token, so the retry is fresh;
//! - a loser's open transaction after a lost `claim_in`: it holds no lock, so the owner
//!   completes at once;
//! - the clock: leases and retention are written and judged by the server's clock, whatever
//!   the receiver's clock says;
//! - a claim whose answer was lost: repeated with the same token it is the same claim, and
//!   its token releases it;
//! - a claim whose caller stopped waiting (a dropped future) while it waited behind a lock, or
//!   whose connection was cut then: taken back with its token once it lands.
//!
//! Each test starts its own server (Debian package `postgresql`), or uses
//! `HOOKVERIFY_TEST_POSTGRES_URL` when set.
#![cfg(all(feature = "postgres", feature = "testing"))]

#[path = "common/proxy.rs"]
mod proxy;
#[path = "common/servers.rs"]
mod servers;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hookverify::store::postgres::PostgresStore;
use hookverify::store::{Claim, ClaimToken, DeliveryKeys, MessageDigest, Namespace};
use hookverify::{
    DeliveryStore, Duplicate, ManualClock, Outcome, ReceiveError, Receiver, Signer, Verifier,
};
use tokio_postgres::NoTls;

use proxy::StallProxy;
use servers::PostgresServer;

const SECRET: &str = "whsec_faults";
const TABLE: &str = "hookverify_deliveries";
const LEASE: Duration = Duration::from_secs(30);
const RETAIN: Duration = Duration::from_secs(600);
/// The receivers' clock: 2025-11-24T16:00:00Z, whatever the real time is.
const START_UNIX: i64 = 1_764_000_000;

fn token() -> ClaimToken {
    ClaimToken::random().expect("randomness")
}

fn random_namespace(what: &str) -> Namespace {
    Namespace::new(&format!("{what}-{:016x}", token().get())).expect("valid namespace")
}

fn keys(ns: &Namespace, id: &str) -> DeliveryKeys {
    DeliveryKeys::new(ns, Some(id), &MessageDigest::of(&[id.as_bytes()]))
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::from_unix(START_UNIX).expect("in range"))
}

/// A migrated store on `server`, its calls bounded by `timeout`.
async fn store(server: &PostgresServer, timeout: Duration) -> Arc<PostgresStore> {
    store_at(server.url(), timeout).await
}

/// A migrated store at `url` (a server, or a proxy in front of one).
async fn store_at(url: &str, timeout: Duration) -> Arc<PostgresStore> {
    let store = PostgresStore::connect(url)
        .await
        .expect("connect")
        .timeout(timeout);
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

fn receiver(
    store: &Arc<PostgresStore>,
    clock: &Arc<ManualClock>,
    ns: &Namespace,
    store_timeout: Duration,
) -> Receiver<PostgresStore> {
    let verifier = Verifier::builder()
        .secret("current", SECRET)
        .clock(Arc::clone(clock))
        .build()
        .expect("verifier");
    Receiver::<PostgresStore>::builder(verifier, Arc::clone(store))
        .namespace(ns.clone())
        .store_timeout(store_timeout)
        .build()
        .expect("receiver")
}

fn signed(clock: &Arc<ManualClock>, id: &str, body: &[u8]) -> http::HeaderMap {
    Signer::new(SECRET)
        .expect("signer")
        .clock(Arc::clone(clock))
        .sign(id, body)
        .header_map()
        .expect("headers")
}

/// A session of its own, outside the store's pool.
async fn session(server: &PostgresServer) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(server.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Another session (`psql`, through the servers helper) takes `LOCK TABLE <table> IN ACCESS
/// EXCLUSIVE MODE` and holds it for `hold` from the moment this returns; await the returned
/// task to wait until the lock is gone.
fn lock_table_for(
    server: &PostgresServer,
    table: &str,
    hold: Duration,
) -> tokio::task::JoinHandle<()> {
    let session = tokio::task::block_in_place(|| server.lock_table_for(table, hold));
    tokio::task::spawn_blocking(move || session.join().expect("the locking session failed"))
}

/// Makes the server stall once, for `stall`, right after it wrote the next row of the store
/// (as a slow commit would): a row trigger that sleeps the first time it fires.
async fn stall_next_write(server: &PostgresServer, stall: Duration) {
    let client = session(server).await;
    client
        .batch_execute(&format!(
            "CREATE SEQUENCE faults_stall_once;
             CREATE FUNCTION faults_stall() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF nextval('faults_stall_once') = 1 THEN
                     PERFORM pg_sleep({});
                 END IF;
                 RETURN NULL;
             END $$;
             CREATE TRIGGER faults_stall AFTER INSERT OR UPDATE ON {TABLE}
                 FOR EACH ROW EXECUTE FUNCTION faults_stall();",
            stall.as_secs_f64()
        ))
        .await
        .expect("install the stall");
}

/// Rows of the namespace in the store's table.
async fn rows(server: &PostgresServer, ns: &Namespace) -> i64 {
    session(server)
        .await
        .query_one(
            &format!("SELECT count(*) FROM {TABLE} WHERE key LIKE $1"),
            &[&format!("{}:%", ns.as_str())],
        )
        .await
        .expect("count")
        .get(0)
}

fn expect_unavailable<T>(result: Result<T, ReceiveError>) -> ReceiveError {
    match result {
        Err(error @ ReceiveError::StoreUnavailable(_)) => error,
        Err(other) => panic!("expected store_unavailable, got {other}"),
        Ok(_) => panic!("a delivery was accepted while the store was stalled"),
    }
}

/// 1. A stalled store orphans nothing: while another session holds the table locked for 3 s,
///    a delivery fails with `StoreUnavailable` (the server gave up on the lock first), and
///    the provider's retry 1 s after the lock is gone (same id, same bytes) is fresh. Before
///    the server-side bound, the claim landed when the lock went away and the retry was
///    answered "in flight" until the lease ran out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_store_orphans_nothing() {
    let server = PostgresServer::start();
    let store = store(&server, Duration::from_secs(2)).await;
    let clock = clock();
    let ns = random_namespace("stalled");
    let receiver = receiver(&store, &clock, &ns, Duration::from_secs(2));
    let body = br#"{"type":"stalled"}"#;
    let headers = signed(&clock, "dlv_stalled", body);

    let lock = lock_table_for(&server, TABLE, Duration::from_secs(3));
    let started = Instant::now();
    let error = expect_unavailable(receiver.receive(&headers, body).await);
    let failed_after = started.elapsed();
    assert!(
        failed_after < Duration::from_millis(2_200),
        "bounded by the store timeout: {failed_after:?}"
    );
    assert!(
        error.to_string().contains("lock timeout"),
        "the server cancelled the claim itself: {error}"
    );
    lock.await.expect("lock task");
    tokio::time::sleep(Duration::from_secs(1)).await;

    let Outcome::Fresh(guard) = receiver.receive(&headers, body).await.expect("receive") else {
        panic!("the provider's retry after the stall must be fresh");
    };
    guard.complete().await.expect("complete");
    assert!(matches!(
        receiver.receive(&headers, body).await.expect("receive"),
        Outcome::Duplicate(Duplicate::Completed)
    ));
    eprintln!("failed after {failed_after:?}");
}

/// The same stall against the store alone, with no receiver to release anything: the server
/// cancels the claim before the client's timeout, and nothing lands once the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_stuck_behind_a_lock_is_cancelled_by_the_server() {
    let server = PostgresServer::start();
    let store = store(&server, Duration::from_secs(2)).await;
    let ns = random_namespace("cancelled");
    let delivery = keys(&ns, "dlv_cancelled");

    let lock = lock_table_for(&server, TABLE, Duration::from_millis(2_500));
    let started = Instant::now();
    let error = store
        .claim(&delivery, token(), LEASE)
        .await
        .expect_err("the table is locked");
    let elapsed = started.elapsed();
    assert!(
        error.to_string().contains("lock timeout"),
        "the server gave up first: {error}"
    );
    assert!(
        (Duration::from_millis(1_700)..Duration::from_secs(2)).contains(&elapsed),
        "the server waits nine tenths of the timeout: {elapsed:?}"
    );
    lock.await.expect("lock task");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        rows(&server, &ns).await,
        0,
        "the cancelled claim left no row"
    );
    assert_eq!(
        store.claim(&delivery, token(), LEASE).await.expect("claim"),
        Claim::Fresh
    );
}

/// The provider's retries, every 100 ms for 10 s from `started`: when (since `started`) one was
/// fresh (it is then completed), or what they got instead. "In flight" and a store error mean
/// "not yet".
async fn first_fresh_retry(
    receiver: &Receiver<PostgresStore>,
    headers: &http::HeaderMap,
    body: &[u8],
    started: Instant,
) -> Result<Duration, String> {
    let (mut in_flight, mut errors) = (0, Vec::new());
    while started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match receiver.receive(headers, body).await {
            Ok(Outcome::Fresh(guard)) => {
                let at = started.elapsed();
                guard.complete().await.expect("complete");
                return Ok(at);
            }
            Ok(Outcome::Duplicate(Duplicate::InFlight)) => in_flight += 1,
            Err(error @ ReceiveError::StoreUnavailable(_)) => errors.push(error.to_string()),
            Ok(Outcome::Duplicate(other)) => panic!("unexpected duplicate: {other:?}"),
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    Err(format!(
        "{in_flight} retries in flight, {} store errors: {errors:?}",
        errors.len()
    ))
}

/// A claim the server finishes after the receiver gave up on it (the server stalls after
/// writing, as on a slow commit; no lock is involved, so no lock timeout helps) is released
/// in the background with its token: the provider's retry is fresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_landing_after_the_timeout_is_released_with_its_token() {
    let server = PostgresServer::start();
    let store = store(&server, Duration::from_millis(500)).await;
    let clock = clock();
    let ns = random_namespace("late");
    let receiver = receiver(&store, &clock, &ns, Duration::from_millis(500));
    let body = br#"{"type":"late"}"#;
    let headers = signed(&clock, "dlv_late", body);

    stall_next_write(&server, Duration::from_millis(1_500)).await;
    let started = Instant::now();
    expect_unavailable(receiver.receive(&headers, body).await);
    assert!(started.elapsed() < Duration::from_millis(700));
    // The stalled claim commits at about 1.5 s; the background release waits for it.
    let retry = first_fresh_retry(&receiver, &headers, body, started)
        .await
        .unwrap_or_else(|seen| panic!("the late claim was never released ({seen})"));
    assert!(retry < Duration::from_secs(4), "released at {retry:?}");
    eprintln!("retry fresh after {retry:?}");
}

/// A claim whose caller stopped waiting before any timeout (the request's future was dropped:
/// the client hung up) while the claim waited behind a lock: it lands once the lock is gone,
/// and the receiver takes it back with its token, so the provider's retry is fresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_dropped_while_it_waits_is_taken_back_when_it_lands() {
    let server = PostgresServer::start();
    let store = store(&server, Duration::from_secs(2)).await;
    let clock = clock();
    let ns = random_namespace("dropped");
    let receiver = receiver(&store, &clock, &ns, Duration::from_secs(2));
    let body = br#"{"type":"dropped"}"#;
    let headers = signed(&clock, "dlv_dropped", body);

    // Well inside the server's own bound on the wait (nine tenths of 2 s): the claim lands.
    let lock = lock_table_for(&server, TABLE, Duration::from_millis(800));
    let started = Instant::now();
    let dropped =
        tokio::time::timeout(Duration::from_millis(300), receiver.receive(&headers, body)).await;
    assert!(dropped.is_err(), "the claim waits behind the lock");
    lock.await.expect("lock task");
    fresh_once_taken_back(&receiver, &headers, body, started).await;
}

/// The same wait behind a lock, but the connection is cut (a proxy closes it): the call fails
/// at once, yet the server still runs the claim when the lock goes (it notices the lost client
/// only when it answers). The receiver looks for the claim until it can no longer land, and
/// takes it back: the provider's retry is fresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_cut_off_while_it_waits_is_taken_back_when_it_lands() {
    let server = PostgresServer::start();
    if !server.is_owned() {
        eprintln!("skipped: HOOKVERIFY_TEST_POSTGRES_URL is set, and this test needs a proxy");
        return;
    }
    let proxy = StallProxy::in_front_of(server.url());
    let store = store_at(&proxy.url_for(server.url()), Duration::from_secs(2)).await;
    let clock = clock();
    let ns = random_namespace("cut");
    let receiver = receiver(&store, &clock, &ns, Duration::from_secs(2));
    let body = br#"{"type":"cut"}"#;
    let headers = signed(&clock, "dlv_cut", body);

    let lock = lock_table_for(&server, TABLE, Duration::from_millis(800));
    let started = Instant::now();
    let cut = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.cut();
    };
    let (result, ()) = tokio::join!(receiver.receive(&headers, body), cut);
    expect_unavailable(result);
    assert!(
        started.elapsed() < Duration::from_millis(800),
        "failed at the cut"
    );
    lock.await.expect("lock task");
    fresh_once_taken_back(&receiver, &headers, body, started).await;
}

/// The provider's retries after a claim that landed with nobody to answer: fresh within 4 s
/// of `started` (the claim held for the 30 s lease otherwise).
async fn fresh_once_taken_back(
    receiver: &Receiver<PostgresStore>,
    headers: &http::HeaderMap,
    body: &[u8],
    started: Instant,
) {
    let retry = first_fresh_retry(receiver, headers, body, started)
        .await
        .unwrap_or_else(|seen| panic!("the claim was never taken back ({seen})"));
    assert!(retry < Duration::from_secs(4), "taken back at {retry:?}");
    eprintln!("retry fresh after {retry:?}");
}

/// 2. A loser's `claim_in` holds no lock: while the loser's transaction stays open, the
///    owner (through its receiver) completes at once, and the same bytes under a fresh id
///    (whose id key the loser had taken before losing the message) are a replay at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_losers_claim_in_holds_no_lock() {
    let server = PostgresServer::start();
    let store = store(&server, Duration::from_secs(2)).await;
    let clock = clock();
    let ns = random_namespace("loser");
    let receiver = receiver(&store, &clock, &ns, Duration::from_secs(2));
    let body = br#"{"type":"contested"}"#;
    let headers = signed(&clock, "dlv_contested", body);
    let Outcome::Fresh(guard) = receiver.receive(&headers, body).await.expect("receive") else {
        panic!("the first delivery must be fresh");
    };
    let owned = guard.claim().0.clone();
    let message = MessageDigest::of(&[
        headers["x-agent-timestamp"].as_bytes(),
        b".",
        body.as_slice(),
    ]);
    assert_eq!(
        owned.message(),
        DeliveryKeys::new(&ns, None, &message).message(),
        "the test rebuilds the receiver's message key"
    );
    let copy = DeliveryKeys::new(&ns, Some("dlv_forged"), &message);

    // Two losers, each in a transaction it keeps open: one on the same delivery (it loses on
    // the id), one on the copy (it takes the copy's id, then loses on the message).
    let mut first = store.pool().get().await.expect("connection");
    let mut second = store.pool().get().await.expect("connection");
    let same_tx = first.transaction().await.expect("begin");
    let copy_tx = second.transaction().await.expect("begin");
    for (tx, keys) in [(&same_tx, &owned), (&copy_tx, &copy)] {
        assert_eq!(
            store
                .claim_in(&**tx, keys, token(), LEASE)
                .await
                .expect("claim_in"),
            Claim::InFlight
        );
    }

    let started = Instant::now();
    guard.complete().await.expect("the owner completes");
    let completed_after = started.elapsed();
    assert!(
        completed_after < Duration::from_millis(500),
        "the losers' open transactions delayed the owner: {completed_after:?}"
    );
    let mut forged = headers.clone();
    forged.insert("x-agent-delivery-id", "dlv_forged".parse().expect("value"));
    let started = Instant::now();
    assert!(matches!(
        receiver.receive(&forged, body).await.expect("receive"),
        Outcome::Duplicate(Duplicate::Replay)
    ));
    assert!(started.elapsed() < Duration::from_millis(500));
    same_tx.rollback().await.expect("rollback");
    copy_tx.rollback().await.expect("rollback");
    eprintln!("owner completed after {completed_after:?}");
}

/// Unix milliseconds on the server's clock, and the `until_ms` of `key`.
async fn server_now_and_until(client: &tokio_postgres::Client, key: &str) -> (i64, i64) {
    let row = client
        .query_one(
            &format!(
                "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint, until_ms
                 FROM {TABLE} WHERE key = $1"
            ),
            &[&key],
        )
        .await
        .expect("row");
    (row.get(0), row.get(1))
}

/// Checks that `key` ends `span` after the server's clock at the moment it was written: the
/// time the server counts since then (`lag`) fits in the time the client measured around the
/// write and this read, and nothing else (a receiver's clock) went into it.
async fn assert_ends_on_server_clock(
    client: &tokio_postgres::Client,
    key: &str,
    span: Duration,
    written_from: Instant,
) {
    let (now, until) = server_now_and_until(client, key).await;
    let around = written_from.elapsed();
    let span_ms = i64::try_from(span.as_millis()).expect("small");
    let lag = now + span_ms - until;
    let around_ms = i64::try_from(around.as_millis()).expect("small") + 1;
    assert!(
        (0..=around_ms).contains(&lag),
        "{key} must end {span_ms} ms after the server's clock when written: written {lag} ms \
         before the read, the client measured {around_ms} ms around both"
    );
}

/// 3. The clock is the server's: a claim through a receiver whose clock stands a long way
///    from now is written to end a lease after the server's now (within a few ms), and so is
///    its completion's retention; a 1 s lease ends on the server's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leases_and_retention_follow_the_servers_clock() {
    let server = PostgresServer::start();
    let store = store(&server, Duration::from_secs(2)).await;
    let clock = clock();
    let real_now_ms = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("in range");
    assert!(
        (real_now_ms - START_UNIX * 1000).abs() > 86_400_000,
        "the receiver's clock must stand far from the real time for this test"
    );
    let ns = random_namespace("clock");
    let receiver = receiver(&store, &clock, &ns, Duration::from_secs(2));
    let body = br#"{"type":"clock"}"#;
    let headers = signed(&clock, "dlv_clock", body);
    let client = session(&server).await;
    let started = Instant::now();
    let Outcome::Fresh(guard) = receiver.receive(&headers, body).await.expect("receive") else {
        panic!("fresh expected");
    };
    let written: Vec<String> = guard
        .claim()
        .0
        .all()
        .map(|key| key.as_str().to_owned())
        .collect();
    for key in &written {
        assert_ends_on_server_clock(&client, key, receiver.lease(), started).await;
    }
    let started = Instant::now();
    guard.complete().await.expect("complete");
    for key in &written {
        assert_ends_on_server_clock(&client, key, receiver.retention(), started).await;
    }

    let short = keys(&ns, "dlv_short");
    assert_eq!(
        store
            .claim(&short, token(), Duration::from_secs(1))
            .await
            .expect("claim"),
        Claim::Fresh
    );
    assert_eq!(
        store.claim(&short, token(), LEASE).await.expect("claim"),
        Claim::InFlight
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(
        store.claim(&short, token(), LEASE).await.expect("claim"),
        Claim::Fresh,
        "the 1 s lease ended on the server's clock"
    );
}

/// 4. A claim whose answer was lost (the client timed out while the server, stalled after
///    writing, still finished it): repeated with the same token it is fresh again, and still
///    one claim; its token releases it, and another token is then fresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_whose_answer_was_lost_is_idempotent_and_releasable() {
    let server = PostgresServer::start();
    let store = store(&server, Duration::from_millis(300)).await;
    let ns = random_namespace("lost");
    let delivery = keys(&ns, "dlv_lost_answer");
    let token = token();

    stall_next_write(&server, Duration::from_millis(800)).await;
    assert!(
        store.claim(&delivery, token, LEASE).await.is_err(),
        "the answer must be lost to the timeout"
    );
    let started = Instant::now();
    while rows(&server, &ns).await < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the stalled claim never landed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        store.claim(&delivery, token, LEASE).await.expect("claim"),
        Claim::Fresh,
        "the same token is the same claim"
    );
    assert_eq!(
        store
            .claim(&delivery, self::token(), LEASE)
            .await
            .expect("claim"),
        Claim::InFlight
    );
    assert!(
        store
            .release(&delivery, token, RETAIN)
            .await
            .expect("release")
    );
    assert_eq!(
        store
            .claim(&delivery, self::token(), LEASE)
            .await
            .expect("claim"),
        Claim::Fresh
    );
}
