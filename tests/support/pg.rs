//! A PostgreSQL server for the tests: `DISKQ_TEST_PG_URL` when it is set
//! (an existing server the tests may create schemas on), else a throwaway
//! cluster started once per test process under the target directory, on
//! 127.0.0.1 and a free port, with trust authentication.
//!
//! The throwaway cluster is started by a small shell script that then waits
//! on its standard input, which only this process holds: when the test
//! process ends, however it ends (a panic, SIGKILL), the pipe closes, and
//! the script stops the server and removes its folder. So no server
//! outlives the tests.
//!
//! PostgreSQL refuses to run as root: as root, the script runs the server
//! as the `postgres` user (`runuser`), which must exist (the `postgresql`
//! package makes it). Binaries are looked for in `DISKQ_TEST_PG_BIN`, then
//! the newest `/usr/lib/postgresql/*/bin`, then `pg_config --bindir`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// The server of this test process.
pub struct Server {
    /// `postgres://postgres@127.0.0.1:<port>/postgres`, or DISKQ_TEST_PG_URL.
    pub url: String,
    /// The throwaway cluster (none for DISKQ_TEST_PG_URL).
    pub cluster: Option<Cluster>,
}

/// A throwaway cluster and what restarts it.
pub struct Cluster {
    pub dir: PathBuf,
    pub bin: PathBuf,
    pub port: u16,
    /// Stdin of the keeper script: closing it stops the server.
    _keeper: Mutex<(Child, ChildStdin)>,
}

const KEEPER: &str = r#"
set -e
dir=$1; port=$2; bin=$3; host=$4
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir -p "$dir"
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 >"$dir/initdb.log" 2>&1
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-h $host -p $port -k $dir -c fsync=off -c max_connections=300" start >/dev/null
echo ready
cleanup() {
  as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
# Until this process's parent (the test process) goes away.
while read -r _; do :; done
"#;

fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DISKQ_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let out = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .expect("no PostgreSQL binaries: install postgresql, or set DISKQ_TEST_PG_BIN or DISKQ_TEST_PG_URL");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// A port nobody listens on now on `host`.
pub fn free_port(host: &str) -> u16 {
    std::net::TcpListener::bind((host, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts a cluster in `dir` listening on `host:port`; it stops when the
/// returned keeper's stdin closes.
pub fn start_cluster(dir: &Path, host: &str, port: u16, wrap: &[&str]) -> Cluster {
    let bin = bin_dir();
    let mut cmd = Command::new(wrap.first().copied().unwrap_or("sh"));
    if !wrap.is_empty() {
        cmd.args(&wrap[1..]).arg("sh");
    }
    let mut child = cmd
        .arg("-c")
        .arg(KEEPER)
        .arg("keeper")
        .arg(dir)
        .arg(port.to_string())
        .arg(&bin)
        .arg(host)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the PostgreSQL keeper script");
    let stdin = child.stdin.take().expect("piped stdin");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read the keeper's answer");
    if line.trim() != "ready" {
        let log = std::fs::read_to_string(dir.join("initdb.log")).unwrap_or_default();
        let server = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        panic!(
            "the throwaway PostgreSQL did not start in {}:\n{log}\n{server}",
            dir.display()
        );
    }
    Cluster {
        dir: dir.to_path_buf(),
        bin,
        port,
        _keeper: Mutex::new((child, stdin)),
    }
}

impl Cluster {
    /// Runs `pg_ctl` with `args` on this cluster, as the server's user.
    pub fn pg_ctl(&self, args: &[&str]) {
        let ctl = self.bin.join("pg_ctl");
        let data = self.dir.join("data");
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout == b"0\n")
            .unwrap_or(false);
        let mut cmd = if as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&ctl);
            c
        } else {
            Command::new(&ctl)
        };
        let status = cmd
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("run pg_ctl");
        assert!(status.success(), "pg_ctl {args:?} failed");
    }

    /// Restarts the server (fast shutdown: connections are cut).
    pub fn restart(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "restart"]);
    }
}

/// The server of this test process, started on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("DISKQ_TEST_PG_URL") {
            return Server { url, cluster: None };
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let port = free_port("127.0.0.1");
        let cluster = start_cluster(&dir, "127.0.0.1", port, &[]);
        Server {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            cluster: Some(cluster),
        }
    })
}

/// A location of a fresh schema on the test server, unique in this run.
pub fn location(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(30)
        .collect();
    format!("{}#t_{name}_{}_{n}", server().url, std::process::id())
}
