//! The PostgreSQL store: claims shared by every receiver that reaches one database, and
//! completions that commit with the handler's own writes.
//!
//! # Setup
//!
//! The store keeps its claims in one table, `hookverify_deliveries`, and acts on it through
//! five PL/pgSQL functions (`hookverify_claim`, `hookverify_renew`, `hookverify_complete`,
//! `hookverify_release`, `hookverify_cleanup`), all created by [`MIGRATION`] (plain SQL,
//! idempotent). Apply it with your own migration tool, or call [`PostgresStore::migrate`] at
//! startup. The table and the functions live in the first schema of the connection's
//! `search_path`; every connection of the store must see them through its own.
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
//! - **One statement, one round trip per call.** `claim`, `renew`, `complete` and `release`
//!   each send one `SELECT hookverify_…(keys, token, …)`, prepared once per pooled connection.
//!   The function walks the delivery's keys in [`DeliveryKeys::all`] order (the delivery id's
//!   first: one lock order for every call, so two calls never wait on each other in a cycle)
//!   and decides in the database, in one transaction.
//! - **All keys or none.** A claim takes each key with `INSERT … ON CONFLICT (key) DO UPDATE
//!   … WHERE <the row expired, or this token holds it>`. The walk runs in a subtransaction
//!   (a PL/pgSQL block with an `EXCEPTION` clause): on the first key it cannot take, the
//!   function raises a private error, which rolls the subtransaction back. That undoes the
//!   keys taken before *and* drops the row lock the losing `ON CONFLICT` took (PostgreSQL
//!   locks the existing row even when the `WHERE` fails), so a losing claim holds nothing.
//!   `renew` acts only if the token still holds every key, the same way, and `complete`
//!   only if no other token holds or completed one (a key whose lease lapsed untaken is still
//!   the delivery's to record);
//!   `release` frees each key the token still holds and never a completed one (the message
//!   key of a delivery with an id stays, released by that id, for the retention).
//! - **The server's clock.** Leases and retention are written and judged with the database's
//!   `clock_timestamp()` (Unix milliseconds in `until_ms`), never with a time the client
//!   computed: replicas whose clocks disagree cannot shorten or stretch a lease.
//! - **Bounded lock waits, on the server.** Every call is bounded on the client by
//!   [`timeout`](PostgresStore::timeout) (default 2 s, waiting for a pooled connection
//!   included). Each function also bounds its own lock waits with PostgreSQL's `lock_timeout`,
//!   set to what is left of nine tenths of the time the client still waits (set again before
//!   each key, so all the waits together stay within it): a call stuck behind a lock (a
//!   `LOCK TABLE`, a long transaction holding a row) is cancelled *by the server* before the
//!   client gives up, instead of landing later as a claim nobody waits for. The setting is
//!   local to the function (a `SET` clause restores the caller's value on exit), so
//!   [`claim_in`](PostgresStore::claim_in) and the other `_in` calls leave the caller's
//!   transaction as it was.
//! - **Orphans.** A claim can still land after its caller gave up (a slow server rather than
//!   a lock wait, a cut connection). The caller made the token, so it can release that claim
//!   with it: [`Receiver`](crate::Receiver) does so in the background. `release` first waits
//!   for any claim of each key still in progress (an upsert that changes nothing, then rolls
//!   back), so a release that reaches a key while the orphan is writing it frees that key
//!   once it lands. The orphan can still land around one release: on keys before it reached
//!   them, or on a key it already passed (a claim still being written overtakes it there). So
//!   the receiver sends the release again, whatever it answered, until a store timeout after
//!   it gave up on the claim: by then the server has cancelled any claim still waiting behind
//!   a lock (unless it was too loaded to even start it; such a claim lapses with its lease).
//!   A claim repeated with the same token is the same claim (answered [`Claim::Fresh`] again).
//! - **Cleanup.** Expired rows answer as absent, so they only take space.
//!   [`cleanup`](PostgresStore::cleanup) deletes them in batches (skipping rows that open
//!   transactions hold); the store also runs one batch in the background every
//!   [`DEFAULT_CLEANUP_EVERY`] claims (see [`cleanup_every`](PostgresStore::cleanup_every)).
//! - **Outages.** A connection error or a timeout is a [`StoreError`], so receivers fail
//!   closed (HTTP 503 in the Axum layer). A connection that timed out is dropped rather than
//!   returned to the pool, and the pool replaces closed connections, so the store recovers by
//!   itself once the database is back.
//!
//! Give the store a timeout no longer than the receiver's
//! [`store_timeout`](crate::ReceiverBuilder::store_timeout) (both default to 2 s): the server
//! then gives up waiting before the receiver does.
//!
//! # Exactly-once effects: completing inside your transaction
//!
//! When the handler's effects live in the same database, complete the claim in the handler's
//! own transaction with [`PostgresStore::complete_in`]: the completion and the effects commit
//! or roll back together.
//!
//! 1. Receive the delivery as usual; a fresh one comes with a [`ClaimGuard`], whose
//!    [`claim`](crate::ClaimGuard::claim) gives the keys and the token.
//! 2. Open a transaction, do the work, then call `complete_in(&tx, keys, token, retain)`.
//! 3. If it answers `true`, commit: the rows stay locked until then, so no other attempt can
//!    take the delivery over in between (a concurrent claim waits for the commit and then sees
//!    the delivery completed; past its timeout it fails with a lock timeout, a
//!    [`StoreError`], and the provider retries). Then call the guard's
//!    [`complete`](crate::ClaimGuard::complete): `complete` is idempotent for its token, so it
//!    finds the delivery completed by this token and answers `Ok`. If `complete_in` answers
//!    `false`, the lease ran out and another attempt took the delivery over (it holds or
//!    completed it): **roll back**.
//! 4. On a rollback nothing is recorded: release the guard
//!    ([`release`](crate::ClaimGuard::release)) so that the provider's retry is handled.
//!
//! Keep such a transaction shorter than a third of the lease after `complete_in`: the
//! receiver's heartbeat renews the claim then, and its renewal waits on the locked rows.
//!
//! ```no_run
//! # async fn run(
//! #     receiver: hookverify::Receiver<hookverify::store::postgres::PostgresStore>,
//! #     headers: http::HeaderMap,
//! #     body: &[u8],
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! use hookverify::Outcome;
//!
//! let Outcome::Fresh(guard) = receiver.receive(&headers, body).await? else {
//!     return Ok(()); // a duplicate
//! };
//! let store = receiver.store();
//! let (keys, token) = guard.claim();
//! let mut client = store.pool().get().await?;
//! let tx = client.transaction().await?;
//! tx.execute("INSERT INTO orders (id) VALUES ($1)", &[&42_i64]).await?;
//! if store.complete_in(&*tx, keys, token, receiver.retention()).await? {
//!     tx.commit().await?;
//!     guard.complete().await?;
//! } else {
//!     tx.rollback().await?;
//!     guard.release().await?;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Claiming inside your transaction
//!
//! [`PostgresStore::claim_in`] claims inside the caller's transaction: a claim it wins stays
//! invisible until the commit (concurrent claims of its keys wait for it, up to their
//! timeout), and a rollback undoes it, so no release is needed. A claim it loses leaves
//! nothing behind, not even a lock: the loser's transaction may stay open without delaying
//! the owner's `complete`. Use the default `READ COMMITTED` isolation for transactions that
//! claim: under `REPEATABLE READ` a claim that meets a row changed since the transaction's
//! snapshot fails with a serialization error (a [`StoreError`]). Any error inside a
//! transaction (a lock timeout included) aborts it: roll back.
//!
//! [`ClaimGuard`]: crate::ClaimGuard

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ::deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use ::tokio_postgres::types::{ToSql, Type};
use ::tokio_postgres::{GenericClient, NoTls, Row};
use tokio::time::Instant;

