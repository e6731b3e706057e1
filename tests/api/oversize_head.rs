//! An oversize request head on a kept-alive connection (issue 11, item 6).
//!
//! Before the patched actix-http (`vendor/actix-http`, see its `Lanyard patch` comments) the
//! server answered without `Connection: close` (431 above 128 KiB of head, 400 for a URI over
//! 64 KiB) and then dropped the socket with the rest of the request unread, so the kernel sent
//! RST and a keep-alive client's next request on that connection was reset. Now: 431 (header
//! section) or 414 (URI) with `Connection: close`, the response is followed by a clean EOF, and
//! the server keeps serving.
//!
//! Raw `TcpStream`s, because an HTTP client library would hide exactly what is tested here:
//! the `Connection` header, and whether the connection ends with FIN or RST. Only SQLite: this is
//! the HTTP layer, the same on both backends.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::helpers::{Backend, TestDb, TestServer};

/// actix-http's limit on a request head (`MAX_BUFFER_SIZE`, 128 KiB); tests go well past it.
const OVER_THE_LIMIT: usize = 256 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_header_gets_431_with_connection_close_and_no_reset() {
    let db = TestDb::create(Backend::Sqlite).await;
    let server = TestServer::start(&db).await;
    let request =
        format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: c={}\r\n\r\n", "a".repeat(OVER_THE_LIMIT));
    after_a_kept_alive_request(&server, request, 431).await;
    a_fresh_connection_gets_200(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_uri_gets_414_with_connection_close_and_no_reset() {
    let db = TestDb::create(Backend::Sqlite).await;
    let server = TestServer::start(&db).await;
    // Longer than the whole head limit: the request line never ends within it.
    let request = format!("GET /healthz?q={} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "a".repeat(OVER_THE_LIMIT));
    after_a_kept_alive_request(&server, request, 414).await;
    // Within the head limit but longer than any URI the server can represent (64 KiB): this one
    // used to be a plain 400 without `Connection: close`.
    let request = format!("GET /healthz?q={} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "a".repeat(70_000));
    after_a_kept_alive_request(&server, request, 414).await;
    a_fresh_connection_gets_200(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_headers_get_431_with_connection_close_and_no_reset() {
    let db = TestDb::create(Backend::Sqlite).await;
    let server = TestServer::start(&db).await;
    let headers: String = (0..100).map(|i| format!("X-Header-{i}: v\r\n")).collect();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n");
    after_a_kept_alive_request(&server, request, 431).await;
    a_fresh_connection_gets_200(&server).await;
}

/// A header name over 64 KiB used to panic inside actix-http (an `unwrap`), killing the worker
/// thread and every connection it served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_name_over_64_kib_gets_431_and_the_other_connections_live_on() {
    let db = TestDb::create(Backend::Sqlite).await;
    let server = TestServer::start(&db).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    // Connections kept alive around the bad one, on whichever worker they landed.
    let bystanders = tokio::task::spawn_blocking(move || {
        (0..4)
            .map(|_| {
                let mut s = connect(&addr);
                s.write_all(HEALTHZ.as_bytes()).expect("write");
                assert_eq!(read_response(&mut s).expect("response").status, 200);
                s
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("bystanders");
    let request = format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-{}: v\r\n\r\n", "n".repeat(70_000));
    after_a_kept_alive_request(&server, request, 431).await;
    tokio::task::spawn_blocking(move || {
        for (i, mut s) in bystanders.into_iter().enumerate() {
            s.write_all(HEALTHZ.as_bytes()).expect("write");
            let response = read_response(&mut s).unwrap_or_else(|e| panic!("bystander {i} lost its connection: {e}"));
            assert_eq!(response.status, 200, "bystander {i}");
        }
    })
    .await
    .expect("bystanders live on");
    a_fresh_connection_gets_200(&server).await;
}

const HEALTHZ: &str = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// On one connection: a normal keep-alive request (200, connection kept), then `oversize`,
/// written in full as a client would before reading: it must be answered `expected` with
/// `Connection: close`, and the connection must then end with EOF, not a reset.
async fn after_a_kept_alive_request(server: &TestServer, oversize: String, expected: u16) {
    let addr = server.base.trim_start_matches("http://").to_string();
    tokio::task::spawn_blocking(move || {
        let mut s = connect(&addr);
        s.write_all(HEALTHZ.as_bytes()).expect("write the first request");
        let first = read_response(&mut s).expect("first response");
        assert_eq!(first.status, 200, "the first request is served");
        assert_ne!(first.header("connection"), Some("close"), "the first response keeps the connection: {first:?}");

        if let Err(e) = s.write_all(oversize.as_bytes()) {
            panic!("the server reset the connection while the {} byte request was being sent: {e}", oversize.len());
        }
        let response = read_response(&mut s).unwrap_or_else(|e| panic!("no response to the oversize request: {e}"));
        assert_eq!(response.status, expected, "{response:?}");
        assert_eq!(response.header("connection"), Some("close"), "{response:?}");

        let mut rest = Vec::new();
        match s.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty(), "nothing follows the response: {:?}", String::from_utf8_lossy(&rest)),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => panic!("the connection was reset after the response"),
            Err(e) => panic!("the connection did not end cleanly after the response: {e}"),
        }
    })
    .await
    .expect("client");
}

async fn a_fresh_connection_gets_200(server: &TestServer) {
    let addr = server.base.trim_start_matches("http://").to_string();
    tokio::task::spawn_blocking(move || {
        let mut s = connect(&addr);
        s.write_all(HEALTHZ.as_bytes()).expect("write");
        assert_eq!(read_response(&mut s).expect("response on a fresh connection").status, 200);
    })
    .await
    .expect("fresh connection");
}

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Reads one response: its head and its `Content-Length` body, nothing more.
fn read_response(s: &mut TcpStream) -> io::Result<RawResponse> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(io::Error::new(ErrorKind::UnexpectedEof, "EOF before the end of a response head"));
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let response = RawResponse { status, headers };
    let length: usize = response.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; length];
    s.read_exact(&mut body)?;
    Ok(response)
}
