#!/usr/bin/env bash
# Instance-kill drill on the offline compose stack: the journey scenario through nginx while one
# app instance is SIGKILLed and brought back, then `boxoffice audit` of the stack's data.
#
#   deploy/offline/compose-drill.sh [BINARY]     # from anywhere, as root; BINARY defaults to
#                                                # target/release/boxoffice
#
#   1. deploy/offline/compose-up.sh BINARY: the stack of compose.offline.yaml (postgres, redis,
#      seed, app1, app2, nginx, prometheus on 127.0.0.1), built and checked
#   2. k6 runs loadtest/k6/scenarios/journey.js against nginx (http://127.0.0.1:18080) with the
#      seed's shape (50,000 users, 5 concerts x 5 dates x 800 seats, balance 100,000): START_RATE
#      -> RATE journeys/s over RAMP_UP, RATE for STEADY, down over RAMP_DOWN (default 10 -> 40/s,
#      10 s + 45 s + 5 s = 60 s), pinned to CPU DRILL_K6_CPU with taskset. k6 binds its
#      connections to 127.0.1.1-127.0.1.100 (--local-ips): nginx limits token requests to 20/s
#      per client address (burst 100), which one address would hit at any useful rate.
#   3. DRILL_KILL_AT seconds into the run: `docker kill` DRILL_VICTIM (SIGKILL, no graceful stop).
#      For DRILL_RESTART_WAIT seconds the script only watches whether Docker restarts it itself
#      (restart: unless-stopped; Docker does not restart a container stopped by `docker kill`),
#      then runs `docker start` on the same container, as an operator or an orchestrator would.
#      Every 0.2 s it records the container's state and health and GET /health/ready on the
#      instance's own port, until Docker reports it healthy (at most 120 s).
#   4. After k6: `docker compose run --rm --no-deps app1 audit` (the stack's own URLs and prefix:
#      postgres://…@127.0.0.1:15432/boxoffice, redis://127.0.0.1:16379, prefix boxoffice:).
#   5. The stack is torn down (compose-down.sh -v) on exit, also on failure or Ctrl-C, unless
#      DRILL_KEEP=1.
#
# Writes DRILL_OUT (default /tmp/compose-drill-<timestamp>/): report.md and run.json (requests,
# answers by status overall and per second around the kill, which upstream served each second,
# the times until the killed instance runs, answers ready, is healthy, serves through nginx again,
# and until errors stop; journeys; the audit's verdict) and raw/ (k6's CSV output and summary,
# nginx's access log, the timeline, the audit; not meant for evidence/).
# Exit 0 when the drill ran and the audit is clean, 1 otherwise.
#
# Settings (environment): DRILL_OUT, DRILL_VICTIM (app1), DRILL_KILL_AT (25), DRILL_RESTART_WAIT
# (5), DRILL_START_RATE (10), DRILL_RATE (40), DRILL_RAMP_UP (10s), DRILL_STEADY (45s),
# DRILL_RAMP_DOWN (5s), DRILL_K6_CPU (1), DRILL_KEEP (0), DRILL_COMMIT (the commit BINARY was built
# from, for the record; default HEAD), DRILL_KIT_COMMIT (unset: the k6 kit of the
# working tree; a commit: loadtest/ as of that commit, e.g. the one BINARY was built from, when the
# working tree's scripts already speak a newer API than the binary).
set -uo pipefail
SCRIPT_NAME=compose-drill
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BINARY=${1:-target/release/boxoffice}
OUT=${DRILL_OUT:-/tmp/compose-drill-$(date +%Y%m%d-%H%M%S)}
VICTIM=${DRILL_VICTIM:-app1}
KILL_AT=${DRILL_KILL_AT:-25}
RESTART_WAIT=${DRILL_RESTART_WAIT:-5}
START_RATE=${DRILL_START_RATE:-10}
RATE=${DRILL_RATE:-40}
RAMP_UP=${DRILL_RAMP_UP:-10s}
STEADY=${DRILL_STEADY:-45s}
RAMP_DOWN=${DRILL_RAMP_DOWN:-5s}
K6_CPU=${DRILL_K6_CPU:-1}
KEEP=${DRILL_KEEP:-0}
KIT_COMMIT=${DRILL_KIT_COMMIT:-}
COMPOSE=(docker compose -f "$REPO_ROOT/deploy/compose.yaml" -f "$REPO_ROOT/deploy/compose.offline.yaml")
case $VICTIM in app1) VICTIM_PORT=18081 ;; app2) VICTIM_PORT=18082 ;; *) die "DRILL_VICTIM must be app1 or app2" ;; esac
RAW=$OUT/raw
mkdir -p "$RAW"
K6_PID=
T0=$SECONDS
now_ms() { date +%s%3N; }