use crate::store::{Claim, ClaimToken, DeliveryKeys, DeliveryStore, StoreError, millis};

/// The table, its index and the store's functions. Idempotent: safe to run at every start.
///
/// The table keeps one row per key: the token of the claim that holds it (kept once
/// completed, so that a completion is idempotent for its token), the Unix millisecond (on the
/// server's clock) at which the lease or the retention ends, whether it was completed, and, on
/// a message key, the delivery id that claimed it (kept once completed: a replay's answer names
/// it). A table made by an earlier version of this crate is upgraded in place (its rows stay
/// valid; a replay of a message completed before the upgrade names no id), and the claim,
/// completion and release functions of the previous version stay (calling the new ones), for
/// its receivers during a rolling upgrade. A released message key is a row with no token, not
/// completed, naming the delivery id whose attempt released it.
pub const MIGRATION: &str = r#"
CREATE TABLE IF NOT EXISTS hookverify_deliveries (
    key         text    PRIMARY KEY,
    token       bigint,
    until_ms    bigint  NOT NULL,
    completed   boolean NOT NULL DEFAULT false,
    delivery_id text
);
CREATE INDEX IF NOT EXISTS hookverify_deliveries_until_ms
    ON hookverify_deliveries (until_ms);

-- Earlier versions cleared the token on completion and checked it; now the completing token
-- stays. Only altered when the old constraint is there (ALTER TABLE locks the whole table).
DO $migrate$
BEGIN
    IF EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conname = 'hookverify_deliveries_state'
          AND conrelid = 'hookverify_deliveries'::regclass
    ) THEN
        ALTER TABLE hookverify_deliveries DROP CONSTRAINT hookverify_deliveries_state;
    END IF;
END
$migrate$;

-- Earlier versions did not record which delivery id claimed a message key. Adding a nullable
-- column without a default rewrites nothing, but still locks the table: only when missing.
DO $migrate_id$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_attribute
        WHERE attrelid = 'hookverify_deliveries'::regclass
          AND attname = 'delivery_id'
          AND NOT attisdropped
    ) THEN
        ALTER TABLE hookverify_deliveries ADD COLUMN delivery_id text;
    END IF;
END
$migrate_id$;

-- Each function takes `wait_ms`, the time the client still waits for its answer, and bounds
-- every lock wait by what is left of it (`lock_timeout`, restored on exit by the SET clause).
-- A key lost on the way raises the private SQLSTATE ZH001, which rolls back the
-- subtransaction of the surrounding EXCEPTION block: the keys taken before and the row locks
-- taken on the way are all given back.

