//! `serve --endpoints FILE`: endpoints with their own secrets, methods and event policies on one
//! receiver, an unknown path, and the file read again on SIGHUP: under load without a failed
//! request, and a bad file keeping the configuration in force.
#![cfg(feature = "cli")]

#[path = "common/child.rs"]
mod child;
#[path = "common/serve.rs"]
mod serve;

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use hookverify::{Method, Signer};
use http::{HeaderMap, StatusCode};
use serve::Serve;

const FLEET_A: &str = "whsec_cli_endpoints_fleet_a";
const STRIPE: &str = "whsec_cli_endpoints_stripe";
const OLD: &str = "whsec_cli_endpoints_old";
const NEW: &str = "whsec_cli_endpoints_new";

/// A file in a directory of its own, removed with it.
struct TempFile {
    dir: PathBuf,
    file: PathBuf,
}

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "hookverify-endpoints-{name}-{}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).expect("a temporary directory");
        let file = dir.join("endpoints.toml");
        let this = Self { dir, file };
        this.write(text);
        this
    }

    fn path(&self) -> &Path {
        &self.file
    }

    fn arg(&self) -> &str {
        self.file.to_str().expect("a UTF-8 path")
    }

    /// Replaces the file whole (written aside, then renamed over it), as an editor or a
    /// deployment tool does, so that a reload never reads half of it.
    fn write(&self, text: &str) {
        let aside = self.dir.join("endpoints.toml.new");
        fs::write(&aside, text).expect("write the file");
        fs::rename(&aside, &self.file).expect("rename it into place");
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn signed(method: Method, secret: &str, id: &str, body: &[u8]) -> HeaderMap {
    Signer::for_method(method, secret)
        .expect("a signer")
        .sign(id, body)
        .header_map()
        .expect("valid headers")
}

fn event(name: &str, version: &str, n: u32) -> Vec<u8> {
    format!(r#"{{"id":"evt_{n}","type":"{name}","api_version":"{version}","data":{{"n":{n}}}}}"#)
        .into_bytes()
}

const TWO_ENDPOINTS: &str = r#"
[[endpoint]]
path = "/webhooks/fleet-a"
secrets = ["FLEET_A_SECRET"]

[[endpoint]]
path = "/webhooks/billing"
scheme = "stripe"
secrets = ["STRIPE_SECRET"]
tolerance = 600
events = ["thread.completed"]
api_version = { accept = ["2026-01-01"] }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_endpoint_has_its_own_secrets_method_and_events() {
    let file = TempFile::new("two", TWO_ENDPOINTS);
    let server = Serve::start(
        &["--endpoints", file.arg(), "--metrics", "127.0.0.1:0"],
        &[
            ("FLEET_A_SECRET", FLEET_A),
            ("STRIPE_SECRET", &format!("live={STRIPE}")),
        ],
    );
    let banner = server.banner.join("\n");
    for part in [
        r#"path="/webhooks/billing" name="billing" scheme="stripe" secrets=["live"] tolerance_s=600"#,
        r#"path="/webhooks/fleet-a" name="fleet-a" scheme="hmac_sha256" secrets=["FLEET_A_SECRET"] tolerance_s=300"#,
    ] {
        assert!(banner.contains(part), "{part} not in {banner}");
    }
    assert!(
        !banner.contains(FLEET_A) && !banner.contains(STRIPE),
        "{banner}"
    );

    // fleet-a: its secret, printed as `serve` prints (no event policy: any body).
    let body = b"not even JSON";
    let for_a = signed(Method::HmacSha256, FLEET_A, "dlv_a1", body);
    assert_eq!(
        server.post("/webhooks/fleet-a", for_a.clone(), body).await,
        (StatusCode::OK, "ok".into())
    );
    let line = server.next_delivery();
    assert_eq!(
        (&line["delivery_id"], &line["secret"], &line["path"]),
        (
            &"dlv_a1".into(),
            &"FLEET_A_SECRET".into(),
            &"/webhooks/fleet-a".into()
        )
    );
    assert_eq!(
        server.post("/webhooks/fleet-a", for_a.clone(), body).await,
        (StatusCode::OK, "duplicate".into())
    );
    // Signed for fleet-a: refused by billing (Stripe's header is missing), and a Stripe
    // delivery signed with fleet-a's secret is a mismatch there.
    assert_eq!(
        server.post("/webhooks/billing", for_a, body).await,
        (StatusCode::BAD_REQUEST, "missing_header".into())
    );
    let completed = event("thread.completed", "2026-01-01", 1);
    let wrong_key = signed(Method::Stripe, FLEET_A, "evt_1", &completed);
    assert_eq!(
        server
            .post("/webhooks/billing", wrong_key, &completed)
            .await,
        (StatusCode::UNAUTHORIZED, "signature_mismatch".into())
    );
    let stripe = signed(Method::Stripe, STRIPE, "evt_1", &completed);
    assert_eq!(
        server
            .post("/webhooks/fleet-a", stripe.clone(), &completed)
            .await,
        (StatusCode::BAD_REQUEST, "missing_header".into())
    );

    // billing: Stripe, its event filter and version policy.
    assert_eq!(
        server.post("/webhooks/billing", stripe, &completed).await,
        (StatusCode::OK, "ok".into())
    );
    let line = server.next_delivery();
    assert_eq!(
        (&line["secret"], &line["path"], &line["event"]),
        (
            &"live".into(),
            &"/webhooks/billing".into(),
            &"thread.completed".into()
        )
    );
    let other = event("agent.created", "2026-01-01", 2);
    let headers = signed(Method::Stripe, STRIPE, "evt_2", &other);
    assert_eq!(
        server.post("/webhooks/billing", headers, &other).await,
        (StatusCode::OK, "acknowledged".into())
    );
    let old_version = event("thread.completed", "2024-01-01", 3);
    let headers = signed(Method::Stripe, STRIPE, "evt_3", &old_version);
    assert_eq!(
        server
            .post("/webhooks/billing", headers, &old_version)
            .await,
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_api_version".into()
        )
    );

    // Paths not in the file: 404 (a GET on one that is: 405).
    let headers = signed(Method::HmacSha256, FLEET_A, "dlv_x", body);
    for path in ["/webhooks/nobody", "/", "/webhooks/fleet-a/more"] {
        assert_eq!(
            server.post(path, headers.clone(), body).await,
            (StatusCode::NOT_FOUND, "unknown_subscription".into()),
            "{path}"
        );
    }
    let (status, _) = server
        .request(
            http::Method::GET,
            &server.url("/webhooks/fleet-a"),
            HeaderMap::new(),
            b"",
        )
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    // Each endpoint's metrics under its name.
    let page = server.scrape().await;
    for line in [
        r#"hookverify_deliveries_total{outcome="accepted",endpoint="fleet-a"} 1"#,
        r#"hookverify_deliveries_total{outcome="duplicate",endpoint="fleet-a"} 1"#,
        // `acknowledged` is a 2xx: the delivery is done, as far as the provider knows.
        r#"hookverify_deliveries_total{outcome="accepted",endpoint="billing"} 2"#,
        r#"hookverify_deliveries_total{outcome="handler_failed",endpoint="billing"} 1"#,
        r#"hookverify_secret_matches_total{label="live",endpoint="billing"} 3"#,
        r#"hookverify_rejections_total{kind="unknown_subscription"} 3"#,
    ] {
        assert!(page.lines().any(|l| l == line), "{line} not in:\n{page}");
    }

    let (status, stdout, _) = server.terminate();
    assert!(status.success());
    assert!(stdout.is_empty(), "nothing else printed: {stdout:?}");
}

fn one_endpoint(secrets: &[&str]) -> String {
    let secrets: Vec<String> = secrets.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "[[endpoint]]\npath = \"/webhooks/fleet-a\"\nsecrets = [{}]\n",
        secrets.join(", ")
    )
}

