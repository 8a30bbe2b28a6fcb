//! Faults injected for real on a throwaway `redis-server`, each checked through what a user of
//! [`Receiver`] (or of the store) sees:
//!
//! 1. a stalled server (`CLIENT PAUSE`) makes a receive fail, and the claim that lands once the
//!    server wakes up is released in the background, so the provider's retry is fresh;
//! 2. a claim whose answer was lost (the call timed out, the server wrote it anyway) is
//!    recognised by its token, and released with it;
//! 3. leases are counted by the server: the TTLs are the leases, a short lease ends on the
//!    server's clock, replicas whose clocks disagree by an hour still exclude each other, and no
//!    script receives a time from the client;
//! 4. a completion the stalled server could not record in time goes on in the background, and
//!    [`Receiver::settled`] (what a graceful shutdown awaits) returns only once it landed.
//!
//! Each test starts its own server (Debian package `redis-server`); they need to pause it, so
//! they skip when `HOOKVERIFY_TEST_REDIS_URL` names a shared one.
#![cfg(all(feature = "redis", feature = "testing"))]

#[path = "common/servers.rs"]
mod servers;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hookverify::store::redis::RedisStore;
use hookverify::store::{Claim, ClaimToken, DeliveryKeys, MessageDigest, Namespace};
use hookverify::{
    DeliveryStore, Duplicate, ManualClock, Outcome, ReceiveError, Receiver, Signer, Verifier,
};
use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};

use servers::RedisServer;

const SECRET: &str = "whsec_faults";
const LEASE: Duration = Duration::from_secs(30);
const RETAIN: Duration = Duration::from_secs(600);
const START_UNIX: i64 = 1_764_000_000;

fn token() -> ClaimToken {
    ClaimToken::random().expect("randomness")
}

fn random_namespace(what: &str) -> Namespace {
    Namespace::new(&format!("{what}-{:016x}", token().get())).expect("valid namespace")
}

fn delivery(namespace: &Namespace, id: &str, message: &str) -> DeliveryKeys {
    DeliveryKeys::new(
        namespace,
        Some(id),
        &MessageDigest::of(&[message.as_bytes()]),
    )
}

/// A server this test owns, or `None` (and a note) when a shared one is configured.
fn own_server() -> Option<RedisServer> {
    let server = RedisServer::start();
    if server.is_owned() {
        Some(server)
    } else {
        eprintln!("skipped: HOOKVERIFY_TEST_REDIS_URL is set, and this test must pause the server");
        None
    }
}

/// A second client, apart from the store's, to look at the server.
async fn admin(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("admin connection")
}

/// `CLIENT PAUSE <ms> ALL` (sent by `redis-cli`): the server answers, then runs no command
/// from anyone for `ms`. Answers when the pause began, give or take the answer's way back.
fn pause(server: &RedisServer, ms: u64) -> Instant {
    server.pause_for(Duration::from_millis(ms));
    Instant::now()
}