teardown() {
  [[ -n $K6_PID ]] && kill -INT "$K6_PID" 2>/dev/null && sleep 2 && kill -KILL "$K6_PID" 2>/dev/null
  if [[ $KEEP == 1 ]]; then
    say "DRILL_KEEP=1: the stack stays up (deploy/offline/compose-down.sh -v to remove it)"
  else
    local t=$SECONDS
    "$OFFLINE_DIR/compose-down.sh" -v >"$RAW/compose-down.log" 2>&1
    say "compose-down.sh -v: exit $? ($((SECONDS - t)) s)"
  fi
}
trap teardown EXIT
trap 'exit 130' INT TERM

# Facts for run.json, one KEY=VALUE a line.
FACTS=$RAW/facts.env
: >"$FACTS"
fact() { printf '%s=%s\n' "$1" "$2" >>"$FACTS"; }
fact started "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
fact command "$(env | grep -E '^DRILL_[A-Z_]+=' | sort | tr '\n' ' ')$0 $*"
fact binary "$(readlink -f "$BINARY")"
fact binary_sha256 "$(sha256sum "$BINARY" | cut -d' ' -f1)"
fact commit "$(git -C "$REPO_ROOT" rev-parse "${DRILL_COMMIT:-HEAD}")"
if [[ -n ${DRILL_COMMIT:-} ]]; then fact commit_source "DRILL_COMMIT, the commit BINARY was built from, as given"
else fact commit_source "git rev-parse HEAD"; fi
fact head_at_start "$(git -C "$REPO_ROOT" rev-parse HEAD)"
fact k6_version "$(k6 version | head -n 1)"
fact cpu_model "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
fact cores "$(nproc)"
fact victim "$VICTIM"
fact kill_at_s "$KILL_AT"
fact restart_wait_s "$RESTART_WAIT"
fact k6_cpu "$K6_CPU"
KIT=$REPO_ROOT/loadtest/k6
if [[ -n $KIT_COMMIT ]]; then
  mkdir -p "$RAW/kit"
  git -C "$REPO_ROOT" archive "$KIT_COMMIT" loadtest | tar -x -C "$RAW/kit" || die "no loadtest/ at $KIT_COMMIT"
  KIT=$RAW/kit/loadtest/k6
  fact k6_kit "loadtest/k6 at $(git -C "$REPO_ROOT" rev-parse "$KIT_COMMIT")"
else
  fact k6_kit "loadtest/k6 of the working tree"
fi

for tool in k6 taskset curl python3; do command -v $tool >/dev/null || die "$tool not found"; done

# ---- 1. the stack ---------------------------------------------------------------------------------
t=$SECONDS
"$OFFLINE_DIR/compose-up.sh" "$BINARY" >"$RAW/compose-up.log" 2>&1
up_rc=$?
fact compose_up_exit "$up_rc"
fact compose_up_seconds "$((SECONDS - t))"
say "compose-up.sh: exit $up_rc ($((SECONDS - t)) s): $(tail -n 2 "$RAW/compose-up.log" | head -n 1)"
((up_rc == 0)) || { tail -n 30 "$RAW/compose-up.log" >&2; die "the stack did not come up (see $RAW/compose-up.log)"; }
victim_id=$(timeout 10 "${COMPOSE[@]}" ps -q "$VICTIM")
nginx_id=$(timeout 10 "${COMPOSE[@]}" ps -q nginx)
[[ -n $victim_id && -n $nginx_id ]] || die "no $VICTIM or nginx container"
fact victim_container "$victim_id"
fact victim_restart_policy "$(docker inspect -f '{{.HostConfig.RestartPolicy.Name}}' "$victim_id")"
fact victim_started_before "$(docker inspect -f '{{.State.StartedAt}}' "$victim_id")"
fact healthcheck "$(docker inspect -f '{{json .Config.Healthcheck}}' "$victim_id")"

