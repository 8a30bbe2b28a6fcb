//! Soak load for a running receiver (`scripts/soak.sh` drives it against `hookverify serve`):
//! paced fresh deliveries with the retries and replays a real provider (or an attacker) sends,
//! while slow clients hold connections open, and a record of what was acknowledged, so that the
//! receiver's output can be checked for "nothing lost, nothing twice".
//!
//! `cargo run --release --features axum --example soak -- URL SECRET RATE SECONDS SLOW_CLIENTS OUT_DIR`
//! e.g. `http://127.0.0.1:18900/ whsec_soak 200 60 400 /tmp/soak`. Loopback URLs only.
//!
//! For SECONDS, RATE times a second (paced, each on its own task, every request with a 10 s
//! timeout):
//! - a fresh delivery `dlv_soak_<n>` (a 1 KiB JSON body holding n), signed now;
//! - its provider retry 1 s later, same id and body: for even n the same request byte for byte,
//!   for odd n signed again with a timestamp 1 s later;
//! - for one delivery in four (n % 8 is 0 or 5, so both kinds of retry are covered), 2 s after
//!   the first attempt, the first attempt's request byte for byte but under the fresh id
//!   `dlv_replay_<n>`: a replay that the receiver must not handle;
//! - if neither the first attempt nor the retry got a 2xx (an error, a timeout, 429, 5xx), up
//!   to 3 more attempts 1 s apart, signed again, as a provider keeps retrying. A delivery is
//!   lost only if no attempt got a 2xx.
//!
//! Meanwhile SLOW_CLIENTS raw TCP connections stay open: each sends plausible headers (current
//! timestamp, a well-formed but wrong signature, an id, `Content-Length: 1048575`), then 16 KiB
//! of body every 500 ms, never the last byte. One that the server closes (or answers) is
//! replaced by a new one; never more than SLOW_CLIENTS at once; all dropped at the end.
//!
//! Writes OUT_DIR/sent.txt (each fresh id that got a 2xx on some attempt), OUT_DIR/replays.txt
//! (each replay id sent) and OUT_DIR/summary.json (answers per status for each kind of request,
//! lost deliveries, latency of the genuine requests, slow connections opened and closed).
//! Exits with status 1 if a delivery was lost (or on an error), 2 on bad arguments.

use std::collections::BTreeMap;
use std::error::Error;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookverify::Signer;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{HeaderMap, Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, sleep_until, timeout};

/// A provider's patience with one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Provider retries after a failure, beyond the scheduled retry.
const EXTRA_RETRIES: u32 = 3;
/// The size of a genuine delivery's body.
const BODY_BYTES: usize = 1024;
/// What a slow client announces, and never finishes sending.
const SLOW_CONTENT_LENGTH: usize = 1_048_575;
const SLOW_CHUNK: usize = 16 * 1024;
const SLOW_INTERVAL: Duration = Duration::from_millis(500);
/// Upper bounds on the arguments, so that a typo cannot start an endless or huge run.
const MAX_RATE: u32 = 10_000;
const MAX_SECONDS: u32 = 86_400;
const MAX_SLOW_CLIENTS: u32 = 10_000;
const DELIVERY_ID_HEADER: &str = "x-agent-delivery-id";

/// What kind of request an attempt was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    First,
    Retry,
    /// A further retry after the first attempt and the scheduled retry both failed.
    Recovery,
    Replay,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::First => "first",
            Kind::Retry => "retry",
            Kind::Recovery => "recovery",
            Kind::Replay => "replay",
        }
    }
}

/// One request's result: the status code, or why there was none.
#[derive(Debug)]
struct Attempt {
    kind: Kind,
    outcome: Result<u16, &'static str>,
    latency: Duration,
}

impl Attempt {
    fn succeeded(&self) -> bool {
        matches!(self.outcome, Ok(status) if (200..300).contains(&status))
    }
}

/// One fresh delivery's story.
#[derive(Debug)]
struct Outcome {
    id: String,
    delivered: bool,
    replay_id: Option<String>,
    attempts: Vec<Attempt>,
}

