#!/usr/bin/env python3
"""Throughput benchmark of the booking core on the embedded default.

Starts the release binary on fresh data, bounded runs of wrk against 127.0.0.1 only, and prints
the median of N runs per benchmark (requests/s and p99):

  cargo build --release && python3 bench/core.py [--runs 3] [--duration 10] [--connections 100]
  python3 bench/core.py --mode scaleout        # PostgreSQL + Redis on 127.0.0.1 (see --pg, --redis)

Needs wrk (`apt-get install wrk`). Everything it starts is stopped when it ends.
"""
import argparse, json, os, re, signal, socket, statistics, subprocess, sys, tempfile, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from burst import cpu_seconds  # noqa: E402  (one reader of /proc/<pid>/stat for the bench scripts)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, token=None, admin=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token or admin:
        req.add_header("Authorization", "Bearer " + (token or admin))
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


ADMIN = "bench-admin-secret"


class Server:
    def __init__(self, binary, seed, extra, mode="embedded", pg="postgres://postgres@127.0.0.1:5432", redis="redis://127.0.0.1:6379",
                 tick="5ms"):
        self.dir = tempfile.mkdtemp(prefix="boxoffice-bench-")
        self.cleanup = []
        self.audit_args = []
        store = ["--data-dir", self.dir]
        if mode == "scaleout":
            # A fresh database and key prefix per server, dropped afterwards.
            name = "bo_bench_" + os.path.basename(self.dir).replace("-", "_").lower()
            admin = pg + "/postgres"
            subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)
            self.cleanup.append(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])
            prefix = f"{name}:"
            self.cleanup.append(["sh", "-c", f"redis-cli -u {redis} --scan --pattern '{prefix}*' | xargs -r redis-cli -u {redis} DEL >/dev/null"])
            store += ["--database-url", f"{pg}/{name}"]
            extra = extra + ["--redis-url", redis, "--redis-prefix", prefix]
            self.audit_args = ["--redis-url", redis, "--redis-prefix", prefix]
        self.store = store
        subprocess.run([binary, "seed"] + store + seed, check=True, stdout=subprocess.DEVNULL)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            PIN["server"] + [binary, "serve"] + store + ["--bind", f"127.0.0.1:{self.port}", "--admin-token", ADMIN, "--max-active", "1000000",
             "--admission-rate", "1000000", "--active-per-seat", "100000", "--admission-tick", tick, "--claim-window", "10m", "--active-ttl", "1h"] + extra,
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "server.log"), "w"), env={**os.environ, "RUST_LOG": "warn"})
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(self.base + "/health/ready", timeout=1)
                break
            except Exception:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise SystemExit("server did not start; see " + self.dir)
                time.sleep(0.05)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for cmd in self.cleanup:
            subprocess.run(cmd, check=False)

    def audit(self, binary):
        return subprocess.run([binary, "audit"] + self.store + self.audit_args, capture_output=True, text=True)

    def active_tokens(self, concert, users):
        # Joins in parallel: with the bench's admission settings each is admitted in its answer,
        # which says so; only a token answered WAITING is polled (also in parallel).
        from concurrent.futures import ThreadPoolExecutor

        def join(u):
            r = call(self.base, "POST", "/api/v1/queue/tokens", {"userId": u, "concertId": concert})
            t = r["token"]
            deadline = time.time() + 10
            while r["status"] != "ACTIVE":
                if time.time() > deadline:
                    raise SystemExit("token never became active")
                time.sleep(0.01)
                r = call(self.base, "GET", "/api/v1/queue/status", token=t)
            return t

        with ThreadPoolExecutor(16) as pool:
            return list(pool.map(join, users))

    def waiting_tokens(self, concert, users):
        # Admission of this concert's line is paused first, so everyone who joins stays WAITING:
        # the polls of a crowd in line, which the scale-out mode answers without Redis.
        call(self.base, "PATCH", f"/api/v1/admin/concerts/{concert}/line", {"paused": True}, admin=ADMIN)
        tokens = []
        for u in users:
            r = call(self.base, "POST", "/api/v1/queue/tokens", {"userId": u, "concertId": concert})
            if r["status"] != "WAITING":
                raise SystemExit(f"joined a paused line and got {r['status']}")
            tokens.append(r["token"])
        return tokens


PIN = {"server": [], "wrk": []}  # taskset prefixes, set by --pin


def postgres_pids():
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().strip() == "postgres":
                        pids.append(int(d))
            except OSError:
                pass
    return pids


