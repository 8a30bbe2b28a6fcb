//! The Redis store: claims shared by every receiver that reaches one Redis deployment.
//!
//! # Design
//!
//! Each call is one Lua script, run with `EVALSHA` (one round trip; after a server restart
//! flushed the script cache, the first call also sends `SCRIPT LOAD` and retries). A bare
//! `SET key token NX PX lease` would also claim in one round trip, but it cannot meet two of the
//! [`DeliveryStore`] obligations:
//!
//! - **The injected clock.** `PX` expiry runs on the Redis server's clock, while the store must
//!   judge expiry on the [`Clock`] it was given (the conformance suite moves a
//!   [`ManualClock`](crate::ManualClock); a receiver's verifier and its store must agree on
//!   "now"). So each key's value records when its lease or retention ends (`until`, Unix
//!   milliseconds on the injected clock), and the scripts compare it with a `now` the store reads
//!   from its clock and passes as an argument. Absolute server-side deadlines (`PEXPIREAT`)
//!   would mix the two clocks, so none is used.
//! - **Token fencing.** `complete` and `release` must check the owner's token and change the key
//!   in the same step; a worker whose lease ran out must not release or complete the claim a
//!   newer worker took since. A script reads and writes the key atomically.
//!
//! The relative TTL each script sets (`PEXPIRE`, the time left on the injected clock plus
//! [`gc_slack`](RedisStore::gc_slack)) only bounds memory: it lets Redis drop keys nobody
//! will look at again. It never decides an answer while the key lives. A key's TTL runs on real
//! time, so under a clock that runs slower than real time (a test's manual clock standing still
//! for longer than a lease or retention), a key can vanish before it expires on that clock;
//! on the system clock the two agree up to the slack. An owner whose lease ran out more than
//! the slack ago finds its key gone: `complete` and `release` answer `false`, exactly as if
//! another worker had taken the delivery over.
//!
//! # Key layout
//!
//! One Redis hash per [`DedupeKey`], named `{prefix}{key}` (default prefix `hookverify:`, e.g.
//! `hookverify:default:id:dlv_123` and `hookverify:default:mac:<32 hex digits>`), with fields:
//!
//! | field | value |
//! | --- | --- |
//! | `state` | `held` (claimed) or `done` (completed) |
//! | `token` | the owner's token in decimal, while `held` |
//! | `until` | Unix milliseconds at which the lease or the retention ends |
//!
//! A released key is deleted. Tokens are random 64-bit values ([`ClaimToken::random`]), so
//! receivers in different processes never need to coordinate.
//!
//! # Redis Cluster
//!
//! Every script touches exactly one key, declared in `KEYS`, so each call goes to the one node
//! that owns that key's slot: the store works on Redis Cluster. With the `redis` crate's
//! `cluster-async` feature enabled in your own `Cargo.toml`, pass a
//! `redis::cluster_async::ClusterConnection` to [`RedisStore::new`]. Keep the prefix free of
//! `{…}` hash tags, or every key lands in one slot (still correct, but on one node).
//!
//! # Durability
//!
//! Claims live as long as Redis keeps them. A Redis that restarts without persistence forgets
//! completed deliveries, and their retries are handled again; run it with AOF
//! (`appendonly yes`) where that matters.
//!
//! # Outages
//!
//! Every call is bounded by [`timeout`](RedisStore::timeout) (default 2 s); a connection error
//! or a timeout is a [`StoreError`], so receivers fail closed (HTTP 503 in the Axum layer).
//! [`ConnectionManager`] reconnects by itself: once the server is back, calls succeed again
//! without rebuilding the store.

use std::fmt;
use std::sync::{Arc, LazyLock};

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::{FromRedisValue, Script, ScriptInvocation};
use time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::store::{
    Claim, ClaimToken, DedupeKey, DeliveryStore, StoreError, deadline, millis, unix_ms,
};

/// The key prefix unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "hookverify:";

/// The bound on each store call unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::seconds(2);

/// How long a key outlives its expiry (on the injected clock) before Redis drops it, unless
/// configured otherwise.
pub const DEFAULT_GC_SLACK: Duration = Duration::seconds(1);

/// Answers of the claim script.
const FRESH: i64 = 0;
const IN_FLIGHT: i64 = 1;
const COMPLETED: i64 = 2;

/// `KEYS[1]` the key; `ARGV`: now (ms), until (ms), token, TTL (ms).
/// Answers 0 (fresh: the key is now held by the token), 1 (in flight) or 2 (completed).
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HMGET', KEYS[1], 'state', 'until')
if v[1] and v[2] and tonumber(v[2]) > tonumber(ARGV[1]) then
  if v[1] == 'done' then return 2 end
  return 1
