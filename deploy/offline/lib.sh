# Shared helpers of the deploy/offline/ scripts (sourced, not run).
# shellcheck shell=bash

OFFLINE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$OFFLINE_DIR/../.." && pwd)
# Label every stand-in image carries, so `docker images --filter label=…` lists them.
STANDIN_LABEL=org.boxoffice.offline-standin

say() { echo "${SCRIPT_NAME:-offline}: $*" >&2; }
die() { say "$*"; exit 1; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "needs root (or sudo) for: $*"; fi
}

# Starts the engine when `docker info` does not answer (installs it first where needed).
ensure_dockerd() {
  timeout 10 docker info >/dev/null 2>&1 && return 0
  "$OFFLINE_DIR/start-dockerd.sh"
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# drop_replaced OLD_ID IMAGE: removes the image IMAGE pointed to before a rebuild, when the rebuild
# moved the tag (a new binary), so that repeated runs do not pile up untagged images. An image
# still used by a container stays.
drop_replaced() {
  [[ -n $1 && $1 != "$(image_id "$2")" ]] && docker rmi "$1" >/dev/null 2>&1
  return 0
}

# `docker build` with BuildKit (the Dockerfile needs it: cache mounts, and only the stages the
# target needs are built). The docker CLI 23+ builds with BuildKit only through the buildx plugin;
# Debian's docker.io (20.10) CLI has BuildKit built in. Use whichever this machine has.
# Bounded by $BUILD_TIMEOUT seconds (default 900).
docker_build() {
  if timeout 10 docker buildx version >/dev/null 2>&1; then
    timeout "${BUILD_TIMEOUT:-900}" env DOCKER_BUILDKIT=1 BUILDKIT_PROGRESS=plain docker build "$@"
  elif [[ -x /usr/bin/docker ]] && /usr/bin/docker version -f '{{.Client.Version}}' 2>/dev/null | grep -q '^20\.'; then
    timeout "${BUILD_TIMEOUT:-900}" env DOCKER_BUILDKIT=1 BUILDKIT_PROGRESS=plain /usr/bin/docker build "$@"
  else
    die "no BuildKit-capable docker build here: install the buildx plugin (docker-buildx) or Debian's docker.io"
  fi
}

# The Debian release of deploy/Dockerfile (ARG DEBIAN_RELEASE=…), e.g. bookworm.
debian_release() {
  sed -n 's/^ARG DEBIAN_RELEASE=\([a-z]*\).*/\1/p' "$REPO_ROOT/deploy/Dockerfile" | head -n 1
}

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
api() { curl -sS --max-time 10 "$@"; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for SECONDS CMD...: true once CMD succeeds, false when SECONDS pass.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS >= deadline)) && return 1
    sleep 0.5
  done
}

# purchase BASE_URL USER_ID KEY: the README's purchase with curl, checked at every step: join →
# ACTIVE → hold the first available seat of the concert's first date with seats left → charge
# points → pay with Idempotency-Key KEY (a retry answers the same payment) → token EXPIRED →
# the reservation reads CONFIRMED (with a fresh token). Prints one line per step.
purchase() {
  local b=$1 user=$2 key=$3 token status schedule seat hold res pay pay2 fresh deadline
  token=$(api -XPOST "$b/api/v1/queue/tokens" -H 'content-type: application/json' \
    -d "{\"userId\":$user,\"concertId\":1}" | json 'd["token"]') || { echo "join failed"; return 1; }
  deadline=$((SECONDS + 30))
  while :; do
    status=$(api "$b/api/v1/queue/status" -H "Authorization: Bearer $token" | json 'd["status"]') || return 1
    [[ $status == ACTIVE ]] && break
    ((SECONDS > deadline)) && { echo "token still $status after 30 s"; return 1; }
    sleep 0.5
  done
  echo "user $user: token ACTIVE"
  schedule=$(api "$b/api/v1/concerts/1/schedules" -H "Authorization: Bearer $token" \
    | json '[s["scheduleId"] for s in d["schedules"] if s["availableSeats"] > 0][0]') || { echo "no date with seats left"; return 1; }
  seat=$(api "$b/api/v1/schedules/$schedule/seats?status=AVAILABLE" -H "Authorization: Bearer $token" \
    | json 'd["seats"][0]["seatNo"]') || { echo "no available seat on date $schedule"; return 1; }
  hold=$(api -XPOST "$b/api/v1/reservations" -H "Authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"scheduleId\":$schedule,\"seatNo\":$seat}")
  res=$(json 'd["reservationId"] if d.get("status") == "HELD" else ""' <<<"$hold")
  [[ -n $res ]] || { echo "hold of seat $seat on date $schedule: $hold"; return 1; }
  echo "seat $seat of date $schedule HELD as reservation $res"
  api -XPOST "$b/api/v1/users/$user/points/charge" -H 'content-type: application/json' -d '{"amount":200000}' \
    | json '"charged: balance %s" % d["balance"]' || return 1
  pay=$(api -XPOST "$b/api/v1/payments" -H "Authorization: Bearer $token" -H "Idempotency-Key: $key" \
    -H 'content-type: application/json' -d "{\"reservationId\":$res}")
  json '"paid: payment %s" % d["paymentId"]' <<<"$pay" 2>/dev/null || { echo "payment: $pay"; return 1; }
  pay2=$(api -XPOST "$b/api/v1/payments" -H "Authorization: Bearer $token" -H "Idempotency-Key: $key" \
    -H 'content-type: application/json' -d "{\"reservationId\":$res}")
  [[ $(json 'd["paymentId"]' <<<"$pay") == $(json 'd.get("paymentId")' <<<"$pay2" 2>/dev/null) ]] \
    || { echo "a retry with the same Idempotency-Key answered differently: $pay2"; return 1; }
  echo "retry with the same Idempotency-Key: the same payment"
  status=$(api "$b/api/v1/queue/status" -H "Authorization: Bearer $token" | json 'd["status"]')
  [[ $status == EXPIRED ]] || { echo "token after the payment: $status (want EXPIRED)"; return 1; }
  echo "token EXPIRED"
  fresh=$(api -XPOST "$b/api/v1/queue/tokens" -H 'content-type: application/json' \
    -d "{\"userId\":$user,\"concertId\":1}" | json 'd["token"]')
  wait_for 30 sh -c "curl -s --max-time 5 '$b/api/v1/queue/status' -H 'Authorization: Bearer $fresh' | grep -q '\"ACTIVE\"'" \
    || { echo "a fresh token never turned ACTIVE"; return 1; }
  status=$(api "$b/api/v1/reservations/$res" -H "Authorization: Bearer $fresh" | json 'd["status"]')
  [[ $status == CONFIRMED ]] || { echo "reservation $res: $status (want CONFIRMED)"; return 1; }
  echo "reservation $res CONFIRMED"
}
