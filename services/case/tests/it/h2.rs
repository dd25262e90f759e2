//! Malformed HTTP/2 at a running case service, over mutual TLS with a good client certificate (so
//! the frames reach the HTTP/2 layer): bytes that are not HTTP/2, a frame larger than allowed, a header
//! block that does not decode, a header list without end (the CONTINUATION flood), streams opened and
//! reset as fast as they can be sent (the rapid reset), and PINGs sent without reading the answers. Each
//! connection is ended by the server, or its flood read no further than bounded buffers hold, and the
//! service goes on answering. Transport only, so SQLite alone.

use crate::support::*;
use landsby_testkit::pki::{self, pki};
use landsby_testkit::{Backend, TestServer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// HTTP/2 error codes (RFC 9113, section 7).
const PROTOCOL_ERROR: u32 = 0x1;
const FRAME_SIZE_ERROR: u32 = 0x6;
const COMPRESSION_ERROR: u32 = 0x9;
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// A TLS connection to the server as the tests' platform, speaking h2.
async fn connect(server: &TestServer) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki().ca_pem().as_bytes()).unwrap())
        .unwrap();
    let me = pki::test_platform();
    let chain = CertificateDer::pem_slice_iter(me.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(me.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::from(server.addr.ip()), tcp)
        .await
        .unwrap()
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend([kind, flags]);
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

/// An HPACK integer with an `n`-bit prefix whose high bits are `first`.
fn integer(first: u8, n: u32, value: usize, out: &mut Vec<u8>) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// A header as a literal without indexing, with a literal name (no Huffman coding).
fn literal(name: &str, value: &str, out: &mut Vec<u8>) {
    out.push(0x00);
    integer(0, 7, name.len(), out);
    out.extend(name.as_bytes());
    integer(0, 7, value.len(), out);
    out.extend(value.as_bytes());
}

/// The header block of a gRPC health check.
fn health_check(server: &TestServer) -> Vec<u8> {
    let mut block = Vec::new();
    literal(":method", "POST", &mut block);
    literal(":scheme", "https", &mut block);
    literal(":path", "/grpc.health.v1.Health/Check", &mut block);
    literal(":authority", &server.addr.to_string(), &mut block);
    literal("content-type", "application/grpc", &mut block);
    literal("te", "trailers", &mut block);
    block
}

/// The preface and an empty SETTINGS frame: the start of every client connection.
fn start() -> Vec<u8> {
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    out
}

/// How the server ended a connection.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// A GOAWAY with this error code.
    GoAway(u32),
    /// Closed without a GOAWAY (or the TLS session ended).
    Closed,
}