end
redis.call('HSET', KEYS[1], 'state', 'held', 'token', ARGV[3], 'until', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 0
",
    )
});

/// `KEYS[1]` the key; `ARGV`: token, until (ms), TTL (ms).
/// Answers 1 if the token held the key (now completed), else 0.
static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HMGET', KEYS[1], 'state', 'token')
if v[1] ~= 'held' or v[2] ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'token')
redis.call('HSET', KEYS[1], 'state', 'done', 'until', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
",
    )
});

/// `KEYS[1]` the key; `ARGV`: token.
/// Answers 1 if the token held the key (now deleted), else 0. A completed key is never released.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HMGET', KEYS[1], 'state', 'token')
if v[1] ~= 'held' or v[2] ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
",
    )
});

/// A dedupe store in Redis, shared by receivers on several machines.
///
/// See the [module docs](self) for the design, the key layout and Redis Cluster.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use hookverify::store::redis::RedisStore;
/// use hookverify::{Receiver, Verifier};
///
/// let store = RedisStore::connect("redis://127.0.0.1:6379/").await?.prefix("webhooks:");
/// let verifier = Verifier::builder().secret("current", "whsec_example").build()?;
/// let receiver = Receiver::new(verifier, store);
/// # let _ = receiver;
/// # Ok(())
/// # }
/// ```
pub struct RedisStore<C = ConnectionManager> {
    connection: C,
    prefix: Arc<str>,
    clock: Arc<dyn Clock>,
    timeout: std::time::Duration,
    gc_slack: Duration,
}

impl RedisStore<ConnectionManager> {
    /// Connects to the server at `url` (`redis://[user:password@]host[:port][/db]`, or
    /// `rediss://` where the `redis` crate has TLS enabled) through a [`ConnectionManager`]
    /// that reconnects by itself.
    ///
    /// Fails if the URL is invalid or the server cannot be reached within
    /// [`DEFAULT_TIMEOUT`]. The manager's own connection and response timeouts are set to the
    /// same bound; for other settings build a [`ConnectionManager`] yourself and use
    /// [`RedisStore::new`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let bound = DEFAULT_TIMEOUT.unsigned_abs();
        let client = ::redis::Client::open(url)
            .map_err(|e| StoreError::from_source("redis: invalid connection URL", e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(bound))
            .set_response_timeout(Some(bound))
            // Few, quick retries: a call waiting on a reconnection is bounded anyway, and a
            // failed reconnection is retried on the next call.
            .set_number_of_retries(2)
            .set_min_delay(std::time::Duration::from_millis(50))
            .set_max_delay(std::time::Duration::from_millis(500));
        let manager =
            tokio::time::timeout(bound, ConnectionManager::new_with_config(client, config))
                .await
                .map_err(|_| StoreError::new(timeout_message("connect", bound)))?
                .map_err(|e| StoreError::from_source("redis: cannot connect", e))?;
        Ok(Self::new(manager))
    }
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// A store over an existing connection (a [`ConnectionManager`], or a cluster connection),
    /// with the default prefix, timeout and GC slack, on the system clock.
    ///
    /// The connection is cloned for each call, so it should be a cheap handle onto a shared,
    /// multiplexed connection, as [`ConnectionManager`] is.
    pub fn new(connection: C) -> Self {
        Self {
            connection,
            prefix: DEFAULT_PREFIX.into(),
            clock: Arc::new(SystemClock),
            timeout: DEFAULT_TIMEOUT.unsigned_abs(),
            gc_slack: DEFAULT_GC_SLACK,
        }
    }

    /// Prepends `prefix` to every key, to keep this store's keys apart from other data in the
    /// same database.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into().into();
        self
    }

    /// Judges expiry on `clock`. Give it the verifier's clock.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Bounds each call: past `timeout` the call fails with a [`StoreError`] (a negative
    /// duration counts as zero).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::ZERO).unsigned_abs();
        self
    }

    /// How long a key outlives its expiry before Redis drops it (a negative duration counts as
    /// zero). Only memory depends on it; raise it if the receivers' clocks and the Redis
    /// server's clock run at noticeably different rates.
    #[must_use]
    pub fn gc_slack(mut self, slack: Duration) -> Self {
        self.gc_slack = slack.max(Duration::ZERO);
        self
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// The connection.
    pub fn connection(&self) -> &C {
        &self.connection
    }

    /// The Redis key that holds `key`.
    pub fn redis_key(&self, key: &DedupeKey) -> String {
        let mut name = String::with_capacity(self.prefix.len() + key.as_str().len());
        name.push_str(&self.prefix);
        name.push_str(key.as_str());
        name
    }

    fn now_ms(&self) -> i64 {
        unix_ms(self.clock.unix_nanos())
    }

    /// The TTL of a key that expires at `until_ms`, judged at `now_ms`: at least 1 ms.
    fn ttl_ms(&self, now_ms: i64, until_ms: i64) -> i64 {
        let slack = millis(self.gc_slack);
        until_ms.saturating_sub(now_ms).saturating_add(slack).max(1)
    }

    async fn run<T: FromRedisValue>(
        &self,
        call: &'static str,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        match tokio::time::timeout(self.timeout, invocation.invoke_async(&mut connection)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(StoreError::from_source(
                format!("redis: {call} failed"),
                error,
            )),
            Err(_) => Err(StoreError::new(timeout_message(call, self.timeout))),
        }
    }
}

