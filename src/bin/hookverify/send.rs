//! `hookverify send`: sign and POST deliveries the way the provider does, to try a receiver
//! end to end: one delivery with every attempt printed, many at once as a load generator
//! (`--count`, `--concurrency`; see `load.rs`), or a conformance run (`--chaos`; see
//! `chaos.rs`).
//!
//! The provider delivers at least once: each attempt waits at most 10 s for an answer, and a
//! network error, a timeout, 429 or 5xx is retried once, 1 s later; anything else (2xx, 3xx,
//! 4xx) is final. Each retry keeps the delivery id and is signed again with a fresh timestamp.

use std::fs;
use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anstyle::{AnsiColor, Style};
use bytes::Bytes;
use clap::Args;
use hookverify::time::OffsetDateTime;
use hookverify::{Clock, DeliveryId, HeaderNames, Method, Signer, SystemClock};
use http::{HeaderName, HeaderValue, StatusCode, header};

use crate::scheme::SchemeArgs;
use crate::{Failure, chaos, load, samples, secrets};

/// The event `send` delivers when given neither `--event` nor `--body`.
pub(crate) const DEFAULT_EVENT: &str = "webhook.test";

/// How much of an answer's body is shown, in characters.
const SNIPPET_CHARS: usize = 80;

/// How much of an answer's body is read before it is dropped: enough for any acknowledgement.
const MAX_ANSWER_READ: usize = 64 * 1024;

/// Sign and POST a delivery as the provider does: at least once, each attempt printed.
///
/// Each attempt waits --timeout-ms for an answer; a network error, a timeout, 429 or 5xx is
/// retried (--max-retries times, --backoff-ms apart), anything else is final. A retry keeps the
/// delivery id and is signed again with a fresh timestamp. Exit status 0 when the delivery was
/// finally answered 2xx, 1 otherwise, 2 on a usage error. Redirects are not followed (a 3xx is a
/// failed delivery, as for the provider) and proxy variables are ignored: the provider connects
/// to your URL directly.
///
/// With --count, a load generator: deliveries sent --concurrency at a time, a progress bar on a
/// terminal, then the final status counts and the latency of the attempts. With --chaos, a
/// conformance run against the receiver: see --chaos.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    /// The receiver's URL (http:// or https://)
    #[arg(value_name = "URL")]
    url: String,

    /// The secret to sign with, as SECRET or LABEL=SECRET (the label is ignored here)
    /// [env: HOOKVERIFY_SECRET], read as --scheme says: for standard_webhooks, whsec_… signs v1
    /// and whsk_… (an Ed25519 seed) signs v1a; none takes no secret. Prefer the environment
    /// variable: arguments are visible to other local users.
    #[arg(long, value_name = "[LABEL=]SECRET")]
    secret: Option<String>,

    #[command(flatten)]
    scheme: SchemeArgs,

    /// Send a sample body of this event type, one of the provider's 20 names (agent.created, …,
    /// webhook.test), fresh ids in each delivery [default: webhook.test]
    #[arg(long, value_name = "NAME", value_parser = samples::parse_event, conflicts_with = "body")]
    event: Option<String>,

    /// Send this file as the body, byte for byte
    #[arg(long, value_name = "PATH")]
    body: Option<PathBuf>,

    /// The delivery id, 1 to 256 visible ASCII characters; with --count, every delivery gets it
    /// [default: a random `dlv_…` id per delivery, kept across its retries]
    #[arg(long, value_name = "ID")]
    id: Option<String>,

    /// How long an attempt waits for its answer, in milliseconds; later counts as a network
    /// error and is retried. With --chaos, the deadline of `answers_within_timeout`. 1000-30000
    #[arg(
        long,
        default_value_t = 10_000,
        value_name = "MS",
        value_parser = clap::value_parser!(u64).range(1_000..=30_000)
    )]
    timeout_ms: u64,

    /// Retries after the first attempt (on a network error, a timeout, 429 or 5xx). 0-10
    /// [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=10))]
    max_retries: Option<u32>,

    /// Milliseconds between an attempt's failure and its retry. 0-60000 [default: 1000]
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=60_000))]
    backoff_ms: Option<u64>,

    /// Deliveries to send, each with its own id and retries; more than one prints a summary
    /// (final status counts, latency per attempt) instead of every attempt. 1-10000000
    /// [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    count: Option<u64>,

    /// Deliveries in flight at once, with --count. 1-1024 [default: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    concurrency: Option<u32>,

    /// Run the conformance checks against the receiver instead: a valid delivery, duplicates
    /// (one after the other and 20 at once), a tampered body, a wrong secret, no signature, a
    /// stale and a future timestamp, a replay under a fresh id, a body over --max-body, and
    /// every answer within --timeout-ms. Prints a report; exit status 1 when any check fails.
    /// Each check is one attempt, never retried; an answer later than the timeout is still
    /// awaited (up to twice the timeout) so that its status is judged too
    #[arg(long, conflicts_with_all = ["body", "id", "max_retries", "backoff_ms", "count", "concurrency"])]
    chaos: bool,

    /// With --chaos: the receiver's tolerance in seconds; the stale and future deliveries are
    /// twice that away from now. 1-86400 [default: 300]
    #[arg(long, value_name = "SECONDS", requires = "chaos",
          value_parser = clap::value_parser!(u32).range(1..=86_400))]
    tolerance: Option<u32>,

    /// With --chaos: the receiver's body limit in bytes; the oversized delivery is one byte
    /// over it. 1-268435456 [default: 1048576]
    #[arg(long, value_name = "BYTES", requires = "chaos",
          value_parser = clap::value_parser!(u64).range(1..=268_435_456))]
    max_body: Option<u64>,

    /// With --chaos: print the report as one JSON object (`checks`: [{name, ok, detail}],
    /// `passed`, `failed`)
    #[arg(long, requires = "chaos")]
    json: bool,
}

