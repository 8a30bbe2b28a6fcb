//! The Redis store: claims shared by every receiver that reaches one Redis deployment.
//!
//! # Design
//!
//! - **One round trip per call.** Each of `claim`, `renew`, `complete` and `release` is one Lua
//!   script, sent with `EVALSHA` through [`redis::Script`]. Redis runs a script atomically, so
//!   each call reads and writes all of a delivery's keys (its delivery id's key and its message
//!   key) in one step: of any number of concurrent claims at most one is fresh, and a claim
//!   takes both keys or neither. When the server does not know a script yet (first use, or
//!   after a restart emptied its script cache) that call also sends `SCRIPT LOAD` and the
//!   `EVALSHA` again: three round trips, once per script and server (on a cluster, `SCRIPT
//!   LOAD` goes to every master).
//! - **Time from the server.** Leases and retention are relative expiries (`SET … PX`,
//!   `PEXPIRE`) that the Redis server counts on its own clock. No script reads a time from its
//!   arguments; the receivers' clocks play no part in whether a claim is still held, so
//!   replicas whose clocks disagree cannot shorten each other's leases. (The verifier's
//!   timestamp window still uses each receiver's own clock: that is the provider's signature,
//!   not the store.)
//! - **Fencing by token.** The caller's [`ClaimToken`] is written into each held key; `renew`
//!   acts only if every key still holds it, `complete` only if no key is held or completed by
//!   another token, `release` deletes only the keys that hold it. A worker whose lease ran out
//!   cannot touch the claim a newer worker took since, and a completed key is never released.
//!   A released key is held by no token.
//!
//! # Key layout
//!
//! Each key of a delivery is one Redis string:
//!
//! | Redis key | value | expiry |
//! | --- | --- | --- |
//! | `{prefix}{{namespace}}:id:{delivery id}` | `held:{token}` while claimed, `done:{token}` once completed | the lease (claim, renew), then the retention (complete) |
//! | `{prefix}{{namespace}}:msg:{32 hex digits}` | the same, followed by `:{delivery id}` when the delivery has one | the same |
//!
//! for instance `hookverify:{default}:id:dlv_123` (`done:8812…`) and
//! `hookverify:{default}:msg:9f86…` (`done:8812…:dlv_123`). The token is written in decimal. A
//! released key is deleted, except the message key of a delivery with an id, which becomes
//! `rel:{delivery id}` for the retention (`rel:dlv_123`); an expired one is dropped by Redis. The delivery id on the message
//! key is what a replay's answer names as `completed_by`; values written by earlier versions,
//! without it, are read the same way (a replay of one names no id).
//!
//! The scripts answer:
//!
//! - **claim** (`KEYS`: the id key if any, then the message key; `ARGV`: token, lease in ms,
//!   the keys' kinds, the delivery id or an empty string): `2` (completed) if the id key is
//!   done; `1` (in flight) if the id key is held by another token; `1` if the message key is
//!   held by another token; `3` (replay) if the message key is done, with the delivery id
//!   written on it, or released by another delivery id than the claim's whose id key is done
//!   (`1` while that id key is held by another token; free otherwise, as when released by the
//!   claim's own id; the id key is read by name: it shares the hash tag); else both keys are set to
//!   `held:{token}` (the message key followed by `:{delivery id}`) with `PX lease`, answer `0`
//!   (fresh). A key held by the same token counts as free, so a claim retried with its token
//!   is fresh again. The answer is a pair: the code
//!   and the replayed message's delivery id (empty otherwise).
//! - **renew** (`ARGV`: token, lease in ms): `1` and `PEXPIRE lease` on every key if the token
//!   holds all of them, else `0` and nothing changes.
//! - **complete** (`ARGV`: token, retention in ms, the keys' kinds, the delivery id): `0`, and
//!   nothing changes, if another token holds or completed any key; else `1` and every key set
//!   to `done:{token}` (the message key keeping the `:{delivery id}` its claim wrote, or given
//!   it if the key is gone) with `PX retention`. A key the token holds or completed is its own,
//!   and so is a key Redis dropped when its lease lapsed with nobody taking it over (renewals
//!   failed during an outage), or a released one: the handler ran, so the delivery is
//!   recorded. Keeping the token makes a repeated completion harmless: a
//!   completion whose answer was lost can be retried.
//! - **release** (`ARGV`: token, retention in ms, the keys' kinds, the delivery id): frees each
//!   key the token still holds, answers how many. The id key is deleted, so the provider's
//!   retry under that id is fresh; the message key is set to `rel:{delivery id}` with `PX
//!   retention` (deleted for a delivery without an id), so a copy of the failed attempt's
//!   bytes under another id is a replay once that id completed.
//!
//! # Redis Cluster
//!
//! A script may only touch keys in one hash slot. The namespace is each key's hash tag (the
//! part between the first `{` and the next `}`, which alone decides the slot), so all keys of a
//! delivery, and of its namespace, share one slot: every call is a single-node script. With
//! the `redis` crate's `cluster-async` feature enabled in your own `Cargo.toml`, pass a
//! `redis::cluster_async::ClusterConnection` to [`RedisStore::new`]; its client's own response
//! timeout bounds each call too, so keep it at least the store's [`timeout`](RedisStore::timeout).
//!
//! The other side of that rule: **all of one namespace's keys live on one cluster node.** Load
//! spreads over the nodes only across namespaces, for instance one per subscription or
//! endpoint ([`ReceiverBuilder::namespace`](crate::ReceiverBuilder::namespace)). A single
//! namespace gets one node's throughput and memory, however large the cluster. The prefix may
//! not contain `{` or `}`, which would change the hash tag.
//!
//! # Durability
//!
//! Claims live as long as Redis keeps them. A Redis that restarts without persistence forgets
//! completed deliveries, and their retries are handled again; run it with AOF
//! (`appendonly yes`; with the default `appendfsync everysec`, a crash can still lose the last
//! second of writes). Replication is asynchronous: a claim or completion acknowledged by a
//! primary that fails over before its replica received it is lost, and that delivery may be
//! handled again. Give Redis a `maxmemory-policy` of `noeviction`: every key here has a TTL,
//! so the `volatile-*` policies evict them as readily as the `allkeys-*` ones, and an evicted
//! key is a forgotten delivery. Under `noeviction` a full Redis refuses new claims instead,
//! and receivers fail closed.
//!
//! # Outages
//!
//! Every call is bounded by [`timeout`](RedisStore::timeout) (default 2 s); a connection error,
//! a server error or a timeout is a [`StoreError`], so receivers fail closed (the delivery is
//! refused with a 503 and the provider retries). A claim that timed out may still land on the
//! server later; the receiver releases it in the background with its token. The release goes
//! out on the same multiplexed connection after the claim, so Redis runs the two in that order;
//! only if the connection is replaced in between (a reconnect) can the claim land after its
//! release, and then it holds until its lease ends. The [`ConnectionManager`] made by
//! [`connect`](RedisStore::connect) reconnects by itself: once the server is back, calls
//! succeed again without rebuilding the store.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::{FromRedisValue, Script, ScriptInvocation};