impl<C> DeliveryStore for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn claim(&self, key: &DedupeKey, lease: Duration) -> Result<Claim, StoreError> {
        let token = ClaimToken::random()?;
        let now_ms = self.now_ms();
        let until_ms = deadline(now_ms, lease);
        let mut invocation = CLAIM.key(self.redis_key(key));
        invocation
            .arg(now_ms)
            .arg(until_ms)
            .arg(token.get())
            .arg(self.ttl_ms(now_ms, until_ms));
        match self.run::<i64>("claim", &invocation).await? {
            FRESH => Ok(Claim::Fresh(token)),
            IN_FLIGHT => Ok(Claim::InFlight),
            COMPLETED => Ok(Claim::Completed),
            other => Err(StoreError::new(format!(
                "redis: unexpected answer {other} to a claim"
            ))),
        }
    }

    async fn complete(
        &self,
        key: &DedupeKey,
        token: ClaimToken,
        retain: Duration,
    ) -> Result<bool, StoreError> {
        let now_ms = self.now_ms();
        let until_ms = deadline(now_ms, retain);
        let mut invocation = COMPLETE.key(self.redis_key(key));
        invocation
            .arg(token.get())
            .arg(until_ms)
            .arg(self.ttl_ms(now_ms, until_ms));
        Ok(self.run::<i64>("complete", &invocation).await? == 1)
    }

    async fn release(&self, key: &DedupeKey, token: ClaimToken) -> Result<bool, StoreError> {
        let mut invocation = RELEASE.key(self.redis_key(key));
        invocation.arg(token.get());
        Ok(self.run::<i64>("release", &invocation).await? == 1)
    }
}

impl<C> fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("clock", &self.clock)
            .field("timeout", &self.timeout)
            .field("gc_slack", &self.gc_slack)
            .finish_non_exhaustive()
    }
}

fn timeout_message(call: &str, bound: std::time::Duration) -> String {
    format!(
        "redis: {call} got no answer within {} ms",
        bound.as_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_relative_positive_and_include_the_slack() {
        let store = RedisStore::new(Never).gc_slack(Duration::seconds(1));
        assert_eq!(store.ttl_ms(1_000, 31_000), 31_000);
        assert_eq!(store.ttl_ms(1_000, 1_000), 1_000);
        let tight = RedisStore::new(Never).gc_slack(Duration::ZERO);
        assert_eq!(tight.ttl_ms(5_000, 1_000), 1);
        assert_eq!(tight.ttl_ms(i64::MIN, i64::MAX), i64::MAX);
    }

    #[test]
    fn keys_carry_the_prefix() {
        let store = RedisStore::new(Never).prefix("app:");
        let id = crate::DeliveryId::parse(b"dlv_1").expect("valid id");
        let key = DedupeKey::delivery(&crate::store::Namespace::default(), &id);
        assert_eq!(store.redis_key(&key), "app:default:id:dlv_1");
    }

    /// A connection for tests that never reach a server.
    #[derive(Clone)]
    struct Never;

    impl ConnectionLike for Never {
        fn req_packed_command<'a>(
            &'a mut self,
            _cmd: &'a ::redis::Cmd,
        ) -> ::redis::RedisFuture<'a, ::redis::Value> {
            Box::pin(async { Err(::redis::RedisError::from(std::io::Error::other("never"))) })
        }

        fn req_packed_commands<'a>(
            &'a mut self,
            _cmd: &'a ::redis::Pipeline,
            _offset: usize,
            _count: usize,
        ) -> ::redis::RedisFuture<'a, Vec<::redis::Value>> {
            Box::pin(async { Err(::redis::RedisError::from(std::io::Error::other("never"))) })
        }

        fn get_db(&self) -> i64 {
            0
        }
    }
}