/// What each delivery's body is.
#[derive(Debug, Clone)]
pub(crate) enum BodySource {
    /// A fresh sample of this event for each delivery.
    Event(String),
    /// These bytes, for every delivery.
    File(Bytes),
}

impl BodySource {
    /// The body of the next delivery.
    pub(crate) fn next(&self) -> Result<Bytes, String> {
        match self {
            Self::Event(event) => samples::sample(event, now()).map(Bytes::from),
            Self::File(bytes) => Ok(bytes.clone()),
        }
    }

    /// How the body is named in the output.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Event(event) => event.clone(),
            Self::File(_) => "--body".into(),
        }
    }
}

/// How the provider retries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub(crate) timeout: Duration,
    pub(crate) max_retries: u32,
    pub(crate) backoff: Duration,
}

pub(crate) fn run(args: SendArgs) -> Result<(), Failure> {
    let usage = |message: String| Failure::usage("send", message);
    let url = parse_url(&args.url).map_err(usage)?;
    let flags: Vec<String> = args.secret.into_iter().collect();
    let method = args.scheme.scheme;
    let secret = secrets::signing(&flags, method).map_err(usage)?;
    let signer = Signing::new(method, secret, args.scheme.header_names().map_err(usage)?)
        .map_err(|error| usage(error.to_string()))?;
    if let Some(id) = &args.id {
        DeliveryId::parse(id.as_bytes()).map_err(|reason| usage(format!("--id: {reason}")))?;
    }
    let source = match &args.body {
        Some(path) => BodySource::File(Bytes::from(fs::read(path).map_err(|error| {
            Failure::runtime(format!("could not read {}: {error}", path.display()))
        })?)),
        None => BodySource::Event(args.event.clone().unwrap_or_else(|| DEFAULT_EVENT.into())),
    };
    let timeout = Duration::from_millis(args.timeout_ms);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::runtime(format!("could not start the runtime: {error}")))?;
    let target = Target::new(url)?;

    if args.chaos {
        let event = args.event.unwrap_or_else(|| DEFAULT_EVENT.into());
        let config = chaos::Config {
            tolerance: args.tolerance.unwrap_or(300),
            max_body: args.max_body.unwrap_or(1024 * 1024),
            timeout,
            event,
            json: args.json,
        };
        return runtime.block_on(chaos::run(&target, &signer, &config));
    }

    let policy = Policy {
        timeout,
        max_retries: args.max_retries.unwrap_or(1),
        backoff: Duration::from_millis(args.backoff_ms.unwrap_or(1_000)),
    };
    let count = args.count.unwrap_or(1);
    if count > 1 {
        let plan = load::Plan {
            count,
            concurrency: args.concurrency.unwrap_or(1),
            id: args.id,
            source,
            policy,
        };
        return runtime.block_on(load::run(target, signer, plan));
    }
    let id = match args.id {
        Some(id) => id,
        None => new_delivery_id().map_err(Failure::runtime)?,
    };
    runtime.block_on(send_one(&target, &signer, policy, &id, &source))
}

