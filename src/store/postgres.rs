//! The PostgreSQL store: claims shared by every receiver that reaches one database, and
//! completions that commit with the handler's own writes.
//!
//! # Setup
//!
//! The store keeps its claims in one table, `hookverify_deliveries`, created by [`MIGRATION`]
//! (plain SQL, idempotent). Apply it with your own migration tool, or call
//! [`PostgresStore::migrate`] at startup. Put the table in another schema through the
//! connection's `search_path`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use hookverify::store::postgres::PostgresStore;
//! use hookverify::{Receiver, Verifier};
//!
//! let store = PostgresStore::connect("postgres://hooks@127.0.0.1/app").await?;
//! store.migrate().await?;
//! let verifier = Verifier::builder().secret("current", "whsec_example").build()?;
//! let receiver = Receiver::new(verifier, store);
//! # let _ = receiver;
//! # Ok(())
//! # }
//! ```
//!
//! # Design
//!
//! - **One statement per call.** A claim is decided by the database in one statement: an
//!   `INSERT … ON CONFLICT (key) DO UPDATE … WHERE <the existing row expired> RETURNING`, inside
//!   a CTE whose outer query reads the existing row when the insert did not win. The conflict
//!   check takes the row's lock, so of any number of concurrent claims exactly one wins.
//!   `complete` and `release` are one `UPDATE`/`DELETE` each that compares the token in its
//!   `WHERE` clause: a worker whose lease ran out cannot touch a newer claim, and a completed row
//!   cannot be released.
//! - **The injected clock.** Expiry is judged against a `now` the store reads from its
//!   [`Clock`] and passes as a parameter, never the database's `now()`, so the receiver's
//!   verifier and its store agree on time and tests can move it.
//! - **Cleanup.** Expired rows answer as absent, so they only take space. [`cleanup`]
//!   deletes them (in batches, skipping rows locked by open transactions); call it
//!   periodically if you like. The store also runs one batch in the background every
//!   [`DEFAULT_CLEANUP_EVERY`] claims (see [`cleanup_every`]). An owner whose expired claim
//!   was cleaned up gets `false` from `complete` and `release`, as if another worker had taken
//!   the delivery over.
//! - **Outages.** Every call (waiting for a pooled connection included) is bounded by
//!   [`timeout`](PostgresStore::timeout) (default 2 s); a connection error or a timeout is a
//!   [`StoreError`], so receivers fail closed (HTTP 503 in the Axum layer). A connection that
//!   timed out is dropped rather than returned to the pool, and the pool replaces closed
//!   connections, so the store recovers by itself once the database is back.
//!
//! A note on the claim's fallback read: under `READ COMMITTED` it sees the row as of the
//! statement's start, which may predate a concurrent claim's commit. It therefore never answers
//! fresh, and answers completed only for a row that was completed and unexpired; anything else
//! is in flight (the provider retries, and the retry sees the settled state).
//!
//! # Exactly-once effects: completing inside your transaction
//!
//! When the handler's effects live in the same database, complete the claim in the handler's
//! own transaction with [`PostgresStore::complete_in`]: the completion and the effects commit
//! or roll back together.
//!
//! 1. Claim with the store as usual ([`DeliveryStore::claim`]): a fresh claim returns a token.
//! 2. Open a transaction, do the work, then call `complete_in(&tx, key, token, retain)`.
//! 3. If it answers `true`, commit: the row is locked until then, so no other worker can take
//!    the delivery over in between; a concurrent claim waits for the commit and then sees the
//!    delivery as handled. If it answers `false`, the lease ran out and another worker may own
//!    the delivery: **roll back**.
//! 4. On a rollback (or a crash before the commit) nothing is recorded: release the claim
//!    ([`DeliveryStore::release`]) so the provider's retry is handled, or let the lease lapse.
//!
//! ```no_run
//! # async fn run(
//! #     store: hookverify::store::postgres::PostgresStore,
//! #     key: hookverify::store::DedupeKey,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! use hookverify::DeliveryStore;
//! use hookverify::store::Claim;
//! use hookverify::time::Duration;
//!
//! let Claim::Fresh(token) = store.claim(&key, Duration::seconds(30)).await? else {
//!     return Ok(()); // a duplicate
//! };
//! let mut client = store.pool().get().await?;
//! let tx = client.transaction().await?;
//! tx.execute("INSERT INTO orders (id) VALUES ($1)", &[&42_i64]).await?;
//! if store.complete_in(&*tx, &key, token, Duration::minutes(11)).await? {
//!     tx.commit().await?;
//! } else {
//!     tx.rollback().await?;
//!     store.release(&key, token).await?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! [`PostgresStore::claim_in`] claims inside a transaction too: the claim then stays invisible
//! until the commit (concurrent claims of the key wait for it, up to their timeout), and a
//! rollback undoes it, so no release is needed. Use the default `READ COMMITTED` isolation for
//! transactions that claim: under `REPEATABLE READ` a concurrent claim fails with a
//! serialization error (a [`StoreError`]).
//!
//! [`cleanup`]: PostgresStore::cleanup
//! [`cleanup_every`]: PostgresStore::cleanup_every

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ::deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use ::tokio_postgres::types::{ToSql, Type};
use ::tokio_postgres::{GenericClient, NoTls, Row};
use time::Duration;
use tokio::time::Instant;

