//! Two `hookverify serve` processes sharing one Redis or PostgreSQL store, as two replicas behind
//! a load balancer would: copies of the same deliveries, spread over both and sent at once, are
//! each handled exactly once in total; while the store is down every request gets 503 and
//! nothing is handled; once it is back (same port), the same processes recover by themselves.
//!
//! The store servers are throwaway ones on free loopback ports (`tests/common/servers.rs`), or
//! the ones `HOOKVERIFY_TEST_REDIS_URL` / `HOOKVERIFY_TEST_POSTGRES_URL` name (the outage part is
//! then skipped: a server this test did not start cannot be stopped). Delivery ids carry a
//! random run tag, so a reused server's earlier claims never interfere.
//!
//! No test sleeps to let time pass: waits are blocking reads of the children's pipes and HTTP
//! answers, bounded by [`TIMEOUT`]. The one retry loop polls a restarting store, with a short
//! pause between attempts and a bound on the whole.
#![cfg(all(feature = "cli", feature = "redis", feature = "postgres"))]

#[path = "common/child.rs"]
mod child;
#[path = "common/servers.rs"]
mod servers;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use hookverify::Signer;
use hookverify::time::OffsetDateTime;
use hookverify::time::format_description::well_known::Rfc3339;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use child::{KillOnDrop, TIMEOUT, drain, exchange, lines};
use servers::{PostgresServer, RedisServer};
use tokio::task::JoinSet;

const BIN: &str = env!("CARGO_BIN_EXE_hookverify");
const SECRET: &str = "whsec_cli_shared_store";
const EVENT: &str = "shared.test";
/// Deliveries in the first phase, and copies of each.
const DELIVERIES: usize = 20;
const COPIES: usize = 6;
/// Of the copies, the first `FIRST_WAVE` are sent at once; the rest, re-signed with later
/// timestamps, once the first wave is answered.
const FIRST_WAVE: usize = 4;
/// Deliveries sent during the outage (and retried after it).
const DURING_OUTAGE: usize = 4;
/// Deliveries after the recovery, and copies of each.
const AFTER: usize = 10;
const AFTER_COPIES: usize = 4;

/// A store server the test can stop and start again.
trait StoreServer {
    fn url(&self) -> &str;
    fn is_owned(&self) -> bool;
    fn kill(&mut self);
    fn restart(&mut self);
}

impl StoreServer for RedisServer {
    fn url(&self) -> &str {
        RedisServer::url(self)
    }
    fn is_owned(&self) -> bool {
        RedisServer::is_owned(self)
    }
    fn kill(&mut self) {
        RedisServer::kill(self);
    }
    fn restart(&mut self) {
        RedisServer::restart(self);
    }
}

