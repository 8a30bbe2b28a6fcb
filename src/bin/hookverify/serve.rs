//! `hookverify serve`: a verifying receiver that prints one JSON line per delivery.
//!
//! Requests go through [`VerifyLayer`] (headers checked before the body is read, body limit,
//! signature, window, dedupe in the store `--store` names: a [`MemoryStore`], or Redis or
//! PostgreSQL shared by several `serve` processes); the handler behind it prints the delivery on
//! stdout and answers 200. Rejections and duplicates never reach the handler, so they print
//! nothing on stdout; the layer logs them on stderr.
//!
//! A store URL may carry a password: it is never printed, logged or put in an error message;
//! only its scheme is.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroUsize;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::routing::post;
use clap::Args;
use hookverify::axum::{DEFAULT_MAX_BODY, VerifiedDelivery, VerifyLayer};
use hookverify::store::memory::WhenFull;
use hookverify::store::postgres::PostgresStore;
use hookverify::store::redis::RedisStore;
use hookverify::time::format_description::well_known::Rfc3339;
use hookverify::time::{Duration, UtcOffset};
use hookverify::{DeliveryStore, MemoryStore, Method, Receiver, Secret, StoreError, Verifier};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use crate::Failure;
use crate::endpoints::Endpoints;
use crate::forward::{ForwardArgs, Forwarder, credential_header};
use crate::metrics;
use crate::options::{StoreChoice, StoreUrl, check_path, parse_store, redact};
use crate::scheme::SchemeArgs;
use crate::secrets;
use crate::server::{self, Limits};

/// The label of a secret generated for one run.
const GENERATED_LABEL: &str = "generated";

