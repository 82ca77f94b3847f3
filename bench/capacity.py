#!/usr/bin/env python3
"""The capacity model of the scale-out mode (docs/capacity.md): from each component's measured
cost per request on this box, what a crowd needs: instance cores, Redis shards, PostgreSQL cores
and connections, and which component saturates first.

    python3 bench/capacity.py                                  # the worked examples
    python3 bench/capacity.py --visitors 500000 --seats 50000 --arrival 60 --poll 20 --rate 500
    python3 bench/capacity.py --inputs evidence/<run>/summary.json   # costs from another run

The costs come from `bench/core.py --mode scaleout --pin` (server pinned to one core, wrk on the
other): each process's CPU-seconds during a benchmark over its requests. A run's summary.json is
read directly; the default is the committed run named in INPUTS.
"""
import argparse, json, math, os, statistics

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
INPUTS = os.path.join(ROOT, "evidence", "20261207-capacity-scaleout-pinned", "summary.json")

# Not measured by core.py; each from its own evidence (docs/capacity.md says which).
KIB_PER_CONNECTION = 11.7      # 20261207-connections-after
IDLE_KEEPALIVE_SECONDS = 10    # --header-read-timeout: an idle connection closes after it
UTILISATION = 0.7              # plan for this share of a core, so a burst has room
PG_MAX_CONNECTIONS = 100       # PostgreSQL's default max_connections
POOL_PER_INSTANCE = 16         # --db-pool-size's scale-out default
HOLDS_PER_BUYER = 1.3          # a hold attempt in three loses a seat race (flash-sale runs)
MAX_CONNECTIONS = 20_000       # --max-connections' default: past it an instance answers 503


def costs(path):
    """Median CPU µs per unit of work on each component: a waiting poll, a join, and an admitted
    buyer (claim + hold + pay: the journey less its join)."""
    runs = json.load(open(path))

    def med(name, field):
        return statistics.median(r.get(field, 0.0) for r in runs[name])

    def per_journey(field):
        # core.py's figures are per request; a journey is several requests.
        return statistics.median(r.get(field, 0.0) * r["rps"] / r["journeys_per_s"] for r in runs["journey"])

    out = {}
    for part, field in (("instance", "server_cpu_us_per_request"), ("redis", "redis_cpu_us_per_request"),
                        ("postgres", "pg_cpu_us_per_request")):
        join = med("join", field)
        out[part] = {"poll": med("waiting", field), "join": join,
                     "buyer": max(per_journey(field) - join, 0.0) + (HOLDS_PER_BUYER - 1) * med("hold", field)}
    return out


def model(c, visitors, arrival, poll, seats, rate, lines=1, per_order=2, buy_share=0.8, pg_cores=8):
    """Peak load of an on-sale and what carries it. `rate` is the admission rate of all lines
    together (buyers per second), `arrival` the seconds over which the visitors join."""
    joins = visitors / arrival
    waiting = visitors  # at the peak nearly everyone is in line
    polls = waiting / poll
    buyers = min(rate, joins)
    load = {part: joins * c[part]["join"] + polls * c[part]["poll"] + buyers * c[part]["buyer"] for part in c}
    core = 1e6 * UTILISATION  # µs of CPU per second that one core gives at the planned share
    instance_cores = load["instance"] / core
    # One line lives on one Redis shard (its scripts touch several of its keys at once, which a
    # cluster allows only within one hash slot), so one line's load must fit
    # one core of Redis whatever the number of shards.
    line_redis = load["redis"] / lines / core
    shards = max(1, math.ceil(load["redis"] / core))
    pg_cores_needed = load["postgres"] / core
    connections = waiting * min(poll, IDLE_KEEPALIVE_SECONDS) / poll  # kept alive between polls
    # One core each, enough for the open connections, at least two for failover. Instances
    # scale out; the busiest line's shard and the PostgreSQL primary do not.
    instances = max(2, math.ceil(instance_cores), math.ceil(connections / MAX_CONNECTIONS))
    utilisation = {"Redis, the busiest line's shard (one core)": line_redis,
                   f"the PostgreSQL primary ({pg_cores} cores)": load["postgres"] / (core * pg_cores)}
    first = max(utilisation, key=utilisation.get)
    orders = seats / per_order
    return {
        "joins/s": joins, "polls/s": polls, "buyers/s": buyers,
        "sell-out minutes": orders / buy_share / max(buyers, 1e-9) / 60,
        "instance cores": instance_cores, "instances": instances,
        "open connections": connections,
        "connection memory per instance MiB": connections / instances * KIB_PER_CONNECTION / 1024,
        "Redis shards": shards, "busiest line's shard utilisation": line_redis,
        "PostgreSQL cores": pg_cores_needed,
        "PostgreSQL connections": instances * POOL_PER_INSTANCE,
        "PgBouncer needed": instances * POOL_PER_INSTANCE > PG_MAX_CONNECTIONS - 10,
        "saturates first (of what does not scale out)": first, "its share of capacity": utilisation[first],
    }


