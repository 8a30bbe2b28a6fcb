//! `hookverify verify`: verify one captured delivery, and with `--explain`, say why it does not
//! verify.
//!
//! ```text
//! hookverify sign --file body.json > headers.txt
//! hookverify verify --headers headers.txt --body body.json --explain
//! curl -v … 2> trace.txt; hookverify verify --headers trace.txt --body body.json --explain
//! ```
//!
//! The checks and the search for the cause are in `explain.rs`; this file reads the input and
//! prints the report. Exit status: 0 verified, 1 not verified, 2 a usage error (including an
//! input file that cannot be read or holds no headers).

use std::fs;
use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};

use anstyle::{AnsiColor, Style};
use clap::Args;
use hookverify::time::{Duration, OffsetDateTime};
use hookverify::{Clock, Method, SystemClock};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;
use zeroize::Zeroizing;

use crate::Failure;
use crate::explain::{self, Input, Report, SecretValue};
use crate::scheme::SchemeArgs;
use crate::secrets;

/// Verify one captured delivery, its headers and body from files; with --explain, every check
/// and the likely cause of a failure.
///
/// --headers reads `Name: value` lines: what `hookverify sign` prints, the request lines of
/// `curl -v` (starting with `> `), or a raw HTTP request (its request line skipped, and
/// anything after its blank line ignored). --body is the body, byte for byte. Exit status 0
/// when the delivery verifies, 1 when it does not, 2 on a usage error.
///
/// With --explain, when no secret matches, the likely mistakes are tried one at a time and
/// those that reproduce the signature reported: the body re-serialized as JSON
/// (body_reformatted_json), a final newline added or lost (trailing_newline), CRLF line ends
/// (crlf_newlines), whitespace around the secret (secret_whitespace), the secret base64- or
/// hex-decoded or not (secret_encoding), the timestamp signed in seconds and sent in
/// milliseconds or the reverse (timestamp_unit), another method's signed bytes
/// (other_scheme); clock_skew when only the window failed, wrong_secret when nothing
/// reproduces it. No secret and no expected signature is ever printed.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The request's headers (`-` for stdin)
    #[arg(long, value_name = "FILE")]
    headers: PathBuf,

    /// The request's body, byte for byte (`-` for stdin)
    #[arg(long, value_name = "FILE")]
    body: PathBuf,

    /// A secret, as LABEL=SECRET or SECRET (labelled by its position: 1, 2, ...); repeat it to
    /// try several (a rotation) [env: HOOKVERIFY_SECRET, one secret]. Unlike serve, surrounding
    /// whitespace is kept, to be diagnosed. Prefer the environment variable: arguments are
    /// visible to other local users
    #[arg(long = "secret", value_name = "[LABEL=]SECRET")]
    secrets: Vec<String>,

    #[command(flatten)]
    scheme: SchemeArgs,

    /// The time to check the timestamp against, in Unix seconds [default: now]
    #[arg(long, value_name = "UNIX", allow_negative_numbers = true)]
    now: Option<i64>,

    /// How far the timestamp may be from --now, either way, in seconds (0 to 86400)
    #[arg(long, default_value_t = 300, value_name = "SECONDS",
          value_parser = clap::value_parser!(u32).range(0..=86_400))]
    tolerance: u32,

    /// Print every check with its outcome and, if the delivery does not verify, the likely
    /// cause
    #[arg(long)]
    explain: bool,

    /// Print one JSON object: `ok`, `kind` (the error kind or null), `checks` ([{name, ok,
    /// detail}]), `causes` (the cause codes) and `explanations` ([{code, detail}]); implies
    /// --explain
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: VerifyArgs) -> Result<(), Failure> {
    let usage = |message: String| Failure::usage("verify", message);
    if args.headers == Path::new("-") && args.body == Path::new("-") {
        return Err(usage(
            "--headers and --body cannot both be read from stdin".into(),
        ));
    }
    let method = args.scheme.scheme;
    let secrets = collect_secrets(&args.secrets).map_err(usage)?;
    if secrets.is_empty() && method != Method::None {
        return Err(usage(format!(
            "no secret: pass --secret or set {} (--scheme none takes none)",
            secrets::ENV
        )));
    }
    let now = match args.now {
        Some(unix) => OffsetDateTime::from_unix_timestamp(unix)
            .map_err(|_| usage(format!("--now {unix} is out of range")))?,
        None => SystemClock.now(),
    };
    let header_text = read(&args.headers, "--headers").map_err(usage)?;
    let headers = parse_headers(&header_text)
        .map_err(|message| usage(format!("--headers {}: {message}", args.headers.display())))?;
    let body = read(&args.body, "--body").map_err(usage)?;

    let explain = args.explain || args.json;
    let input = Input {
        method,
        names: args.scheme.header_names().map_err(usage)?,
        secrets: &secrets,
        now,
        tolerance: Duration::seconds(i64::from(args.tolerance)),
        headers: &headers,
        body: &body,
    };
    let report = explain::run(&input, explain).map_err(|error| {
        let padded = secrets.iter().find(|s| s.has_surrounding_whitespace());
        usage(match padded {
            Some(secret) => format!(
                "{error} (secret \"{}\" has surrounding whitespace: a stray newline?)",
                secret.label
            ),
            None => error.to_string(),
        })
    })?;
    if method == Method::None {
        let warn = Style::new().fg_color(Some(AnsiColor::Yellow.into())).bold();
        anstream::eprintln!(
            "{warn}warning:{warn:#} --scheme none verifies nothing: any request passes"
        );
    }
    if args.json {
        print_json(&report);
    } else {
        print_text(&report, method, explain);
    }
    match report.result {
        Ok(_) => Ok(()),
        Err(_) => Err(Failure::Reported),
    }
}

