#!/usr/bin/env bash
# Settings for the compose stack that match one k6 scenario of loadtest/k6/scenarios.json: the seed
# (SEED_*, which the k6 service also passes to the scripts as USERS … BALANCE), the serve flags
# (BOXOFFICE_MAX_ACTIVE, BOXOFFICE_ADMISSION_RATE, …) and SCALE.
#
#   deploy/scenario-env.sh SCENARIO [small|full]        print the lines
#   deploy/scenario-env.sh -w SCENARIO [small|full]     write them into deploy/.env, keeping every
#                                                       other line there (APP_CPUS, secrets, …)
#
# The seed service only fills an empty database, so after changing the seed shape start over:
#   docker compose -f deploy/compose.yaml down -v && docker compose -f deploy/compose.yaml up -d
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONF=$HERE/../loadtest/k6/scenarios.json
WRITE=0
if [[ ${1:-} == -w ]]; then WRITE=1; shift; fi
if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 [-w] SCENARIO [small|full]" >&2
  exit 2
fi

python3 - "$CONF" "$1" "${2:-small}" "$WRITE" "$HERE/.env" <<'PY'
import json, os, sys

conf, name, scale, write, env_path = sys.argv[1:]
c = json.load(open(conf))
if name not in c["scenarios"]:
    sys.exit(f"unknown scenario {name!r}; have: {', '.join(c['scenarios'])}")
scales = c["scenarios"][name]["scales"]
if scale not in scales:
    sys.exit(f"scenario {name} has no scale {scale!r}; have: {', '.join(scales)}")
s = scales[scale]

# The serve flags deploy/compose.yaml passes to app1/app2.
KNOWN = {"max-active", "admission-rate", "admission-tick", "claim-window", "active-ttl",
         "hold-ttl", "sweep-interval", "db-pool-size", "db-timeout", "redis-timeout"}
lines = [("SCALE", scale)]
for k in ("users", "concerts", "schedules", "seats", "balance"):
    lines.append((f"SEED_{k.upper()}", s["seed"][k]))
for k, v in s.get("serve", {}).items():
    if k not in KNOWN:
        print(f"warning: serve flag --{k} is not passed through by deploy/compose.yaml", file=sys.stderr)
        continue
    lines.append(("BOXOFFICE_" + k.upper().replace("-", "_"), v))

header = f"# scenario {name} ({scale}), from loadtest/k6/scenarios.json by deploy/scenario-env.sh"
text = "\n".join([header] + [f"{k}={v}" for k, v in lines]) + "\n"
if write != "1":
    sys.stdout.write(text)
    sys.exit(0)

managed = {k for k, _ in lines} | {"SCALE", "BOXOFFICE_SWEEP_INTERVAL"} | {
    "BOXOFFICE_" + k.upper().replace("-", "_") for k in KNOWN}
kept = []
if os.path.exists(env_path):
    for line in open(env_path).read().splitlines():
        key = line.split("=", 1)[0].strip()
        if line.startswith("# scenario ") or (not line.lstrip().startswith("#") and key in managed):
            continue
        kept.append(line)
with open(env_path, "w") as f:
    f.write("\n".join(kept + [text.rstrip("\n")]) + "\n")
print(f"wrote {env_path}: {name} ({scale}). Reseed with: docker compose -f deploy/compose.yaml down -v && docker compose -f deploy/compose.yaml up -d", file=sys.stderr)
PY