/// How many times the server ran `command` (including from scripts).
async fn calls(admin: &mut MultiplexedConnection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(admin)
        .await
        .expect("INFO");
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

fn verifier(clock: Option<Arc<ManualClock>>) -> Verifier {
    let builder = Verifier::builder().secret("faults", SECRET);
    match clock {
        Some(clock) => builder.clock(clock),
        None => builder,
    }
    .build()
    .expect("verifier")
}

/// 1. A store stalled past the store timeout: the receive fails (503, the provider retries),
/// the claim the server writes once it wakes up is released in the background with its token,
/// and the provider's retry a second later is handled. Before the caller chose the token, that
/// orphan held the delivery "in flight" for a whole lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_store_orphans_nothing() {
    let Some(server) = own_server() else { return };
    let started = Instant::now();
    let store = RedisStore::connect(server.url()).await.expect("connect");
    let receiver = Receiver::<RedisStore>::builder(verifier(None), store)
        .namespace(random_namespace("stalled"))
        .store_timeout(Duration::from_secs(2))
        .build()
        .expect("receiver");
    let signer = Signer::new(SECRET).expect("signer");

    // Warm up: the server learns the claim and release scripts (a script it does not know
    // would fail with NOSCRIPT once the pause ends, and no claim would land at all).
    let body = br#"{"warm":"up"}"#;
    let headers = signer
        .sign("dlv_warm_up", body)
        .header_map()
        .expect("headers");
    match receiver.receive(&headers, body).await.expect("receive") {
        Outcome::Fresh(guard) => guard.release().await.expect("release"),
        Outcome::Duplicate(kind) => panic!("the warm-up must be fresh, got {kind:?}"),
    }
    let mut admin = admin(server.url()).await;
    let deletes_before = calls(&mut admin, "del").await;

    let body = br#"{"type":"stalled"}"#;
    let headers = signer
        .sign("dlv_stalled", body)
        .header_map()
        .expect("headers");
    let paused = pause(&server, 3000);
    match receiver.receive(&headers, body).await {
        Err(error @ ReceiveError::StoreUnavailable(_)) => {
            assert_eq!(error.kind().as_str(), "store_unavailable");
        }
        Err(other) => panic!("expected store_unavailable, got {other}"),
        Ok(_) => panic!("a delivery was accepted while the store was stalled"),
    }
    let failed = Instant::now();
    let waited = failed - paused;
    assert!(
        (Duration::from_millis(1900)..Duration::from_millis(2900)).contains(&waited),
        "the receive should fail at the 2 s store timeout, failed after {waited:?}"
    );

    // The provider retries a second later, after the pause: same id, same bytes.
    tokio::time::sleep_until((failed + Duration::from_secs(1)).into()).await;
    assert!(paused.elapsed() >= Duration::from_secs(3));
    match receiver.receive(&headers, body).await.expect("receive") {
        Outcome::Fresh(guard) => guard.complete().await.expect("complete"),
        Outcome::Duplicate(kind) => {
            panic!("the retry after the stall must be fresh, got {kind:?} (an orphaned claim)")
        }
    }
    // The stalled claim did land once the server woke up, and was taken back: its id key was
    // deleted by the release script (its message key is kept, released by its id).
    assert_eq!(calls(&mut admin, "del").await - deletes_before, 1);
    let again = receiver.receive(&headers, body).await.expect("receive");
    assert!(matches!(again, Outcome::Duplicate(Duplicate::Completed)));
    eprintln!("stalled store: {:?}", started.elapsed());
}

/// 4. A completion that times out while the server is paused is retried in the background;
/// `settled` waits for it, so a process shutting down does not leave the delivery unrecorded
/// (held for the lease, then open to a replay under a fresh id).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settled_waits_for_a_completion_retried_in_the_background() {
    let Some(server) = own_server() else { return };
    let store = RedisStore::connect(server.url()).await.expect("connect");
    let receiver = Receiver::<RedisStore>::builder(verifier(None), store)
        .namespace(random_namespace("settled"))
        .store_timeout(Duration::from_millis(300))
        .build()
        .expect("receiver");
    let body = br#"{"type":"run.finished"}"#;
    let headers = Signer::new(SECRET)
        .expect("signer")
        .sign("dlv_settled", body)
        .header_map()
        .expect("headers");
    let Outcome::Fresh(guard) = receiver.receive(&headers, body).await.expect("receive") else {
        panic!("a new delivery is fresh");
    };
    // Nothing runs in the background yet: settled at once.
    tokio::time::timeout(Duration::from_millis(50), receiver.settled())
        .await
        .expect("nothing pending");

    let paused = pause(&server, 2000);
    let error = guard.complete().await.expect_err("the server is paused");
    assert_eq!(error.kind().as_str(), "store_unavailable");
    // The completion goes on in the background, and is still waiting.
    assert!(
        tokio::time::timeout(Duration::from_secs(1), receiver.settled())
            .await
            .is_err(),
        "settled while the completion could not be recorded"
    );
    tokio::time::timeout(Duration::from_secs(5), receiver.settled())
        .await
        .expect("settled once the server answers again");
    assert!(paused.elapsed() >= Duration::from_secs(2));
    assert!(matches!(
        receiver.receive(&headers, body).await.expect("receive"),
        Outcome::Duplicate(Duplicate::Completed)
    ));
}

