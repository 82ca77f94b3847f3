//! Hostile and broken clients for the drills: what a careless or malicious client does to a
//! server's connections rather than to its data. Slowloris heads, bodies that trickle in,
//! connections hoarded and never used, malformed HTTP, and one stolen token replayed from many
//! source addresses. Like a real attacker they reconnect when cut off. All of it goes to
//! 127.0.0.1 (the replay binds 127.0.0.2…) and stops at a deadline.

use crate::flood::{paced, Conn, Tally};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SLOWLORIS_CONNECTIONS: usize = 5000;
pub const HOARD_CONNECTIONS: usize = 5000;
pub const SLOW_BODY_CONNECTIONS: usize = 500;
/// Connections per trickling thread; each connection gets one byte per tick.
const PER_THREAD: usize = 1250;
const TICK: Duration = Duration::from_secs(1);
const RAMP: usize = 5;
const MALFORMED_WORKERS: usize = 4;
const MALFORMED_RATE: f64 = 400.0;
pub const REPLAY_ADDRESSES: usize = 32;
const REPLAY_RATE: f64 = 400.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trickle {
    /// A request head sent one byte per second, never finished.
    Slowloris,
    /// A whole head announcing a body under the size cap (a larger one is refused 413 at once),
    /// then the body one byte per second.
    SlowBody,
    /// A connection opened and never used.
    Hoard,
}

const SLOW_HEAD: &[u8] = b"GET /api/v1/concerts HTTP/1.1\r\nHost: 127.0.0.1\r\n";
const SLOW_PAD: &[u8] = b"X-Slow: a\r\n";
const BODY_HEAD: &[u8] = b"POST /api/v1/queue/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{\"userId\":";

impl Trickle {
    pub fn connections(self) -> usize {
        match self {
            Trickle::Slowloris => SLOWLORIS_CONNECTIONS,
            Trickle::SlowBody => SLOW_BODY_CONNECTIONS,
            Trickle::Hoard => HOARD_CONNECTIONS,
        }
    }

    /// What goes out at once when the connection opens.
    fn opening(self) -> &'static [u8] {
        match self {
            Trickle::SlowBody => BODY_HEAD,
            _ => b"",
        }
    }

    /// The byte sent at tick `i`, if any.
    fn drip(self, i: usize) -> Option<u8> {
        match self {
            Trickle::Slowloris => Some(match SLOW_HEAD.get(i) {
                Some(b) => *b,
                None => SLOW_PAD[(i - SLOW_HEAD.len()) % SLOW_PAD.len()],
            }),
            Trickle::SlowBody => Some(b' '),
            Trickle::Hoard => None,
        }
    }
}

fn socket_addr(base: &str) -> Option<SocketAddr> {
    base.trim_start_matches("http://").to_socket_addrs().ok()?.next()
}

/// The status of an HTTP answer at the start of `buf`, if there is one.
fn status_of(buf: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(buf.get(..12)?).ok()?;
    line.strip_prefix("HTTP/1.1 ")?.trim().parse().ok()
}

struct Trickling {
    stream: TcpStream,
    ticks: usize,
}

fn open(addr: SocketAddr, how: Trickle, tally: &Tally) -> Option<Trickling> {
    let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
        Ok(s) => s,
        Err(_) => {
            tally.count(None);
            return None;
        }
    };
    tally.opened.fetch_add(1, Ordering::Relaxed);
    if s.write_all(how.opening()).is_err() || s.set_nonblocking(true).is_err() {
        tally.cut_off.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    Some(Trickling { stream: s, ticks: 0 })
}

