#!/usr/bin/env python3
"""Many scale-out instances on one PostgreSQL: straight, and through PgBouncer (issue 19).

Each instance keeps a pool of --db-pool-size connections. Straight to PostgreSQL, instances x
pool meets max_connections (100 by default): past it PostgreSQL refuses new connections ("too
many clients", 53300) and the instances answer 503. Through PgBouncer in transaction mode
(`boxoffice serve --pgbouncer`), every instance's pool talks to PgBouncer, which lends each
transaction one of a few server connections.

A fresh database seeded once; three modes, run in turn --runs times: straight with the pool
each instance asks for (--pool), straight with the pool that fits max_connections, and through
PgBouncer with --pool. Each starts N instances on free ports, then one wrk per instance at
once (points charges, one write transaction each, on users of its own) while one psql opened
beforehand samples PostgreSQL's connections to the database; then the instances stop. Reports
medians of 2xx answers/s, other answers, socket errors, p99 and the peak of connections.

    python3 bench/pgbouncer.py --instances 20 --pool 16 --server-pool 20 --duration 8 --runs 3
    python3 bench/pgbouncer.py ... --evidence 20261208-pgbouncer   # -> evidence/<id>/

Needs: target/release/boxoffice, wrk, psql, /usr/sbin/pgbouncer, PostgreSQL and Redis on
127.0.0.1. All traffic stays on 127.0.0.1; every process is stopped at the end.
"""
import argparse, json, os, re, shutil, socket, subprocess, sys, tempfile, threading, time, uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from burst import free_port, wait_ready  # noqa: E402  (the bench scripts' shared helpers)
import evidence  # noqa: E402
PG = os.environ.get("BOXOFFICE_TEST_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BOXOFFICE_TEST_REDIS", "redis://127.0.0.1:6379")

CHARGE_LUA = r"""
-- POST /api/v1/users/{id}/points/charge for the users of this wrk, one after the other.
local first, count, n = 0, 1, 0
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) first, count = tonumber(args[1]), tonumber(args[2]) end
function request()
  n = n + 1
  return wrk.format("POST", "/api/v1/users/" .. (first + n % count) .. "/points/charge",
    { ["Content-Type"] = "application/json" }, '{"amount":1}')
end
ok, failed = 0, 0
function response(status)
  if status >= 200 and status < 300 then ok = ok + 1 else failed = failed + 1 end
end
function done(summary, latency, requests)
  local o, f = 0, 0
  for _, t in ipairs(threads) do o, f = o + t:get("ok"), f + t:get("failed") end
  io.write(string.format("ANSWERS ok=%d failed=%d errors=%d p99=%.1fms\n", o, f,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(99) / 1000))
end
"""


def wait_tcp(port, deadline_s=15):
    end = time.time() + deadline_s
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def psql(db, sql, url=PG):
    return subprocess.run(["psql", f"{url}/{db}", "-Atqc", sql], check=True, capture_output=True, text=True).stdout.strip()


def start_pgbouncer(workdir, server_pool):
    port = free_port()
    hostport = PG.rsplit("@", 1)[-1]
    host, pg_port = hostport.split(":")
    os.chmod(workdir, 0o755)
    users = os.path.join(workdir, "users.txt")
    open(users, "w").write('"postgres" ""\n')
    ini = os.path.join(workdir, "pgbouncer.ini")
    open(ini, "w").write(
        f"[databases]\n* = host={host} port={pg_port}\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n"
        f"auth_type = trust\nauth_file = {users}\npool_mode = transaction\ndefault_pool_size = {server_pool}\n"
        "max_client_conn = 4000\nignore_startup_parameters = extra_float_digits,application_name\n"
        "unix_socket_dir =\nlog_connections = 0\nlog_disconnections = 0\n")
    user = ["-u", "postgres"] if os.geteuid() == 0 else []
    proc = subprocess.Popen(["/usr/sbin/pgbouncer", *user, ini], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(workdir, "pgbouncer.log"), "w"))
    wait_tcp(port)
    return proc, port


