#!/usr/bin/env python3
"""The resource matrix with real containers: capacity of one boxoffice container per CPU x memory cap.

    deploy/offline/resource-matrix.py [--binary /tmp/bo-matrix/boxoffice] [--cpus 0.25,0.5,1,2]
        [--memory 64m,128m,256m,512m] [--runs 3] [--duration 40] [--vus 128] [--out DIR]
        [--commit SHA] [--budget-minutes 60] [--quiet-wait 30] [--max-nice 10] [--max-other 0.3]

Run as root from anywhere (paths are relative to the repository). Python 3 standard library only.

1. Builds the image from the host binary exactly as deploy/offline/container-smoke.sh does
   (deploy/Dockerfile --build-arg BINARY=host, a context holding only the binary, --network none,
   BuildKit through Debian's /usr/bin/docker 20.10 when the buildx plugin is missing), tagged
   boxoffice:matrix with the label org.boxoffice.binary-sha256; an image whose label matches the
   binary is reused.
2. For every round (--runs) and every setting (--cpus x --memory; the order inside a round is
   shuffled with a recorded seed, so slow drift of the machine spreads over all settings):
   a fresh docker volume, seeded by `boxoffice seed` in a throw-away container (the seed's numbers
   change nothing but the k6 fixture permutation, SEED, is new per run); the server on the
   embedded default (SQLite in the volume, in-process waiting room) with
   `docker run --network host --cpus C --cpuset-cpus ... --memory M --memory-swap M` on
   127.0.0.1:--port; then k6 (deploy/offline/matrix-journey.js: the buyer journey as a closed
   model, --vus looping buyers for --duration seconds) pinned with taskset to --k6-cpu.
3. Records per run: requests/s, completed journeys/s, p95/p99 latency (all requests and per
   endpoint), the error rate and the answers by status, OOM kill (docker inspect .State.OOMKilled,
   exit code, memory.oom_control), CPU throttling (cgroup v1 cpu.stat nr_periods, nr_throttled,
   throttled_time over the k6 run), server CPU-seconds (cpuacct.usage over the k6 run), peak
   memory (memory.max_usage_in_bytes: page cache included; and the peak of memory.stat total_rss,
   sampled every 0.25 s), memory.failcnt, the CPU-seconds k6 itself used (its rusage: k6 on one
   core is the ceiling of what can be offered), per-CPU busy time from /proc/stat (including
   `nice` time: somebody else's niced build), the block device's busy time and write latency, a
   CPU speed probe (SHA-256 MB/s per CPU before the run), the data files' sizes, and
   `boxoffice audit` after a graceful `docker stop`.
4. A shared box: before each run it waits (at most --quiet-wait s, within the budget) until no CPU
   is busy; a run during which niced processes (a build) took more than --max-nice % of a CPU it
   used, or other processes more than --max-other cores, is "noisy" and is made once more right
   away while the budget allows (the quieter of the two counts; both stay in run.json).
   --budget-minutes bounds the whole matrix: if the runs would not fit, --duration is shortened
   (never below 15 s), never the number of runs.

CPU placement: the server gets --server-cpuset (default CPU 0) and k6 --k6-cpu (default CPU 1),
so the two never share a core. A setting that asks for more CPUs than --server-cpuset holds (on a
2-core box: --cpus 2) cannot be honoured that way: such a server gets every core
(--cpuset-cpus 0-N) and shares --k6-cpu with k6; the report marks those rows "shared".

Writes to --out (default /tmp/resource-matrix-<timestamp>/): report.md (the table of medians with
their spread), summary.json (medians per setting + the environment), run.json (every run + the
environment), runs/<run-id>/ (k6's summary and output, the server's log tail). Every container
and volume it starts is removed on exit, also on failure or Ctrl-C. Exits 1 when a run could not
be made at all (not when a setting fails under load: that is a result).
"""

import argparse
import datetime
import hashlib
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

OFFLINE_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(OFFLINE_DIR))
K6_SCRIPT = os.path.join(OFFLINE_DIR, "matrix-journey.js")
LABEL = "org.boxoffice.binary-sha256"
NS = 1e9
MIB = 1024 * 1024
# Seconds each run spends outside k6's --duration (volume, seed, start, k6 start-up and graceful
# stop, audit, clean-up), for the budget estimate; measured 2.5 s + the 5 s graceful stop at most.
OVERHEAD_S = 6

CLEANUP = {"containers": set(), "volumes": set(), "k6": None}


def log(msg):
    print(f"resource-matrix: {msg}", file=sys.stderr, flush=True)


def run(cmd, timeout=60, check=True, env=None, capture=True):
    r = subprocess.run(cmd, timeout=timeout, env=env, stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.STDOUT if capture else None, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} exited {r.returncode}: {(r.stdout or '')[-2000:]}")
    return r


def docker(*args, timeout=60, check=True):
    return run(["docker", *args], timeout=timeout, check=check)


def cleanup():
    p = CLEANUP["k6"]
    if p is not None and p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
    for c in list(CLEANUP["containers"]):
        subprocess.run(["docker", "rm", "-f", c], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        CLEANUP["containers"].discard(c)
    for v in list(CLEANUP["volumes"]):
        for _ in range(5):  # the volume is busy for a moment after its container is removed
            if subprocess.run(["docker", "volume", "rm", "-f", v], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60).returncode == 0:
                break
            time.sleep(1)
        CLEANUP["volumes"].discard(v)


def on_signal(signum, _frame):
    log(f"signal {signum}: removing what this run started")
    cleanup()
    sys.exit(130)


# ---- environment ---------------------------------------------------------------------------------

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def environment(args, binary_sha):
    git = lambda *a: run(["git", "-C", REPO_ROOT, *a], check=False).stdout.strip()
    k6v = run(["k6", "version"], check=False).stdout.strip()
    dv = docker("version", "-f", "{{.Server.Version}}", check=False).stdout.strip()
    head = git("rev-parse", "HEAD")
    commit = git("rev-parse", args.commit) if args.commit else head
    return {
        "commit": commit,
        "commitSource": "--commit (the binary's build commit, as given)" if args.commit else "git rev-parse HEAD at start",
        "headAtStart": head,
        "commitSubject": git("log", "-1", "--format=%s", commit)[:200],
        "workingTreeDirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "binary": os.path.abspath(args.binary),
        "binarySha256": binary_sha,
        "image": args.image,
        "k6Version": k6v,
        "k6Script": os.path.relpath(K6_SCRIPT, REPO_ROOT),
        "k6ScriptSha256": sha256(K6_SCRIPT),
        "dockerEngine": dv,
        "cpuModel": cpu_model(),
        "cores": os.cpu_count(),
        "memoryTotalMiB": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / MIB),
        "kernel": os.uname().release,
        "hostname": socket.gethostname(),
        "commandLine": shlex.join([sys.executable, *sys.argv]),
        "cwd": os.getcwd(),
    }


