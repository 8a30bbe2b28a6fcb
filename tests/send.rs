//! `hookverify send` run as a child process against real receivers over TCP on 127.0.0.1:
//! `hookverify serve` (also a child), and small axum receivers written here, scripted or with one
//! flaw each.
//!
//! Every wait on a child is bounded by [`TIMEOUT`] (its pipes are read on threads). The only
//! clock in an assertion is the provider's 10 s rule itself, which one receiver here breaks on
//! purpose.
#![cfg(feature = "cli")]

#[path = "common/child.rs"]
mod child;
#[path = "common/serve.rs"]
mod serve;

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use futures_util::future::join_all;
use hookverify::events::EventName;
use hookverify::{MAX_TOLERANCE, Verifier};
use http::{HeaderMap, StatusCode};
use serde_json::Value;

use child::{KillOnDrop, drain, lines};
use serve::Serve;

const SECRET: &str = "whsec_send_test_secret";
const MIB: usize = 1024 * 1024;

/// The check names, in the order the report gives them.
const CHECKS: [&str; 11] = [
    "valid_accepted",
    "duplicate_acknowledged",
    "concurrent_duplicates",
    "tampered_body_rejected",
    "wrong_secret_rejected",
    "missing_signature_rejected",
    "stale_timestamp_rejected",
    "future_timestamp_rejected",
    "replay_new_id_acknowledged",
    "oversized_body_rejected",
    "answers_within_timeout",
];

/// The provider's event names, as the crate knows them (`tests/events.rs` checks their spelling).
fn events() -> Vec<&'static str> {
    EventName::KNOWN.iter().map(EventName::as_str).collect()
}

/// `hookverify ARGS` with `HOOKVERIFY_SECRET` set to [`SECRET`].
fn command(args: &[&str]) -> Command {
    let mut command = child::command(args);
    command.env("HOOKVERIFY_SECRET", SECRET);
    command
}

/// What a finished `send` left.
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    /// The lines that report an attempt.
    fn attempts(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|line| line.starts_with("attempt "))
            .collect()
    }
}

/// Runs `hookverify send ARGS` to its end, off the async workers (the receivers run there).
async fn send(args: &[&str]) -> Output {
    send_with(args, true).await
}

/// [`send`], with `HOOKVERIFY_SECRET` set (to [`SECRET`]) or not.
async fn send_with(args: &[&str], secret_env: bool) -> Output {
    let all: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        send_blocking(&args, secret_env)
    })
    .await
    .expect("the send task")
}

/// `hookverify send ARGS` run to its end on this thread.
fn send_blocking(args: &[&str], secret_env: bool) -> Output {
    let mut all = vec!["send"];
    all.extend_from_slice(args);
    let mut command = command(&all);
    if !secret_env {
        command.env_remove("HOOKVERIFY_SECRET");
    }
    let mut child = command.spawn().expect("spawn hookverify send");
    let stdout = lines(child.stdout.take().expect("stdout is piped"));
    let stderr = lines(child.stderr.take().expect("stderr is piped"));
    let guard = KillOnDrop(Some(child));
    let stdout = drain(&stdout, "stdout").join("\n");
    let stderr = drain(&stderr, "stderr").join("\n");
    Output {
        status: guard.wait(),
        stdout,
        stderr,
    }
}

/// `serve --secret test=SECRET`.
fn start_serve() -> Serve {
    let secret = format!("test={SECRET}");
    Serve::start(&["--secret", &secret], &[])
}

/// Serves `app` on a free loopback port for the rest of the test; returns its URL.
async fn spawn_receiver(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("the bound address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("the test receiver");
    });
    format!("http://{addr}/hooks")
}

