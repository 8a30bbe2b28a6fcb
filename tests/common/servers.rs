//! Throwaway Redis and PostgreSQL servers for the store tests and benches.
//!
//! Each server runs on a free loopback port with its files in a fresh directory under
//! `std::env::temp_dir()`; dropping the handle kills the server and removes the directory.
//! When `HOOKVERIFY_TEST_REDIS_URL` / `HOOKVERIFY_TEST_POSTGRES_URL` is set, that server is
//! used instead (and cannot be stopped). A missing binary fails with the Debian package to
//! install. PostgreSQL refuses to run as root: as root, its files belong to the `postgres` user
//! and its commands run through `runuser -u postgres --`.
//!
//! Include it with `#[path = "common/servers.rs"] mod servers;`.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a server may take to accept connections.
const STARTUP: Duration = Duration::from_secs(30);

/// A directory removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(what: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "hookverify-{what}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
        ));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port nobody listens on right now.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `name` on the `PATH`, or in `extra` directories (searched first, in order).
fn find_binary(name: &str, package: &str, extra: &[PathBuf]) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    extra
        .iter()
        .cloned()
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` not found on PATH{}: install the Debian package `{package}` \
                 (apt-get install {package}), or set the test URL variable to use a running server",
                if extra.is_empty() {
                    String::new()
                } else {
                    format!(" or in {extra:?}")
                },
            )
        })
}

/// Debian's `/usr/lib/postgresql/<version>/bin` directories, newest first.
fn postgres_bin_dirs() -> Vec<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < STARTUP,
            "{what} did not come up within {STARTUP:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn check(what: &str, output: std::io::Result<Output>) {
    let output = output.unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

// ---------------------------------------------------------------------------------------------
// Redis

/// A Redis server for one test.
pub(crate) struct RedisServer {
    url: String,
    owned: Option<OwnedRedis>,
}

struct OwnedRedis {
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
    // Dropped after the child is killed (fields drop in order; `Drop` kills first).
    dir: TempDir,
}

impl RedisServer {
    /// The server named by `HOOKVERIFY_TEST_REDIS_URL`, or a new one.
    pub(crate) fn start() -> Self {
        if let Ok(url) = std::env::var("HOOKVERIFY_TEST_REDIS_URL") {
            return Self { url, owned: None };
        }
        let binary = find_binary("redis-server", "redis-server", &[]);
        let port = free_port();
        let mut owned = OwnedRedis {
            binary,
            port,
            child: None,
            dir: TempDir::new("redis"),
        };
        owned.spawn();
        Self {
            url: format!("redis://127.0.0.1:{port}/"),
            owned: Some(owned),
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Whether this test started the server (and so can stop it).
    pub(crate) fn is_owned(&self) -> bool {
        self.owned.is_some()
    }

    /// Kills the server (SIGKILL): an outage.
    pub(crate) fn kill(&mut self) {
        if let Some(owned) = &mut self.owned {
            owned.kill();
        }
    }

    /// Starts the server again on the same port.
    pub(crate) fn restart(&mut self) {
        if let Some(owned) = &mut self.owned {
            owned.spawn();
        }
    }
}

impl OwnedRedis {
    fn spawn(&mut self) {
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        let port = self.port;
        wait_until("redis-server", || redis_pings(port));
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnedRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn redis_pings(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// A PostgreSQL server for one test.
pub(crate) struct PostgresServer {
    url: String,
    owned: Option<OwnedPostgres>,
}

struct OwnedPostgres {
    pg_ctl: PathBuf,
    port: u16,
    as_postgres_user: bool,
    running: bool,
    dir: TempDir,
}

impl PostgresServer {
    /// The server named by `HOOKVERIFY_TEST_POSTGRES_URL`, or a new one (superuser `postgres`,
    /// trust authentication, database `postgres`).
    pub(crate) fn start() -> Self {
        if let Ok(url) = std::env::var("HOOKVERIFY_TEST_POSTGRES_URL") {
            return Self { url, owned: None };
        }
        let dirs = postgres_bin_dirs();
        let initdb = find_binary("initdb", "postgresql", &dirs);
        let pg_ctl = find_binary("pg_ctl", "postgresql", &dirs);
        let as_postgres_user = is_root();
        let dir = TempDir::new("postgres");
        if as_postgres_user {
            check(
                "chown postgres",
                Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(dir.path())
                    .output(),
            );
        }
        let data = dir.path().join("data");
        let mut init = command(as_postgres_user, &initdb);
        init.arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .args(["--locale=C", "--no-instructions"]);
        check("initdb", init.output());
        let port = free_port();
        let mut owned = OwnedPostgres {
            pg_ctl,
            port,
            as_postgres_user,
            running: false,
            dir,
        };
        owned.start();
        Self {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            owned: Some(owned),
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Whether this test started the server (and so can stop it).
    pub(crate) fn is_owned(&self) -> bool {
        self.owned.is_some()
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`: no clean shutdown): an outage.
    pub(crate) fn kill(&mut self) {
        if let Some(owned) = &mut self.owned {
            owned.stop();
        }
    }

    /// Starts the server again on the same port, over the same data.
    pub(crate) fn restart(&mut self) {
        if let Some(owned) = &mut self.owned {
            owned.start();
        }
    }
}

/// `program`, run as the `postgres` user when `as_postgres_user`.
fn command(as_postgres_user: bool, program: &Path) -> Command {
    if as_postgres_user {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

impl OwnedPostgres {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start(&mut self) {
        let options = format!(
            "-p {} -k '{}' -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let mut start = command(self.as_postgres_user, &self.pg_ctl);
        start
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-o", &options, "-w", "-t", "30", "start"])
            .stdin(Stdio::null());
        let output = start.output();
        if !output.as_ref().is_ok_and(|out| out.status.success()) {
            let log =
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            eprintln!("server.log:\n{log}");
        }
        check("pg_ctl start", output);
        self.running = true;
        let port = self.port;
        wait_until("postgres", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
    }

    fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let mut stop = command(self.as_postgres_user, &self.pg_ctl);
        stop.arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdin(Stdio::null());
        let _ = stop.output();
    }
}

impl Drop for OwnedPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}
