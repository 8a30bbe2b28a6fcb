//! `hookverify serve --scheme NAME` and `hookverify sign --scheme NAME` for every signing method,
//! run as child processes and spoken to over real TCP on 127.0.0.1.
//!
//! For each method: the method's credential through `--secret`; a valid delivery signed with the
//! crate's `Signer` and one signed by `hookverify sign`, each answered 200 with one JSON line of
//! the same shape; a forged one (401), a stale one where there is a timestamp (401), a duplicate
//! (200, no second line) and a replay (as the method allows). Then the command line's refusals:
//! an empty secret, a secret of the wrong form, a secret given to `none`.
//!
//! Nothing here sleeps: every wait is a blocking read of the child's pipes, bounded by
//! [`TIMEOUT`]. The child reads the system clock, so the requests are signed on it too.
#![cfg(feature = "cli")]

#[path = "common/child.rs"]
mod child;
#[path = "common/serve.rs"]
mod serve;

use std::collections::BTreeSet;

use hookverify::{Method, Signer};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::Value;

use child::{command, run};
use serve::Serve;

/// An Ed25519 seed, to sign Standard Webhooks `v1a`, and another whose signatures are refused.
const ED25519_SEED: &str = "whsk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const ED25519_OTHER_SEED: &str = "whsk_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";

/// The fields of every JSON line, whatever the method.
const FIELDS: [&str; 7] = [
    "bytes",
    "delivery_id",
    "event",
    "method",
    "path",
    "secret",
    "timestamp",
];

/// `hookverify serve ARGS`, once it listens.
fn start(args: &[String]) -> Serve {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Serve::start(&args, &[])
}

/// One method's credentials on both sides.
struct Case {
    /// The `--secret` values given to `serve`.
    serve_secrets: Vec<String>,
    /// Signing keys of genuine deliveries, each with the label `serve` reports for it.
    keys: Vec<(&'static str, &'static str)>,
    /// Signing keys of the same form but wrong.
    impostors: Vec<&'static str>,
}

fn case(method: Method) -> Case {
    let one = |secret: &'static str, wrong: &'static str| Case {
        serve_secrets: vec![format!("current={secret}")],
        keys: vec![(secret, "current")],
        impostors: vec![wrong],
    };
    match method {
        Method::HmacSha256 | Method::HmacSha1 => one("whsec_cli_agent", "whsec_cli_other"),
        // Unlabelled: `serve` names it by its position.
        Method::Bearer => Case {
            serve_secrets: vec!["tok_cli_bearer_0123456789".into()],
            keys: vec![("tok_cli_bearer_0123456789", "1")],
            impostors: vec!["tok_cli_bearer_0123456780"],
        },
        Method::BasicAuth => one("hooks:correct-horse", "hooks:battery-staple"),
        Method::None => Case {
            serve_secrets: Vec::new(),
            keys: vec![("", "unsigned")],
            impostors: Vec::new(),
        },
        Method::StandardWebhooks => {
            let public_key = Signer::for_method(method, ED25519_SEED)
                .expect("an Ed25519 signer")
                .public_key()
                .expect("a public key");
            Case {
                // The public key ends in `=` padding: it needs its label.
                serve_secrets: vec![
                    "v1=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
                    format!("v1a={public_key}"),
                ],
                keys: vec![
                    ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "v1"),
                    (ED25519_SEED, "v1a"),
                ],
                impostors: vec!["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD", ED25519_OTHER_SEED],
            }
        }
        Method::Stripe => one("whsec_cli_stripe", "whsec_cli_stripe_other"),
        Method::GitHub => one("It's a Secret to Everybody", "It's a Secret to Nobody"),
        Method::Slack => one(
            "8f742231b10e8888abcd99yyyzzz85a5",
            "8f742231b10e8888abcd99yyyzzz85a6",
        ),
        other => panic!("{other}: a new method needs its case in this test"),
    }
}

