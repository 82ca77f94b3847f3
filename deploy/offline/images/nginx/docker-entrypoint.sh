#!/bin/sh
# OFFLINE STAND-IN entrypoint, after the official nginx image's: runs /docker-entrypoint.d/*.sh
# (if any) before nginx, then execs the command.
set -e
if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
  for f in /docker-entrypoint.d/*.sh; do
    [ -x "$f" ] && "$f"
  done
fi
exec "$@"