EXAMPLES = {
    "a 1,000-seat club show": dict(visitors=5_000, arrival=60, poll=5, seats=1_000, rate=20),
    "a 50,000-seat stadium, 500,000 fans": dict(visitors=500_000, arrival=60, poll=20, seats=50_000, rate=500),
    "an Eras-scale day (peak hour)": dict(visitors=14_000_000, arrival=3_600, poll=25, seats=2_400_000, rate=2_000, lines=50),
}


def show(name, r):
    print(f"\n## {name}\n")
    for k, v in r.items():
        text = f"{v:,.2f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)
        print(f"- {k}: {text}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inputs", default=INPUTS)
    ap.add_argument("--visitors", type=float)
    ap.add_argument("--arrival", type=float, default=60, help="seconds over which the visitors join")
    ap.add_argument("--poll", type=float, default=20, help="seconds between a waiting fan's polls")
    ap.add_argument("--seats", type=float, default=50_000)
    ap.add_argument("--rate", type=float, default=500, help="admissions per second, all lines")
    ap.add_argument("--lines", type=int, default=1, help="concerts on sale at once")
    ap.add_argument("--table", action="store_true", help="one markdown table (docs/capacity.md's)")
    ap.add_argument("--pg-cores", type=int, default=8, help="cores of the PostgreSQL primary")
    a = ap.parse_args()
    c = costs(a.inputs)
    print(f"# costs (CPU µs per unit, from {os.path.relpath(a.inputs, ROOT)})\n")
    for part, v in c.items():
        print(f"- {part}: " + ", ".join(f"{k} {x:.2f}" for k, x in v.items()))
    cases = ({"the given crowd": dict(visitors=a.visitors, arrival=a.arrival, poll=a.poll, seats=a.seats, rate=a.rate,
                                      lines=a.lines, pg_cores=a.pg_cores)} if a.visitors else EXAMPLES)
    if a.table:
        print("\n| crowd | joins/s | polls/s | instance cores | instances | busiest line's Redis shard | "
              "PostgreSQL cores | PostgreSQL connections | saturates first (share) |\n|---|---|---|---|---|---|---|---|---|")
        for name, p in cases.items():
            for label, q in ((name, p), ("… ten times the crowd", dict(p, visitors=p["visitors"] * 10))):
                r = model(c, **q)
                first = r["saturates first (of what does not scale out)"].split(" (")[0]
                shard = r["busiest line's shard utilisation"]
                print(f"| {label} | {r['joins/s']:,.0f} | {r['polls/s']:,.0f} | {r['instance cores']:.1f} | {r['instances']:,} | "
                      f"{shard:.0%} | {r['PostgreSQL cores']:.1f} | "
                      f"{r['PostgreSQL connections']:,} | {first} ({r['its share of capacity']:.0%}) |")
        return
    for name, p in cases.items():
        show(name, model(c, **p))
        p10 = dict(p, visitors=p["visitors"] * 10)
        show(f"{name}, ten times the crowd", model(c, **p10))


if __name__ == "__main__":
    main()
