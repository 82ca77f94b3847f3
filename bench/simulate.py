#!/usr/bin/env python3
"""The capacity model checked on a scaled-down box (issue 19, docs/capacity.md).

One scale-out instance on CPU 0 is given a share of that core (a cgroup v1 CPU quota, --cpu, one
run per share); wrk on CPU 1 sends a crowd's mix: for every join of a new fan into a paused line,
--polls-per-join status polls from fans already waiting. The model (bench/capacity.py's costs,
from the committed pinned run) predicts the joins per second where the instance runs out of CPU:

    J_sat = share × 10⁶ / (join µs + polls_per_join × poll µs)

wrk is closed-loop (100 connections, as many requests as the server answers), so what it
measures is that saturation point itself: the check passes when the measured joins/s is within
25 % of the prediction at every share. Not the runner's arrival curve: k6 on one core offers
about 10,000 requests/s, short of what even a quarter of a core answers.

    cargo build --release && python3 bench/simulate.py [--cpu 0.25 0.5 1] [--polls-per-join 2] [--evidence RUN_ID]

Needs root (cgroup v1 at /sys/fs/cgroup/cpu), wrk, PostgreSQL and Redis on 127.0.0.1. Traffic goes
to 127.0.0.1 only; every run is bounded by wrk's duration and stops all it started.
"""
import argparse, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import capacity  # noqa: E402
import core  # noqa: E402

CGROUP_ROOT = "/sys/fs/cgroup/cpu"
PERIOD_US = 10_000  # a short period, so a throttled instance waits milliseconds, not 100 ms
USERS_PER_THREAD = 200_000


