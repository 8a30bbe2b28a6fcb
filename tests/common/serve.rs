//! A running `hookverify serve` child for the CLI tests: started with its own arguments and
//! environment, spoken to over TCP, its stderr read for log lines, signalled with `kill`.
//!
//! Include it beside `child.rs`:
//! `#[path = "common/child.rs"] mod child; #[path = "common/serve.rs"] mod serve;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Command, ExitStatus};
use std::sync::mpsc::Receiver;
use std::time::Instant;

use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::child::{KillOnDrop, TIMEOUT, drain, exchange, lines};

/// `hookverify ARGS` as [`child::command`](crate::child::command) starts it, plus `envs`.
pub(crate) fn command(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut command = crate::child::command(args);
    command.envs(envs.iter().copied());
    command
}

pub(crate) struct Serve {
    child: KillOnDrop,
    pub(crate) addr: SocketAddr,
    /// From the `metrics on` line, with `--metrics`.
    pub(crate) metrics: Option<SocketAddr>,
    /// What it printed on stderr up to the `listening on` line.
    pub(crate) banner: Vec<String>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Serve {
    /// `serve --addr 127.0.0.1:0 ARGS`, once it listens.
    pub(crate) fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut all = vec!["serve", "--addr", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut child = command(&all, envs).spawn().expect("spawn hookverify serve");
        let stdout = lines(child.stdout.take().expect("stdout is piped"));
        let stderr = lines(child.stderr.take().expect("stderr is piped"));
        let child = KillOnDrop(Some(child));

        let deadline = Instant::now() + TIMEOUT;
        let mut banner = Vec::new();
        let mut metrics = None;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = stderr
                .recv_timeout(left)
                .unwrap_or_else(|error| panic!("no `listening on` line ({error}): {banner:?}"));
            if let Some(rest) = line.strip_prefix("listening on http://") {
                break rest.trim().parse().expect("a socket address");
            }
            if let Some(rest) = line.strip_prefix("metrics on http://") {
                let addr = rest.trim().strip_suffix("/metrics").expect("/metrics");
                metrics = Some(addr.parse().expect("a socket address"));
            }
            banner.push(line);
        };
        Self {
            child,
            addr,
            metrics,
            banner,
            stdout,
            stderr,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        headers: HeaderMap,
        body: &[u8],
    ) -> (StatusCode, String) {
        self.request(Method::POST, &self.url(path), headers, body)
            .await
    }

    pub(crate) async fn request(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: &[u8],
    ) -> (StatusCode, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(url)
            .body(Full::new(Bytes::copy_from_slice(body)))
            .expect("a valid request");
        request.headers_mut().extend(headers);
        exchange(&self.client, request).await
    }

    /// The page at `http://METRICS/metrics`.
    pub(crate) async fn scrape(&self) -> String {
        let addr = self.metrics.expect("started with --metrics");
        let url = format!("http://{addr}/metrics");
        let (status, text) = self.request(Method::GET, &url, HeaderMap::new(), b"").await;
        assert_eq!(status, StatusCode::OK, "{text}");
        text
    }

    /// The next JSON line on stdout.
    pub(crate) fn next_delivery(&self) -> Value {
        let line = self
            .stdout
            .recv_timeout(TIMEOUT)
            .expect("a JSON line on stdout");
        serde_json::from_str(&line).unwrap_or_else(|error| panic!("{line:?}: {error}"))
    }

    /// The JSON lines on stdout so far, without waiting.
    pub(crate) fn deliveries_so_far(&self) -> Vec<Value> {
        self.stdout
            .try_iter()
            .map(|line| {
                serde_json::from_str(&line).unwrap_or_else(|error| panic!("{line:?}: {error}"))
            })
            .collect()
    }

    /// Stderr lines up to and including the first that contains `text`, within [`TIMEOUT`].
    pub(crate) fn stderr_until(&self, text: &str) -> Vec<String> {
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .stderr
                .recv_timeout(left)
                .unwrap_or_else(|error| panic!("no line with {text:?} ({error}): {seen:#?}"));
            let found = line.contains(text);
            seen.push(line);
            if found {
                return seen;
            }
        }
    }

    /// Sends `signal` (a `kill` name: HUP, TERM) to the process.
    pub(crate) fn signal(&self, signal: &str) {
        let killed = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(killed.success(), "kill -{signal}");
    }

    /// SIGTERM, then the exit status and the delivery lines stdout still had.
    pub(crate) fn stop(self) -> (ExitStatus, Vec<Value>) {
        let (status, stdout, _) = self.terminate();
        let deliveries = stdout
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
            .collect();
        (status, deliveries)
    }

    /// SIGTERM, then the exit status and whatever stdout and stderr still had.
    pub(crate) fn terminate(self) -> (ExitStatus, Vec<String>, Vec<String>) {
        self.signal("TERM");
        self.wait()
    }

    /// Waits for the process to exit by itself (after a signal already sent): the exit status
    /// and whatever stdout and stderr still had.
    pub(crate) fn wait(self) -> (ExitStatus, Vec<String>, Vec<String>) {
        let stdout = drain(&self.stdout, "stdout");
        let stderr = drain(&self.stderr, "stderr");
        (self.child.wait(), stdout, stderr)
    }
}
