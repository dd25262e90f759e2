//! A PostgreSQL cluster of a test's own (`initdb` in a temporary directory, on a free loopback port),
//! which the test may stop at once and start again — a database server crash — without touching
//! the machine's shared server. Stopped (immediately) when dropped.

use crate::{Backend, TestDb};
use std::path::PathBuf;
use std::process::Command;

pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    /// The loopback port it listens on.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// initdb and start a new cluster (trust authentication, user `postgres`).
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's programs in /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("initdb").exists())
            .expect("initdb");
        let dir = tempfile::tempdir().expect("temporary directory");
        let data = dir.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let cluster = Self {
            bin,
            data,
            port,
            dir,
        };
        run(Command::new("chown")
            .args(["postgres:postgres"])
            .arg(cluster.dir.path()));
        run(cluster
            .command("initdb")
            .args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
            .arg(&cluster.data));
        cluster.start_again();
        cluster
    }

    /// PostgreSQL's programs run as `postgres` when the test runs as root (initdb refuses root).
    pub fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// The URL of `database` in this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database in this cluster, as a [`TestDb`] (removed with the cluster).
    pub fn database(&self, name: &str) -> TestDb {
        run(self
            .command("createdb")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres"])
            .arg(name));
        TestDb {
            backend: Backend::Postgres,
            url: self.url(name),
            dir: tempfile::tempdir().expect("temporary directory"),
            pg: None,
        }
    }

    /// Stops the server the way a crash does (`pg_ctl stop -m immediate`: no checkpoint, every
    /// connection dropped; the next start recovers from the WAL).
    pub fn crash(&self) {
        run(self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "--wait", "-D"])
            .arg(&self.data));
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        run(self
            .command("pg_ctl")
            .args(["start", "--wait", "-D"])
            .arg(&self.data)
            .args(["-o", &options, "-l"])
            .arg(self.dir.path().join("log")));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "-D"])
            .arg(&self.data)
            .output();
    }
}

/// Runs `command`; panics with what it printed when it fails.
pub fn run(command: &mut Command) {
    let out = command.output().expect("run a PostgreSQL program");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