/// 2. The server writes a claim but the caller never hears back (its call timed out during a
/// stall). The claim is the caller's all the same: the same token claims it again (fresh),
/// another token sees it in flight, and the token releases it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claim_whose_answer_was_lost_is_recognised_by_its_token() {
    let Some(server) = own_server() else { return };
    let started = Instant::now();
    let store = RedisStore::connect(server.url()).await.expect("connect");
    let impatient = RedisStore::connect(server.url())
        .await
        .expect("connect")
        .timeout(Duration::from_millis(200));
    let ns = random_namespace("lost");
    // Warm up the claim script (see `a_stalled_store_orphans_nothing`).
    let warm = delivery(&ns, "dlv_warm_up", "m_warm_up");
    assert_eq!(
        store.claim(&warm, token(), LEASE).await.expect("claim"),
        Claim::Fresh
    );

    let keys = delivery(&ns, "dlv_lost", "m_lost");
    let owner = token();
    let mut admin = admin(server.url()).await;
    let paused = pause(&server, 600);
    let lost = impatient.claim(&keys, owner, LEASE).await;
    assert!(
        lost.is_err(),
        "the claim must time out during the pause: {lost:?}"
    );
    tokio::time::sleep_until((paused + Duration::from_millis(800)).into()).await;

    // The server wrote it once the pause ended.
    let held: Option<String> = redis::cmd("GET")
        .arg(&store.redis_keys(&keys)[0])
        .query_async(&mut admin)
        .await
        .expect("GET");
    assert_eq!(held, Some(format!("held:{}", owner.get())));
    let held: Option<String> = redis::cmd("GET")
        .arg(&store.redis_keys(&keys)[1])
        .query_async(&mut admin)
        .await
        .expect("GET");
    assert_eq!(held, Some(format!("held:{}:dlv_lost", owner.get())));

    assert_eq!(
        store.claim(&keys, owner, LEASE).await.expect("claim"),
        Claim::Fresh
    );
    assert_eq!(
        store.claim(&keys, token(), LEASE).await.expect("claim"),
        Claim::InFlight
    );
    assert!(store.release(&keys, owner, RETAIN).await.expect("release"));
    let next = token();
    assert_eq!(
        store.claim(&keys, next, LEASE).await.expect("claim"),
        Claim::Fresh
    );
    // The old token can do nothing to the new claim.
    assert!(!store.release(&keys, owner, RETAIN).await.expect("release"));
    assert!(
        !store
            .complete(&keys, owner, RETAIN)
            .await
            .expect("complete")
    );
    assert!(store.complete(&keys, next, RETAIN).await.expect("complete"));
    eprintln!("lost answer: {:?}", started.elapsed());
}