# ---- 2. k6 through nginx ----------------------------------------------------------------------------
dur_s() { python3 -c "import re,sys; print(sum(float(n)*{'ms':.001,'s':1,'m':60,'h':3600}[u] for n,u in re.findall(r'([\d.]+)(ms|s|m|h)', sys.argv[1])))" "$1"; }
planned=$(python3 -c "print(int($(dur_s "$RAMP_UP") + $(dur_s "$STEADY") + $(dur_s "$RAMP_DOWN")))")
fact planned_seconds "$planned"
k6_start_ms=$(now_ms)
fact k6_start_ms "$k6_start_ms"
K6_CMD=(taskset -c "$K6_CPU" timeout -s INT $((planned + 120)) k6 run --no-usage-report
  --local-ips 127.0.1.1-127.0.1.100
  --summary-trend-stats 'avg,min,med,p(90),p(95),p(99),p(99.9),max'
  --out "csv=$RAW/k6.csv"
  -e BASE_URL=http://127.0.0.1:18080 -e SCALE=full
  -e USERS=50000 -e CONCERTS=5 -e SCHEDULES=5 -e SEATS=800 -e BALANCE=100000
  -e START_RATE="$START_RATE" -e RATE="$RATE" -e RAMP_UP="$RAMP_UP" -e STEADY="$STEADY" -e RAMP_DOWN="$RAMP_DOWN"
  -e PRE_VUS=100 -e MAX_VUS=600
  "$KIT/scenarios/journey.js")
fact k6_command "$(printf '%q ' "${K6_CMD[@]}")"
(cd "$KIT" && K6_CSV_TIME_FORMAT=unix_milli SUMMARY_JSON="$RAW/k6-summary.json" exec "${K6_CMD[@]}") >"$RAW/k6.txt" 2>&1 &
K6_PID=$!
say "k6 journey through nginx: $START_RATE -> $RATE journeys/s, $planned s (pid $K6_PID)"

# ---- 3. the kill ------------------------------------------------------------------------------------
while (($(now_ms) < k6_start_ms + KILL_AT * 1000)); do
  kill -0 "$K6_PID" 2>/dev/null || die "k6 ended before the kill: $(tail -n 20 "$RAW/k6.txt")"
  sleep 0.1
done
kill_ms=$(now_ms)
docker kill "$victim_id" >/dev/null || die "docker kill $VICTIM failed"
fact kill_ms "$kill_ms"
say "docker kill $VICTIM at +$(((kill_ms - k6_start_ms) / 1000)) s"

TIMELINE=$RAW/timeline.tsv
printf 'ms\tstatus\thealth\trestarts\tready_http\n' >"$TIMELINE"
started_by=
deadline=$((kill_ms + 120000))
while (($(now_ms) < deadline)); do
  ms=$(now_ms)
  read -r st health restarts < <(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.RestartCount}}' "$victim_id" 2>/dev/null || echo "unknown unknown 0")
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$VICTIM_PORT/health/ready")
  printf '%s\t%s\t%s\t%s\t%s\n' "$ms" "$st" "$health" "$restarts" "$code" >>"$TIMELINE"
  if [[ -z $started_by && $st == running && $ms -gt $((kill_ms + 300)) ]]; then
    started_by=docker-restart-policy
    fact restarted_ms "$ms"
  fi
  if [[ -z $started_by && $ms -ge $((kill_ms + RESTART_WAIT * 1000)) ]]; then
    started_by=script
    fact state_after_wait "$st exit=$(docker inspect -f '{{.State.ExitCode}} oom={{.State.OOMKilled}}' "$victim_id")"
    fact start_cmd_ms "$(now_ms)"
    docker start "$victim_id" >/dev/null
    fact restarted_ms "$(now_ms)"
    say "Docker did not restart $VICTIM within $RESTART_WAIT s (state: $st): docker start"
  fi
  [[ $health == healthy && -n $started_by ]] && break
  sleep 0.2
done
fact restarted_by "${started_by:-nobody}"

# ---- 4. the rest of the run, then the audit ------------------------------------------------------------
wait "$K6_PID"
k6_rc=$?
K6_PID=
fact k6_exit "$k6_rc"
fact k6_end_ms "$(now_ms)"
say "k6 exit $k6_rc: $(grep -E '^requests:' "$RAW/k6.txt" | head -n 1)"
timeout 30 docker logs --since "$(date -u -d "@$((k6_start_ms / 1000 - 2))" +%Y-%m-%dT%H:%M:%SZ)" "$nginx_id" >"$RAW/nginx-access.log" 2>"$RAW/nginx-error.log"
timeout 30 docker logs "$victim_id" >"$RAW/victim.log" 2>&1
timeout 30 "${COMPOSE[@]}" ps -a >"$RAW/compose-ps.txt" 2>&1
t=$SECONDS
timeout 300 "${COMPOSE[@]}" run --rm --no-deps -T "$VICTIM" audit >"$RAW/audit.txt" 2>&1
audit_rc=$?
fact audit_exit "$audit_rc"
fact audit_seconds "$((SECONDS - t))"
say "boxoffice audit of the stack: exit $audit_rc"
fact ended "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
fact drill_seconds "$((SECONDS - T0))"

