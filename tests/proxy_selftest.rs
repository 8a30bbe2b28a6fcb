//! The fault-injection proxy (`tests/common/proxy.rs`) in front of a throwaway Redis, spoken to
//! in raw RESP: it forwards, holds traffic while stalled, and closes connections when cut.
//!
//! Each test starts its own `redis-server` (Debian package `redis-server`), or uses
//! `HOOKVERIFY_TEST_REDIS_URL` when set.

#[path = "common/proxy.rs"]
mod proxy;
#[path = "common/servers.rs"]
mod servers;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use proxy::StallProxy;
use servers::RedisServer;

/// The longest a read that should succeed may take.
const ANSWER: Duration = Duration::from_secs(5);

fn connect(proxy: &StallProxy) -> TcpStream {
    let stream = TcpStream::connect(proxy.addr()).expect("connect to the proxy");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Sends `PING`; true when `+PONG` comes back within `within`, false when nothing does.
fn ping(stream: &mut TcpStream, within: Duration) -> bool {
    stream.write_all(b"PING\r\n").expect("send PING");
    read_pong(stream, within)
}

fn read_pong(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).expect("read timeout");
    let mut answer = [0u8; 7];
    match stream.read_exact(&mut answer) {
        Ok(()) => {
            assert_eq!(&answer, b"+PONG\r\n", "unexpected answer");
            true
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(e) => panic!("reading the answer failed: {e}"),
    }
}

#[test]
fn forwards_ping() {
    let redis = RedisServer::start();
    let proxy = StallProxy::in_front_of(redis.url());
    let mut stream = connect(&proxy);
    assert!(ping(&mut stream, ANSWER), "no PONG through the proxy");
    assert!(ping(&mut stream, ANSWER), "no second PONG");
    assert_eq!(proxy.accepted(), 1);
    assert!(
        proxy
            .url_for("redis://user:pw@127.0.0.1:1/0")
            .starts_with(&format!("redis://user:pw@{}/0", proxy.addr()))
    );
}

#[test]
fn stall_holds_both_directions_until_resume() {
    let redis = RedisServer::start();
    let proxy = StallProxy::in_front_of(redis.url());
    let mut stream = connect(&proxy);
    assert!(ping(&mut stream, ANSWER));

    proxy.stall();
    assert!(
        !ping(&mut stream, Duration::from_millis(300)),
        "PONG while stalled"
    );
    // A connection opened during the stall is held too.
    let mut late = connect(&proxy);
    assert!(!ping(&mut late, Duration::from_millis(300)));

    let resumed = Instant::now();
    proxy.resume();
    assert!(read_pong(&mut stream, ANSWER), "no PONG after resume");
    assert!(read_pong(&mut late, ANSWER), "no PONG after resume");
    assert!(resumed.elapsed() < Duration::from_secs(1));
    assert!(ping(&mut stream, ANSWER), "traffic flows after resume");
}

#[test]
fn cut_closes_current_connections_and_accepts_new_ones() {
    let redis = RedisServer::start();
    let proxy = StallProxy::in_front_of(redis.url());
    let mut old = connect(&proxy);
    assert!(ping(&mut old, ANSWER));
    assert_eq!(proxy.open_connections(), 1);

    proxy.cut();
    old.set_read_timeout(Some(ANSWER)).expect("read timeout");
    let mut byte = [0u8; 1];
    assert_eq!(old.read(&mut byte).expect("EOF, not an error"), 0, "EOF");

    let mut new = connect(&proxy);
    assert!(ping(&mut new, ANSWER), "a new connection works after cut");
    assert_eq!(proxy.accepted(), 2);
}

#[test]
fn cut_while_stalled_drops_what_was_held() {
    let redis = RedisServer::start();
    let proxy = StallProxy::in_front_of(redis.url());
    let mut old = connect(&proxy);
    proxy.stall();
    assert!(!ping(&mut old, Duration::from_millis(100)));
    proxy.cut();
    old.set_read_timeout(Some(ANSWER)).expect("read timeout");
    let mut byte = [0u8; 1];
    // EOF, or a reset when the PING was still unread in the proxy's socket.
    assert!(old.read(&mut byte).map_or(true, |n| n == 0));
    proxy.resume();
    let mut new = connect(&proxy);
    assert!(ping(&mut new, ANSWER));
}

#[test]
fn blackhole_accepts_but_never_answers() {
    let redis = RedisServer::start();
    let proxy = StallProxy::in_front_of(redis.url());
    let mut before = connect(&proxy);
    assert!(ping(&mut before, ANSWER));

    proxy.blackhole(true);
    let mut dark = connect(&proxy);
    assert!(
        !ping(&mut dark, Duration::from_millis(300)),
        "blackholed PONG"
    );
    // Connections from before are untouched.
    assert!(ping(&mut before, ANSWER));

    proxy.blackhole(false);
    let mut after = connect(&proxy);
    assert!(ping(&mut after, ANSWER));
    // The blackholed one stays dark until cut.
    assert!(!read_pong(&mut dark, Duration::from_millis(100)));
    proxy.cut();
    dark.set_read_timeout(Some(ANSWER)).expect("read timeout");
    let mut byte = [0u8; 1];
    assert!(dark.read(&mut byte).map_or(true, |n| n == 0));
}

#[test]
fn drop_closes_connections() {
    let redis = RedisServer::start();
    let proxy = StallProxy::in_front_of(redis.url());
    let mut stream = connect(&proxy);
    assert!(ping(&mut stream, ANSWER));
    proxy.stall();
    let started = Instant::now();
    drop(proxy);
    assert!(started.elapsed() < Duration::from_secs(2), "drop took long");
    stream.set_read_timeout(Some(ANSWER)).expect("read timeout");
    let mut byte = [0u8; 1];
    assert_eq!(stream.read(&mut byte).expect("EOF"), 0);
}
