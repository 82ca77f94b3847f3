//! Abusive traffic for the drills, from a few users on a few keep-alive connections to
//! 127.0.0.1: a token flood (the same users asking for queue tokens as fast as they can) and a
//! hot-seat storm (admitted users trying to hold one seat over and over). Bounded by a deadline.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Answers the abusive clients got, by class.
#[derive(Debug, Default, Serialize)]
pub struct Tally {
    pub sent: AtomicU64,
    pub ok_2xx: AtomicU64,
    pub conflict_409: AtomicU64,
    pub limited_429: AtomicU64,
    /// The server's limits answering: request timeout, head too large, connection cap.
    pub timeout_408: AtomicU64,
    pub too_large_431: AtomicU64,
    pub refused_503: AtomicU64,
    pub other_4xx: AtomicU64,
    pub server_5xx: AtomicU64,
    pub transport_errors: AtomicU64,
    /// Hostile clients: connections opened, and those the server closed without an answer.
    pub opened: AtomicU64,
    pub cut_off: AtomicU64,
}

impl Tally {
    pub(crate) fn count(&self, status: Option<u16>) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let slot = match status {
            Some(200..=299) => &self.ok_2xx,
            Some(408) => &self.timeout_408,
            Some(409) => &self.conflict_409,
            Some(429) => &self.limited_429,
            Some(431) => &self.too_large_431,
            Some(400..=499) => &self.other_4xx,
            Some(503) => &self.refused_503,
            Some(_) => &self.server_5xx,
            None => &self.transport_errors,
        };
        slot.fetch_add(1, Ordering::Relaxed);
    }
}

/// One keep-alive HTTP/1.1 connection that reconnects after any failure.
pub(crate) struct Conn {
    addr: String,
    /// The source address to connect from (127.0.0.0/8 has many).
    from: Option<Ipv4Addr>,
    stream: Option<BufReader<TcpStream>>,
}

impl Conn {
    pub(crate) fn new(base: &str) -> Self {
        Self { addr: base.trim_start_matches("http://").to_owned(), from: None, stream: None }
    }

    pub(crate) fn bound_to(self, from: Ipv4Addr) -> Self {
        Self { from: Some(from), ..self }
    }

    fn connect(&self) -> Result<TcpStream> {
        let to = self.addr.to_socket_addrs()?.next().context("no address")?;
        let Some(from) = self.from else { return Ok(TcpStream::connect(to)?) };
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        s.bind(&SocketAddr::from((from, 0)).into())?;
        s.connect(&to.into())?;
        Ok(s.into())
    }

    pub(crate) fn post(&mut self, path: &str, token: Option<&str>, body: &str) -> Option<(u16, String)> {
        let r = self.try_post(path, token, body);
        if r.is_err() {
            self.stream = None;
        }
        r.ok()
    }

    fn try_post(&mut self, path: &str, token: Option<&str>, body: &str) -> Result<(u16, String)> {
        if self.stream.is_none() {
            let s = self.connect()?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.set_nodelay(true)?;
            self.stream = Some(BufReader::new(s));
        }
        let r = self.stream.as_mut().expect("connected above");
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        write!(
            r.get_mut(),
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )?;
        let mut line = String::new();
        r.read_line(&mut line)?;
        let status: u16 = line.split(' ').nth(1).context("no status line")?.parse()?;
        let mut length = 0usize;
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                bail!("connection closed in the headers");
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse()?;
                }
            }
        }
        let mut buf = vec![0; length];
        r.read_exact(&mut buf)?;
        Ok((status, String::from_utf8_lossy(&buf).into_owned()))
    }
}

fn json_field<'a>(body: &'a str, field: &str) -> Option<&'a str> {
    let start = body.find(&format!("\"{field}\":\""))? + field.len() + 4;
    body[start..].split('"').next()
}