class CpuCap:
    """A cgroup v1 CPU quota around one process (and its threads); share >= 1 sets none."""

    def __init__(self, pid, share):
        if not os.path.exists(os.path.join(CGROUP_ROOT, "cpu.cfs_quota_us")):
            raise SystemExit(f"needs cgroup v1's CPU controller at {CGROUP_ROOT} (and root)")
        self.path = os.path.join(CGROUP_ROOT, f"boxoffice-sim-{os.getpid()}")
        os.makedirs(self.path, exist_ok=True)
        try:
            self.write("cpu.cfs_period_us", PERIOD_US)
            self.set(share)
            self.write("cgroup.procs", pid)
        except OSError:
            os.rmdir(self.path)
            raise

    def set(self, share):
        self.write("cpu.cfs_quota_us", int(share * PERIOD_US) if share < 1 else -1)

    def write(self, name, value):
        with open(os.path.join(self.path, name), "w") as f:
            f.write(str(value))

    def remove(self):
        # Called after the process has exited: an empty cgroup can be removed.
        try:
            os.rmdir(self.path)
        except OSError as e:
            print(f"could not remove {self.path}: {e}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpu", type=float, nargs="+", default=[0.25, 0.5, 1.0], help="the instance's shares of one core")
    ap.add_argument("--polls-per-join", type=int, default=2, help="arrival window over poll interval")
    ap.add_argument("--duration", type=int, default=8, help="seconds per share")
    ap.add_argument("--runs", type=int, default=3, help="runs per share; the table gives the median")
    ap.add_argument("--calibrate", type=int, default=4, help="seconds of joins alone and of polls alone before each run")
    ap.add_argument("--inputs", default=capacity.INPUTS)
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "boxoffice"))
    ap.add_argument("--evidence", metavar="RUN_ID")
    a = ap.parse_args()
    import evidence
    started = evidence.now()
    c = capacity.costs(a.inputs)["instance"]
    per_join = c["join"] + a.polls_per_join * c["poll"]
    core.PIN.update(server=["taskset", "-c", "0"], wrk=["taskset", "-c", "1"])
    concerts = (len(a.cpu) + 1) * a.runs + 1
    token_users = range(2 * USERS_PER_THREAD + 1, 2 * USERS_PER_THREAD + 1001)
    server = core.Server(a.binary, ["--users", str(token_users[-1]), "--concerts", str(concerts), "--schedules", "1",
                                    "--seats", "50"], [], mode="scaleout",
                         tick="100ms")  # the default: a tick per line per 5 ms would be a load of its own here
    lines_used = iter(range(2, concerts + 1))  # a paused line of its own per measurement: every join a new place

    def waiting_line():
        concert = next(lines_used)
        path = os.path.join(server.dir, f"waiting-{concert}.txt")
        with open(path, "w") as f:
            f.write("\n".join(server.waiting_tokens(concert, token_users)) + "\n")
        return concert, path

    cap, results = None, []
    try:
        cap = CpuCap(server.proc.pid, 1)
        for run in range(a.runs):
            # The model's two costs, measured alone on the whole core right before the mix, so
            # that the machine's swings between runs fall on both sides of the comparison.
            cap.set(1)
            concert, tokens_file = waiting_line()
            join = core.wrk(server.base, "join.lua", [concert, 1, USERS_PER_THREAD], 2, 100, a.calibrate, server=server)
            poll = core.wrk(server.base, "token_get.lua", [tokens_file, "/api/v1/queue/status"], 2, 100, a.calibrate,
                            server=server)
            fresh = join["server_cpu_us_per_request"] + a.polls_per_join * poll["server_cpu_us_per_request"]
            print(f"run {run + 1}: join {join['server_cpu_us_per_request']:.1f} µs, poll "
                  f"{poll['server_cpu_us_per_request']:.1f} µs", file=sys.stderr)
            for share in a.cpu:
                concert, tokens_file = waiting_line()
                cap.set(share)
                r = core.wrk(server.base, "mix.lua", [tokens_file, concert, 1, USERS_PER_THREAD, a.polls_per_join],
                             2, 100, a.duration, server=server)
                joins = r["rps"] / (1 + a.polls_per_join)
                predicted = share * 1e6 / fresh
                r.update(share=share, joins=joins, predicted=predicted, ratio=joins / predicted,
                         predicted_committed=share * 1e6 / per_join, join_us=join["server_cpu_us_per_request"],
                         poll_us=poll["server_cpu_us_per_request"])
                results.append(r)
                print(f"share {share}: {r}", file=sys.stderr)
    finally:
        server.stop()
        if cap:
            cap.remove()
    med = []
    for share in a.cpu:
        runs = [r for r in results if r["share"] == share]
        mid = sorted(runs, key=lambda r: r["ratio"])[len(runs) // 2]
        med.append(dict(mid, every=", ".join(f"{r['ratio']:.2f}" for r in runs)))
    ok = all(abs(r["ratio"] - 1) <= 0.25 and r["non2xx"] == 0 for r in med)
    lines = ["# bench/simulate.py: the capacity model against a scaled-down instance", "",
             f"One scale-out instance on CPU 0 at each share of the core (cgroup quota), wrk on CPU 1 (2 threads, 100 "
             f"connections, {a.duration} s per share): for every join into a paused line, {a.polls_per_join} polls of "
             f"people waiting. Each run first measures the model's two costs alone on the whole core ({a.calibrate} s of "
             f"joins, {a.calibrate} s of polls) and predicts share × 10⁶ / (join + {a.polls_per_join} × poll) µs joins/s "
             f"from them; the committed inputs (`{os.path.relpath(a.inputs, ROOT)}`: join {c['join']:.1f}, poll "
             f"{c['poll']:.1f} µs) are shown beside. Median of {a.runs} runs per share (by measured / predicted).", "",
             "| share of a core | join µs, poll µs alone | predicted joins/s | measured joins/s | measured / predicted | "
             "predicted from the committed inputs | requests/s | p99 ms | non-2xx | server CPU µs per request in the mix | "
             "every run, measured / predicted |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in med:
        lines.append(f"| {r['share']:g} | {r['join_us']:.1f}, {r['poll_us']:.1f} | {r['predicted']:,.0f} | {r['joins']:,.0f} | "
                     f"**{r['ratio']:.2f}** | {r['predicted_committed']:,.0f} | {r['rps']:,.0f} | {r['p99']:.1f} | "
                     f"{r['non2xx']} | {r['server_cpu_us_per_request']:.1f} | {r['every']} |")
    lines += ["", f"Within 25 % at every share: **{'yes' if ok else 'no'}**."]
    report = "\n".join(lines) + "\n"
    print("\n" + report)
    if a.evidence:
        evidence.write(a.evidence, report, {"costs": c, "runs": results}, started, binaries=[a.binary],
                       placement="server on CPU 0 under a cgroup CPU quota, wrk on CPU 1, PostgreSQL and Redis unpinned")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