-- Claims every key for `claimant`, in the given order (the delivery id's first, the message
-- key last; either may be absent), recording `holder` (the delivery id, or NULL) on the
-- message key. Answers 0 fresh, 1 in flight, 2 completed (the delivery id was completed), 3
-- replay (the message was completed, or released by an attempt under another id that has
-- completed since; `completed_by` is the delivery id recorded on it). A message key released
-- under an id that is neither completed nor held by another token (`holder` itself: the
-- provider's retry of the failed attempt) is free; held, the claim is in flight. A
-- key's kind is its second field: `{namespace}:id:…` or `{namespace}:msg:…` (a namespace has
-- no ':').
CREATE OR REPLACE FUNCTION hookverify_claim(
    claim_keys text[], claimant bigint, lease_ms bigint, wait_ms integer, holder text,
    OUT answer integer, OUT completed_by text
)
LANGUAGE plpgsql
SET lock_timeout = '2s'
AS $claim$
DECLARE
    started constant timestamptz := clock_timestamp();
    last constant integer := cardinality(claim_keys);
    was_completed boolean;
    was_claimed_by text;
    was_released boolean;
    owner_completed boolean;
BEGIN
    answer := 0;
    BEGIN
        FOR i IN 1 .. last LOOP
            PERFORM set_config('lock_timeout', greatest(1, wait_ms
                - floor(extract(epoch FROM clock_timestamp() - started) * 1000))::bigint::text,
                true);
            INSERT INTO hookverify_deliveries AS d (key, token, until_ms, completed, delivery_id)
            VALUES (claim_keys[i], claimant,
                    (extract(epoch FROM clock_timestamp()) * 1000)::bigint + lease_ms, false,
                    CASE WHEN split_part(claim_keys[i], ':', 2) = 'msg' THEN holder END)
            ON CONFLICT (key) DO UPDATE
                SET token = excluded.token,
                    until_ms = (extract(epoch FROM clock_timestamp()) * 1000)::bigint + lease_ms,
                    completed = false,
                    delivery_id = excluded.delivery_id
                WHERE d.until_ms <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint
                   OR (d.token = claimant AND NOT d.completed)
                   -- Released by a failed attempt, whose id is neither completed nor held
                   -- by another token (under this very id: this claim holds it).
                   OR (d.token IS NULL AND NOT d.completed AND NOT EXISTS (
                       SELECT 1 FROM hookverify_deliveries AS o
                       WHERE o.key = split_part(d.key, ':', 1) || ':id:' || d.delivery_id
                         AND o.until_ms > (extract(epoch FROM clock_timestamp()) * 1000)::bigint
                         AND (o.completed OR o.token IS DISTINCT FROM claimant)));
            IF NOT FOUND THEN
                -- Live and not ours. This transaction holds the row's lock: it cannot change.
                SELECT d.completed, d.delivery_id, d.token IS NULL AND NOT d.completed
                INTO was_completed, was_claimed_by, was_released
                FROM hookverify_deliveries AS d WHERE d.key = claim_keys[i];
                IF was_released AND NOT was_completed THEN
                    -- A copy of a failed attempt's bytes once its id completed (its retry).
                    SELECT o.completed INTO owner_completed FROM hookverify_deliveries AS o
                    WHERE o.key = split_part(claim_keys[i], ':', 1) || ':id:' || was_claimed_by;
                    was_completed := coalesce(owner_completed, false);
                END IF;
                answer := CASE
                    WHEN was_released AND NOT was_completed THEN 1
                    WHEN was_released THEN 3
                    WHEN NOT coalesce(was_completed, false) THEN 1
                    WHEN split_part(claim_keys[i], ':', 2) = 'msg' THEN 3
                    ELSE 2
                END;
                IF answer = 3 THEN
                    completed_by := was_claimed_by;
                END IF;
                RAISE SQLSTATE 'ZH001';
            END IF;
        END LOOP;
    EXCEPTION WHEN SQLSTATE 'ZH001' THEN
        NULL; -- nothing kept; `answer` says why
    END;
END
$claim$;

-- The previous version's claim, which its receivers still call during a rolling upgrade: the
-- same claim, with the delivery id read from the id key (`{namespace}:id:{delivery id}`; a
-- namespace has no ':'), so that its retry of an attempt released under that id is fresh.
CREATE OR REPLACE FUNCTION hookverify_claim(
    claim_keys text[], claimant bigint, lease_ms bigint, wait_ms integer
) RETURNS integer
LANGUAGE sql
AS $claim_previous$
    SELECT c.answer FROM hookverify_claim(claim_keys, claimant, lease_ms, wait_ms,
        CASE WHEN split_part(claim_keys[1], ':', 2) = 'id'
            THEN substr(claim_keys[1], length(split_part(claim_keys[1], ':', 1)) + 5) END) AS c
$claim_previous$;

