//! The steps of one run, in the order `run_with` calls them: prepare the folder, seed the
//! fixtures, cap the servers, start them, build k6's environment, run k6 (beside a drill, if
//! any), stop and audit, and write the report.

use crate::cgroup::{Cgroup, Limits};
use crate::report::{self, RunSummary};
use crate::servers::{Fixture, Instances, Mode};
use crate::{drill, k6, sampler, scenarios, unexpected, DrillPlan, RunArgs, INTERRUPTED};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The run's scenario, scale, folder and ids.
pub struct Prepared<'a> {
    args: &'a RunArgs,
    scenario_script: PathBuf,
    scale: scenarios::Scale,
    dir: PathBuf,
    stamp: String,
    run_id: String,
    work: PathBuf,
    /// CPU lists the servers and k6 are pinned to (None: unpinned), and that in words.
    server_cpus: Option<String>,
    k6_cpus: Option<String>,
    placement_text: String,
}

/// The servers' caps, and what the report should say about them.
pub struct Caps {
    cg: Option<Cgroup>,
    limits_text: String,
    notes: Vec<String>,
}

/// The started servers and what was measured before k6 ran.
pub struct Servers {
    instances: Arc<Mutex<Instances>>,
    pids: Vec<u32>,
    bases: Vec<String>,
    cpu_before: f64,
    sampler: sampler::Sampler,
}

/// What k6 and the drill left behind.
pub struct Ran {
    k6: Result<k6::K6Run>,
    drill_events: Option<Vec<drill::Event>>,
    drill_target: Option<drill::Target>,
}

/// Everything measured once the servers stopped.
pub struct After {
    k6_run: k6::K6Run,
    samples: Vec<sampler::Sample>,
    cpu_seconds: f64,
    cgroup_memory: Option<(u64, u64)>,
    audit_ok: bool,
    payments_ok: bool,
    drill_events: Option<Vec<drill::Event>>,
    drill_target: Option<drill::Target>,
}

fn check_interrupt() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

impl<'a> Prepared<'a> {
    /// Checks the arguments, finds the scenario and makes the run folder.
    pub fn new(args: &'a RunArgs) -> Result<Self> {
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
        let work = crate::tempdir_in_tmp(&run_id)?;
        let (server_cpus, k6_cpus, placement_text) = crate::placement::cpus(c.placement);
        Ok(Self {
            server_cpus,
            k6_cpus,
            placement_text,
            args,
            scenario_script: c.loadtest_dir.join(&scenario.script),
            scale: scale.clone(),
            dir,
            stamp,
            run_id,
            work,
        })
    }

    /// A fresh store (and key prefix) with the scenario's seed.
    pub fn seed_fixtures(&self) -> Result<Fixture> {
        let c = &self.args.common;
        let fixture = Fixture::create(c.mode, &self.run_id, &self.work, &c.pg, &c.redis)?;
        let seeded = fixture.seed(&c.bin, &self.scale.seed)?;
        eprintln!("   {seeded}");
        check_interrupt()?;
        Ok(fixture)
    }

