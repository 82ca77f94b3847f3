#!/usr/bin/env python3
"""Runs the READMEs' shell blocks as written, so a README that stops working fails CI.

Every ```sh block in README.md and deploy/README.md carries a marker on the line before it:

  <!-- ci: <id> -->    CI runs this block (see below for how)
  <!-- ci: skip -->    CI does not run it; the text just above must say "Not run by CI" and why

  .ci/readme.py check               every block is marked, skips say why, and .ci/run calls the
                                    README's test command
  .ci/readme.py run <id> [<id> ...] run the blocks with these ids, in the order given

How a block runs:
  run-it     in the background from the repository root, with BOXOFFICE_DATA_DIR set to a fresh
             directory (every flag reads BOXOFFICE_<FLAG>, so the command itself is untouched);
             it must answer 200 on /health/ready of the address the README names
  purchase   needs run-it: run by bash with `set -euo pipefail` and curl made to fail on HTTP
             errors (a wrapper function, the command text is unchanged); afterwards the token
             must read EXPIRED and the reservation must be CONFIRMED
  scale-out  with target/release on PATH, in a fresh directory; its `&` servers must turn
             ready; then the purchase block runs against the first of them and is checked the
             same way; everything started is stopped and the database and keys it made dropped
  other ids  run by bash -euo pipefail from the repository root

A failure names the README line of the block (and of the command, where bash can tell).
"""
import json, os, re, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = ["README.md", "deploy/README.md"]
MARK = re.compile(r"^<!--\s*ci:\s*(\S+)\s*-->\s*$")


class Block:
    def __init__(self, file, line, ident, code):
        self.file, self.line, self.id, self.code = file, line, ident, code

    def where(self, offset=0):
        # `line` is the fence; the first command is on the next line.
        return f"{self.file}:{self.line + 1 + offset}"


def blocks(errors):
    found = []
    for rel in FILES:
        lines = open(os.path.join(ROOT, rel), encoding="utf-8").read().split("\n")
        i = 0
        while i < len(lines):
            if lines[i].startswith("```sh"):
                start = i
                j = i + 1
                while j < len(lines) and not lines[j].startswith("```"):
                    j += 1
                code = "\n".join(lines[i + 1 : j]) + "\n"
                m = MARK.match(lines[i - 1]) if i > 0 else None
                if not m:
                    errors.append(f"{rel}:{start + 1}: a sh block without a <!-- ci: <id> --> or <!-- ci: skip --> marker")
                else:
                    ident = m.group(1)
                    if ident == "skip":
                        context = " ".join(lines[max(0, i - 6) : i - 1]).lower()
                        if "not run by ci" not in context:
                            errors.append(f"{rel}:{start + 1}: a skipped block must say 'Not run by CI' and why just above it")
                    found.append(Block(rel, start + 1, ident, code))
                i = j + 1
            else:
                i += 1
    return found


def check():
    errors = []
    found = blocks(errors)
    ids = [b.id for b in found if b.id != "skip"]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        errors.append(f"block id {dup!r} is used twice")
    tests = [b for b in found if b.id == "test"]
    ci_run = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read().split("\n")
    for b in tests:
        for n, cmd in enumerate(b.code.strip().split("\n")):
            cmd = cmd.split("#")[0].strip()
            if cmd and cmd not in (l.strip() for l in ci_run):
                errors.append(f"{b.where(n)}: the README's test command {cmd!r} is not a line of .ci/run")
    if not tests:
        errors.append("README.md: no <!-- ci: test --> block (the test command CI must call)")
    for e in errors:
        print(f"readme: {e}", file=sys.stderr)
    print(f"readme: {len(found)} blocks, {sum(b.id == 'skip' for b in found)} not run by CI"
          + ("" if errors else ", all marked"))
    return not errors


# ---- running ----

def fail(msg):
    print(f"readme: FAIL {msg}", file=sys.stderr)
    raise SystemExit(1)


def http_get(url, token=None, timeout=3):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def http_post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def port_free(host, port):
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


def wait_ready(base, proc, block, log, within=900):
    # A cold `cargo run --release` compiles first: allow for it, but notice an early exit at once.
    deadline = time.time() + within
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            fail(f"{block.where()}: `{block.code.strip().splitlines()[0]}` exited with {proc.returncode} "
                 f"before {base}/health/ready answered:\n{tail(log)}")
        try:
            if http_get(base + "/health/ready", timeout=1)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    fail(f"{block.where()}: {base}/health/ready did not answer 200 within {within}s:\n{tail(log)}")


def tail(path, n=30):
    try:
        return "".join(open(path, errors="replace").readlines()[-n:])
    except OSError:
        return "(no output)"


