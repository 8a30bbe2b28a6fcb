//! The fault helpers on live servers (`tests/common/servers.rs`): a PostgreSQL table locked by
//! another session holds up an `INSERT`, and `CLIENT PAUSE` holds up a Redis `GET`.
//!
//! Each test starts its own server (Debian packages `postgresql`, `redis-server`), or uses
//! `HOOKVERIFY_TEST_POSTGRES_URL` / `HOOKVERIFY_TEST_REDIS_URL` when set.

#[path = "common/servers.rs"]
mod servers;

use std::time::{Duration, Instant};

use servers::{PostgresServer, RedisServer};

#[test]
fn a_locked_table_holds_up_an_insert_until_the_lock_ends() {
    let postgres = PostgresServer::start();
    postgres.psql("DROP TABLE IF EXISTS fault_lock; CREATE TABLE fault_lock (x int)");

    let hold = Duration::from_secs(1);
    let locked = Instant::now();
    let session = postgres.lock_table_for("fault_lock", hold);
    let returned = locked.elapsed();
    let insert = Instant::now();
    postgres.psql("INSERT INTO fault_lock VALUES (1)");
    let waited = insert.elapsed();
    session.join().expect("the locking session committed");
    eprintln!("lock_table_for returned after {returned:?}; the INSERT waited {waited:?}");
    assert!(
        waited >= hold - Duration::from_millis(250),
        "INSERT waited only {waited:?}"
    );
    assert!(
        waited < hold + Duration::from_secs(3),
        "INSERT waited {waited:?}"
    );
    assert_eq!(postgres.psql("SELECT count(*) FROM fault_lock").trim(), "1");
}

#[test]
fn lock_table_for_a_missing_table_panics() {
    let postgres = PostgresServer::start();
    let outcome = std::panic::catch_unwind(|| {
        postgres.lock_table_for("no_such_table", Duration::from_millis(10))
    });
    assert!(outcome.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_pause_holds_up_a_get() {
    let redis = RedisServer::start();
    let client = redis::Client::open(redis.url()).expect("client");
    // The default response timeout (500 ms) would end the GET before the pause does.
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_connection_timeout(Some(Duration::from_secs(5)));
    let mut connection = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .expect("connect");
    let () = redis::cmd("SET")
        .arg("fault:pause")
        .arg("v")
        .query_async(&mut connection)
        .await
        .expect("SET");

    let pause = Duration::from_millis(500);
    let paused = Instant::now();
    redis.pause_for(pause);
    let value: String = redis::cmd("GET")
        .arg("fault:pause")
        .query_async(&mut connection)
        .await
        .expect("GET after the pause");
    let waited = paused.elapsed();
    eprintln!("GET answered {waited:?} after CLIENT PAUSE 500");
    assert_eq!(value, "v");
    assert!(
        waited >= pause - Duration::from_millis(50),
        "GET waited only {waited:?}"
    );
    assert!(
        waited < pause + Duration::from_secs(2),
        "GET waited {waited:?}"
    );
}
