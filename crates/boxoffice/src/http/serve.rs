//! The accept loop and HTTP/1.1 connections, with bounds on what a client can make us hold.
//!
//! axum's `serve` builds an HTTP/1 + HTTP/2 connection for every socket and offers no limits. Here
//! each socket gets hyper's HTTP/1 connection alone (the service speaks HTTP/1.1; a proxy in
//! front terminates anything else), which is lighter per connection, and:
//! - at most `max_connections` are open at once; past that a socket is answered 503 with
//!   Retry-After and closed, instead of letting the accept queue and memory grow;
//! - a connection must deliver a request's headers within `header_read_timeout` of starting to
//!   wait for them, which also closes idle keep-alive connections after that long;
//! - headers are capped in size (`max_header_bytes`, 431 past it) and count (`max_headers`);
//! - the request timeout (a middleware in `http::router`) bounds reading the body and answering.

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// How long a graceful stop waits for requests in flight.
    pub drain_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 20_000,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

impl ConnectionLimits {
    /// Publishes each limit as `boxoffice_http_limit{limit}`, so dashboards show what is in force.
    pub fn publish(&self) {
        let g = |name: &'static str, v: f64| metrics::gauge!("boxoffice_http_limit", "limit" => name).set(v);
        g("max_connections", self.max_connections as f64);
        g("header_read_timeout_seconds", self.header_read_timeout.as_secs_f64());
        g("max_header_bytes", self.max_header_bytes as f64);
        g("max_headers", self.max_headers as f64);
        // Exported from the start at 0, so alerts and dashboards see a rate rather than nothing.
        for reason in CUT_REASONS {
            metrics::counter!("boxoffice_http_connections_cut_total", "reason" => reason).increment(0);
        }
        metrics::counter!("boxoffice_http_request_timeouts_total").increment(0);
        metrics::counter!("boxoffice_http_connections_refused_total").increment(0);
    }
}

/// Counts an open connection until it is dropped.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("boxoffice_http_connections_open").decrement(1.0);
    }
}

/// The answer to a connection past the limit, sent without reading the request.
fn refusal() -> &'static [u8] {
    static ANSWER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    ANSWER.get_or_init(|| {
        let body = crate::http::problem::body_of(&crate::domain::Error::new(
            crate::domain::Code::TooManyConnections,
            "too many open connections; try again shortly",
        ));
        let body = String::from_utf8_lossy(&body);
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\n\
             connection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    })
}

async fn refuse(mut stream: TcpStream) {
    metrics::counter!("boxoffice_http_connections_refused_total").increment(1);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(refusal()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

const CUT_REASONS: [&str; 4] = ["header_timeout", "malformed", "closed_mid_request", "other"];

/// Why a connection ended in an error, as a label: what a slowloris or a broken client shows.
fn cut_reason(e: &hyper::Error) -> &'static str {
    let [timeout, malformed, closed, other] = CUT_REASONS;
    if e.is_timeout() {
        timeout
    } else if e.is_parse() || e.is_parse_too_large() {
        malformed
    } else if e.is_incomplete_message() {
        closed
    } else {
        other
    }
}

/// Serves `router` on `listener` until `stop` resolves, then stops accepting and waits up to
/// `drain_timeout` for the connections' requests in flight (idle keep-alive connections close at
/// once).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    limits.publish();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_headers(limits.max_headers)
        .keep_alive(true);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let open = Arc::new(AtomicUsize::new(0));
    tokio::pin!(stop);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors or memory: back off instead of spinning on accept.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        if open.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
            open.fetch_sub(1, Ordering::AcqRel);
            tokio::spawn(refuse(stream));
            continue;
        }
        metrics::gauge!("boxoffice_http_connections_open").increment(1.0);
        let guard = Open(open.clone());
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(
            router.clone().map_request(|req: axum::http::Request<Incoming>| req.map(axum::body::Body::new)),
        );
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                metrics::counter!("boxoffice_http_connections_cut_total", "reason" => cut_reason(&e)).increment(1);
            }
            drop(guard);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain_timeout, graceful.shutdown()).await.is_err() {
        tracing::warn!(timeout = ?limits.drain_timeout, "requests still in flight when the drain time ran out");
    }
    Ok(())
}
