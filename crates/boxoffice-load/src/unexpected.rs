//! Every answer outside a call's expected statuses, as the k6 API client logs it
//! (`UNEXPECTED_RESPONSE {json}` in k6-output.txt, at most 20 per VU): what came back, from which
//! endpoint, when, and the first bytes of the body. The report lists them by endpoint, status and
//! code, and the first ones one by one, so no unexpected answer goes unexplained.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

const MARK: &str = "UNEXPECTED_RESPONSE ";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub t: String,
    pub endpoint: String,
    pub status: u16,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub error: String,
}

/// The logged answers of a run, in the order logged.
pub fn read(dir: &Path) -> Vec<Answer> {
    let Ok(text) = std::fs::read_to_string(dir.join("k6-output.txt")) else { return Vec::new() };
    text.lines().filter_map(parse_line).collect()
}

/// k6 writes `level=warning msg="UNEXPECTED_RESPONSE {\"t\":…}" source=console`: the message is
/// quoted with backslash escapes.
fn parse_line(line: &str) -> Option<Answer> {
    let start = line.find(MARK)? + MARK.len();
    let rest = &line[start..];
    let quoted = line[..start].ends_with(&format!("msg=\"{MARK}"));
    let json = if quoted {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?),
                '"' => break,
                c => out.push(c),
            }
        }
        out
    } else {
        rest.to_owned()
    };
    serde_json::from_str(&json).ok()
}

/// The report's section; empty when nothing unexpected was logged.
pub fn markdown(answers: &[Answer], counted: u64) -> String {
    let mut m = String::new();
    if answers.is_empty() && counted == 0 {
        return m;
    }
    let _ = writeln!(m, "## Unexpected responses\n");
    let _ = writeln!(
        m,
        "{counted} answers outside their call's expected statuses (the throughput table's `unexpected`); \
         the k6 client logged {} of them (at most 20 per VU).\n",
        answers.len()
    );
    let mut by: BTreeMap<(&str, u16, &str), usize> = BTreeMap::new();
    for a in answers {
        *by.entry((a.endpoint.as_str(), a.status, a.code.as_str())).or_default() += 1;
    }
    let _ = writeln!(m, "| endpoint | status | code | logged |\n|---|---|---|---|");
    for ((endpoint, status, code), n) in &by {
        let status = if *status == 0 { "no response".to_owned() } else { status.to_string() };
        let _ = writeln!(m, "| {endpoint} | {status} | {} | {n} |", if code.is_empty() { "–" } else { code });
    }
    let _ = writeln!(
        m,
        "\nThe first {}:\n\n| time | endpoint | status | code | body (first bytes) or error |",
        answers.len().min(20)
    );
    let _ = writeln!(m, "|---|---|---|---|---|");
    for a in answers.iter().take(20) {
        let what = if a.error.is_empty() { &a.body } else { &a.error };
        let what: String = what.chars().take(120).collect::<String>().replace('|', "\\|").replace('\n', " ");
        let _ = writeln!(m, "| {} | {} | {} | {} | {} |", a.t, a.endpoint, a.status, a.code, what);
    }
    m.push('\n');
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_k6_console_lines() {
        let line = r#"time="2026-12-07T04:40:00Z" level=warning msg="UNEXPECTED_RESPONSE {\"t\":\"2026-12-07T04:40:00.123Z\",\"endpoint\":\"POST /api/v1/payments\",\"status\":500,\"code\":\"INTERNAL\",\"body\":\"{\\\"code\\\":\\\"INTERNAL\\\"}\",\"error\":\"\"}" source=console"#;
        let a = parse_line(line).expect("parsed");
        assert_eq!((a.endpoint.as_str(), a.status, a.code.as_str()), ("POST /api/v1/payments", 500, "INTERNAL"));
        assert_eq!(a.body, r#"{"code":"INTERNAL"}"#);
        assert!(parse_line("level=info msg=\"teardown\"").is_none());
        let md = markdown(&[a.clone(), a], 3);
        assert!(md.contains("| POST /api/v1/payments | 500 | INTERNAL | 2 |"), "{md}");
        assert!(md.contains("3 answers outside"), "{md}");
        assert!(markdown(&[], 0).is_empty());
    }
}
