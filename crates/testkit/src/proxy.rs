//! A TCP proxy on loopback that a test can cut, hold, slow down and restore, to make a database (or
//! any peer) unreachable, hanging or slow, without stopping it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const UP: u8 = 0;
const CUT: u8 = 1;
const HOLD: u8 = 2;

/// Forwards connections from its own port to `target` while it is up.
pub struct TcpProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Milliseconds each chunk waits before it is passed on.
    delay: Arc<AtomicU64>,
    cut: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Starts a proxy to `target`, up.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let mode = Arc::new(AtomicU8::new(UP));
        let (cut, cuts) = watch::channel(0u64);
        let delay = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let mode = mode.clone();
            let delay = delay.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    // Only cuts from now on concern this connection.
                    let mut cuts = cuts.clone();
                    cuts.mark_unchanged();
                    match mode.load(Ordering::SeqCst) {
                        CUT => {
                            drop(client);
                            continue;
                        }
                        HOLD => {
                            // Open, silent, until the next cut or restore.
                            tokio::spawn(async move {
                                let _held = client;
                                let _ = cuts.changed().await;
                            });
                            continue;
                        }
                        _ => {}
                    }
                    let delay = delay.clone();
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(target).await else {
                            return;
                        };
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        tokio::select! {
                            _ = pipe(client_read, server_write, &delay) => {}
                            _ = pipe(server_read, client_write, &delay) => {}
                            _ = cuts.changed() => {}
                        }
                    });
                }
            }
        });
        Self {
            addr,
            mode,
            delay,
            cut,
            task,
        }
    }

    /// Cuts every open connection and refuses new ones.
    pub fn cut(&self) {
        self.mode.store(CUT, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    /// Cuts every open connection and holds new ones open without an answer: a peer that hangs.
    pub fn hold(&self) {
        self.mode.store(HOLD, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    /// Forwards new connections again (and lets go of held ones), without delay.
    pub fn restore(&self) {
        self.delay.store(0, Ordering::SeqCst);
        self.mode.store(UP, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    /// Holds every chunk, both ways, for `by` before passing it on (open connections too): a slow
    /// network. [`TcpProxy::restore`] ends it.
    pub fn delay(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.delay.store(ms, Ordering::SeqCst);
    }
}

/// Copies `from` to `to`, each chunk after the proxy's delay, until either side ends.
async fn pipe(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    delay: &AtomicU64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let ms = delay.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