/// 3a. The TTLs are the leases, counted by the server: a 1 s lease taken through one replica
/// ends a second later for the other one, with nothing on the client side keeping time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leases_are_counted_by_the_server() {
    let Some(server) = own_server() else { return };
    let started = Instant::now();
    let a = RedisStore::connect(server.url()).await.expect("connect");
    let b = RedisStore::connect(server.url()).await.expect("connect");
    let mut raw = a.connection().clone();
    let ns = random_namespace("server-clock");

    let long = delivery(&ns, "dlv_long", "m_long");
    assert_eq!(
        a.claim(&long, token(), LEASE).await.expect("claim"),
        Claim::Fresh
    );
    for name in a.redis_keys(&long) {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&name)
            .query_async(&mut raw)
            .await
            .expect("PTTL");
        assert!((29_000..=30_000).contains(&ttl), "{name}: ttl {ttl}");
    }

    let short = delivery(&ns, "dlv_short", "m_short");
    assert_eq!(
        a.claim(&short, token(), Duration::from_secs(1))
            .await
            .expect("claim"),
        Claim::Fresh
    );
    for name in a.redis_keys(&short) {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&name)
            .query_async(&mut raw)
            .await
            .expect("PTTL");
        assert!((900..=1000).contains(&ttl), "{name}: ttl {ttl}");
    }
    assert_eq!(
        b.claim(&short, token(), LEASE).await.expect("claim"),
        Claim::InFlight
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        b.claim(&short, token(), LEASE).await.expect("claim"),
        Claim::Fresh
    );
    eprintln!("server clock: {:?}", started.elapsed());
}

/// 3b. Two replicas whose clocks are an hour apart share one server: the one running ahead
/// does not see the other's fresh claim as expired (the old store judged expiry on the
/// receiver's clock, and would have handled the delivery twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_with_skewed_clocks_still_exclude_each_other() {
    let Some(server) = own_server() else { return };
    let behind = Arc::new(ManualClock::from_unix(START_UNIX).expect("in range"));
    let ahead = Arc::new(ManualClock::from_unix(START_UNIX + 3600).expect("in range"));
    let namespace = random_namespace("skew");
    let replica = |clock: &Arc<ManualClock>, store: RedisStore| {
        Receiver::<RedisStore>::builder(verifier(Some(Arc::clone(clock))), store)
            .namespace(namespace.clone())
            .build()
            .expect("receiver")
    };
    let a = replica(
        &behind,
        RedisStore::connect(server.url()).await.expect("connect"),
    );
    let b = replica(
        &ahead,
        RedisStore::connect(server.url()).await.expect("connect"),
    );
    let body = br#"{"type":"skew"}"#;
    let signed = |clock: &Arc<ManualClock>| {
        Signer::new(SECRET)
            .expect("signer")
            .clock(Arc::clone(clock))
            .sign("dlv_skew", body)
            .header_map()
            .expect("headers")
    };

    let Outcome::Fresh(guard) = a.receive(&signed(&behind), body).await.expect("receive") else {
        panic!("the first copy must be fresh");
    };
    // The provider's retry, signed an hour later by the replica's reckoning, lands on `b`.
    let retry = b.receive(&signed(&ahead), body).await.expect("receive");
    assert!(
        matches!(retry, Outcome::Duplicate(Duplicate::InFlight)),
        "a replica an hour ahead must still see the claim held"
    );
    guard.complete().await.expect("complete");
    let retry = b.receive(&signed(&ahead), body).await.expect("receive");
    assert!(matches!(retry, Outcome::Duplicate(Duplicate::Completed)));
}

