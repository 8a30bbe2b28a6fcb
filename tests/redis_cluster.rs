//! The Redis store on a three-node Redis Cluster, through `redis::cluster_async`: the shared
//! conformance suite, two receivers sharing the cluster, and namespaces placed on every node
//! (each delivery's keys share its namespace's slot, so every script runs on one node).
//!
//! Starts its own cluster (Debian package `redis-server`, and `redis-cli` to join the nodes),
//! or uses `HOOKVERIFY_TEST_REDIS_CLUSTER_URLS` when set.
#![cfg(all(feature = "redis", feature = "testing"))]

#[path = "common/replicas.rs"]
mod replicas;
#[path = "common/servers.rs"]
mod servers;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookverify::store::redis::RedisStore;
use hookverify::store::{ClaimToken, DeliveryKeys, MessageDigest, Namespace};
use hookverify::{Duplicate, ManualClock, Outcome, Receiver, Signer, Verifier};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;

use servers::RedisCluster;

type ClusterStore = RedisStore<ClusterConnection>;

async fn cluster_connection(cluster: &RedisCluster) -> ClusterConnection {
    ClusterClient::builder(cluster.urls())
        .connection_timeout(Duration::from_secs(5))
        .response_timeout(Duration::from_secs(5))
        .build()
        .expect("cluster client")
        .get_async_connection()
        .await
        .expect("connect to the cluster")
}

fn store(connection: ClusterConnection) -> ClusterStore {
    RedisStore::new(connection)
        .prefix("hookverify-cluster:")
        .expect("valid prefix")
}

fn random_namespace(what: &str) -> Namespace {
    let token = ClaimToken::random().expect("randomness").get();
    Namespace::new(&format!("{what}-{token:016x}")).expect("valid namespace")
}

/// The slot of `key`, by the cluster's own reckoning.
async fn slot_of(connection: &mut ClusterConnection, key: &str) -> i64 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(connection)
        .await
        .expect("CLUSTER KEYSLOT")
}