# ---- 5. report --------------------------------------------------------------------------------------
REPO_ROOT=$REPO_ROOT python3 - "$OUT" <<'PY'
import csv, json, os, re, sys, collections
out = sys.argv[1]
raw = os.path.join(out, "raw")
facts = {}
for line in open(os.path.join(raw, "facts.env")):
    k, _, v = line.rstrip("\n").partition("=")
    facts[k] = v
num = lambda k: int(facts[k]) if facts.get(k, "").lstrip("-").isdigit() else None
kill = num("kill_ms"); k6s = num("k6_start_ms")

# k6: every request (metric http_reqs), its time, status and whether k6 counted it as expected.
reqs = []
with open(os.path.join(raw, "k6.csv"), newline="") as f:
    for row in csv.DictReader(f):
        if row["metric_name"] != "http_reqs":
            continue
        ts = float(row["timestamp"])
        ms = ts if ts > 1e12 else ts * 1000
        reqs.append((ms, row.get("status") or "0", row.get("expected_response") == "true", row.get("name", "")))
reqs.sort()
by_status = collections.Counter(s for _, s, _, _ in reqs)
failed = [(ms, s, n) for ms, s, ok, n in reqs if not ok]
after = [x for x in failed if x[0] >= kill - 1000]
before = [x for x in failed if x[0] < kill - 1000]
last_err = max((ms for ms, _, _ in after), default=None)

# the timeline of the killed instance
tl = list(csv.DictReader(open(os.path.join(raw, "timeline.tsv")), delimiter="\t"))
def first(pred):
    for r in tl:
        if pred(r):
            return int(r["ms"])
    return None
restarted = num("restarted_ms")
ready = first(lambda r: r["ready_http"] == "200" and restarted and int(r["ms"]) >= restarted)
healthy = first(lambda r: r["health"] == "healthy" and restarted and int(r["ms"]) >= restarted)

# nginx: which upstream answered, per second (second resolution)
port = "18081" if facts["victim"] == "app1" else "18082"
ng = []
for line in open(os.path.join(raw, "nginx-access.log"), errors="replace"):
    line = line.strip()
    if not line.startswith("{"):
        continue
    try:
        ng.append(json.loads(line))
    except ValueError:
        pass
import datetime
def epoch(t):
    return int(datetime.datetime.fromisoformat(t).timestamp())
served_again = None
per_sec_up = collections.defaultdict(collections.Counter)
for e in ng:
    s = epoch(e["time"])
    ups = [u.strip() for u in e.get("upstream", "").split(",") if u.strip()]
    key = "retried" if len(ups) > 1 else ("victim" if ups and ups[0].endswith(port) else ("other" if ups else "none"))
    per_sec_up[s][key] += 1
    if restarted and s * 1000 >= restarted - 999 and ups and ups[-1].endswith(port) and e.get("upstream_status", "").split(",")[-1].strip().startswith("2"):
        served_again = s * 1000 + 500 if served_again is None else min(served_again, s * 1000 + 500)
errlog = open(os.path.join(raw, "nginx-error.log"), errors="replace").read()
ft = re.search(r"server 127\.0\.0\.1:" + port + r"[^;]*fail_timeout=(\w+)", open(os.path.join(os.environ.get("REPO_ROOT", "."), "deploy", "offline", "nginx.conf")).read()) if os.environ.get("REPO_ROOT") else None
ng_err = {"connectRefused": errlog.count("Connection refused"), "prematurelyClosed": errlog.count("prematurely closed"),
          "temporarilyDisabled": errlog.count("temporarily disabled"), "failTimeout": ft.group(1) if ft else "see nginx.conf"}
ng_status = collections.Counter(str(e["status"]) for e in ng if e.get("uri", "").startswith("/api/"))
ng_retried = sum(1 for e in ng if "," in e.get("upstream", ""))