/// Joins and polls (as the API asks) until ACTIVE; returns the token.
pub(crate) fn admitted_token(conn: &mut Conn, user: i64, deadline: Instant) -> Option<String> {
    let (_, body) = conn.post("/api/v1/queue/tokens", None, &format!(r#"{{"userId":{user},"concertId":1}}"#))?;
    let token = json_field(&body, "token")?.to_owned();
    while Instant::now() < deadline {
        let status = crate::sampler::http_get_auth(&format!("http://{}", conn.addr), "/api/v1/queue/status", &token)?;
        if status.contains("\"ACTIVE\"") {
            return Some(token);
        }
        if status.contains("\"EXPIRED\"") {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

#[derive(Debug, Clone, Copy)]
pub enum Abuse {
    /// POST /queue/tokens for the same few users, back to back.
    TokenFlood,
    /// POST /reservations for seat 1 of date 1, back to back, by a few admitted users.
    HotSeat,
    /// Hostile clients (see `hostile`): heads a byte at a time, bodies that trickle in,
    /// connections hoarded, malformed HTTP, one token replayed from many addresses.
    Slowloris,
    SlowBody,
    IdleHoard,
    Malformed,
    TokenReplay,
}

impl Abuse {
    /// What the drill's timeline calls it.
    pub fn description(self) -> &'static str {
        match self {
            Abuse::TokenFlood => "token flood",
            Abuse::HotSeat => "hot-seat storm on seat 1 of date 1",
            Abuse::Slowloris => "slowloris: 5,000 connections sending a request head one byte a second",
            Abuse::SlowBody => "slow body: 500 connections sending a 60 KB body one byte a second",
            Abuse::IdleHoard => "idle hoarding: 5,000 connections opened and never used",
            Abuse::Malformed => "malformed HTTP: oversized heads, 100 headers, invalid chunked, absurd Content-Length, garbage, 400 requests/s",
            Abuse::TokenReplay => "one admitted user's token replayed from 32 source addresses, trying holds at 400 requests/s",
        }
    }

    /// The service's own defence, as counted in /metrics: what its alert watches.
    pub fn refusals(self) -> &'static str {
        match self {
            Abuse::TokenFlood => "token requests refused with 429 (boxoffice_rate_limited_total)",
            Abuse::HotSeat => "holds refused with 409 SEAT_UNAVAILABLE",
            Abuse::Slowloris | Abuse::IdleHoard | Abuse::Malformed => {
                "connections cut off by the server (boxoffice_http_connections_cut_total)"
            }
            Abuse::SlowBody => "requests answered 408 (the request timeout)",
            Abuse::TokenReplay => "holds refused with 409 (one live hold per user and concert)",
        }
    }

    /// How many refusals one instance's /metrics text shows so far.
    pub fn refused_in(self, metrics: &str) -> f64 {
        match self {
            Abuse::TokenFlood => crate::sampler::metric_sum(metrics, "boxoffice_rate_limited_total", ""),
            Abuse::HotSeat | Abuse::TokenReplay => crate::sampler::metric_sum(
                metrics,
                "boxoffice_http_requests_total",
                "route=\"/api/v1/reservations\",status=\"409\"",
            ),
            Abuse::Slowloris | Abuse::IdleHoard | Abuse::Malformed => {
                crate::sampler::metric_sum(metrics, "boxoffice_http_connections_cut_total", "")
            }
            Abuse::SlowBody => crate::sampler::metric_sum(metrics, "boxoffice_http_request_timeouts_total", ""),
        }
    }

    /// Hostile clients attack connections, not data: they bring their own counts and pacing.
    pub fn is_hostile(self) -> bool {
        !matches!(self, Abuse::TokenFlood | Abuse::HotSeat)
    }
}

/// Calls `step` once every `pace` until `until`, on the caller's thread: the abusive clients'
/// requests are paced so the generator does not starve the rest of the box.
pub(crate) fn paced(pace: Duration, until: Instant, mut step: impl FnMut()) {
    let mut next = Instant::now();
    while Instant::now() < until {
        next += pace;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        step();
    }
}

/// Runs `workers` abusive clients until `until`, spread over `bases`, as users `users`, at
/// `rate` requests/s in all (paced, so the generator does not starve the rest of the box).
pub fn run(
    abuse: Abuse,
    bases: &[String],
    users: &[i64],
    workers: usize,
    rate: f64,
    until: Instant,
    tally: Arc<Tally>,
) -> Vec<std::thread::JoinHandle<()>> {
    use crate::hostile::{self, Trickle};
    match abuse {
        Abuse::Slowloris => return hostile::trickle(Trickle::Slowloris, bases, until, tally),
        Abuse::SlowBody => return hostile::trickle(Trickle::SlowBody, bases, until, tally),
        Abuse::IdleHoard => return hostile::trickle(Trickle::Hoard, bases, until, tally),
        Abuse::Malformed => return hostile::malformed(bases, until, tally),
        Abuse::TokenReplay => return hostile::replay(bases, users.first().copied().unwrap_or(1), until, tally),
        Abuse::TokenFlood | Abuse::HotSeat => {}
    }
    let pace = Duration::from_secs_f64(workers as f64 / rate.max(1.0));
    (0..workers)
        .map(|i| {
            let base = bases[i % bases.len()].clone();
            let user = users[i % users.len()];
            let tally = tally.clone();
            std::thread::spawn(move || {
                let mut conn = Conn::new(&base);
                let join = format!(r#"{{"userId":{user},"concertId":1}}"#);
                let token = match abuse {
                    Abuse::HotSeat => match admitted_token(&mut conn, user, until) {
                        Some(t) => Some(t),
                        None => return,
                    },
                    _ => None,
                };
                paced(pace, until, || {
                    let status = match (&abuse, &token) {
                        (Abuse::HotSeat, Some(t)) => {
                            conn.post("/api/v1/reservations", Some(t), r#"{"scheduleId":1,"seatNo":1}"#)
                        }
                        _ => conn.post("/api/v1/queue/tokens", None, &join),
                    }
                    .map(|(s, _)| s);
                    tally.count(status);
                    if status.is_none() {
                        // Down or refusing connections: do not spin.
                        std::thread::sleep(Duration::from_millis(50));
                    }
                });
            })
        })
        .collect()
}