use crate::error::ConfigError;
use crate::store::{
    Claim, ClaimToken, DedupeKey, DeliveryKeys, DeliveryStore, Namespace, StoreError, millis,
};

/// The key prefix unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "hookverify:";

/// The bound on each store call unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The least bound on a store call: a shorter [`RedisStore::timeout`] is raised to it.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// The longest lease or retention written, in milliseconds (100 years): longer spans are cut to
/// it, since Redis refuses an expiry that overflows its clock.
const MAX_SPAN_MS: i64 = 100 * 365 * 24 * 3600 * 1000;

/// Answers of the claim script.
const FRESH: i64 = 0;
const IN_FLIGHT: i64 = 1;
const COMPLETED: i64 = 2;
const REPLAY: i64 = 3;

// A key's value is `held:{token}` or `done:{token}`, followed on a message key by
// `:{delivery id}` when the delivery has one (a token is decimal digits: the first `:` after it
// starts the id). `is(value, prefix)` in the scripts matches a value with or without the id.

/// `KEYS`: the id key (when the delivery has an id), then the message key (when it has one).
/// `ARGV`: the token, the lease in ms, the keys' kinds, one letter each (`i` the id, `m` the
/// message), and the delivery id (empty if none), written into the message key. Answers
/// `{code, id}`: code 0 fresh, 1 in flight, 2 completed, 3 replay; id, on a replay, the
/// delivery id that completed the message (empty if none).
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local function is(value, prefix)
  return value and (value == prefix or string.sub(value, 1, #prefix + 1) == prefix .. ':')
end
local mine = 'held:' .. ARGV[1]
for i = 1, #KEYS do
  local value = redis.call('GET', KEYS[i])
  if value and string.sub(value, 1, 5) == 'done:' then
    if string.sub(ARGV[3], i, i) == 'i' then return {2, ''} end
    return {3, string.match(value, '^done:%d+:(.*)$') or ''}
  end
  if value and string.sub(value, 1, 4) == 'rel:' then
    -- Released by a failed attempt under another id: a copy once that id completed (its
    -- retry), in flight while that id is held, else free. That id's key shares the message
    -- key's hash tag, so it lives in the same slot.
    local by = string.sub(value, 5)
    if by ~= ARGV[4] then
      local owner = redis.call('GET', string.match(KEYS[i], '^(.*):msg:%x+$') .. ':id:' .. by)
      if owner and string.sub(owner, 1, 5) == 'done:' then return {3, by} end
      if owner and not is(owner, mine) then return {1, ''} end
    end
  elseif value and not is(value, mine) then
    return {1, ''}
  end
end
for i = 1, #KEYS do
  local value = mine
  if string.sub(ARGV[3], i, i) == 'm' and ARGV[4] ~= '' then
    value = mine .. ':' .. ARGV[4]
  end
  redis.call('SET', KEYS[i], value, 'PX', ARGV[2])
end
return {0, ''}
",
    )
});