/// Receive signed deliveries: verify, dedupe, print one JSON line per delivery on stdout.
///
/// Answers 200 to each delivery handled (and to duplicates of completed ones, without printing
/// them again); 400 for a missing or malformed header, 401 for a bad signature or a timestamp
/// outside the window, 408 for a body not received within --body-timeout, 413 for a body over
/// --max-body, 429 for a copy of a delivery still in flight, 503 while the store cannot answer
/// or while every --max-large-bodies slot is taken. Slow or idle connections are closed (see the
/// timeouts below), so memory stays bounded by the limits. Logs go to stderr (filter with
/// RUST_LOG, default info).
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on; port 0 picks a free port. Once bound, `listening on http://IP:PORT`
    /// is printed on stderr
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "IP:PORT")]
    addr: SocketAddr,

    /// A secret, as LABEL=SECRET or SECRET (then labelled by its position: 1, 2, ...). Repeat it
    /// during a rotation; each delivery reports the label that matched. [env: HOOKVERIFY_SECRET,
    /// one secret; preferred, since arguments are visible to other local users.] With neither, a
    /// random secret is generated and printed once on stderr
    #[arg(long = "secret", value_name = "[LABEL=]SECRET")]
    secrets: Vec<String>,

    #[command(flatten)]
    scheme: SchemeArgs,

    /// How far a delivery's timestamp may be from now, either way, in seconds (0 to 86400)
    #[arg(long, default_value_t = 300, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(0..=86_400))]
    tolerance: u32,

    /// The largest body accepted, in bytes; a larger one gets 413 before it is read
    #[arg(long, default_value_t = DEFAULT_MAX_BODY, value_name = "BYTES")]
    max_body: usize,

    /// Dedupe store: `memory` (in this process; forgets everything on exit), or a store shared
    /// by every `serve` given the same URL, so that a delivery is handled once across them:
    /// `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` (or `redis+unix:///PATH`), or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` (or `postgresql://`; the table
    /// `hookverify_deliveries` is created if missing). No TLS. The store must be reachable at
    /// startup, else `serve` exits with status 1; once running, it answers 503 while the store
    /// is unreachable (the provider retries) and recovers by itself when it is back. The URL is
    /// never printed [env: HOOKVERIFY_STORE; preferred for a URL with a password]
    #[arg(
        long,
        env = "HOOKVERIFY_STORE",
        hide_env = true,
        hide_env_values = true,
        default_value = "memory",
        value_name = "STORE"
    )]
    store: String,

    /// Keys the memory store holds: two per delivery (its id and its message), each kept for
    /// twice the tolerance plus 30 s; 245 to 284 bytes of memory per delivery when full, plus
    /// its id's length [default: 500000, about 73 MB at most with ids of 14 characters, enough
    /// for 400 deliveries/s; only with --store
    /// memory]
    #[arg(long, value_name = "KEYS")]
    capacity: Option<NonZeroUsize>,

    /// What a full memory store does: `evict` the least recently used keys (a replay of an old
    /// delivery would then be handled again; logged at most once a minute with the capacity
    /// the observed rate needs), or `refuse` new deliveries with 503 until keys expire (the
    /// provider retries) [only with --store memory]
    #[arg(long, value_name = "POLICY", value_parser = ["evict", "refuse"])]
    when_full: Option<String>,

    /// Accept deliveries only on this exact path (others get 404) [default: POST on any path]
    #[arg(long, value_name = "PATH")]
    path: Option<String>,

    /// Seconds a client has to send a request's headers, counted from its connection (or, on a
    /// kept-alive connection, from the request's first byte); past it the connection is closed.
    /// 1-60
    #[arg(
        long,
        default_value_t = 5,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=60)
    )]
    header_timeout: u64,

    /// Seconds a client has to send a request's body, counted from the end of its headers; a body
    /// still arriving then gets 408 and the connection is closed. 1-60
    #[arg(
        long,
        default_value_t = 10,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=60)
    )]
    body_timeout: u64,

    /// Seconds a kept-alive connection may wait for its next request before it is closed. 1-600
    #[arg(
        long,
        default_value_t = 5,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..=600)
    )]
    idle_timeout: u64,

    /// Connections served at once; more wait in the kernel's accept queue until one closes.
    /// Each holds a read buffer under 64 KiB and a body of at most 64 KiB (a larger one needs a
    /// --max-large-bodies slot). 1-100000
    #[arg(
        long,
        default_value_t = 256,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=100_000)
    )]
    max_connections: u32,

    /// Bodies over 64 KiB (or of unknown length) read at once, each up to --max-body; one more
    /// gets 503 (Retry-After: 1) before its body is read. The bodies held at once thus total at
    /// most max-connections x 64 KiB + max-large-bodies x max-body (80 MiB with the defaults).
    /// 1-100000
    #[arg(
        long,
        default_value_t = 64,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=100_000)
    )]
    max_large_bodies: u32,

    #[command(flatten)]
    forward: ForwardArgs,
    /// Serve many endpoints from a TOML file: for each [[endpoint]], its `path`, `scheme`,
    /// `secrets` (names of environment variables, never secrets), `tolerance`, `events` handled
    /// and `api_version` policy. Read again on SIGHUP: the new file takes effect whole, requests
    /// in flight finish under the old one, and an invalid file keeps the old one (logged). An
    /// unknown path gets 404. See the README for the format
    #[arg(long, value_name = "FILE", conflicts_with_all = [
        "secrets", "scheme", "signature_header", "timestamp_header", "id_header", "tolerance", "path",
    ])]
    endpoints: Option<std::path::PathBuf>,

    /// Serve the hookverify_* metrics in the Prometheus text format at http://IP:PORT/metrics;
    /// port 0 picks a free port. Once bound, `metrics on http://IP:PORT/metrics` is printed on
    /// stderr
    #[arg(long, value_name = "IP:PORT")]
    metrics: Option<SocketAddr>,
}

/// Everything checked, before any runtime starts or any port is bound.
struct Config {
    addr: SocketAddr,
    verifier: Verifier,
    method: Method,
    labels: Vec<String>,
    /// The secret generated for this run, if none was given.
    generated: Option<String>,
    max_body: usize,
    path: Option<String>,
    refuse_when_full: bool,
    /// The layer's bound on reading a body.
    body_timeout: std::time::Duration,
    limits: Limits,
    /// With --forward: the handler forwards instead of printing.
    forward: Option<Forwarder>,
    endpoints: Option<Arc<Endpoints>>,
    metrics: Option<SocketAddr>,
}

pub(crate) fn run(args: ServeArgs) -> Result<(), Failure> {
    let (config, store) = configure(args)?;
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::runtime(format!("could not start the runtime: {error}")))?;
    let result = runtime.block_on(start(config, store));
    // Requests in flight are finished by now; a store connection or a name lookup still
    // running in the background does not hold up the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

