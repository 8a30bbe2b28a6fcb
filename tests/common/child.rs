//! A `hookverify` child process for the CLI tests: its pipes read line by line on threads,
//! with a bound on every wait, a handle that kills it if the test fails first, and the HTTP
//! round trip to it.
//!
//! Include it with `#[path = "common/child.rs"] mod child;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

/// `hookverify ARGS`, with no secret or store from the environment, logs at info, and stdout
/// and stderr piped.
pub(crate) fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookverify"));
    command
        .args(args)
        .env_remove("HOOKVERIFY_SECRET")
        .env_remove("HOOKVERIFY_STORE")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A command that is expected to exit by itself: its status, stdout and stderr.
pub(crate) fn run(mut command: Command, stdin: Option<&[u8]>) -> (ExitStatus, String, String) {
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("spawn hookverify");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input).expect("write stdin");
    }
    let stdout = lines(child.stdout.take().expect("stdout is piped"));
    let stderr = lines(child.stderr.take().expect("stderr is piped"));
    let guard = KillOnDrop(Some(child));
    let out = drain(&stdout, "stdout").join("\n");
    let err = drain(&stderr, "stderr").join("\n");
    (guard.wait(), out, err)
}

/// The longest any single wait on a child may take before the test fails.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(60);

/// Lines from one of the child's pipes, read on a thread.
pub(crate) fn lines(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Every line until the pipe closes, within [`TIMEOUT`].
pub(crate) fn drain(receiver: &Receiver<String>, what: &str) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(RecvTimeoutError::Disconnected) => return seen,
            Err(RecvTimeoutError::Timeout) => {
                panic!("{what} still open after {TIMEOUT:?}: {seen:?}")
            }
        }
    }
}

/// Kills the child if the test fails before it exits.
pub(crate) struct KillOnDrop(pub(crate) Option<Child>);

impl KillOnDrop {
    pub(crate) fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("running")
    }

    pub(crate) fn id(&self) -> u32 {
        self.0.as_ref().expect("running").id()
    }

    pub(crate) fn take_stdout(&mut self) -> ChildStdout {
        self.child().stdout.take().expect("stdout is piped")
    }

    pub(crate) fn take_stderr(&mut self) -> ChildStderr {
        self.child().stderr.take().expect("stderr is piped")
    }

    /// Waits for a child whose pipes are closed (so it has exited or is exiting).
    pub(crate) fn wait(mut self) -> ExitStatus {
        let mut child = self.0.take().expect("not waited yet");
        child.wait().expect("wait for hookverify")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends `request` and reads the whole answer, within [`TIMEOUT`].
pub(crate) async fn exchange(
    client: &Client<HttpConnector, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> (StatusCode, String) {
    let response = tokio::time::timeout(TIMEOUT, client.request(request))
        .await
        .expect("answered in time")
        .expect("a response");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the response body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}