/// `KEYS`: the delivery's keys. `ARGV`: the token, the lease in ms.
/// Answers 1 (every key's lease now ends a lease from now) if the token holds every key, else 0.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local function is(value, prefix)
  return value and (value == prefix or string.sub(value, 1, #prefix + 1) == prefix .. ':')
end
local mine = 'held:' .. ARGV[1]
for i = 1, #KEYS do
  if not is(redis.call('GET', KEYS[i]), mine) then return 0 end
end
for i = 1, #KEYS do
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
return 1
",
    )
});

/// `KEYS`: the delivery's keys. `ARGV`: the token, the retention in ms, the keys' kinds (as for
/// the claim), the delivery id (empty if none).
/// Answers 0, changing nothing, if another token holds or completed a key; else 1, every key
/// now `done:<token>` for the retention (the message key still followed by the delivery id its
/// claim wrote, or by the one given if Redis dropped it). A key this token holds or completed
/// is the delivery's, and so is a key nobody holds any more (its lease lapsed and Redis dropped
/// it, or it is released): the handler ran, so the delivery is recorded.
static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local function is(value, prefix)
  return value and (value == prefix or string.sub(value, 1, #prefix + 1) == prefix .. ':')
end
local mine = 'held:' .. ARGV[1]
local done = 'done:' .. ARGV[1]
local values = {}
for i = 1, #KEYS do
  local value = redis.call('GET', KEYS[i])
  local released = value and string.sub(value, 1, 4) == 'rel:'
  if value and not (released or is(value, mine) or is(value, done)) then return 0 end
  if value and not released then
    -- `held:` and `done:` are as long: the token and the delivery id after them stay.
    values[i] = 'done:' .. string.sub(value, 6)
  elseif string.sub(ARGV[3], i, i) == 'm' and ARGV[4] ~= '' then
    values[i] = done .. ':' .. ARGV[4]
  else
    values[i] = done
  end
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], values[i], 'PX', ARGV[2])
end
return 1
",
    )
});