fn signer(method: Method, key: &str) -> Signer {
    Signer::for_method(method, key).unwrap_or_else(|error| panic!("{method}: signer: {error}"))
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

/// The method's delivery id header, if it has one.
fn id_header(method: Method) -> Option<HeaderName> {
    method.default_header_names().delivery_id
}

fn with_id(method: Method, headers: &HeaderMap, id: &'static str) -> HeaderMap {
    let name = id_header(method).unwrap_or_else(|| panic!("{method} has no id header"));
    let mut headers = headers.clone();
    headers.insert(name, HeaderValue::from_static(id));
    headers
}

fn ok() -> (StatusCode, String) {
    (StatusCode::OK, "ok".into())
}

fn duplicate() -> (StatusCode, String) {
    (StatusCode::OK, "duplicate".into())
}

fn unauthorized(kind: &str) -> (StatusCode, String) {
    (StatusCode::UNAUTHORIZED, kind.into())
}

/// Checks one JSON line: the same fields for every method, `delivery_id` null where the method
/// carries none, the timestamp where it signs one.
fn check_line(line: &Value, method: Method, id: &str, label: &str, timestamp: &str, body: &[u8]) {
    let fields: BTreeSet<&str> = line
        .as_object()
        .unwrap_or_else(|| panic!("{method}: not an object: {line}"))
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, BTreeSet::from(FIELDS), "{method}: {line}");
    let expected_id = match id_header(method) {
        Some(_) => Value::from(id),
        None => Value::Null,
    };
    assert_eq!(line["delivery_id"], expected_id, "{method}: {line}");
    assert_eq!(line["method"], method.name(), "{method}: {line}");
    assert_eq!(line["secret"], label, "{method}: {line}");
    assert_eq!(line["bytes"], body.len(), "{method}: {line}");
    assert_eq!(line["event"], "run.finished", "{method}: {line}");
    assert_eq!(line["path"], "/hooks", "{method}: {line}");
    let expected_timestamp = match method.has_timestamp() {
        true => Value::from(rfc3339(timestamp)),
        false => Value::Null,
    };
    assert_eq!(line["timestamp"], expected_timestamp, "{method}: {line}");
}

/// `hookverify sign --scheme NAME` for `body`: the headers it printed, one `Name: value` line
/// each.
fn sign_with_the_binary(method: Method, key: &str, id: &str, body: &[u8]) -> HeaderMap {
    let mut args = vec!["sign", "--scheme", method.name(), "--id", id];
    // A label in front keeps a key with `=` padding whole; `sign` ignores it.
    let secret = format!("k={key}");
    if !key.is_empty() {
        args.extend(["--secret", &secret]);
    }
    let (status, out, err) = run(command(&args), Some(body));
    assert!(status.success(), "{method}: sign failed: {err}");
    let mut headers = HeaderMap::new();
    for line in out.lines() {
        let (name, value) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("{method}: not `Name: value`: {line:?}"));
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
            HeaderValue::from_str(value).expect("a header value"),
        );
    }
    // The method's own headers, each once, and nothing else.
    let names = method.default_header_names();
    let mut expected: BTreeSet<&str> = BTreeSet::new();
    if method != Method::None {
        expected.insert(names.signature.as_str());
    }
    if method.has_timestamp()
        && let Some(name) = &names.timestamp
    {
        expected.insert(name.as_str());
    }
    if let Some(name) = &names.delivery_id {
        expected.insert(name.as_str());
    }
    let printed: BTreeSet<&str> = headers.keys().map(HeaderName::as_str).collect();
    assert_eq!(printed, expected, "{method}: {out}");
    assert_eq!(headers.len(), expected.len(), "{method}: {out}");
    headers
}

