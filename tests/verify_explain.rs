//! `hookverify verify --explain`, golden: one case per cause code, each built by making the
//! mistake for real (re-serializing with serde_json, appending a newline, padding the secret,
//! signing in milliseconds, signing with another method's framing), then running the binary
//! and reading its `--json` report and exit status. Every run is also checked for what must
//! never be printed: a secret, the carried signature, the signature the secret would give.
//!
//! The clock is `--now`, fixed: nothing here reads the time.
#![cfg(feature = "cli")]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hookverify::{Method, Signer};
use serde::Serialize;
use serde_json::Value;
use serde_json::ser::PrettyFormatter;

const BIN: &str = env!("CARGO_BIN_EXE_hookverify");
const NOW: i64 = 1_764_000_000;
const TS: &str = "1764000000";
const ID: &str = "dlv_explain_1";
const SECRET: &str = "whsec_verify_test_secret_4f9a";
const OTHER_SECRET: &str = "whsec_someone_elses_secret_77";
/// A Standard Webhooks secret: base64 after `whsec_`.
const SW_SECRET: &str = "whsec_ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7";
const BODY: &[u8] = br#"{"type":"thread.completed","data":{"thread_id":"thr_1","status":"done"}}"#;

/// Every secret any case uses: none may appear in any output.
const ALL_SECRETS: [&str; 3] = [SECRET, OTHER_SECRET, SW_SECRET];

/// What one `verify` run left.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|error| panic!("{error}: {}\n{}", self.stdout, self.stderr))
    }

    fn causes(&self) -> Vec<String> {
        self.json()["causes"]
            .as_array()
            .expect("a causes array")
            .iter()
            .map(|code| code.as_str().expect("a code").to_owned())
            .collect()
    }

    /// The detail of the first explanation with `code`.
    fn explanation(&self, code: &str) -> String {
        self.json()["explanations"]
            .as_array()
            .expect("an explanations array")
            .iter()
            .find(|e| e["code"] == code)
            .and_then(|e| e["detail"].as_str())
            .unwrap_or_else(|| panic!("no {code} explanation: {}", self.stdout))
            .to_owned()
    }

    fn check(&self, name: &str) -> (bool, String) {
        let json = self.json();
        let check = json["checks"]
            .as_array()
            .expect("a checks array")
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} check: {}", self.stdout))
            .clone();
        (
            check["ok"].as_bool().expect("ok is a bool"),
            check["detail"].as_str().expect("a detail").to_owned(),
        )
    }
}

/// A delivery as captured: its header lines and its body.
struct Delivery {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Delivery {
    /// `body` signed by `signer` at [`TS`] as [`ID`].
    fn signed(signer: &Signer, body: &[u8]) -> Self {
        Self::signed_at(signer, TS, body)
    }

    fn signed_at(signer: &Signer, timestamp: &str, body: &[u8]) -> Self {
        let signed = signer.sign_with_timestamp(ID, timestamp, body);
        Self {
            headers: signed
                .pairs()
                .map(|(name, value)| (name.to_string(), value.to_owned()))
                .collect(),
            body: body.to_vec(),
        }
    }

    /// The same headers with another body (what the receiver got after its mistake).
    fn received(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    fn set(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| n != name);
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name}"))
    }

    /// `Name: value` lines, as `hookverify sign` prints them.
    fn header_text(&self) -> String {
        self.headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}\n"))
            .collect()
    }
}

fn signer(method: Method, secret: impl Into<Vec<u8>>) -> Signer {
    Signer::for_method(method, secret).expect("a signer")
}

fn scratch(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("verify-explain-{}-{n}-{name}", std::process::id()))
}