fn verifier(tolerance: hookverify::time::Duration) -> Verifier {
    Verifier::builder()
        .secret("test", SECRET)
        .tolerance(tolerance)
        .build()
        .expect("a verifier")
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// send against serve

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_delivers_to_serve_and_prints_each_attempt() {
    let serve = start_serve();
    let out = send(&["--id", "dlv_send_one", &serve.url("/")]).await;
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.attempts().len(), 1, "{}", out.stdout);
    assert!(
        out.attempts()[0].starts_with("attempt 1: 200 OK"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("delivered: 200 after 1 attempt"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains('\x1b'),
        "colour on a pipe: {}",
        out.stdout
    );

    // Every sample event is a JSON envelope that `serve` verifies and names.
    for event in events() {
        let out = send(&["--event", event, &serve.url("/")]).await;
        assert!(
            out.status.success(),
            "{event}: {}\n{}",
            out.stdout,
            out.stderr
        );
    }

    let (status, deliveries) = serve.stop();
    assert!(status.success());
    assert_eq!(deliveries.len(), 1 + events().len());
    assert_eq!(deliveries[0]["delivery_id"], "dlv_send_one");
    assert_eq!(deliveries[0]["event"], "webhook.test");
    let named: Vec<&str> = deliveries[1..]
        .iter()
        .map(|d| d["event"].as_str().expect("an event type"))
        .collect();
    assert_eq!(named, events());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_with_a_count_is_a_load_generator_with_a_summary() {
    let serve = start_serve();
    let out = send(&["--count", "50", "--concurrency", "8", &serve.url("/")]).await;
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert!(out.attempts().is_empty(), "one summary, not every attempt");

    // `final status:` then `  KEY COUNT` lines.
    let mut counted = 0;
    let mut statuses = Vec::new();
    let mut in_table = false;
    for line in out.stdout.lines() {
        if line == "final status:" {
            in_table = true;
        } else if in_table && line.starts_with("  ") {
            let mut words = line.split_whitespace();
            let key = words.next().expect("a status").to_owned();
            let count: u64 = words.next().expect("a count").parse().expect("a number");
            counted += count;
            statuses.push(key);
        } else {
            in_table = false;
        }
    }
    assert_eq!(counted, 50, "{}", out.stdout);
    assert_eq!(statuses, ["200"], "{}", out.stdout);
    assert!(
        out.stdout.contains("50 delivered, 0 not delivered"),
        "{}",
        out.stdout
    );
    let latency = out
        .stdout
        .lines()
        .find(|line| line.starts_with("latency per attempt:"))
        .expect("a latency line");
    for part in ["p50 ", "p99 ", "max "] {
        assert!(latency.contains(part), "{latency}");
    }

    // Each delivery handled once.
    let (status, deliveries) = serve.stop();
    assert!(status.success());
    let ids: HashSet<&str> = deliveries
        .iter()
        .map(|d| d["delivery_id"].as_str().expect("an id"))
        .collect();
    assert_eq!((deliveries.len(), ids.len()), (50, 50));
}

// ---------------------------------------------------------------------------------------------
// retries against a scripted receiver

/// One request as the scripted receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    id: String,
    timestamp: String,
    signature: String,
    verified: bool,
}

/// Answers the statuses it was given, in order (then 200), and records each request.
struct Scripted {
    statuses: Mutex<VecDeque<u16>>,
    seen: Mutex<Vec<Seen>>,
    verifier: Verifier,
}

async fn scripted(
    State(state): State<Arc<Scripted>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let verified = state.verifier.verify(&headers, &body).is_ok();
    state.seen.lock().expect("not poisoned").push(Seen {
        id: header(&headers, "x-agent-delivery-id"),
        timestamp: header(&headers, "x-agent-timestamp"),
        signature: header(&headers, "x-agent-signature"),
        verified,
    });
    let next = state.statuses.lock().expect("not poisoned").pop_front();
    StatusCode::from_u16(next.unwrap_or(200)).expect("a status")
}

/// A receiver that answers `statuses` in turn, and what it saw.
async fn scripted_receiver(statuses: &[u16]) -> (String, Arc<Scripted>) {
    let state = Arc::new(Scripted {
        statuses: Mutex::new(statuses.iter().copied().collect()),
        seen: Mutex::new(Vec::new()),
        verifier: verifier(hookverify::DEFAULT_TOLERANCE),
    });
    let app = Router::new()
        .route("/hooks", post(scripted))
        .with_state(Arc::clone(&state));
    (spawn_receiver(app).await, state)
}

fn seen(state: &Scripted) -> Vec<Seen> {
    state.seen.lock().expect("not poisoned").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_retried_once_under_the_same_id_with_a_fresh_signature() {
    let (url, state) = scripted_receiver(&[503]).await;
    // The default backoff (1 s): the retry is signed at a later second.
    let out = send(&[&url]).await;
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    let attempts = out.attempts();
    assert_eq!(attempts.len(), 2, "{}", out.stdout);
    assert!(
        attempts[0].starts_with("attempt 1: 503 Service Unavailable"),
        "{}",
        out.stdout
    );
    assert!(
        attempts[0].ends_with("retrying in 1.00 s"),
        "{}",
        out.stdout
    );
    assert!(
        attempts[1].starts_with("attempt 2: 200 OK"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("delivered: 200 after 2 attempts"),
        "{}",
        out.stdout
    );

    let seen = seen(&state);
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.verified), "{seen:?}");
    assert_eq!(seen[0].id, seen[1].id, "the retry keeps the delivery id");
    assert!(seen[0].id.starts_with("dlv_"));
    let first: i64 = seen[0].timestamp.parse().expect("Unix seconds");
    let second: i64 = seen[1].timestamp.parse().expect("Unix seconds");
    assert!(second > first, "re-signed with a fresh timestamp: {seen:?}");
    assert_ne!(seen[0].signature, seen[1].signature);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_is_final() {
    let (url, state) = scripted_receiver(&[400]).await;
    let out = send(&["--id", "dlv_400", &url]).await;
    assert_eq!(out.status.code(), Some(1), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.attempts().len(), 1, "{}", out.stdout);
    assert!(out.attempts()[0].starts_with("attempt 1: 400 Bad Request"));
    assert!(
        out.stderr
            .contains("not delivered: 400 after 1 attempt (not retried)"),
        "{}",
        out.stderr
    );
    let seen = seen(&state);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].id, "dlv_400");
    assert!(seen[0].verified);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_500s_spend_the_one_retry() {
    let (url, state) = scripted_receiver(&[500, 500, 500]).await;
    let out = send(&["--backoff-ms", "100", &url]).await;
    assert_eq!(out.status.code(), Some(1), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.attempts().len(), 2, "{}", out.stdout);
    assert!(
        out.stderr
            .contains("not delivered: 500 after 2 attempts (retries spent)")
    );
    assert_eq!(
        seen(&state).len(),
        2,
        "exactly two attempts reached the receiver"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_retries_sets_the_attempts() {
    let (url, state) = scripted_receiver(&[503, 503, 503]).await;
    let out = send(&["--max-retries", "0", &url]).await;
    assert_eq!(out.status.code(), Some(1), "{}", out.stdout);
    assert_eq!(out.attempts().len(), 1, "{}", out.stdout);
    assert_eq!(seen(&state).len(), 1);

    // Three retries, two of them needed: 429 is retried like 5xx.
    let (url, state) = scripted_receiver(&[429, 503]).await;
    let out = send(&["--max-retries", "3", "--backoff-ms", "50", &url]).await;
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(out.attempts().len(), 3, "{}", out.stdout);
    let seen = seen(&state);
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.verified && s.id == seen[0].id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_error_is_retried_and_fails() {
    // A port that was free a moment ago: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let out = send(&["--backoff-ms", "10", &url]).await;
    assert_eq!(out.status.code(), Some(1));
    let attempts = out.attempts();
    assert_eq!(attempts.len(), 2, "{}", out.stdout);
    assert!(
        attempts
            .iter()
            .all(|a| a.contains("no answer: could not connect")),
        "{attempts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--timeout-ms", "999", "http://127.0.0.1:1/"],
            "--timeout-ms",
        ),
        (
            &["--timeout-ms", "30001", "http://127.0.0.1:1/"],
            "--timeout-ms",
        ),
        (
            &["--max-retries", "11", "http://127.0.0.1:1/"],
            "--max-retries",
        ),
        (&["--backoff-ms=-1", "http://127.0.0.1:1/"], "--backoff-ms"),
        (
            &["--backoff-ms", "60001", "http://127.0.0.1:1/"],
            "--backoff-ms",
        ),
        (
            &["--event", "thread.done", "http://127.0.0.1:1/"],
            "webhook.test",
        ),
        (&["--id", "has space", "http://127.0.0.1:1/"], "--id"),
        (&["ftp://127.0.0.1/", "--event", "webhook.test"], "URL"),
        (
            &["--chaos", "--count", "2", "http://127.0.0.1:1/"],
            "--count",
        ),
        (&["--tolerance", "5", "http://127.0.0.1:1/"], "--chaos"),
        (
            &["--chaos", "--tolerance", "0", "http://127.0.0.1:1/"],
            "--tolerance",
        ),
    ];
    for (args, expected) in cases {
        let out = send(args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(expected), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    }
    // The unknown event's message lists every name.
    let out = send(&["--event", "nope", "http://127.0.0.1:1/"]).await;
    for event in events() {
        assert!(
            out.stderr.contains(event),
            "{event} missing from {}",
            out.stderr
        );
    }
}

// ---------------------------------------------------------------------------------------------
// --chaos

/// The checks as reported by `--json`: name to (ok, detail), in order.
fn chaos_report(out: &Output) -> Vec<(String, bool, String)> {
    let report: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|error| panic!("{error}: {}\n{}", out.stdout, out.stderr));
    let checks: Vec<(String, bool, String)> = report["checks"]
        .as_array()
        .expect("a checks array")
        .iter()
        .map(|check| {
            (
                check["name"].as_str().expect("a name").to_owned(),
                check["ok"].as_bool().expect("ok is a bool"),
                check["detail"].as_str().expect("a detail").to_owned(),
            )
        })
        .collect();
    let names: Vec<&str> = checks.iter().map(|(name, _, _)| name.as_str()).collect();
    assert_eq!(names, CHECKS);
    let failed = checks.iter().filter(|(_, ok, _)| !ok).count();
    assert_eq!(report["failed"], failed);
    assert_eq!(report["passed"], CHECKS.len() - failed);
    checks
}

fn failed(checks: &[(String, bool, String)]) -> BTreeSet<&str> {
    checks
        .iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(name, _, _)| name.as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_against_serve_passes_every_check() {
    let serve = start_serve();
    let out = send(&["--chaos", "--json", &serve.url("/")]).await;
    let checks = chaos_report(&out);
    assert_eq!(failed(&checks), BTreeSet::new(), "{checks:#?}");
    assert!(out.status.success(), "{}", out.stderr);

    // The text report, plain on a pipe.
    let out = send(&["--chaos", "--event", "thread.completed", &serve.url("/")]).await;
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.contains('\x1b'), "{}", out.stdout);
    for name in CHECKS {
        assert!(
            out.stdout
                .lines()
                .any(|line| line.trim_start().starts_with("ok") && line.contains(name)),
            "{name}: {}",
            out.stdout
        );
    }
    assert!(
        out.stdout.contains("all 11 checks passed"),
        "{}",
        out.stdout
    );
    let (status, _) = serve.stop();
    assert!(status.success());
}

/// The secret `send` signs with and `serve` verifies with, for each method (`None` for
/// `none`); Standard Webhooks twice, HMAC (`v1`) and Ed25519 (`v1a`).
fn method_secrets() -> Vec<(&'static str, Option<String>, Option<String>)> {
    let seed = "whsk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let public_key = hookverify::Signer::for_method(hookverify::Method::StandardWebhooks, seed)
        .expect("an Ed25519 signer")
        .public_key()
        .expect("a public key");
    let same = |secret: &str| (Some(secret.to_owned()), Some(secret.to_owned()));
    let mut all = Vec::new();
    for (method, secrets) in [
        ("hmac_sha256", same(SECRET)),
        ("hmac_sha1", same(SECRET)),
        ("bearer", same(SECRET)),
        ("basic_auth", same("hookverify:send-test")),
        ("none", (None, None)),
        ("standard_webhooks", same("whsec_c2VuZCB0ZXN0IGtleSAxMjM0")),
        ("standard_webhooks", (Some(seed.into()), Some(public_key))),
        ("stripe", same(SECRET)),
        ("github", same(SECRET)),
        ("slack", same(SECRET)),
    ] {
        all.push((method, secrets.0, secrets.1));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_against_serve_passes_every_check_for_every_method() {
    // One `serve` and one `send --chaos` per method, a few methods at a time (on threads: the
    // children are waited for with blocking reads).
    let mut outputs = Vec::new();
    for batch in method_secrets().chunks(4) {
        let runs = batch.iter().cloned().map(|(method, signing, verifying)| {
            tokio::task::spawn_blocking(move || {
                let mut serve_args = vec!["--scheme".to_owned(), method.to_owned()];
                let mut send_args = vec!["--chaos", "--json", "--scheme", method]
                    .into_iter()
                    .map(str::to_owned)
                    .collect::<Vec<_>>();
                if let (Some(signing), Some(verifying)) = (signing, verifying) {
                    serve_args.extend(["--secret".into(), format!("test={verifying}")]);
                    send_args.extend(["--secret".into(), format!("test={signing}")]);
                }
                let serve_args: Vec<&str> = serve_args.iter().map(String::as_str).collect();
                let serve = Serve::start(&serve_args, &[]);
                send_args.push(serve.url("/"));
                let send_args: Vec<&str> = send_args.iter().map(String::as_str).collect();
                let out = send_blocking(&send_args, false);
                let (status, _) = serve.stop();
                assert!(status.success(), "{method}: serve exit");
                (method, out)
            })
        });
        outputs.extend(join_all(runs).await);
    }
    for run in outputs {
        let (method, out) = run.expect("the run");
        let checks = chaos_report(&out);
        assert_eq!(
            failed(&checks),
            BTreeSet::new(),
            "{method}: {checks:#?}\n{}",
            out.stderr
        );
        assert!(out.status.success(), "{method}: {}", out.stderr);

        // A check that cannot apply passes and says why.
        let detail = |name: &str| {
            checks
                .iter()
                .find(|(check, _, _)| check == name)
                .map(|(_, _, detail)| detail.clone())
                .expect("every check is reported")
        };
        let not_applicable = |name: &str| detail(name).starts_with("not applicable: ");
        let signs_timestamp = !matches!(method, "github" | "bearer" | "basic_auth" | "none");
        assert_eq!(
            not_applicable("stale_timestamp_rejected"),
            !signs_timestamp,
            "{method}"
        );
        assert_eq!(
            not_applicable("future_timestamp_rejected"),
            !signs_timestamp,
            "{method}"
        );
        if !signs_timestamp {
            assert!(
                detail("stale_timestamp_rejected").contains("signs no timestamp"),
                "{method}"
            );
        }
        let signs_body = !matches!(method, "bearer" | "basic_auth" | "none");
        assert_eq!(
            not_applicable("tampered_body_rejected"),
            !signs_body,
            "{method}"
        );
        let signed = method != "none";
        assert_eq!(not_applicable("wrong_secret_rejected"), !signed, "{method}");
        assert_eq!(
            not_applicable("missing_signature_rejected"),
            !signed,
            "{method}"
        );
        let unsigned_id = !matches!(method, "standard_webhooks" | "stripe" | "slack");
        assert_eq!(
            not_applicable("replay_new_id_acknowledged"),
            !unsigned_id,
            "{method}"
        );
        for name in [
            "valid_accepted",
            "duplicate_acknowledged",
            "concurrent_duplicates",
            "oversized_body_rejected",
            "answers_within_timeout",
        ] {
            assert!(!not_applicable(name), "{method}: {name}");
        }
        if signed {
            // A forgery was really sent, and refused with 401.
            assert!(
                detail("wrong_secret_rejected").starts_with("401"),
                "{method}: {}",
                detail("wrong_secret_rejected")
            );
        }

        // `none` passes, and says loudly what that means.
        let report: Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
        let warned = out.stderr.contains("accepts unsigned deliveries");
        assert_eq!(warned, method == "none", "{method}: {}", out.stderr);
        assert_eq!(
            report["warnings"].as_array().map(Vec::len),
            Some(usize::from(method == "none")),
            "{method}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_with_a_scheme_finds_a_receiver_on_another_secret() {
    // `send --scheme github` with one secret against `serve --scheme github` with another:
    // the valid deliveries are refused, the forgeries too.
    let serve = Serve::start(
        &["--scheme", "github", "--secret", "other=whsec_other"],
        &[],
    );
    let secret = format!("test={SECRET}");
    let out = send_with(
        &[
            "--chaos",
            "--json",
            "--scheme",
            "github",
            "--secret",
            &secret,
            &serve.url("/"),
        ],
        false,
    )
    .await;
    let checks = chaos_report(&out);
    assert_eq!(
        failed(&checks),
        BTreeSet::from([
            "valid_accepted",
            "duplicate_acknowledged",
            "concurrent_duplicates"
        ]),
        "{checks:#?}"
    );
    assert_eq!(out.status.code(), Some(1));
    drop(serve);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_signs_with_the_scheme_and_its_header_names() {
    let serve = Serve::start(
        &[
            "--scheme",
            "slack",
            "--secret",
            "test=whsec_slack",
            "--signature-header",
            "x-sig",
        ],
        &[],
    );
    let out = send_with(
        &[
            "--scheme",
            "slack",
            "--secret",
            "whsec_slack",
            "--signature-header",
            "x-sig",
            &serve.url("/"),
        ],
        false,
    )
    .await;
    assert!(out.status.success(), "{}\n{}", out.stdout, out.stderr);
    // `none` takes no secret, and refuses one.
    let out = send_with(&["--scheme", "none", "http://127.0.0.1:1/"], true).await;
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    let out = send_with(&["--scheme", "stripe", "http://127.0.0.1:1/"], false).await;
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("no secret"), "{}", out.stderr);
    let (status, deliveries) = serve.stop();
    assert!(status.success());
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["method"], "slack");
}

/// What is wrong with a test receiver (all false: a correct one).
#[derive(Debug, Default, Clone, Copy)]
struct Flaws {
    /// Skips the signature and timestamp checks.
    accepts_anything: bool,
    /// Checks the signature but not the timestamp.
    ignores_timestamp: bool,
    /// Answers 500 to a delivery id it has seen.
    duplicates_500: bool,
    /// Takes 12 s over its first request.
    slow_first: bool,
    /// Reads any body, however large.
    unlimited_body: bool,
}

struct Flawed {
    flaws: Flaws,
    verifier: Verifier,
    seen: Mutex<HashSet<String>>,
    first: AtomicBool,
}

async fn flawed(
    State(state): State<Arc<Flawed>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    if state.flaws.slow_first && state.first.swap(false, Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(12)).await;
    }
    if !state.flaws.accepts_anything
        && let Err(error) = state.verifier.verify(&headers, &body)
    {
        return (error.kind().status(), error.kind().as_str());
    }
    let id = header(&headers, "x-agent-delivery-id");
    let fresh = state.seen.lock().expect("not poisoned").insert(id);
    match (fresh, state.flaws.duplicates_500) {
        (true, _) => (StatusCode::OK, "ok"),
        (false, false) => (StatusCode::OK, "duplicate"),
        (false, true) => (StatusCode::INTERNAL_SERVER_ERROR, "already seen"),
    }
}

async fn flawed_receiver(flaws: Flaws) -> String {
    let tolerance = if flaws.ignores_timestamp {
        MAX_TOLERANCE
    } else {
        hookverify::DEFAULT_TOLERANCE
    };
    let state = Arc::new(Flawed {
        flaws,
        verifier: verifier(tolerance),
        seen: Mutex::new(HashSet::new()),
        first: AtomicBool::new(true),
    });
    let limit = if flaws.unlimited_body {
        DefaultBodyLimit::disable()
    } else {
        DefaultBodyLimit::max(MIB)
    };
    let app = Router::new()
        .route("/hooks", post(flawed))
        .layer(limit)
        .with_state(state);
    spawn_receiver(app).await
}

/// Runs `--chaos --json` against a receiver with `flaws`; asserts the exit status and that
/// exactly `expected` failed; returns the checks.
async fn chaos_finds(flaws: Flaws, expected: &[&str]) -> Vec<(String, bool, String)> {
    let url = flawed_receiver(flaws).await;
    let out = send(&["--chaos", "--json", &url]).await;
    let checks = chaos_report(&out);
    let expected: BTreeSet<&str> = expected.iter().copied().collect();
    assert_eq!(failed(&checks), expected, "{flaws:?}: {checks:#?}");
    let code = if expected.is_empty() { 0 } else { 1 };
    assert_eq!(out.status.code(), Some(code), "{flaws:?}: {}", out.stderr);
    checks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_passes_a_correct_test_receiver() {
    // The control: the flaws below are the only differences from this receiver.
    chaos_finds(Flaws::default(), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_finds_a_receiver_that_accepts_anything() {
    let flaws = Flaws {
        accepts_anything: true,
        ..Flaws::default()
    };
    let checks = chaos_finds(
        flaws,
        &[
            "tampered_body_rejected",
            "wrong_secret_rejected",
            "missing_signature_rejected",
            "stale_timestamp_rejected",
            "future_timestamp_rejected",
        ],
    )
    .await;
    let (_, _, detail) = &checks[3];
    assert!(detail.contains("was accepted: 200 OK"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_finds_a_receiver_that_ignores_the_timestamp() {
    let flaws = Flaws {
        ignores_timestamp: true,
        ..Flaws::default()
    };
    chaos_finds(
        flaws,
        &["stale_timestamp_rejected", "future_timestamp_rejected"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_finds_a_receiver_that_answers_duplicates_500() {
    let flaws = Flaws {
        duplicates_500: true,
        ..Flaws::default()
    };
    // The 20 concurrent copies are duplicates too: all but the first get the 500.
    let checks = chaos_finds(flaws, &["duplicate_acknowledged", "concurrent_duplicates"]).await;
    let (_, _, detail) = &checks[1];
    assert!(detail.contains("500 Internal Server Error"), "{detail}");
    let (_, _, detail) = &checks[2];
    assert!(detail.contains("200 x1, 500 x19"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_finds_a_receiver_that_takes_12_seconds() {
    let flaws = Flaws {
        slow_first: true,
        ..Flaws::default()
    };
    let checks = chaos_finds(flaws, &["answers_within_timeout"]).await;
    let (_, _, detail) = &checks[10];
    assert!(
        detail.starts_with("1 of 29 requests unanswered after 10.00 s"),
        "{detail}"
    );
    assert!(detail.contains("valid_accepted: 200 OK"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_finds_a_receiver_that_buffers_any_body() {
    let flaws = Flaws {
        unlimited_body: true,
        ..Flaws::default()
    };
    let checks = chaos_finds(flaws, &["oversized_body_rejected"]).await;
    let (_, _, detail) = &checks[9];
    assert!(
        detail.contains("a body of 1048577 bytes (over the 1048576-byte limit) was accepted"),
        "{detail}"
    );
}
