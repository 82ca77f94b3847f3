#!/bin/bash
# OFFLINE STAND-IN entrypoint, after the official redis image's: flags or a .conf file as the
# first argument mean redis-server; the server runs as user redis.
set -euo pipefail
if [[ ${1:-} == -* || ${1:-} == *.conf ]]; then set -- redis-server "$@"; fi
if [[ ${1:-} == redis-server ]]; then
  # The official image is built with protected mode off (it relies on the network for access):
  # the same as a default, i.e. before the command's own flags (after a config file, if any).
  shift
  if [[ ${1:-} == *.conf ]]; then conf=$1; shift; set -- redis-server "$conf" --protected-mode no "$@"
  else set -- redis-server --protected-mode no "$@"; fi
  if [[ $(id -u) == 0 ]]; then
    chown -R redis:redis /data 2>/dev/null || true
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