def redis_counters(url):
    """Redis's commands processed and CPU-seconds so far (INFO), or None when not measured."""
    if not url:
        return None
    out = subprocess.run(["redis-cli", "-u", url, "INFO", "all"], capture_output=True, text=True, check=True).stdout
    info = dict(l.split(":", 1) for l in out.splitlines() if ":" in l and not l.startswith("#"))
    return int(info["total_commands_processed"]), float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def wrk(base, script, args, threads, connections, duration, redis=None, server=None):
    before = redis_counters(redis)
    pg = postgres_pids() if redis else []
    cpu_before = (cpu_seconds([server.proc.pid]) if server else None, cpu_seconds(pg))
    cmd = PIN["wrk"] + ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s",
           "-s", os.path.join(HERE, "wrk", script), base, "--"] + [str(a) for a in args]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out)
        return float(m.group(1)) * unit[m.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    journeys = re.search(r"JOURNEYS paid=(\d+) holds_lost=(\d+) errors=(\d+) seconds=([\d.]+)", out)
    return {
        "rps": rps, "p50": pct(50), "p99": pct(99),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1) if errors else "",
        "journeys_per_s": int(journeys.group(1)) / float(journeys.group(4)) if journeys else None,
        "journey_errors": int(journeys.group(3)) if journeys else None,
        **redis_share(before, redis_counters(redis), rps * duration),
        **cpu_share(cpu_before, (cpu_seconds([server.proc.pid]) if server else None, cpu_seconds(pg)), rps * duration, bool(redis)),
    }


def cpu_share(before, after, requests, scaleout):
    # The server's (and in scale-out PostgreSQL's) CPU per request: the capacity model's inputs.
    out = {}
    if before[0] is not None and requests:
        out["server_cpu_us_per_request"] = (after[0] - before[0]) * 1e6 / requests
    if scaleout and requests:
        out["pg_cpu_us_per_request"] = (after[1] - before[1]) * 1e6 / requests
    return out