-- Extends every key to `lease_ms` from now, if `claimant` holds them all.
CREATE OR REPLACE FUNCTION hookverify_renew(
    claim_keys text[], claimant bigint, lease_ms bigint, wait_ms integer
) RETURNS boolean
LANGUAGE plpgsql
SET lock_timeout = '2s'
AS $renew$
DECLARE
    started constant timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1 .. cardinality(claim_keys) LOOP
        PERFORM set_config('lock_timeout', greatest(1, wait_ms
            - floor(extract(epoch FROM clock_timestamp() - started) * 1000))::bigint::text,
            true);
        UPDATE hookverify_deliveries
        SET until_ms = (extract(epoch FROM clock_timestamp()) * 1000)::bigint + lease_ms
        WHERE key = claim_keys[i] AND token = claimant AND NOT completed
          AND until_ms > (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
        IF NOT FOUND THEN
            RAISE SQLSTATE 'ZH001';
        END IF;
    END LOOP;
    RETURN true;
EXCEPTION WHEN SQLSTATE 'ZH001' THEN
    RETURN false;
END
$renew$;

-- Completes every key for `retain_ms` from now, recording `holder` (the delivery id, or NULL)
-- on the message key, unless another token holds (unexpired) or completed (retained) one. A
-- key `claimant` holds is its own even past its lease, and so is a key nobody holds any more
-- (the lease lapsed and nobody took the delivery over, or it is released: the handler ran,
-- so it is recorded).
-- Keys it already completed (an earlier call whose answer was lost, or `complete_in` in a
-- committed transaction) are left as they are.
CREATE OR REPLACE FUNCTION hookverify_complete(
    claim_keys text[], claimant bigint, retain_ms bigint, wait_ms integer, holder text
) RETURNS boolean
LANGUAGE plpgsql
SET lock_timeout = '2s'
AS $complete$
DECLARE
    started constant timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1 .. cardinality(claim_keys) LOOP
        PERFORM set_config('lock_timeout', greatest(1, wait_ms
            - floor(extract(epoch FROM clock_timestamp() - started) * 1000))::bigint::text,
            true);
        INSERT INTO hookverify_deliveries AS d (key, token, until_ms, completed, delivery_id)
        VALUES (claim_keys[i], claimant,
                (extract(epoch FROM clock_timestamp()) * 1000)::bigint + retain_ms, true,
                CASE WHEN split_part(claim_keys[i], ':', 2) = 'msg' THEN holder END)
        ON CONFLICT (key) DO UPDATE
            SET token = excluded.token,
                until_ms = excluded.until_ms,
                completed = true,
                -- The claim recorded the id on the keys it holds: keep it.
                delivery_id = CASE WHEN d.token = claimant
                    THEN coalesce(d.delivery_id, excluded.delivery_id)
                    ELSE excluded.delivery_id END
            WHERE (d.token = claimant AND NOT d.completed)
               OR (d.token IS NULL AND NOT d.completed) -- released
               OR d.until_ms <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
        IF NOT FOUND THEN
            -- Unexpired and not held by `claimant`; this transaction holds the row's lock.
            PERFORM 1 FROM hookverify_deliveries
            WHERE key = claim_keys[i] AND token = claimant AND completed;
            IF NOT FOUND THEN
                RAISE SQLSTATE 'ZH001';
            END IF;
        END IF;
    END LOOP;
    RETURN true;
EXCEPTION WHEN SQLSTATE 'ZH001' THEN
    RETURN false;
END
$complete$;

-- The previous version's completion, which its receivers still call during a rolling upgrade:
-- the same completion, recording no delivery id on a message key it did not hold.
CREATE OR REPLACE FUNCTION hookverify_complete(
    claim_keys text[], claimant bigint, retain_ms bigint, wait_ms integer
) RETURNS boolean
LANGUAGE sql
AS $complete_previous$
    SELECT hookverify_complete(claim_keys, claimant, retain_ms, wait_ms, NULL::text)
$complete_previous$;

-- Frees every key `claimant` still holds (never a completed one); true if there was one. The
-- message key of a delivery with an id (`holder`) is kept for `retain_ms` from now, released
-- by that id (no token, not completed): a copy of the failed attempt's bytes under another id
-- is then a replay. Any other key is deleted (and every key when `retain_ms` is NULL).
-- Each key is first probed with an upsert that changes nothing: it waits for a claim of the
-- key still in progress (an orphan whose caller gave up, landing late), so that the release
-- sees it. A probe that found no row inserted one; the rollback of the key's subtransaction
-- takes it back, with any lock the attempt took on a key that is not ours.
CREATE OR REPLACE FUNCTION hookverify_release(
    claim_keys text[], claimant bigint, retain_ms bigint, wait_ms integer, holder text
) RETURNS boolean
LANGUAGE plpgsql
SET lock_timeout = '2s'
AS $release$
DECLARE
    started constant timestamptz := clock_timestamp();
    freed integer := 0;
    probed boolean;
BEGIN
    FOR i IN 1 .. cardinality(claim_keys) LOOP
        PERFORM set_config('lock_timeout', greatest(1, wait_ms
            - floor(extract(epoch FROM clock_timestamp() - started) * 1000))::bigint::text,
            true);
        BEGIN
            INSERT INTO hookverify_deliveries AS d (key, token, until_ms, completed)
            VALUES (claim_keys[i], claimant, 0, false)
            ON CONFLICT (key) DO UPDATE SET until_ms = d.until_ms WHERE false
            RETURNING true INTO probed;
            IF split_part(claim_keys[i], ':', 2) = 'msg' AND holder IS NOT NULL
               AND retain_ms IS NOT NULL THEN
                UPDATE hookverify_deliveries
                SET token = NULL,
                    until_ms = (extract(epoch FROM clock_timestamp()) * 1000)::bigint + retain_ms,
                    delivery_id = holder
                WHERE key = claim_keys[i] AND token = claimant AND NOT completed;
            ELSE
                DELETE FROM hookverify_deliveries
                WHERE key = claim_keys[i] AND token = claimant AND NOT completed;
            END IF;
            IF coalesce(probed, false) OR NOT FOUND THEN
                RAISE SQLSTATE 'ZH001';
            END IF;
            freed := freed + 1;
        EXCEPTION WHEN SQLSTATE 'ZH001' THEN
            NULL;
        END;
    END LOOP;
    RETURN freed > 0;
END
$release$;

-- The previous version's release, which its receivers still call during a rolling upgrade:
-- it deletes every key it frees, as that version did.
CREATE OR REPLACE FUNCTION hookverify_release(
    claim_keys text[], claimant bigint, wait_ms integer
) RETURNS boolean
LANGUAGE sql
AS $release_previous$
    SELECT hookverify_release(claim_keys, claimant, NULL::bigint, wait_ms, NULL::text)
$release_previous$;

-- Deletes up to `batch` expired rows, skipping rows that open transactions hold.
CREATE OR REPLACE FUNCTION hookverify_cleanup(batch bigint, wait_ms integer) RETURNS bigint
LANGUAGE plpgsql
SET lock_timeout = '2s'
AS $cleanup$
DECLARE
    deleted bigint;
BEGIN
    PERFORM set_config('lock_timeout', greatest(1, wait_ms)::text, true);
    DELETE FROM hookverify_deliveries
    WHERE key IN (
        SELECT key FROM hookverify_deliveries
        WHERE until_ms <= (extract(epoch FROM now()) * 1000)::bigint
        ORDER BY until_ms
        LIMIT batch
        FOR UPDATE SKIP LOCKED
    ) AND until_ms <= (extract(epoch FROM now()) * 1000)::bigint;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$cleanup$;
"#;

/// The bound on each store call unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// The shortest bound on a store call: a zero bound would fail every call.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// The longest bound on a store call: far beyond any receiver's store timeout (a quarter of a
/// lease of at most an hour), and small enough that a deadline computed from it never overflows.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Claims between two background cleanup batches unless configured otherwise.
pub const DEFAULT_CLEANUP_EVERY: u64 = 1_000;

/// Rows one cleanup statement deletes at most.
pub const CLEANUP_BATCH: i64 = 5_000;

/// The bound on [`PostgresStore::migrate`]: DDL may wait for locks held by other sessions.
const MIGRATE_TIMEOUT: Duration = Duration::from_secs(30);

/// Serializes concurrent migrations (`CREATE … IF NOT EXISTS` races otherwise): "hookveri".
const MIGRATION_LOCK: i64 = 0x686f_6f6b_7665_7269;

const FRESH: i32 = 0;
const IN_FLIGHT: i32 = 1;
const COMPLETED: i32 = 2;
const REPLAY: i32 = 3;

/// A store function, called as one statement.
#[derive(Debug, Clone, Copy)]
enum Function {
    Claim,
    Renew,
    Complete,
    Release,
}

impl Function {
    fn name(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Renew => "renew",
            Self::Complete => "complete",
            Self::Release => "release",
        }
    }

    /// `$1` keys, `$2` token, then the lease or retention (ms) if the function takes one, and
    /// last the time left for lock waits (ms).
    /// The claim, the completion and the release also take the delivery id (`$5`, recorded on
    /// the message key); the claim answers two columns: its code and, on a replay, the delivery id that
    /// completed the message.
    fn sql(self) -> &'static str {
        match self {
            Self::Claim => "SELECT answer, completed_by FROM hookverify_claim($1, $2, $3, $4, $5)",
            Self::Renew => "SELECT hookverify_renew($1, $2, $3, $4)",
            Self::Complete => "SELECT hookverify_complete($1, $2, $3, $4, $5)",
            Self::Release => "SELECT hookverify_release($1, $2, $3, $4, $5)",
        }
    }

    fn types(self) -> &'static [Type] {
        const WITH_ID: [Type; 5] = [
            Type::TEXT_ARRAY,
            Type::INT8,
            Type::INT8,
            Type::INT4,
            Type::TEXT,
        ];
        const SPANNED: [Type; 4] = [Type::TEXT_ARRAY, Type::INT8, Type::INT8, Type::INT4];
        match self {
            Self::Claim | Self::Complete | Self::Release => &WITH_ID,
            Self::Renew => &SPANNED,
        }
    }
}