/// Runs every check on one method, on its own `serve`.
async fn exercise(method: Method) {
    let case = case(method);
    let mut args = vec!["--scheme".to_owned(), method.name().to_owned()];
    for secret in &case.serve_secrets {
        args.extend(["--secret".to_owned(), secret.clone()]);
    }
    let server = start(&args);
    let banner = server.banner.join("\n");
    let warned = banner.contains("--scheme none") && banner.contains("NOT verified");
    assert_eq!(warned, method == Method::None, "{method}: {banner}");

    for (n, (key, label)) in case.keys.iter().enumerate() {
        let signer = signer(method, key);
        let body = format!(r#"{{"type":"run.finished","signer":{n}}}"#);
        let body = body.as_bytes();
        let id = ["dlv_valid_0", "dlv_valid_1"][n];
        let signed = signer.sign(id, body);
        let valid = signed.header_map().expect("headers");

        // Valid: 200 and one line.
        assert_eq!(
            server.post("/hooks", valid.clone(), body).await,
            ok(),
            "{method} ({label})"
        );
        check_line(
            &server.next_delivery(),
            method,
            id,
            label,
            signed.timestamp(),
            body,
        );

        // The same delivery again: 200, no line.
        assert_eq!(
            server.post("/hooks", valid.clone(), body).await,
            duplicate(),
            "{method}: duplicate ({label})"
        );

        // Tampered with: only the methods that sign the body notice.
        if method.signs_body() {
            assert_eq!(
                server
                    .post("/hooks", valid.clone(), br#"{"type":"run.tampered"}"#)
                    .await,
                unauthorized("signature_mismatch"),
                "{method}: tampered body ({label})"
            );
        }

        // A replay: the same signed bytes under a fresh delivery id.
        match method {
            Method::HmacSha256 | Method::HmacSha1 | Method::GitHub => {
                let replay = with_id(method, &valid, "dlv_replayed");
                assert_eq!(
                    server.post("/hooks", replay.clone(), body).await,
                    duplicate(),
                    "{method}: replay"
                );
            }
            Method::StandardWebhooks => {
                let replay = with_id(method, &valid, "msg_replayed");
                assert_eq!(
                    server.post("/hooks", replay.clone(), body).await,
                    unauthorized("signature_mismatch"),
                    "{method}: replay under a new id ({label})"
                );
            }
            // No id header: the replay is the same request again.
            Method::Stripe | Method::Slack => {
                assert_eq!(id_header(method), None);
                assert_eq!(
                    server.post("/hooks", valid.clone(), body).await,
                    duplicate(),
                    "{method}: replay"
                );
            }
            // They sign nothing: under a fresh id the same request is a new delivery, printed.
            Method::Bearer | Method::BasicAuth | Method::None => {
                let again = with_id(method, &valid, "dlv_fresh_id");
                assert_eq!(
                    server.post("/hooks", again.clone(), body).await,
                    ok(),
                    "{method}: fresh id"
                );
                check_line(
                    &server.next_delivery(),
                    method,
                    "dlv_fresh_id",
                    label,
                    "",
                    body,
                );
            }
            other => panic!("{other}: a new method needs its replay case"),
        }

        // Signed by `hookverify sign --scheme NAME` (another body: the same one under another id
        // would be a replay for the methods whose message key leaves the id out).
        let body = format!(r#"{{"type":"run.finished","signer":{n},"by":"sign"}}"#);
        let body = body.as_bytes();
        let from_sign = ["dlv_from_sign_0", "dlv_from_sign_1"][n];
        let from_binary = sign_with_the_binary(method, key, from_sign, body);
        let stamped = names_timestamp(method, &from_binary);
        assert_eq!(
            server.post("/hooks", from_binary.clone(), body).await,
            ok(),
            "{method}: signed by the binary ({label})"
        );
        check_line(
            &server.next_delivery(),
            method,
            from_sign,
            label,
            &stamped,
            body,
        );
        assert_eq!(
            server.post("/hooks", from_binary.clone(), body).await,
            duplicate(),
            "{method}: signed by the binary, again ({label})"
        );
        if id_header(method).is_some() {
            // `sign` again for the same id: a duplicate, whatever the new signature.
            let again = sign_with_the_binary(method, key, from_sign, body);
            assert_eq!(
                server.post("/hooks", again.clone(), body).await,
                duplicate(),
                "{method}: signed again by the binary ({label})"
            );
        }
    }

    let body = br#"{"type":"run.started"}"#;
    let first = signer(method, case.keys[0].0);

    // Forged with the wrong secret, token or key.
    for wrong in &case.impostors {
        let forged = signer(method, wrong)
            .sign("dlv_forged", body)
            .header_map()
            .expect("headers");
        assert_eq!(
            server.post("/hooks", forged.clone(), body).await,
            unauthorized("signature_mismatch"),
            "{method}: wrong secret"
        );
    }

    // Stale, either way.
    if method.has_timestamp() {
        for at in [now() - 3600, now() + 3600] {
            let stale = first
                .sign_with_timestamp("dlv_stale", &at.to_string(), body)
                .header_map()
                .expect("headers");
            assert_eq!(
                server.post("/hooks", stale.clone(), body).await,
                unauthorized("timestamp_out_of_tolerance"),
                "{method}: timestamp {at}"
            );
        }
    }

    // Only the lines read above were printed.
    let (status, rest, stderr) = server.terminate();
    assert!(status.success(), "{method}: {status:?}: {stderr:?}");
    assert_eq!(rest, Vec::<String>::new(), "{method}: unexpected lines");
    let stderr = stderr.join("\n");
    assert!(!stderr.contains("panicked"), "{method}: {stderr}");
    for (key, _) in case.keys.iter().filter(|(key, _)| !key.is_empty()) {
        assert!(
            !stderr.contains(key),
            "{method}: a secret was logged: {stderr}"
        );
    }
}

/// The timestamp the headers carry (Stripe's inside its signature header); empty for methods
/// without one.
fn names_timestamp(method: Method, headers: &HeaderMap) -> String {
    if !method.has_timestamp() {
        return String::new();
    }
    let names = method.default_header_names();
    let text = |name: &HeaderName| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("{method}: no {name}"))
            .to_owned()
    };
    match &names.timestamp {
        Some(name) => text(name),
        None => {
            let signature = text(&names.signature);
            signature
                .split(',')
                .find_map(|pair| pair.strip_prefix("t="))
                .unwrap_or_else(|| panic!("{method}: no t= in {signature}"))
                .to_owned()
        }
    }
}

macro_rules! every_method {
    ($($test:ident => $method:expr),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                exercise($method).await;
            }
        )*

        /// A method added to `Method::ALL` without a test here fails this.
        #[test]
        fn every_method_has_its_test() {
            let tested = [$($method),*];
            for method in Method::ALL {
                assert!(tested.contains(&method), "{method} is not exercised");
            }
        }
    };
}