use crate::clock::{Clock, SystemClock};
use crate::store::{Claim, ClaimToken, DedupeKey, DeliveryStore, StoreError, deadline, unix_ms};

/// The table and its index, as the store expects them. Idempotent: safe to run at every start.
///
/// ```sql
/// CREATE TABLE IF NOT EXISTS hookverify_deliveries (
///     key       text    PRIMARY KEY,        -- DedupeKey::as_str()
///     token     bigint,                     -- the owner's token while held, NULL once completed
///     until_ms  bigint  NOT NULL,           -- Unix ms (store's clock): end of lease or retention
///     completed boolean NOT NULL DEFAULT false,
///     CONSTRAINT hookverify_deliveries_state CHECK (completed = (token IS NULL))
/// );
/// CREATE INDEX IF NOT EXISTS hookverify_deliveries_until_ms
///     ON hookverify_deliveries (until_ms);
/// ```
pub const MIGRATION: &str = "\
CREATE TABLE IF NOT EXISTS hookverify_deliveries (
    key       text    PRIMARY KEY,
    token     bigint,
    until_ms  bigint  NOT NULL,
    completed boolean NOT NULL DEFAULT false,
    CONSTRAINT hookverify_deliveries_state CHECK (completed = (token IS NULL))
);
CREATE INDEX IF NOT EXISTS hookverify_deliveries_until_ms
    ON hookverify_deliveries (until_ms);
";

/// The bound on each store call unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::seconds(2);

/// Claims between two background cleanup batches unless configured otherwise.
pub const DEFAULT_CLEANUP_EVERY: u64 = 1_000;

/// Rows one cleanup statement deletes at most.
pub const CLEANUP_BATCH: i64 = 5_000;

/// The bound on [`PostgresStore::migrate`]: DDL may wait for locks held by other sessions.
const MIGRATE_TIMEOUT: Duration = Duration::seconds(30);

/// Serializes concurrent migrations (`CREATE … IF NOT EXISTS` races otherwise): "hookveri".
const MIGRATION_LOCK: i64 = 0x686f_6f6b_7665_7269;

/// `$1` key, `$2` token, `$3` until (ms), `$4` now (ms). One row: 0 fresh, 1 in flight,
/// 2 completed; no row counts as in flight (the row is too new for the statement's snapshot).
const CLAIM_SQL: &str = "\
WITH fresh AS (
    INSERT INTO hookverify_deliveries AS d (key, token, until_ms, completed)
    VALUES ($1, $2, $3, false)
    ON CONFLICT (key) DO UPDATE
        SET token = excluded.token, until_ms = excluded.until_ms, completed = false
        WHERE d.until_ms <= $4
    RETURNING 0 AS answer
)
SELECT answer FROM fresh
UNION ALL
SELECT CASE WHEN d.completed AND d.until_ms > $4 THEN 2 ELSE 1 END
FROM hookverify_deliveries AS d
WHERE d.key = $1 AND NOT EXISTS (SELECT 1 FROM fresh)";

const CLAIM_TYPES: [Type; 4] = [Type::TEXT, Type::INT8, Type::INT8, Type::INT8];

/// `$1` key, `$2` token, `$3` until (ms). A row if the token held the key.
const COMPLETE_SQL: &str = "\
UPDATE hookverify_deliveries SET token = NULL, completed = true, until_ms = $3
WHERE key = $1 AND token = $2 AND NOT completed
RETURNING true";

const COMPLETE_TYPES: [Type; 3] = [Type::TEXT, Type::INT8, Type::INT8];

/// `$1` key, `$2` token. A row if the token held the key.
const RELEASE_SQL: &str = "\
DELETE FROM hookverify_deliveries WHERE key = $1 AND token = $2 AND NOT completed
RETURNING true";

