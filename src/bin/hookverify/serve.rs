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
use hookverify::store::postgres::PostgresStore;
use hookverify::store::redis::RedisStore;
use hookverify::time::format_description::well_known::Rfc3339;
use hookverify::time::{Duration, UtcOffset};
use hookverify::{DeliveryStore, MemoryStore, Receiver, Secret, StoreError, Verifier};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use crate::Failure;
use crate::secrets;

/// Memory store entries by default: two per delivery, kept for the retention window (630 s
/// with the default tolerance), so about 79 deliveries per second sustained.
const DEFAULT_CAPACITY: NonZeroUsize = NonZeroUsize::MIN.saturating_add(99_999);

/// The label of a secret generated for one run.
const GENERATED_LABEL: &str = "generated";

/// Receive signed deliveries: verify, dedupe, print one JSON line per delivery on stdout.
///
/// Answers 200 to each delivery handled (and to duplicates of completed ones, without printing
/// them again); 400 for a missing or malformed header, 401 for a bad signature or a timestamp
/// outside the window, 413 for a body over --max-body, 429 for a copy of a delivery still in
/// flight, 503 while the store cannot answer. Logs go to stderr (filter with RUST_LOG, default
/// info).
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

    /// How far a delivery's timestamp may be from now, either way, in seconds
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
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

    /// Entries the memory store holds: two per delivery, each kept for twice the tolerance plus
    /// 30 s. When full, the oldest entries go first [default: 100000; only with --store memory]
    #[arg(long, value_name = "ENTRIES")]
    capacity: Option<NonZeroUsize>,

    /// Accept deliveries only on this exact path (others get 404) [default: POST on any path]
    #[arg(long, value_name = "PATH")]
    path: Option<String>,
}

/// Everything checked, before any runtime starts or any port is bound.
struct Config {
    addr: SocketAddr,
    verifier: Verifier,
    labels: Vec<String>,
    /// The secret generated for this run, if none was given.
    generated: Option<String>,
    max_body: usize,
    path: Option<String>,
}

/// The store `--store` names.
enum StoreChoice {
    Memory(NonZeroUsize),
    Redis(StoreUrl),
    Postgres(StoreUrl),
}

impl StoreChoice {
    /// What logs and messages call the store: never more than the scheme.
    fn name(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Redis(_) => "redis",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// A store URL. Deliberately neither `Debug` nor `Display`: it may carry a password.
struct StoreUrl(String);

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
    if let Some(path) = &args.path {
        check_path(path).map_err(usage)?;
    }

    let mut secrets = secrets::labelled(secrets::collect(&args.secrets).map_err(usage)?);
    let mut generated = None;
    if secrets.is_empty() {
        let secret = secrets::generate().map_err(Failure::runtime)?;
        secrets.push(Secret::new(GENERATED_LABEL, secret.clone()));
        generated = Some(secret);
    }
    let labels = secrets.iter().map(|s| s.label().to_owned()).collect();
    let verifier = Verifier::builder()
        .secrets(secrets)
        .tolerance(Duration::seconds(i64::from(args.tolerance)))
        .build()
        .map_err(|error| usage(error.to_string()))?;

    let config = Config {
        addr: args.addr,
        verifier,
        labels,
        generated,
        max_body: args.max_body,
        path: args.path,
    };
    Ok((config, store))
}

/// Reads `--store`. Messages never repeat the value, not even its scheme: it may carry a
/// password.
fn parse_store(text: &str, capacity: Option<NonZeroUsize>) -> Result<StoreChoice, String> {
    const SUPPORTED: &str = "--store: the supported stores are memory, \
        redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], redis+unix:///PATH, and \
        postgres://USER[:PASSWORD]@HOST[:PORT]/DB (or postgresql://)";
    if text == "memory" {
        return Ok(StoreChoice::Memory(capacity.unwrap_or(DEFAULT_CAPACITY)));
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(SUPPORTED.into());
    };
    let scheme = scheme.to_ascii_lowercase();
    let url = StoreUrl(format!("{scheme}://{rest}"));
    let store = match scheme.as_str() {
        "redis" | "redis+unix" => StoreChoice::Redis(url),
        "postgres" | "postgresql" => StoreChoice::Postgres(url),
        "rediss" => {
            return Err(
                "--store: rediss:// (Redis over TLS) is not supported by this build; \
                 use redis:// on a trusted network or through a TLS tunnel"
                    .into(),
            );
        }
        _ => return Err(SUPPORTED.into()),
    };
    if capacity.is_some() {
        return Err(format!(
            "--capacity applies to --store memory only, not to the {} store",
            store.name()
        ));
    }
    Ok(store)
}

/// `message` with the store URL's secrets masked: the whole URL, the password in its user
/// info and any `password` or `pass` query value, each as written and percent-decoded. The
/// drivers' errors are not known to repeat them; this makes sure.
fn redact(message: &str, url: &str) -> String {
    let mut secrets = vec![url.to_owned()];
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (head, query) = rest.split_once('?').unwrap_or((rest, ""));
    let head = head.split('#').next().unwrap_or(head);
    if let Some((userinfo, _)) = head.rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
    {
        secrets.push(password.to_owned());
    }
    let query = query.split('#').next().unwrap_or(query);
    for pair in query.split('&') {
        if let Some((key, value)) = pair.split_once('=')
            && matches!(key, "password" | "pass")
        {
            secrets.push(value.to_owned());
        }
    }
    let decoded: Vec<String> = secrets.iter().map(|s| percent_decode(s)).collect();
    secrets.extend(decoded);
    // Longest first, so that a password inside the URL does not break the URL's match.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut message = message.to_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        message = message.replace(secret.as_str(), "***");
    }
    message
}