#[derive(Debug)]
struct Args {
    addr: SocketAddr,
    path: String,
    secret: String,
    rate: u32,
    seconds: u32,
    slow_clients: u32,
    out_dir: PathBuf,
}

/// Shared by every delivery task.
#[derive(Debug)]
struct Ctx {
    client: Client<HttpConnector, Full<Bytes>>,
    signer: Signer,
    uri: Uri,
}

/// Counters of the slow connections.
#[derive(Debug, Default)]
struct SlowStats {
    opened: AtomicU64,
    /// Closed by the server, or answered (then closed by us).
    closed_by_server: AtomicU64,
    /// Still open when the run ended, dropped by us.
    open_at_end: AtomicU64,
    connect_errors: AtomicU64,
    body_bytes_sent: AtomicU64,
    /// The status codes the server answered slow connections with ("none" when it closed the
    /// connection without an answer).
    answers: Mutex<BTreeMap<String, u64>>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("soak: {message}");
            eprintln!(
                "usage: soak URL SECRET RATE SECONDS SLOW_CLIENTS OUT_DIR (loopback URL only)"
            );
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(lost) => {
            eprintln!("soak: {lost} deliveries got no 2xx on any attempt");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("soak: {error}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, secret, rate, seconds, slow, out_dir] = args.as_slice() else {
        return Err(format!("expected 6 arguments, got {}", args.len()));
    };
    let (addr, path) = loopback_target(url)?;
    let number = |name: &str, text: &str, min: u32, max: u32| -> Result<u32, String> {
        match text.parse::<u32>() {
            Ok(value) if (min..=max).contains(&value) => Ok(value),
            _ => Err(format!(
                "{name} must be a whole number from {min} to {max}, not {text:?}"
            )),
        }
    };
    Ok(Args {
        addr,
        path,
        secret: secret.clone(),
        rate: number("RATE", rate, 1, MAX_RATE)?,
        seconds: number("SECONDS", seconds, 1, MAX_SECONDS)?,
        slow_clients: number("SLOW_CLIENTS", slow, 0, MAX_SLOW_CLIENTS)?,
        out_dir: PathBuf::from(out_dir),
    })
}

/// The socket address and path of an `http://` URL whose host is a loopback address (or
/// `localhost`); any other URL is refused.
fn loopback_target(url: &str) -> Result<(SocketAddr, String), String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad URL {url:?}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("only http:// URLs, not {url:?}"));
    }
    let host = uri.host().ok_or_else(|| format!("no host in {url:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse::<IpAddr>().map_err(|_| {
            format!("the host must be a loopback IP address or localhost, not {host:?}")
        })?
    };
    if !ip.is_loopback() {
        return Err(format!(
            "{ip} is not a loopback address: this tool only loads loopback"
        ));
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    Ok((SocketAddr::new(ip, uri.port_u16().unwrap_or(80)), path))
}

async fn run(args: Args) -> Result<u64, Box<dyn Error>> {
    std::fs::create_dir_all(&args.out_dir)?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(REQUEST_TIMEOUT));
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let ctx = Arc::new(Ctx {
        client,
        signer: Signer::new(args.secret.as_bytes())?,
        uri: format!("http://{}{}", args.addr, args.path).parse()?,
    });

    // The slow clients, until `stop` says the run is over.
    let (stop, stopped) = watch::channel(false);
    let slow = Arc::new(SlowStats::default());
    let mut slow_tasks = JoinSet::new();
    for slot in 0..args.slow_clients {
        slow_tasks.spawn(slow_client(
            args.addr,
            args.path.clone(),
            slot,
            Arc::clone(&slow),
            stopped.clone(),
        ));
    }

    // Paced fresh deliveries.
    let total = u64::from(args.rate) * u64::from(args.seconds);
    let period_nanos = 1_000_000_000 / u64::from(args.rate);
    let started = Instant::now();
    let mut deliveries = JoinSet::new();
    let mut max_lag = Duration::ZERO;
    for n in 0..total {
        let due = started + Duration::from_nanos(n * period_nanos);
        sleep_until(due).await;
        max_lag = max_lag.max(Instant::now() - due);
        deliveries.spawn(deliver(Arc::clone(&ctx), n));
    }
    let sending = started.elapsed();
    let mut outcomes = Vec::with_capacity(usize::try_from(total)?);
    while let Some(outcome) = deliveries.join_next().await {
        outcomes.push(outcome?);
    }
    let elapsed = started.elapsed();
    stop.send_replace(true);
    while let Some(done) = slow_tasks.join_next().await {
        done?;
    }

    outcomes.sort_by_key(|o| {
        o.id.trim_start_matches("dlv_soak_")
            .parse::<u64>()
            .unwrap_or(0)
    });
    let lost = write_results(&args, &outcomes, &slow, max_lag, sending, elapsed)?;
    Ok(lost)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A 1 KiB JSON body holding `n`.