def stop(proc):
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# Makes curl fail on an HTTP error (and show the problem body) without changing the command text.
CURL_STRICT = 'curl() { command curl --fail-with-body "$@"; }\n'


def run_bash(block, code, cwd, env, log_name):
    """Runs `code` with bash -euo pipefail; on failure names the README line of the command."""
    script = "set -euo pipefail\n" + CURL_STRICT + "trap 'echo \"@@line $LINENO\" >&2' ERR\n" + code
    r = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        sys.stdout.write(r.stdout)
        sys.stderr.write(r.stderr)
        m = re.findall(r"@@line (\d+)", r.stderr)
        # The script's first 3 lines are the preamble above.
        where = block.where(int(m[0]) - 4) if m else block.where()
        fail(f"{where}: a command of the {block.id!r} block failed (exit {r.returncode})")
    # Long answers (seat maps) are cut: the log should show what ran, not every seat.
    for line in r.stdout.splitlines():
        print(line if len(line) <= 300 else line[:300] + f"… ({len(line)} characters)")
    return r.stdout


def purchase_and_check(block, base, env, cwd):
    """Runs the purchase block against `base` and checks what it must leave behind."""
    code = block.code
    # The block defines B itself; against another instance only that definition changes.
    if base != "http://127.0.0.1:8080":
        code = re.sub(r"^B=\S+", f"B={base}", code, count=1, flags=re.M)
    # Print the variables the block made, so the checks use the very token it used.
    out = run_bash(block, code + 'echo "@@TOKEN=$TOKEN"\n', cwd, env, "purchase")
    token = re.search(r"@@TOKEN=(\S+)", out)
    if not token:
        fail(f"{block.where()}: the purchase block did not leave a TOKEN")
    token = token.group(1)
    status, body = http_get(base + "/api/v1/queue/status", token)
    if status != 200 or json.loads(body).get("status") != "EXPIRED":
        fail(f"{block.where()}: after the purchase the token should read EXPIRED, got {status} {body[:200]!r}")
    payment = re.findall(r'\{"paymentId":\s*(\d+)[^}]*"reservationId":\s*(\d+)', out)
    if not payment:
        fail(f"{block.where()}: the payment did not answer a receipt:\n{out[-600:]}")
    reservation = payment[-1][1]
    # A fresh token of the same user may read the reservation: it must be CONFIRMED.
    code_, joined = http_post(base + "/api/v1/queue/tokens", {"userId": 1, "concertId": 1})
    if code_ not in (200, 201):
        fail(f"{block.where()}: joining again to read the reservation: {code_} {joined}")
    fresh = joined["token"]
    deadline = time.time() + 30
    while json.loads(http_get(base + "/api/v1/queue/status", fresh)[1]).get("status") != "ACTIVE":
        if time.time() > deadline:
            fail(f"{block.where()}: a fresh token never became ACTIVE")
        time.sleep(0.1)
    status, body = http_get(f"{base}/api/v1/reservations/{reservation}", fresh)
    state = json.loads(body).get("status") if status == 200 else None
    if state != "CONFIRMED":
        fail(f"{block.where()}: reservation {reservation} should be CONFIRMED, got {status} {body[:200]!r}")
    print(f"readme: {block.where()}: purchase against {base}: reservation {reservation} CONFIRMED, token EXPIRED")