/// One tick of one connection: read what the server said, then send the next byte. False when
/// the connection is over (answered, or closed by the server).
fn tick(c: &mut Trickling, how: Trickle, tally: &Tally) -> bool {
    let mut buf = [0u8; 512];
    match c.stream.read(&mut buf) {
        Ok(0) => {
            tally.cut_off.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        Ok(n) => {
            tally.count(status_of(&buf[..n]));
            return false;
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Err(_) => {
            tally.cut_off.fetch_add(1, Ordering::Relaxed);
            return false;
        }
    }
    if let Some(b) = how.drip(c.ticks) {
        match c.stream.write(&[b]) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => {
                tally.cut_off.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
    }
    c.ticks += 1;
    true
}

/// Keeps `how.connections()` trickling connections open to `bases` until `until`, replacing
/// each one the server ends.
pub fn trickle(how: Trickle, bases: &[String], until: Instant, tally: Arc<Tally>) -> Vec<std::thread::JoinHandle<()>> {
    let addrs: Vec<SocketAddr> = bases.iter().filter_map(|b| socket_addr(b)).collect();
    if addrs.is_empty() {
        return Vec::new();
    }
    let total = how.connections();
    (0..total.div_ceil(PER_THREAD))
        .map(|t| {
            let n = PER_THREAD.min(total - t * PER_THREAD);
            let addrs = addrs.clone();
            let tally = tally.clone();
            std::thread::spawn(move || {
                let mut slots: Vec<Option<Trickling>> = (0..n).map(|_| None).collect();
                let mut next = Instant::now();
                while Instant::now() < until {
                    // As an attacker's script does: connections (and reconnections) opened at
                    // a bounded pace, the whole set within RAMP ticks.
                    let mut may_open = n.div_ceil(RAMP);
                    for (i, slot) in slots.iter_mut().enumerate() {
                        if Instant::now() >= until {
                            break;
                        }
                        let live = match slot {
                            Some(c) => tick(c, how, &tally),
                            None => false,
                        };
                        if !live {
                            *slot = None;
                            if may_open > 0 {
                                may_open -= 1;
                                *slot = open(addrs[i % addrs.len()], how, &tally);
                            }
                        }
                    }
                    next += TICK;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait.min(until.saturating_duration_since(Instant::now())));
                    }
                }
            })
        })
        .collect()
}

/// Requests that are not HTTP a server should serve: each on a connection of its own.
pub const MALFORMED: &[(&str, &str)] = &[
    ("a 32 KiB header", "GET /api/v1/concerts HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {big}\r\n\r\n"),
    ("100 headers", "GET /api/v1/concerts HTTP/1.1\r\nHost: 127.0.0.1\r\n{many}\r\n"),
    (
        "invalid chunked encoding",
        "POST /api/v1/queue/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    ),
    (
        "an absurd Content-Length",
        "POST /api/v1/queue/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
    ),
    (
        "Content-Length and chunked together",
        "POST /api/v1/queue/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
    ),
    ("a request line that is not HTTP", "\u{16}\u{3}\u{1} hello there\r\n\r\n"),
];

fn malformed_bytes(i: usize) -> Vec<u8> {
    let (_, template) = MALFORMED[i % MALFORMED.len()];
    let many: String = (0..100).map(|k| format!("X-H{k}: v\r\n")).collect();
    template.replace("{big}", &"a".repeat(32 * 1024)).replace("{many}", &many).into_bytes()
}

/// Sends one malformed request on a new connection; counts the answer, or a cut-off.
fn send_malformed(addr: SocketAddr, i: usize, tally: &Tally) {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        tally.count(None);
        return;
    };
    tally.opened.fetch_add(1, Ordering::Relaxed);
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    // The server may answer and close before all of it is written: that is a fine outcome.
    let _ = s.write_all(&malformed_bytes(i));
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(n) if n > 0 => tally.count(status_of(&buf[..n])),
        _ => {
            tally.cut_off.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub fn malformed(bases: &[String], until: Instant, tally: Arc<Tally>) -> Vec<std::thread::JoinHandle<()>> {
    let addrs: Vec<SocketAddr> = bases.iter().filter_map(|b| socket_addr(b)).collect();
    let pace = Duration::from_secs_f64(MALFORMED_WORKERS as f64 / MALFORMED_RATE);
    (0..MALFORMED_WORKERS)
        .filter(|_| !addrs.is_empty())
        .map(|w| {
            let addrs = addrs.clone();
            let tally = tally.clone();
            std::thread::spawn(move || {
                let mut i = w;
                paced(pace, until, || {
                    send_malformed(addrs[i % addrs.len()], i, &tally);
                    i += MALFORMED_WORKERS;
                });
            })
        })
        .collect()
}

/// One admitted user's token, taken by `REPLAY_ADDRESSES` clients on as many source addresses,
/// each trying to hold seats of date 1 (the last seats, away from the scenario's own picks)
/// and reading the queue status with it.
pub fn replay(bases: &[String], user: i64, until: Instant, tally: Arc<Tally>) -> Vec<std::thread::JoinHandle<()>> {
    let Some(base) = bases.first().cloned() else { return Vec::new() };
    let pace = Duration::from_secs_f64(REPLAY_ADDRESSES as f64 / REPLAY_RATE);
    let token = {
        let mut conn = Conn::new(&base);
        crate::flood::admitted_token(&mut conn, user, until)
    };
    let Some(token) = token else {
        tally.count(None);
        return Vec::new();
    };
    let token = Arc::new(token);
    (0..REPLAY_ADDRESSES)
        .map(|k| {
            let base = bases[k % bases.len()].clone();
            let token = token.clone();
            let tally = tally.clone();
            std::thread::spawn(move || {
                let from = std::net::Ipv4Addr::new(127, 0, 0, 2 + k as u8);
                let mut conn = Conn::new(&base).bound_to(from);
                let mut n = 0usize;
                paced(pace, until, || {
                    let seat = 50 - (k + n) % 10;
                    let body = format!(r#"{{"scheduleId":1,"seatNo":{seat}}}"#);
                    let status = conn.post("/api/v1/reservations", Some(&token), &body).map(|(s, _)| s);
                    tally.count(status);
                    n += 1;
                });
            })
        })
        .collect()
}
