"""Writes an evidence folder (evidence/<run-id>/) for a benchmark run: report.md, summary.json and
run.json with what a reader needs to check the figures (commit, build, tools, machine, command,
times). Small by design: no raw output."""
import datetime, hashlib, json, os, platform, subprocess, sys

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