    /// A cgroup with the requested CPU and memory caps, if any were asked for and can be made.
    pub fn cap_servers(&self) -> Caps {
        let limits = Limits { cpus: self.args.cpus, memory_bytes: self.args.memory };
        let mut notes = Vec::new();
        let cg = if limits.is_empty() {
            None
        } else {
            match Cgroup::create(&format!("boxoffice-load-{}", self.run_id), limits) {
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
        Caps { cg, limits_text, notes }
    }

    /// The servers, with the scenario's serve flags minus any that `--serve-arg` overrides.
    pub fn start_servers(&self, fixture: &Fixture, caps: &Caps) -> Result<Servers> {
        let args = self.args;
        let overridden: Vec<String> = args
            .serve_args
            .iter()
            .filter_map(|a| a.strip_prefix("--"))
            .map(|a| a.split('=').next().unwrap_or(a).to_owned())
            .collect();
        let mut serve_flags: Vec<String> = self
            .scale
            .serve
            .iter()
            .filter(|(k, _)| !overridden.contains(k))
            .flat_map(|(k, v)| [format!("--{k}"), scenarios::as_arg(v)])
            .collect();
        serve_flags.extend(args.serve_args.iter().cloned());
        let instances = Instances::start(
            &args.common.bin,
            fixture,
            &serve_flags,
            args.instances,
            caps.cg.as_ref(),
            self.server_cpus.as_deref(),
            &self.dir,
        )?;
        let pids = instances.pids();
        let bases = instances.bases.clone();
        let before: Vec<String> = bases.iter().map(|b| sampler::http_get(b, "/metrics").unwrap_or_default()).collect();
        std::fs::write(self.dir.join("metrics-before.txt"), before.join("\n# ---- next instance ----\n"))?;
        let cpu_before = pids.iter().filter_map(|p| sampler::read_proc(*p)).map(|s| s.cpu_seconds).sum();
        let sampler = sampler::Sampler::start(pids.iter().copied().zip(bases.iter().cloned()).collect());
        Ok(Servers { instances: Arc::new(Mutex::new(instances)), pids, bases, cpu_before, sampler })
    }

    /// The scripts' environment: where the servers are, the seed's shape, the scale's and the
    /// command line's knobs.
    pub fn k6_environment(&self, plan: Option<&DrillPlan>) -> Result<Vec<(String, String)>> {
        let (args, seed) = (self.args, &self.scale.seed);
        let mut env: Vec<(String, String)> = vec![
            ("SCALE".into(), args.scale.clone()),
            ("SCENARIO".into(), args.scenario.clone()),
            ("USERS".into(), seed.users.to_string()),
            ("CONCERTS".into(), seed.concerts.to_string()),
            ("SCHEDULES".into(), seed.schedules.to_string()),
            ("SEATS".into(), seed.seats.to_string()),
            ("BALANCE".into(), seed.balance.to_string()),
            ("SUMMARY_JSON".into(), self.dir.join("k6-summary.json").display().to_string()),
        ];
        if plan.is_some_and(|p| p.kind.is_traffic()) {
            // The scenario's own clients keep off the users the drill abuses.
            env.push(("USERS".into(), seed.users.saturating_sub(drill::FLOOD_USERS).to_string()));
        }
        env.extend(self.scale.k6.env.iter().map(|(k, v)| (k.clone(), scenarios::as_arg(v))));
        for kv in &args.k6_env {
            let (k, v) = kv.split_once('=').with_context(|| format!("--k6-env {kv:?} is not KEY=VALUE"))?;
            env.push((k.into(), v.into()));
        }
        Ok(env)
    }

    /// Runs k6 against the servers while the drill (if any) injects and removes its fault.
    pub fn run_k6_beside_the_drill(
        &self,
        servers: &Servers,
        fixture: &Fixture,
        env: &[(String, String)],
        plan: Option<&mut DrillPlan>,
    ) -> Ran {
        let mut env = env.to_vec();
        // First, so that the scale's and the command line's knobs may still override them.
        env.insert(0, ("BASE_URLS".into(), servers.bases.join(",")));
        env.insert(0, ("BASE_URL".into(), servers.bases[servers.bases.len() - 1].clone()));
        let users = self.scale.seed.users;
        // The alerting path starts before the fault, so that Prometheus has a healthy scrape of
        // every instance first; a drill without it still runs (MTTD is then not measured).
        let alerting = plan.as_ref().and_then(|p| p.alerting.as_ref()).and_then(|cfg| {
            crate::alerting::Alerting::start(cfg, &servers.bases, &self.work)
                .map_err(|e| eprintln!("   alerting: NOT running: {e:#}"))
                .ok()
        });
        let drill_thread = plan.map(|p| {
            let target = p.target.take().unwrap_or_else(|| match p.kind {
                drill::Kind::PoolSaturation => drill::Target::Pool(fixture.database_url().unwrap_or_default()),
                // The last seeded users, which the scenarios' own clients are least likely to use.
                k if k.is_traffic() => drill::Target::Traffic {
                    users: (0..drill::FLOOD_USERS)
                        .filter_map(|i| users.checked_sub(i))
                        .filter(|u| *u > 0)
                        .map(|u| u as i64)
                        .collect(),
                    tally: Default::default(),
                },
                _ => drill::Target::Instance,
            });
            drill::run_fault(p.kind, target, servers.instances.clone(), servers.bases.clone(), p.at, p.hold)
        });
        let k6 = if INTERRUPTED.load(Ordering::SeqCst) {
            Err(anyhow::anyhow!("interrupted"))
        } else {
            k6::run(
                &self.args.common.k6,
                &self.scenario_script,
                &env,
                &self.dir,
                self.timeout(),
                self.k6_cpus.as_deref(),
            )
        };
        let (drill_events, drill_target) = match drill_thread.map(|t| t.join()) {
            Some(Ok((mut events, target))) => {
                if let Some(a) = &alerting {
                    a.settle(Duration::from_secs(60));
                    events.extend(drill::alert_events(&a.notices(), &a.intervals));
                }
                (Some(events), Some(target))
            }
            _ => (None, None),
        };
        Ran { k6, drill_events, drill_target }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.scale.timeout_seconds.unwrap_or(3600))
    }

    /// Stops sampling, scrapes the metrics, stops the servers and audits the data.
    pub fn stop_and_audit(&self, servers: Servers, caps: &mut Caps, fixture: Fixture, ran: Ran) -> Result<After> {
        let c = &self.args.common;
        let samples = servers.sampler.finish();
        let cpu_after: f64 = servers.pids.iter().filter_map(|p| sampler::read_proc(*p)).map(|s| s.cpu_seconds).sum();
        let metrics_after: Vec<String> =
            servers.bases.iter().map(|b| sampler::http_get(b, "/metrics").unwrap_or_default()).collect();
        std::fs::write(self.dir.join("metrics-after.txt"), metrics_after.join("\n# ---- next instance ----\n"))?;
        servers.instances.lock().unwrap().stop();
        let cgroup_memory = caps.cg.as_ref().and_then(|c| c.memory_report());
        if let Some((peak, hits)) = cgroup_memory {
            caps.notes
                .push(format!("cgroup memory: peak {:.1} MiB, limit reached {hits} times", peak as f64 / 1048576.0));
        }
        caps.cg.take();
        let k6_run = ran.k6?;
        if k6_run.timed_out {
            caps.notes.push(format!("k6 was stopped after the scenario's {} s time limit", self.timeout().as_secs()));
        }
        let audit_ok = fixture.audit(&c.bin, &self.dir.join("audit.json"))?;
        let payments: f64 = metrics_after.iter().filter_map(|m| sampler::metric(m, "boxoffice_payments_total")).sum();
        let payments_ok = match self.scale.expect.payments_total {
            Some(want) => {
                let ok = payments as u64 == want;
                caps.notes.push(format!(
                    "payments made: {payments} (expected exactly {want}) — {}",
                    if ok { "as expected" } else { "MISMATCH" }
                ));
                ok
            }
            None => true,
        };
        drop(fixture);
        let _ = std::fs::remove_dir_all(&self.work);
        Ok(After {
            k6_run,
            samples,
            cpu_seconds: (cpu_after - servers.cpu_before).max(0.0),
            cgroup_memory,
            audit_ok,
            payments_ok,
            drill_events: ran.drill_events,
            drill_target: ran.drill_target,
        })
    }

    /// Writes report.md, run.json, the charts and (for a drill) drill.json; says whether it passed.
    pub fn write_report(&self, after: After, caps: Caps, plan: Option<&DrillPlan>) -> Result<(PathBuf, RunSummary)> {
        let (args, c, dir) = (self.args, &self.args.common, &self.dir);
        let analysis = k6::analyse(&after.k6_run.csv)?;
        // The raw CSV is large and fully summarised by timeline.csv and the report.
        let _ = std::fs::remove_file(&after.k6_run.csv);
        let k6_run = &after.k6_run;
        let thresholds_passed = k6_run.exit_code != 99 && !k6_run.timed_out;
        let base = RunSummary {
            scenario: args.scenario.clone(),
            scale: args.scale.clone(),
            mode: format!("{:?}", c.mode).to_lowercase(),
            instances: args.instances,
            limits: caps.limits_text,
            placement: self.placement_text.clone(),
            started: self.stamp.clone(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            k6_exit_code: k6_run.exit_code,
            thresholds_passed,
            audit_ok: after.audit_ok,
            passed: k6_run.exit_code == self.scale.expect.k6_exit_code
                && after.audit_ok == self.scale.expect.audit_ok
                && after.payments_ok
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
            cgroup_peak_memory_bytes: after.cgroup_memory.map(|m| m.0),
            memory_limit_hits: after.cgroup_memory.map(|m| m.1),
            endpoints: vec![],
        };
        let mut summary = report::summarise(base, &analysis, &after.samples, after.cpu_seconds);
        report::write_resources(dir, &after.samples)?;
        report::write_timeline(dir, &analysis)?;
        report::write_charts(dir, &analysis, &after.samples, args.instances)?;
        let mut report_md = report::markdown(&summary, &analysis, &caps.notes);
        report_md.push_str(&unexpected::markdown(&unexpected::read(dir), analysis.overall.unexpected));
        report_md.push_str(&report::drift_markdown(&analysis.timeline, &after.samples, args.instances));
        report_md.push_str(&crate::server_side::for_run(dir));
        if let (Some(events), Some(p)) = (after.drill_events, plan) {
            let timeline: Vec<(u128, u64, &[f64])> = analysis
                .timeline
                .iter()
                .map(|t| (((analysis.start_unix_s + t.second) * 1000) as u128, t.unexpected, t.durations.as_slice()))
                .collect();
            let tally = match &after.drill_target {
                Some(drill::Target::Traffic { tally, .. }) => Some(tally.as_ref()),
                _ => None,
            };
            let outcome = drill::outcome(p.kind, events, &timeline, tally);
            std::fs::write(dir.join("drill.json"), serde_json::to_string_pretty(&outcome)?)?;
            report_md.push('\n');
            report_md.push_str(&drill::markdown(&outcome));
            // A drill passes when the service recovered and the data is intact; client errors
            // during the fault are its point, not a failure.
            // Hostile clients must also leave everyone else's SLO intact.
            summary.passed = after.audit_ok && outcome.recovered_ms.is_some() && outcome.slo_kept != Some(false);
            eprintln!(
                "   drill: MTTD (alert) {:?} s {:?}, first signal {:?} s, mitigated {:?} s, MTTR {:?} s, {} unexpected answers",
                outcome.mttd_seconds,
                outcome.alerts_fired,
                outcome.first_signal_seconds,
                outcome.mitigated_seconds,
                outcome.mttr_seconds,
                outcome.client_errors
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
            if after.audit_ok { "clean" } else { "VIOLATIONS" },
            if summary.passed { "passed" } else { "FAILED" }
        );
        Ok((dir.clone(), summary))
    }
}