fn configure(args: ServeArgs) -> Result<(Config, StoreChoice), Failure> {
    let usage = |message: String| Failure::usage("serve", message);
    let store = parse_store(&args.store, args.capacity).map_err(usage)?;
    if args.when_full.is_some() && !matches!(store, StoreChoice::Memory(_)) {
        return Err(usage(
            "--when-full applies to --store memory only: a shared store does not evict".into(),
        ));
    }
    if let Some(path) = &args.path {
        check_path(path).map_err(usage)?;
    }

    let endpoints = match &args.endpoints {
        Some(file) => Some(Arc::new(Endpoints::load(file).map_err(usage)?)),
        None => None,
    };

    let method = args.scheme.scheme;
    let mut secrets = match endpoints {
        // Each endpoint names its own; HOOKVERIFY_SECRET does not apply.
        Some(_) => Vec::new(),
        None => secrets::labelled(secrets::collect(&args.secrets).map_err(usage)?),
    };
    let mut generated = None;
    if secrets.is_empty() && method != Method::None && endpoints.is_none() {
        let secret = secrets::generate(method).map_err(Failure::runtime)?;
        secrets.push(Secret::new(GENERATED_LABEL, secret.clone()));
        generated = Some(secret);
    }
    let labels = secrets.iter().map(|s| s.label().to_owned()).collect();
    let mut verifier = Verifier::builder()
        .method(method)
        .secrets(secrets)
        .tolerance(Duration::seconds(i64::from(args.tolerance)));
    if let Some(names) = args.scheme.header_names().map_err(usage)? {
        verifier = verifier.header_names(names);
    }
    let verifier = match &endpoints {
        // The base receiver's verifier is never used: each endpoint has its own.
        Some(endpoints) => endpoints.any_verifier(),
        None => verifier.build().map_err(|error| usage(error.to_string()))?,
    };

    let config = Config {
        addr: args.addr,
        verifier,
        method,
        labels,
        generated,
        max_body: args.max_body,
        path: args.path,
        refuse_when_full: args.when_full.as_deref() == Some("refuse"),
        body_timeout: std::time::Duration::from_secs(args.body_timeout),
        limits: Limits {
            header_timeout: std::time::Duration::from_secs(args.header_timeout),
            idle_timeout: std::time::Duration::from_secs(args.idle_timeout),
            max_connections: args.max_connections,
            max_large_bodies: args.max_large_bodies,
            max_body: args.max_body,
        },
        forward: args.forward.forwarder().map_err(usage)?,
        endpoints,
        metrics: args.metrics,
    };
    Ok((config, store))
}

