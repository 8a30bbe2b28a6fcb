//! The Redis store against a real `redis-server`: the shared conformance suite, two receivers
//! sharing one server, and an outage (fail closed, then recovery without rebuilding the store).
//!
//! Each test starts its own server (Debian package `redis-server`), or uses
//! `HOOKVERIFY_TEST_REDIS_URL` when set.
#![cfg(all(feature = "redis", feature = "testing"))]

#[path = "common/replicas.rs"]
mod replicas;
#[path = "common/servers.rs"]
mod servers;

use std::sync::Arc;
use std::time::Instant;

use hookverify::store::redis::RedisStore;
use hookverify::store::{Claim, ClaimToken, DedupeKey, Namespace};
use hookverify::{DeliveryId, DeliveryStore, Error, ManualClock, Receiver, Signer, Verifier};
use time::Duration;

use servers::RedisServer;

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::from_unix(replicas::START_UNIX).expect("in range"))
}

fn key(namespace: &Namespace, id: &str) -> DedupeKey {
    DedupeKey::delivery(
        namespace,
        &DeliveryId::parse(id.as_bytes()).expect("valid id"),
    )
}

fn random_namespace(what: &str) -> Namespace {
    let token = ClaimToken::random().expect("randomness").get();
    Namespace::new(&format!("{what}-{token:016x}")).expect("valid namespace")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_conforms() {
    let server = RedisServer::start();
    let url = server.url().to_owned();
    hookverify::testing::run_conformance(|clock| {
        let url = url.clone();
        async move {
            RedisStore::connect(&url)
                .await
                .expect("connect")
                .prefix("hookverify-test:")
                .clock(clock)
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn values_and_ttls_follow_the_documented_layout() {
    let server = RedisServer::start();
    let clock = clock();
    let store = RedisStore::connect(server.url())
        .await
        .expect("connect")
        .prefix("layout:")
        .clock(Arc::clone(&clock));
    let ns = random_namespace("layout");
    let key = key(&ns, "dlv_layout");
    let Ok(Claim::Fresh(token)) = store.claim(&key, Duration::seconds(30)).await else {
        panic!("fresh claim expected");
    };
    let mut raw = store.connection().clone();
    let name = store.redis_key(&key);
    assert!(name.starts_with("layout:"));
    let (state, held_by, until): (String, String, i64) = redis::cmd("HMGET")
        .arg(&name)
        .arg("state")
        .arg("token")
        .arg("until")
        .query_async(&mut raw)
        .await
        .expect("HMGET");
    assert_eq!(state, "held");
    assert_eq!(held_by, token.get().to_string());
    assert_eq!(until, (replicas::START_UNIX + 30) * 1000);
    // The TTL is relative (lease plus the 1 s slack), whatever the injected clock says.
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&name)
        .query_async(&mut raw)
        .await
        .expect("PTTL");
    assert!((29_000..=31_000).contains(&ttl), "ttl {ttl}");

    assert!(
        store
            .complete(&key, token, Duration::seconds(600))
            .await
            .expect("complete")
    );
    let (state, held_by): (String, Option<String>) = redis::cmd("HMGET")
        .arg(&name)
        .arg("state")
        .arg("token")
        .query_async(&mut raw)
        .await
        .expect("HMGET");
    assert_eq!((state.as_str(), held_by), ("done", None));
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&name)
        .query_async(&mut raw)
        .await
        .expect("PTTL");
    assert!((599_000..=601_000).contains(&ttl), "ttl {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_receivers_sharing_redis_handle_each_delivery_once() {
    let server = RedisServer::start();
    let clock = clock();
    // Two connection managers: as two processes would have.
    let a = RedisStore::connect(server.url())
        .await
        .expect("connect")
        .clock(Arc::clone(&clock));
    let b = RedisStore::connect(server.url())
        .await
        .expect("connect")
        .clock(Arc::clone(&clock));
    let tally = replicas::each_delivery_handled_once(a, b, clock).await;
    eprintln!("redis replicas: {tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outage_fails_closed_then_recovers_without_rebuilding() {
    let mut server = RedisServer::start();
    if !server.is_owned() {
        eprintln!("skipped: HOOKVERIFY_TEST_REDIS_URL is set, and this test must stop the server");
        return;
    }
    let clock = clock();
    let bound = Duration::milliseconds(500);
    let store = Arc::new(
        RedisStore::connect(server.url())
            .await
            .expect("connect")
            .clock(Arc::clone(&clock))
            .timeout(bound),
    );
    let ns = random_namespace("outage");
    let before = key(&ns, "dlv_before");
    let Ok(Claim::Fresh(token)) = store.claim(&before, Duration::seconds(30)).await else {
        panic!("fresh claim expected");
    };

    server.kill();

    // Every call fails, within the bound (plus scheduling slack), with a StoreError.
    let during = key(&ns, "dlv_during");
    for _ in 0..5 {
        let started = Instant::now();
        assert!(store.claim(&during, Duration::seconds(30)).await.is_err());
        assert!(
            store
                .complete(&before, token, Duration::seconds(600))
                .await
                .is_err()
        );
        assert!(store.release(&before, token).await.is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
    }
    // A receiver fails closed: the delivery is not accepted.
    let verifier = Verifier::builder()
        .secret("outage", "whsec_outage")
        .clock(Arc::clone(&clock))
        .build()
        .expect("verifier");
    let receiver = Receiver::<RedisStore>::new(verifier, Arc::clone(&store)).namespace(ns.clone());
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

    // The same store recovers by itself once the server is back.
    let after = key(&ns, "dlv_after");
    let started = Instant::now();
    let token = loop {
        match store.claim(&after, Duration::seconds(30)).await {
            Ok(Claim::Fresh(token)) => break token,
            Ok(other) => panic!("fresh claim expected, got {other:?}"),
            Err(error) => {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(20),
                    "the store did not recover: {error}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(
        store
            .claim(&after, Duration::seconds(30))
            .await
            .expect("claim"),
        Claim::InFlight
    );
    assert!(
        store
            .complete(&after, token, Duration::seconds(600))
            .await
            .expect("complete")
    );
    assert!(matches!(
        receiver.receive(&headers, b"{}").await.expect("receive"),
        hookverify::Outcome::Fresh(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_store_error_not_a_hang() {
    let port = servers::free_port();
    let started = Instant::now();
    let result = RedisStore::connect(&format!("redis://127.0.0.1:{port}/")).await;
    assert!(result.is_err(), "nothing listens on port {port}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(RedisStore::connect("not a url").await.is_err());
}