const CLEANUP_SQL: &str = "SELECT hookverify_cleanup($1, $2)";
const CLEANUP_TYPES: [Type; 2] = [Type::INT8, Type::INT4];

/// The arguments of one call, owned so that the parameter list can borrow them.
struct Arguments<'a> {
    keys: Vec<&'a str>,
    token: i64,
    span_ms: Option<i64>,
    wait_ms: i32,
    /// The delivery id, which the claim, the completion and the release record on the message
    /// key.
    delivery_id: Option<&'a str>,
}

impl<'a> Arguments<'a> {
    fn new(
        keys: &'a DeliveryKeys,
        token: ClaimToken,
        span: Option<Duration>,
        deadline: Instant,
    ) -> Self {
        Self {
            keys: keys.all().map(|key| key.as_str()).collect(),
            token: signed(token),
            span_ms: span.map(millis),
            wait_ms: lock_budget_ms(deadline.saturating_duration_since(Instant::now())),
            delivery_id: keys.delivery_id(),
        }
    }

    fn params(&self, function: Function) -> Vec<&(dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&self.keys, &self.token];
        if let Some(span) = &self.span_ms {
            params.push(span);
        }
        params.push(&self.wait_ms);
        if !matches!(function, Function::Renew) {
            params.push(&self.delivery_id);
        }
        params
    }

    fn typed_params(&self, function: Function) -> Vec<(&(dyn ToSql + Sync), Type)> {
        self.params(function)
            .into_iter()
            .zip(function.types().iter().cloned())
            .collect()
    }
}

