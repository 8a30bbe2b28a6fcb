//! Throwaway Redis and PostgreSQL servers for the store tests and benches.
//!
//! Each server runs on a free loopback port with its files in a fresh directory under
//! `std::env::temp_dir()`; dropping the handle kills the server and removes the directory.
//! When `HOOKVERIFY_TEST_REDIS_URL` / `HOOKVERIFY_TEST_POSTGRES_URL` is set, that server is
//! used instead (and cannot be stopped). A missing binary fails with the Debian package to
//! install. PostgreSQL refuses to run as root: as root, its files belong to the `postgres` user
//! and its commands run through `runuser -u postgres --`.
//!
//! Besides single servers there is a three-node Redis Cluster (`RedisCluster`), and two
//! helpers for faults on a live server: `RedisServer::pause_for` (every client's commands wait)
//! and `PostgresServer::lock_table_for` (a table locked by another session).
//!
//! Include it with `#[path = "common/servers.rs"] mod servers;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
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

    /// `CLIENT PAUSE <ms> ALL`: for `pause` from now, the server holds every command from every
    /// client (connections stay open, replies come when the pause ends). Returns once the
    /// server has accepted the pause. Sent with `redis-cli`, so it works on any server.
    pub(crate) fn pause_for(&self, pause: Duration) {
        let cli = find_binary("redis-cli", "redis-tools", &[]);
        let millis = pause.as_millis().max(1).to_string();
        let output = Command::new(&cli)
            .args(["-u", &self.url, "CLIENT", "PAUSE", &millis, "ALL"])
            .stdin(Stdio::null())
            .output();
        let answer = redis_cli_answer("CLIENT PAUSE", output);
        assert_eq!(answer.trim(), "OK", "CLIENT PAUSE answered {answer:?}");
    }
}