every_method! {
    serve_hmac_sha256 => Method::HmacSha256,
    serve_hmac_sha1 => Method::HmacSha1,
    serve_bearer => Method::Bearer,
    serve_basic_auth => Method::BasicAuth,
    serve_none => Method::None,
    serve_standard_webhooks => Method::StandardWebhooks,
    serve_stripe => Method::Stripe,
    serve_github => Method::GitHub,
    serve_slack => Method::Slack,
}

/// Asserts that `args` makes the binary exit with status 2 (a usage error), printing nothing
/// on stdout and an error on stderr that contains every one of `expected`.
fn refused(args: &[&str], env: Option<&str>, expected: &[&str]) {
    let mut command = command(args);
    if let Some(value) = env {
        command.env("HOOKVERIFY_SECRET", value);
    }
    let (status, out, err) = run(command, None);
    assert_eq!(status.code(), Some(2), "{args:?}: {status:?}: {err}");
    assert!(out.is_empty(), "{args:?} printed {out:?}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    for text in expected {
        assert!(err.contains(text), "{args:?}: expected {text:?} in {err}");
    }
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

/// An empty secret never means "unsigned", whichever way it comes and whatever the method: the
/// refusal says how to opt into unsigned deliveries.
#[test]
fn an_empty_secret_is_refused_naming_scheme_none() {
    refused(
        &["serve", "--secret", ""],
        None,
        &["empty", "--scheme none"],
    );
    for method in Method::ALL {
        let args = ["serve", "--scheme", method.name(), "--secret", ""];
        refused(&args, None, &["empty", "--scheme none"]);
        refused(
            &["serve", "--scheme", method.name()],
            Some(""),
            &["HOOKVERIFY_SECRET is empty", "--scheme none"],
        );
        let args = ["serve", "--scheme", method.name(), "--secret", "current="];
        refused(&args, None, &["nothing follows"]);
    }
    refused(
        &["sign", "--scheme", "bearer", "--secret", ""],
        None,
        &["empty", "--scheme none"],
    );
}

/// A secret that does not decode as the method reads it is refused, naming the method, never
/// used raw; `none` takes no secret at all.
#[test]
fn a_secret_of_the_wrong_form_is_refused_naming_the_method() {
    for (method, secret) in [
        ("standard_webhooks", "whatever"),
        ("standard_webhooks", "whsec_not*base64"),
        ("standard_webhooks", "k=whpk_c2hvcnQ="),
        ("basic_auth", "no-colon-here"),
    ] {
        refused(
            &["serve", "--scheme", method, "--secret", secret],
            None,
            &[method, "expects"],
        );
    }
    refused(
        &["serve", "--scheme", "none", "--secret", "whsec_x"],
        None,
        &["none", "checks no signature"],
    );
    refused(
        &["serve", "--scheme", "none"],
        Some("whsec_x"),
        &["none", "checks no signature"],
    );
    refused(
        &["serve", "--scheme", "sha256"],
        None,
        &["hmac_sha256", "standard_webhooks", "slack"],
    );
    // `sign` reads secrets the same way.
    refused(
        &[
            "sign",
            "--scheme",
            "standard_webhooks",
            "--secret",
            "whatever",
        ],
        None,
        &["standard_webhooks"],
    );
}

/// Without a secret, `serve --scheme NAME` generates one of the method's form, and the round
/// trip it prints works: `hookverify sign --scheme NAME` with that secret in the environment
/// signs a delivery the server accepts. `none` generates nothing and warns instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_secret_and_its_round_trip_work_for_every_method() {
    for method in Method::ALL {
        let server = start(&["--scheme".to_owned(), method.name().to_owned()]);
        let banner = server.banner.join("\n");
        if method == Method::None {
            assert!(!banner.contains("generated secret"), "{banner}");
            assert!(banner.contains("NOT verified"), "{banner}");
            let (status, _, _) = server.terminate();
            assert!(status.success());
            continue;
        }
        let secret = banner
            .lines()
            .skip_while(|line| !line.contains("shown only here"))
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.contains("shown only here"))
            .unwrap_or_else(|| panic!("{method}: no generated secret in {banner}"))
            .to_owned();
        let round_trip = format!("HOOKVERIFY_SECRET={secret} ");
        assert!(banner.contains(&round_trip), "{method}: {banner}");
        let command_line = format!("sign --scheme {method} --file body.json");
        assert!(banner.contains(&command_line), "{method}: {banner}");

        let body = br#"{"type":"run.finished"}"#;
        let mut sign = command(&["sign", "--scheme", method.name(), "--id", "dlv_gen"]);
        sign.env("HOOKVERIFY_SECRET", &secret);
        let (status, out, err) = run(sign, Some(body));
        assert!(status.success(), "{method}: {err}");
        let mut headers = HeaderMap::new();
        for line in out.lines() {
            let (name, value) = line.split_once(": ").expect("`Name: value`");
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        assert_eq!(
            server.post("/hooks", headers.clone(), body).await,
            ok(),
            "{method}"
        );
        let line = server.next_delivery();
        assert_eq!(line["secret"], "generated", "{method}: {line}");
        assert_eq!(line["method"], method.name(), "{method}: {line}");

        let (status, rest, stderr) = server.terminate();
        assert!(status.success(), "{method}: {stderr:?}");
        assert!(rest.is_empty(), "{method}: {rest:?}");
        assert!(
            !stderr.join("\n").contains(&secret),
            "{method}: the secret is printed once, in the banner only"
        );
    }
}