# ---- image ---------------------------------------------------------------------------------------

def docker_build_cmd():
    """`docker build` with BuildKit, as deploy/offline/lib.sh docker_build does."""
    env = dict(os.environ, DOCKER_BUILDKIT="1", BUILDKIT_PROGRESS="plain")
    if run(["docker", "buildx", "version"], check=False, timeout=10).returncode == 0:
        return ["docker", "build"], env
    if os.access("/usr/bin/docker", os.X_OK):
        v = run(["/usr/bin/docker", "version", "-f", "{{.Client.Version}}"], check=False, timeout=10).stdout
        if v.startswith("20."):
            return ["/usr/bin/docker", "build"], env
    raise RuntimeError("no BuildKit-capable docker build here: install the buildx plugin or Debian's docker.io")


def image_label(image):
    r = docker("image", "inspect", "-f", "{{json .Config.Labels}}", image, check=False)
    if r.returncode != 0:
        return None
    return (json.loads(r.stdout or "null") or {}).get(LABEL, "")


def ensure_image(args, binary_sha):
    """Builds args.image from the host binary unless an image with that binary's label exists."""
    if image_label(args.image) == binary_sha:
        return {"built": False, "seconds": 0.0}
    with open(os.path.join(REPO_ROOT, "deploy", "Dockerfile")) as f:
        release = (re.search(r"^ARG DEBIAN_RELEASE=([a-z]+)", f.read(), re.M) or [None, "bookworm"])[1]
    base = f"debian:{release}-slim"
    if docker("image", "inspect", base, check=False).returncode != 0:
        log(f"making the stand-in base image {base}")
        run([os.path.join(OFFLINE_DIR, "base-images.sh"), "--base-only"], timeout=600)
    old = docker("image", "inspect", "-f", "{{.Id}}", args.image, check=False).stdout.strip()
    cmd, env = docker_build_cmd()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bo-matrix-ctx.") as ctx:
        shutil.copy2(args.binary, os.path.join(ctx, "boxoffice"))
        # --network none: the runtime stage needs no network (the engine may have no bridge).
        run([*cmd, "--network", "none", "-f", os.path.join(REPO_ROOT, "deploy", "Dockerfile"),
             "--build-arg", "BINARY=host", "--label", f"{LABEL}={binary_sha}", "-t", args.image, ctx],
            timeout=300, env=env)
    new = docker("image", "inspect", "-f", "{{.Id}}", args.image).stdout.strip()
    if old and old != new:
        docker("rmi", old, check=False)  # the tag moved to a new binary; still-used images stay
    return {"built": True, "seconds": round(time.monotonic() - started, 1)}


# ---- cgroup v1 -----------------------------------------------------------------------------------

def cgroup_dirs(pid):
    """{controller: directory} of a process, from /proc/<pid>/cgroup and the host's mounts."""
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            parts = left.split()
            fstype, _src, opts = right.split()[:3]
            if fstype != "cgroup":
                continue
            for opt in opts.split(","):
                if opt in ("cpu", "cpuacct", "memory", "cpuset"):
                    mounts[opt] = (parts[3], parts[4])  # root inside the hierarchy, mount point
    dirs = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(","):
                if c in mounts:
                    root, mnt = mounts[c]
                    rel = os.path.relpath(path, root) if root != "/" else path.lstrip("/")
                    dirs[c] = os.path.join(mnt, rel)
    missing = {"cpu", "cpuacct", "memory"} - dirs.keys()
    if missing:
        raise RuntimeError(f"no cgroup v1 {', '.join(sorted(missing))} directory for pid {pid} (cgroup v2 is not supported)")
    return dirs


def read_kv(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(" ")
                if v.strip().lstrip("-").isdigit():
                    out[k] = int(v)
    except OSError:
        pass
    return out


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def proc_stat_cpus():
    """{cpuN: {user, nice, system, idle, iowait, irq, softirq, steal}} in clock ticks."""
    names = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if re.match(r"cpu\d+ ", line):
                p = line.split()
                out[p[0]] = dict(zip(names, map(int, p[1:9])))
    return out


def disk_stat(path="/var/lib/docker"):
    """/sys/dev/block/<dev>/stat of the block device holding `path` (the volumes): reads, writes,
    write ticks (ms), io_ticks (ms the device was busy). The whole disk when `path` is on a partition."""
    st = os.stat(path)
    dev = f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}"
    stat = os.path.join(dev, "stat")
    if not os.path.exists(stat):
        return None
    f = list(map(int, open(stat).read().split()))
    return {"device": os.path.basename(os.path.realpath(dev)), "writes": f[4], "sectorsWritten": f[6],
            "writeTicksMs": f[7], "ioTicksMs": f[9], "t": time.monotonic()}


def disk_delta(a, b):
    if not a or not b:
        return None
    wall_ms = (b["t"] - a["t"]) * 1000
    w = b["writes"] - a["writes"]
    return {"device": a["device"], "busyPct": round(100 * (b["ioTicksMs"] - a["ioTicksMs"]) / wall_ms, 1),
            "writes": w, "writtenMiB": round((b["sectorsWritten"] - a["sectorsWritten"]) * 512 / MIB, 1),
            "avgWriteMs": round((b["writeTicksMs"] - a["writeTicksMs"]) / w, 2) if w else None}


