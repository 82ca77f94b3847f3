#!/usr/bin/env python3
"""The drills in one command, each `boxoffice-load drill <kind>` in scale-out mode beside the
journey scenario, with a table of the results.

Hostile clients (`hostile`, the default): each kind of client runs for 20 s beside the journey, and
the table says whether the journey kept its SLO (no unexpected answers; p99 while the attack lasted
within 2x of the p99 of the same run outside the attack's window, its solo baseline), what the
hostile clients were answered, and whether the audit was clean.

Faults (`faults`): Redis killed, PostgreSQL paused, the pool saturated, one of two instances
killed; each held 45 s and then removed, with the real alerting path running beside it (Debian's
Prometheus and Alertmanager with deploy/'s rules and routing, the runner's webhook as receiver).
The table gives, per kind, the median and range over the runs of MTTD (fault → first alert at the
receiver), time to mitigate, time to recover and the time the all-clear reached the receiver.

  python3 bench/drills.py                         # the five hostile-client drills, once each
  python3 bench/drills.py slowloris malformed     # some of them
  python3 bench/drills.py faults --repeat 3       # the four fault drills, three times each
  python3 bench/drills.py --evidence 20261207-hostile-drills   # also writes evidence/<id>/

Needs a release build (`cargo build --release`), k6, PostgreSQL and Redis on 127.0.0.1, and for
the faults `apt-get install -y prometheus prometheus-alertmanager`. A hostile drill takes about
85 s, a fault drill about 2 minutes; each stops by itself.
"""
import argparse, json, os, shutil, statistics, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evidence  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ["slowloris", "slow-body", "idle-hoard", "malformed", "token-replay"]
FAULTS = ["redis-stop", "postgres-pause", "pool-saturation", "instance-kill"]
GROUPS = {"hostile": KINDS, "faults": FAULTS}
KEEP = ["report.md", "drill.json", "run.json"]
# The journey at a rate that does not sell the small seed out (600 seats) within the run, so the
# traffic during the attack is the same mix as outside it: 8 arrivals/s for 50 s, one seat each.
JOURNEY = ["--k6-env", "STEADY=50s", "--k6-env", "RATE=8", "--k6-env", "GROUP_MAX=1"]