def run_mode(args, mode, pool, db, pgb_port, workdir, lua):
    url = f"{PG}/{db}" if mode == "direct" else f"postgres://postgres@127.0.0.1:{pgb_port}/{db}"
    prefix = f"bo_pgb:{uuid.uuid4().hex[:12]}:"
    ports = [free_port() for _ in range(args.instances)]
    # One connection opened before the instances: once they take every slot, a new one would be
    # refused too.
    watcher = subprocess.Popen(["psql", f"{PG}/postgres", "-Atq"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, bufsize=1)
    watcher.stdin.write("SELECT 1;\n")
    watcher.stdin.flush()
    assert watcher.stdout.readline().strip() == "1", "psql answers"
    servers = []
    for i, port in enumerate(ports):
        cmd = [args.binary, "serve", "--database-url", url, "--redis-url", REDIS, "--redis-prefix", prefix,
               "--bind", f"127.0.0.1:{port}", "--db-pool-size", str(pool), "--data-dir",
               os.path.join(workdir, f"{mode}-{i}"), "--log-format", "json"]
        if mode == "pgbouncer":
            cmd.append("--pgbouncer")
        servers.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                        stderr=open(os.path.join(workdir, f"{mode}-{i}.log"), "w")))
    try:
        for port, server in zip(ports, servers):
            wait_ready(f"http://127.0.0.1:{port}/health/ready", server, within=60)
        peak, stop = [0], threading.Event()

        def sample():
            while not stop.is_set():
                watcher.stdin.write(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}';\n")
                watcher.stdin.flush()
                peak[0] = max(peak[0], int(watcher.stdout.readline()))
                time.sleep(0.1)

        sampler = threading.Thread(target=sample)
        sampler.start()
        per = args.users // args.instances
        wrks = [subprocess.Popen(["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "-s", lua,
                                  f"http://127.0.0.1:{port}", "--", str(1 + i * per), str(per)],
                                 stdout=subprocess.PIPE, text=True) for i, port in enumerate(ports)]
        outs = [w.communicate()[0] for w in wrks]
        stop.set()
        sampler.join()
    finally:
        watcher.stdin.close()
        watcher.wait(10)
        for s in servers:
            s.terminate()
        for s in servers:
            try:
                s.wait(20)
            except subprocess.TimeoutExpired:
                s.kill()
    ok = failed = errors = 0
    p99 = []
    for out in outs:
        m = re.search(r"ANSWERS ok=(\d+) failed=(\d+) errors=(\d+) p99=([\d.]+)ms", out)
        if not m:
            raise SystemExit(f"wrk printed no answers:\n{out}")
        ok, failed, errors = ok + int(m.group(1)), failed + int(m.group(2)), errors + int(m.group(3))
        p99.append(float(m.group(4)))
    p99.sort()
    return {"mode": mode, "instances": args.instances, "pool": pool, "ok": ok, "failed": failed,
            "socketErrors": errors, "okPerSecond": round(ok / args.duration), "medianInstanceP99Ms": p99[len(p99) // 2],
            "peakServerConnections": peak[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=20)
    ap.add_argument("--pool", type=int, default=16, help="--db-pool-size of each instance")
    ap.add_argument("--server-pool", type=int, default=20, help="PgBouncer's server connections per database")
    ap.add_argument("--connections", type=int, default=8, help="wrk connections per instance")
    ap.add_argument("--duration", type=int, default=8, help="seconds of load per mode")
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=3, help="rounds of every mode; the table gives medians")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "boxoffice"))
    ap.add_argument("--evidence", metavar="RUN_ID", help="write evidence/<RUN_ID>/ (result.json and README.md)")
    args = ap.parse_args()
    for tool in ("wrk", "psql"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is needed (apt-get install wrk postgresql-client)")
    if not os.path.exists("/usr/sbin/pgbouncer"):
        raise SystemExit("PgBouncer is needed (apt-get install pgbouncer)")
    started = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    workdir = tempfile.mkdtemp(prefix="bo-pgb-bench")
    lua = os.path.join(workdir, "charge.lua")
    open(lua, "w").write(CHARGE_LUA)
    db = f"bo_pgb_{uuid.uuid4().hex[:12]}"
    max_conn = psql("postgres", "SHOW max_connections")
    psql("postgres", f"CREATE DATABASE {db}")
    bouncer = None
    try:
        subprocess.run([args.binary, "seed", "--database-url", f"{PG}/{db}", "--users", str(args.users),
                        "--concerts", "1", "--schedules", "1", "--seats", "10"], check=True,
                       stdout=subprocess.DEVNULL)
        bouncer, pgb_port = start_pgbouncer(workdir, args.server_pool)
        # Straight with the pool each instance would like, straight with the pool that fits
        # max_connections (with 3 to spare), and through PgBouncer with the pool it would like.
        fits = max(1, (int(max_conn) - 3 - 1) // args.instances)
        modes = [("direct", args.pool), ("direct", fits), ("pgbouncer", args.pool)]
        runs = [[run_mode(args, mode, pool, db, pgb_port, workdir, lua) for mode, pool in modes]
                for _ in range(args.runs)]
    finally:
        if bouncer:
            bouncer.terminate()
            bouncer.wait(10)
        psql("postgres", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    head = (f"{args.instances} instances; pool {args.pool} each = {args.instances * args.pool} client connections; "
            f"PostgreSQL max_connections {max_conn}; PgBouncer {args.server_pool} server connections; "
            f"wrk {args.connections} connections per instance, {args.duration} s")
    results = []
    for i in range(len(runs[0])):
        of = [run[i] for run in runs]
        median = lambda key: sorted(r[key] for r in of)[len(of) // 2]
        results.append(dict(of[0], **{k: median(k) for k in ("okPerSecond", "failed", "socketErrors",
                                                             "medianInstanceP99Ms", "peakServerConnections")}))
    head += f"; median of {args.runs} runs (modes interleaved)"
    lines = [head, "", "| mode | pool per instance | 2xx answers/s | answers not 2xx | socket errors | p99 ms (median instance) | peak PostgreSQL connections |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['mode']} | {r['pool']} | {r['okPerSecond']:,} | {r['failed']:,} | {r['socketErrors']:,} | "
                     f"{r['medianInstanceP99Ms']} | {r['peakServerConnections']} |")
    print("\n".join(lines))
    if args.evidence:
        report = ("# Many instances on one PostgreSQL: straight and through PgBouncer\n\n"
                  f"`python3 bench/pgbouncer.py {' '.join(sys.argv[1:])}`\n\n" + "\n".join(lines) + "\n\n"
                  "\"Answers not 2xx\" and \"socket errors\" count failed requests from two sides (wrk's response hook "
                  "and its error counters). Straight with a pool past max_connections, PostgreSQL refuses connections "
                  "(\"too many clients\", 53300), which boxoffice answers 503.\n")
        evidence.write(args.evidence, report, {"maxConnections": max_conn, "medians": results, "runs": runs}, started,
                       binaries=[args.binary], placement="none: instances, wrk, PgBouncer and PostgreSQL share every CPU")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
