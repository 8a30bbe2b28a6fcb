//! `hookverify serve` against slow and idle clients, over real TCP on 127.0.0.1: memory stays
//! bounded, every stuck connection is closed by the server, and a genuine delivery still gets
//! through.
//!
//! Every wait is bounded; the timing assertions are the stated limits with slack for a loaded
//! machine added only where it does not weaken them (a connection must not close *before* its
//! timeout, and must close within the timeout plus a few seconds).
#![cfg(feature = "cli")]

#[path = "common/child.rs"]
mod child;
#[path = "common/serve.rs"]
mod serve;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hookverify::Signer;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use child::{KillOnDrop, TIMEOUT, drain, exchange, lines};
use serve::Serve;

const SECRET: &str = "whsec_slow_clients_test";

/// The slow-client test has the machine to itself; the others may share it with each other.
static HEAVY: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Slack over a timeout before a connection still open counts as not closed.
const SLACK: Duration = Duration::from_secs(5);

/// `hookverify serve --secret test=SECRET ARGS`, once it listens.
fn start(args: &[&str]) -> Serve {
    let secret = format!("test={SECRET}");
    Serve::start(&[&["--secret", &secret][..], args].concat(), &[])
}

/// The resident set of `pid` in KiB, from `/proc/<pid>/status`.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Samples the child's RSS every 50 ms on a thread until dropped; keeps the peak.
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (Arc::clone(&peak), Arc::clone(&stop));
            std::thread::spawn(move || {
                // Bounded: the test's own deadlines end it far sooner.
                let deadline = Instant::now() + Duration::from_secs(300);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    if let Some(rss) = rss_kib(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Self {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    fn peak_kib(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The request head for `body_len` bytes of body, with headers signed over `signed_body` (a
/// slow client's signature is well formed and current, but not over what it sends).
fn head(id: &str, body_len: usize, signed_body: &[u8]) -> String {
    let signed = Signer::new(SECRET).expect("a signer").sign(id, signed_body);
    let mut head = format!(
        "POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {body_len}\r\n"
    );
    for (name, value) in signed.pairs() {
        let _ = write!(head, "{}: {value}\r\n", name.as_str());
    }
    head.push_str("\r\n");
    head
}

/// A whole signed request.
fn signed_request(id: &str, body: &[u8]) -> Vec<u8> {
    let mut request = head(id, body.len(), body).into_bytes();
    request.extend_from_slice(body);
    request
}

/// Reads one response (head and `Content-Length` body) within `limit`: its status and body.
async fn read_response(stream: &mut TcpStream, limit: Duration) -> (u16, String) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = find(&got, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse().ok())
                .unwrap_or_else(|| panic!("a status line: {head:?}"));
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                let body = String::from_utf8_lossy(&got[end + 4..end + 4 + length]).into_owned();
                return (status, body);
            }
        }
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no complete response within {limit:?}: {got:?}"))
            .expect("read the response");
        assert!(read > 0, "closed before a complete response: {got:?}");
        got.extend_from_slice(&buf[..read]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// How a connection ended, seen from the client.
#[derive(Debug)]
struct Ending {
    /// From the client's start to the server's close (EOF or a reset); `None` if still open at
    /// the end of the wait.
    closed_after: Option<Duration>,
    /// What the server sent before closing.
    received: Vec<u8>,
    how: String,
}

/// Reads until the server closes the connection, or until `deadline`.
async fn wait_for_close(
    mut read: impl tokio::io::AsyncRead + Unpin,
    start: Instant,
    deadline: tokio::time::Instant,
) -> Ending {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, read.read(&mut buf)).await {
            Err(_) => {
                return Ending {
                    closed_after: None,
                    received,
                    how: "still open".into(),
                };
            }
            Ok(Ok(0)) => {
                return Ending {
                    closed_after: Some(start.elapsed()),
                    received,
                    how: "eof".into(),
                };
            }
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Ok(Err(error)) => {
                return Ending {
                    closed_after: Some(start.elapsed()),
                    received,
                    how: format!("{:?}", error.kind()),
                };
            }
        }
    }
}

fn status_of(received: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(received);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

const SLOW_CLIENTS: usize = 300;
const DECLARED: usize = 1_048_575;
/// Everything but the last byte.
const SENT: usize = DECLARED - 1;
const CHUNK: usize = 64 * 1024;
/// The target: every slow connection closed by the server within this of its start.
const CLOSE_WITHIN: Duration = Duration::from_secs(40);
/// The target: RSS under 256 MiB throughout.
const RSS_LIMIT_KIB: u64 = 256 * 1024;
/// The target: a genuine delivery answered within this.
const GENUINE_WITHIN: Duration = Duration::from_secs(2);

/// One slow client's account.
#[derive(Debug)]
struct Slow {
    start: Instant,
    /// It wrote the head and all but the last byte of the body.
    stuck: bool,
    ending: Ending,
}

/// Writes the head, then the body 64 KiB at a time with a pause between chunks, never the last
/// byte; reports on `settled` once it has written all it will (or the server stopped taking
/// it), then waits for the server to close the connection.
async fn slow_client(
    addr: SocketAddr,
    index: usize,
    settled: tokio::sync::mpsc::UnboundedSender<()>,
) -> Slow {
    let start = Instant::now();
    let close_deadline = tokio::time::Instant::from_std(start + CLOSE_WITHIN + SLACK);
    let stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
        .await
        .expect("connected in time")
        .expect("connect");
    let (read, mut write) = stream.into_split();
    let reader = tokio::spawn(wait_for_close(read, start, close_deadline));

    let head = head(&format!("slow-{index}"), DECLARED, b"");
    let chunk = vec![b'x'; CHUNK];
    let mut sent = 0;
    let mut failed = write.write_all(head.as_bytes()).await.is_err();
    while !failed && sent < SENT {
        let n = CHUNK.min(SENT - sent);
        match tokio::time::timeout_at(close_deadline, write.write_all(&chunk[..n])).await {
            Ok(Ok(())) => sent += n,
            Ok(Err(_)) | Err(_) => failed = true,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = settled.send(());
    let ending = reader.await.expect("the reader task");
    // The write half lives until the server has closed: dropping it would end the body.
    drop(write);
    Slow {
        start,
        stuck: sent == SENT,
        ending,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_neither_exhaust_memory_nor_lock_out_a_delivery() {
    let _machine = HEAVY.write().await;
    let serve = start(&[]);
    let idle_rss = rss_kib(serve.pid()).expect("VmRSS of serve");
    let sampler = RssSampler::start(serve.pid());
    let test_start = Instant::now();

    let (settled_tx, mut settled) = tokio::sync::mpsc::unbounded_channel();
    let clients: Vec<_> = (0..SLOW_CLIENTS)
        .map(|index| tokio::spawn(slow_client(serve.addr, index, settled_tx.clone())))
        .collect();
    drop(settled_tx);
    for count in 0..SLOW_CLIENTS {
        tokio::time::timeout(TIMEOUT, settled.recv())
            .await
            .unwrap_or_else(|_| panic!("only {count} slow clients settled within {TIMEOUT:?}"))
            .expect("every client reports");
    }
    let settled_after = test_start.elapsed();
    let stuck_rss = rss_kib(serve.pid()).expect("VmRSS of serve");

    // A genuine delivery on a fresh connection while the slow ones are stuck.
    let body = br#"{"type":"run.finished"}"#;
    let mut request = Request::post(format!("http://{}/hook", serve.addr))
        .body(Full::new(Bytes::from_static(body)))
        .expect("a request");
    let signed = Signer::new(SECRET)
        .expect("a signer")
        .sign("dlv_genuine", body);
    request
        .headers_mut()
        .extend(signed.header_map().expect("headers"));
    let client = Client::builder(TokioExecutor::new()).build_http();
    let sent_at = Instant::now();
    let (status, text) = exchange(&client, request).await;
    let answered_at = Instant::now();
    let genuine_took = answered_at - sent_at;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(serve.next_delivery()["delivery_id"], "dlv_genuine");

    let mut slow = Vec::new();
    for client in clients {
        slow.push(client.await.expect("a slow client"));
    }
    let peak_rss = sampler.peak_kib();
    drop(sampler);

    let stuck = slow.iter().filter(|s| s.stuck).count();
    let count_status = |code| {
        slow.iter()
            .filter(|s| status_of(&s.ending.received) == Some(code))
            .count()
    };
    let (timed_out, refused) = (count_status(408), count_status(503));
    let no_response = slow.iter().filter(|s| s.ending.received.is_empty()).count();
    // The range of close times (from each client's start) of those answered `code`.
    let closes = |code| {
        let times = slow
            .iter()
            .filter(|s| status_of(&s.ending.received) == Some(code))
            .filter_map(|s| s.ending.closed_after);
        let min = times.clone().min().unwrap_or_default();
        (min, times.max().unwrap_or_default())
    };
    let (closes_408, closes_503) = (closes(408), closes(503));
    // Stuck clients still open when the genuine delivery was answered: it did not just wait
    // for them to be cut off.
    let stuck_at_delivery = slow
        .iter()
        .filter(|s| {
            s.stuck
                && s.ending
                    .closed_after
                    .is_some_and(|after| s.start + after > answered_at)
        })
        .count();
    eprintln!(
        "{SLOW_CLIENTS} slow clients: settled after {settled_after:.2?}; {stuck} stuck on the \
         last byte ({stuck_at_delivery} still open when the delivery was answered); {timed_out} \
         got 408, closed after {:.2?}..{:.2?}; {refused} got 503, closed after {:.2?}..{:.2?}; \
         {no_response} closed without a response. Genuine delivery: 200 in {genuine_took:.3?}. \
         RSS: idle {idle_rss} KiB, settled {stuck_rss} KiB, peak {peak_rss} KiB",
        closes_408.0, closes_408.1, closes_503.0, closes_503.1
    );

    for (index, client) in slow.iter().enumerate() {
        let closed = client.ending.closed_after.unwrap_or_else(|| {
            panic!("slow client {index} not closed within {CLOSE_WITHIN:?}: {client:?}")
        });
        assert!(
            closed <= CLOSE_WITHIN,
            "slow client {index} closed after {closed:?}"
        );
        if let Some(code) = status_of(&client.ending.received) {
            assert!(
                code == 408 || code == 503,
                "slow client {index} got {code}: {:?}",
                String::from_utf8_lossy(&client.ending.received)
            );
        }
    }
    assert!(
        genuine_took <= GENUINE_WITHIN,
        "the genuine delivery took {genuine_took:?}"
    );
    assert!(
        stuck_at_delivery > 0,
        "no slow client was still stuck when the delivery was answered"
    );
    assert!(timed_out > 0, "no stuck body got its 408");
    assert!(
        peak_rss < RSS_LIMIT_KIB,
        "serve peaked at {peak_rss} KiB of RSS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_head_or_nothing_is_cut_off_after_the_header_timeout() {
    let _machine = HEAVY.read().await;
    let serve = start(&[]);
    let header_timeout = Duration::from_secs(5);

    let start = Instant::now();
    let mut half = TcpStream::connect(serve.addr).await.expect("connect");
    half.write_all(b"POST /hook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Agent-Timest")
        .await
        .expect("write half a head");
    let silent = TcpStream::connect(serve.addr).await.expect("connect");
    let deadline = tokio::time::Instant::from_std(start + header_timeout + SLACK);

    let (half, silent) = tokio::join!(
        wait_for_close(half, start, deadline),
        wait_for_close(silent, start, deadline)
    );
    for (what, ending) in [("half a head", half), ("nothing", silent)] {
        let closed = ending
            .closed_after
            .unwrap_or_else(|| panic!("{what}: still open after {:?}", header_timeout + SLACK));
        // Not before the timeout (the server's count starts after the client's).
        assert!(
            closed >= header_timeout,
            "{what}: closed after {closed:?} only"
        );
        eprintln!("{what}: closed after {closed:.2?} ({})", ending.how);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_is_reused_then_closed_when_idle() {
    let _machine = HEAVY.read().await;
    let serve = start(&[]);
    let idle_timeout = Duration::from_secs(5);

    let mut stream = TcpStream::connect(serve.addr).await.expect("connect");
    for (round, id) in ["dlv_keep_1", "dlv_keep_2"].into_iter().enumerate() {
        if round > 0 {
            // Idle for a while, within the timeout: the connection is still there.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        let request = signed_request(id, br#"{"type":"ping"}"#);
        stream.write_all(&request).await.expect("write a request");
        let (status, body) = read_response(&mut stream, TIMEOUT).await;
        assert_eq!((status, body.as_str()), (200, "ok"), "{id}");
        assert_eq!(serve.next_delivery()["delivery_id"], id);
    }
    let idle_since = Instant::now();
    let deadline = tokio::time::Instant::from_std(idle_since + idle_timeout + SLACK);
    let ending = wait_for_close(&mut stream, idle_since, deadline).await;
    let closed = ending
        .closed_after
        .unwrap_or_else(|| panic!("idle connection still open: {ending:?}"));
    assert!(
        closed >= idle_timeout - Duration::from_millis(100),
        "closed after {closed:?} idle only"
    );
    eprintln!("idle connection closed after {closed:.2?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_timeout_is_apart_from_the_header_timeout() {
    let _machine = HEAVY.read().await;
    // A header timeout shorter than the idle one must not cut an idle connection early.
    let serve = start(&["--header-timeout", "1", "--idle-timeout", "3"]);
    let idle_timeout = Duration::from_secs(3);

    let mut stream = TcpStream::connect(serve.addr).await.expect("connect");
    stream
        .write_all(&signed_request("dlv_idle_apart", b"{}"))
        .await
        .expect("write a request");
    let (status, _) = read_response(&mut stream, TIMEOUT).await;
    assert_eq!(status, 200);
    let idle_since = Instant::now();
    let deadline = tokio::time::Instant::from_std(idle_since + idle_timeout + SLACK);
    let ending = wait_for_close(&mut stream, idle_since, deadline).await;
    let closed = ending
        .closed_after
        .unwrap_or_else(|| panic!("idle connection still open: {ending:?}"));
    assert!(
        closed >= idle_timeout - Duration::from_millis(100),
        "closed after {closed:?} idle only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_still_arriving_at_the_deadline_gets_408_and_a_close() {
    let _machine = HEAVY.read().await;
    let serve = start(&["--body-timeout", "2"]);
    let body_timeout = Duration::from_secs(2);

    let mut stream = TcpStream::connect(serve.addr).await.expect("connect");
    let body = [b'x'; 100];
    stream
        .write_all(head("dlv_slow_body", body.len(), &body).as_bytes())
        .await
        .expect("write the head");
    let start = Instant::now();
    stream.write_all(&body[..50]).await.expect("write half");
    let deadline = tokio::time::Instant::from_std(start + body_timeout + SLACK);
    let ending = wait_for_close(&mut stream, start, deadline).await;
    let closed = ending
        .closed_after
        .unwrap_or_else(|| panic!("still open: {ending:?}"));
    let text = String::from_utf8_lossy(&ending.received);
    assert_eq!(status_of(&ending.received), Some(408), "{text}");
    assert!(text.ends_with("body_timeout"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert!(
        closed >= body_timeout - Duration::from_millis(100),
        "closed after {closed:?}"
    );
    assert!(serve.deliveries_so_far().is_empty(), "nothing printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_limit_a_new_connection_waits_for_a_slot() {
    let _machine = HEAVY.read().await;
    let serve = start(&["--max-connections", "1"]);

    let holder = TcpStream::connect(serve.addr).await.expect("connect");
    // Let the server accept the holder first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut waiting = TcpStream::connect(serve.addr).await.expect("connect");
    waiting
        .write_all(&signed_request("dlv_waited", b"{}"))
        .await
        .expect("write a request");
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_secs(1), waiting.read(&mut buf)).await;
    assert!(early.is_err(), "answered while the only slot was taken");

    drop(holder);
    let (status, body) = read_response(&mut waiting, TIMEOUT).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert_eq!(serve.next_delivery()["delivery_id"], "dlv_waited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_large_body_slot_taken_a_large_body_gets_503_and_a_small_one_passes() {
    let _machine = HEAVY.read().await;
    let serve = start(&["--max-large-bodies", "1"]);

    // The one slot, held by a large body that stops half way.
    let mut holder = TcpStream::connect(serve.addr).await.expect("connect");
    holder
        .write_all(head("dlv_large_1", 100_000, b"").as_bytes())
        .await
        .expect("write the head");
    holder.write_all(&[b'x'; 50_000]).await.expect("write half");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut refused = TcpStream::connect(serve.addr).await.expect("connect");
    refused
        .write_all(head("dlv_large_2", 100_000, b"").as_bytes())
        .await
        .expect("write the head");
    let (status, body) = read_response(&mut refused, TIMEOUT).await;
    assert_eq!((status, body.as_str()), (503, "busy"));

    let mut small = TcpStream::connect(serve.addr).await.expect("connect");
    small
        .write_all(&signed_request("dlv_small", b"{}"))
        .await
        .expect("write a request");
    let (status, body) = read_response(&mut small, TIMEOUT).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    assert_eq!(serve.next_delivery()["delivery_id"], "dlv_small");
    drop(holder);
}

#[test]
fn the_limits_are_checked_with_a_usage_error() {
    let cases: &[(&str, &str, &str)] = &[
        ("--header-timeout", "0", "1..=60"),
        ("--header-timeout", "61", "1..=60"),
        ("--body-timeout", "0", "1..=60"),
        ("--body-timeout", "61", "1..=60"),
        ("--idle-timeout", "0", "1..=600"),
        ("--idle-timeout", "601", "1..=600"),
        ("--max-connections", "0", "1..=100000"),
        ("--max-connections", "100001", "1..=100000"),
        ("--max-large-bodies", "0", "1..=100000"),
        ("--max-large-bodies", "100001", "1..=100000"),
        ("--body-timeout", "ten", "--body-timeout"),
    ];
    for (flag, value, expected) in cases {
        let mut child = child::command(&[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--secret",
            "s",
            flag,
            value,
        ])
        .spawn()
        .expect("spawn hookverify");
        let stdout = lines(child.stdout.take().expect("stdout is piped"));
        let stderr = lines(child.stderr.take().expect("stderr is piped"));
        let child = KillOnDrop(Some(child));
        // An accepted value would start the server: the pipes would stay open and drain fail.
        let err = drain(&stderr, "stderr").join("\n");
        let out = drain(&stdout, "stdout");
        let status = child.wait();
        assert_eq!(status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(flag), "{flag} {value}: {err}");
        assert!(err.contains(expected), "{flag} {value}: {err}");
        assert!(out.is_empty(), "{flag} {value}: {out:?}");
    }
}