/// Reads frames until the server ends the connection; `None` when it has not within 10 s.
async fn ending(conn: &mut TlsStream<TcpStream>) -> Option<End> {
    let read = async {
        loop {
            let mut head = [0u8; 9];
            if conn.read_exact(&mut head).await.is_err() {
                return End::Closed;
            }
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; len];
            if conn.read_exact(&mut payload).await.is_err() {
                return End::Closed;
            }
            if head[3] == GOAWAY && payload.len() >= 8 {
                let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
                return End::GoAway(code);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .ok()
}

/// Writes `frames`, then reports how the server ended the connection.
async fn send(server: &TestServer, frames: &[u8]) -> Option<End> {
    let mut conn = connect(server).await;
    // The server may end the connection before it has read everything.
    let _ = conn.write_all(frames).await;
    let _ = conn.flush().await;
    ending(&mut conn).await
}

/// The most a flood sends: far more than any buffer on the way should hold.
const FLOOD: usize = 64 << 20;

/// Writes `chunk` again and again, up to [`FLOOD`] bytes, until a write fails or the server stops
/// reading for 5 s; how much was written.
async fn flood(conn: &mut TlsStream<TcpStream>, chunk: &[u8]) -> usize {
    let mut sent = 0;
    while sent < FLOOD {
        let wrote = tokio::time::timeout(Duration::from_secs(5), conn.write_all(chunk)).await;
        if !matches!(wrote, Ok(Ok(()))) {
            break;
        }
        sent += chunk.len();
    }
    sent
}

/// The service still answers a well-formed call on a new connection.
async fn still_answers(server: &TestServer, after: &str) {
    assert_eq!(
        server.health().await,
        Some(landsby_testkit::ServingStatus::Serving),
        "after {after}"
    );
    let mut cw = Client::caseworker(server);
    cw.create(new_case()).await.expect(after);
}

#[tokio::test]
async fn malformed_http2_ends_its_connection_and_the_service_goes_on() {
    let server = TestServer::start(landsby_case::SERVICE, Backend::Sqlite).await;

    // The control: the hand-made frames are good HTTP/2 when not broken (a health check answered).
    let mut conn = connect(&server).await;
    let mut out = start();
    out.extend(frame(HEADERS, END_HEADERS, 1, &health_check(&server)));
    out.extend(frame(DATA, END_STREAM, 1, &[0, 0, 0, 0, 0]));
    conn.write_all(&out).await.unwrap();
    let mut answered = false;
    for _ in 0..20 {
        let mut head = [0u8; 9];
        conn.read_exact(&mut head).await.unwrap();
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        conn.read_exact(&mut payload).await.unwrap();
        if head[3] == HEADERS && u32::from_be_bytes(head[5..9].try_into().unwrap()) == 1 {
            answered = true;
            break;
        }
    }
    assert!(answered, "the well-formed health check was answered");
    drop(conn);

    // Not HTTP/2 at all.
    let end = send(&server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        end.is_some(),
        "a connection that is not HTTP/2 was kept open"
    );
    still_answers(&server, "bytes that are not HTTP/2").await;

    // A frame declaring 16 MiB, over the 16 KiB allowed: refused from its header alone.
    let mut out = start();
    out.extend([0xff, 0xff, 0xff, DATA, 0, 0, 0, 0, 1]);
    assert_eq!(
        send(&server, &out).await,
        Some(End::GoAway(FRAME_SIZE_ERROR))
    );
    still_answers(&server, "an oversized frame").await;

    // A header block that does not decode (an index past any table).
    let mut out = start();
    out.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &[0xff; 16]));
    let end = send(&server, &out).await;
    assert!(
        matches!(end, Some(End::GoAway(PROTOCOL_ERROR | COMPRESSION_ERROR))),
        "a header block that does not decode: {end:?}"
    );
    still_answers(&server, "a header block that does not decode").await;

    // A stream id that goes backwards.
    let mut out = start();
    out.extend(frame(HEADERS, END_HEADERS, 5, &health_check(&server)));
    out.extend(frame(HEADERS, END_HEADERS, 3, &health_check(&server)));
    assert_eq!(send(&server, &out).await, Some(End::GoAway(PROTOCOL_ERROR)));
    still_answers(&server, "a stream id going backwards").await;

    // The CONTINUATION flood: a header list that never ends, far over the 16 KiB allowed. The
    // server must end the connection, not keep the headers: it stops reading long before 64 MiB.
    let mut conn = connect(&server).await;
    conn.write_all(&start()).await.unwrap();
    let mut first = health_check(&server);
    literal("x-filler", &"a".repeat(100), &mut first);
    conn.write_all(&frame(HEADERS, 0, 1, &first)).await.unwrap();
    let mut chunk = Vec::new();
    while chunk.len() < 16_000 {
        literal("x-filler", &"b".repeat(100), &mut chunk);
    }
    let sent = flood(&mut conn, &frame(CONTINUATION, 0, 1, &chunk)).await;
    assert!(
        sent < FLOOD,
        "the server read a 64 MiB header list without ending the connection"
    );
    drop(conn);
    still_answers(&server, "a CONTINUATION flood").await;

    // The rapid reset: 5,000 streams opened and reset at once. The server ends the connection
    // (ENHANCE_YOUR_CALM) rather than keep working for streams nobody waits for.
    let mut out = start();
    let block = health_check(&server);
    for i in 0..5_000u32 {
        let stream = 1 + 2 * i;
        out.extend(frame(HEADERS, END_HEADERS, stream, &block));
        out.extend(frame(RST_STREAM, 0, stream, &8u32.to_be_bytes()));
    }
    let end = send(&server, &out).await;
    assert!(
        matches!(
            end,
            Some(End::GoAway(ENHANCE_YOUR_CALM)) | Some(End::Closed)
        ),
        "the rapid reset: {end:?}"
    );
    still_answers(&server, "a rapid reset").await;

    // A PING flood whose answers are never read: the server's writes back up, and it stops
    // reading rather than queue answers without bound.
    let mut conn = connect(&server).await;
    conn.write_all(&start()).await.unwrap();
    let sent = flood(&mut conn, &frame(PING, 0, 0, &[7; 8]).repeat(1024)).await;
    assert!(
        sent < FLOOD,
        "the server took 64 MiB of PINGs whose answers nobody read"
    );
    drop(conn);
    still_answers(&server, "a PING flood").await;
}
