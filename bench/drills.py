#!/usr/bin/env python3
"""The hostile-client drills in one command: each kind of client runs for 20 s beside the journey
scenario (scale-out mode, `boxoffice-load drill <kind>`), and the table says whether the journey
kept its SLO (no unexpected answers; p99 while the attack lasted within 2x of the p99 of the same
run outside the attack's window, its solo baseline),
what the hostile clients were answered, and whether the audit was clean.

  python3 bench/drills.py                         # all five, run folders under results/
  python3 bench/drills.py slowloris malformed     # some of them
  python3 bench/drills.py --evidence 20261207-hostile-drills   # also writes evidence/<id>/

Needs a release build (`cargo build --release`), k6, and PostgreSQL and Redis on 127.0.0.1.
Each drill takes about 85 s and stops by itself.
"""
import argparse, json, os, shutil, subprocess, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evidence  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KINDS = ["slowloris", "slow-body", "idle-hoard", "malformed", "token-replay"]
KEEP = ["report.md", "drill.json", "run.json"]
# The journey at a rate that does not sell the small seed out (600 seats) within the run, so the
# traffic during the attack is the same mix as outside it: 8 arrivals/s for 50 s, one seat each.
JOURNEY = ["--k6-env", "STEADY=50s", "--k6-env", "RATE=8", "--k6-env", "GROUP_MAX=1"]


def run(kind, results, load_bin):
    out = subprocess.run([load_bin, "drill", kind, "--results", results, *JOURNEY], cwd=ROOT,
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
    mttd = drill.get("mttd_seconds")
    return (f"| {kind} | {a.get('opened', 0):,} | {answered or '–'} | "
            f"{'–' if mttd is None else f'{mttd:.1f} s'} | {drill.get('client_errors', 0)} | "
            f"{ms(drill.get('client_p99_outside_ms'))} → {ms(drill.get('client_p99_during_ms'))} | "
            f"{'kept' if drill.get('slo_kept') else 'NOT kept'} | "
            f"{'clean' if summary.get('audit_ok', summary.get('passed')) else 'FAILED'} | "
            f"{'passed' if code == 0 else 'FAILED'} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kinds", nargs="*", default=KINDS, help=" ".join(KINDS))
    ap.add_argument("--results", default="results")
    ap.add_argument("--load-bin", default=os.path.join(ROOT, "target", "release", "boxoffice-load"))
    ap.add_argument("--evidence", metavar="RUN_ID", help="also write evidence/RUN_ID/ (report, drill.json per kind)")
    a = ap.parse_args()
    for k in a.kinds:
        if k not in KINDS:
            ap.error(f"unknown drill {k}; one of {KINDS}")
    started = evidence.now()
    lines = ["| drill | hostile connections opened | what they were answered | detected (MTTD) | "
             "journey: unexpected answers | journey p99 outside → during the attack | SLO | audit | drill |",
             "|---|---|---|---|---|---|---|---|---|"]
    results, failed = {}, False
    for kind in a.kinds:
        folder, drill, summary, code = run(kind, a.results, a.load_bin)
        lines.append(row(kind, drill, summary, code))
        results[kind] = {"drill": drill, "run_folder": os.path.relpath(folder, ROOT), "exit": code}
        failed |= code != 0
        if a.evidence:
            dest = os.path.join(ROOT, "evidence", a.evidence, kind)
            os.makedirs(dest, exist_ok=True)
            for f in KEEP:
                shutil.copy(os.path.join(folder, f), dest)
    table = "\n".join(lines)
    print(table)
    if a.evidence:
        evidence.write(a.evidence, "# bench/drills.py: hostile clients beside the journey\n\n"
                       "Each drill: the journey scenario (small scale, scale-out mode, one instance, "
                       "8 arrivals/s, one seat each) runs about 84 s; the hostile clients start 10 s in and stop 20 s later. Per-drill reports "
                       "(the journey's full report and the drill's timeline) are in the folders named "
                       "after each kind.\n\n" + table + "\n", results, started,
                       binaries=[os.path.join(ROOT, "target", "release", "boxoffice"), a.load_bin])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
