//! The Redis store against a real `redis-server`: the shared conformance suite, the documented
//! key layout, two receivers sharing one server, and an outage (fail closed, then recovery
//! without rebuilding the store).
//!
//! Each test starts its own server (Debian package `redis-server`), or uses
//! `HOOKVERIFY_TEST_REDIS_URL` when set.
#![cfg(all(feature = "redis", feature = "testing"))]

#[path = "common/replicas.rs"]
mod replicas;
#[path = "common/servers.rs"]
mod servers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookverify::store::redis::RedisStore;
use hookverify::store::{Claim, ClaimToken, DeliveryKeys, MessageDigest, Namespace};
use hookverify::{DeliveryStore, ManualClock, Outcome, ReceiveError, Receiver, Signer, Verifier};

use servers::RedisServer;

const LEASE: Duration = Duration::from_secs(30);
const RETAIN: Duration = Duration::from_secs(600);

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::from_unix(replicas::START_UNIX).expect("in range"))
}

fn random_namespace(what: &str) -> Namespace {
    let token = ClaimToken::random().expect("randomness").get();
    Namespace::new(&format!("{what}-{token:016x}")).expect("valid namespace")
}

fn delivery(namespace: &Namespace, id: Option<&str>, message: &str) -> DeliveryKeys {
    DeliveryKeys::new(namespace, id, &MessageDigest::of(&[message.as_bytes()]))
}

fn token() -> ClaimToken {
    ClaimToken::random().expect("randomness")
}

async fn connect(url: &str) -> RedisStore {
    RedisStore::connect(url).await.expect("connect")
}

async fn get(connection: &mut impl redis::aio::ConnectionLike, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query_async(connection)
        .await
        .expect("GET")
}

