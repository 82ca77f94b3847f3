//! What a hostile or broken client can make the server hold, and how it is cut off: connections
//! past the limit, heads that trickle in or are too large, bodies that trickle in, idle
//! keep-alive connections. Everyone else is served meanwhile.

use boxoffice::cli::ServeArgs;
use boxoffice::server::Server;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn server(dir: &std::path::Path, tune: impl FnOnce(&mut ServeArgs)) -> Server {
    let mut a = ServeArgs::for_tests(dir);
    a.header_read_timeout = Duration::from_millis(400);
    a.request_timeout = Duration::from_millis(400);
    tune(&mut a);
    let s = Server::start(a).await.expect("server starts");
    s.app.store.seed(boxoffice::store::SeedSpec::DEMO, boxoffice::domain::Millis::now()).await.unwrap();
    s
}

/// Sends `head` and reads what comes back until the server closes or `within` passes.
async fn exchange(addr: std::net::SocketAddr, head: &[u8], within: Duration) -> (String, bool) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head).await.unwrap();
    read_all(&mut s, within).await
}

/// What the server sent, and whether it closed the connection within `within`.
async fn read_all(s: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&buf).into_owned(), true),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return (String::from_utf8_lossy(&buf).into_owned(), false),
        }
    }
}

async fn still_serves(addr: std::net::SocketAddr) {
    let r = reqwest::get(format!("http://{addr}/health/live")).await.expect("the server answers others");
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_get_503_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |a| {
        a.max_connections = 4;
        a.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 512];
        let n = c.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(c);
    }
    let started = Instant::now();
    let (answer, closed) =
        exchange(s.addr, b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n", Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1") && answer.contains("TOO_MANY_CONNECTIONS"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(closed && started.elapsed() < Duration::from_secs(1), "refused at once, and closed");
    // A connection that goes frees its place.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (answer, _) = exchange(
            s.addr,
            b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(2),
        )
        .await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the freed place was never given out: {answer}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = reqwest::Client::new();
    drop(held);
    let m = metrics.get(format!("http://{}/metrics", s.addr)).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("boxoffice_http_connections_refused_total"), "refusals are counted");
    assert!(m.contains(r#"boxoffice_http_limit{limit="max_connections"} 4"#), "the limit is shown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_sent_a_byte_at_a_time_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |_| {}).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let started = Instant::now();
    let head = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut closed = false;
    for b in head {
        if c.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        still_serves(s.addr).await;
        tokio::time::sleep(Duration::from_millis(40)).await;
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    if !closed {
        let (answer, eof) = read_all(&mut c, Duration::from_secs(2)).await;
        closed = eof && !answer.starts_with("HTTP/1.1 200");
    }
    assert!(closed, "a head trickling past the header timeout is cut off");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |_| {}).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    let n = c.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Then nothing: the server closes it once the header timeout passes.
    let (_, closed) = read_all(&mut c, Duration::from_secs(3)).await;
    assert!(closed, "an idle keep-alive connection is closed after the header timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_too_large_or_with_too_many_headers_get_431() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |a| {
        a.max_header_bytes = 4096;
        a.max_headers = 16;
    })
    .await;
    let big = format!("GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(8000));
    let (answer, _) = exchange(s.addr, big.as_bytes(), Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    let many: String = (0..40).map(|i| format!("X-H{i}: v\r\n")).collect();
    let head = format!("GET /health/live HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let (answer, _) = exchange(s.addr, head.as_bytes(), Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // Absurd Content-Length and broken chunking: refused, not a 500, and the server goes on.
    let absurd = b"POST /api/v1/queue/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999999999999999\r\n\r\n";
    let (answer, _) = exchange(s.addr, absurd, Duration::from_secs(2)).await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    let chunked = b"POST /api/v1/queue/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n";
    let (answer, _) = exchange(s.addr, chunked, Duration::from_secs(2)).await;
    assert!(!answer.contains(" 500 "), "{answer}");
    still_serves(s.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_in_gets_408() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), |a| a.header_read_timeout = Duration::from_secs(30)).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let body = br#"{"userId": 1, "concertId": 1}"#;
    let head = format!(
        "POST /api/v1/queue/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    for b in &body[..5] {
        let _ = c.write_all(&[*b]).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let (answer, _) = read_all(&mut c, Duration::from_secs(3)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT") && answer.contains("application/problem+json"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
    still_serves(s.addr).await;
}