/// The port of the master serving `slot`, from `CLUSTER SLOTS` (entries
/// `[first slot, last slot, [ip, port, id, …], replicas…]`).
async fn node_of_slot(connection: &mut ClusterConnection, slot: i64) -> i64 {
    let entries: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(connection)
        .await
        .expect("CLUSTER SLOTS");
    for entry in entries {
        let redis::Value::Array(fields) = entry else {
            panic!("a CLUSTER SLOTS entry that is not an array: {entry:?}");
        };
        let first: i64 = redis::from_redis_value(fields[0].clone()).expect("first slot");
        let last: i64 = redis::from_redis_value(fields[1].clone()).expect("last slot");
        if (first..=last).contains(&slot) {
            let redis::Value::Array(master) = &fields[2] else {
                panic!("no master in {fields:?}");
            };
            return redis::from_redis_value(master[1].clone()).expect("port");
        }
    }
    panic!("slot {slot} is not served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_store_conforms_on_a_cluster() {
    let cluster = RedisCluster::start();
    let connection = cluster_connection(&cluster).await;
    let started = Instant::now();
    // Every case has a namespace of its own, so the cases' keys spread over the nodes.
    hookverify::testing::run_conformance(|| {
        let connection = connection.clone();
        async move { store(connection) }
    })
    .await;
    eprintln!("cluster conformance: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_receivers_sharing_a_cluster_handle_each_delivery_once() {
    let cluster = RedisCluster::start();
    // Two cluster clients: as two processes would have.
    let a = store(cluster_connection(&cluster).await);
    let b = store(cluster_connection(&cluster).await);
    let clock = Arc::new(ManualClock::from_unix(replicas::START_UNIX).expect("in range"));
    let tally = replicas::each_delivery_handled_once(a, b, clock).await;
    eprintln!("cluster replicas: {tally:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_across_cluster_replicas_is_one_message() {
    let cluster = RedisCluster::start();
    let a = store(cluster_connection(&cluster).await);
    let b = store(cluster_connection(&cluster).await);
    replicas::rotation_across_replicas_is_one_message(a, b).await;
}

/// Namespaces chosen so that one lands on each of the three nodes: in each, a delivery's two
/// keys share one slot (on that node), and a receiver handles it once, sees the retry as a
/// duplicate and the same bytes under a new id as a replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn namespaces_on_every_node_each_keep_their_keys_together() {
    let cluster = RedisCluster::start();
    let mut connection = cluster_connection(&cluster).await;
    let store = Arc::new(store(connection.clone()));
    let body = br#"{"type":"cluster"}"#;
    let timestamp = replicas::START_UNIX.to_string();
    let message = MessageDigest::of(&[timestamp.as_bytes(), b".", body]);

    // One namespace per node: a random namespace lands on a given node about a third of the
    // time, so a few dozen tries find all three.
    let mut by_node: BTreeMap<i64, Namespace> = BTreeMap::new();
    for _ in 0..200 {
        let ns = random_namespace("node");
        let keys = DeliveryKeys::new(&ns, Some("dlv_cluster"), &message);
        let names = store.redis_keys(&keys);
        let slot = slot_of(&mut connection, &names[0]).await;
        assert_eq!(
            slot_of(&mut connection, &names[1]).await,
            slot,
            "a delivery's keys must share a slot: {names:?}"
        );
        let node = node_of_slot(&mut connection, slot).await;
        by_node.entry(node).or_insert(ns);
        if by_node.len() == 3 {
            break;
        }
    }
    assert_eq!(
        by_node.len(),
        3,
        "namespaces found on {:?} only",
        by_node.keys()
    );

    let clock = Arc::new(ManualClock::from_unix(replicas::START_UNIX).expect("in range"));
    let signer = Signer::new("whsec_cluster")
        .expect("signer")
        .clock(Arc::clone(&clock));
    for (node, ns) in &by_node {
        let verifier = Verifier::builder()
            .secret("cluster", "whsec_cluster")
            .clock(Arc::clone(&clock))
            .build()
            .expect("verifier");
        let receiver = Receiver::<ClusterStore>::builder(verifier, Arc::clone(&store))
            .namespace(ns.clone())
            .build()
            .expect("receiver");
        let headers = signer
            .sign("dlv_cluster", body)
            .header_map()
            .expect("headers");
        match receiver.receive(&headers, body).await.expect("receive") {
            Outcome::Fresh(guard) => guard.complete().await.expect("complete"),
            Outcome::Duplicate(kind) => panic!("node {node}: fresh expected, got {kind:?}"),
        }
        let retry = receiver.receive(&headers, body).await.expect("receive");
        assert!(
            matches!(retry, Outcome::Duplicate(Duplicate::Completed)),
            "node {node}: the retry must be a duplicate"
        );
        let mut forged = headers.clone();
        forged.insert(
            "x-agent-delivery-id",
            http::HeaderValue::from_static("dlv_forged"),
        );
        let replay = receiver.receive(&forged, body).await.expect("receive");
        assert!(
            matches!(replay, Outcome::Duplicate(Duplicate::Replay)),
            "node {node}: the same bytes under a new id must be a replay"
        );

        // Both keys are `done`, on the node the namespace's slot belongs to: asked directly.
        let keys = DeliveryKeys::new(ns, Some("dlv_cluster"), &message);
        let mut direct = redis::Client::open(format!("redis://127.0.0.1:{node}/"))
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the node");
        for name in store.redis_keys(&keys) {
            let value: Option<String> = redis::cmd("GET")
                .arg(&name)
                .query_async(&mut direct)
                .await
                .unwrap_or_else(|e| panic!("{name} is not on node {node}: {e}"));
            assert!(
                value.as_deref().is_some_and(|v| v.starts_with("done:")),
                "{name} on node {node}: {value:?}"
            );
        }
    }
}