/// `hookverify verify --headers H --body B --now NOW ARGS`, with `HOOKVERIFY_SECRET` set to
/// `env` (or unset).
fn verify_text(header_text: &str, body: &[u8], args: &[&str], env: Option<&str>) -> Run {
    let headers = scratch("headers");
    let body_path = scratch("body");
    std::fs::write(&headers, header_text).expect("write the headers");
    std::fs::write(&body_path, body).expect("write the body");
    let now = NOW.to_string();
    let mut command = Command::new(BIN);
    command
        .arg("verify")
        .arg("--headers")
        .arg(&headers)
        .arg("--body")
        .arg(&body_path)
        .args(args)
        .env_remove("HOOKVERIFY_SECRET")
        .stdin(Stdio::null());
    if !args.contains(&"--now") {
        command.args(["--now", &now]);
    }
    if let Some(secret) = env {
        command.env("HOOKVERIFY_SECRET", secret);
    }
    let output = command.output().expect("run hookverify verify");
    let _ = std::fs::remove_file(headers);
    let _ = std::fs::remove_file(body_path);
    let run = Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    for secret in ALL_SECRETS {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a secret was printed: {run:?}"
        );
    }
    run
}

/// [`verify_text`] on a delivery, `--json`, the secret given with `--secret`; also checks that
/// neither the carried signature nor the one the configured secret gives for the received body
/// is printed.
fn verify(delivery: &Delivery, method: Method, secret: &str, args: &[&str]) -> Run {
    let secret_arg = format!("test={secret}");
    let mut all = vec!["--json", "--scheme", method.name(), "--secret", &secret_arg];
    all.extend_from_slice(args);
    let run = verify_text(&delivery.header_text(), &delivery.body, &all, None);
    assert_no_signature(&run, delivery, method, secret);
    run
}