impl StoreServer for PostgresServer {
    fn url(&self) -> &str {
        PostgresServer::url(self)
    }
    fn is_owned(&self) -> bool {
        PostgresServer::is_owned(self)
    }
    fn kill(&mut self) {
        PostgresServer::kill(self);
    }
    fn restart(&mut self) {
        PostgresServer::restart(self);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_share_a_redis_store() {
    let server = RedisServer::start();
    shared_store_run(server, "redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_share_a_postgres_store() {
    let server = PostgresServer::start();
    shared_store_run(server, "postgres").await;
}

/// A store that cannot be reached at startup stops `serve` at once (exit status 1), with an
/// error that names the scheme and never the URL or its password, from `--store` or from
/// `HOOKVERIFY_STORE`.
#[test]
fn an_unreachable_store_at_startup_is_a_clear_error_without_the_url() {
    let port = servers::free_port();
    let cases = [
        ("redis", format!("redis://:hunter2@127.0.0.1:{port}/")),
        (
            "postgres",
            format!("postgres://hooks:hunter2@127.0.0.1:{port}/app"),
        ),
        (
            "postgres",
            format!("postgresql://hooks:hunter2@127.0.0.1:{port}/app"),
        ),
    ];
    for (scheme, url) in &cases {
        for from_env in [false, true] {
            let mut command = command();
            command.args(["serve", "--addr", "127.0.0.1:0", "--secret", SECRET]);
            if from_env {
                command.env("HOOKVERIFY_STORE", url);
            } else {
                command.args(["--store", url]);
            }
            let mut child = KillOnDrop(Some(command.spawn().expect("spawn hookverify serve")));
            let stdout = lines(child.take_stdout());
            let stderr = lines(child.take_stderr());
            let out = drain(&stdout, "stdout");
            let err = drain(&stderr, "stderr").join("\n");
            let status = child.wait();
            assert_eq!(status.code(), Some(1), "{scheme}: {status:?}: {err}");
            assert!(out.is_empty(), "{scheme}: printed {out:?}");
            assert!(
                err.contains(&format!("could not connect to the {scheme} store")),
                "{scheme}: {err}"
            );
            assert!(!err.contains("listening on"), "{err}");
            assert!(!err.contains("hunter2"), "the password was echoed: {err}");
            assert!(!err.contains(url.as_str()), "the URL was echoed: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}

async fn shared_store_run(mut server: impl StoreServer, scheme: &str) {
    let url = server.url().to_owned();
    let tag = format!(
        "{scheme}_{:016x}",
        hookverify::store::ClaimToken::random()
            .expect("randomness")
            .get()
    );
    // Both spawned before either is waited for: their startups (PostgreSQL: the migration)
    // overlap.
    let spawned = [Serve::spawn(&url), Serve::spawn(&url)];
    let serves = spawned.map(Spawned::ready);
    let mut expected: Vec<String> = Vec::new();

    // 1. Copies of the same deliveries on both processes at once.
    let ids: Vec<String> = (0..DELIVERIES).map(|n| format!("{tag}_a{n}")).collect();
    let now = unix_now();
    let mut first_wave = Vec::new();
    let mut second_wave = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        for copy in 0..COPIES {
            // Copies 0, 1, 2 byte for byte the same; 3 re-signed a second later; 4 and 5, sent
            // after the first wave, re-signed later still, in the other two timestamp forms.
            let timestamp = match copy {
                0..=2 => now.to_string(),
                3 => (now + 1).to_string(),
                4 => format!("{}000", now + 2),
                _ => rfc3339(now + 3),
            };
            let target = (n + copy) % 2;
            let send = (target, signed(id, &timestamp, &body(id)), body(id));
            if copy < FIRST_WAVE {
                first_wave.push(send);
            } else {
                second_wave.push(send);
            }
        }
    }
    let answers = send_all(&serves, first_wave).await;
    assert_handled_once(&answers, &ids, "first wave");
    let answers = send_all(&serves, second_wave).await;
    for (id, status, text) in &answers {
        assert_eq!(
            (*status, text.as_str()),
            (StatusCode::OK, "duplicate"),
            "re-signed copy of {id}, after it was handled"
        );
    }
    expected.extend(ids);

    // 2. The store goes down: every request gets 503 and nothing is handled; then it comes
    //    back on the same port and both processes recover without a restart.
    if server.is_owned() {
        server.kill();
        let outage: Vec<String> = (0..DURING_OUTAGE)
            .map(|n| format!("{tag}_outage{n}"))
            .collect();
        let now = unix_now();
        let mut sends = Vec::new();
        for id in &outage {
            for target in 0..2 {
                sends.push((target, signed(id, &now.to_string(), &body(id)), body(id)));
            }
        }
        for (id, status, text) in send_all(&serves, sends).await {
            assert_eq!(
                (status, text.as_str()),
                (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
                "{id} during the outage"
            );
        }

        server.restart();
        for (index, serve) in serves.iter().enumerate() {
            let id = format!("{tag}_probe{index}");
            serve.until_recovered(&id).await;
            expected.push(id);
        }

        // The provider retries what was refused during the outage: handled now, once.
        let now = unix_now();
        let mut retries = Vec::new();
        for (n, id) in outage.iter().enumerate() {
            for copy in 0..2 {
                let timestamp = (now + 1 + i64::try_from(copy).expect("small")).to_string();
                retries.push(((n + copy) % 2, signed(id, &timestamp, &body(id)), body(id)));
            }
        }
        let answers = send_all(&serves, retries).await;
        assert_handled_once(&answers, &outage, "retries after the outage");
        expected.extend(outage);
    }

    // 3. New deliveries after the recovery (or just more of them, on a server not ours).
    let ids: Vec<String> = (0..AFTER).map(|n| format!("{tag}_b{n}")).collect();
    let now = unix_now();
    let mut sends = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        for copy in 0..AFTER_COPIES {
            let timestamp = (now + i64::try_from(copy % 2).expect("small")).to_string();
            sends.push(((n + copy) % 2, signed(id, &timestamp, &body(id)), body(id)));
        }
    }
    let answers = send_all(&serves, sends).await;
    assert_handled_once(&answers, &ids, "after the recovery");
    expected.extend(ids);

    // 4. SIGTERM both: exit 0. Every delivery printed exactly once over both processes' stdout.
    let mut printed: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_process = Vec::new();
    for serve in serves {
        let (status, stdout, stderr) = serve.terminate();
        let stderr = stderr.join("\n");
        assert!(status.success(), "{status:?}: {stderr}");
        assert!(stderr.contains("SIGTERM"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            stderr.contains(&format!("store=\"{scheme}\"")),
            "logs name the scheme: {stderr}"
        );
        assert!(!stderr.contains(&url), "the store URL was logged: {stderr}");
        assert!(!stderr.contains(SECRET), "the secret was logged: {stderr}");
        per_process.push(stdout.len());
        for line in stdout {
            let record: Value =
                serde_json::from_str(&line).unwrap_or_else(|error| panic!("{line:?}: {error}"));
            assert_eq!(record["secret"], "test", "{line}");
            assert_eq!(record["event"], EVENT, "{line}");
            let id = record["delivery_id"].as_str().expect("a delivery id");
            *printed.entry(id.to_owned()).or_default() += 1;
        }
    }
    let twice: Vec<_> = printed.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    expected.sort();
    let printed: Vec<String> = printed.into_keys().collect();
    assert_eq!(
        printed, expected,
        "deliveries printed (by {per_process:?} lines per process)"
    );
}

/// Exactly one `ok` per delivery; every other copy a duplicate (200) or in flight (429).
fn assert_handled_once(answers: &[(String, StatusCode, String)], ids: &[String], phase: &str) {
    let mut handled: BTreeMap<&str, usize> = ids.iter().map(|id| (id.as_str(), 0)).collect();
    for (id, status, text) in answers {
        match (*status, text.as_str()) {
            (StatusCode::OK, "ok") => {
                *handled.get_mut(id.as_str()).expect("a known id") += 1;
            }
            (StatusCode::OK, "duplicate") | (StatusCode::TOO_MANY_REQUESTS, "in_flight") => {}
            other => panic!("{phase}: {id}: unexpected answer {other:?}"),
        }
    }
    for (id, count) in handled {
        assert_eq!(count, 1, "{phase}: {id} handled {count} times");
    }
}

/// Sends every `(process, headers, body)` at once; answers `(delivery id, status, body)`.
async fn send_all(
    serves: &[Serve; 2],
    sends: Vec<(usize, HeaderMap, Vec<u8>)>,
) -> Vec<(String, StatusCode, String)> {
    let mut tasks = JoinSet::new();
    for (target, headers, body) in sends {
        let id = headers["x-agent-delivery-id"]
            .to_str()
            .expect("ascii")
            .to_owned();
        let post = serves[target].poster();
        tasks.spawn(async move {
            let (status, text) = post.send(headers, body).await;
            (id, status, text)
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.expect("the request task"));
    }
    answers
}

fn body(id: &str) -> Vec<u8> {
    format!(r#"{{"type":"{EVENT}","id":"{id}"}}"#).into_bytes()
}

fn signed(id: &str, timestamp: &str, body: &[u8]) -> HeaderMap {
    Signer::new(SECRET)
        .expect("a signer")
        .sign_with_timestamp(id, timestamp, body)
        .header_map()
        .expect("valid headers")
}

fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .expect("in range")
        .format(&Rfc3339)
        .expect("formats")
}

fn command() -> Command {
    let mut command = Command::new(BIN);
    command
        .env_remove("HOOKVERIFY_SECRET")
        .env_remove("HOOKVERIFY_STORE")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A `serve` child that has not said where it listens yet.
struct Spawned {
    child: KillOnDrop,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Spawned {
    /// Waits for the `listening on` line.
    fn ready(self) -> Serve {
        let deadline = Instant::now() + TIMEOUT;
        let mut banner = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .stderr
                .recv_timeout(left)
                .unwrap_or_else(|error| panic!("no `listening on` line ({error}): {banner:?}"));
            if let Some(rest) = line.strip_prefix("listening on http://") {
                break rest.trim().parse().expect("a socket address");
            }
            banner.push(line);
        };
        Serve {
            child: self.child,
            addr,
            banner,
            stdout: self.stdout,
            stderr: self.stderr,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

/// A running `hookverify serve --store URL`.
struct Serve {
    child: KillOnDrop,
    addr: SocketAddr,
    /// What it printed on stderr before the `listening on` line.
    banner: Vec<String>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// What a request task needs of a [`Serve`].
struct Poster {
    addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Poster {
    async fn send(&self, headers: HeaderMap, body: Vec<u8>) -> (StatusCode, String) {
        let mut request = Request::post(format!("http://{}/", self.addr))
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        request.headers_mut().extend(headers);
        exchange(&self.client, request).await
    }
}

impl Serve {
    fn spawn(store_url: &str) -> Spawned {
        let secret = format!("test={SECRET}");
        let mut command = command();
        command.args(["serve", "--addr", "127.0.0.1:0", "--secret", &secret]);
        command.args(["--store", store_url]);
        let mut child = KillOnDrop(Some(command.spawn().expect("spawn hookverify serve")));
        Spawned {
            stdout: lines(child.take_stdout()),
            stderr: lines(child.take_stderr()),
            child,
        }
    }

    fn poster(&self) -> Poster {
        Poster {
            addr: self.addr,
            client: self.client.clone(),
        }
    }

    /// Sends delivery `id` (re-signed at each attempt, as the provider's retries are) until it
    /// is handled: 503 while the store is still coming back (or 429, should an attempt's claim
    /// be left held by a failed release while the store flapped), then 200 `ok`. Bounded by
    /// [`TIMEOUT`]; a short pause between attempts.
    async fn until_recovered(&self, id: &str) {
        let deadline = Instant::now() + TIMEOUT;
        let poster = self.poster();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let headers = signed(id, &unix_now().to_string(), &body(id));
            match poster.send(headers, body(id)).await {
                (StatusCode::OK, text) if text == "ok" => return,
                (StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS, _) => {}
                other => panic!("{id}: unexpected answer while recovering: {other:?}"),
            }
            assert!(
                Instant::now() < deadline,
                "{id}: the store still unavailable after {attempts} attempts over {TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then the exit status, all of stdout and all of stderr.
    fn terminate(self) -> (ExitStatus, Vec<String>, Vec<String>) {
        let pid = self.child.0.as_ref().expect("running").id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(killed.success());
        let stdout = drain(&self.stdout, "stdout");
        let mut stderr = self.banner;
        stderr.extend(drain(&self.stderr, "stderr"));
        (self.child.wait(), stdout, stderr)
    }
}