/// What the server may spend waiting for locks, of the `left` the client still waits: nine
/// tenths, so that the server gives up (and says so) before the client stops listening.
fn lock_budget_ms(left: Duration) -> i32 {
    let budget = left - left / 10;
    i32::try_from(budget.as_millis()).unwrap_or(i32::MAX).max(1)
}

/// A dedupe store in PostgreSQL, shared by receivers on several machines.
///
/// See the [module docs](self) for the table, the design and the transaction recipes.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    timeout: Duration,
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
        let bound = DEFAULT_TIMEOUT;
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
        drop(pooled(&store.pool, Instant::now() + store.timeout, store.timeout).await?);
        Ok(store)
    }

    /// A store over `pool`, with the default timeout and cleanup interval.
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            timeout: DEFAULT_TIMEOUT,
            cleanup_every: DEFAULT_CLEANUP_EVERY,
            cleanup: Arc::default(),
        }
    }

    /// Bounds each call, waiting for a pooled connection included: past `timeout` the call
    /// fails with a [`StoreError`]. The server bounds its lock waits by nine tenths of what is
    /// left of it. Keep it no longer than the receiver's store timeout. A timeout outside
    /// [`MIN_TIMEOUT`] to [`MAX_TIMEOUT`] (1 ms to 1 h) is brought to the nearer end: zero would
    /// fail every call, and `Duration::MAX` means "as long as it takes", which an hour is here.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.clamp(MIN_TIMEOUT, MAX_TIMEOUT);
        self
    }

    /// The bound on each call.
    pub fn call_timeout(&self) -> Duration {
        self.timeout
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

    /// Creates or upgrades the table, its index and the functions ([`MIGRATION`]). Concurrent
    /// calls (several receivers starting at once) wait for each other. Bounded by 30 s.
    ///
    /// It replaces the functions every time (`CREATE OR REPLACE FUNCTION`), which only their
    /// owner may do: with a separate migration role, apply [`MIGRATION`] with that role and
    /// do not call this from the application.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let deadline = Instant::now() + MIGRATE_TIMEOUT;
        let mut client = pooled(&self.pool, deadline, MIGRATE_TIMEOUT).await?;
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
            Ok(Err(error)) => Err(failed("migration", error)),
            Err(_) => {
                drop(Object::take(client));
                Err(StoreError::new(timeout_message(
                    "migration",
                    MIGRATE_TIMEOUT,
                )))
            }
        }
    }

    /// Deletes every expired row (expired on the server's clock), in batches of
    /// [`CLEANUP_BATCH`], each bounded by the timeout; answers how many rows went. Rows locked
    /// by open transactions are left for next time.
    pub async fn cleanup(&self) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let deleted = cleanup_batch(&self.pool, self.timeout).await?;
            total += deleted;
            if deleted < CLEANUP_BATCH.unsigned_abs() {
                return Ok(total);
            }
        }
    }

    /// [`DeliveryStore::claim`] on `client`: a connection, or a transaction whose commit then
    /// publishes the claim and whose rollback undoes it. A lost claim keeps no key and no lock
    /// in the transaction. Bounded by the timeout. See the [module docs](self).
    pub async fn claim_in<C>(
        &self,
        client: &C,
        keys: &DeliveryKeys,
        token: ClaimToken,
        lease: Duration,
    ) -> Result<Claim, StoreError>
    where
        C: GenericClient + Sync,
    {
        let ClaimRow(code, completed_by) = self
            .call_in(client, Function::Claim, keys, token, Some(lease))
            .await?;
        claim_answer(code, completed_by)
    }

    /// [`DeliveryStore::complete`] on `client`, typically the transaction that holds the
    /// handler's writes: the completion commits or rolls back with them. Answers `false` if
    /// another token holds or completed a key; then roll the transaction back. Bounded by the
    /// timeout.
    pub async fn complete_in<C>(
        &self,
        client: &C,
        keys: &DeliveryKeys,
        token: ClaimToken,
        retain: Duration,
    ) -> Result<bool, StoreError>
    where
        C: GenericClient + Sync,
    {
        self.call_in(client, Function::Complete, keys, token, Some(retain))
            .await
    }

    /// [`DeliveryStore::release`] on `client`: the message key of a delivery with an id is
    /// kept for `retain`, released by that id. Bounded by the timeout.
    pub async fn release_in<C>(
        &self,
        client: &C,
        keys: &DeliveryKeys,
        token: ClaimToken,
        retain: Duration,
    ) -> Result<bool, StoreError>
    where
        C: GenericClient + Sync,
    {
        self.call_in(client, Function::Release, keys, token, Some(retain))
            .await
    }

    /// Calls `function` on the caller's client, in one round trip (an unnamed statement: the
    /// caller's client has no statement cache).
    async fn call_in<C, T>(
        &self,
        client: &C,
        function: Function,
        keys: &DeliveryKeys,
        token: ClaimToken,
        span: Option<Duration>,
    ) -> Result<T, StoreError>
    where
        C: GenericClient + Sync,
        T: Answer,
    {
        let deadline = Instant::now() + self.timeout;
        let arguments = Arguments::new(keys, token, span, deadline);
        let run = async {
            let rows = client
                .query_typed(function.sql(), &arguments.typed_params(function))
                .await?;
            match rows.first() {
                Some(row) => T::read(row).map_err(Failure::Postgres),
                None => Err(Failure::NoRow),
            }
        };
        let result = tokio::time::timeout_at(deadline, run).await;
        answer(function.name(), self.timeout, result)
    }

    /// Calls `function` on a pooled connection, with a statement prepared once per
    /// connection; the whole call (waiting for the connection included) bounded by the
    /// timeout. A connection that timed out is dropped, not pooled: it may still be busy.
    async fn call_pooled<T: Answer>(
        &self,
        function: Function,
        keys: &DeliveryKeys,
        token: ClaimToken,
        span: Option<Duration>,
    ) -> Result<T, StoreError> {
        let deadline = Instant::now() + self.timeout;
        let client = pooled(&self.pool, deadline, self.timeout).await?;
        let run = async {
            let statement = client
                .prepare_typed_cached(function.sql(), function.types())
                .await?;
            // The lock budget counts from here: the connection and the statement are ready.
            let arguments = Arguments::new(keys, token, span, deadline);
            let row = client
                .query_one(&statement, &arguments.params(function))
                .await?;
            T::read(&row)
        };
        match tokio::time::timeout_at(deadline, run).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(failed(function.name(), error)),
            Err(_) => {
                drop(Object::take(client));
                Err(StoreError::new(timeout_message(
                    function.name(),
                    self.timeout,
                )))
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
        let (pool, state, timeout) = (self.pool.clone(), Arc::clone(&self.cleanup), self.timeout);
        runtime.spawn(async move {
            // A failed batch is retried by the next one.
            let _ = cleanup_batch(&pool, timeout).await;
            state.running.store(false, Ordering::Release);
        });
    }
}