fn assert_no_signature(run: &Run, delivery: &Delivery, method: Method, secret: &str) {
    let names = method.default_header_names();
    let mut forbidden: Vec<String> = Vec::new();
    if let Some((_, carried)) = delivery
        .headers
        .iter()
        .find(|(name, _)| *name == names.signature.as_str())
    {
        forbidden.extend(signature_parts(carried));
    }
    if let Ok(expected) = Signer::for_method(method, secret) {
        let timestamp = names
            .timestamp
            .as_ref()
            .and_then(|name| {
                delivery
                    .headers
                    .iter()
                    .find(|(n, _)| *n == name.as_str())
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(|| TS.to_owned());
        let expected = expected.sign_with_timestamp(ID, &timestamp, &delivery.body);
        forbidden.extend(signature_parts(expected.signature()));
    }
    for part in forbidden {
        assert!(
            !run.stdout.contains(&part) && !run.stderr.contains(&part),
            "a signature ({part}) was printed: {run:?}"
        );
    }
}

/// The tag texts of a credential header (hex or base64, 16 characters or more).
fn signature_parts(value: &str) -> Vec<String> {
    value
        .split([',', ' ', '='])
        .filter(|part| part.len() >= 16)
        .map(str::to_owned)
        .collect()
}

/// Asserts a failed verification (exit 1) whose causes are exactly `expected`.
fn assert_causes(run: &Run, kind: &str, expected: &[&str]) {
    assert_eq!(run.code, Some(1), "{run:?}");
    let json = run.json();
    assert_eq!(json["ok"], false, "{run:?}");
    assert_eq!(json["kind"], kind, "{run:?}");
    assert_eq!(run.causes(), expected, "{}", run.stdout);
}

fn hmac() -> Signer {
    signer(Method::HmacSha256, SECRET)
}

// ---------------------------------------------------------------------------------------------
// success and usage

#[test]
fn a_good_delivery_verifies_from_sign_curl_and_raw_request_forms() {
    // What `hookverify sign` prints, as it prints it.
    let body_path = scratch("signed-body");
    std::fs::write(&body_path, BODY).expect("write the body");
    let sign = Command::new(BIN)
        .args(["sign", "--id", ID, "--timestamp", TS, "--file"])
        .arg(&body_path)
        .env("HOOKVERIFY_SECRET", SECRET)
        .output()
        .expect("run hookverify sign");
    assert!(sign.status.success());
    let printed = String::from_utf8(sign.stdout).expect("UTF-8");
    let _ = std::fs::remove_file(body_path);

    let run = verify_text(&printed, BODY, &["--json"], Some(SECRET));
    assert_eq!(run.code, Some(0), "{run:?}");
    let json = run.json();
    assert_eq!(json["ok"], true);
    assert_eq!(json["kind"], Value::Null);
    assert_eq!(run.causes(), Vec::<String>::new());
    let checks = json["checks"].as_array().expect("checks");
    let names: Vec<&str> = checks.iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "secrets",
            "signature_header",
            "timestamp_header",
            "delivery_id_header",
            "timestamp_window",
            "signature"
        ]
    );
    assert!(checks.iter().all(|c| c["ok"] == true), "{checks:#?}");
    assert_eq!(run.check("signature").1, "matches secret \"1\"");
    assert!(run.check("timestamp_window").1.contains("signed 0 s ago"));

    // curl -v's request lines, and a raw request with its body after the head.
    let curl: String = format!(
        "*   Trying 127.0.0.1:8787...\n> POST /hooks HTTP/1.1\r\n> Host: 127.0.0.1:8787\r\n{}>\r\n\
         < HTTP/1.1 200 OK\r\n",
        printed
            .lines()
            .map(|line| format!("> {line}\r\n"))
            .collect::<String>()
    );
    let raw = format!(
        "POST /hooks HTTP/1.1\r\nHost: x\r\n{}\r\n{}",
        printed.replace('\n', "\r\n"),
        String::from_utf8_lossy(BODY)
    );
    for text in [curl, raw] {
        let run = verify_text(&text, BODY, &[], Some(SECRET));
        assert_eq!(run.code, Some(0), "{run:?}");
        assert!(
            run.stdout
                .starts_with("verified: hmac_sha256 delivery dlv_explain_1, secret \"1\""),
            "{run:?}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let delivery = Delivery::signed(&hmac(), BODY);
    let text = delivery.header_text();
    for (args, env, expected) in [
        (&["--scheme", "nope"][..], Some(SECRET), "--scheme"),
        (&[][..], None, "no secret"),
        (&["--tolerance", "86401"][..], Some(SECRET), "--tolerance"),
        (&["--secret", ""][..], None, "--secret"),
        (
            &["--scheme", "none", "--secret", SECRET][..],
            None,
            "checks no signature",
        ),
    ] {
        let run = verify_text(&text, BODY, args, env);
        assert_eq!(run.code, Some(2), "{args:?}: {run:?}");
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    // Headers that are not headers; a file that does not exist; no --body.
    let run = verify_text("just some text\n", BODY, &[], Some(SECRET));
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains("line 1"), "{}", run.stderr);
    let missing = Command::new(BIN)
        .args([
            "verify",
            "--headers",
            "/nonexistent/h",
            "--body",
            "/nonexistent/b",
        ])
        .env("HOOKVERIFY_SECRET", SECRET)
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(2));
    let no_body = Command::new(BIN)
        .args(["verify", "--headers", "/nonexistent/h"])
        .env("HOOKVERIFY_SECRET", SECRET)
        .output()
        .expect("run");
    assert_eq!(no_body.status.code(), Some(2));
}

// ---------------------------------------------------------------------------------------------
// one case per cause

/// A JSON body as a provider might send it, re-serialized by the receiver's framework.
fn pretty(value: &Value, indent: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut out, PrettyFormatter::with_indent(indent));
    value.serialize(&mut serializer).expect("serializes");
    out
}