/// `%XX` sequences decoded (lossily, as UTF-8); anything else kept as is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some((&first, tail)) = rest.split_first() {
        match (first, tail) {
            (b'%', [high, low, after @ ..])
                if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() =>
            {
                out.push(hex_digit(*high) << 4 | hex_digit(*low));
                rest = after;
            }
            _ => {
                out.push(first);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of an ASCII hex digit (0 for anything else).
fn hex_digit(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// A path the router takes literally: no `{capture}`, no `*wildcard`, no query.
fn check_path(path: &str) -> Result<(), String> {
    const ALLOWED: &[u8] = b"-._~!$&'()+,;=:@%/";
    if !path.starts_with('/') {
        return Err("--path must start with '/'".into());
    }
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || ALLOWED.contains(&b))
    {
        return Err(
            "--path may contain only ASCII letters, digits and -._~!$&'()+,;=:@%/ (it is \
             matched literally)"
                .into(),
        );
    }
    Ok(())
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
            let store = Arc::new(MemoryStore::new(capacity));
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

    let receiver = Receiver::<S>::new(config.verifier, store);
    let layer = VerifyLayer::new(receiver).max_body(config.max_body);
    // `MethodRouter::route_layer` wraps the POST handler only: an unknown path (404) or method
    // (405) is answered without verification.
    let route = post(deliver).route_layer(layer);
    let app = match &config.path {
        Some(path) => Router::new().route(path, route),
        None => Router::new()
            .route("/", route.clone())
            .route("/{*path}", route),
    };

    if let Some(secret) = &config.generated {
        eprint!("{}", round_trip_help(secret, local, config.path.as_deref()));
    }
    if !local.ip().is_loopback() {
        tracing::warn!(
            "listening on {}, not a loopback address: anyone who can reach it can send requests; \
             put TLS in front of it",
            local.ip()
        );
    }
    tracing::info!(
        secrets = ?config.labels,
        max_body = config.max_body,
        store = store_label,
        path = config.path.as_deref().unwrap_or("any"),
        "receiver ready"
    );
    eprintln!("listening on http://{local}");

    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
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
        .await
        .map_err(|error| Failure::runtime(format!("server error: {error}")))
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
    let timestamp = delivery.timestamp().to_offset(UtcOffset::UTC);
    let timestamp = timestamp
        .format(&Rfc3339)
        .map_or_else(|_| Value::from(timestamp.unix_timestamp()), Value::from);
    json!({
        "delivery_id": delivery.delivery_id(),
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
fn round_trip_help(secret: &str, local: SocketAddr, path: Option<&str>) -> String {
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
         \x20   {env}={secret} {program} sign --file body.json \\\n\
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
    fn paths_are_literal() {
        assert!(check_path("/").is_ok());
        assert!(check_path("/webhooks/agent-v1").is_ok());
        for bad in ["", "webhooks", "/{id}", "/*rest", "/a?b", "/a b", "/é"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stores_are_chosen_by_scheme() {
        let name = |text: &str| parse_store(text, None).map(|store| store.name());
        assert_eq!(name("memory"), Ok("memory"));
        assert_eq!(name("redis://127.0.0.1:6379/0"), Ok("redis"));
        assert_eq!(name("REDIS://127.0.0.1"), Ok("redis"));
        assert_eq!(name("redis+unix:///run/redis.sock"), Ok("redis"));
        assert_eq!(name("postgres://hooks@db/app"), Ok("postgres"));
        assert_eq!(name("postgresql://hooks@db/app"), Ok("postgres"));
        for bad in [
            "",
            "Memory",
            "mysql://u:hunter2@db",
            "hunter2",
            "rediss://:hunter2@db",
        ] {
            let message = parse_store(bad, None).err().unwrap_or_default();
            assert!(message.starts_with("--store"), "{bad:?}: {message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        let capacity = NonZeroUsize::new(10);
        assert!(matches!(
            parse_store("memory", capacity),
            Ok(StoreChoice::Memory(c)) if Some(c) == capacity
        ));
        let message = parse_store("redis://:hunter2@db", capacity)
            .err()
            .unwrap_or_default();
        assert!(message.contains("--capacity") && !message.contains("hunter2"));
    }

    #[test]
    fn redaction_masks_the_url_and_its_passwords() {
        let url = "postgres://hooks:p%40ss%2Fw@db:5432/app?password=q%20w&sslmode=disable";
        let message = format!("failed for {url}: p@ss/w, p%40ss%2Fw, q w, user hooks, db:5432");
        assert_eq!(
            redact(&message, url),
            "failed for ***: ***, ***, ***, user hooks, db:5432"
        );
        assert_eq!(
            redact("x hunter2 y", "redis+unix:///run/r.sock?pass=hunter2"),
            "x *** y"
        );
        assert_eq!(
            redact("connection refused", "redis://db/"),
            "connection refused"
        );
        assert_eq!(percent_decode("%41%zz%4"), "A%zz%4");
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_quote("/usr/bin/hookverify"), "/usr/bin/hookverify");
        assert_eq!(shell_quote("/my dir/it's"), r"'/my dir/it'\''s'");
    }
}