/// A header flag for a header the method does not have is refused, naming the flag and the
/// method, by `serve` and `sign` alike. Before, `serve --scheme stripe --timestamp-header NAME`
/// started, then answered every genuine Stripe delivery 400 (`missing_header`): the verifier
/// demanded the named header, which Stripe never sends.
#[test]
fn a_header_flag_the_method_has_no_header_for_is_refused() {
    for (method, flag, extra) in [
        ("stripe", "--timestamp-header", "t= inside Stripe-Signature"),
        ("github", "--timestamp-header", "no timestamp header"),
        ("bearer", "--timestamp-header", "no timestamp header"),
        ("basic_auth", "--timestamp-header", "no timestamp header"),
        ("none", "--timestamp-header", "no timestamp header"),
        ("stripe", "--id-header", "no delivery id"),
        ("slack", "--id-header", "no delivery id"),
        ("none", "--signature-header", "no credential header"),
    ] {
        refused(
            &[
                "serve", "--scheme", method, "--secret", "a:b", flag, "x-custom",
            ],
            None,
            &[flag, method, extra],
        );
        let secret = if method == "none" { None } else { Some("a:b") };
        let mut args = vec!["sign", "--scheme", method, flag, "x-custom"];
        if let Some(secret) = secret {
            args.extend(["--secret", secret]);
        }
        refused(&args, None, &[flag, method, extra]);
    }
}

