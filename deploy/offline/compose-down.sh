#!/usr/bin/env bash
# Stops the offline compose stack of deploy/offline/compose-up.sh.
#
#   deploy/offline/compose-down.sh        stop and remove the containers (data kept in volumes)
#   deploy/offline/compose-down.sh -v     ... and delete the PostgreSQL and Prometheus volumes
set -euo pipefail
SCRIPT_NAME=compose-down
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
timeout 10 docker info >/dev/null 2>&1 || { say "no docker engine answers: nothing to stop"; exit 0; }
# app1/app2 have stop_grace_period 30s; down stops them in parallel.
timeout 180 docker compose -f "$REPO_ROOT/deploy/compose.yaml" -f "$REPO_ROOT/deploy/compose.offline.yaml" \
  --profile registry --profile load down --remove-orphans "$@"
