//! A test server over real TCP, and POSTing a delivery to it. Include it with
//! `#[path = "common/post.rs"] mod post;`.
#![allow(dead_code)]

use std::net::SocketAddr;

use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Serves `app` on a free loopback port for the rest of the test; returns its address.
pub(crate) async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// What the server answered.
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: Option<String>,
    pub(crate) body: String,
}

/// POSTs `body` with `headers` to `http://{addr}{path}`.
pub(crate) async fn post_reply(
    addr: SocketAddr,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Reply {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = Request::post(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    request.headers_mut().extend(headers.clone());
    let response = client.request(request).await.expect("response");
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status,
        retry_after,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// POSTs to `path`: the status and the body.
pub(crate) async fn post_path(
    addr: SocketAddr,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, String) {
    let reply = post_reply(addr, path, headers, body).await;
    (reply.status, reply.body)
}

/// POSTs to `/hook`: the status and the body.
pub(crate) async fn post_to(
    addr: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, String) {
    post_path(addr, "/hook", headers, body).await
}

/// The head of a raw `POST {path}` carrying `headers` and a body of `length` bytes, for tests
/// that write a request themselves (slowly, in pieces, or to hang up halfway).
pub(crate) fn request_head(path: &str, headers: &HeaderMap, length: usize) -> Vec<u8> {
    let mut head = format!("POST {path} HTTP/1.1\r\nhost: test\r\ncontent-length: {length}\r\n");
    for (name, value) in headers {
        head.push_str(&format!(
            "{name}: {}\r\n",
            value.to_str().expect("ascii header")
        ));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Writes a raw `POST /hook` on a connection of its own and hands the connection back unread
/// (read the answer from it, or drop it to hang up).
pub(crate) async fn sent(addr: SocketAddr, headers: &HeaderMap, body: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(&request_head("/hook", headers, body.len()))
        .await
        .expect("head");
    stream.write_all(body).await.expect("body");
    stream
}

/// The headers of a delivery `id` with `body`, signed now with `secret` (the default method).
pub(crate) fn signed(secret: &str, id: &str, body: &[u8]) -> HeaderMap {
    hookverify::Signer::new(secret)
        .expect("signer")
        .sign(id, body)
        .header_map()
        .expect("headers")
}
