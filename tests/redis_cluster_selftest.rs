//! The throwaway Redis Cluster (`servers::RedisCluster`): three masters on loopback, reached
//! with the `redis` crate's async cluster client; keys spread over the nodes, and a Lua script
//! over two keys that share a hash tag.
//!
//! Starts its own nodes (Debian package `redis-server`), or uses
//! `HOOKVERIFY_TEST_REDIS_CLUSTER_URLS` when set.

#[path = "common/servers.rs"]
mod servers;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use redis::cluster::ClusterClient;

use servers::RedisCluster;

/// The node serving `key`, by its own answer to `CLUSTER KEYSLOT` and the slot map.
async fn node_of(
    connection: &mut redis::cluster_async::ClusterConnection,
    key: &str,
) -> (String, i64) {
    let slot: i64 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(connection)
        .await
        .expect("CLUSTER KEYSLOT");
    // Each entry: [start, end, [ip, port, id, ...], replicas...].
    let slots: Vec<(i64, i64, (String, i64))> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async::<Vec<redis::Value>>(connection)
        .await
        .expect("CLUSTER SLOTS")
        .into_iter()
        .map(|entry| {
            let redis::Value::Array(items) = entry else {
                panic!("a CLUSTER SLOTS entry is not an array: {entry:?}");
            };
            let start: i64 = redis::from_redis_value(items[0].clone()).expect("start slot");
            let end: i64 = redis::from_redis_value(items[1].clone()).expect("end slot");
            let redis::Value::Array(master) = &items[2] else {
                panic!("no master in {items:?}");
            };
            let ip: String = redis::from_redis_value(master[0].clone()).expect("ip");
            let port: i64 = redis::from_redis_value(master[1].clone()).expect("port");
            (start, end, (ip, port))
        })
        .collect();
    slots
        .into_iter()
        .find(|(start, end, _)| (*start..=*end).contains(&slot))
        .map(|(_, _, node)| node)
        .unwrap_or_else(|| panic!("slot {slot} of {key} not served"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_spreads_keys_and_runs_hash_tagged_scripts() {
    let started = Instant::now();
    let cluster = RedisCluster::start();
    eprintln!("redis cluster up in {:?}", started.elapsed());
    assert_eq!(cluster.urls().len(), 3);

    let client = ClusterClient::builder(cluster.urls())
        .connection_timeout(Duration::from_secs(5))
        .response_timeout(Duration::from_secs(5))
        .build()
        .expect("cluster client");
    let mut connection = client
        .get_async_connection()
        .await
        .expect("connect to the cluster");

    // Keys until three nodes hold one each (the slots are split in three ranges, so a few
    // dozen keys are plenty).
    let mut nodes = HashSet::new();
    for i in 0..64 {
        let key = format!("hv:selftest:{i}");
        let value = format!("value-{i}");
        let () = connection.set(&key, &value).await.expect("SET");
        let read: String = connection.get(&key).await.expect("GET");
        assert_eq!(read, value);
        nodes.insert(node_of(&mut connection, &key).await);
        if nodes.len() == 3 {
            break;
        }
    }
    assert_eq!(nodes.len(), 3, "keys landed on {nodes:?} only");

    // Two keys with the hash tag `{ns}` share a slot, so one script may touch both.
    let script = "redis.call('SET', KEYS[1], ARGV[1]); \
                  redis.call('SET', KEYS[2], ARGV[2]); \
                  return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}";
    let both: Vec<String> = redis::cmd("EVAL")
        .arg(script)
        .arg(2)
        .arg("hv:{ns}:a")
        .arg("hv:{ns}:b")
        .arg("first")
        .arg("second")
        .query_async(&mut connection)
        .await
        .expect("EVAL over two keys sharing a hash tag");
    assert_eq!(both, ["first", "second"]);
    let b: String = connection.get("hv:{ns}:b").await.expect("GET");
    assert_eq!(b, "second");

    // Without a shared tag the same script is refused: the keys live in different slots.
    let refused: redis::RedisResult<Vec<String>> = redis::cmd("EVAL")
        .arg(script)
        .arg(2)
        .arg("hv:selftest:0")
        .arg("hv:selftest:1")
        .arg("x")
        .arg("y")
        .query_async(&mut connection)
        .await;
    assert!(refused.is_err(), "a cross-slot script ran: {refused:?}");
}