#[test]
fn body_reformatted_json() {
    let value: Value = serde_json::from_slice(BODY).expect("JSON");
    // Sent pretty (2 and 4 spaces), parsed and re-serialized compact before verifying; and the
    // reverse, sent compact and pretty-printed (for a log line, say) before verifying.
    for (sent, received, style) in [
        (pretty(&value, b"  "), serde_json::to_vec(&value), "2-space"),
        (
            pretty(&value, b"    "),
            serde_json::to_vec(&value),
            "4-space",
        ),
        (
            serde_json::to_vec(&value).expect("JSON"),
            serde_json::to_vec_pretty(&value),
            "compact",
        ),
    ] {
        let received = received.expect("JSON");
        let delivery = Delivery::signed(&hmac(), &sent).received(received);
        let run = verify(&delivery, Method::HmacSha256, SECRET, &[]);
        assert_causes(&run, "signature_mismatch", &["body_reformatted_json"]);
        assert!(
            run.explanation("body_reformatted_json").contains(style),
            "{style}: {}",
            run.stdout
        );
    }

    // Keys kept in their order (not sorted): what JavaScript's JSON.parse/stringify does.
    let sent =
        b"{\n  \"type\": \"ping\",\n  \"data\": {\n    \"zeta\": 1,\n    \"alpha\": [\n      \
                 true,\n      null\n    ]\n  }\n}";
    let received = br#"{"type":"ping","data":{"zeta":1,"alpha":[true,null]}}"#;
    let delivery = Delivery::signed(&hmac(), sent).received(&received[..]);
    let run = verify(&delivery, Method::HmacSha256, SECRET, &[]);
    assert_causes(&run, "signature_mismatch", &["body_reformatted_json"]);
}

