//! One HTTP call from a test, with what the tests check of every answer. Shared by the test
//! binaries through `#[path]`.
#![allow(dead_code)]

use serde_json::Value;
use std::time::{Duration, Instant};

pub struct Answer {
    pub status: u16,
    pub retry_after: bool,
    pub problem: bool,
    pub body: Value,
    pub took: Duration,
}

pub async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let started = Instant::now();
    let mut req = c.request(method, url).timeout(Duration::from_secs(10));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("the server answers");
    let status = res.status().as_u16();
    let retry_after = res.headers().contains_key("retry-after");
    let problem = res.headers().get("content-type").is_some_and(|v| v == "application/problem+json");
    let body = res.json().await.unwrap_or(Value::Null);
    Answer { status, retry_after, problem, body, took: started.elapsed() }
}