def run_it_and_purchase(by_id):
    run_it, purchase = by_id["run-it"], by_id.get("purchase")
    cmd = run_it.code.strip()
    if "\n" in cmd:
        fail(f"{run_it.where()}: the run-it block should be one command")
    base = "http://127.0.0.1:8080"
    if not port_free("127.0.0.1", 8080):
        fail(f"{run_it.where()}: 127.0.0.1:8080 is already taken; stop whatever listens there first")
    data = tempfile.mkdtemp(prefix="readme-data-")
    log = os.path.join(data, "server.log")
    env = {**os.environ, "BOXOFFICE_DATA_DIR": data}
    proc = subprocess.Popen(["bash", "-c", cmd], cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_ready(base, proc, run_it, log)
        print(f"readme: {run_it.where()}: `{cmd}` serves {base} (data in {data})")
        if purchase:
            purchase_and_check(purchase, base, env, data)
    finally:
        stop(proc)
    shutil.rmtree(data, ignore_errors=True)


def scale_out(by_id):
    block, purchase = by_id["scale-out"], by_id["purchase"]
    pg = os.environ.get("BOXOFFICE_TEST_PG", "postgres://postgres@127.0.0.1:5432")
    redis_host = "127.0.0.1"
    for host, port, what in [("127.0.0.1", 5432, "PostgreSQL"), (redis_host, 6379, "Redis")]:
        if port_free(host, port):
            if os.environ.get("CI") == "true":
                fail(f"{block.where()}: CI=true needs {what} at {host}:{port}")
            print(f"readme: skipping {block.where()}: no {what} at {host}:{port}")
            return
    ports = [int(p) for p in re.findall(r"--bind 127\.0\.0\.1:(\d+)", block.code)]
    if not ports:
        fail(f"{block.where()}: the scale-out block starts no server with --bind 127.0.0.1:PORT")
    for p in ports:
        if not port_free("127.0.0.1", p):
            fail(f"{block.where()}: 127.0.0.1:{p} is already taken")
    db = re.search(r"BOXOFFICE_DATABASE_URL=postgres://\S+/(\w+)", block.code)
    db = db.group(1) if db else None
    prefix = "boxoffice:"

    def clean():
        # The block creates this database and uses the default key prefix; CI owns both on its machine.
        if db:
            subprocess.run(["psql", f"{pg}/postgres", "-qc", f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"], check=False)
        subprocess.run(["sh", "-c", f"redis-cli --scan --pattern '{prefix}*' | xargs -r redis-cli DEL >/dev/null"],
                       check=False)

    clean()
    work = tempfile.mkdtemp(prefix="readme-scaleout-")
    env = {**os.environ, "PATH": os.path.join(ROOT, "target", "release") + os.pathsep + os.environ["PATH"]}
    env = {k: v for k, v in env.items() if not k.startswith("BOXOFFICE_")}
    # Run the block in its own session so that its `&` servers can be stopped as a group; it
    # ends by itself (the servers outlive it in the background).
    log = os.path.join(work, "scale-out.log")
    script = "set -euo pipefail\ntrap 'echo \"@@line $LINENO\" >&2' ERR\n" + block.code + "wait\n"
    proc = subprocess.Popen(["bash", "-c", script], cwd=work, env=env, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for p in ports:
            wait_ready(f"http://127.0.0.1:{p}", proc, block, log, within=60)
        # The audit line runs after the servers start; wait for the block to reach the `wait`.
        deadline = time.time() + 60
        while "\"ok\"" not in open(log).read():
            if proc.poll() is not None or time.time() > deadline:
                m = re.findall(r"@@line (\d+)", open(log).read())
                where = block.where(int(m[0]) - 3) if m else block.where()
                fail(f"{where}: the scale-out block failed:\n{tail(log)}")
            time.sleep(0.2)
        audit = open(log).read()
        if '"ok": true' not in audit:
            fail(f"{block.where()}: `boxoffice audit` did not report ok:\n{tail(log)}")
        print(f"readme: {block.where()}: scale-out block: {len(ports)} instances ready, audit ok")
        secret = re.search(r"BOXOFFICE_TOKEN_SECRET=", block.code)
        if not secret:
            fail(f"{block.where()}: the scale-out block sets no shared token secret")
        purchase_and_check(purchase, f"http://127.0.0.1:{ports[0]}", env, work)
        # After the purchase the shared store and line still pass the audit.
        exports = "\n".join(l for l in block.code.split("\n") if l.startswith("export "))
        r = subprocess.run(["bash", "-c", "set -e\n" + exports + "\nboxoffice audit >/dev/null"], cwd=work, env=env)
        if r.returncode != 0:
            fail(f"{block.where()}: `boxoffice audit` after the purchase found violations")
    finally:
        stop(proc)
        clean()
        shutil.rmtree(work, ignore_errors=True)


def run(ids):
    errors = []
    found = blocks(errors)
    if errors:
        check()
        raise SystemExit(1)
    by_id = {b.id: b for b in found if b.id != "skip"}
    for ident in ids:
        if ident not in by_id:
            fail(f"no block marked <!-- ci: {ident} --> in {', '.join(FILES)}")
        print(f"\nreadme: == {by_id[ident].where()} ({ident})", flush=True)
        if ident == "run-it":
            run_it_and_purchase(by_id)
        elif ident == "purchase":
            continue  # runs with run-it and scale-out
        elif ident == "scale-out":
            scale_out(by_id)
        else:
            run_bash(by_id[ident], by_id[ident].code, ROOT, dict(os.environ), ident)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "check":
        raise SystemExit(0 if check() else 1)
    if len(sys.argv) >= 3 and sys.argv[1] == "run":
        run(sys.argv[2:])
        return
    print(__doc__, file=sys.stderr)
    raise SystemExit(2)


if __name__ == "__main__":
    main()