#[test]
fn trailing_newline() {
    // Saved with a newline (echo, an editor) after signing; and the provider's newline lost.
    for (sent, received, what) in [
        (
            BODY.to_vec(),
            [BODY, b"\n"].concat(),
            "without its final newline",
        ),
        (
            [BODY, b"\n"].concat(),
            BODY.to_vec(),
            "with a final newline",
        ),
    ] {
        let delivery = Delivery::signed(&hmac(), &sent).received(received);
        let run = verify(&delivery, Method::HmacSha256, SECRET, &[]);
        assert_causes(&run, "signature_mismatch", &["trailing_newline"]);
        assert!(
            run.explanation("trailing_newline").contains(what),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn crlf_newlines() {
    let sent = b"event=thread.completed\r\nthread=thr_1\r\n";
    let received = b"event=thread.completed\nthread=thr_1\n";
    let delivery = Delivery::signed(&hmac(), sent).received(&received[..]);
    let run = verify(&delivery, Method::HmacSha256, SECRET, &[]);
    assert_causes(&run, "signature_mismatch", &["crlf_newlines"]);

    // The text form says it too.
    let secret = format!("test={SECRET}");
    let run = verify_text(
        &delivery.header_text(),
        &delivery.body,
        &["--explain", "--secret", &secret],
        None,
    );
    assert_eq!(run.code, Some(1));
    assert!(
        run.stdout.starts_with("not verified: signature_mismatch"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("likely cause:\n  crlf_newlines: "),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains('\x1b'), "colour on a pipe");
}

#[test]
fn secret_whitespace() {
    // The provider's copy of the secret had a newline (read from a file with it).
    let delivery = Delivery::signed(&signer(Method::HmacSha256, format!("{SECRET}\n")), BODY);
    let run = verify(&delivery, Method::HmacSha256, SECRET, &[]);
    assert_causes(&run, "signature_mismatch", &["secret_whitespace"]);
    assert!(
        run.explanation("secret_whitespace")
            .contains("trailing newline"),
        "{}",
        run.stdout
    );

    // This side's copy has one: kept (serve would refuse it), flagged, and found to be the cause.
    let delivery = Delivery::signed(&hmac(), BODY);
    let run = verify_text(
        &delivery.header_text(),
        &delivery.body,
        &["--json"],
        Some(&format!("current={SECRET}\n")),
    );
    assert_causes(&run, "signature_mismatch", &["secret_whitespace"]);
    let (ok, detail) = run.check("secrets");
    assert!(
        !ok && detail.contains("\"current\" has surrounding whitespace"),
        "{detail}"
    );
}

#[test]
fn secret_encoding() {
    // The provider keys its HMAC with the base64-decoded bytes after whsec_ (the Standard
    // Webhooks way) but signs hmac_sha256's `{timestamp}.{body}`.
    let key = STANDARD
        .decode(&SW_SECRET["whsec_".len()..])
        .expect("base64");
    let delivery = Delivery::signed(&signer(Method::HmacSha256, key), BODY);
    let run = verify(&delivery, Method::HmacSha256, SW_SECRET, &[]);
    assert_causes(&run, "signature_mismatch", &["secret_encoding"]);
    assert!(
        run.explanation("secret_encoding")
            .contains("base64-decoded")
    );

    // The reverse: a Standard Webhooks delivery keyed with the whsec_ string as is.
    let raw_as_key = format!("whsec_{}", STANDARD.encode(SW_SECRET));
    let delivery = Delivery::signed(&signer(Method::StandardWebhooks, raw_as_key), BODY);
    let run = verify(&delivery, Method::StandardWebhooks, SW_SECRET, &[]);
    assert_causes(&run, "signature_mismatch", &["secret_encoding"]);
    assert!(
        run.explanation("secret_encoding")
            .contains("whsec_ included"),
        "{}",
        run.stdout
    );
}

#[test]
fn timestamp_unit() {
    // Signed in milliseconds, sent in seconds.
    let delivery = Delivery::signed_at(&hmac(), "1764000000123", BODY).set("x-agent-timestamp", TS);
    let run = verify(&delivery, Method::HmacSha256, SECRET, &[]);
    assert_causes(&run, "signature_mismatch", &["timestamp_unit"]);
    assert!(
        run.explanation("timestamp_unit")
            .contains("in milliseconds, but the header carries seconds"),
        "{}",
        run.stdout
    );

    // Signed in seconds, sent in milliseconds (in Stripe's t=, inside the signature header).
    let stripe = signer(Method::Stripe, SECRET);
    let delivery = Delivery::signed_at(&stripe, TS, BODY);
    let header = delivery
        .header("stripe-signature")
        .replace("t=1764000000,", "t=1764000000456,");
    let delivery = delivery.set("stripe-signature", &header);
    let run = verify(&delivery, Method::Stripe, SECRET, &[]);
    assert_causes(&run, "signature_mismatch", &["timestamp_unit"]);
    assert!(
        run.explanation("timestamp_unit")
            .contains("in seconds, but the header carries milliseconds"),
        "{}",
        run.stdout
    );
}

/// The hex of the tag in a credential header (`v0=<hex>`, `v1,<base64>`, ...).
fn tag_hex(credential: &str) -> String {
    let last = credential
        .rsplit(['=', ','])
        .next()
        .expect("a tag")
        .to_owned();
    if credential.starts_with("v1,") {
        hex::encode(
            STANDARD
                .decode(credential.trim_start_matches("v1,"))
                .expect("base64"),
        )
    } else {
        last
    }
}

#[test]
fn other_scheme() {
    // A sender that frames the signed bytes as another method does, in hmac_sha256's headers.
    let standard = signer(
        Method::StandardWebhooks,
        format!("whsec_{}", STANDARD.encode(SECRET)),
    );
    for (other, framing_signer, framing) in [
        (
            "slack",
            signer(Method::Slack, SECRET),
            "v0:{timestamp}:{body}",
        ),
        ("github", signer(Method::GitHub, SECRET), "the body alone"),
        ("standard_webhooks", standard, "{id}.{timestamp}.{body}"),
    ] {
        let signed = framing_signer.sign_with_timestamp(ID, TS, BODY);
        let delivery = Delivery {
            headers: vec![
                (
                    "x-agent-signature".into(),
                    format!("sha256={}", tag_hex(signed.signature())),
                ),
                ("x-agent-timestamp".into(), TS.into()),
                ("x-agent-delivery-id".into(), ID.into()),
            ],
            body: BODY.to_vec(),
        };
        let run = verify(&delivery, Method::HmacSha256, SECRET, &[]);
        assert_causes(&run, "signature_mismatch", &["other_scheme"]);
        let detail = run.explanation("other_scheme");
        assert!(
            detail.contains(&format!("matches {other}'s signed bytes")) && detail.contains(framing),
            "{other}: {detail}"
        );
    }

    // A GitHub delivery, as it is, sent to a receiver configured for the default method.
    let delivery = Delivery::signed(&signer(Method::GitHub, SECRET), BODY);
    let run = verify(&delivery, Method::HmacSha256, SECRET, &[]);
    assert_causes(&run, "missing_header", &["other_scheme"]);
    assert!(
        run.explanation("other_scheme")
            .contains("use --scheme github"),
        "{}",
        run.stdout
    );
    assert!(!run.check("signature_header").0);
}

#[test]
fn clock_skew() {
    let delivery = Delivery::signed(&hmac(), BODY);
    let now = (NOW + 1000).to_string();
    let run = verify(&delivery, Method::HmacSha256, SECRET, &["--now", &now]);
    assert_causes(&run, "timestamp_out_of_tolerance", &["clock_skew"]);
    let detail = run.explanation("clock_skew");
    assert!(
        detail.contains("16 min 40 s in the past, 11 min 40 s beyond the tolerance of 5 min"),
        "{detail}"
    );
    assert!(run.check("signature").0, "the signature itself is good");
    assert!(!run.check("timestamp_window").0);
}

#[test]
fn wrong_secret() {
    let delivery = Delivery::signed(&signer(Method::HmacSha256, OTHER_SECRET), BODY);
    let run = verify(&delivery, Method::HmacSha256, SECRET, &[]);
    assert_causes(&run, "signature_mismatch", &["wrong_secret"]);
    let detail = run.explanation("wrong_secret");
    assert!(
        detail.contains("rotated") && detail.contains("\"test\""),
        "{detail}"
    );
    let (ok, detail) = run.check("signature");
    assert!(
        !ok && detail.contains("no configured secret matches"),
        "{detail}"
    );

    // Two secrets, a rotation: the old one matches, and is named.
    let old = format!("old={OTHER_SECRET}");
    let current = format!("current={SECRET}");
    let run = verify_text(
        &delivery.header_text(),
        BODY,
        &["--json", "--secret", &current, "--secret", &old],
        None,
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.check("signature").1,
        "matches secret \"old\" (of 2 configured)"
    );
}

#[test]
fn every_method_verifies_and_a_forgery_is_explained() {
    // No output of any method's run, good or forged, shows a secret or a signature.
    let seed = "whsk_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let ed25519 = signer(Method::StandardWebhooks, seed);
    let public_key = ed25519.public_key().expect("a public key");
    for method in Method::ALL {
        let (signing, verifying) = match method {
            Method::None => (String::new(), String::new()),
            Method::BasicAuth => ("hook:pass".to_owned(), "hook:pass".to_owned()),
            Method::StandardWebhooks => (SW_SECRET.to_owned(), SW_SECRET.to_owned()),
            _ => (SECRET.to_owned(), SECRET.to_owned()),
        };
        let delivery = Delivery::signed(&signer(method, signing.clone()), BODY);
        let run = if method == Method::None {
            verify_text(
                &delivery.header_text(),
                BODY,
                &["--json", "--scheme", "none"],
                None,
            )
        } else {
            verify(&delivery, method, &verifying, &[])
        };
        assert_eq!(run.code, Some(0), "{method}: {run:?}");
        if method == Method::None {
            assert!(run.stderr.contains("verifies nothing"), "{}", run.stderr);
            continue;
        }
        let forged = match method {
            Method::BasicAuth => "hook:other".to_owned(),
            Method::StandardWebhooks => format!("whsec_{}", STANDARD.encode("other key")),
            _ => OTHER_SECRET.to_owned(),
        };
        let delivery = Delivery::signed(&signer(method, forged), BODY);
        let run = verify(&delivery, method, &verifying, &[]);
        assert_causes(&run, "signature_mismatch", &["wrong_secret"]);
    }
    let delivery = Delivery::signed(&ed25519, BODY);
    let run = verify(&delivery, Method::StandardWebhooks, &public_key, &[]);
    assert_eq!(run.code, Some(0), "{run:?}");
}