def redis_share(before, after, requests):
    # Redis's work per request (the whole server's: admission ticks included), scale-out only.
    if before is None or not requests:
        return {}
    return {"redis_commands_per_request": (after[0] - before[0]) / requests,
            "redis_cpu_us_per_request": (after[1] - before[1]) * 1e6 / requests}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--journey-connections", type=int, default=32)
    ap.add_argument("--hold-connections", type=int, default=32)
    ap.add_argument("--hold-fans", type=int, default=160000, help="distinct fans per hold run (one hold each)")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "boxoffice"))
    ap.add_argument("--only", nargs="*", help="status waiting seats join hold journey (waiting: status polls of people in line)")
    ap.add_argument("--mode", choices=["embedded", "scaleout"], default="embedded")
    ap.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432", help="scaleout: server URL without database")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379", help="scaleout: Redis URL")
    ap.add_argument("--serve-arg", action="append", default=[], help="an extra `boxoffice serve` flag (repeatable)")
    ap.add_argument("--pin", action="store_true", help="server on CPU 0 and wrk on CPU 1 (taskset); PostgreSQL and Redis unpinned")
    ap.add_argument("--evidence", metavar="RUN_ID", help="also write evidence/RUN_ID/ (report, summary, run.json)")
    a = ap.parse_args()
    if a.pin:
        PIN.update(server=["taskset", "-c", "0"], wrk=["taskset", "-c", "1"])
    started = __import__("datetime").datetime.now(__import__("datetime").timezone.utc).isoformat(timespec="seconds")
    names = ["status", "waiting", "seats", "join", "hold", "journey"]
    wanted = set(a.only or names)
    results = {k: [] for k in names if k in wanted}
    backend = dict(mode=a.mode, pg=a.pg, redis=a.redis)
    redis_url = a.redis if a.mode == "scaleout" else None

    # Reads and joins: the demo's shape (50 seats a date), many users and one concert per run.
    # Concert 1 for reads, 2.. for each run's joins, the last for the paused line.
    waiting_concert = a.runs + 2
    read = Server(a.binary, ["--users", "400000", "--concerts", str(waiting_concert), "--schedules", "3", "--seats", "50"], a.serve_arg, **backend)
    try:
        tokens = read.active_tokens(1, range(1, 1001))
        tok_file = os.path.join(read.dir, "tokens.txt")
        with open(tok_file, "w") as f:
            f.write("\n".join(tokens) + "\n")
        if "waiting" in wanted:
            wait_file = os.path.join(read.dir, "waiting-tokens.txt")
            with open(wait_file, "w") as f:
                f.write("\n".join(read.waiting_tokens(waiting_concert, range(390001, 391001))) + "\n")
        for run in range(a.runs):
            if "status" in wanted:
                results["status"].append(wrk(read.base, "token_get.lua", [tok_file, "/api/v1/queue/status"], 2, a.connections, a.duration, redis_url, read))
            if "waiting" in wanted:
                results["waiting"].append(wrk(read.base, "token_get.lua", [wait_file, "/api/v1/queue/status"], 2, a.connections, a.duration, redis_url, read))
            if "seats" in wanted:
                results["seats"].append(wrk(read.base, "token_get.lua", [tok_file, "/api/v1/schedules/1/seats"], 2, a.connections, a.duration, redis_url, read))
            if "join" in wanted:
                results["join"].append(wrk(read.base, "join.lua", [run + 2, 1, 190000], 2, a.connections, a.duration, redis_url, read))
            for k in results:
                if results[k]:
                    print(f"run {run + 1} {k}: {results[k][-1]}", file=sys.stderr)
    finally:
        read.stop()

    if "hold" in wanted:
        # Holds on distinct seats, each by a fan of their own (a fan holds one set of seats at a
        # time): 40 dates x 5000 seats per run (one concert per run).
        per, seats, fans = 40, 5000, a.hold_fans
        hold = Server(a.binary, ["--users", str(fans * a.runs), "--concerts", str(a.runs), "--schedules", str(per),
                                 "--seats", str(seats)], a.serve_arg, **backend)
        try:
            for run in range(a.runs):
                tokens = hold.active_tokens(run + 1, range(run * fans + 1, (run + 1) * fans + 1))
                tok_file = os.path.join(hold.dir, f"hold-tokens-{run}.txt")
                with open(tok_file, "w") as f:
                    f.write("\n".join(tokens) + "\n")
                results["hold"].append(wrk(hold.base, "hold.lua", [tok_file, run * per + 1, seats, per, fans // 2],
                                           2, a.hold_connections, a.duration, redis_url, hold))
                print(f"run {run + 1} hold: {results['hold'][-1]}", file=sys.stderr)
            verdict = hold.audit(a.binary)
            print(f"hold audit: {'clean' if verdict.returncode == 0 else 'VIOLATIONS'}", file=sys.stderr)
            if verdict.returncode != 0:
                print(verdict.stdout, file=sys.stderr)
                sys.exit(1)
        finally:
            hold.stop()

    if "journey" in wanted:
        # Hold + pay on distinct seats: 10 dates x 5000 seats per concert, one concert per run.
        per = 10
        journey = Server(a.binary, ["--users", "200000", "--concerts", str(a.runs), "--schedules", str(per), "--seats", "5000",
                                    "--balance", "1000000000"], a.serve_arg, **backend)
        try:
            for run in range(a.runs):
                first_schedule = run * per + 1
                results["journey"].append(wrk(journey.base, "journey.lua",
                                              [run + 1, 1, first_schedule, 5000, per, a.journey_connections],
                                              a.journey_connections, a.journey_connections, a.duration, redis_url, journey))
                print(f"run {run + 1} journey: {results['journey'][-1]}", file=sys.stderr)
            audit = journey.audit(a.binary)
            print(f"journey audit: {'clean' if audit.returncode == 0 else 'VIOLATIONS'}", file=sys.stderr)
            if audit.returncode != 0:
                print(audit.stdout, file=sys.stderr)
                sys.exit(1)
        finally:
            journey.stop()

    lines = [f"{a.mode}: median of {a.runs} runs, {a.duration}s each, wrk on the same 2 cores:", "",
             "| benchmark | requests/s | p50 ms | p99 ms | journeys/s | non-2xx |", "|---|---|---|---|---|---|"]
    for k, runs in results.items():
        med = lambda f: statistics.median(r[f] for r in runs)
        j = f"{statistics.median(r['journeys_per_s'] for r in runs):.0f}" if k == "journey" else "–"
        lines.append(f"| {k} | {med('rps'):.0f} | {med('p50'):.2f} | {med('p99'):.2f} | {j} | {max(r['non2xx'] for r in runs)} |")
    costs = [("server_cpu_us_per_request", "server CPU µs"), ("redis_commands_per_request", "Redis commands"),
             ("redis_cpu_us_per_request", "Redis CPU µs"), ("pg_cpu_us_per_request", "PostgreSQL CPU µs")]
    costs = [(f, name) for f, name in costs if any(runs and f in runs[0] for runs in results.values())]
    lines += ["", "Cost per request (median; each process's CPU during the run over the requests; a journey is "
              "about 3 requests; Redis and PostgreSQL include their background work):", "",
              "| benchmark | " + " | ".join(n for _, n in costs) + " |", "|---|" + "---|" * len(costs)]
    for k, runs in results.items():
        lines.append(f"| {k} | " + " | ".join(f"{statistics.median(r[f] for r in runs):.2f}" for f, _ in costs) + " |")
    lines += ["", "Every run (requests/s, p99 ms):", ""]
    for k, runs in results.items():
        lines.append(f"- {k}: " + ", ".join(f"{r['rps']:.0f} ({r['p99']:.2f})" for r in runs))
    print("\n" + "\n".join(lines))
    if a.evidence:
        sys.path.insert(0, HERE)
        import evidence
        evidence.write(a.evidence, "# bench/core.py\n\n" + "\n".join(lines) + "\n", results, started,
                       binaries=[a.binary], placement="server on CPU 0, wrk on CPU 1, PostgreSQL and Redis unpinned" if a.pin else "server and wrk share both cores")


if __name__ == "__main__":
    main()