def cpu_speed(cpus, mib=64):
    """MB/s of SHA-256 over a fixed buffer on each CPU (best of 3): a witness of the machine's own
    speed at that moment (a VM's vCPUs can get slower when its host is busy, invisibly to /proc/stat)."""
    buf = b"x" * (16 << 20)
    old = os.sched_getaffinity(0)
    out = {}
    try:
        for cpu in cpus:
            os.sched_setaffinity(0, {cpu})
            best = 1e9
            for _ in range(3):
                t = time.perf_counter()
                for _ in range(mib // 16):
                    hashlib.sha256(buf).digest()
                best = min(best, time.perf_counter() - t)
            out[f"cpu{cpu}"] = round(mib / best)
    finally:
        os.sched_setaffinity(0, old)
    return out


def wait_quiet(max_wait, busy_max=20.0, nice_max=5.0, window=2.0):
    """Waits (at most max_wait s) until, over a `window`, every CPU is at most busy_max % busy and
    at most nice_max % in niced processes: nothing of this script runs between runs, so that is
    other people's work. Returns (seconds waited, quiet?, the last window's figures)."""
    t0 = time.monotonic()
    while True:
        a = proc_stat_cpus()
        time.sleep(window)
        busy = cpu_busy(a, proc_stat_cpus())
        quiet = all(c["busyPct"] <= busy_max and c["nicePct"] <= nice_max for c in busy.values())
        waited = time.monotonic() - t0
        if quiet or waited + window > max_wait:
            return round(waited, 1), quiet, busy


def cpu_busy(before, after):
    hz = os.sysconf("SC_CLK_TCK")
    out = {}
    for cpu, b in before.items():
        a = after.get(cpu, b)
        d = {k: (a[k] - b[k]) / hz for k in b}
        total = sum(d.values()) or 1
        out[cpu] = {
            "busyPct": round(100 * (total - d["idle"] - d["iowait"]) / total, 1),
            "nicePct": round(100 * d["nice"] / total, 1),
            "iowaitPct": round(100 * d["iowait"] / total, 1),
        }
    return out


class MemorySampler(threading.Thread):
    """Peak of memory.stat total_rss / total_cache and memory.usage_in_bytes, every `period` s."""

    def __init__(self, memdir, period=0.25):
        super().__init__(daemon=True)
        self.memdir, self.period = memdir, period
        self.stop = threading.Event()
        self.peak = {"rss": 0, "cache": 0, "usage": 0}
        self.samples = 0

    def run(self):
        while not self.stop.is_set():
            st = read_kv(os.path.join(self.memdir, "memory.stat"))
            usage = read_int(os.path.join(self.memdir, "memory.usage_in_bytes"))
            if st:
                self.peak["rss"] = max(self.peak["rss"], st.get("total_rss", 0))
                self.peak["cache"] = max(self.peak["cache"], st.get("total_cache", 0))
            if usage is not None:
                self.peak["usage"] = max(self.peak["usage"], usage)
            self.samples += 1
            self.stop.wait(self.period)


# ---- one run -------------------------------------------------------------------------------------

def wait_ready(port, seconds, container):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        st = docker("inspect", "-f", "{{.State.Status}}", container, check=False).stdout.strip()
        if st not in ("running", "created"):
            return False
        time.sleep(0.2)
    return False


def run_k6(args, env, out_dir, k6_cpu):
    """k6 pinned to k6_cpu; returns (exit code, rusage, wall seconds). Bounded by duration + 90 s."""
    cmd = ["taskset", "-c", str(k6_cpu), "k6", "run", "--quiet", "--no-usage-report",
           "--summary-trend-stats", "avg,min,med,p(90),p(95),p(99),max"]
    for k, v in env.items():
        if k != "SUMMARY_JSON":
            cmd += ["-e", f"{k}={v}"]
    cmd.append(K6_SCRIPT)
    penv = dict(os.environ, SUMMARY_JSON=env["SUMMARY_JSON"], K6_NO_USAGE_REPORT="true")
    with open(os.path.join(out_dir, "k6.out"), "w") as out:
        out.write(shlex.join(cmd) + "\n")
        out.flush()
        started = time.monotonic()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=penv, cwd=REPO_ROOT)
        CLEANUP["k6"] = p
        limit = args.duration + 90
        interrupted = False
        # Poll instead of blocking in wait4, so that a signal to this script is handled at once.
        while True:
            pid, status, rusage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            elapsed = time.monotonic() - started
            if elapsed > limit and not interrupted:
                p.send_signal(signal.SIGINT)
                interrupted = True
            elif elapsed > limit + 30:
                p.kill()
            time.sleep(0.1)
        p.returncode = os.waitstatus_to_exitcode(status)
        CLEANUP["k6"] = None
    return p.returncode, rusage, time.monotonic() - started, cmd


