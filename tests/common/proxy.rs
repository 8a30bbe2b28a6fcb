//! A TCP proxy on loopback for fault injection: put it between a store client and a real
//! Redis or PostgreSQL server, then stall, cut or blackhole the traffic while the test runs.
//!
//! It runs on plain threads with blocking sockets (no async runtime), so it works the same
//! from a `#[test]`, a current-thread or a multi-thread tokio test. Every connection has two
//! pump threads, one per direction. Dropping the proxy closes every socket and joins every
//! thread.
//!
//! ```ignore
//! let redis = servers::RedisServer::start();
//! let proxy = StallProxy::in_front_of(redis.url());
//! let store = RedisStore::connect(&proxy.url_for(redis.url())).await?;
//! proxy.stall();   // requests hang
//! proxy.resume();  // and complete
//! proxy.cut();     // every open connection closes; the store must reconnect
//! ```
//!
//! Include it with `#[path = "common/proxy.rs"] mod proxy;`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often the accepting thread looks for a new connection (and for the proxy being dropped).
const ACCEPT_POLL: Duration = Duration::from_millis(2);
/// How often a pump held by `stall` wakes up to look at the state again (a backstop: every
/// change also notifies it).
const HOLD_POLL: Duration = Duration::from_millis(100);
/// The longest connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest `stall` waits for writes already under way to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A loopback TCP proxy to one upstream address, with faults switched at run time.
pub(crate) struct StallProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Notified on every change of `stopping`, `stalled`, the connections and `writing`.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    stopping: bool,
    stalled: bool,
    blackhole: bool,
    /// Pumps between "allowed to forward" and "done writing": `stall` waits for zero.
    writing: usize,
    accepted: u64,
    next_id: u64,
    connections: HashMap<u64, Connection>,
    pumps: Vec<JoinHandle<()>>,
}

/// Clones of one proxied connection's sockets, kept so `cut` can shut them down.
struct Connection {
    client: TcpStream,
    /// `None` for a blackholed connection: never connected upstream.
    upstream: Option<TcpStream>,
    /// Pump threads still running (0 for a blackholed connection).
    pumps: usize,
}