/// The receiver's URL: absolute, http or https, with a host.
fn parse_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text).map_err(|error| format!("URL {text:?}: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(format!(
            "URL {text:?}: expected http://HOST[:PORT]/PATH or https://…"
        ));
    }
    Ok(url)
}

/// A fresh random delivery id, as the provider makes them.
pub(crate) fn new_delivery_id() -> Result<String, String> {
    Ok(format!("dlv_{}", secrets::random_hex(16)?))
}

/// The current time: the one place `send` reads the wall clock.
pub(crate) fn now() -> OffsetDateTime {
    SystemClock.now()
}

/// A timestamp header value `offset_seconds` from now, in Unix seconds as the provider sends it.
pub(crate) fn timestamp(offset_seconds: i64) -> String {
    now()
        .unix_timestamp()
        .saturating_add(offset_seconds)
        .to_string()
}

/// How `send` signs: the signer, its method, and the header names it writes.
#[derive(Debug)]
pub(crate) struct Signing {
    signer: Signer,
    method: Method,
    names: HeaderNames,
}

impl Signing {
    /// A signer for `method` keyed with `secret` (empty for `none`), writing `names` or the
    /// method's own.
    pub(crate) fn new(
        method: Method,
        secret: impl Into<Vec<u8>>,
        names: Option<HeaderNames>,
    ) -> Result<Self, hookverify::ConfigError> {
        let names = names.unwrap_or_else(|| method.default_header_names());
        let signer = Signer::for_method(method, secret)?.header_names(names.clone());
        Ok(Self {
            signer,
            method,
            names,
        })
    }

    /// The same method and header names with another secret.
    pub(crate) fn with_secret(
        &self,
        secret: impl Into<Vec<u8>>,
    ) -> Result<Self, hookverify::ConfigError> {
        Self::new(self.method, secret, Some(self.names.clone()))
    }

    /// The signing method.
    pub(crate) fn method(&self) -> Method {
        self.method
    }

    /// Whether the signer signs with an Ed25519 key (Standard Webhooks' `v1a`).
    pub(crate) fn is_ed25519(&self) -> bool {
        self.signer.public_key().is_some()
    }
}

/// The headers of one signed attempt.
#[derive(Debug, Clone)]
pub(crate) struct SignedPairs {
    pairs: Vec<(HeaderName, HeaderValue)>,
    /// Which pair carries the signature, if the method sends one (all but `none`).
    signature: Option<usize>,
    /// Which pair carries the delivery id, if the method sends one (all but Stripe and Slack).
    delivery_id: Option<usize>,
}

impl SignedPairs {
    /// Every header, in the signer's order.
    pub(crate) fn pairs(&self) -> &[(HeaderName, HeaderValue)] {
        &self.pairs
    }

    /// Every header but the signature.
    pub(crate) fn without_signature(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut pairs = self.pairs.clone();
        if let Some(index) = self.signature {
            pairs.remove(index);
        }
        pairs
    }

    /// The same headers under another delivery id, or `None` when the method sends no delivery
    /// id header.
    pub(crate) fn with_delivery_id(
        &self,
        id: &str,
    ) -> Result<Option<Vec<(HeaderName, HeaderValue)>>, String> {
        let Some(index) = self.delivery_id else {
            return Ok(None);
        };
        let mut pairs = self.pairs.clone();
        pairs[index].1 =
            HeaderValue::from_str(id).map_err(|error| format!("delivery id: {error}"))?;
        Ok(Some(pairs))
    }
}

/// The headers the provider sends for `body` as delivery `id` signed at `timestamp`.
///
/// Every request `send` makes is signed here and nowhere else. Methods without a delivery id
/// (Stripe, Slack) or a timestamp ignore the ones given; `none` sends no signature.
pub(crate) fn sign(
    signing: &Signing,
    body: &[u8],
    id: &str,
    timestamp: &str,
) -> Result<SignedPairs, String> {
    let signed = signing.signer.sign_with_timestamp(id, timestamp, body);
    let (mut signature, mut delivery_id) = (None, None);
    let mut pairs = Vec::with_capacity(3);
    for (index, (name, value)) in signed.pairs().enumerate() {
        let is_signature = signing.method != Method::None && *name == signing.names.signature;
        if is_signature {
            signature = Some(index);
        } else if signing.names.delivery_id.as_ref() == Some(name) {
            delivery_id = Some(index);
        }
        let mut header =
            HeaderValue::from_str(value).map_err(|error| format!("header {name}: {error}"))?;
        header.set_sensitive(is_signature);
        pairs.push((name.clone(), header));
    }
    Ok(SignedPairs {
        pairs,
        signature,
        delivery_id,
    })
}

