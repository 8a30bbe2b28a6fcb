//! `hookverify sign`: the headers the provider would send for a body.
//!
//! Prints one `Name: value` line per header, the form `curl -H @-` reads from stdin (curl 7.55
//! or later), so a signed request needs no openssl:
//!
//! ```text
//! hookverify sign --file body.json | curl -sS -H @- --data-binary @body.json http://127.0.0.1:8787/
//! ```

use std::fs;
use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;

use clap::Args;
use hookverify::{DeliveryId, Signer};
use http::HeaderValue;

use crate::Failure;
use crate::scheme::SchemeArgs;
use crate::secrets;

/// Print the headers a provider sends for a body, one `Name: value` line each (for `curl -H @-`).
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    #[command(flatten)]
    scheme: SchemeArgs,

    /// The secret to sign with, as SECRET or LABEL=SECRET (the label is ignored here)
    /// [env: HOOKVERIFY_SECRET]; for standard_webhooks, whsec_… signs v1 and whsk_… (an Ed25519
    /// seed) signs v1a; none takes no secret. Prefer the environment variable: arguments are
    /// visible to other local users.
    #[arg(long, value_name = "[LABEL=]SECRET")]
    secret: Option<String>,

    /// The delivery id (1 to 256 visible ASCII characters) [default: a random `dlv_…` id]
    #[arg(long, value_name = "ID")]
    id: Option<String>,

    /// The timestamp header, used exactly as given (Unix seconds, Unix milliseconds or
    /// RFC 3339; anything else signs a request the receiver will refuse) [default: now, in Unix
    /// seconds]
    #[arg(long, value_name = "TIMESTAMP")]
    timestamp: Option<String>,

    /// Read the body from this file [default: read it from stdin]
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
}

pub(crate) fn run(args: SignArgs) -> Result<(), Failure> {
    let usage = |message: String| Failure::usage("sign", message);
    let method = args.scheme.scheme;
    let flags: Vec<String> = args.secret.into_iter().collect();
    let secret = secrets::signing(&flags, method).map_err(usage)?;

    let id = match args.id {
        Some(id) => {
            DeliveryId::parse(id.as_bytes()).map_err(|reason| usage(format!("--id: {reason}")))?;
            id
        }
        None => format!("dlv_{}", secrets::random_hex(16).map_err(Failure::runtime)?),
    };
    if let Some(timestamp) = &args.timestamp
        && (timestamp.is_empty() || HeaderValue::from_str(timestamp).is_err())
    {
        return Err(usage(
            "--timestamp must be a non-empty header value (e.g. 1764000000)".into(),
        ));
    }

    let names = args.scheme.header_names().map_err(usage)?;
    let body = read_body(args.file.as_ref())?;
    let mut signer =
        Signer::for_method(method, secret).map_err(|error| usage(error.to_string()))?;
    if let Some(names) = names {
        signer = signer.header_names(names);
    }
    let signed = match &args.timestamp {
        Some(timestamp) => signer.sign_with_timestamp(&id, timestamp, &body),
        None => signer.sign(&id, &body),
    };

    let mut out = io::stdout().lock();
    for (name, value) in signed.pairs() {
        writeln!(out, "{name}: {value}").map_err(write_failed)?;
    }
    out.flush().map_err(write_failed)
}

fn read_body(file: Option<&PathBuf>) -> Result<Vec<u8>, Failure> {
    if let Some(path) = file {
        return fs::read(path).map_err(|error| {
            Failure::runtime(format!("could not read {}: {error}", path.display()))
        });
    }
    let stdin = io::stdin();
    if stdin.is_terminal() {
        return Err(Failure::usage(
            "sign",
            "no body: pass --file PATH, or pipe the body in (an empty body: < /dev/null)",
        ));
    }
    let mut body = Vec::new();
    stdin.lock().read_to_end(&mut body).map_err(|error| {
        Failure::runtime(format!("could not read the body from stdin: {error}"))
    })?;
    Ok(body)
}

fn write_failed(error: io::Error) -> Failure {
    Failure::runtime(format!("could not write to stdout: {error}"))
}