impl DeliveryStore for PostgresStore {
    async fn claim(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let ClaimRow(code, completed_by) = self
            .call_pooled(Function::Claim, keys, token, Some(lease))
            .await?;
        self.maybe_cleanup();
        claim_answer(code, completed_by)
    }

    async fn renew(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        self.call_pooled(Function::Renew, keys, token, Some(lease))
            .await
    }

    async fn complete(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        retain: Duration,
    ) -> Result<bool, StoreError> {
        self.call_pooled(Function::Complete, keys, token, Some(retain))
            .await
    }

    async fn release(
        &self,
        keys: &DeliveryKeys,
        token: ClaimToken,
        retain: Duration,
    ) -> Result<bool, StoreError> {
        self.call_pooled(Function::Release, keys, token, Some(retain))
            .await
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .field("timeout", &self.timeout)
            .field("cleanup_every", &self.cleanup_every)
            .finish_non_exhaustive()
    }
}

/// Why a call on the caller's client failed.
enum Failure {
    Postgres(::tokio_postgres::Error),
    NoRow,
}

impl From<::tokio_postgres::Error> for Failure {
    fn from(error: ::tokio_postgres::Error) -> Self {
        Self::Postgres(error)
    }
}

/// The answer of a bounded call on the caller's client.
fn answer<T>(
    call: &str,
    bound: Duration,
    result: Result<Result<T, Failure>, tokio::time::error::Elapsed>,
) -> Result<T, StoreError> {
    match result {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(Failure::Postgres(error))) => Err(failed(call, error)),
        Ok(Err(Failure::NoRow)) => {
            Err(StoreError::new(format!("postgres: {call} answered no row")))
        }
        Err(_) => Err(StoreError::new(timeout_message(call, bound))),
    }
}

/// A pooled connection by `deadline` (`bound` names the limit in the error).
async fn pooled(pool: &Pool, deadline: Instant, bound: Duration) -> Result<Object, StoreError> {
    match tokio::time::timeout_at(deadline, pool.get()).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(error)) => Err(StoreError::from_source("postgres: no connection", error)),
        Err(_) => Err(StoreError::new(timeout_message("connection", bound))),
    }
}

/// Deletes up to [`CLEANUP_BATCH`] expired rows.
async fn cleanup_batch(pool: &Pool, bound: Duration) -> Result<u64, StoreError> {
    let deadline = Instant::now() + bound;
    let client = pooled(pool, deadline, bound).await?;
    let run = async {
        let statement = client
            .prepare_typed_cached(CLEANUP_SQL, &CLEANUP_TYPES)
            .await?;
        let wait_ms = lock_budget_ms(deadline.saturating_duration_since(Instant::now()));
        let row = client
            .query_one(&statement, &[&CLEANUP_BATCH, &wait_ms])
            .await?;
        row.try_get::<_, i64>(0)
    };
    match tokio::time::timeout_at(deadline, run).await {
        Ok(Ok(deleted)) => Ok(deleted.unsigned_abs()),
        Ok(Err(error)) => Err(failed("cleanup", error)),
        Err(_) => {
            drop(Object::take(client));
            Err(StoreError::new(timeout_message("cleanup", bound)))
        }
    }
}

