//! `loadtest/k6/scenarios.json`: per scenario and scale, the seed, the serve flags, the k6
//! environment, time bounds and the expected outcome. The k6 scripts read the same file.

use anyhow::{anyhow, Context, Result};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Deserialize)]
pub struct Catalog {
    pub scenarios: BTreeMap<String, Scenario>,
}

#[derive(Debug, Deserialize)]
pub struct Scenario {
    pub script: String,
    #[serde(default)]
    pub summary: String,
    pub scales: BTreeMap<String, Scale>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Scale {
    pub seed: Seed,
    #[serde(default)]
    pub serve: BTreeMap<String, Value>,
    #[serde(default)]
    pub k6: K6,
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    #[serde(default)]
    pub expect: Expect,
}

#[derive(Debug, Deserialize, Clone)]
pub struct Seed {
    pub users: u64,
    pub concerts: u64,
    pub schedules: u64,
    pub seats: u64,
    #[serde(default)]
    pub balance: u64,
}

#[derive(Debug, Deserialize, Clone, Default)]
pub struct K6 {
    #[serde(default)]
    pub env: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Expect {
    #[serde(default)]
    pub k6_exit_code: i32,
    #[serde(default = "yes")]
    pub audit_ok: bool,
    /// Exactly this many payments must have been made (e.g. the seat count of a flash sale).
    #[serde(default)]
    pub payments_total: Option<u64>,
}

fn yes() -> bool {
    true
}

impl Default for Expect {
    fn default() -> Self {
        Self { k6_exit_code: 0, audit_ok: true, payments_total: None }
    }
}

pub fn as_arg(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Catalog {
    pub fn load(dir: &Path) -> Result<Catalog> {
        let path = dir.join("scenarios.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn get(&self, name: &str, scale: &str) -> Result<(&Scenario, &Scale)> {
        let s = self.scenarios.get(name).ok_or_else(|| {
            anyhow!("no scenario {name:?}; known: {}", self.scenarios.keys().cloned().collect::<Vec<_>>().join(", "))
        })?;
        let sc = s.scales.get(scale).ok_or_else(|| anyhow!("scenario {name} has no {scale:?} scale"))?;
        Ok((s, sc))
    }
}