/// `redis-cli`'s standard output, or a panic that shows why it failed.
fn redis_cli_answer(what: &str, output: std::io::Result<Output>) -> String {
    let output = output.unwrap_or_else(|e| panic!("{what}: cannot run redis-cli: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    // redis-cli prints server errors on stdout and still exits 0.
    assert!(
        output.status.success() && !stdout.starts_with("ERR") && !stdout.starts_with("(error)"),
        "{what} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
    );
    stdout
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
// Redis Cluster

/// Nodes in a `RedisCluster`: the fewest masters `redis-cli --cluster create` accepts.
const CLUSTER_NODES: usize = 3;
/// Attempts at starting one node on fresh ports, when the ports picked were taken meanwhile.
const NODE_ATTEMPTS: usize = 5;

/// A Redis Cluster of three masters (no replicas) for one test, slots spread by
/// `redis-cli --cluster create`; or the nodes named by `HOOKVERIFY_TEST_REDIS_CLUSTER_URLS`
/// (comma-separated), which cannot be stopped.
pub(crate) struct RedisCluster {
    urls: Vec<String>,
    owned: Option<OwnedCluster>,
}

struct OwnedCluster {
    nodes: Vec<Child>,
    // Dropped after the nodes are killed (fields drop in order; `Drop` kills first).
    dir: TempDir,
}

impl RedisCluster {
    /// Starts three cluster-enabled `redis-server`s on free loopback ports (each with its
    /// cluster bus on a second free port), joins them with `redis-cli --cluster create`, and
    /// returns once every node reports `cluster_state:ok` with all 16384 slots served.
    pub(crate) fn start() -> Self {
        if let Ok(urls) = std::env::var("HOOKVERIFY_TEST_REDIS_CLUSTER_URLS") {
            let urls: Vec<String> = urls
                .split(',')
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .map(str::to_owned)
                .collect();
            return Self { urls, owned: None };
        }
        let server = find_binary("redis-server", "redis-server", &[]);
        let cli = find_binary("redis-cli", "redis-tools", &[]);
        let mut owned = OwnedCluster {
            nodes: Vec::new(),
            dir: TempDir::new("redis-cluster"),
        };
        let mut used = Vec::new();
        let mut ports = Vec::new();
        for _ in 0..CLUSTER_NODES {
            let (port, child) = start_cluster_node(&server, owned.dir.path(), &mut used);
            owned.nodes.push(child);
            ports.push(port);
        }
        let mut create = Command::new(&cli);
        create.args(["--cluster", "create"]);
        for port in &ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null());
        check("redis-cli --cluster create", create.output());
        wait_until("redis cluster", || {
            ports.iter().all(|&port| cluster_node_ready(&cli, port))
        });
        Self {
            urls: ports
                .iter()
                .map(|port| format!("redis://127.0.0.1:{port}/"))
                .collect(),
            owned: Some(owned),
        }
    }

    /// Every node's URL, `redis://127.0.0.1:<port>/`: seeds for a cluster client.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.urls.clone()
    }

    /// Whether this test started the cluster (and so will stop it).
    pub(crate) fn is_owned(&self) -> bool {
        self.owned.is_some()
    }
}

impl Drop for OwnedCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

/// A port that is free now and not in `used` (which it joins).
fn fresh_port(used: &mut Vec<u16>) -> u16 {
    for _ in 0..100 {
        let port = free_port();
        if !used.contains(&port) {
            used.push(port);
            return port;
        }
    }
    panic!("no fresh loopback port after 100 tries");
}

/// One cluster-enabled node, answering `PING`; its port and process. A node that exits at
/// once (its port was taken between `free_port` and its bind) is started again on new ports.
fn start_cluster_node(server: &Path, dir: &Path, used: &mut Vec<u16>) -> (u16, Child) {
    let mut last_log = String::new();
    for _ in 0..NODE_ATTEMPTS {
        let port = fresh_port(used);
        // The bus port would default to port + 10000, which may be taken or past 65535.
        let bus = fresh_port(used);
        let log = dir.join(format!("node-{port}.log"));
        let mut child = Command::new(server)
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-port", &bus.to_string()])
            .arg("--cluster-config-file")
            .arg(dir.join(format!("nodes-{port}.conf")))
            .args(["--appendonly", "no"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
        let start = Instant::now();
        loop {
            if redis_pings(port) {
                return (port, child);
            }
            let exited = child.try_wait().ok().flatten().is_some();
            if exited || start.elapsed() > STARTUP {
                let _ = child.kill();
                let _ = child.wait();
                last_log = std::fs::read_to_string(&log).unwrap_or_default();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("a redis cluster node did not start in {NODE_ATTEMPTS} attempts; last log:\n{last_log}");
}

/// Whether the node on `port` sees the whole cluster up: state ok, every slot served, all
/// nodes known.
fn cluster_node_ready(cli: &Path, port: u16) -> bool {
    let Ok(output) = Command::new(cli)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "CLUSTER",
            "INFO",
        ])
        .stdin(Stdio::null())
        .output()
    else {
        return false;
    };
    let info = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::to_owned)
    };
    field("cluster_state").as_deref() == Some("ok")
        && field("cluster_slots_ok").as_deref() == Some("16384")
        && field("cluster_known_nodes").as_deref() == Some(&CLUSTER_NODES.to_string())
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

    /// Runs `sql` with `psql` in a session of its own (stopping at the first error, which
    /// panics) and returns what it printed: rows unaligned, `|`-separated, without headers.
    pub(crate) fn psql(&self, sql: &str) -> String {
        let output = self
            .psql_command()
            .args(["-c", sql])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
        assert!(
            output.status.success(),
            "psql -c {sql:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Locks `table` (written into the SQL as given: quote it yourself if it needs quoting) in
    /// `ACCESS EXCLUSIVE` mode from a separate `psql` session, so every other session's reads
    /// and writes of it wait. Returns once the lock is held; the session keeps it for `hold`
    /// from then, then commits. Join the handle to wait for the commit; it panics if the
    /// session failed. Taking the lock gives up after 30 s (`lock_timeout`).
    pub(crate) fn lock_table_for(&self, table: &str, hold: Duration) -> JoinHandle<()> {
        const HELD: &str = "hookverify-table-lock-held";
        let mut child = self
            .psql_command()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run psql: {e}"));
        let mut stdin = child.stdin.take().expect("psql stdin");
        let stdout = child.stdout.take().expect("psql stdout");
        let script = format!(
            "SET lock_timeout = '30s';\nBEGIN;\nLOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;\n\
             SELECT '{HELD}';\n"
        );
        let (held, is_held) = mpsc::channel::<Result<(), String>>();
        let table = table.to_owned();
        let session = std::thread::spawn(move || {
            // psql flushes each result, so the marker arrives as soon as the lock is taken.
            let locked = stdin.write_all(script.as_bytes()).is_ok()
                && BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                    .any(|line| line.trim() == HELD);
            if !locked {
                drop(stdin);
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                let _ = child.kill();
                let status = child.wait();
                let _ = held.send(Err(format!("psql ({status:?}): {stderr}")));
                return;
            }
            let _ = held.send(Ok(()));
            std::thread::sleep(hold);
            let committed = stdin.write_all(b"COMMIT;\n").is_ok();
            drop(stdin);
            let status = child.wait();
            assert!(
                committed && status.as_ref().is_ok_and(|status| status.success()),
                "the session locking {table} did not commit: {status:?}"
            );
        });
        match is_held.recv_timeout(STARTUP + Duration::from_secs(5)) {
            Ok(Ok(())) => session,
            Ok(Err(why)) => panic!("cannot lock the table: {why}"),
            Err(e) => panic!("no answer from the session locking the table: {e}"),
        }
    }

    /// `psql` on this server: quiet, no `.psqlrc`, unaligned rows without headers, stopping
    /// at the first error.
    fn psql_command(&self) -> Command {
        let psql = find_binary("psql", "postgresql-client", &postgres_bin_dirs());
        let mut command = Command::new(psql);
        command
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(&self.url);
        command
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
