#!/usr/bin/env bash
# The published contract against the server that answers: schemathesis (the OpenAPI fuzzer) with
# every check, over every operation but the SSE stream (tested on its own by the conformance
# suite: live_position_streams_over_sse), in its coverage, fuzzing and stateful phases, once with
# a fixed seed and once with a random one (printed, so a failure can be replayed). Any failure
# fails CI.   .ci/schemathesis.sh [path/to/boxoffice]
set -euo pipefail
bin="${1:-target/release/boxoffice}"
if ! command -v schemathesis >/dev/null 2>&1; then
  pip install --quiet schemathesis
  hash -r
fi
work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$bin" serve --demo --data-dir "$work" --bind "127.0.0.1:$port" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done
token="$(curl -sf -XPOST "http://127.0.0.1:$port/api/v1/queue/tokens" -H 'content-type: application/json' \
  -d '{"userId":7,"concertId":1}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')"
random_seed="$(python3 -c 'import random; print(random.randrange(1, 2**31))')"
for seed in 1 "$random_seed"; do
  echo "== schemathesis, seed $seed"
  timeout 600 schemathesis run "http://127.0.0.1:$port/openapi.json" --checks all --max-examples 40 \
    --phases examples,coverage,fuzzing,stateful --seed "$seed" \
    -H "Authorization: Bearer $token" --exclude-path /api/v1/queue/events
done
