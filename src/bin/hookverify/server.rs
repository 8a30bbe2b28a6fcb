//! The accept loop behind `serve`: HTTP/1 with a deadline on every phase of a connection and a
//! bound on what it may hold, so that memory is bounded by configuration and a slow client is
//! cut off instead of held forever.
//!
//! - Headers: a new connection, or a kept-alive one once the next request's first byte has
//!   arrived, has `header_timeout` to deliver the complete request head, else it is closed.
//! - Body: the verifying layer bounds it (`VerifyLayer::body_timeout`: 408 `body_timeout`, the
//!   connection closed); a route without the layer does not read the body, and the connection
//!   falls to the idle timeout once the answer is out.
//! - Idle: a kept-alive connection that sends nothing for `idle_timeout` after a response is
//!   closed.
//! - Connections: at most `max_connections` are served at once. At the limit the loop stops
//!   accepting, so new connections wait in the kernel's accept backlog, and are served as soon as
//!   a slot frees (every timeout above frees one): a burst of genuine deliveries is delayed, not
//!   refused.
//! - Large bodies: a body declared over [`SMALL_BODY`] (or of unknown length) takes one of
//!   `max_large_bodies` slots before it is read; with none free it is answered 503 `busy` at once
//!   and the connection closed, so slow large bodies cannot hold every connection slot, and the
//!   bodies held in memory at once are bounded.
//!
//! Memory, then: bodies total at most `max_connections` × [`SMALL_BODY`] + `max_large_bodies` ×
//! the body limit; besides, each connection holds a read buffer under twice [`READ_BUFFER`] and
//! some state.
//!
//! hyper's own `header_read_timeout` is not used: it also runs while a kept-alive connection
//! waits for its next request, so it could not be set apart from the idle timeout. The phases are
//! tracked here instead: the service marks the start and end of each request, the transport
//! notices the first byte of the next one, and the transport enforces the deadline of the phase.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use hookverify::axum::ClientAddr;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tower_service::Service;

/// Bodies up to this declared length need no large-body slot: they are bounded by the number of
/// connections.
pub(crate) const SMALL_BODY: u64 = 64 * 1024;

/// hyper's read buffer limit per connection. hyper checks it before each read, so the buffer
/// stays under twice this; a request head still incomplete past it is refused with 431.
pub(crate) const READ_BUFFER: usize = 32 * 1024;

/// What the server holds and for how long.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_connections: u32,
    pub(crate) max_large_bodies: u32,
    /// The verifying layer's body limit: a body declared over it is refused unread, so it needs
    /// no slot.
    pub(crate) max_body: usize,
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets every
/// connection finish the request it is on (idle ones close at once) and returns when all are
/// closed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let large = Arc::new(Semaphore::new(limits.max_large_bodies as usize));
    let (stop, stopping) = watch::channel(false);
    let mut builder = http1::Builder::new();
    // hyper's header timeout would also cut idle connections: `Guarded` enforces both instead.
    builder.header_read_timeout(None).max_buf_size(READ_BUFFER);

    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // The slot first: at the limit, nothing is accepted and the kernel queues the rest.
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };

        let conn = Arc::new(ConnState::new());
        let io = TokioIo::new(Guarded {
            io: stream,
            conn: Arc::clone(&conn),
            limits: Arc::clone(&limits),
            timer: None,
        });
        let service = TowerToHyperService::new(Bounded {
            router: router.clone(),
            peer,
            conn,
            limits: Arc::clone(&limits),
            large: Arc::clone(&large),
        });
        let connection = builder.serve_connection(io, service);
        tokio::spawn(drive(connection, permit, stopping.clone()));
    }

    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a slot until it is closed: all of them back means all are done.
    let _ = slots.acquire_many(limits.max_connections).await;
}

/// Runs one connection to its end; on shutdown, lets it finish the request in flight.
async fn drive(
    connection: http1::Connection<TokioIo<Guarded>, TowerToHyperService<Bounded>>,
    _slot: OwnedSemaphorePermit,
    mut stopping: watch::Receiver<bool>,
) {
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => Some(result),
        _ = stopping.wait_for(|stop| *stop) => None,
    };
    let result = match result {
        Some(result) => result,
        None => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection closed");
    }
}

/// A failed accept: a connection that went away before it was accepted is skipped; anything else
/// (out of file descriptors, say) is logged and retried after a pause, as it may last.
async fn accept_failed(error: io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    ) {
        return;
    }
    tracing::error!(%error, "could not accept a connection; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Where a connection is between requests, and so which deadline its transport enforces.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request head, the first byte of which arrived (or the connection was
    /// accepted) at this instant: the header timeout runs.
    Head(Instant),
    /// A request is being served: the verifying layer bounds its body, no transport deadline
    /// runs.
    Busy,
    /// The last response was produced at this instant and nothing has arrived since: the idle
    /// timeout runs.
    Idle(Instant),
}