/// The secrets as given (`--secret`, else the environment), surrounding whitespace kept in the
/// value: `verify` diagnoses it where `serve` refuses it.
fn collect_secrets(flags: &[String]) -> Result<Vec<SecretValue>, String> {
    let texts: Vec<(String, String)> = if flags.is_empty() {
        match std::env::var(secrets::ENV) {
            Ok(text) => vec![(text, secrets::ENV.to_owned())],
            Err(std::env::VarError::NotPresent) => Vec::new(),
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!("{} is not valid UTF-8", secrets::ENV));
            }
        }
    } else {
        flags
            .iter()
            .enumerate()
            .map(|(index, text)| (text.clone(), format!("--secret #{}", index + 1)))
            .collect()
    };
    let mut values: Vec<SecretValue> = Vec::with_capacity(texts.len());
    for (index, (text, source)) in texts.iter().enumerate() {
        let core = text.trim();
        let arg = secrets::parse(core, source)?;
        let lead = &text[..text.len() - text.trim_start().len()];
        let trail = &text[text.trim_end().len()..];
        let value = match &arg.label {
            Some(_) => format!("{}{trail}", arg.value),
            None => format!("{lead}{}{trail}", arg.value),
        };
        let label = arg.label.unwrap_or_else(|| (index + 1).to_string());
        if values.iter().any(|v| v.label == label) {
            return Err(format!("{source}: the label \"{label}\" is given twice"));
        }
        values.push(SecretValue {
            label,
            value: Zeroizing::new(value.into_bytes()),
        });
    }
    Ok(values)
}

/// A file's bytes, or stdin's for `-`.
fn read(path: &Path, flag: &str) -> Result<Vec<u8>, String> {
    if path == Path::new("-") {
        let stdin = io::stdin();
        if stdin.is_terminal() {
            return Err(format!("{flag} -: stdin is a terminal; pipe the input in"));
        }
        let mut bytes = Vec::new();
        stdin
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|error| format!("{flag}: could not read stdin: {error}"))?;
        return Ok(bytes);
    }
    fs::read(path).map_err(|error| format!("{flag}: could not read {}: {error}", path.display()))
}

/// The headers in `text`: `Name: value` lines, with `curl -v`'s `> ` prefix, a request line and
/// curl's other lines (`< ` answer, `* ` information) skipped; the head ends at the first blank
/// line after a header. Errors name a line by its number only: a line may carry a credential.
pub(crate) fn parse_headers(text: &[u8]) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let number = index + 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = match line.strip_prefix(b"> ") {
            Some(rest) => rest,
            None if line == b">" => b"",
            None if line.starts_with(b"<") || line.starts_with(b"*") => continue,
            None if line.starts_with(b"{ ") || line.starts_with(b"} ") => continue,
            None => line,
        };
        if line.trim_ascii().is_empty() {
            if headers.is_empty() {
                continue;
            }
            break;
        }
        if headers.is_empty() && is_request_line(line) {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(format!(
                "line {number} is not a `Name: value` header (nor a request line or curl -v \
                 output)"
            ));
        };
        let name = HeaderName::from_bytes(&line[..colon])
            .map_err(|_| format!("line {number}: not a valid header name"))?;
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii())
            .map_err(|_| format!("line {number}: not a valid header value"))?;
        headers.append(name, value);
    }
    if headers.is_empty() {
        return Err("no `Name: value` header lines".into());
    }
    Ok(headers)
}