def run(kind, results, load_bin):
    extra = JOURNEY if kind in KINDS else []
    out = subprocess.run([load_bin, "drill", kind, "--results", results, *extra], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    sys.stderr.write(out.stderr)
    folder = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    folder = os.path.dirname(folder) if folder.endswith("report.md") else ""
    if not folder or not os.path.isdir(os.path.join(ROOT, folder) if not os.path.isabs(folder) else folder):
        raise SystemExit(f"drill {kind} left no run folder (exit {out.returncode})")
    folder = folder if os.path.isabs(folder) else os.path.join(ROOT, folder)
    drill = json.load(open(os.path.join(folder, "drill.json")))
    summary = json.load(open(os.path.join(folder, "run.json")))
    return folder, drill, summary, out.returncode


def row(kind, drill, summary, code):
    a = drill.get("abusive") or {}
    ms = lambda v: "–" if v is None else f"{v:.1f} ms"
    answered = ", ".join(f"{v:,} {k}" for k, v in a.items() if v and k not in ("sent", "opened"))
    mttd = drill.get("first_signal_seconds")
    return (f"| {kind} | {a.get('opened', 0):,} | {answered or '–'} | "
            f"{'–' if mttd is None else f'{mttd:.1f} s'} | {drill.get('client_errors', 0)} | "
            f"{ms(drill.get('client_p99_outside_ms'))} → {ms(drill.get('client_p99_during_ms'))} | "
            f"{'kept' if drill.get('slo_kept') else 'NOT kept'} | "
            f"{'clean' if summary.get('audit_ok', summary.get('passed')) else 'FAILED'} | "
            f"{'passed' if code == 0 else 'FAILED'} |")


def spread(values, unit="s"):
    """Median and range of the values that exist, e.g. `15.5 s (14.1–17.9)`; with the misses."""
    got = sorted(v for v in values if v is not None)
    if not got:
        return "not reached"
    med = statistics.median(got)
    text = f"{med:.1f} {unit}" + (f" ({got[0]:.1f}–{got[-1]:.1f})" if len(got) > 1 else "")
    missed = len(values) - len(got)
    return text + (f", not reached in {missed} of {len(values)}" if missed else "")


FAULT_HEADER = ["| fault | runs | **MTTD**: fault → first alert at the receiver, median (range) | first alert | "
                "first signal inside the drill | time to mitigate | **time to recover (MTTR)** | "
                "the page's all-clear at the receiver | client errors per run | audit |",
                "|---|---|---|---|---|---|---|---|---|---|"]
FIRING = "alert firing at the on-call receiver: "
RESOLVED = "alert resolved at the on-call receiver: "


def page_resolved(drill):
    """Seconds from the fault to the first alert's resolved notice at the receiver (the page's
    all-clear), read from the drill's timeline; None if it never came."""
    events, start = drill.get("events", []), drill.get("injected_ms")
    fired = drill.get("alerts_fired") or []
    if not fired or start is None:
        return None
    done = [e["at_ms"] for e in events if e["what"].startswith(RESOLVED + fired[0] + " ")]
    return (min(done) - start) / 1000 if done else None


def fault_row(kind, runs):
    d = [r["drill"] for r in runs]
    first_alerts = sorted({x["alerts_fired"][0] for x in d if x.get("alerts_fired")})
    audits = all(r["audit"] for r in runs)
    return (f"| {kind} | {len(runs)} | {spread([x.get('mttd_seconds') for x in d])} | {', '.join(first_alerts) or '–'} | "
            f"{spread([x.get('first_signal_seconds') for x in d])} | {spread([x.get('mitigated_seconds') for x in d])} | "
            f"{spread([x.get('mttr_seconds') for x in d])} | {spread([page_resolved(x) for x in d])} | "
            f"{' / '.join(str(x.get('client_errors', 0)) for x in d)} | {'clean' if audits else 'FAILED'} |")


def retable(run_id):
    folder = os.path.join(ROOT, "evidence", run_id)
    faults = FAULT_HEADER[:]
    for kind in FAULTS:
        runs = []
        for sub in sorted(os.listdir(folder)):
            if sub == kind or sub.startswith(kind + "-"):
                drill = json.load(open(os.path.join(folder, sub, "drill.json")))
                summary = json.load(open(os.path.join(folder, sub, "run.json")))
                runs.append({"drill": drill, "audit": summary.get("audit_ok", summary.get("passed"))})
        if runs:
            faults.append(fault_row(kind, runs))
    report = open(os.path.join(folder, "report.md")).read()
    start = report.index("| fault | runs |")
    end = report.find("\n\n", start)
    report = report[:start] + "\n".join(faults) + (report[end:] if end >= 0 else "\n")
    open(os.path.join(folder, "report.md"), "w").write(report)
    print("\n".join(faults))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kinds", nargs="*", default=["hostile"], help="hostile, faults, or kinds: " + " ".join(KINDS + FAULTS))
    ap.add_argument("--repeat", type=int, default=1, help="runs per kind (medians and ranges over them)")
    ap.add_argument("--results", default="results")
    ap.add_argument("--load-bin", default=os.path.join(ROOT, "target", "release", "boxoffice-load"))
    ap.add_argument("--evidence", metavar="RUN_ID", help="also write evidence/RUN_ID/ (report, drill.json per kind)")
    ap.add_argument("--retable", metavar="RUN_ID", help="only rebuild the fault table of evidence/RUN_ID/report.md "
                    "from its drill.json files (after the table gained a column)")
    a = ap.parse_args()
    if a.retable:
        return retable(a.retable)
    kinds = [k for g in a.kinds for k in GROUPS.get(g, [g])]
    for k in kinds:
        if k not in KINDS + FAULTS:
            ap.error(f"unknown drill {k}; one of hostile, faults, {' '.join(KINDS + FAULTS)}")
    started = evidence.now()
    lines = ["| drill | hostile connections opened | what they were answered | first signal | "
             "journey: unexpected answers | journey p99 outside → during the attack | SLO | audit | drill |",
             "|---|---|---|---|---|---|---|---|---|"]
    faults = FAULT_HEADER[:]
    results, failed = {}, False
    for kind in kinds:
        runs = []
        for n in range(a.repeat):
            folder, drill, summary, code = run(kind, a.results, a.load_bin)
            audit = summary.get("audit_ok", summary.get("passed"))
            runs.append({"drill": drill, "run_folder": os.path.relpath(folder, ROOT), "exit": code, "audit": audit})
            if kind in KINDS:
                lines.append(row(kind, drill, summary, code))
            failed |= code != 0
            if a.evidence:
                dest = os.path.join(ROOT, "evidence", a.evidence, kind if a.repeat == 1 else f"{kind}-{n + 1}")
                os.makedirs(dest, exist_ok=True)
                for f in KEEP:
                    shutil.copy(os.path.join(folder, f), dest)
        if kind in FAULTS:
            faults.append(fault_row(kind, runs))
        results[kind] = runs
    tables = []
    if any(k in KINDS for k in kinds):
        tables.append("\n".join(lines))
    if any(k in FAULTS for k in kinds):
        tables.append("\n".join(faults))
    table = "\n\n".join(tables)
    print(table)
    if a.evidence:
        about = ("Each hostile drill: the journey scenario (small scale, scale-out mode, one instance, 8 arrivals/s, one seat "
                 "each) runs about 84 s; the hostile clients start 10 s in and stop 20 s later. " if any(k in KINDS for k in kinds) else "")
        about += ("Each fault drill: the journey scenario (small scale, scale-out mode; two instances for instance-kill) runs "
                  "80 s; the fault starts 10 s in and is removed 45 s later; Prometheus and Alertmanager run beside it with "
                  "deploy/prometheus and deploy/alertmanager's files, and the runner's webhook receives the alerts. "
                  if any(k in FAULTS for k in kinds) else "")
        evidence.write(a.evidence, "# bench/drills.py\n\n" + about + "Per-drill reports (the journey's full report and the "
                       "drill's timeline) are in the folders named after each kind (and run).\n\n" + table + "\n", results, started,
                       binaries=[os.path.join(ROOT, "target", "release", "boxoffice"), a.load_bin])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