/// Where deliveries go, and the client that takes them there.
///
/// The client is `reqwest` rather than hyper-util's lower-level client (already in the tree for
/// the tests): a well-kept client on the same hyper, with the two things `send` needs that the
/// other lacks out of the box, a timeout per request covering connect, send and the answer's
/// body, and HTTPS (rustls, with the platform's roots) so that deployed receivers can be tried
/// too. Only its `rustls` feature is on: HTTP/1.1, what providers speak to webhooks.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    client: reqwest::Client,
    url: reqwest::Url,
}

impl Target {
    fn new(url: reqwest::Url) -> Result<Self, Failure> {
        let client = reqwest::Client::builder()
            // A provider neither follows redirects nor goes through the sender's proxy.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("hookverify-send/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                Failure::runtime(format!("could not set up the HTTP client: {error}"))
            })?;
        Ok(Self { client, url })
    }

    /// The receiver's URL.
    pub(crate) fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// One POST, waiting at most `timeout` for the whole answer.
    pub(crate) async fn post(
        &self,
        headers: &[(HeaderName, HeaderValue)],
        body: Bytes,
        timeout: Duration,
    ) -> Attempt {
        let started = Instant::now();
        let mut request = self
            .client
            .post(self.url.clone())
            .timeout(timeout)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name.clone(), value.clone());
        }
        let outcome = match request.send().await {
            Ok(response) => read_answer(response).await,
            Err(error) if error.is_timeout() => Outcome::TimedOut,
            Err(error) => Outcome::Failed(error_text(&error)),
        };
        Attempt {
            outcome,
            latency: started.elapsed(),
        }
    }
}

/// The status and the start of the body, read up to [`MAX_ANSWER_READ`].
async fn read_answer(mut response: reqwest::Response) -> Outcome {
    let status = response.status();
    let mut start = Vec::new();
    let mut read = 0;
    while read < MAX_ANSWER_READ {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = (SNIPPET_CHARS * 4).saturating_sub(start.len());
                start.extend_from_slice(&chunk[..chunk.len().min(room)]);
                read += chunk.len();
            }
            Ok(None) => break,
            Err(error) if error.is_timeout() => return Outcome::TimedOut,
            // The status arrived: a body cut short changes nothing for the provider.
            Err(_) => break,
        }
    }
    Outcome::Answered {
        status,
        body: snippet(&start),
    }
}

/// The body's start as one short printable line.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(SNIPPET_CHARS)
        .collect();
    if text.chars().count() > SNIPPET_CHARS {
        line.push('…');
    }
    line.trim().to_owned()
}

/// A client error in a few words: what failed and its innermost cause (the URL, printed
/// already, left out).
fn error_text(error: &reqwest::Error) -> String {
    let mut cause = None;
    let mut next = std::error::Error::source(error);
    while let Some(source) = next {
        cause = Some(source.to_string());
        next = source.source();
    }
    let kind = if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    match cause {
        Some(cause) => format!("{kind}: {cause}"),
        None => kind.to_owned(),
    }
}

/// What one attempt got.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// An answer: its status and the start of its body.
    Answered { status: StatusCode, body: String },
    /// No complete answer within the timeout.
    TimedOut,
    /// No answer: a network error.
    Failed(String),
}

impl Outcome {
    /// The status, if there was an answer.
    pub(crate) fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Answered { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Answered 2xx: delivered.
    pub(crate) fn is_success(&self) -> bool {
        self.status().is_some_and(|status| status.is_success())
    }

    /// What the provider retries: no answer, 429, 5xx.
    pub(crate) fn is_retryable(&self) -> bool {
        self.status().is_none_or(|status| {
            status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
        })
    }

    /// In a sentence: the status code, `no answer in time` or `no answer (network error)`.
    pub(crate) fn summary(&self) -> String {
        match self {
            Self::Answered { status, .. } => status.as_u16().to_string(),
            Self::TimedOut => "no answer in time".into(),
            Self::Failed(_) => "no answer (network error)".into(),
        }
    }

    /// The key a summary counts this outcome under: the status code, `timeout` or `error`.
    pub(crate) fn key(&self) -> String {
        match self {
            Self::Answered { status, .. } => status.as_u16().to_string(),
            Self::TimedOut => "timeout".into(),
            Self::Failed(_) => "error".into(),
        }
    }
}

/// One attempt: what it got, and how long it took to get it.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    pub(crate) outcome: Outcome,
    pub(crate) latency: Duration,
}

