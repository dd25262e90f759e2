//! Running landsby's binaries as separate processes: find them, start them with a clean
//! environment, read what they print, signal them and wait for them to exit.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// Where a service process listens, from its JSON log line `listening`: its port, and its plain-text
/// health port if it has one. For [`Spawned::wait_for`].
pub fn listening(line: &str) -> Option<(std::net::SocketAddr, Option<std::net::SocketAddr>)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v["message"] != "listening" {
        return None;
    }
    let addr = v["addr"].as_str()?.parse().ok()?;
    Some((addr, v["health"].as_str().and_then(|h| h.parse().ok())))
}

/// The path of a binary of this workspace, built next to the running test (or next to the running
/// binary, for `landsby-bench`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/<binary> -> target/<profile>/<name>
    let sibling = exe.parent().map(|dir| dir.join(name));
    if let Some(path) = sibling.filter(|p| p.exists()) {
        return path;
    }
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run the README's test command (cargo test --workspace builds every binary) \
         or `cargo build --bins` first",
        path.display()
    );
    path
}

/// A running process whose stdout and stderr lines the test can read.
pub struct Spawned {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Spawned {
    /// Starts `command` with stdout and stderr captured.
    pub fn start(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn");
        let (tx, lines) = channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(line);
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Reads lines until `find` returns something, for up to `limit`; panics with what was printed
    /// otherwise.
    pub fn wait_for<T>(&mut self, limit: Duration, find: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = find(&line);
                    self.seen.push(line);
                    if let Some(found) = found {
                        return found;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    panic!(
                        "the process never printed what the test waits for; it printed:\n{}",
                        self.seen.join("\n")
                    )
                }
            }
        }
    }

    /// Every line printed so far.
    pub fn output(&mut self) -> Vec<String> {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.seen.clone()
    }

    /// Sends a signal (`TERM`, `INT`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit; its status and how long that took, or `None` after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<(ExitStatus, Duration)> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some((status, start.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command for a binary of this workspace with an empty environment (but PATH), so the test
/// machine's own LANDSBY_* settings cannot leak in.
pub fn command(name: &str) -> Command {
    let mut command = Command::new(binary(name));
    command.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    command
}

/// `landsby-<name>` on `db` as in production: tokens of the test issuer, mutual TLS with the
/// identity `landsby/<name>`, the test identity-number keys, JSON logs, no per-caller rate (tests
/// and benchmarks call hundreds of times a second as one caseworker; the limit has its own tests),
/// and `extra` settings. Returns once it listens, with its address.
pub fn service(
    name: &str,
    db: &crate::TestDb,
    extra: &[(&str, String)],
) -> (Spawned, std::net::SocketAddr) {
    let section = name.to_uppercase();
    let mut cmd = command(&format!("landsby-{name}"));
    cmd.env(format!("LANDSBY_{section}__DATABASE_URL"), db.url())
        .env(format!("LANDSBY_{section}__LISTEN"), "127.0.0.1:0")
        .env("LANDSBY_DATA_DIR", db.dir())
        .env("LANDSBY_AUTH__ISSUER", crate::TEST_ISSUER)
        .env(
            "LANDSBY_AUTH__PUBLIC_KEY_FILES",
            format!("[\"{}\"]", crate::keys().public_key_file().display()),
        )
        .envs(crate::personal_data_env())
        .envs(crate::pki::tls_env(&format!("landsby/{name}")))
        .env("LANDSBY_LOG__FORMAT", "json")
        .env("LANDSBY_SERVER__CALLER_RATE", "0");
    for (key, value) in extra {
        cmd.env(key, value);
    }
    let mut process = Spawned::start(cmd);
    let (addr, _) = process.wait_for(Duration::from_secs(30), listening);
    (process, addr)
}