fn init_logging() {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env_lossy();
    // Fails only if a subscriber is already set, and then that one logs.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}

/// Connects to the store (failing fast if it cannot be reached), then serves until a signal.
async fn start(config: Config, store: StoreChoice) -> Result<(), Failure> {
    let name = store.name();
    match store {
        StoreChoice::Memory(capacity) => {
            let policy = if config.refuse_when_full {
                WhenFull::Refuse
            } else {
                WhenFull::EvictOldest
            };
            // `parse_store` checked the capacity against the store's minimum.
            let store = MemoryStore::new(capacity)
                .map_err(|error| Failure::usage("serve", format!("--capacity: {error}")))?;
            let store = Arc::new(store.when_full(policy));
            let label = format!("memory (capacity {capacity})");
            serve_with(config, Arc::clone(&store), &label).await?;
            if store.premature_evictions() > 0 {
                tracing::warn!(
                    premature_evictions = store.premature_evictions(),
                    "the memory store evicted entries before they expired; raise --capacity"
                );
            }
        }
        StoreChoice::Redis(url) => {
            tracing::info!(store = name, "connecting to the store");
            let store = RedisStore::connect(&url.0).await.map_err(|error| {
                unreachable_store(&url, format!("connect to the {name} store"), &error)
            })?;
            serve_with(config, Arc::new(store), name).await?;
        }
        StoreChoice::Postgres(url) => {
            tracing::info!(store = name, "connecting to the store");
            let store = PostgresStore::connect(&url.0).await.map_err(|error| {
                unreachable_store(&url, format!("connect to the {name} store"), &error)
            })?;
            store.migrate().await.map_err(|error| {
                unreachable_store(
                    &url,
                    format!("create the table in the {name} store"),
                    &error,
                )
            })?;
            serve_with(config, Arc::new(store), name).await?;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// The error for a store that cannot be used at startup: it names the scheme, never the URL.
fn unreachable_store(url: &StoreUrl, action: String, error: &StoreError) -> Failure {
    Failure::runtime(format!(
        "--store: could not {action}: {}\n\
         Check that the server is running and that the URL (host, port, database, credentials) \
         is right. `serve` does not start without its store; once running, it answers 503 \
         during a store outage and recovers by itself.",
        redact(&error_chain(error), &url.0)
    ))
}

/// `error` and each of its sources that its text does not already include.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(source) = next {
        let part = source.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = source.source();
    }
    text
}

/// Serves `store` until a signal; `store_label` names it in the logs.
async fn serve_with<S: DeliveryStore>(
    config: Config,
    store: Arc<S>,
    store_label: &str,
) -> Result<(), Failure> {
    // Before binding: once the address is printed, a signal must mean a graceful stop.
    let mut signals = Signals::install()
        .map_err(|error| Failure::runtime(format!("could not listen for signals: {error}")))?;
    let listener = TcpListener::bind(config.addr).await.map_err(|error| {
        Failure::runtime(format!("could not listen on {}: {error}", config.addr))
    })?;
    let local = listener
        .local_addr()
        .map_err(|error| Failure::runtime(format!("could not read the bound address: {error}")))?;

    if let Some(addr) = config.metrics {
        let local = metrics::start(addr).await?;
        eprintln!("metrics on http://{local}/metrics");
    }

    let receiver = Receiver::<S>::new(config.verifier, store);
    // Kept to wait, at shutdown, for what its claims still have to do in the background.
    let background = receiver.clone();
    let mut route = match config.forward.clone() {
        Some(forwarder) => {
            let forwarder = match &config.endpoints {
                Some(endpoints) => {
                    let endpoints = Arc::clone(endpoints);
                    forwarder.hiding(move || endpoints.credential_headers())
                }
                None => {
                    let hidden: Vec<_> =
                        credential_header(receiver.verifier()).into_iter().collect();
                    forwarder.hiding(move || hidden.clone())
                }
            };
            tracing::info!(
                upstream = forwarder.describe(),
                "forwarding verified deliveries"
            );
            forwarder.route()
        }
        None => post(deliver),
    };
    let layer = match &config.endpoints {
        // One layer for every endpoint: the request's path picks its configuration.
        Some(endpoints) => {
            route = endpoints.with_events(route);
            endpoints.layer(receiver).map_err(Failure::runtime)?
        }
        None => VerifyLayer::new(receiver),
    };
    // The layer bounds the body: it answers 408 and closes the connection.
    let layer = layer
        .max_body(config.max_body)
        .body_timeout(config.body_timeout)
        .map_err(|error| Failure::usage("serve", format!("--body-timeout: {error}")))?;
    // `MethodRouter::route_layer` wraps the POST handler only: an unknown path (404) or method
    // (405) is answered without verification.
    let route = route.route_layer(layer);
    let app = match &config.path {
        Some(path) => Router::new().route(path, route),
        None => Router::new()
            .route("/", route.clone())
            .route("/{*path}", route),
    };

    if let Some(secret) = &config.generated {
        eprint!(
            "{}",
            round_trip_help(secret, config.method, local, config.path.as_deref())
        );
    }
    if config.method == Method::None {
        tracing::warn!(
            "--scheme none: deliveries are NOT verified; anyone who can reach this address can \
             send one. Choose a signing method for anything but a trial"
        );
    }
    if !local.ip().is_loopback() {
        tracing::warn!(
            "listening on {}, not a loopback address: anyone who can reach it can send requests; \
             put TLS in front of it",
            local.ip()
        );
    }
    match &config.endpoints {
        Some(endpoints) => endpoints.log_ready(config.max_body, store_label),
        None => tracing::info!(
            scheme = config.method.name(),
            secrets = ?config.labels,
            max_body = config.max_body,
            store = store_label,
            path = config.path.as_deref().unwrap_or("any"),
            "receiver ready"
        ),
    }
    eprintln!("listening on http://{local}");

    server::serve(listener, app, config.limits, async move {
        let signal = signals.next().await;
        tracing::info!(
            "{signal} received: finishing the requests in flight (send it again to stop now)"
        );
        tokio::spawn(async move {
            let signal = signals.next().await;
            eprintln!("{signal} received again: stopping now");
            std::process::exit(130);
        });
    })
    .await;
    // A completion or release the store could not take in time is retried in the background:
    // exiting now would leave its claim to the lease, and an unrecorded completion open to a
    // replay once the lease ended. Each gives up at the lease's end.
    let mut settled = std::pin::pin!(background.settled());
    if tokio::time::timeout(std::time::Duration::from_millis(100), &mut settled)
        .await
        .is_err()
    {
        tracing::warn!(
            "waiting for the store to record the completions and releases still pending (at \
             most one lease; send the signal again to stop now)"
        );
        settled.await;
    }
    Ok(())
}

/// Prints the delivery as one JSON line on stdout, then answers 200. If stdout cannot take the
/// line, answers 500: the layer releases the claim and the provider's retry is handled.
async fn deliver(uri: Uri, delivery: VerifiedDelivery) -> (StatusCode, &'static str) {
    let line = record(&delivery, uri.path());
    // Written synchronously (no await between printing and answering, so a dropped connection
    // cannot leave a printed delivery unacknowledged in the store). A line is a single small
    // write; `block_in_place` around it cost more than half the throughput under load
    // (BENCHMARKS.md), so a reader of stdout that stalls stalls this worker: pipe stdout to
    // something that keeps up.
    match emit(&line) {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(error) => {
            tracing::error!(
                delivery_id = delivery.delivery_id(),
                %error,
                "could not write the delivery to stdout"
            );
            (StatusCode::INTERNAL_SERVER_ERROR, "output_failed")
        }
    }
}

fn emit(line: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// The JSON line for one delivery.
fn record(delivery: &VerifiedDelivery, path: &str) -> String {
    let timestamp = delivery.timestamp().map(|at| {
        let at = at.to_offset(UtcOffset::UTC);
        at.format(&Rfc3339)
            .map_or_else(|_| Value::from(at.unix_timestamp()), Value::from)
    });
    json!({
        "delivery_id": delivery.verified().delivery_id(),
        "method": delivery.verified().method().name(),
        "timestamp": timestamp,
        "bytes": delivery.body().len(),
        "secret": delivery.secret_label(),
        "event": event_type(delivery.body()),
        "path": path,
    })
    .to_string()
}

/// The body's top-level `type` when the body is a JSON object and `type` a string.
fn event_type(body: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut object)) => match object.remove("type") {
            Some(Value::String(event)) => Some(event),
            _ => None,
        },
        _ => None,
    }
}

