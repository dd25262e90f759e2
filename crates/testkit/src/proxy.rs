//! A TCP proxy on loopback that a test can cut, hold and restore, to make a database (or any peer)
//! unreachable, or hanging, without stopping it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
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
        let task = tokio::spawn({
            let mode = mode.clone();
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
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(target).await else {
                            return;
                        };
                        let (mut client, mut server) = (client, server);
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cuts.changed() => {}
                        }
                    });
                }
            }
        });
        Self {
            addr,
            mode,
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

    /// Forwards new connections again (and lets go of held ones).
    pub fn restore(&self) {
        self.mode.store(UP, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