fn body_for(n: u64) -> Bytes {
    let mut body = format!(r#"{{"type":"soak.tick","n":{n},"pad":""#);
    let pad = BODY_BYTES.saturating_sub(body.len() + 2);
    body.extend(std::iter::repeat_n('x', pad));
    body.push_str("\"}");
    Bytes::from(body)
}

/// The headers of a delivery signed with `timestamp`.
fn signed(
    ctx: &Ctx,
    id: &str,
    timestamp: u64,
    body: &[u8],
) -> Result<HeaderMap, Box<dyn Error + Send + Sync>> {
    let mut headers = ctx
        .signer
        .sign_with_timestamp(id, &timestamp.to_string(), body)
        .header_map()?;
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(headers)
}

/// One fresh delivery, its retries and its replay.
async fn deliver(ctx: Arc<Ctx>, n: u64) -> Outcome {
    let id = format!("dlv_soak_{n}");
    let body = body_for(n);
    let started = Instant::now();
    let timestamp = unix_now();
    let mut attempts = Vec::new();
    let original = match signed(&ctx, &id, timestamp, &body) {
        Ok(headers) => headers,
        Err(_) => {
            // Cannot happen for these ids; counted as lost rather than hidden.
            return Outcome {
                id,
                delivered: false,
                replay_id: None,
                attempts,
            };
        }
    };

    let first = tokio::spawn(send(
        Arc::clone(&ctx),
        original.clone(),
        body.clone(),
        Kind::First,
    ));

    sleep_until(started + Duration::from_secs(1)).await;
    let retry_headers = if n.is_multiple_of(2) {
        Some(original.clone())
    } else {
        signed(&ctx, &id, timestamp + 1, &body).ok()
    };
    let retry = retry_headers
        .map(|headers| tokio::spawn(send(Arc::clone(&ctx), headers, body.clone(), Kind::Retry)));

    let mut replay_id = None;
    let replay = if n.is_multiple_of(8) || n % 8 == 5 {
        sleep_until(started + Duration::from_secs(2)).await;
        let replay = format!("dlv_replay_{n}");
        let mut headers = original.clone();
        HeaderValue::from_str(&replay).ok().map(|value| {
            headers.insert(DELIVERY_ID_HEADER, value);
            replay_id = Some(replay);
            tokio::spawn(send(Arc::clone(&ctx), headers, body.clone(), Kind::Replay))
        })
    } else {
        None
    };

    let handles = [
        (Kind::First, Some(first)),
        (Kind::Retry, retry),
        (Kind::Replay, replay),
    ];
    for (kind, handle) in handles {
        if let Some(handle) = handle {
            attempts.push(handle.await.unwrap_or(Attempt {
                kind,
                outcome: Err("task failed"),
                latency: Duration::ZERO,
            }));
        }
    }
    let genuine_ok = |attempts: &[Attempt]| {
        attempts
            .iter()
            .any(|a| a.kind != Kind::Replay && a.succeeded())
    };

    // Neither the first attempt nor the retry got through: keep retrying, 1 s apart, as a
    // provider would.
    let mut extra = 0;
    while !genuine_ok(&attempts) && extra < EXTRA_RETRIES {
        extra += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Ok(headers) = signed(&ctx, &id, unix_now(), &body) else {
            break;
        };
        attempts.push(send(Arc::clone(&ctx), headers, body.clone(), Kind::Recovery).await);
    }
    let delivered = genuine_ok(&attempts);
    Outcome {
        id,
        delivered,
        replay_id,
        attempts,
    }
}

/// One POST with the provider's timeout; the body of the answer is read to the end.
async fn send(ctx: Arc<Ctx>, headers: HeaderMap, body: Bytes, kind: Kind) -> Attempt {
    let started = Instant::now();
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = ctx.uri.clone();
    *request.headers_mut() = headers;
    let exchange = async {
        let response = ctx
            .client
            .request(request)
            .await
            .map_err(|e| if e.is_connect() { "connect" } else { "request" })?;
        let status = response.status().as_u16();
        response
            .into_body()
            .collect()
            .await
            .map_err(|_| "response body")?;
        Ok::<u16, &'static str>(status)
    };
    let outcome = match timeout(REQUEST_TIMEOUT, exchange).await {
        Ok(result) => result,
        Err(_) => Err("timeout"),
    };
    Attempt {
        kind,
        outcome,
        latency: started.elapsed(),
    }
}

/// One slot of slow clients: a connection at a time, replaced when the server ends it.
async fn slow_client(
    addr: SocketAddr,
    path: String,
    slot: u32,
    stats: Arc<SlowStats>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut serial = 0u64;
    while !*stopped.borrow() {
        let stream = tokio::select! {
            stream = TcpStream::connect(addr) => stream,
            _ = stopped.changed() => break,
        };
        let Ok(stream) = stream else {
            stats.connect_errors.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = stopped.changed() => {}
            }
            continue;
        };
        stats.opened.fetch_add(1, Ordering::Relaxed);
        let id = format!("dlv_slow_{slot}_{serial}");
        serial += 1;
        match slow_connection(stream, addr, &path, &id, &stats, &mut stopped).await {
            SlowEnd::Server(answer) => {
                stats.closed_by_server.fetch_add(1, Ordering::Relaxed);
                let key = answer.map_or_else(|| "none".to_owned(), |status| status.to_string());
                if let Ok(mut answers) = stats.answers.lock() {
                    *answers.entry(key).or_default() += 1;
                }
            }
            SlowEnd::Stopped => {
                stats.open_at_end.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

enum SlowEnd {
    /// The server closed the connection or answered (with this status, if it could be read).
    Server(Option<u16>),
    /// The run is over.
    Stopped,
}

/// Headers that look genuine but a signature that is not, then the body a trickle at a time,
/// never the last byte.
async fn slow_connection(
    stream: TcpStream,
    addr: SocketAddr,
    path: &str,
    id: &str,
    stats: &SlowStats,
    stopped: &mut watch::Receiver<bool>,
) -> SlowEnd {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    // Well formed (64 hex digits), wrong for any secret.
    let mut signature = String::with_capacity(64);
    for byte in id.bytes().cycle().take(32) {
        let _ = write!(signature, "{byte:02x}");
    }
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-Agent-Signature: sha256={signature}\r\nX-Agent-Timestamp: {}\r\n\
         X-Agent-Delivery-Id: {id}\r\nContent-Length: {SLOW_CONTENT_LENGTH}\r\n\r\n",
        unix_now()
    );
    if writer.write_all(head.as_bytes()).await.is_err() {
        return SlowEnd::Server(None);
    }
    let chunk = vec![b' '; SLOW_CHUNK];
    let mut sent = 0usize;
    let mut ticker = tokio::time::interval(SLOW_INTERVAL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut answer = [0u8; 64];
    let mut read = 0usize;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                // Never the last byte: the request is never complete.
                let len = SLOW_CHUNK.min(SLOW_CONTENT_LENGTH - 1 - sent);
                if len > 0 {
                    if writer.write_all(&chunk[..len]).await.is_err() {
                        return SlowEnd::Server(status_of(&answer[..read]));
                    }
                    sent += len;
                    stats.body_bytes_sent.fetch_add(len as u64, Ordering::Relaxed);
                }
            }
            got = reader.read(&mut answer[read..]) => match got {
                Ok(0) | Err(_) => return SlowEnd::Server(status_of(&answer[..read])),
                Ok(more) => {
                    read += more;
                    // An answer (its status line is in) ends this request: the next one is a
                    // new connection.
                    if read == answer.len() || answer[..read].contains(&b'\n') {
                        return SlowEnd::Server(status_of(&answer[..read]));
                    }
                }
            },
            _ = stopped.changed() => return SlowEnd::Stopped,
        }
    }
}

/// The status code of `HTTP/1.1 408 ...`, if that much was read.
fn status_of(answer: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(answer).ok()?;
    text.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

fn percentile(sorted: &[Duration], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    millis(sorted[index])
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

/// Writes sent.txt, replays.txt and summary.json; returns the number of lost deliveries.
fn write_results(
    args: &Args,
    outcomes: &[Outcome],
    slow: &SlowStats,
    max_lag: Duration,
    sending: Duration,
    elapsed: Duration,
) -> Result<u64, Box<dyn Error>> {
    let mut sent = String::new();
    let mut replays = String::new();
    let mut statuses: BTreeMap<&str, BTreeMap<String, u64>> = BTreeMap::new();
    let mut latencies = Vec::new();
    let mut lost = 0u64;
    let mut lost_ids = Vec::new();
    for outcome in outcomes {
        if outcome.delivered {
            sent.push_str(&outcome.id);
            sent.push('\n');
        } else {
            lost += 1;
            if lost_ids.len() < 20 {
                lost_ids.push(outcome.id.clone());
            }
        }
        if let Some(replay) = &outcome.replay_id {
            replays.push_str(replay);
            replays.push('\n');
        }
        for attempt in &outcome.attempts {
            let key = match attempt.outcome {
                Ok(status) => status.to_string(),
                Err(error) => format!("error:{error}"),
            };
            *statuses
                .entry(attempt.kind.name())
                .or_default()
                .entry(key)
                .or_default() += 1;
            if attempt.kind != Kind::Replay && attempt.outcome.is_ok() {
                latencies.push(attempt.latency);
            }
        }
    }
    latencies.sort_unstable();
    write(&args.out_dir.join("sent.txt"), &sent)?;
    write(&args.out_dir.join("replays.txt"), &replays)?;

    let answers = slow.answers.lock().map(|a| a.clone()).unwrap_or_default();
    let summary = serde_json::json!({
        "target": args.addr.to_string(),
        "rate": args.rate,
        "seconds": args.seconds,
        "deliveries": outcomes.len(),
        "delivered": outcomes.len() as u64 - lost,
        "lost": lost,
        "lost_ids_first_20": lost_ids,
        "replays_sent": outcomes.iter().filter(|o| o.replay_id.is_some()).count(),
        "status": statuses,
        "latency_ms": {
            "note": "genuine requests (first, retry, recovery) that got an answer",
            "count": latencies.len(),
            "p50": percentile(&latencies, 0.50),
            "p99": percentile(&latencies, 0.99),
            "max": latencies.last().copied().map_or(0.0, millis),
        },
        "pacing": {
            "max_lag_ms": millis(max_lag),
            "sending_s": sending.as_secs_f64(),
            "elapsed_s": elapsed.as_secs_f64(),
        },
        "slow_connections": {
            "at_once": args.slow_clients,
            "opened": slow.opened.load(Ordering::Relaxed),
            "closed_by_server": slow.closed_by_server.load(Ordering::Relaxed),
            "open_at_end": slow.open_at_end.load(Ordering::Relaxed),
            "connect_errors": slow.connect_errors.load(Ordering::Relaxed),
            "body_bytes_sent": slow.body_bytes_sent.load(Ordering::Relaxed),
            "answers": answers,
        },
    });
    let text = serde_json::to_string_pretty(&summary)?;
    write(&args.out_dir.join("summary.json"), &format!("{text}\n"))?;
    eprintln!(
        "soak: {} deliveries, {} acknowledged, {lost} lost, {} replays sent; genuine latency p50 {} ms p99 {} ms; slow connections opened {} closed by server {}",
        outcomes.len(),
        outcomes.len() as u64 - lost,
        outcomes.iter().filter(|o| o.replay_id.is_some()).count(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        slow.opened.load(Ordering::Relaxed),
        slow.closed_by_server.load(Ordering::Relaxed),
    );
    Ok(lost)
}

fn write(path: &Path, text: &str) -> Result<(), Box<dyn Error>> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}