/// What is printed once on stderr when the secret was generated: the secret and a round trip
/// to paste into another shell.
fn round_trip_help(secret: &str, method: Method, local: SocketAddr, path: Option<&str>) -> String {
    let program = std::env::current_exe()
        .map(|path| shell_quote(&path.to_string_lossy()))
        .unwrap_or_else(|_| "hookverify".into());
    let mut target = local;
    if target.ip().is_unspecified() {
        target.set_ip(match target.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let url = format!("http://{target}{}", path.unwrap_or("/"));
    let env = secrets::ENV;
    let mut text = String::new();
    let _ = write!(
        text,
        "\nNo --secret and no {env}: this run uses a generated secret, shown only here:\n\n\
         \x20   {secret}\n\n\
         Give it to the sender (pass it back with --secret or {env} to keep it across \
         restarts), or try a signed round trip from another shell:\n\n\
         \x20   echo '{{\"type\":\"ping\"}}' > body.json\n\
         \x20   {env}={secret} {program} sign --scheme {method} --file body.json \\\n\
         \x20     | curl -sS -H @- --data-binary @body.json {url}\n\n"
    );
    text
}

/// `text` as one shell word.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// SIGTERM and SIGINT (Ctrl-C elsewhere), registered up front so that neither kills the
/// process once the address is printed.
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.terminate.recv() => "SIGTERM",
                _ = self.interrupt.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            "Ctrl-C"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_is_the_top_level_string_type() {
        assert_eq!(
            event_type(br#"{"type":"run.finished"}"#).as_deref(),
            Some("run.finished")
        );
        assert_eq!(event_type(br#"{"type":1}"#), None);
        assert_eq!(event_type(br#"{"data":{"type":"x"}}"#), None);
        assert_eq!(event_type(br#"["type"]"#), None);
        assert_eq!(event_type(b"type=x"), None);
        assert_eq!(event_type(b""), None);
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_quote("/usr/bin/hookverify"), "/usr/bin/hookverify");
        assert_eq!(shell_quote("/my dir/it's"), r"'/my dir/it'\''s'");
    }
}