/// `KEYS`: the delivery's keys. `ARGV`: the token, the retention in ms, the keys' kinds, the
/// delivery id (empty if none).
/// Frees each key the token holds (never a completed one): the message key of a delivery with
/// an id becomes `rel:<delivery id>` for the retention, any other is deleted. Answers how many.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local function is(value, prefix)
  return value and (value == prefix or string.sub(value, 1, #prefix + 1) == prefix .. ':')
end
local mine = 'held:' .. ARGV[1]
local released = 0
for i = 1, #KEYS do
  if is(redis.call('GET', KEYS[i]), mine) then
    if string.sub(ARGV[3], i, i) == 'm' and ARGV[4] ~= '' then
      redis.call('SET', KEYS[i], 'rel:' .. ARGV[4], 'PX', ARGV[2])
    else
      redis.call('DEL', KEYS[i])
    end
    released = released + 1
  end
end
return released
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
/// let store = RedisStore::connect("redis://127.0.0.1:6379/").await?.prefix("webhooks:")?;
/// let verifier = Verifier::builder().secret("current", "whsec_example").build()?;
/// let receiver = Receiver::new(verifier, store);
/// # let _ = receiver;
/// # Ok(())
/// # }
/// ```
pub struct RedisStore<C = ConnectionManager> {
    connection: C,
    prefix: Arc<str>,
    timeout: Duration,
}

impl RedisStore<ConnectionManager> {
    /// Connects to the server at `url` (`redis://[user:password@]host[:port][/db]`, or
    /// `rediss://` where the `redis` crate has TLS enabled) through a [`ConnectionManager`]
    /// that reconnects by itself.
    ///
    /// Fails if the URL is invalid or the server cannot be reached within
    /// [`DEFAULT_TIMEOUT`]. Each call is then bounded by [`timeout`](Self::timeout) alone (the
    /// manager's own response timeout is off). For other settings build a
    /// [`ConnectionManager`] yourself and use [`RedisStore::new`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let bound = DEFAULT_TIMEOUT;
        let client = ::redis::Client::open(url)
            .map_err(|e| StoreError::from_source("redis: invalid connection URL", e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(bound))
            .set_response_timeout(None)
            // Few, quick retries: a call waiting on a reconnection is bounded anyway, and a
            // failed reconnection is retried on the next call.
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
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
    /// A store over an existing connection (a [`ConnectionManager`], a
    /// `redis::cluster_async::ClusterConnection`, …), with the default prefix and timeout.
    ///
    /// The connection is cloned for each call, so it should be a cheap handle onto a shared,
    /// multiplexed connection, as both of those are.
    pub fn new(connection: C) -> Self {
        Self {
            connection,
            prefix: DEFAULT_PREFIX.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Puts `prefix` in front of every key, to keep this store's keys apart from other data in
    /// the same database (default [`DEFAULT_PREFIX`]).
    ///
    /// Fails if the prefix contains `{` or `}`: it would change the keys' hash tag, and with it
    /// which keys share a Redis Cluster slot.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Result<Self, ConfigError> {
        let prefix = prefix.into();
        if prefix.contains(['{', '}']) {
            return Err(ConfigError::OutOfRange {
                setting: "redis key prefix",
                allowed: "any text without `{` or `}`".into(),
            });
        }
        self.prefix = prefix.into();
        Ok(self)
    }

    /// Bounds each call: past `timeout` the call fails with a [`StoreError`] (default
    /// [`DEFAULT_TIMEOUT`]). A timeout shorter than [`MIN_TIMEOUT`] (1 ms), zero included, is
    /// raised to it: a zero bound would fail every call.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(MIN_TIMEOUT);
        self
    }

    /// The key prefix.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// The bound on each call.
    pub fn call_timeout(&self) -> Duration {
        self.timeout
    }

    /// The connection.
    pub fn connection(&self) -> &C {
        &self.connection
    }

    /// The Redis keys that hold a delivery, in the order the scripts take them (the delivery
    /// id's key first, when there is one, then the message key): for inspecting the store.
    pub fn redis_keys(&self, keys: &DeliveryKeys) -> Vec<String> {
        keys.all()
            .map(|key| self.redis_key(keys.namespace(), key))
            .collect()
    }

    /// `{prefix}{{namespace}}{rest of the key}`: the namespace is the hash tag.
    fn redis_key(&self, namespace: &Namespace, key: &DedupeKey) -> String {
        let ns = namespace.as_str();
        let text = key.as_str();
        // Every key of a `DeliveryKeys` starts with its namespace (see `DeliveryKeys::new`).
        debug_assert!(text.starts_with(ns));
        let rest = text.strip_prefix(ns).unwrap_or(text);
        let mut name = String::with_capacity(self.prefix.len() + ns.len() + 2 + rest.len());
        name.push_str(&self.prefix);
        name.push('{');
        name.push_str(ns);
        name.push('}');
        name.push_str(rest);
        name
    }

    /// An invocation of `script` over all of the delivery's keys, with the token as `ARGV[1]`.
    fn invocation<'s>(
        &self,
        script: &'s Script,
        keys: &DeliveryKeys,
        token: ClaimToken,
    ) -> ScriptInvocation<'s> {
        let mut invocation = script.prepare_invoke();
        for key in keys.all() {
            invocation.key(self.redis_key(keys.namespace(), key));
        }
        invocation.arg(token.get());
        invocation
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

/// The claim script's answer. The id is only for the logs: bytes that are not UTF-8 (which this
/// crate never writes) are shown with replacement characters rather than failing the claim.
fn claim_answer(code: i64, id: &[u8]) -> Result<Claim, StoreError> {
    match code {
        FRESH => Ok(Claim::Fresh),
        IN_FLIGHT => Ok(Claim::InFlight),
        COMPLETED => Ok(Claim::Completed),
        REPLAY => Ok(Claim::Replay {
            completed_by: (!id.is_empty()).then(|| String::from_utf8_lossy(id).into()),
        }),
        other => Err(StoreError::new(format!(
            "redis: unexpected answer {other} to a claim"
        ))),
    }
}

/// Adds the keys' kinds (`i` the id's, `m` the message's, one letter each in key order) and the
/// delivery id (empty if none) to a script's arguments.
fn with_kinds_and_id(invocation: &mut ScriptInvocation<'_>, keys: &DeliveryKeys) {
    let kinds = match (keys.id(), keys.message()) {
        (Some(_), Some(_)) => "im",
        (Some(_), None) => "i",
        _ => "m",
    };
    invocation.arg(kinds);
    invocation.arg(keys.delivery_id().unwrap_or(""));
}

/// A lease or retention in whole milliseconds, from 1 ms to 100 years.
fn span_ms(span: Duration) -> i64 {
    millis(span).min(MAX_SPAN_MS)
}

impl<C> DeliveryStore for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn claim(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let mut invocation = self.invocation(&CLAIM, keys, token);
        invocation.arg(span_ms(lease));
        with_kinds_and_id(&mut invocation, keys);
        let (code, id) = self.run::<(i64, Vec<u8>)>("claim", &invocation).await?;
        claim_answer(code, &id)
    }

    async fn renew(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.invocation(&RENEW, keys, token);
        invocation.arg(span_ms(lease));
        Ok(self.run::<i64>("renew", &invocation).await? == 1)
    }

    async fn complete(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        retain: Duration,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.invocation(&COMPLETE, keys, token);
        invocation.arg(span_ms(retain));
        with_kinds_and_id(&mut invocation, keys);
        Ok(self.run::<i64>("complete", &invocation).await? == 1)
    }

    async fn release(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        retain: Duration,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.invocation(&RELEASE, keys, token);
        invocation.arg(span_ms(retain));
        with_kinds_and_id(&mut invocation, keys);
        Ok(self.run::<i64>("release", &invocation).await? > 0)
    }
}

/// Shows the prefix and the timeout, never the connection (its address may carry a password).
impl<C> fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn timeout_message(call: &str, bound: Duration) -> String {
    format!(
        "redis: {call} got no answer within {} ms",
        bound.as_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MessageDigest;

    fn delivery(id: Option<&str>) -> DeliveryKeys {
        let namespace = Namespace::new("sub-1.a_b").expect("valid namespace");
        DeliveryKeys::new(&namespace, id, &MessageDigest::of(&[b"1764000000.{}"]))
    }

    #[test]
    fn keys_share_the_namespace_as_hash_tag() {
        let store = RedisStore::new(Never).prefix("app:").expect("valid prefix");
        let keys = delivery(Some("dlv_{1}"));
        let digest = hex::encode(&MessageDigest::of(&[b"1764000000.{}"]).as_bytes()[..16]);
        assert_eq!(
            store.redis_keys(&keys),
            [
                "app:{sub-1.a_b}:id:dlv_{1}".to_owned(),
                format!("app:{{sub-1.a_b}}:msg:{digest}"),
            ]
        );
        assert_eq!(store.redis_keys(&delivery(None)).len(), 1);
    }

    #[test]
    fn prefixes_with_braces_are_refused() {
        for prefix in ["{", "}", "a{b}:", "{}"] {
            assert!(RedisStore::new(Never).prefix(prefix).is_err(), "{prefix}");
        }
        let store = RedisStore::new(Never)
            .prefix("")
            .expect("an empty prefix is fine");
        assert_eq!(store.key_prefix(), "");
    }

    #[test]
    fn timeouts_are_at_least_a_millisecond_and_spans_bounded() {
        let store = RedisStore::new(Never).timeout(Duration::ZERO);
        assert_eq!(store.call_timeout(), MIN_TIMEOUT);
        assert_eq!(span_ms(Duration::ZERO), 1);
        assert_eq!(span_ms(Duration::from_secs(30)), 30_000);
        assert_eq!(span_ms(Duration::MAX), MAX_SPAN_MS);
    }

    #[test]
    fn debug_shows_no_connection() {
        let shown = format!("{:?}", RedisStore::new(Never));
        assert!(shown.contains("hookverify:"), "{shown}");
        assert!(!shown.contains("Never"), "{shown}");
    }

    /// A connection for tests that never reach a server.
    #[derive(Clone, Debug)]
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