impl Connection {
    fn close(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        if let Some(upstream) = &self.upstream {
            let _ = upstream.shutdown(Shutdown::Both);
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A pump that panicked cannot leave the state half-changed: keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl StallProxy {
    /// A proxy on `127.0.0.1:<free port>` forwarding every connection to `upstream`.
    pub(crate) fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy on loopback");
        listener
            .set_nonblocking(true)
            .expect("non-blocking proxy listener");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("proxy-accept-{}", addr.port()))
                .spawn(move || accept_loop(&listener, upstream, &shared))
                .expect("spawn the proxy's accepting thread")
        };
        Self {
            addr,
            upstream,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// A proxy to the host and port of `url` (`redis://…`, `postgres://…`; the port must be
    /// written out).
    pub(crate) fn in_front_of(url: &str) -> Self {
        Self::start(socket_addr_of(url))
    }

    /// Where clients connect.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the proxy forwards to.
    pub(crate) fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// `url` with its host and port replaced by the proxy's (user, password, path and query
    /// kept): `redis://127.0.0.1:6379/` becomes `redis://127.0.0.1:<proxy port>/`.
    pub(crate) fn url_for(&self, url: &str) -> String {
        let (start, end) = host_port_span(url);
        format!("{}{}{}", &url[..start], self.addr, &url[end..])
    }

    /// From now on no byte is forwarded in either direction, on current and new connections;
    /// connections stay open and what arrives is held (in the proxy and the kernel buffers)
    /// until `resume`. Returns once no write is under way, so nothing is forwarded after it.
    pub(crate) fn stall(&self) {
        let mut state = self.shared.lock();
        state.stalled = true;
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while state.writing > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "proxy: a write still under way {DRAIN_TIMEOUT:?} after stall()"
            );
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Ends a `stall`: what was held is forwarded, in order, and traffic flows again.
    pub(crate) fn resume(&self) {
        self.shared.lock().stalled = false;
        self.shared.changed.notify_all();
    }

    /// Closes every current connection, both sides at once (a FIN to the client and to the
    /// upstream; a reset where unread bytes were pending). Bytes held by `stall` are dropped.
    /// New connections are accepted as before.
    pub(crate) fn cut(&self) {
        let mut state = self.shared.lock();
        for (_, connection) in state.connections.drain() {
            connection.close();
        }
        drop(state);
        self.shared.changed.notify_all();
    }

    /// While on, new connections are accepted (the TCP handshake completes, as the kernel does
    /// it) but never connected upstream: nothing is read from them and nothing is ever answered,
    /// as with a store whose host stopped answering. A client's connect succeeds and its
    /// handshake or first request hangs until its own timeout. The connections stay open until
    /// `cut` or drop, even after `blackhole(false)`; connections opened before are not touched.
    ///
    /// (Refusing connections would model a store that is down, which `RedisServer::kill` and
    /// `PostgresServer::kill` already do; silently dropped SYNs cannot be had on loopback
    /// without root and a firewall.)
    pub(crate) fn blackhole(&self, on: bool) {
        self.shared.lock().blackhole = on;
    }

    /// Connections accepted so far (blackholed ones included): a client that reconnected
    /// after `cut` shows here.
    pub(crate) fn accepted(&self) -> u64 {
        self.shared.lock().accepted
    }

    /// Connections open now (blackholed ones included).
    pub(crate) fn open_connections(&self) -> usize {
        self.shared.lock().connections.len()
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.stopping = true;
        for (_, connection) in state.connections.drain() {
            connection.close();
        }
        drop(state);
        self.shared.changed.notify_all();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        // The acceptor has ended, so no pump is added after this.
        let pumps = std::mem::take(&mut self.shared.lock().pumps);
        for pump in pumps {
            let _ = pump.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, upstream: SocketAddr, shared: &Arc<Shared>) {
    loop {
        if shared.lock().stopping {
            return;
        }
        match listener.accept() {
            Ok((client, _)) => admit(client, upstream, shared),
            Err(e) if e.kind() == ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // Out of file descriptors and the like: try again shortly.
            Err(_) => thread::sleep(ACCEPT_POLL),
        }
    }
}

/// Registers a new client connection and starts its pumps (or blackholes it).
fn admit(client: TcpStream, upstream: SocketAddr, shared: &Arc<Shared>) {
    // Accepted sockets do not inherit the listener's non-blocking mode on Linux; make sure.
    if client.set_nonblocking(false).is_err() {
        return;
    }
    let _ = client.set_nodelay(true);
    let blackhole = {
        let mut state = shared.lock();
        state.accepted += 1;
        state.blackhole
    };
    if blackhole {
        let mut state = shared.lock();
        if state.stopping {
            return;
        }
        let id = state.next_id;
        state.next_id += 1;
        state.connections.insert(
            id,
            Connection {
                client,
                upstream: None,
                pumps: 0,
            },
        );
        return;
    }
    // Upstream unreachable: dropping `client` closes it, so the client sees the connection end.
    let Ok(server) = TcpStream::connect_timeout(&upstream, CONNECT_TIMEOUT) else {
        return;
    };
    let _ = server.set_nodelay(true);
    let clones = (
        client.try_clone(),
        server.try_clone(),
        client.try_clone(),
        server.try_clone(),
    );
    let (Ok(client_for_cut), Ok(server_for_cut), Ok(client_writer), Ok(server_writer)) = clones
    else {
        return;
    };
    let id = {
        let mut state = shared.lock();
        if state.stopping {
            return;
        }
        let id = state.next_id;
        state.next_id += 1;
        state.connections.insert(
            id,
            Connection {
                client: client_for_cut,
                upstream: Some(server_for_cut),
                pumps: 2,
            },
        );
        id
    };
    let spawn = |name: &str, from: TcpStream, to: TcpStream| {
        let shared = Arc::clone(shared);
        thread::Builder::new()
            .name(format!("proxy-{name}-{id}"))
            .spawn(move || pump(&shared, id, from, to))
    };
    let up = spawn("up", client, server_writer);
    let down = spawn("down", server, client_writer);
    let mut state = shared.lock();
    state.pumps.retain(|pump| !pump.is_finished());
    for pump in [up, down] {
        match pump {
            Ok(handle) => state.pumps.push(handle),
            // No thread for one direction: the connection cannot work, close it.
            Err(_) => {
                if let Some(connection) = state.connections.remove(&id) {
                    connection.close();
                }
            }
        }
    }
}

/// Copies `from` to `to` until either ends, holding every chunk while the proxy is stalled.
fn pump(shared: &Shared, id: u64, mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) => {
                // The sender finished: pass the half-close on.
                let _ = to.shutdown(Shutdown::Write);
                break;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => {
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                break;
            }
        };
        if !wait_until_forwarding(shared, id) {
            break;
        }
        let written = to.write_all(&buffer[..n]).is_ok();
        shared.lock().writing -= 1;
        shared.changed.notify_all();
        if !written {
            let _ = from.shutdown(Shutdown::Both);
            let _ = to.shutdown(Shutdown::Both);
            break;
        }
    }
    let mut state = shared.lock();
    if let Some(connection) = state.connections.get_mut(&id) {
        connection.pumps -= 1;
        if connection.pumps == 0 {
            state.connections.remove(&id);
        }
    }
}

/// Waits while the proxy is stalled; `true` (and one more write counted) when the chunk may
/// go, `false` when the connection was cut or the proxy is stopping.
fn wait_until_forwarding(shared: &Shared, id: u64) -> bool {
    let mut state = shared.lock();
    loop {
        if state.stopping || !state.connections.contains_key(&id) {
            return false;
        }
        if !state.stalled {
            state.writing += 1;
            return true;
        }
        state = shared
            .changed
            .wait_timeout(state, HOLD_POLL)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0;
    }
}

/// Byte offsets of `host:port` in `url` (after `scheme://` and any `user:password@`).
fn host_port_span(url: &str) -> (usize, usize) {
    let start = url
        .find("://")
        .map(|i| i + 3)
        .unwrap_or_else(|| panic!("not a URL: {url}"));
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let host_start = url[start..end].rfind('@').map_or(start, |i| start + i + 1);
    (host_start, end)
}

/// The socket address of `url`'s host and port.
pub(crate) fn socket_addr_of(url: &str) -> SocketAddr {
    let (start, end) = host_port_span(url);
    let host_port = &url[start..end];
    host_port
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("cannot resolve {host_port:?} (from {url}): {e}"))
        .next()
        .unwrap_or_else(|| panic!("{host_port:?} (from {url}) resolves to nothing"))
}