def cpu_placement(cpus, args):
    """(cpuset for the server, shares a core with k6?)"""
    server = sorted(int(c) for c in args.server_cpuset.split(","))
    need = int(-(-cpus // 1))  # ceil
    if need <= len(server):
        return ",".join(map(str, server)), False
    every = list(range(os.cpu_count()))
    chosen = sorted(set(server) | set(c for c in every if c != args.k6_cpu))
    if len(chosen) < need:
        chosen = every[:max(need, len(chosen))]
    return ",".join(map(str, chosen)), args.k6_cpu in chosen


def noise_score(rec):
    n = rec.get("noise") or {}
    return max(n.get("maxNicePct", 100) / 10, n.get("otherCores", 10) / 0.3)


def one_run(args, setting, round_no, seq, out_root, max_wait=0.0):
    cpus, mem = setting
    run_id = f"r{round_no}-{seq:02d}-{cpus:g}cpu-{mem}"
    quiet = None
    if max_wait > 0:
        waited, ok, busy = wait_quiet(max_wait)
        quiet = {"waitedSeconds": waited, "quietReached": ok, "lastWindow": busy}
    speed = cpu_speed(range(os.cpu_count()))
    out_dir = os.path.join(out_root, "runs", run_id)
    os.makedirs(out_dir, exist_ok=True)
    name = f"bo-matrix-{os.getpid()}-{round_no}-{seq}"
    cpuset, shared = cpu_placement(cpus, args)
    fixture_seed = random.randrange(1, 2**31)
    rec = {"id": run_id, "round": round_no, "cpus": cpus, "memory": mem, "cpuset": cpuset,
           "k6Cpu": args.k6_cpu, "sharesCoreWithK6": shared, "fixtureSeed": fixture_seed,
           "started": now_iso(), "container": name, "quietWait": quiet, "cpuSpeedMBps": speed}
    t0 = time.monotonic()
    CLEANUP["volumes"].add(name)
    CLEANUP["containers"].add(name)
    try:
        docker("volume", "create", name)
        seed = docker("run", "--rm", "--network", "none", "-v", f"{name}:/data", args.image, "seed",
                      "--users", str(args.users), "--concerts", str(args.concerts), "--schedules", str(args.schedules),
                      "--seats", str(args.seats), "--balance", str(args.balance), timeout=120)
        rec["seed"] = seed.stdout.strip().splitlines()[-1] if seed.stdout.strip() else ""
        docker("run", "-d", "--name", name, "--network", "host", "--cpus", f"{cpus:g}", "--cpuset-cpus", cpuset,
               "--memory", mem, "--memory-swap", mem,
               "-v", f"{name}:/data", "-e", f"BOXOFFICE_BIND=127.0.0.1:{args.port}",
               "-e", f"BOXOFFICE_HEALTHCHECK_URL=http://127.0.0.1:{args.port}/health/ready",
               args.image, "serve", "--max-active", "100000", "--admission-rate", "100000")
        if not wait_ready(args.port, 30, name):
            raise RuntimeError(f"server not ready within 30 s: {docker('logs', '--tail', '20', name, check=False).stdout}")
        pid = int(docker("inspect", "-f", "{{.State.Pid}}", name).stdout.strip())
        cg = cgroup_dirs(pid)
        rec["cgroup"] = {k: v for k, v in cg.items() if k in ("cpu", "cpuacct", "memory")}
        rec["cgroupLimits"] = {
            "cfs_quota_us": read_int(os.path.join(cg["cpu"], "cpu.cfs_quota_us")),
            "cfs_period_us": read_int(os.path.join(cg["cpu"], "cpu.cfs_period_us")),
            "cpuset": open(os.path.join(cg["cpuset"], "cpuset.cpus")).read().strip() if "cpuset" in cg else None,
            "memory_limit_bytes": read_int(os.path.join(cg["memory"], "memory.limit_in_bytes")),
        }
        stat0 = read_kv(os.path.join(cg["cpu"], "cpu.stat"))
        usage0 = read_int(os.path.join(cg["cpuacct"], "cpuacct.usage"))
        cpus0 = proc_stat_cpus()
        load0 = open("/proc/loadavg").read().split()[:3]
        disk0 = disk_stat()
        sampler = MemorySampler(cg["memory"])
        sampler.start()
        summary_path = os.path.join(out_dir, "k6-summary.json")
        env = {"BASE_URL": f"http://127.0.0.1:{args.port}", "USERS": args.users, "CONCERTS": args.concerts,
               "VUS": args.vus, "DURATION": f"{args.duration}s", "SEED": fixture_seed, "SUMMARY_JSON": summary_path}
        rc, ru, k6_wall, k6_cmd = run_k6(args, env, out_dir, args.k6_cpu)
        sampler.stop.set()
        sampler.join(2)
        stat1 = read_kv(os.path.join(cg["cpu"], "cpu.stat"))
        usage1 = read_int(os.path.join(cg["cpuacct"], "cpuacct.usage"))
        cpus1 = proc_stat_cpus()
        disk1 = disk_stat()
        mem_dir = cg["memory"]
        rec["k6"] = {"exitCode": rc, "command": shlex.join(k6_cmd), "wallSeconds": round(k6_wall, 2),
                     "cpuSeconds": round(ru.ru_utime + ru.ru_stime, 2), "maxRssMiB": round(ru.ru_maxrss / 1024, 1),
                     "cores": round((ru.ru_utime + ru.ru_stime) / k6_wall, 3)}
        state = json.loads(docker("inspect", "-f", "{{json .State}}", name).stdout)
        rec["state"] = {k: state.get(k) for k in ("Status", "OOMKilled", "ExitCode", "Error")}
        oomc = read_kv(os.path.join(mem_dir, "memory.oom_control"))
        rec["mem"] = {
            "maxUsageBytes": read_int(os.path.join(mem_dir, "memory.max_usage_in_bytes")),
            "failcnt": read_int(os.path.join(mem_dir, "memory.failcnt")),
            "oomKillCount": oomc.get("oom_kill"),
            "peakRssBytes": sampler.peak["rss"],
            "peakCacheBytes": sampler.peak["cache"],
            "peakUsageSampledBytes": sampler.peak["usage"],
            "samples": sampler.samples,
        }
        d = {k: stat1.get(k, 0) - stat0.get(k, 0) for k in ("nr_periods", "nr_throttled", "throttled_time")}
        rec["throttling"] = {"nr_periods": d["nr_periods"], "nr_throttled": d["nr_throttled"],
                             "throttled_seconds": round(d["throttled_time"] / NS, 3),
                             "throttled_pct": round(100 * d["nr_throttled"] / d["nr_periods"], 1) if d["nr_periods"] else 0.0}
        # If the container died, its cgroup may be gone: cpuacct.usage then reads None.
        rec["serverCpuSeconds"] = round((usage1 - usage0) / NS, 2) if usage0 is not None and usage1 is not None else None
        rec["host"] = {"loadavgBefore": load0, "loadavgAfter": open("/proc/loadavg").read().split()[:3],
                       "cpus": cpu_busy(cpus0, cpus1), "disk": disk_delta(disk0, disk1)}
        used = {f"cpu{c}" for c in cpuset.split(",")} | {f"cpu{args.k6_cpu}"}
        rec["noise"] = {"maxNicePct": max(rec["host"]["cpus"][c]["nicePct"] for c in used if c in rec["host"]["cpus"]),
                        "serverCpusBusyPct": round(statistics.mean(rec["host"]["cpus"][f"cpu{c}"]["busyPct"] for c in cpuset.split(",")), 1),
                        "k6CpuBusyPct": rec["host"]["cpus"].get(f"cpu{args.k6_cpu}", {}).get("busyPct")}
        # Everything the CPUs did besides the server's cgroup and k6: the kernel's network work for
        # the two (~0.25 of a core on a quiet box) plus anybody else's processes.
        if rec.get("serverCpuSeconds") is not None and "cores" in rec["k6"]:
            busy_cores = sum(c["busyPct"] for c in rec["host"]["cpus"].values()) / 100
            rec["noise"]["otherCores"] = round(busy_cores - rec["serverCpuSeconds"] / k6_wall - rec["k6"]["cores"], 2)
        rec["noisy"] = rec["noise"]["maxNicePct"] > args.max_nice or rec["noise"].get("otherCores", 0) > args.max_other
        try:
            with open(summary_path) as f:
                k6s = json.load(f)
        except (OSError, ValueError) as e:
            k6s = None
            rec["k6"]["summaryError"] = str(e)
        if k6s:
            secs = k6s["testRunDurationMs"] / 1000
            lat = k6s.get("latency") or {}
            rec["k6"]["testRunSeconds"] = round(secs, 2)
            rec["result"] = {
                "requests": k6s["requests"], "requestsPerSecond": round(k6s["requestsPerSecond"], 1),
                "journeys": k6s["journeysCompleted"], "journeysPerSecond": round(k6s["journeysPerSecond"], 1),
                "journeysFailed": k6s["journeysFailed"], "failedByReason": k6s["failedByReason"],
                "errorRatePct": round(100 * k6s["failedRate"], 3), "byStatus": k6s["byStatus"],
                "holdConflicts": k6s["holdConflicts"],
                "p50ms": r1(lat.get("med")), "p95ms": r1(lat.get("p95")),
                "p99ms": r1(lat.get("p99")), "maxms": r1(lat.get("max")),
                "endpoints": {n: {"p95ms": r1(e["p95"]), "p99ms": r1(e["p99"])}
                              for n, e in k6s["endpoints"].items() if e.get("max")},
            }
            if k6s["requests"]:
                rec["k6"]["cpuSecondsPer1kRequests"] = round(1000 * rec["k6"]["cpuSeconds"] / k6s["requests"], 3)
            if rec["serverCpuSeconds"] is not None:
                rec["serverCores"] = round(rec["serverCpuSeconds"] / secs, 3)
                if k6s["requests"]:
                    rec["serverCpuSecondsPer1kRequests"] = round(1000 * rec["serverCpuSeconds"] / k6s["requests"], 3)
        # The data directory after the run (the SQLite file and its write-ahead log).
        mp = docker("volume", "inspect", "-f", "{{.Mountpoint}}", name, check=False).stdout.strip()
        if mp and os.path.isdir(mp):
            rec["dataFilesBytes"] = {f: os.path.getsize(os.path.join(mp, f)) for f in sorted(os.listdir(mp))
                                     if os.path.isfile(os.path.join(mp, f))}
        with open(os.path.join(out_dir, "server.log"), "w") as f:
            f.write(docker("logs", "--tail", "200", name, check=False).stdout)
        # Graceful stop, then the audit of what the server left behind.
        if rec["state"]["Status"] == "running":
            t = time.monotonic()
            docker("stop", "-t", "15", name, timeout=60, check=False)
            rec["stop"] = {"seconds": round(time.monotonic() - t, 2),
                           "exitCode": int(docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip())}
        if args.audit:
            a = docker("run", "--rm", "--network", "none", "-v", f"{name}:/data", args.image, "audit", timeout=300, check=False)
            rec["audit"] = {"exitCode": a.returncode, "ok": a.returncode == 0}
            with open(os.path.join(out_dir, "audit.txt"), "w") as f:
                f.write(a.stdout)
            if a.returncode != 0:
                rec["audit"]["tail"] = a.stdout[-1500:]
    except Exception as e:  # a run that could not be made: recorded, the matrix goes on
        rec["error"] = str(e)[-3000:]
        log(f"{run_id}: {rec['error'][:500]}")
    finally:
        docker("rm", "-f", name, check=False, timeout=60)
        CLEANUP["containers"].discard(name)
        docker("volume", "rm", "-f", name, check=False, timeout=60)
        CLEANUP["volumes"].discard(name)
    rec["ended"] = now_iso()
    rec["seconds"] = round(time.monotonic() - t0, 1)
    return rec


def r1(v):
    return None if v is None else round(v, 1)


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds")


# ---- report --------------------------------------------------------------------------------------

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def spread(vals, fmt="{:.0f}"):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "–"
    m = statistics.median(vals)
    if len(vals) == 1:
        return fmt.format(m)
    return f"{fmt.format(m)} ({fmt.format(min(vals))}–{fmt.format(max(vals))})"


def mem_bytes(s):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([kmg]?)b?", s.lower())
    if not m:
        raise argparse.ArgumentTypeError(f"not a memory size: {s}")
    return int(float(m[1]) * {"": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}[m[2]])


def aggregate(runs, settings):
    rows = []
    for cpus, mem in settings:
        rs = [r for r in runs if r["cpus"] == cpus and r["memory"] == mem and not r.get("replacedBy") and not r.get("discarded")]
        ok = [r for r in rs if "result" in r]
        g = lambda f: [f(r) for r in ok]
        statuses = {}
        for r in ok:
            for s, n in r["result"]["byStatus"].items():
                statuses[s] = statuses.get(s, 0) + n
        non2xx = {s: n for s, n in sorted(statuses.items()) if not s.startswith("2")}
        k6c = med(g(lambda r: r["k6"].get("cores")))
        srv = med(g(lambda r: r.get("serverCores")))
        thr = med(g(lambda r: r["throttling"]["throttled_pct"]))
        bound = []
        busy = med(g(lambda r: r.get("noise", {}).get("serverCpusBusyPct")))
        if thr is not None and thr >= 20:
            bound.append("server CPU (throttled)")
        elif busy is not None and busy >= 90 and not any(r["sharesCoreWithK6"] for r in rs):
            bound.append("the server's core (busy, kernel network work included)")
        if k6c is not None and k6c >= 0.9:
            bound.append("k6 CPU")
        if not bound:
            bound.append("neither CPU (writer / disk / latency)")
        rows.append({
            "cpus": cpus, "memory": mem, "runs": len(rs), "runsWithResult": len(ok),
            "cpuset": rs[0]["cpuset"] if rs else None, "sharesCoreWithK6": any(r["sharesCoreWithK6"] for r in rs),
            "requestsPerSecond": {"median": med(g(lambda r: r["result"]["requestsPerSecond"])), "all": g(lambda r: r["result"]["requestsPerSecond"])},
            "journeysPerSecond": {"median": med(g(lambda r: r["result"]["journeysPerSecond"])), "all": g(lambda r: r["result"]["journeysPerSecond"])},
            "p95ms": {"median": med(g(lambda r: r["result"]["p95ms"])), "all": g(lambda r: r["result"]["p95ms"])},
            "p99ms": {"median": med(g(lambda r: r["result"]["p99ms"])), "all": g(lambda r: r["result"]["p99ms"])},
            "errorRatePct": {"median": med(g(lambda r: r["result"]["errorRatePct"])), "all": g(lambda r: r["result"]["errorRatePct"])},
            "non2xxByStatusAllRuns": non2xx,
            "oomKilledRuns": sum(1 for r in rs if (r.get("state") or {}).get("OOMKilled")),
            "exitCodes": [(r.get("state") or {}).get("ExitCode") for r in rs],
            "throttledPeriodsPct": {"median": thr, "all": g(lambda r: r["throttling"]["throttled_pct"])},
            "throttledSeconds": {"median": med(g(lambda r: r["throttling"]["throttled_seconds"])), "all": g(lambda r: r["throttling"]["throttled_seconds"])},
            "serverCores": {"median": srv, "all": g(lambda r: r.get("serverCores"))},
            "serverCpuSeconds": {"median": med(g(lambda r: r.get("serverCpuSeconds"))), "all": g(lambda r: r.get("serverCpuSeconds"))},
            "serverCpuSecondsPer1kRequests": {"median": med(g(lambda r: r.get("serverCpuSecondsPer1kRequests")))},
            "peakRssMiB": {"max": max([r["mem"]["peakRssBytes"] / MIB for r in ok], default=None), "all": g(lambda r: round(r["mem"]["peakRssBytes"] / MIB, 1))},
            "maxUsageMiB": {"max": max([(r["mem"]["maxUsageBytes"] or 0) / MIB for r in ok], default=None), "all": g(lambda r: round((r["mem"]["maxUsageBytes"] or 0) / MIB, 1))},
            "memoryFailcnt": {"median": med(g(lambda r: r["mem"]["failcnt"]))},
            "k6Cores": {"median": k6c, "all": g(lambda r: r["k6"].get("cores"))},
            "auditOk": all((r.get("audit") or {}).get("ok", True) for r in rs),
            "serverCpusBusyPct": {"median": med(g(lambda r: r.get("noise", {}).get("serverCpusBusyPct"))), "all": g(lambda r: r.get("noise", {}).get("serverCpusBusyPct"))},
            "noisyRuns": sum(1 for r in rs if r.get("noisy")),
            "cpuSpeedMBps": {"median": med(g(lambda r: statistics.mean(r["cpuSpeedMBps"].values()) if r.get("cpuSpeedMBps") else None)),
                             "all": g(lambda r: round(statistics.mean(r["cpuSpeedMBps"].values())) if r.get("cpuSpeedMBps") else None)},
            "k6CpuSecondsPer1kRequests": {"median": med(g(lambda r: r["k6"].get("cpuSecondsPer1kRequests"))),
                                          "all": g(lambda r: r["k6"].get("cpuSecondsPer1kRequests"))},
            "otherCores": {"median": med(g(lambda r: r.get("noise", {}).get("otherCores"))), "all": g(lambda r: r.get("noise", {}).get("otherCores"))},
            "diskAvgWriteMs": {"median": med(g(lambda r: (r["host"].get("disk") or {}).get("avgWriteMs")))},
            "diskBusyPct": {"median": med(g(lambda r: (r["host"].get("disk") or {}).get("busyPct")))},
            "maxNicePct": max([r.get("noise", {}).get("maxNicePct", 0) for r in rs], default=None),
            "limitedBy": bound,
            "errors": [r["error"] for r in rs if "error" in r],
        })
    return rows


def fmt_or(v, fmt="{:.1f}", dash="–"):
    return dash if v is None else fmt.format(v)


def render(meta, rows, runs):
    L = []
    L.append(f"# Resource matrix with real containers ({meta['started'][:10]})")
    L.append("")
    L.append(f"- commit `{meta['commit']}` ({meta['commitSubject'][:90]}…), binary `{meta['binary']}` sha256 `{meta['binarySha256'][:16]}…`")
    L.append(f"- {meta['cores']} × {meta['cpuModel']}, {meta['memoryTotalMiB']} MiB; Docker Engine {meta['dockerEngine']}, cgroup v1; {meta['k6Version'].split('(')[0].strip()}")
    L.append(f"- workload: `{meta['k6Script']}` (closed model: {meta['settings']['vus']} VUs looping the buyer journey for {meta['settings']['durationSeconds']} s per run), "
             f"server `serve --max-active 100000 --admission-rate 100000` on a fresh volume seeded with "
             f"{meta['settings']['seed']['users']} users, {meta['settings']['seed']['concerts']} concerts × {meta['settings']['seed']['schedules']} dates × {meta['settings']['seed']['seats']} seats")
    L.append(f"- CPU placement: server `--cpuset-cpus {meta['placement']['serverCpuset']}`, k6 `taskset -c {meta['placement']['k6Cpu']}`; "
             f"settings above {len(meta['placement']['serverCpuset'].split(','))} CPU(s) get every core and share CPU {meta['placement']['k6Cpu']} with k6 (marked *shared*)")
    L.append(f"- {meta['settings']['runs']} runs per setting, in rounds (order shuffled per round, seed {meta['settings']['orderSeed']}); {meta['started']} → {meta['ended']}")
    if meta.get("budgetNote"):
        L.append(f"- budget: {meta['budgetNote']}")
    L.append(f"- command: `{meta['commandLine']}`")
    L.append("")
    L.append("Medians of the runs, (min–max) in brackets. req/s and journeys/s from k6; latency of all requests; "
             "server cores = container CPU-seconds (cpuacct) / run time; throttled = share of CFS periods in which the "
             "container was throttled; peak RSS = highest sampled `total_rss` (anonymous memory); cgroup max = "
             "`memory.max_usage_in_bytes` (includes page cache, so it reaches the limit whenever the server writes enough); "
             "k6 cores = CPU-seconds k6 used / its wall time (≥ 0.9: the load generator was the limit); k6 CPU-s / 1k req = "
             "k6's own cost per request, a process outside every container: when it moves with the server's, the machine got "
             "faster or slower, not the server; CPU speed = SHA-256 MB/s per CPU measured just before each run (mean of the CPUs); "
             "disk = the volumes' block device over the run (busy share of the time, mean write latency: other people's "
             "builds write to the same disk); its CPUs busy = busy share of the server's cpuset CPUs from /proc/stat (everything on them: the server, the "
             "kernel's network work for it, anything else); noisy = a run during which a CPU it used spent more than "
             f"{meta['settings']['maxNicePct']:g} % in niced processes (somebody else's build) or the box was busier than server + k6 + "
             f"{meta['settings']['maxOtherCores']:g} cores; a noisy run was made once more right away while the budget allowed (the quieter counts).")
    L.append("")
    L.append("| CPUs | memory | req/s | journeys/s | p95 ms | p99 ms | errors % | non-2xx (all runs) | OOM kills | throttled % | throttled s | server cores | its CPUs busy % | disk busy %, write ms | CPU-s / 1k req | peak RSS MiB | cgroup max MiB | k6 cores | k6 CPU-s / 1k req | CPU speed MB/s | noisy runs | limited by |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cp = f"{r['cpus']:g}" + (" (shared)" if r["sharesCoreWithK6"] else "")
        non2 = ", ".join(f"{s}: {n}" for s, n in r["non2xxByStatusAllRuns"].items()) or "0"
        L.append("| " + " | ".join([
            cp, r["memory"],
            spread(r["requestsPerSecond"]["all"]), spread(r["journeysPerSecond"]["all"]),
            spread(r["p95ms"]["all"]), spread(r["p99ms"]["all"]),
            fmt_or(r["errorRatePct"]["median"], "{:.2f}"), non2,
            f"{r['oomKilledRuns']} of {r['runs']}",
            spread(r["throttledPeriodsPct"]["all"], "{:.0f}"), fmt_or(r["throttledSeconds"]["median"], "{:.1f}"),
            spread(r["serverCores"]["all"], "{:.2f}"), fmt_or(r["serverCpusBusyPct"]["median"], "{:.0f}"),
            f"{fmt_or(r['diskBusyPct']['median'], '{:.0f}')}, {fmt_or(r['diskAvgWriteMs']['median'], '{:.2f}')}",
            fmt_or(r["serverCpuSecondsPer1kRequests"]["median"], "{:.3f}"),
            fmt_or(r["peakRssMiB"]["max"], "{:.1f}"), fmt_or(r["maxUsageMiB"]["max"], "{:.0f}"),
            spread(r["k6Cores"]["all"], "{:.2f}"), fmt_or(r["k6CpuSecondsPer1kRequests"]["median"], "{:.3f}"),
            spread(r["cpuSpeedMBps"]["all"], "{:.0f}"), f"{r['noisyRuns']} (max nice {r['maxNicePct']:.0f} %)" if r["maxNicePct"] is not None else "–",
            "; ".join(r["limitedBy"]),
        ]) + " |")
    problems = [(r["cpus"], r["memory"], e) for r in rows for e in r["errors"]]
    audits = [r for r in rows if not r["auditOk"]]
    L.append("")
    reruns = [r for r in runs if r.get("rerunOf")]
    sp = [statistics.mean(r["cpuSpeedMBps"].values()) for r in runs if r.get("cpuSpeedMBps")]
    if sp:
        L.append(f"Machine speed (SHA-256 MB/s, mean of the CPUs, before each run): {min(sp):.0f}–{max(sp):.0f}, median {statistics.median(sp):.0f}.")
    L.append(f"Noisy runs made again right away: {len(reruns)} ({sum(1 for r in runs if r.get('replacedBy'))} replaced by a quieter run); "
             f"waits for a quiet box before runs: {sum((r.get('quietWait') or {}).get('waitedSeconds', 0) for r in runs):.0f} s in all, "
             f"{sum(1 for r in runs if r.get('quietWait') and not r['quietWait']['quietReached'])} runs started without reaching quiet.")
    L.append(f"Runs: {len(runs)}; runs without a result: {sum(1 for r in runs if 'result' not in r)}; "
             f"audits failed: {sum(1 for r in runs if r.get('audit') and not r['audit']['ok'])}; "
             f"runs where k6 exited non-zero: {sum(1 for r in runs if r.get('k6', {}).get('exitCode') not in (0, None))}.")
    for cpus, mem, e in problems:
        L.append(f"- {cpus:g} CPU / {mem}: {e[:300]}")
    for r in audits:
        L.append(f"- {r['cpus']:g} CPU / {r['memory']}: an audit failed")
    nice = [r["host"]["cpus"] for r in runs if "host" in r]
    if nice:
        worst = max(c.get("nicePct", 0) for h in nice for c in h.values())
        L.append(f"- other work on the box during the runs: the highest `nice` share of a CPU in any run was {worst:.1f} % "
                 "(niced processes, e.g. somebody's cargo build at nice 19; per CPU and run in run.json `host.cpus`).")
    L.append("")
    return "\n".join(L)


def run_doc(meta, runs):
    """run.json: the commit and the command line at the top (what .ci/evidence.py checks), then the
    environment and every run."""
    return {"schema": "boxoffice-resource-matrix-runs/1", "commit": meta["commit"], "command": meta["commandLine"],
            "started": meta.get("started"), "ended": meta.get("ended"), "meta": meta, "runs": runs}


# ---- main ----------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default="target/release/boxoffice", help="host-built boxoffice binary (default: %(default)s)")
    ap.add_argument("--commit", default=None,
                    help="the commit the binary was built from, for the record (default: git rev-parse HEAD at start)")
    ap.add_argument("--image", default="boxoffice:matrix", help="image tag to build or reuse (default: %(default)s)")
    ap.add_argument("--cpus", default="0.25,0.5,1,2", help="comma-separated --cpus values (default: %(default)s)")
    ap.add_argument("--memory", default="64m,128m,256m,512m", help="comma-separated --memory values (default: %(default)s)")
    ap.add_argument("--runs", type=int, default=3, help="runs per setting; the report shows their median (default: %(default)s)")
    ap.add_argument("--duration", type=int, default=40, help="seconds of k6 load per run (default: %(default)s)")
    ap.add_argument("--budget-minutes", type=float, default=60,
                    help="if the matrix would take longer, shorten --duration (never below 15 s) rather than the runs (default: %(default)s)")
    ap.add_argument("--vus", type=int, default=128, help="k6 VUs, the closed model's crowd (default: %(default)s)")
    ap.add_argument("--users", type=int, default=100000)
    ap.add_argument("--concerts", type=int, default=20)
    ap.add_argument("--schedules", type=int, default=25)
    ap.add_argument("--seats", type=int, default=100)
    ap.add_argument("--balance", type=int, default=100000)
    ap.add_argument("--port", type=int, default=18190, help="127.0.0.1 port of the server (default: %(default)s)")
    ap.add_argument("--server-cpuset", default="0", help="CPUs for the server container (default: %(default)s)")
    ap.add_argument("--k6-cpu", type=int, default=1, help="CPU k6 is pinned to (default: %(default)s)")
    ap.add_argument("--no-audit", dest="audit", action="store_false", help="skip `boxoffice audit` after each run")
    ap.add_argument("--quiet-wait", type=float, default=30,
                    help="before each run, wait up to this many seconds for the box to be quiet (every CPU <= 20 %% busy, "
                         "<= 5 %% niced); bounded by the budget (default: %(default)s)")
    ap.add_argument("--max-nice", type=float, default=10,
                    help="a run during which a CPU it used spent more than this %% in niced processes (somebody's "
                         "build) is noisy; a noisy run is made once more right away while the budget allows (default: %(default)s)")
    ap.add_argument("--max-other", type=float, default=0.3,
                    help="... or during which the CPUs were busier than the server + k6 + this many cores (the kernel's "
                         "own work for them is 0.05-0.1 on a quiet box) (default: %(default)s)")
    ap.add_argument("--no-rerun-noisy", dest="rerun_noisy", action="store_false", help="keep noisy runs as they are")
    ap.add_argument("--order-seed", type=int, default=None, help="seed of the shuffled order (default: random, recorded)")
    ap.add_argument("--out", default=None, help="results folder (default: /tmp/resource-matrix-<timestamp>/)")
    args = ap.parse_args()

    if os.geteuid() != 0:
        sys.exit("resource-matrix: run as root (docker, cgroup files, the volumes' mount points)")
    if not (os.path.isfile(args.binary) and os.access(args.binary, os.X_OK)):
        sys.exit(f"resource-matrix: {args.binary}: no such executable (build it first: cargo build --release)")
    for tool in ("docker", "k6", "taskset", "git"):
        if not shutil.which(tool):
            sys.exit(f"resource-matrix: {tool} not found")
    if run(["docker", "info"], check=False, timeout=15).returncode != 0:
        log("no docker engine answers: starting it (deploy/offline/start-dockerd.sh)")
        run([os.path.join(OFFLINE_DIR, "start-dockerd.sh")], timeout=300)
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", args.port)) == 0:
            sys.exit(f"resource-matrix: something listens on 127.0.0.1:{args.port}; choose --port")
    cpus_list = [float(c) for c in args.cpus.split(",")]
    mem_list = [m.strip().lower() for m in args.memory.split(",")]
    for m in mem_list:
        mem_bytes(m)
    settings = [(c, m) for m in mem_list for c in cpus_list]
    if args.k6_cpu >= os.cpu_count():
        sys.exit(f"resource-matrix: --k6-cpu {args.k6_cpu}: this box has {os.cpu_count()} CPUs")

    total_runs = len(settings) * args.runs
    budget_note = None
    est = total_runs * (args.duration + OVERHEAD_S)
    if est > args.budget_minutes * 60:
        fit = int(args.budget_minutes * 60 / total_runs - OVERHEAD_S)
        new = max(15, fit)
        budget_note = (f"{total_runs} runs × ({args.duration} s + ~{OVERHEAD_S} s overhead) = {est / 60:.0f} min > "
                       f"{args.budget_minutes:g} min: --duration shortened to {new} s per run (runs kept)")
        args.duration = new
        log(budget_note)
    else:
        budget_note = f"{total_runs} runs × ({args.duration} s + ~{OVERHEAD_S} s overhead) ≈ {est / 60:.0f} min, within {args.budget_minutes:g} min"

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_root = os.path.abspath(args.out or f"/tmp/resource-matrix-{stamp}")
    os.makedirs(os.path.join(out_root, "runs"), exist_ok=True)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    binary_sha = sha256(args.binary)
    meta = environment(args, binary_sha)
    meta["started"] = now_iso()
    meta["budgetNote"] = budget_note
    order_seed = args.order_seed if args.order_seed is not None else random.randrange(1, 10**6)
    meta["settings"] = {"cpus": cpus_list, "memory": mem_list, "runs": args.runs, "durationSeconds": args.duration,
                        "quietWaitSeconds": args.quiet_wait, "maxNicePct": args.max_nice, "maxOtherCores": args.max_other, "rerunNoisy": args.rerun_noisy,
                        "vus": args.vus, "orderSeed": order_seed, "audit": args.audit, "port": args.port,
                        "seed": {"users": args.users, "concerts": args.concerts, "schedules": args.schedules,
                                 "seats": args.seats, "balance": args.balance},
                        "serve": ["serve", "--max-active", "100000", "--admission-rate", "100000"],
                        "dockerRun": "docker run --network host --cpus C --cpuset-cpus S --memory M --memory-swap M -v <fresh volume>:/data"}
    meta["placement"] = {"serverCpuset": args.server_cpuset, "k6Cpu": args.k6_cpu,
                         "perSetting": {f"{c:g}": dict(zip(("cpuset", "sharesCoreWithK6"), cpu_placement(c, args))) for c in cpus_list},
                         "note": "the server container is pinned with --cpuset-cpus in addition to --cpus, k6 with taskset; "
                                 "a setting needing more CPUs than the server's cpuset gets every core and shares the k6 CPU"}
    log(f"results in {out_root}; {budget_note}")
    runs = []
    complete = False
    try:
        meta["imageBuild"] = ensure_image(args, binary_sha)
        log(f"image {args.image}: {'built' if meta['imageBuild']['built'] else 'reused'} (binary sha256 {binary_sha[:16]}…)")
        rng = random.Random(order_seed)
        seq = 0
        per_run = args.duration + OVERHEAD_S
        deadline = time.monotonic() + args.budget_minutes * 60

        def do(setting, round_no, left):
            nonlocal seq
            seq += 1
            # Wait for quiet only with time to spare: what is left of the budget after `left` runs.
            spare = deadline - time.monotonic() - left * per_run
            rec = one_run(args, setting, round_no, seq, out_root, max_wait=min(args.quiet_wait, max(0.0, spare)))
            runs.append(rec)
            res = rec.get("result", {})
            qw = rec.get("quietWait") or {}
            log(f"[{seq}] {rec['id']}: {res.get('requestsPerSecond', '-')} req/s, "
                f"{res.get('journeysPerSecond', '-')} journeys/s, p99 {res.get('p99ms', '-')} ms, "
                f"errors {res.get('errorRatePct', '-')} %, throttled {rec.get('throttling', {}).get('throttled_pct', '-')} %, "
                f"server {rec.get('serverCores', '-')} cores (its CPUs {rec.get('noise', {}).get('serverCpusBusyPct', '-')} % busy), "
                f"k6 {rec.get('k6', {}).get('cores', '-')} cores, OOM {rec.get('state', {}).get('OOMKilled', '-')}, "
                f"nice {rec.get('noise', {}).get('maxNicePct', '-')} %{' NOISY' if rec.get('noisy') else ''}, "
                f"waited {qw.get('waitedSeconds', 0)} s for quiet, {rec['seconds']} s")
            with open(os.path.join(out_root, "run.json"), "w") as f:  # kept current: a partial matrix is readable
                json.dump(run_doc(meta, runs), f, indent=1)
            return rec

        left = total_runs
        for round_no in range(1, args.runs + 1):
            order = settings[:]
            rng.shuffle(order)
            for setting in order:
                left -= 1
                old = do(setting, round_no, left)
                # A noisy run is made once more right away (same place in the round, so the
                # machine's slow drift does not single it out), when the budget has room for it;
                # the quieter of the two counts.
                if args.rerun_noisy and old.get("noisy") and deadline - time.monotonic() - (left + 1) * per_run > 0:
                    new = do(setting, round_no, left)
                    new["rerunOf"] = old["id"]
                    if "result" in new and noise_score(new) < noise_score(old):
                        old["replacedBy"] = new["id"]
                    else:
                        new["discarded"] = "not quieter than the run it was to replace"
        complete = True
    finally:
        cleanup()
        if not complete and runs:
            # Interrupted: the report of what was done, marked as such (then the exit goes on).
            meta["ended"] = now_iso()
            meta["interrupted"] = True
            with open(os.path.join(out_root, "run.json"), "w") as f:
                json.dump(run_doc(meta, runs), f, indent=1)
            with open(os.path.join(out_root, "report.md"), "w") as f:
                f.write("**Interrupted: a partial matrix.**\n\n" + render(meta, aggregate(runs, settings), runs))
            log(f"interrupted after {len(runs)} runs: wrote {out_root}/report.md and run.json")
    meta["ended"] = now_iso()
    rows = aggregate(runs, settings)
    report = render(meta, rows, runs)
    with open(os.path.join(out_root, "run.json"), "w") as f:
        json.dump(run_doc(meta, runs), f, indent=1)
    with open(os.path.join(out_root, "summary.json"), "w") as f:
        json.dump({"schema": "boxoffice-resource-matrix-summary/1", "commit": meta["commit"], "command": meta["commandLine"],
                   "meta": meta, "settings": rows}, f, indent=1)
    with open(os.path.join(out_root, "report.md"), "w") as f:
        f.write(report)
    print(report)
    log(f"wrote {out_root}/report.md, summary.json, run.json")
    return 1 if all("result" not in r for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