/// Header names the method does have can be renamed on both sides: `sign` emits the names
/// `serve` reads, and the delivery is handled under them (Slack's timestamp; GitHub's id and
/// signature).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_headers_work_end_to_end() {
    for (method, renames, expected) in [
        (
            Method::Slack,
            vec!["--timestamp-header", "x-ts"],
            vec!["x-slack-signature", "x-ts"],
        ),
        (
            Method::GitHub,
            vec!["--id-header", "x-request-id", "--signature-header", "x-sig"],
            vec!["x-request-id", "x-sig"],
        ),
    ] {
        let key = case(method).keys[0].0;
        let mut args = vec![
            "--scheme".to_owned(),
            method.name().to_owned(),
            "--secret".to_owned(),
            format!("current={key}"),
        ];
        args.extend(renames.iter().map(|arg| (*arg).to_owned()));
        let server = start(&args);

        let body = br#"{"type":"run.finished"}"#;
        let mut sign = vec!["sign", "--scheme", method.name(), "--id", "dlv_renamed"];
        let secret = format!("k={key}");
        sign.extend(["--secret", &secret]);
        sign.extend(renames.iter().copied());
        let (status, out, err) = run(command(&sign), Some(body));
        assert!(status.success(), "{method}: {err}");
        let mut headers = HeaderMap::new();
        for line in out.lines() {
            let (name, value) = line.split_once(": ").expect("`Name: value`");
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                HeaderValue::from_str(value).expect("a header value"),
            );
        }
        let printed: BTreeSet<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(printed, BTreeSet::from_iter(expected), "{method}: {out}");
        assert_eq!(
            server.post("/hooks", headers.clone(), body).await,
            ok(),
            "{method}"
        );
        let line = server.next_delivery();
        assert_eq!(line["method"], method.name(), "{method}: {line}");
        // The method's default names are no longer read.
        let defaults = signer(method, key)
            .sign("dlv_defaults", b"{}")
            .header_map()
            .expect("headers");
        assert_eq!(
            server.post("/hooks", defaults.clone(), b"{}").await,
            (StatusCode::BAD_REQUEST, "missing_header".into()),
            "{method}"
        );
        let (status, rest, _) = server.terminate();
        assert!(status.success(), "{method}");
        assert!(rest.is_empty(), "{method}: {rest:?}");
    }
}