impl Attempt {
    /// One line: `200 OK "ok" in 1.2 ms`, `no answer within 10.00 s`, `no answer: … after 0.3 ms`.
    pub(crate) fn describe(&self) -> String {
        let latency = human(self.latency);
        match &self.outcome {
            Outcome::Answered { status, body } if body.is_empty() => {
                format!("{status} in {latency}")
            }
            Outcome::Answered { status, body } => format!("{status} {body:?} in {latency}"),
            Outcome::TimedOut => format!("no answer within {latency}"),
            Outcome::Failed(error) => format!("no answer: {error} (after {latency})"),
        }
    }
}

/// `1.2 ms`, `3.40 s`.
pub(crate) fn human(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{:.1} ms", duration.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}

/// Delivers `body` as `id` at least once: attempts until one is final or the retries are spent,
/// each signed afresh. `report` is told of each attempt, with the pause before the retry if one
/// follows.
pub(crate) async fn deliver(
    target: &Target,
    signer: &Signing,
    policy: Policy,
    id: &str,
    body: Bytes,
    mut report: impl FnMut(u32, &Attempt, Option<Duration>),
) -> Result<Vec<Attempt>, String> {
    let mut attempts = Vec::new();
    for number in 1..=policy.max_retries.saturating_add(1) {
        let headers = sign(signer, &body, id, &timestamp(0))?;
        let attempt = target
            .post(headers.pairs(), body.clone(), policy.timeout)
            .await;
        let retry = number <= policy.max_retries && attempt.outcome.is_retryable();
        report(number, &attempt, retry.then_some(policy.backoff));
        attempts.push(attempt);
        if !retry {
            break;
        }
        tokio::time::sleep(policy.backoff).await;
    }
    Ok(attempts)
}

/// The style of a status: green for 2xx, yellow for what is retried, red for the rest.
pub(crate) fn status_style(outcome: &Outcome) -> Style {
    let color = if outcome.is_success() {
        AnsiColor::Green
    } else if outcome.is_retryable() {
        AnsiColor::Yellow
    } else {
        AnsiColor::Red
    };
    Style::new().fg_color(Some(color.into()))
}

/// One delivery, every attempt printed on stdout.
async fn send_one(
    target: &Target,
    signer: &Signing,
    policy: Policy,
    id: &str,
    source: &BodySource,
) -> Result<(), Failure> {
    let body = source.next().map_err(Failure::runtime)?;
    anstream::println!(
        "POST {} delivery {id} ({}, {} bytes)",
        target.url(),
        source.describe(),
        body.len()
    );
    let attempts = deliver(
        target,
        signer,
        policy,
        id,
        body,
        |number, attempt, retry| {
            let style = status_style(&attempt.outcome);
            let then = retry.map_or_else(String::new, |pause| {
                format!("; retrying in {}", human(pause))
            });
            anstream::println!(
                "attempt {number}: {style}{}{style:#}{then}",
                attempt.describe()
            );
        },
    )
    .await
    .map_err(Failure::runtime)?;
    let tries = match attempts.len() {
        1 => "1 attempt".to_owned(),
        n => format!("{n} attempts"),
    };
    match attempts.last() {
        Some(last) if last.outcome.is_success() => {
            let status = last.outcome.summary();
            anstream::println!("delivered: {status} after {tries}");
            Ok(())
        }
        Some(last) => {
            let why = if last.outcome.is_retryable() {
                "retries spent"
            } else {
                "not retried"
            };
            Err(Failure::runtime(format!(
                "not delivered: {} after {tries} ({why})",
                last.outcome.summary()
            )))
        }
        None => Err(Failure::runtime("no attempt was made")),
    }
}

/// Whether stderr is a terminal (for the progress bar).
pub(crate) fn stderr_is_terminal() -> bool {
    io::stderr().is_terminal()
}
