//! Per-request bookkeeping kept off the hot path: metric handles looked up once per route,
//! method and status instead of building label sets and querying the registry on every request,
//! and request ids drawn from a thread-local generator instead of a `getrandom` system call each.

use axum::http::{HeaderValue, Method, Request};
use metrics::{Counter, Histogram};
use parking_lot::RwLock;
use std::collections::HashMap;
use tower_http::request_id::{MakeRequestId, RequestId};

#[derive(Default)]
pub struct RequestMetrics {
    /// Route template → handles for that route; routes are a fixed, small set.
    routes: RwLock<HashMap<String, RouteHandles>>,
}

#[derive(Default)]
struct RouteHandles {
    durations: Vec<(Method, Histogram)>,
    counts: Vec<(Method, u16, Counter)>,
}

impl RouteHandles {
    fn find(&self, method: &Method, status: u16) -> Option<(&Histogram, &Counter)> {
        let h = self.durations.iter().find(|(m, _)| m == method).map(|(_, h)| h)?;
        let c = self.counts.iter().find(|(m, s, _)| m == method && *s == status).map(|(_, _, c)| c)?;
        Some((h, c))
    }
}

impl RequestMetrics {
    /// `boxoffice_http_requests_total` and `boxoffice_http_request_duration_seconds`.
    pub fn record(&self, route: &str, method: &Method, status: u16, seconds: f64) {
        if let Some((h, c)) = self.routes.read().get(route).and_then(|r| r.find(method, status)) {
            h.record(seconds);
            c.increment(1);
            return;
        }
        let mut routes = self.routes.write();
        let r = routes.entry(route.to_owned()).or_default();
        if !r.durations.iter().any(|(m, _)| m == method) {
            let h = metrics::histogram!("boxoffice_http_request_duration_seconds",
                "method" => method.as_str().to_owned(), "route" => route.to_owned());
            r.durations.push((method.clone(), h));
        }
        if !r.counts.iter().any(|(m, s, _)| m == method && *s == status) {
            let c = metrics::counter!("boxoffice_http_requests_total",
                "method" => method.as_str().to_owned(), "route" => route.to_owned(), "status" => status.to_string());
            r.counts.push((method.clone(), status, c));
        }
        let (h, c) = r.find(method, status).expect("both handles were just inserted");
        h.record(seconds);
        c.increment(1);
    }
}

/// `boxoffice_http_problems_total{method, route, status, code}`: every problem+json answer by
/// route template and problem code (`boxoffice_errors_total` counts codes without the route).
/// Looked up per call: problems are the minority of answers, and the label set is bounded by
/// routes × codes.
pub fn problem(route: &str, method: &Method, status: u16, code: crate::domain::error::Code) {
    metrics::counter!("boxoffice_http_problems_total",
        "method" => method.as_str().to_owned(), "route" => route.to_owned(),
        "status" => status.to_string(), "code" => code.as_str())
    .increment(1);
}

/// UUID v4 request ids from the thread's generator (`rand::thread_rng`, seeded once per thread).
#[derive(Clone, Copy, Default)]
pub struct FastRequestId;

impl MakeRequestId for FastRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        HeaderValue::from_str(&id.to_string()).ok().map(RequestId::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_distinct_v4_uuids() {
        let req = Request::new(());
        let ids: std::collections::HashSet<String> = (0..1000)
            .map(|_| FastRequestId.make_request_id(&req).unwrap().header_value().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids.len(), 1000);
        for id in ids.iter().take(5) {
            assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
        }
    }
}