/// 3c. What each call sends: exactly one `EVALSHA` (once the server knows the script), whose
/// `KEYS` are the delivery's keys and whose `ARGV` are the token and a span in milliseconds,
/// never a time (and for a claim, the keys' kinds: `im`, the id then the message). The first
/// call to a server that does not know its script also sends `SCRIPT LOAD` and the `EVALSHA`
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scripts_get_spans_never_times_and_one_round_trip() {
    let Some(server) = own_server() else { return };
    let manager = redis::Client::open(server.url())
        .expect("url")
        .get_connection_manager()
        .await
        .expect("connect");
    let sent = Arc::new(Mutex::new(Vec::new()));
    let store = RedisStore::new(Recording {
        inner: manager,
        sent: Arc::clone(&sent),
    });
    let take = || std::mem::take(&mut *sent.lock().unwrap_or_else(PoisonError::into_inner));
    let ns = random_namespace("arguments");
    let keys = delivery(&ns, "dlv_arguments", "m_arguments");
    let names = store.redis_keys(&keys);
    let owner = token();
    let decimal = owner.get().to_string();

    // The first claim on a fresh server: EVALSHA (NOSCRIPT), SCRIPT LOAD, EVALSHA.
    assert_eq!(
        store.claim(&keys, owner, LEASE).await.expect("claim"),
        Claim::Fresh
    );
    let first = take();
    assert_eq!(first.len(), 3, "{first:?}");
    assert_eq!(first[1][..2], [b"SCRIPT".to_vec(), b"LOAD".to_vec()]);
    assert_eq!(first[0], first[2]);
    check_evalsha(
        &first[0],
        &names,
        &[&decimal, "30000", "im", "dlv_arguments"],
    );

    // Once loaded, one command per call.
    assert_eq!(
        store.claim(&keys, owner, LEASE).await.expect("claim"),
        Claim::Fresh
    );
    let again = take();
    assert_eq!(again.len(), 1);
    check_evalsha(
        &again[0],
        &names,
        &[&decimal, "30000", "im", "dlv_arguments"],
    );

    let calls: [(&str, Vec<&str>); 3] = [
        ("renew", vec![&decimal, "45000"]),
        ("complete", vec![&decimal, "600000", "im", "dlv_arguments"]),
        ("release", vec![&decimal, "600000", "im", "dlv_arguments"]),
    ];
    for (call, argv) in calls {
        match call {
            "renew" => assert!(
                store
                    .renew(&keys, owner, Duration::from_secs(45))
                    .await
                    .expect("renew")
            ),
            "complete" => assert!(
                store
                    .complete(&keys, owner, RETAIN)
                    .await
                    .expect("complete")
            ),
            _ => assert!(!store.release(&keys, owner, RETAIN).await.expect("release")),
        }
        let commands = take();
        // First use of each script: NOSCRIPT, SCRIPT LOAD, EVALSHA; the EVALSHA is the same.
        assert!(
            commands.len() == 3 && commands[0] == commands[2],
            "{call}: {commands:?}"
        );
        check_evalsha(&commands[0], &names, &argv);
    }
    // Every script is loaded now: each call is one round trip.
    let other = delivery(&ns, "dlv_other", "m_other");
    let second = token();
    assert_eq!(
        store.claim(&other, second, LEASE).await.expect("claim"),
        Claim::Fresh
    );
    assert!(store.renew(&other, second, LEASE).await.expect("renew"));
    assert!(
        store
            .release(&other, second, RETAIN)
            .await
            .expect("release")
    );
    assert_eq!(
        store.claim(&other, second, LEASE).await.expect("claim"),
        Claim::Fresh
    );
    assert!(
        store
            .complete(&other, second, RETAIN)
            .await
            .expect("complete")
    );
    assert_eq!(take().len(), 5, "five calls, five commands");
}

/// `EVALSHA <40 hex digits> <number of keys> <keys…> <argv…>`, with these keys and arguments.
fn check_evalsha(command: &[Vec<u8>], keys: &[String], argv: &[&str]) {
    let text: Vec<String> = command
        .iter()
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect();
    assert_eq!(text[0], "EVALSHA", "{text:?}");
    assert!(
        text[1].len() == 40 && text[1].bytes().all(|b| b.is_ascii_hexdigit()),
        "{text:?}"
    );
    assert_eq!(text[2], keys.len().to_string(), "{text:?}");
    assert_eq!(text[3..3 + keys.len()], *keys, "{text:?}");
    assert_eq!(text[3 + keys.len()..], *argv, "{text:?}");
}

/// A connection that notes every command it sends, then sends it.
#[derive(Clone)]
struct Recording {
    inner: ConnectionManager,
    sent: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
}

impl ConnectionLike for Recording {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        let args = cmd
            .args_iter()
            .map(|arg| match arg {
                redis::Arg::Simple(bytes) => bytes.to_vec(),
                _ => b"<not a plain argument>".to_vec(),
            })
            .collect();
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(args);
        self.inner.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        self.inner.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}
