//! `hookverify`: receive signed webhook deliveries on loopback (`serve`), sign a body the way
//! the provider does (`sign`), to try a receiver end to end without openssl, or send deliveries
//! as the provider does, retries included, or a conformance run against any receiver (`send`),
//! or verify a captured delivery and explain why it fails (`verify`).
//!
//! ```text
//! hookverify serve                         # generates a secret and prints a round trip to paste
//! HOOKVERIFY_SECRET=whsec_… hookverify serve --addr 127.0.0.1:8787
//! hookverify sign --file body.json | curl -sS -H @- --data-binary @body.json http://127.0.0.1:8787/
//! HOOKVERIFY_SECRET=whsec_… hookverify send --event thread.completed http://127.0.0.1:8787/
//! HOOKVERIFY_SECRET=whsec_… hookverify send --chaos http://127.0.0.1:8787/
//! HOOKVERIFY_SECRET=whsec_… hookverify send --chaos --scheme github http://127.0.0.1:8787/
//! HOOKVERIFY_SECRET=whsec_… hookverify verify --headers headers.txt --body body.json --explain
//! ```
//!
//! Every subcommand takes `--scheme NAME` (and the header names): `send` and `send --chaos`
//! sign with any of the nine methods.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[path = "hookverify/chaos.rs"]
mod chaos;
#[path = "hookverify/endpoints.rs"]
mod endpoints;
#[path = "hookverify/explain.rs"]
mod explain;
#[path = "hookverify/forward.rs"]
mod forward;
#[path = "hookverify/load.rs"]
mod load;
#[path = "hookverify/metrics.rs"]
mod metrics;
#[path = "hookverify/options.rs"]
mod options;
#[path = "hookverify/reencode.rs"]
mod reencode;
#[path = "hookverify/samples.rs"]
mod samples;
#[path = "hookverify/scheme.rs"]
mod scheme;
#[path = "hookverify/secrets.rs"]
mod secrets;
#[path = "hookverify/send.rs"]
mod send;
#[path = "hookverify/serve.rs"]
mod serve;
#[path = "hookverify/server.rs"]
mod server;
#[path = "hookverify/sign.rs"]
mod sign;
#[path = "hookverify/verify.rs"]
mod verify;

/// Verify signed webhook deliveries: the provider's HMAC-SHA256 by default, and HMAC-SHA1,
/// bearer, Basic, Standard Webhooks (HMAC and Ed25519), Stripe, GitHub and Slack.
#[derive(Debug, Parser)]
#[command(name = "hookverify", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Serve(serve::ServeArgs),
    Sign(sign::SignArgs),
    Send(send::SendArgs),
    Verify(verify::VerifyArgs),
}

/// Why a command failed, and so which exit status it gets.
#[derive(Debug)]
enum Failure {
    /// The command line or the environment is wrong (exit status 2, as for clap's own errors).
    Usage {
        command: &'static str,
        message: String,
    },
    /// The command was valid but could not run (exit status 1).
    Runtime(String),
    /// The command ran and printed its negative outcome itself, as `verify` does for a delivery
    /// that does not verify (exit status 1, nothing more printed).
    Reported,
}

impl Failure {
    fn usage(command: &'static str, message: impl Into<String>) -> Self {
        Self::Usage {
            command,
            message: message.into(),
        }
    }

    fn runtime(message: impl Into<String>) -> Self {
        Self::Runtime(message.into())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Sign(args) => sign::run(args),
        Command::Send(args) => send::run(args),
        Command::Verify(args) => verify::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage { command, message }) => {
            eprintln!(
                "error: {message}\n\nFor more information, try 'hookverify {command} --help'."
            );
            ExitCode::from(2)
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
        Err(Failure::Reported) => ExitCode::FAILURE,
    }
}
