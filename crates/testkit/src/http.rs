//! A small but real HTTP/1.1 server on 127.0.0.1 for tests of what landsby sends out (SMS gateways,
//! webhooks): it reads each request (a `Content-Length` body), records it, and answers as the test
//! says — or never, to stand for an endpoint that hangs.

use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// One request as the HTTP server received it.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How the HTTP server answers a request: a status and a body, or nothing ever.
pub type Respond = dyn Fn(&Request) -> Option<(u16, String)> + Send + Sync;

pub struct HttpServer {
    pub url: String,
    pub requests: mpsc::UnboundedReceiver<Request>,
}

impl HttpServer {
    pub async fn next(&mut self) -> Request {
        tokio::time::timeout(Duration::from_secs(5), self.requests.recv())
            .await
            .expect("the HTTP server got no request")
            .unwrap()
    }
}

/// A server answering each request with `respond`.
pub async fn http_server(
    respond: impl Fn(&Request) -> Option<(u16, String)> + Send + Sync + 'static,
) -> HttpServer {
    let respond: Arc<Respond> = Arc::new(respond);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, requests) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (tx, respond) = (tx.clone(), respond.clone());
            tokio::spawn(async move {
                let _ = exchange(stream, &*respond, tx).await;
            });
        }
    });
    HttpServer {
        url: format!("http://{addr}"),
        requests,
    }
}

/// Reads one HTTP/1.1 request (a `Content-Length` body), answers it, and closes.
async fn exchange(
    mut stream: TcpStream,
    respond: &Respond,
    requests: mpsc::UnboundedSender<Request>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            Some((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let request = Request {
        method,
        path,
        headers,
        body,
    };
    let answer = respond(&request);
    let _ = requests.send(request);
    let Some((status, body)) = answer else {
        // Never answer: hold the connection open until the client gives up.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        return Ok(());
    };
    let response = format!(
        "HTTP/1.1 {status} Status\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