/// Shared by a connection's transport and its service.
#[derive(Debug)]
struct ConnState {
    phase: Mutex<Phase>,
}

impl ConnState {
    fn new() -> Self {
        Self {
            phase: Mutex::new(Phase::Head(Instant::now())),
        }
    }

    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn request_started(&self) {
        *self.phase() = Phase::Busy;
    }

    fn request_finished(&self) {
        *self.phase() = Phase::Idle(Instant::now());
    }

    /// Bytes arrived: on an idle connection they start the next request's head.
    fn bytes_arrived(&self) {
        let mut phase = self.phase();
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
        }
    }

    /// The transport's deadline now, and what it is for.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, &'static str)> {
        match *self.phase() {
            Phase::Head(since) => Some((
                since + limits.header_timeout,
                "request headers not received within --header-timeout",
            )),
            Phase::Busy => None,
            Phase::Idle(since) => Some((
                since + limits.idle_timeout,
                "idle connection closed after --idle-timeout",
            )),
        }
    }
}

/// The TCP stream, failing a read that waits past the deadline of the connection's phase (hyper
/// then closes the connection).
struct Guarded {
    io: TcpStream,
    conn: Arc<ConnState>,
    limits: Arc<Limits>,
    /// Made on the first read that has to wait, then moved to each new deadline.
    timer: Option<Pin<Box<Sleep>>>,
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        if let Poll::Ready(result) = Pin::new(&mut this.io).poll_read(cx, buf) {
            if buf.filled().len() > before {
                this.conn.bytes_arrived();
            }
            return Poll::Ready(result);
        }
        let Some((deadline, reason)) = this.conn.deadline(&this.limits) else {
            return Poll::Pending;
        };
        let timer = match &mut this.timer {
            Some(timer) => {
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                timer
            }
            None => this
                .timer
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, reason))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The router behind the limits of one connection: a large body needs a slot.
#[derive(Clone)]
struct Bounded {
    router: Router,
    /// The client, for the layer's rejection logs.
    peer: SocketAddr,
    conn: Arc<ConnState>,
    limits: Arc<Limits>,
    large: Arc<Semaphore>,
}

impl Service<Request<Incoming>> for Bounded {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<Request<Body>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        self.conn.request_started();
        request.extensions_mut().insert(ClientAddr(self.peer));
        let slot = if is_large(request.headers(), self.limits.max_body) {
            match Arc::clone(&self.large).try_acquire_owned() {
                Ok(slot) => Some(slot),
                Err(_) => {
                    tracing::warn!(
                        max_large_bodies = self.limits.max_large_bodies,
                        "every large-body slot is taken: answered 503 without reading the body"
                    );
                    self.conn.request_finished();
                    return Box::pin(std::future::ready(Ok(busy())));
                }
            }
        } else {
            None
        };

        let response = self.router.call(request.map(Body::new));
        let conn = Arc::clone(&self.conn);
        Box::pin(async move {
            let response = response.await;
            drop(slot);
            conn.request_finished();
            response
        })
    }
}

/// Whether the request's body needs a large-body slot: declared over [`SMALL_BODY`] but within
/// the body limit (a larger one is refused unread), or of unknown length.
fn is_large(headers: &HeaderMap, max_body: usize) -> bool {
    if let Some(length) = headers.get(header::CONTENT_LENGTH) {
        return match length
            .to_str()
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
        {
            Some(length) => length > SMALL_BODY && length <= max_body as u64,
            // hyper refuses a malformed length before the service sees it.
            None => false,
        };
    }
    headers.contains_key(header::TRANSFER_ENCODING) && max_body as u64 > SMALL_BODY
}

fn busy() -> Response<Body> {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONNECTION, HeaderValue::from_static("close")),
            (header::RETRY_AFTER, HeaderValue::from_static("1")),
        ],
        "busy",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn large_bodies_are_the_long_declared_and_the_unknown() {
        let limit = 1024 * 1024;
        assert!(!is_large(&headers(&[]), limit));
        assert!(!is_large(&headers(&[("content-length", "65536")]), limit));
        assert!(is_large(&headers(&[("content-length", "65537")]), limit));
        assert!(is_large(&headers(&[("content-length", "1048576")]), limit));
        // Over the limit: refused unread by the verifying layer.
        assert!(!is_large(&headers(&[("content-length", "1048577")]), limit));
        assert!(is_large(
            &headers(&[("transfer-encoding", "chunked")]),
            limit
        ));
        // With a body limit under the threshold, nothing is large.
        assert!(!is_large(
            &headers(&[("transfer-encoding", "chunked")]),
            1000
        ));
    }
}
