#!/usr/bin/env bash
# Brings up the compose stack on a machine without an image registry, and checks it:
#
#   deploy/offline/compose-up.sh [BINARY]     # BINARY defaults to target/release/boxoffice
#   deploy/offline/compose-down.sh [-v]       # stop it (-v: and delete its data)
#
#   1. the Docker engine (start-dockerd.sh) and the stand-in images (base-images.sh)
#   2. boxoffice:local from BINARY (deploy/Dockerfile --build-arg BINARY=host)
#   3. docker compose -f deploy/compose.yaml -f deploy/compose.offline.yaml up -d --no-build
#      postgres, redis, seed, app1, app2, nginx, prometheus; on the host network, 127.0.0.1 only
#      (Grafana and k6 have no stand-in image and are not started)
#   4. checks: every service healthy, the seed exited 0, /health/ready through nginx, both
#      instances answered behind nginx, Prometheus scrapes both (`up` = 1), a purchase through
#      nginx (join → ACTIVE → hold → charge → pay → EXPIRED → CONFIRMED)
#
# Then: http://127.0.0.1:18080 (nginx), http://127.0.0.1:19090 (Prometheus).
# Exits 1 when a check fails; the stack is left running either way, for a look at its logs:
#   docker compose -f deploy/compose.yaml -f deploy/compose.offline.yaml logs app1
set -uo pipefail
SCRIPT_NAME=compose-up
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BINARY=${1:-target/release/boxoffice}
IMAGE=${BOXOFFICE_IMAGE:-boxoffice:local}
COMPOSE=(docker compose -f "$REPO_ROOT/deploy/compose.yaml" -f "$REPO_ROOT/deploy/compose.offline.yaml")
UP_TIMEOUT=${UP_TIMEOUT:-300}
PASSED=0 FAILED=0
T0=$SECONDS
pass() { echo "PASS  $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL  $1"; [[ -n ${2:-} ]] && printf '%s\n' "$2" | sed 's/^/      /'; FAILED=$((FAILED + 1)); }
finish() {
  echo
  echo "compose-up: $PASSED passed, $FAILED failed ($((SECONDS - T0)) s)"
  ((FAILED == 0)) && echo "compose-up: nginx http://127.0.0.1:18080  prometheus http://127.0.0.1:19090  (deploy/offline/compose-down.sh to stop)"
  ((FAILED == 0))
  exit $?
}
WORK=$(mktemp -d /tmp/bo-compose.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

[[ -f $BINARY && -x $BINARY ]] || { fail "binary" "$BINARY: no such executable (cargo build --release)"; finish; }
ensure_dockerd || { fail "docker engine"; finish; }
timeout 10 docker compose version >/dev/null 2>&1 || { fail "docker compose v2 plugin" "see deploy/offline/start-dockerd.sh"; finish; }

started=$SECONDS
if "$OFFLINE_DIR/base-images.sh" >"$WORK/images.log" 2>&1; then
  pass "stand-in images ($((SECONDS - started)) s): $(grep -c $'\t' "$WORK/images.log") present"
else
  fail "stand-in images" "$(tail -n 20 "$WORK/images.log")"
  finish
fi

started=$SECONDS
mkdir -p "$WORK/context"
cp "$BINARY" "$WORK/context/boxoffice"
old_image=$(image_id "$IMAGE")
if docker_build --network none -f "$REPO_ROOT/deploy/Dockerfile" --build-arg BINARY=host -t "$IMAGE" \
  "$WORK/context" >"$WORK/build.log" 2>&1; then
  pass "$IMAGE from $BINARY ($((SECONDS - started)) s)"
  drop_replaced "$old_image" "$IMAGE"   # still used by a running stack: kept until the next run
else
  fail "$IMAGE from $BINARY" "$(tail -n 20 "$WORK/build.log")"
  finish
fi

# The stack's ports must be free, unless this stack already holds them (a second `up`).
if [[ -z $(timeout 30 "${COMPOSE[@]}" ps -q 2>/dev/null) ]]; then
  for p in 15432 16379 18080 18081 18082 19090; do
    port_free "$p" || { fail "127.0.0.1:$p is free" "something else listens there"; finish; }
  done
fi

started=$SECONDS
# `up` itself waits for the depends_on conditions (healthy, seed completed), so it returns once
# nginx has started.
if BOXOFFICE_IMAGE=$IMAGE timeout "$UP_TIMEOUT" "${COMPOSE[@]}" up -d --no-build >"$WORK/up.log" 2>&1; then
  pass "docker compose up -d ($((SECONDS - started)) s)"
else
  fail "docker compose up -d" "$(tail -n 30 "$WORK/up.log")"
fi

healthy_all() {
  local s id
  for s in postgres redis app1 app2 nginx prometheus; do
    id=$(timeout 10 "${COMPOSE[@]}" ps -q "$s") || return 1
    [[ -n $id && $(docker inspect -f '{{.State.Health.Status}}' "$id") == healthy ]] || return 1
  done
}
started=$SECONDS
if wait_for 120 healthy_all; then
  pass "postgres, redis, app1, app2, nginx, prometheus healthy ($((SECONDS - started)) s more)"
else
  fail "every service healthy" "$(timeout 30 "${COMPOSE[@]}" ps -a 2>&1)"
fi
seed_id=$(timeout 10 "${COMPOSE[@]}" ps -aq seed)
seed_state=$(docker inspect -f '{{.State.Status}} exit={{.State.ExitCode}}' "$seed_id" 2>/dev/null)
if [[ $seed_state == "exited exit=0" ]]; then
  pass "seed: $(docker logs "$seed_id" 2>&1 | tail -n 1)"
else
  fail "seed exited 0" "$seed_state: $(docker logs --tail 5 "$seed_id" 2>&1)"
fi

if curl -sf --max-time 5 http://127.0.0.1:18080/health/ready >/dev/null; then
  pass "GET http://127.0.0.1:18080/health/ready through nginx"
else
  fail "GET /health/ready through nginx" "$(curl -s --max-time 5 http://127.0.0.1:18080/health/ready)"
fi

# Both instances behind nginx: its access log names the upstream of each request.
since=$(date +%s)
sleep 1
for _ in $(seq 1 20); do curl -s --max-time 5 -o /dev/null http://127.0.0.1:18080/api/v1/concerts; done
nginx_id=$(timeout 10 "${COMPOSE[@]}" ps -q nginx)
upstreams=$(timeout 10 docker logs --since "$since" "$nginx_id" 2>/dev/null | grep -o '"upstream":"127.0.0.1:1808[12]"' | sort | uniq -c | tr -s ' \n' ' ')
if [[ $upstreams == *18081* && $upstreams == *18082* ]]; then
  pass "nginx balances over both instances:$upstreams"
else
  fail "nginx balances over both instances" "upstreams seen: ${upstreams:-none}"
fi

targets_up() {
  curl -s --max-time 5 'http://127.0.0.1:19090/api/v1/query?query=up%7Bjob%3D%22boxoffice%22%7D' \
    | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; sys.exit(0 if sorted((x["metric"]["instance"], x["value"][1]) for x in r) == [("127.0.0.1:18081","1"),("127.0.0.1:18082","1")] else 1)'
}
if wait_for 30 targets_up; then
  pass "prometheus scrapes app1 and app2: up{job=\"boxoffice\"} = 1 for 127.0.0.1:18081 and :18082"
else
  fail "prometheus scrapes both instances" "$(curl -s --max-time 5 http://127.0.0.1:19090/api/v1/targets | head -c 600)"
fi
rules=$(curl -s --max-time 5 http://127.0.0.1:19090/api/v1/rules | json 'sum(len(g["rules"]) for g in d["data"]["groups"])' 2>/dev/null)
if [[ ${rules:-0} -gt 0 ]]; then pass "prometheus loaded $rules rules"; else fail "prometheus loaded the rules"; fi

user=$((1 + RANDOM % 1000))
if out=$(purchase http://127.0.0.1:18080 "$user" "compose-up-$$-$RANDOM" 2>&1); then
  pass "purchase through nginx: $(tr '\n' ';' <<<"$out" | sed 's/;$//; s/;/; /g')"
else
  fail "purchase through nginx" "$out"
fi

timeout 30 "${COMPOSE[@]}" ps --format 'table {{.Service}}\t{{.Image}}\t{{.Status}}' 2>/dev/null
finish