/// What a store function's one row answers.
trait Answer: Sized {
    fn read(row: &Row) -> Result<Self, ::tokio_postgres::Error>;
}

impl Answer for bool {
    fn read(row: &Row) -> Result<Self, ::tokio_postgres::Error> {
        row.try_get(0)
    }
}

/// The claim's row: its code, and on a replay the delivery id that completed the message.
struct ClaimRow(i32, Option<String>);

impl Answer for ClaimRow {
    fn read(row: &Row) -> Result<Self, ::tokio_postgres::Error> {
        Ok(Self(row.try_get(0)?, row.try_get(1)?))
    }
}

fn claim_answer(code: i32, completed_by: Option<String>) -> Result<Claim, StoreError> {
    match code {
        FRESH => Ok(Claim::Fresh),
        IN_FLIGHT => Ok(Claim::InFlight),
        COMPLETED => Ok(Claim::Completed),
        REPLAY => Ok(Claim::Replay {
            completed_by: completed_by.map(Arc::from),
        }),
        other => Err(StoreError::new(format!(
            "postgres: unexpected answer {other} to a claim"
        ))),
    }
}

/// The token's bits as PostgreSQL's signed `bigint`.
fn signed(token: ClaimToken) -> i64 {
    i64::from_le_bytes(token.get().to_le_bytes())
}

/// A failed call, naming the server's own message and SQLSTATE when the server answered with
/// an error (tokio-postgres shows only "db error" for those).
fn failed(call: &str, error: ::tokio_postgres::Error) -> StoreError {
    let message = match error.as_db_error() {
        Some(db) => format!(
            "postgres: {call} failed: {} (SQLSTATE {})",
            db.message(),
            db.code().code()
        ),
        None => format!("postgres: {call} failed"),
    };
    StoreError::from_source(message, error)
}

fn timeout_message(call: &str, bound: Duration) -> String {
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
    fn answers_map_to_claims() {
        let answer = |code| claim_answer(code, None).expect("answer");
        assert_eq!(answer(FRESH), Claim::Fresh);
        assert_eq!(answer(IN_FLIGHT), Claim::InFlight);
        assert_eq!(answer(COMPLETED), Claim::Completed);
        assert_eq!(answer(REPLAY), Claim::Replay { completed_by: None });
        assert_eq!(
            claim_answer(REPLAY, Some("dlv_1".into())).expect("answer"),
            Claim::Replay {
                completed_by: Some("dlv_1".into())
            }
        );
        assert!(claim_answer(4, None).is_err());
    }

    #[tokio::test]
    async fn any_timeout_is_accepted_and_bounded() {
        let config: ::tokio_postgres::Config = "host=127.0.0.1 port=1 user=nobody"
            .parse()
            .expect("a valid config");
        let manager = Manager::from_config(config, NoTls, ManagerConfig::default());
        let pool = Pool::builder(manager).build().expect("a pool");
        let store = PostgresStore::new(pool.clone()).timeout(Duration::ZERO);
        assert_eq!(store.call_timeout(), MIN_TIMEOUT);
        // `Duration::MAX` once overflowed the deadline (`Instant::now() + timeout`) and panicked
        // in every call; now the call just fails: nothing listens on port 1.
        let store = PostgresStore::new(pool).timeout(Duration::MAX);
        assert_eq!(store.call_timeout(), MAX_TIMEOUT);
        let namespace = crate::store::Namespace::default();
        let digest = crate::store::MessageDigest::of(&[b"{}"]);
        let keys = DeliveryKeys::new(&namespace, Some("dlv_1"), &digest);
        let claim = store.claim(&keys, ClaimToken::new(1), Duration::from_secs(30));
        assert!(claim.await.is_err());
        let retain = Duration::from_secs(600);
        assert!(
            store
                .release(&keys, ClaimToken::new(1), retain)
                .await
                .is_err()
        );
    }

    #[test]
    fn the_server_gives_up_before_the_client() {
        assert_eq!(lock_budget_ms(Duration::from_secs(2)), 1_800);
        assert_eq!(lock_budget_ms(Duration::from_millis(10)), 9);
        assert_eq!(lock_budget_ms(Duration::ZERO), 1);
        assert_eq!(lock_budget_ms(Duration::MAX), i32::MAX);
    }

    #[test]
    fn parameters_follow_the_signatures() {
        for function in [
            Function::Claim,
            Function::Renew,
            Function::Complete,
            Function::Release,
        ] {
            let placeholders = function.sql().matches('$').count();
            assert_eq!(placeholders, function.types().len(), "{function:?}");
            let namespace = crate::store::Namespace::default();
            let digest = crate::store::MessageDigest::of(&[b"{}"]);
            let keys = DeliveryKeys::new(&namespace, Some("dlv_1"), &digest);
            let span = Some(Duration::from_secs(1));
            let arguments = Arguments::new(&keys, ClaimToken::new(1), span, Instant::now());
            assert_eq!(
                arguments.typed_params(function).len(),
                placeholders,
                "{function:?}"
            );
        }
    }
}
