//! Runs the shared test vectors: every case of every `*.json` file in `../shared/vectors/`
//! (relative to the crate), or in the bundled copy `tests/vectors/` when that directory is absent,
//! or in `$HOOKVERIFY_VECTORS_DIR` when it is set.
//!
//! The vectors were computed with an implementation independent of this crate. Each case gives
//! the secrets, the clock, the tolerance, the request headers, the body (base64) and the expected
//! outcome: `ok` or an error kind as [`hookverify::ErrorKind::as_str`] names it.

use std::any::Any;
use std::collections::BTreeMap;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use hookverify::{ManualClock, Secret, Verifier};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use sha2::Sha256;
use time::Duration;

#[derive(Debug, Deserialize)]
struct VectorFile {
    cases: Vec<Case>,
}

/// One case. Unknown fields are an error: a field this runner ignored could change the meaning
/// of the case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    secrets: Vec<String>,
    now_unix: i64,
    tolerance_s: i64,
    headers: BTreeMap<String, HeaderField>,
    body_base64: String,
    expect: String,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

/// A header sent once (a string) or repeated (a list of strings).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum HeaderField {
    Once(String),
    Repeated(Vec<String>),
}

impl HeaderField {
    fn values(&self) -> Vec<&str> {
        match self {
            Self::Once(value) => vec![value],
            Self::Repeated(values) => values.iter().map(String::as_str).collect(),
        }
    }
}

/// The label the runner gives the secret at `index` of a case's list.
fn label(index: usize) -> String {
    format!("secret[{index}]")
}

fn vector_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HOOKVERIFY_VECTORS_DIR") {
        return PathBuf::from(dir);
    }
    let shared = shared_dir();
    if shared.is_dir() {
        shared
    } else {
        bundled_dir()
    }
}

fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors")
}

fn bundled_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// The `*.json` files of a directory, sorted by name.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read the vector directory {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

fn header_map(case: &Case) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, field) in &case.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| format!("header name {name:?}: {e}"))?;
        for value in field.values() {
            let value = HeaderValue::from_bytes(value.as_bytes())
                .map_err(|e| format!("header {name} value: {e}"))?;
            map.append(name.clone(), value);
        }
    }
    Ok(map)
}

/// The labels of the secrets whose HMAC over `{timestamp}.{body}`, computed here with `hmac`
/// and `sha2` directly, appears among the signature header's entries. Used to check which secret
/// the verifier reports, independently of its parsing, matching and ordering.
fn labels_signing(case: &Case, body: &[u8]) -> Vec<String> {
    let (Some(HeaderField::Once(signature)), Some(HeaderField::Once(timestamp))) = (
        case.headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("x-agent-signature"))
            .map(|(_, field)| field),
        case.headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("x-agent-timestamp"))
            .map(|(_, field)| field),
    ) else {
        return Vec::new();
    };
    let carried: Vec<String> = signature
        .split([',', ' '])
        .filter_map(|entry| entry.strip_prefix("sha256="))
        .map(str::to_ascii_lowercase)
        .collect();
    case.secrets
        .iter()
        .enumerate()
        .filter(|(_, secret)| {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
            mac.update(timestamp.as_bytes());
            mac.update(b".");
            mac.update(body);
            let tag = hex::encode(mac.finalize().into_bytes());
            carried.contains(&tag)
        })
        .map(|(index, _)| label(index))
        .collect()
}

/// Runs one case; `Err` says what went wrong.
fn run_case(case: &Case) -> Result<(), String> {
    let clock = ManualClock::from_unix(case.now_unix)
        .ok_or_else(|| format!("now_unix {} is out of range", case.now_unix))?;
    let verifier = Verifier::builder()
        .secrets(
            case.secrets
                .iter()
                .enumerate()
                .map(|(index, secret)| Secret::new(label(index), secret.as_str())),
        )
        .tolerance(Duration::seconds(case.tolerance_s))
        .clock(clock)
        .build()
        .map_err(|e| format!("verifier not built: {e}"))?;
    let headers = header_map(case)?;
    let body = BASE64
        .decode(&case.body_base64)
        .map_err(|e| format!("body_base64: {e}"))?;

    // Twice: the verifier keeps nothing from one request to the next, so the second run must
    // give the same answer.
    for run in ["first", "second"] {
        let outcome = verifier.verify(&headers, &body);
        match (case.expect.as_str(), &outcome) {
            ("ok", Ok(verified)) => {
                let expected = labels_signing(case, &body);
                let got = verified.secret_label();
                if expected.first().is_none_or(|first| first != got) {
                    return Err(format!(
                        "{run} run: verified with {got}, expected the first of {expected:?}"
                    ));
                }
            }
            ("ok", Err(error)) => {
                return Err(format!(
                    "{run} run: expected ok, got {} ({error})",
                    error.kind()
                ));
            }
            (kind, Err(error)) if error.kind().as_str() == kind => {}
            (kind, Err(error)) => {
                return Err(format!(
                    "{run} run: expected {kind}, got {} ({error})",
                    error.kind()
                ));
            }
            (kind, Ok(verified)) => {
                return Err(format!(
                    "{run} run: expected {kind}, got ok with {}",
                    verified.secret_label()
                ));
            }
        }
    }
    Ok(())
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic".to_owned())
}

#[test]
fn every_vector_case_passes() {
    let dir = vector_dir();
    let files = json_files(&dir);
    let mut cases = 0;
    let mut failures = Vec::new();
    for path in &files {
        let file_name = path.file_name().map_or_else(
            || path.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        );
        let text = fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let file: VectorFile = match serde_json::from_str(&text) {
            Ok(file) => file,
            Err(e) => {
                failures.push(format!("{file_name}: not a vector file: {e}"));
                continue;
            }
        };
        for case in &file.cases {
            cases += 1;
            // A panic fails the case, not the run: every failing case gets named.
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| run_case(case)))
                .unwrap_or_else(|payload| Err(format!("panicked: {}", panic_message(&*payload))));
            if let Err(why) = outcome {
                failures.push(format!("{file_name} / {}: {why}", case.name));
            }
        }
    }
    assert!(
        cases > 0,
        "no vector case found in {} ({} *.json files)",
        dir.display(),
        files.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {cases} vector cases failed (from {}):\n{}",
        failures.len(),
        dir.display(),
        failures.join("\n")
    );
    println!("{cases} vector cases passed, from {}", dir.display());
}

/// The bundled copy is the fallback when `../shared/vectors/` is absent: it must stay identical.
#[test]
fn bundled_copy_matches_the_shared_vectors() {
    let shared = shared_dir();
    if !shared.is_dir() {
        // Nothing to compare against: the crate is built outside the project tree.
        return;
    }
    let names = |dir: &Path| -> Vec<String> {
        json_files(dir)
            .iter()
            .filter_map(|path| path.file_name())
            .map(|name| name.to_string_lossy().into_owned())
            .collect()
    };
    let bundled = bundled_dir();
    assert_eq!(
        names(&shared),
        names(&bundled),
        "tests/vectors/ must hold the same files as ../shared/vectors/"
    );
    for name in names(&shared) {
        let a = fs::read(shared.join(&name)).expect("shared vector file");
        let b = fs::read(bundled.join(&name)).expect("bundled vector file");
        assert!(
            a == b,
            "tests/vectors/{name} differs from ../shared/vectors/{name}: copy it over"
        );
    }
}
