"""Writes an evidence folder (evidence/<run-id>/) for a benchmark run: report.md, summary.json and
run.json with what a reader needs to check the figures (commit, build, tools, machine, command,
times). Small by design: no raw output."""
import datetime, hashlib, json, os, platform, shutil, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _out(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""


def machine():
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu_model": model, "cores": os.cpu_count(), "kernel": platform.release(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


def write(run_id, report_md, summary, started, binaries=(), placement="", extra=None):
    folder = os.path.join(ROOT, "evidence", run_id)
    os.makedirs(folder, exist_ok=True)
    meta = {
        "run_id": run_id,
        "commit": _out(["git", "-C", ROOT, "rev-parse", "HEAD"]),
        "dirty": bool(_out(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"])),
        "build": "release (cargo build --release)",
        "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
        "started": started,
        "ended": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "placement": placement,
        "tools": {"k6": _out(["k6", "version"]), "wrk": _out(["wrk", "-v"]).split("\n")[0], "nginx": _out(["nginx", "-v"])},
        "binaries": {os.path.relpath(b, ROOT) if b.startswith(ROOT) else b:
                     hashlib.sha256(open(b, "rb").read()).hexdigest() for b in binaries if os.path.exists(b)},
    }
    if extra:
        meta.update(extra)
    with open(os.path.join(folder, "run.json"), "w") as f:
        json.dump(meta, f, indent=2)
    with open(os.path.join(folder, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    with open(os.path.join(folder, "report.md"), "w") as f:
        f.write(report_md)
    print(f"evidence written to {os.path.relpath(folder, ROOT)}", file=sys.stderr)
    return folder


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# Files of a boxoffice-load run folder worth keeping: small, and enough to check every figure.
RUN_FILES = ["report.md", "drill.json", "resources.csv", "timeline.csv", "metrics-before.txt", "metrics-after.txt", "throughput.svg", "latency.svg", "memory.svg", "cpu.svg"]


def collect(run_id, folders, title, started=None):
    """Evidence from boxoffice-load run folders: each folder's report, drill timeline, resource
    samples and charts under evidence/RUN_ID/<folder name>/, the runner's run.json as
    summary.json there, and one report.md listing them."""
    dest = os.path.join(ROOT, "evidence", run_id)
    lines, summaries, commands = [f"# {title}", ""], {}, []
    for f in folders:
        name = os.path.basename(os.path.normpath(f))
        os.makedirs(os.path.join(dest, name), exist_ok=True)
        for kept in RUN_FILES:
            src = os.path.join(f, kept)
            if os.path.exists(src):
                shutil.copy(src, os.path.join(dest, name, kept))
        s = json.load(open(os.path.join(f, "run.json")))
        summaries[name] = s
        with open(os.path.join(dest, name, "summary.json"), "w") as out:
            json.dump(s, out, indent=2)
        commands.append(s.get("command", ""))
        lines.append(f"- [`{name}`]({name}/report.md): {s.get('requests', 0):,} requests in {s.get('seconds', 0):.0f} s, "
                     f"{s.get('tps', 0):.0f} TPS, p95 {s.get('p95_ms', 0):.1f} ms, p99 {s.get('p99_ms', 0):.1f} ms, "
                     f"{s.get('unexpected_responses', 0)} unexpected, audit {'clean' if s.get('audit_ok') else 'FAILED'}, "
                     f"{'passed' if s.get('passed') else 'FAILED'} ({s.get('placement', '')})")
    # Runs made before the runner wrote the server side into report.md get it here.
    load = os.path.join(ROOT, "target", "release", "boxoffice-load")
    for f in folders:
        if "## Server side" not in open(os.path.join(f, "report.md")).read() and os.path.exists(load):
            t = subprocess.run([load, "server-side", f], capture_output=True, text=True).stdout
            if t.strip():
                lines += ["", f"### `{os.path.basename(os.path.normpath(f))}`: the server side "
                          "(`boxoffice-load server-side`; k6's figures above include the load generator's own delays)", t]
    lines += ["", "Commands:", "", "```"] + commands + ["```", ""]
    return write(run_id, "\n".join(lines), summaries, started or min(s.get("started", "") for s in summaries.values()),
                 binaries=[os.path.join(ROOT, "target", "release", "boxoffice"),
                           os.path.join(ROOT, "target", "release", "boxoffice-load")],
                 placement="; ".join(sorted({s.get("placement", "") for s in summaries.values()})),
                 extra={"command": "; ".join(commands)})


def _table(md, heading):
    """The rows of the first markdown table after a line starting with `heading`."""
    rows, seen = [], False
    for line in md.splitlines():
        if line.startswith(heading):
            seen = True
        elif seen and line.startswith("|") and not line.startswith("|---"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif seen and rows and not line.startswith("|"):
            break
    return rows[1:]  # without the header row


def errors(folders):
    """Error statistics by endpoint and code over run folders (a boxoffice-load run folder or an
    evidence folder holding them): every answer that is not 2xx, by endpoint, status and problem
    code. Statuses come from k6 ("Responses by status"); codes from the servers' own
    boxoffice_http_problems_total ("## Server side"), which counts retries and answers k6 did not
    tag the same way, so the two columns are shown side by side rather than merged."""
    runs = []
    for f in folders:
        if os.path.exists(os.path.join(f, "report.md")) and "## Responses by status" in open(os.path.join(f, "report.md")).read():
            runs.append(f)
        else:
            runs += sorted(os.path.join(f, d) for d in os.listdir(f) if os.path.exists(os.path.join(f, d, "report.md")))
    out = ["| run | endpoint | status | code (server) | answers at k6 | answers at the server |", "|---|---|---|---|---|---|"]
    for r in runs:
        md = open(os.path.join(r, "report.md")).read()
        name = os.path.relpath(os.path.normpath(r), ROOT) if os.path.isabs(r) else os.path.normpath(r)
        k6 = {(e, st): int(n.replace(",", "")) for e, st, n in _table(md, "## Responses by status") if not st.startswith("2")}
        server_md = md.split("## Server side", 1)[1] if "## Server side" in md else ""
        recorded = bool(server_md) and "not recorded" not in server_md
        server = {(e, st, code): int(n.replace(",", "")) for e, st, code, n in _table(server_md, "Problem answers by endpoint")}
        keys = sorted({(e, st) for e, st in k6} | {(e, st) for e, st, _ in server})
        if not keys:
            out.append(f"| `{name}` | – | – | – | 0 | 0 |")
        for e, st in keys:
            codes = [(c, n) for (e2, st2, c), n in server.items() if (e2, st2) == (e, st)]
            # A status k6 got no answer for ("no response") has no code; older servers kept none.
            fallback = "not recorded" if recorded is False and st.isdigit() else "–"
            for c, n in codes or [(fallback, None)]:
                out.append(f"| `{name}` | {e} | {st} | {c} | {k6.get((e, st), 0):,} | {'–' if n is None else f'{n:,}'} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="python3 bench/evidence.py collect RUN_ID RESULTS_FOLDER... --title T | errors FOLDER...")
    ap.add_argument("what", choices=["collect", "errors"], help="errors FOLDER...: the error statistics table")
    ap.add_argument("run_id", help="collect: the evidence id; errors: the first folder")
    ap.add_argument("folders", nargs="*")
    ap.add_argument("--title")
    a = ap.parse_args()
    if a.what == "errors":
        print(errors([a.run_id] + a.folders), end="")
    else:
        if not a.title or not a.folders:
            ap.error("collect needs RUN_ID, one or more run folders and --title")
        collect(a.run_id, a.folders, a.title)