const RELEASE_TYPES: [Type; 2] = [Type::TEXT, Type::INT8];

/// `$1` now (ms), `$2` batch size. Skips rows that open transactions hold.
const CLEANUP_SQL: &str = "\
DELETE FROM hookverify_deliveries
WHERE key IN (
    SELECT key FROM hookverify_deliveries
    WHERE until_ms <= $1
    ORDER BY until_ms
    LIMIT $2
    FOR UPDATE SKIP LOCKED
) AND until_ms <= $1";

const FRESH: i32 = 0;
const IN_FLIGHT: i32 = 1;
const COMPLETED: i32 = 2;

/// A dedupe store in PostgreSQL, shared by receivers on several machines.
///
/// See the [module docs](self) for the table, the design and the transaction recipe.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    clock: Arc<dyn Clock>,
    timeout: std::time::Duration,
    cleanup_every: u64,
    cleanup: Arc<CleanupState>,
}

#[derive(Default)]
struct CleanupState {
    claims: AtomicU64,
    running: AtomicBool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user[:password]@host[:port]/db`, or the
    /// `key=value` form) through a pool of up to 16 connections, without TLS.
    ///
    /// Fails if the URL is invalid or no connection can be made within [`DEFAULT_TIMEOUT`].
    /// For TLS or other pool settings, build a [`Pool`] yourself and use
    /// [`PostgresStore::new`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let bound = DEFAULT_TIMEOUT.unsigned_abs();
        let mut config: ::tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::from_source("postgres: invalid connection URL", e))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(bound);
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(bound))
            .create_timeout(Some(bound))
            .recycle_timeout(Some(bound))
            .build()
            .map_err(|e| StoreError::from_source("postgres: cannot build the pool", e))?;
        let store = Self::new(pool);
        // Fail fast on a wrong address or credentials; the connection goes back to the pool.
        drop(store.client(Instant::now() + store.timeout).await?);
        Ok(store)
    }

    /// A store over `pool`, with the default timeout and cleanup interval, on the system clock.
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            clock: Arc::new(SystemClock),
            timeout: DEFAULT_TIMEOUT.unsigned_abs(),
            cleanup_every: DEFAULT_CLEANUP_EVERY,
            cleanup: Arc::default(),
        }
    }

    /// Judges expiry on `clock`. Give it the verifier's clock.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Bounds each call, waiting for a pooled connection included: past `timeout` the call
    /// fails with a [`StoreError`] (a negative duration counts as zero).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::ZERO).unsigned_abs();
        self
    }

    /// Runs one cleanup batch ([`CLEANUP_BATCH`] rows) on a background task every `claims`
    /// claims made through this store (and its clones); `0` turns that off, leaving
    /// [`cleanup`](Self::cleanup) to you. Failures of a background batch are ignored: the next
    /// one tries again.
    #[must_use]
    pub fn cleanup_every(mut self, claims: u64) -> Self {
        self.cleanup_every = claims;
        self
    }

    /// The pool, for the caller's own transactions.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Creates the table and its index if they do not exist ([`MIGRATION`]). Concurrent calls
    /// (several receivers starting at once) wait for each other. Bounded by 30 s.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let bound = MIGRATE_TIMEOUT.unsigned_abs();
        let deadline = Instant::now() + bound;
        let mut client = self.client(deadline).await?;
        let run = async {
            let tx = client.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            tx.batch_execute(MIGRATION).await?;
            tx.commit().await
        };
        let result = tokio::time::timeout_at(deadline, run).await;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(StoreError::from_source("postgres: migration failed", error)),
            Err(_) => {
                drop(Object::take(client));
                Err(StoreError::new(timeout_message("migration", bound)))
            }
        }
    }

    /// Deletes every expired row, in batches of [`CLEANUP_BATCH`], each bounded by the timeout;
    /// answers how many rows went. Rows locked by open transactions are left for next time.
    pub async fn cleanup(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let deleted = cleanup_batch(&self.pool, self.now_ms(), self.timeout).await?;
            total += deleted;
            if deleted < CLEANUP_BATCH.unsigned_abs() {
                return Ok(total);
            }
        }
    }

    /// [`DeliveryStore::claim`] on `client`: a connection, or a transaction whose commit then
    /// publishes the claim (see the [module docs](self)). Bounded by the timeout.
    pub async fn claim_in<C>(
        &self,
        client: &C,
        key: &DedupeKey,
        lease: Duration,
    ) -> Result<Claim, StoreError>
    where
        C: GenericClient + Sync,
    {
        let (token, now_ms, until_ms) = self.claim_parts(lease)?;
        let raw = signed(token);
        let params: [(&(dyn ToSql + Sync), Type); 4] = [
            (&key.as_str(), CLAIM_TYPES[0].clone()),
            (&raw, CLAIM_TYPES[1].clone()),
            (&until_ms, CLAIM_TYPES[2].clone()),
            (&now_ms, CLAIM_TYPES[3].clone()),
        ];
        let rows = self
            .bounded("claim", client.query_typed(CLAIM_SQL, &params))
            .await?;
        claim_answer(rows.first(), token)
    }

    /// [`DeliveryStore::complete`] on `client`, typically the transaction that holds the
    /// handler's writes: the completion commits or rolls back with them. Answers `false` if
    /// `token` no longer owns the key; then roll the transaction back. Bounded by the timeout.
    pub async fn complete_in<C>(
        &self,
        client: &C,
        key: &DedupeKey,
        token: ClaimToken,
        retain: Duration,
    ) -> Result<bool, StoreError>
    where
        C: GenericClient + Sync,
    {
        let until_ms = deadline(self.now_ms(), retain);
        let raw = signed(token);
        let params: [(&(dyn ToSql + Sync), Type); 3] = [
            (&key.as_str(), COMPLETE_TYPES[0].clone()),
            (&raw, COMPLETE_TYPES[1].clone()),
            (&until_ms, COMPLETE_TYPES[2].clone()),
        ];
        let rows = self
            .bounded("complete", client.query_typed(COMPLETE_SQL, &params))
            .await?;
        Ok(!rows.is_empty())
    }

    /// [`DeliveryStore::release`] on `client`. Bounded by the timeout.
    pub async fn release_in<C>(
        &self,
        client: &C,
        key: &DedupeKey,
        token: ClaimToken,
    ) -> Result<bool, StoreError>
    where
        C: GenericClient + Sync,
    {
        let raw = signed(token);
        let params: [(&(dyn ToSql + Sync), Type); 2] = [
            (&key.as_str(), RELEASE_TYPES[0].clone()),
            (&raw, RELEASE_TYPES[1].clone()),
        ];
        let rows = self
            .bounded("release", client.query_typed(RELEASE_SQL, &params))
            .await?;
        Ok(!rows.is_empty())
    }

    fn now_ms(&self) -> i64 {
        unix_ms(self.clock.unix_nanos())
    }

    fn claim_parts(&self, lease: Duration) -> Result<(ClaimToken, i64, i64), StoreError> {
        let token = ClaimToken::random()?;
        let now_ms = self.now_ms();
        Ok((token, now_ms, deadline(now_ms, lease)))
    }

    async fn bounded<T>(
        &self,
        call: &'static str,
        query: impl Future<Output = Result<T, ::tokio_postgres::Error>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, query).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(StoreError::from_source(
                format!("postgres: {call} failed"),
                error,
            )),
            Err(_) => Err(StoreError::new(timeout_message(call, self.timeout))),
        }
    }

    /// A pooled connection, by `deadline`.
    async fn client(&self, deadline: Instant) -> Result<Object, StoreError> {
        pooled(&self.pool, deadline, self.timeout).await
    }

    /// Runs a prepared (and cached per connection) statement on a pooled connection, the whole
    /// call bounded by the timeout. A connection that timed out is dropped, not pooled: it may
    /// still be waiting for an answer.
    async fn query_pooled(
        &self,
        call: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let deadline = Instant::now() + self.timeout;
        let client = self.client(deadline).await?;
        let run = async {
            let statement = client.prepare_cached(sql).await?;
            client.query_opt(&statement, params).await
        };
        let result = tokio::time::timeout_at(deadline, run).await;
        match result {
            Ok(Ok(row)) => Ok(row),
            Ok(Err(error)) => Err(StoreError::from_source(
                format!("postgres: {call} failed"),
                error,
            )),
            Err(_) => {
                drop(Object::take(client));
                Err(StoreError::new(timeout_message(call, self.timeout)))
            }
        }
    }

    /// Counts a claim, and every `cleanup_every` claims starts a background cleanup batch
    /// unless one is running.
    fn maybe_cleanup(&self) {
        if self.cleanup_every == 0 {
            return;
        }
        let claims = self.cleanup.claims.fetch_add(1, Ordering::Relaxed) + 1;
        if !claims.is_multiple_of(self.cleanup_every) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.cleanup.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let (pool, state, now_ms, timeout) = (
            self.pool.clone(),
            Arc::clone(&self.cleanup),
            self.now_ms(),
            self.timeout,
        );
        runtime.spawn(async move {
            // A failed batch is retried by the next one.
            let _ = cleanup_batch(&pool, now_ms, timeout).await;
            state.running.store(false, Ordering::Release);
        });
    }
}

impl DeliveryStore for PostgresStore {
    async fn claim(&self, key: &DedupeKey, lease: Duration) -> Result<Claim, StoreError> {
        let (token, now_ms, until_ms) = self.claim_parts(lease)?;
        let raw = signed(token);
        let row = self
            .query_pooled(
                "claim",
                CLAIM_SQL,
                &[&key.as_str(), &raw, &until_ms, &now_ms],
            )
            .await?;
        self.maybe_cleanup();
        claim_answer(row.as_ref(), token)
    }

    async fn complete(
        &self,
        key: &DedupeKey,
        token: ClaimToken,
        retain: Duration,
    ) -> Result<bool, StoreError> {
        let until_ms = deadline(self.now_ms(), retain);
        let raw = signed(token);
        let row = self
            .query_pooled("complete", COMPLETE_SQL, &[&key.as_str(), &raw, &until_ms])
            .await?;
        Ok(row.is_some())
    }

    async fn release(&self, key: &DedupeKey, token: ClaimToken) -> Result<bool, StoreError> {
        let raw = signed(token);
        let row = self
            .query_pooled("release", RELEASE_SQL, &[&key.as_str(), &raw])
            .await?;
        Ok(row.is_some())
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .field("clock", &self.clock)
            .field("timeout", &self.timeout)
            .field("cleanup_every", &self.cleanup_every)
            .finish_non_exhaustive()
    }
}

/// A pooled connection by `deadline` (`bound` names the limit in the error).
async fn pooled(
    pool: &Pool,
    deadline: Instant,
    bound: std::time::Duration,
) -> Result<Object, StoreError> {
    match tokio::time::timeout_at(deadline, pool.get()).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(error)) => Err(StoreError::from_source("postgres: no connection", error)),
        Err(_) => Err(StoreError::new(timeout_message("connection", bound))),
    }
}

/// Deletes up to [`CLEANUP_BATCH`] rows expired at `now_ms`.
async fn cleanup_batch(
    pool: &Pool,
    now_ms: i64,
    bound: std::time::Duration,
) -> Result<u64, StoreError> {
    let deadline = Instant::now() + bound;
    let client = pooled(pool, deadline, bound).await?;
    let run = async {
        let statement = client.prepare_cached(CLEANUP_SQL).await?;
        client.execute(&statement, &[&now_ms, &CLEANUP_BATCH]).await
    };
    let result = tokio::time::timeout_at(deadline, run).await;
    match result {
        Ok(Ok(deleted)) => Ok(deleted),
        Ok(Err(error)) => Err(StoreError::from_source("postgres: cleanup failed", error)),
        Err(_) => {
            drop(Object::take(client));
            Err(StoreError::new(timeout_message("cleanup", bound)))
        }
    }
}

fn claim_answer(row: Option<&Row>, token: ClaimToken) -> Result<Claim, StoreError> {
    let Some(row) = row else {
        // The conflicting row is newer than the statement's snapshot: a concurrent claim.
        return Ok(Claim::InFlight);
    };
    let answer: i32 = row
        .try_get(0)
        .map_err(|e| StoreError::from_source("postgres: unexpected answer to a claim", e))?;
    match answer {
        FRESH => Ok(Claim::Fresh(token)),
        IN_FLIGHT => Ok(Claim::InFlight),
        COMPLETED => Ok(Claim::Completed),
        other => Err(StoreError::new(format!(
            "postgres: unexpected answer {other} to a claim"
        ))),
    }
}

/// The token's bits as PostgreSQL's signed `bigint`.
fn signed(token: ClaimToken) -> i64 {
    i64::from_le_bytes(token.get().to_le_bytes())
}

fn timeout_message(call: &str, bound: std::time::Duration) -> String {
    format!(
        "postgres: {call} got no answer within {} ms",
        bound.as_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_all_their_bits() {
        for raw in [0, 1, u64::MAX, 1 << 63, 0x0123_4567_89ab_cdef] {
            let back = u64::from_le_bytes(signed(ClaimToken::new(raw)).to_le_bytes());
            assert_eq!(back, raw);
        }
    }

    #[test]
    fn a_missing_row_is_in_flight() {
        assert_eq!(
            claim_answer(None, ClaimToken::new(7)).expect("answer"),
            Claim::InFlight
        );
    }
}
