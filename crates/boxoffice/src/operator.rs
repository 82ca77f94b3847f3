//! The operator's command line: `boxoffice admin …` calls the same admin API as the operator
//! page, and `boxoffice verify-draw` checks a published on-sale draw (`domain::draw`).

use crate::cli::{AdminAction, AdminArgs, VerifyDrawArgs};
use crate::domain::draw::{verify, PublishedDraw};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::process::ExitCode;
use std::time::Duration;

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?)
}

fn admin_secret(args: &AdminArgs) -> anyhow::Result<String> {
    if let Some(t) = &args.admin_token {
        return Ok(t.clone());
    }
    let path = args.data_dir.join("admin.token");
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_owned())
        .with_context(|| format!("no --admin-token given and {} cannot be read", path.display()))
}

/// Runs one operator action and prints the server's answer; exits 1 when it refused.
pub async fn admin(args: AdminArgs) -> anyhow::Result<ExitCode> {
    let secret = admin_secret(&args)?;
    let base = args.url.trim_end_matches('/');
    let line = |c: i64| format!("{base}/api/v1/admin/concerts/{c}/line");
    let c = client()?;
    let req = match &args.action {
        AdminAction::Line { concert } => c.get(line(*concert)),
        AdminAction::Set { concert, max_active, admission_rate, on_sale_at } => c
            .patch(line(*concert))
            .json(&json!({ "maxActive": max_active, "admissionRate": admission_rate, "onSaleAt": on_sale_at })),
        AdminAction::Pause { concert } => c.patch(line(*concert)).json(&json!({ "paused": true })),
        AdminAction::Resume { concert } => c.patch(line(*concert)).json(&json!({ "paused": false })),
        AdminAction::Close { concert } => c.patch(line(*concert)).json(&json!({ "closed": true })),
        AdminAction::Reopen { concert } => c.patch(line(*concert)).json(&json!({ "closed": false })),
        AdminAction::Audit { limit } => c.get(format!("{base}/api/v1/admin/audit?limit={limit}")),
    };
    let res = req.bearer_auth(secret).send().await.with_context(|| format!("calling {base}"))?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    println!("{}", serde_json::to_string_pretty(&body)?);
    if status.is_success() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("refused: {status} {}", body["detail"].as_str().unwrap_or(""));
        Ok(ExitCode::from(1))
    }
}

/// Reads a published draw from a URL, a file or stdin, and recomputes it.
pub async fn verify_draw(args: VerifyDrawArgs) -> anyhow::Result<ExitCode> {
    let text = if args.source.starts_with("http://") || args.source.starts_with("https://") {
        let res = client()?.get(&args.source).send().await.with_context(|| format!("fetching {}", args.source))?;
        if !res.status().is_success() {
            bail!("{} answered {}", args.source, res.status());
        }
        res.text().await?
    } else if args.source == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(&args.source).with_context(|| format!("reading {}", args.source))?
    };
    let raw: Value = serde_json::from_str(&text).context("the published draw is not JSON")?;
    if raw["drawn"] == false || raw["seed"].is_null() {
        bail!("the draw has not run yet: only its commitment {} is published", raw["commitment"]);
    }
    let draw: PublishedDraw = serde_json::from_value(raw).context("the published draw lacks a field")?;
    match verify(&draw) {
        Ok(()) => {
            println!(
                "OK: concert {}: the seed matches the commitment {}, and the {} entries are in the order the seed gives",
                draw.concert_id,
                draw.commitment,
                draw.entries.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(m) => {
            println!("MISMATCH: concert {}: {m}", draw.concert_id);
            Ok(ExitCode::from(1))
        }
    }
}