fn rotation_env() -> [(&'static str, String); 2] {
    [
        ("OLD_SECRET", format!("old={OLD}")),
        ("NEW_SECRET", format!("new={NEW}")),
    ]
}

fn start_with(file: &TempFile) -> Serve {
    let env = rotation_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Serve::start(&["--endpoints", file.arg()], &env)
}

/// `hookverify send` as the provider would, in the background.
fn send_load(url: &str, secret: &str, count: u32) -> std::process::Child {
    let count = count.to_string();
    serve::command(
        &["send", "--count", &count, "--concurrency", "8", url],
        &[("HOOKVERIFY_SECRET", secret)],
    )
    .spawn()
    .expect("spawn hookverify send")
}

fn finished(mut send: std::process::Child) -> Output {
    let deadline = Instant::now() + child::TIMEOUT;
    while send.try_wait().expect("try_wait").is_none() {
        assert!(Instant::now() < deadline, "send still running");
        std::thread::sleep(Duration::from_millis(20));
    }
    send.wait_with_output().expect("send's output")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_load_fails_no_request_and_the_new_secret_takes_effect() {
    const COUNT: u32 = 2_000;
    let file = TempFile::new("reload", &one_endpoint(&["OLD_SECRET"]));
    let server = start_with(&file);
    let url = server.url("/webhooks/fleet-a");
    let body = br#"{"type":"thread.completed"}"#;

    let new = signed(Method::HmacSha256, NEW, "dlv_new_early", body);
    assert_eq!(
        server.post("/webhooks/fleet-a", new, body).await,
        (StatusCode::UNAUTHORIZED, "signature_mismatch".into())
    );

    // The provider delivers on the old secret while the file changes under the receiver: the
    // new secret is added beside the old one, several times over.
    let send = tokio::task::spawn_blocking({
        let url = url.clone();
        move || finished(send_load(&url, OLD, COUNT))
    });
    let mut seen = Vec::new();
    while seen.len() < 20 {
        seen.push(server.next_delivery());
    }
    let files = [
        one_endpoint(&["OLD_SECRET", "NEW_SECRET"]),
        one_endpoint(&["NEW_SECRET", "OLD_SECRET"]),
    ];
    let mut during_load = 0;
    for round in 0..6 {
        file.write(&files[round % 2]);
        server.signal("HUP");
        server.stderr_until("SIGHUP: endpoints reloaded");
        seen.extend(server.deliveries_so_far());
        if seen.len() < COUNT as usize {
            during_load += 1;
        }
    }
    let output = send.await.expect("joined");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains(&format!("{COUNT} delivered, 0 not delivered")),
        "{report}"
    );
    assert!(
        report.contains(&format!("attempts: {COUNT} (0 retries)")),
        "{report}"
    );
    assert!(
        during_load >= 2,
        "the load finished before the reloads ({during_load} during it): {report}"
    );
    while seen.len() < COUNT as usize {
        seen.push(server.next_delivery());
    }
    let ids: HashSet<&str> = seen
        .iter()
        .map(|line| line["delivery_id"].as_str().expect("an id"))
        .collect();
    assert_eq!(ids.len(), COUNT as usize, "each delivery printed once");
    assert!(seen.iter().all(|line| line["secret"] == "old"));

    // The new secret is in force.
    let new = signed(Method::HmacSha256, NEW, "dlv_new", body);
    assert_eq!(
        server.post("/webhooks/fleet-a", new, body).await.0,
        StatusCode::OK
    );
    assert_eq!(server.next_delivery()["secret"], "new");

    // And, once the file lists it alone, the old one is refused.
    file.write(&one_endpoint(&["NEW_SECRET"]));
    server.signal("HUP");
    server.stderr_until("SIGHUP: endpoints reloaded");
    let old = signed(Method::HmacSha256, OLD, "dlv_old_late", b"late");
    assert_eq!(
        server.post("/webhooks/fleet-a", old, b"late").await,
        (StatusCode::UNAUTHORIZED, "signature_mismatch".into())
    );
    let (status, _, _) = server.terminate();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_file_on_reload_keeps_the_configuration_in_force() {
    let file = TempFile::new("bad", &one_endpoint(&["OLD_SECRET"]));
    let server = start_with(&file);
    let mut n = 0;
    let mut still_old = || {
        n += 1;
        let body = format!("delivery {n}");
        let headers = signed(
            Method::HmacSha256,
            OLD,
            &format!("dlv_{n}"),
            body.as_bytes(),
        );
        let server = &server;
        async move {
            server
                .post("/webhooks/fleet-a", headers, body.as_bytes())
                .await
                .0
        }
    };
    assert_eq!(still_old().await, StatusCode::OK);

    let inline = format!("[[endpoint]]\npath = \"/webhooks/fleet-a\"\nsecrets = \"{OLD}\"\n");
    for (text, why) in [
        ("[[endpoint]\npath = ", "line 1"),
        (
            inline.as_str(),
            "line 3, column 11: invalid type: string \"…\"",
        ),
        (
            &one_endpoint(&["UNSET_SECRET_VARIABLE"]),
            "secrets[0]: no such environment variable",
        ),
        // A secret where a name belongs: named by its position only, whether it could be a
        // variable's name or not.
        (
            &one_endpoint(&[OLD]),
            "secrets[0]: no such environment variable",
        ),
        (
            &one_endpoint(&["OLD_SECRET", "whsec-inline+secret/x"]),
            "secrets[1] is not an environment variable name",
        ),
        ("", "no [[endpoint]]"),
        (
            "[[endpoint]]\npath = \"/webhooks/fleet-a\"\nsecrets = [\"OLD_SECRET\"]\nsecret = 1\n",
            "unknown field `secret`",
        ),
        (
            &format!(
                "{}{}",
                one_endpoint(&["OLD_SECRET"]),
                one_endpoint(&["NEW_SECRET"])
            ),
            "the path is listed twice",
        ),
    ] {
        file.write(text);
        server.signal("HUP");
        let logged = server.stderr_until("could not reload the endpoints");
        let line = logged.last().expect("a line");
        assert!(line.contains(why), "{why} not in: {line}");
        assert!(line.contains("ERROR"), "{line}");
        assert!(!line.contains("whsec"), "a secret in: {line}");
        assert_eq!(still_old().await, StatusCode::OK, "after {why}");
    }
    fs::remove_file(file.path()).expect("remove the file");
    server.signal("HUP");
    let logged = server.stderr_until("could not reload the endpoints");
    assert!(logged.last().is_some_and(|l| l.contains("could not read")));
    assert_eq!(still_old().await, StatusCode::OK);

    // A good file again is taken.
    file.write(&one_endpoint(&["NEW_SECRET"]));
    server.signal("HUP");
    server.stderr_until("SIGHUP: endpoints reloaded");
    assert_eq!(still_old().await, StatusCode::UNAUTHORIZED);
    let (status, _, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn a_bad_file_at_start_is_a_usage_error() {
    let file = TempFile::new(
        "start",
        &one_endpoint(&["OLD_SECRET", "UNSET_SECRET_VARIABLE"]),
    );
    let output = serve::command(
        &["serve", "--addr", "127.0.0.1:0", "--endpoints", file.arg()],
        &[("OLD_SECRET", OLD)],
    )
    .output()
    .expect("run hookverify");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("endpoint /webhooks/fleet-a: secrets[1]: no such environment variable"),
        "{stderr}"
    );
    assert!(!stderr.contains("listening on"), "{stderr}");

    let output = serve::command(&["serve", "--endpoints", file.arg(), "--secret", OLD], &[])
        .output()
        .expect("run hookverify");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}