/// `POST /path HTTP/1.1`.
fn is_request_line(line: &[u8]) -> bool {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !method.is_empty()
        && method.iter().all(u8::is_ascii_uppercase)
        && !target.is_empty()
        && version.starts_with(b"HTTP/")
}

fn print_json(report: &Report) {
    let value = json!({
        "ok": report.result.is_ok(),
        "kind": report.result.as_ref().err().map(|error| error.kind().as_str()),
        "checks": report
            .checks
            .iter()
            .map(|c| json!({"name": c.name, "ok": c.ok, "detail": c.detail}))
            .collect::<Vec<_>>(),
        "causes": codes(report),
        "explanations": report
            .causes
            .iter()
            .map(|c| json!({"code": c.code, "detail": c.detail}))
            .collect::<Vec<_>>(),
    });
    println!("{value}");
}

/// The cause codes, each once, in the order found.
fn codes(report: &Report) -> Vec<&'static str> {
    let mut codes = Vec::new();
    for cause in &report.causes {
        if !codes.contains(&cause.code) {
            codes.push(cause.code);
        }
    }
    codes
}

fn print_text(report: &Report, method: Method, explain: bool) {
    let good = Style::new().fg_color(Some(AnsiColor::Green.into()));
    let bad = Style::new().fg_color(Some(AnsiColor::Red.into())).bold();
    let warn = Style::new().fg_color(Some(AnsiColor::Yellow.into())).bold();
    match &report.result {
        Ok(verified) => {
            let mut line = format!("{good}verified{good:#}: {method}");
            if let Some(id) = verified.delivery_id() {
                line.push_str(&format!(" delivery {id}"));
            }
            if method != Method::None {
                line.push_str(&format!(", secret \"{}\"", verified.secret_label()));
            }
            anstream::println!("{line}");
        }
        Err(error) => {
            anstream::println!("{bad}not verified{bad:#}: {} ({error})", error.kind());
        }
    }
    if !explain {
        if report.result.is_err() {
            anstream::println!("(--explain shows each check and the likely cause)");
        }
        return;
    }
    anstream::println!();
    for check in &report.checks {
        let (style, mark) = if check.ok {
            (good, "ok  ")
        } else {
            (bad, "FAIL")
        };
        anstream::println!(
            "  {style}{mark}{style:#}  {:<20} {}",
            check.name,
            check.detail
        );
    }
    if report.result.is_err() {
        anstream::println!();
        match report.causes.len() {
            0 => anstream::println!("no likely cause found beyond the failed check above"),
            1 => anstream::println!("likely cause:"),
            _ => anstream::println!("likely causes:"),
        }
        for cause in &report.causes {
            anstream::println!("  {warn}{}{warn:#}: {}", cause.code, cause.detail);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<(String, String)> {
        parse_headers(text.as_bytes())
            .expect("headers")
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().expect("ASCII").to_owned()))
            .collect()
    }

    #[test]
    fn sign_output_curl_and_raw_requests() {
        let expected = vec![
            ("x-agent-signature".to_owned(), "sha256=ab".to_owned()),
            ("x-agent-timestamp".to_owned(), "1764000000".to_owned()),
        ];
        assert_eq!(
            names("X-Agent-Signature: sha256=ab\nX-Agent-Timestamp: 1764000000\n"),
            expected
        );
        let curl = "*   Trying 127.0.0.1:8787...\n* Connected\n> POST / HTTP/1.1\r\n> Host: \
                    x\r\n> X-Agent-Signature: sha256=ab\r\n> X-Agent-Timestamp: 1764000000\r\n>\
                    \r\n< HTTP/1.1 200 OK\r\n< content-length: 2\r\n";
        let mut with_host = vec![("host".to_owned(), "x".to_owned())];
        with_host.extend(expected.clone());
        assert_eq!(names(curl), with_host);
        let raw = "POST /hooks HTTP/1.1\r\nHost: x\r\nX-Agent-Signature:sha256=ab  \r\n\
                   X-Agent-Timestamp: 1764000000\r\n\r\n{\"a\": 1}\r\n";
        assert_eq!(names(raw), with_host);
    }

    #[test]
    fn repeated_headers_are_kept_and_junk_is_refused_without_echo() {
        let map = parse_headers(b"a: 1\na: 2\n").expect("headers");
        assert_eq!(map.get_all("a").iter().count(), 2);
        for bad in ["secret-token-here\n", "", "\n\n", "bad name: x\n"] {
            let message = parse_headers(bad.as_bytes()).expect_err(bad);
            assert!(!message.contains("secret-token"), "{message}");
        }
    }
}