async fn pttl(connection: &mut impl redis::aio::ConnectionLike, key: &str) -> i64 {
    redis::cmd("PTTL")
        .arg(key)
        .query_async(connection)
        .await
        .expect("PTTL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_conforms() {
    let server = RedisServer::start();
    let url = server.url().to_owned();
    let started = Instant::now();
    hookverify::testing::run_conformance(|| {
        let url = url.clone();
        async move {
            connect(&url)
                .await
                .prefix("hookverify-test:")
                .expect("valid prefix")
        }
    })
    .await;
    eprintln!("redis conformance: {:?}", started.elapsed());
}

/// Each key is a string, `held:<token>` then `done:<token>` (the message key's followed by
/// `:<delivery id>`), whose TTL is the lease, then the retention, as the server counts it; a
/// released key is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn values_and_ttls_follow_the_documented_layout() {
    let server = RedisServer::start();
    let store = connect(server.url())
        .await
        .prefix("layout:")
        .expect("valid prefix");
    let ns = random_namespace("layout");
    let keys = delivery(&ns, Some("dlv_layout"), "m_layout");
    let names = store.redis_keys(&keys);
    let digest = hex::encode(&MessageDigest::of(&[b"m_layout"]).as_bytes()[..16]);
    assert_eq!(
        names,
        [
            format!("layout:{{{}}}:id:dlv_layout", ns.as_str()),
            format!("layout:{{{}}}:msg:{digest}", ns.as_str()),
        ]
    );
    let mut raw = store.connection().clone();

    let owner = token();
    assert_eq!(
        store.claim(&keys, owner, LEASE).await.expect("claim"),
        Claim::Fresh
    );
    let held = [
        format!("held:{}", owner.get()),
        format!("held:{}:dlv_layout", owner.get()),
    ];
    let done = [
        format!("done:{}", owner.get()),
        format!("done:{}:dlv_layout", owner.get()),
    ];
    for (name, held) in names.iter().zip(&held) {
        let kind: String = redis::cmd("TYPE")
            .arg(name)
            .query_async(&mut raw)
            .await
            .expect("TYPE");
        assert_eq!(kind, "string");
        assert_eq!(get(&mut raw, name).await.as_deref(), Some(held.as_str()));
        let ttl = pttl(&mut raw, name).await;
        assert!((29_000..=30_000).contains(&ttl), "{name}: ttl {ttl}");
    }

    assert!(
        store
            .renew(&keys, owner, Duration::from_secs(90))
            .await
            .expect("renew")
    );
    for (name, held) in names.iter().zip(&held) {
        assert_eq!(get(&mut raw, name).await.as_deref(), Some(held.as_str()));
        let ttl = pttl(&mut raw, name).await;
        assert!((89_000..=90_000).contains(&ttl), "{name}: ttl {ttl}");
    }

    assert!(
        store
            .complete(&keys, owner, RETAIN)
            .await
            .expect("complete")
    );
    for (name, done) in names.iter().zip(&done) {
        assert_eq!(get(&mut raw, name).await.as_deref(), Some(done.as_str()));
        let ttl = pttl(&mut raw, name).await;
        assert!((599_000..=600_000).contains(&ttl), "{name}: ttl {ttl}");
    }
    // A completed key is never released.
    assert!(!store.release(&keys, owner, RETAIN).await.expect("release"));
    assert_eq!(
        get(&mut raw, &names[0]).await.as_deref(),
        Some(done[0].as_str())
    );

    // A released claim leaves only its message key, released by its id, for the retention.
    let other = delivery(&ns, Some("dlv_released"), "m_released");
    let released = token();
    assert_eq!(
        store.claim(&other, released, LEASE).await.expect("claim"),
        Claim::Fresh
    );
    assert!(
        store
            .release(&other, released, RETAIN)
            .await
            .expect("release")
    );
    let names = store.redis_keys(&other);
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&names[0])
        .query_async(&mut raw)
        .await
        .expect("EXISTS");
    assert_eq!(exists, 0, "{} outlived its release", names[0]);
    assert_eq!(
        get(&mut raw, &names[1]).await.as_deref(),
        Some("rel:dlv_released")
    );
    let ttl = pttl(&mut raw, &names[1]).await;
    assert!((599_000..=600_000).contains(&ttl), "ttl {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_receivers_sharing_redis_handle_each_delivery_once() {
    let server = RedisServer::start();
    // Two connection managers: as two processes would have.
    let a = connect(server.url()).await;
    let b = connect(server.url()).await;
    let tally = replicas::each_delivery_handled_once(a, b, clock()).await;
    eprintln!("redis replicas: {tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_across_redis_replicas_is_one_message() {
    let server = RedisServer::start();
    let a = connect(server.url()).await;
    let b = connect(server.url()).await;
    replicas::rotation_across_replicas_is_one_message(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outage_fails_closed_then_recovers_without_rebuilding() {
    let mut server = RedisServer::start();
    if !server.is_owned() {
        eprintln!("skipped: HOOKVERIFY_TEST_REDIS_URL is set, and this test must stop the server");
        return;
    }
    let bound = Duration::from_millis(500);
    let store = Arc::new(connect(server.url()).await.timeout(bound));
    let ns = random_namespace("outage");
    let before = delivery(&ns, Some("dlv_before"), "m_before");
    let owner = token();
    assert_eq!(
        store.claim(&before, owner, LEASE).await.expect("claim"),
        Claim::Fresh
    );

    server.kill();

    // Every call fails, within the bound (plus scheduling slack), with a StoreError.
    let during = delivery(&ns, Some("dlv_during"), "m_during");
    for _ in 0..5 {
        let started = Instant::now();
        assert!(store.claim(&during, token(), LEASE).await.is_err());
        assert!(store.renew(&before, owner, LEASE).await.is_err());
        assert!(store.complete(&before, owner, RETAIN).await.is_err());
        assert!(store.release(&before, owner, RETAIN).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(3));
    }
    // A receiver fails closed: the delivery is not accepted.
    let clock = clock();
    let verifier = Verifier::builder()
        .secret("outage", "whsec_outage")
        .clock(Arc::clone(&clock))
        .build()
        .expect("verifier");
    let receiver = Receiver::<RedisStore>::builder(verifier, Arc::clone(&store))
        .namespace(ns.clone())
        .build()
        .expect("receiver");
    let headers = Signer::new("whsec_outage")
        .expect("signer")
        .clock(Arc::clone(&clock))
        .sign("dlv_outage", b"{}")
        .header_map()
        .expect("headers");
    match receiver.receive(&headers, b"{}").await {
        Err(error @ ReceiveError::StoreUnavailable(_)) => {
            assert_eq!(error.kind().as_str(), "store_unavailable")
        }
        Err(other) => panic!("expected store_unavailable, got {other}"),
        Ok(_) => panic!("a delivery was accepted while the store was down"),
    }

    // The server comes back empty (no persistence), with an empty script cache.
    server.restart();

    // The same store recovers by itself once the server is back.
    let after = delivery(&ns, Some("dlv_after"), "m_after");
    let started = Instant::now();
    let owner = token();
    loop {
        match store.claim(&after, owner, LEASE).await {
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
    assert_eq!(
        store.claim(&after, token(), LEASE).await.expect("claim"),
        Claim::InFlight
    );
    assert!(
        store
            .complete(&after, owner, RETAIN)
            .await
            .expect("complete")
    );
    match receiver.receive(&headers, b"{}").await.expect("receive") {
        Outcome::Fresh(guard) => guard.complete().await.expect("complete"),
        Outcome::Duplicate(kind) => panic!("fresh expected after recovery, got {kind:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_a_store_error_not_a_hang() {
    let port = servers::free_port();
    let started = Instant::now();
    let result = RedisStore::connect(&format!("redis://127.0.0.1:{port}/")).await;
    assert!(result.is_err(), "nothing listens on port {port}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(RedisStore::connect("not a url").await.is_err());
}

/// Values written by the version before the claim recorded delivery ids (`held:<token>`,
/// `done:<token>` on a message key too) read the same during a rolling upgrade: held by another
/// token is in flight, held by the claiming token is fresh again, completed is a replay naming
/// no id; and a completion keeps such a value's form.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn values_of_the_previous_version_are_understood() {
    let server = RedisServer::start();
    let store = connect(server.url()).await;
    let mut raw = store.connection().clone();
    let ns = random_namespace("previous");
    let setter = raw.clone();
    let set = |name: String, value: String| {
        let mut raw = setter.clone();
        async move {
            let () = redis::cmd("SET")
                .arg(name)
                .arg(value)
                .arg("PX")
                .arg(60_000)
                .query_async(&mut raw)
                .await
                .expect("SET");
        }
    };

    let completed = delivery(&ns, Some("dlv_old_done"), "m_old_done");
    for name in store.redis_keys(&completed) {
        set(name, "done:17".to_owned()).await;
    }
    let replay = delivery(&ns, Some("dlv_copy"), "m_old_done");
    assert_eq!(
        store.claim(&replay, token(), LEASE).await.expect("claim"),
        Claim::Replay { completed_by: None }
    );

    let held = delivery(&ns, Some("dlv_old_held"), "m_old_held");
    let owner = token();
    for name in store.redis_keys(&held) {
        set(name, format!("held:{}", owner.get())).await;
    }
    let copy = delivery(&ns, Some("dlv_copy"), "m_old_held");
    assert_eq!(
        store.claim(&copy, token(), LEASE).await.expect("claim"),
        Claim::InFlight
    );
    assert!(store.renew(&held, owner, LEASE).await.expect("renew"));
    assert!(
        store
            .complete(&held, owner, RETAIN)
            .await
            .expect("complete")
    );
    let names = store.redis_keys(&held);
    assert_eq!(
        get(&mut raw, &names[1]).await,
        Some(format!("done:{}", owner.get()))
    );
    assert_eq!(
        store.claim(&copy, token(), LEASE).await.expect("claim"),
        Claim::Replay { completed_by: None }
    );

    let released = delivery(&ns, Some("dlv_old_released"), "m_old_released");
    let owner = token();
    for name in store.redis_keys(&released) {
        set(name, format!("held:{}", owner.get())).await;
    }
    assert!(
        store
            .release(&released, owner, RETAIN)
            .await
            .expect("release")
    );
    assert_eq!(
        store.claim(&released, token(), LEASE).await.expect("claim"),
        Claim::Fresh
    );
}