# per second around the kill: second k is [kill + k s, kill + (k+1) s) for k6 (millisecond times);
# nginx logs whole seconds only, so its second s counts where its middle (s + 0.5) falls.
span = int(max(x for x in (healthy, served_again, last_err, kill + 15000) if x) - kill) // 1000 + 3
ng_by_k = collections.defaultdict(collections.Counter)
for s, c in per_sec_up.items():
    ng_by_k[int((s * 1000 + 500 - kill) // 1000)].update(c)
rows = []
for k in range(-3, span):
    sec = kill + k * 1000
    w = [x for x in reqs if sec <= x[0] < sec + 1000]
    c = collections.Counter(s for _, s, _, _ in w)
    bad = collections.Counter(s for _, s, ok, _ in w if not ok)
    u = ng_by_k.get(k, {})
    rows.append({"t": k, "requests": len(w), "failed": sum(bad.values()),
                 "failedByStatus": dict(bad), "byStatus": dict(c),
                 "nginxUpstream": {k: u.get(k, 0) for k in ("victim", "other", "retried")}})

summ = {}
try:
    summ = json.load(open(os.path.join(raw, "k6-summary.json")))
except (OSError, ValueError):
    pass
ex = summ.get("extras", {})
rel = lambda t: None if t is None or kill is None else round((t - kill) / 1000, 2)
audit_txt = open(os.path.join(raw, "audit.txt"), errors="replace").read()
m = re.search(r'"ok"\s*:\s*(true|false)', audit_txt)
result = {
    "schema": "boxoffice-compose-drill/1",
    "commit": facts["commit"], "command": facts["command"], "started": facts["started"], "ended": facts["ended"],
    "facts": facts,
    "k6": {"exitCode": num("k6_exit"), "requests": len(reqs), "durationSeconds": round((summ.get("durationMs") or 0) / 1000, 1),
           "requestsPerSecond": round(len(reqs) / ((summ.get("durationMs") or 1) / 1000), 1),
           "byStatus": dict(sorted(by_status.items())), "failed": len(failed),
           "failedByStatus": dict(collections.Counter(s for _, s, _ in failed)),
           "failedByEndpoint": dict(collections.Counter(n for _, _, n in failed)),
           "failedBeforeKill": len(before),
           "failedFromKill": len(after), "failedFromKillByStatus": dict(collections.Counter(s for _, s, _ in after)),
           "failedFromKillByEndpoint": dict(collections.Counter(n for _, _, n in after)),
           "thresholdsOk": summ.get("thresholdsOk"), "failedThresholds": summ.get("failedThresholds"),
           "journeys": {k: ex.get(k) for k in ("journeysStarted", "journeysCompleted", "journeysFailed", "journeysPerSecond", "droppedArrivals", "timeInQueueP95ms", "journeyP95ms")},
           "p95ms": (summ.get("k6", {}).get("metrics", {}).get("http_req_duration", {}).get("values", {}) or {}).get("p(95)"),
           "p99ms": (summ.get("k6", {}).get("metrics", {}).get("http_req_duration", {}).get("values", {}) or {}).get("p(99)")},
    "kill": {"victim": facts["victim"], "atSecondsIntoRun": round((kill - k6s) / 1000, 1),
             "restartedBy": facts.get("restarted_by"), "stateAfterWait": facts.get("state_after_wait"),
             "secondsUntilRunning": rel(restarted), "secondsUntilReady": rel(ready), "secondsUntilHealthy": rel(healthy),
             "secondsUntilServedThroughNginx": rel(served_again),
             "secondsUntilLastError": rel(last_err)},
    "nginx": {"apiByStatus": dict(sorted(ng_status.items())), "retriedOnOtherUpstream": ng_retried, "errorLog": ng_err},
    "perSecond": rows,
    "audit": {"exitCode": num("audit_exit"), "ok": (m.group(1) == "true") if m else num("audit_exit") == 0,
              "tail": audit_txt[-1500:]},
}
json.dump(result, open(os.path.join(out, "run.json"), "w"), indent=1)

k = result["kill"]; j = result["k6"]["journeys"]
L = [f"# Compose drill: `docker kill {facts['victim']}` under the journey scenario ({facts['started'][:10]})", ""]
L += [f"- commit `{facts['commit']}`, binary `{facts['binary']}` sha256 `{facts['binary_sha256'][:16]}…`; {facts['cores']} × {facts['cpu_model']}; {facts['k6_version'].split('(')[0].strip()}",
      f"- stack: `deploy/offline/compose-up.sh` (compose.yaml + compose.offline.yaml: postgres, redis, app1, app2 at 1 CPU / 256 MiB each, nginx, prometheus; host network, 127.0.0.1), up in {facts.get('compose_up_seconds')} s",
      f"- load: `loadtest/k6/scenarios/journey.js` ({facts.get('k6_kit')}) through nginx (127.0.0.1:18080), {facts.get('planned_seconds')} s, k6 pinned to CPU {facts['k6_cpu']}, source addresses 127.0.1.1–100",
      f"- command: `{facts['command']}`; k6: `{facts['k6_command'].strip()}`",
      f"- {facts['started']} → {facts['ended']} ({facts['drill_seconds']} s including the stack's start, not its teardown)", ""]
L += ["| | |", "|---|---|",
      f"| requests (k6) | {result['k6']['requests']} ({result['k6']['requestsPerSecond']}/s), p95 {result['k6']['p95ms'] and round(result['k6']['p95ms'], 1)} ms, p99 {result['k6']['p99ms'] and round(result['k6']['p99ms'], 1)} ms |",
      f"| answers by status | {', '.join(f'{s}: {n}' for s, n in result['k6']['byStatus'].items())} |",
      f"| failed requests (k6's response callback) | {result['k6']['failed']} in all; {result['k6']['failedBeforeKill']} before the kill; from the kill: {', '.join(f'{s}: {n}' for s, n in result['k6']['failedFromKillByStatus'].items()) or 'none'} |",
      f"| failed requests by endpoint, from the kill | {', '.join(f'{s}: {n}' for s, n in result['k6']['failedFromKillByEndpoint'].items()) or 'none'} |",
      f"| journeys | {j.get('journeysStarted')} started, {j.get('journeysCompleted')} paid, {j.get('journeysFailed')} failed; dropped arrivals {j.get('droppedArrivals')} |",
      f"| kill | `docker kill {facts['victim']}` {k['atSecondsIntoRun']} s into the run (SIGKILL) |",
      f"| brought back by | {k['restartedBy']}{' (Docker left it ' + k['stateAfterWait'] + ' for ' + facts['restart_wait_s'] + ' s)' if k['restartedBy'] == 'script' else ''} |",
      f"| running again | +{k['secondsUntilRunning']} s |",
      f"| `/health/ready` 200 on its own port | +{k['secondsUntilReady']} s |",
      f"| Docker health `healthy` | +{k['secondsUntilHealthy']} s (healthcheck `{facts.get('healthcheck')}`) |",
      f"| first 2xx from it through nginx | +{k['secondsUntilServedThroughNginx']} s (nginx log: whole seconds, ±0.5 s; nginx tries a failed server again after its fail_timeout, {ng_err['failTimeout']}) |",
      f"| last failed request after the kill | {('+' + str(k['secondsUntilLastError']) + ' s') if k['secondsUntilLastError'] is not None else 'none'} |",
      f"| nginx: API answers by status | {', '.join(f'{s}: {n}' for s, n in result['nginx']['apiByStatus'].items())}; {result['nginx']['retriedOnOtherUpstream']} requests retried on the other instance; error log: {ng_err['connectRefused']} connection refused, {ng_err['prematurelyClosed']} upstream closed mid-request, {ng_err['temporarilyDisabled']} \"temporarily disabled\" |",
      f"| k6 thresholds | {'passed' if result['k6']['thresholdsOk'] else 'failed: ' + ', '.join(t['metric'] + ' ' + t['threshold'] for t in (result['k6']['failedThresholds'] or []))} (exit {result['k6']['exitCode']}) |",
      f"| audit (`docker compose run --rm --no-deps {facts['victim']} audit`) | {'ok' if result['audit']['ok'] else 'FAILED'} (exit {result['audit']['exitCode']}) |", ""]
L += ["Per second around the kill (row t = the second [t, t+1) s after the kill, by k6's clock; which instance nginx "
      "used, from its access log, has whole-second times, so those columns are ±1 s):", "",
      "| t | requests | failed | failed by status | via killed instance | via the other | retried on the other |", "|---|---|---|---|---|---|---|"]
for r in rows:
    L.append(f"| {r['t']:+d} | {r['requests']} | {r['failed']} | {', '.join(f'{s}: {n}' for s, n in r['failedByStatus'].items()) or '–'} | "
             f"{r['nginxUpstream']['victim']} | {r['nginxUpstream']['other']} | {r['nginxUpstream']['retried']} |")
L.append("")
open(os.path.join(out, "report.md"), "w").write("\n".join(L))
print("\n".join(L))
PY
report_rc=$?
say "wrote $OUT/report.md and run.json (raw data in $RAW)"
((report_rc == 0 && audit_rc == 0))
exit $?
