//! A request body that records whether it was read, to prove that a refusal came before the
//! body. Include it with `#[path = "common/watched.rs"] mod watched;`.
#![allow(dead_code)]

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::Router;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Bytes, Frame};
use tower::ServiceExt;

/// A body that records being polled, and then ends (it is empty).
pub(crate) struct Watched(pub(crate) Arc<AtomicBool>);

impl hyper::body::Body for Watched {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.store(true, Ordering::SeqCst);
        Poll::Ready(None)
    }
}

/// POSTs `headers` to `path` through `app`, with a watched body: the status, the response body,
/// and whether the request body was polled.
pub(crate) async fn send_watched(
    app: &Router,
    path: &str,
    headers: &HeaderMap,
) -> (StatusCode, String, bool) {
    let polled = Arc::new(AtomicBool::new(false));
    let mut request = Request::post(path)
        .body(Watched(Arc::clone(&polled)))
        .expect("request");
    *request.headers_mut() = headers.clone();
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        String::from_utf8_lossy(&body).into_owned(),
        polled.load(Ordering::SeqCst),
    )
}
