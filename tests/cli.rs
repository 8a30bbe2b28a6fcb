//! The `hookverify` binary, run as a child process and spoken to over real TCP on 127.0.0.1.
//!
//! Nothing here sleeps: every wait is a blocking read of the child's pipes, bounded by
//! [`TIMEOUT`] so that a broken binary fails the test instead of hanging it. The child reads the
//! system clock, so the requests are signed on the system clock too.
#![cfg(feature = "cli")]

#[path = "common/child.rs"]
mod child;
#[path = "common/serve.rs"]
mod serve;

use std::net::TcpListener;

use hookverify::{Signer, Verifier};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde_json::Value;

use child::{command, run};
use serve::Serve;

const SECRET: &str = "whsec_cli_test_secret";
const OLD_SECRET: &str = "whsec_cli_test_old";

fn signed(secret: &str, id: &str, body: &[u8]) -> HeaderMap {
    Signer::new(secret)
        .expect("a signer")
        .sign(id, body)
        .header_map()
        .expect("valid headers")
}

fn now() -> i64 {
    hookverify::time::OffsetDateTime::now_utc().unix_timestamp()
}

fn rfc3339(unix: &str) -> String {
    let unix = unix.parse().expect("unix seconds");
    hookverify::time::OffsetDateTime::from_unix_timestamp(unix)
        .expect("in range")
        .format(&hookverify::time::format_description::well_known::Rfc3339)
        .expect("formats")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_every_row_and_prints_one_line_per_delivery() {
    let secret = format!("test={SECRET}");
    let old = format!("old={OLD_SECRET}");
    let server = Serve::start(
        &["--secret", &secret, "--secret", &old, "--max-body", "256"],
        &[],
    );

    // A valid delivery: 200 and one line.
    let body = br#"{"type":"run.finished","data":{"type":"inner"}}"#;
    let headers = signed(SECRET, "dlv_first", body);
    let timestamp = headers["x-agent-timestamp"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(
        server.post("/", headers.clone(), body).await,
        (StatusCode::OK, "ok".into())
    );
    let line = server.next_delivery();
    assert_eq!(line["delivery_id"], "dlv_first");
    assert_eq!(line["secret"], "test");
    assert_eq!(line["bytes"], body.len());
    assert_eq!(line["event"], "run.finished");
    assert_eq!(line["timestamp"], rfc3339(&timestamp));
    assert_eq!(line["path"], "/");

    // The same delivery again: 200, handler not run.
    assert_eq!(
        server.post("/", headers, body).await,
        (StatusCode::OK, "duplicate".into())
    );

    // Refusals print nothing either.
    let other = b"not json";
    assert_eq!(
        server
            .post("/", signed("whsec_wrong", "dlv_bad", other), other)
            .await,
        (StatusCode::UNAUTHORIZED, "signature_mismatch".into())
    );
    let stale = Signer::new(SECRET).expect("a signer").sign_with_timestamp(
        "dlv_stale",
        &(now() - 3600).to_string(),
        other,
    );
    assert_eq!(
        server
            .post("/", stale.header_map().expect("valid"), other)
            .await,
        (
            StatusCode::UNAUTHORIZED,
            "timestamp_out_of_tolerance".into()
        )
    );
    let mut missing = signed(SECRET, "dlv_missing", other);
    missing.remove("x-agent-signature");
    assert_eq!(
        server.post("/", missing, other).await,
        (StatusCode::BAD_REQUEST, "missing_header".into())
    );
    let mut no_id = signed(SECRET, "dlv_no_id", other);
    no_id.remove("x-agent-delivery-id");
    assert_eq!(
        server.post("/", no_id, other).await.0,
        StatusCode::BAD_REQUEST
    );
    let big = vec![b'x'; 257];
    assert_eq!(
        server
            .post("/", signed(SECRET, "dlv_big", &big), &big)
            .await,
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large".into())
    );
    assert_eq!(
        server
            .request(
                Method::GET,
                &server.url("/"),
                signed(SECRET, "dlv_get", b""),
                b""
            )
            .await
            .0,
        StatusCode::METHOD_NOT_ALLOWED
    );

    // The next line is the next delivery: nothing was printed in between. Any path is accepted;
    // the old secret still verifies and is named; a non-JSON body has no event.
    let at_limit = vec![b'y'; 256];
    assert_eq!(
        server
            .post(
                "/hooks/agent",
                signed(OLD_SECRET, "dlv_second", &at_limit),
                &at_limit
            )
            .await,
        (StatusCode::OK, "ok".into())
    );
    let line = server.next_delivery();
    assert_eq!(line["delivery_id"], "dlv_second");
    assert_eq!(line["secret"], "old");
    assert_eq!(line["bytes"], 256);
    assert_eq!(line["event"], Value::Null);
    assert_eq!(line["path"], "/hooks/agent");

    let (status, rest, stderr) = server.terminate();
    assert!(status.success(), "{status:?}: {stderr:?}");
    assert_eq!(rest, Vec::<String>::new(), "lines after the last delivery");
    let stderr = stderr.join("\n");
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains(SECRET), "the secret was logged: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_a_path_takes_only_that_path() {
    let secret = format!("test={SECRET}");
    let server = Serve::start(&["--secret", &secret, "--path", "/webhooks"], &[]);
    let body = br#"{"type":1}"#;
    assert_eq!(
        server
            .post("/other", signed(SECRET, "dlv_a", body), body)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server
            .post("/webhooks", signed(SECRET, "dlv_b", body), body)
            .await,
        (StatusCode::OK, "ok".into())
    );
    let line = server.next_delivery();
    assert_eq!(line["delivery_id"], "dlv_b");
    // `type` is there but not a string.
    assert_eq!(line["event"], Value::Null);
    let (status, rest, _) = server.terminate();
    assert!(status.success());
    assert!(rest.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_without_a_secret_generates_one_and_prints_a_round_trip() {
    let server = Serve::start(&[], &[]);
    let banner = server.banner.join("\n");
    let secrets: Vec<&str> = banner
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|word| word.starts_with("whsec_"))
        .collect();
    assert!(!secrets.is_empty(), "no generated secret in {banner}");
    assert!(secrets.iter().all(|s| *s == secrets[0]), "{banner}");
    let secret = secrets[0];
    assert_eq!(secret.len(), "whsec_".len() + 64);
    assert!(
        banner.contains("sign --scheme hmac_sha256 --file body.json"),
        "{banner}"
    );
    assert!(
        banner.contains("curl -sS -H @- --data-binary @body.json"),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("http://{}/", server.addr)),
        "{banner}"
    );

    // The printed secret is the one in use, labelled `generated`.
    let body = br#"{"type":"ping"}"#;
    assert_eq!(
        server
            .post("/", signed(secret, "dlv_gen", body), body)
            .await,
        (StatusCode::OK, "ok".into())
    );
    assert_eq!(server.next_delivery()["secret"], "generated");

    let (status, _, stderr) = server.terminate();
    assert!(status.success());
    assert!(
        !stderr.join("\n").contains(secret),
        "the secret is printed once, in the banner only"
    );
}

fn headers_from(output: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in output.lines() {
        let (name, value) = line.split_once(": ").expect("`Name: value`");
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_str(value).expect("a header value"),
        );
    }
    headers
}

#[test]
fn sign_prints_headers_that_verify() {
    let body = br#"{"type":"run.started"}"#;
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-sign-body.json");
    std::fs::write(&path, body).expect("write the body");
    let path = path.to_str().expect("a UTF-8 path");

    // From a file, `LABEL=SECRET` (the label is ignored), a chosen id, the current time.
    let secret = format!("current={SECRET}");
    let args = [
        "sign", "--secret", &secret, "--id", "dlv_42", "--file", path,
    ];
    let (status, out, err) = run(command(&args), None);
    assert!(status.success(), "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    let headers = headers_from(&out);
    let verifier = Verifier::builder()
        .secret("current", SECRET)
        .build()
        .expect("a verifier");
    let verified = verifier.verify(&headers, body).expect("verifies");
    assert_eq!(verified.delivery_id(), Some("dlv_42"));
    assert!(
        verifier.verify(&headers, b"{}").is_err(),
        "bound to the body"
    );

    // From stdin, the secret from the environment, a given timestamp, a random id.
    let mut command = command(&["sign", "--timestamp", "1764000000"]);
    command.env("HOOKVERIFY_SECRET", SECRET);
    let (status, out, err) = run(command, Some(body));
    assert!(status.success(), "{err}");
    let headers = headers_from(&out);
    assert_eq!(headers["x-agent-timestamp"], "1764000000");
    assert!(
        headers["x-agent-delivery-id"]
            .to_str()
            .expect("ascii")
            .starts_with("dlv_")
    );
    let clock = hookverify::ManualClock::from_unix(1_764_000_000).expect("in range");
    let verifier = Verifier::builder()
        .secret("current", SECRET)
        .clock(clock)
        .build()
        .expect("a verifier");
    verifier.verify(&headers, body).expect("verifies");
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        (&["serve", "--secret", ""], None, "empty"),
        (&["serve", "--secret", "c2VjcmV0cw=="], None, "label"),
        (&["serve", "--secret", "a b=c"], None, "label"),
        (
            &["serve", "--secret", "x=1", "--secret", "x=2"],
            None,
            "labelled",
        ),
        (&["serve"], Some(""), "HOOKVERIFY_SECRET is empty"),
        (&["serve", "--addr", "localhost"], None, "--addr"),
        (&["serve", "--store", "mysql://user:pw@db"], None, "memory"),
        (&["serve", "--path", "webhooks"], None, "--path"),
        (&["serve", "--capacity", "0"], None, "--capacity"),
        // One delivery takes two keys: a capacity of one would forget every claim at once.
        (
            &["serve", "--addr", "127.0.0.1:0", "--capacity", "1"],
            None,
            "--capacity",
        ),
        (&["serve", "--tolerance=-5"], None, "--tolerance"),
        (&["sign", "--file", "/dev/null"], None, "no secret"),
        (
            &["sign", "--secret", "s", "--id", "has space"],
            None,
            "--id",
        ),
        (
            &["sign", "--secret", "s", "--file", "/nonexistent/body"],
            None,
            "could not read",
        ),
    ];
    for (args, env, expected) in cases {
        let mut command = command(args);
        if let Some(value) = env {
            command.env("HOOKVERIFY_SECRET", value);
        }
        let (status, out, err) = run(command, None);
        assert!(!status.success(), "{args:?} succeeded");
        assert!(matches!(status.code(), Some(1 | 2)), "{args:?}: {status:?}");
        assert!(out.is_empty(), "{args:?} printed {out:?}");
        assert!(err.contains("error"), "{args:?}: {err}");
        assert!(
            err.contains(expected),
            "{args:?}: expected {expected:?} in {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        for secret in ["c2VjcmV0cw", "pw@db"] {
            assert!(!err.contains(secret), "{args:?} echoed a secret: {err}");
        }
    }
}

#[test]
fn a_taken_port_is_an_error() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    let (status, _, err) = run(command(&["serve", "--addr", &addr, "--secret", "s"]), None);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("could not listen on"), "{err}");
}
