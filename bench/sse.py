#!/usr/bin/env python3
"""Many idle people in a waiting room: Server-Sent Events against polling that honours Retry-After.

Starts the release binary (embedded default) with a line that does not move, joins N people, then
measures the server's resident memory and CPU over a fixed window in three phases:
  idle     nobody connected
  sse      N open /api/v1/queue/events streams (no further traffic)
  polling  N people polling /api/v1/queue/status, each sleeping as long as Retry-After says

  cargo build --release && python3 bench/sse.py [--people 10000] [--window 60]

Traffic goes to 127.0.0.1 only; everything started is stopped at the end.
"""
import argparse, asyncio, json, os, resource, signal, socket, subprocess, sys, tempfile, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    cpu = (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    rss = int(rest[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


async def http(host, port, method, path, body=None, token=None):
    r, w = await asyncio.open_connection(host, port)
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    w.write(head.encode() + b"\r\n" + data)
    await w.drain()
    raw = await r.read()
    w.close()
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])


async def join_all(port, n):
    sem = asyncio.Semaphore(200)
    async def one(u):
        async with sem:
            return (await http("127.0.0.1", port, "POST", "/api/v1/queue/tokens", {"userId": u, "concertId": 1}))["token"]
    return await asyncio.gather(*(one(u) for u in range(1, n + 1)))


async def subscribe(port, token, opened):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"GET /api/v1/queue/events?token={token} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await w.drain()
    await r.readuntil(b"event: status")
    opened.append(1)
    try:
        while await r.read(4096):
            pass
    except (asyncio.CancelledError, ConnectionError):
        pass
    finally:
        w.close()


async def poller(port, token, stop, counter):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    req = f"GET /api/v1/queue/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    # Spread the first polls over the first few seconds, as people arrive.
    await asyncio.sleep(hash(token) % 1000 / 200)
    while not stop.is_set():
        w.write(req)
        await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        length, retry = 0, 1
        for line in head.decode().split("\r\n"):
            k, _, v = line.partition(":")
            if k.lower() == "content-length":
                length = int(v)
            if k.lower() == "retry-after":
                retry = int(v)
        await r.readexactly(length)
        counter[0] += 1
        try:
            await asyncio.wait_for(stop.wait(), timeout=retry)
        except asyncio.TimeoutError:
            pass
    w.close()


def measure(pid, window, label):
    cpu0, rss0 = proc_stat(pid)
    t0 = time.time()
    peak = rss0
    while time.time() - t0 < window:
        time.sleep(1)
        peak = max(peak, proc_stat(pid)[1])
    cpu1, rss1 = proc_stat(pid)
    secs = time.time() - t0
    return {"phase": label, "cpu_percent": (cpu1 - cpu0) / secs * 100, "rss_mib": rss1 / 2**20, "peak_rss_mib": peak / 2**20}


async def measure_async(pid, window, label):
    return await asyncio.get_running_loop().run_in_executor(None, measure, pid, window, label)


async def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=10000)
    ap.add_argument("--window", type=int, default=60, help="seconds measured per phase")
    ap.add_argument("--binary", default=os.path.join(ROOT, "target", "release", "boxoffice"))
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * a.people + 1024), hard))
    data = tempfile.mkdtemp(prefix="boxoffice-sse-")
    subprocess.run([a.binary, "seed", "--data-dir", data, "--users", str(a.people), "--concerts", "1", "--schedules", "1", "--seats", "10"],
                   check=True, stdout=subprocess.DEVNULL)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # One active slot, taken by nobody who returns: the line stands still, as in a sold-out rush.
    server = subprocess.Popen([a.binary, "serve", "--data-dir", data, "--bind", f"127.0.0.1:{port}", "--max-active", "1",
                               "--admission-rate", "1", "--claim-window", "10m", "--active-ttl", "1h"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=1)
                break
            except Exception:
                time.sleep(0.05)
        tokens = await join_all(port, a.people)
        results = [await measure_async(server.pid, a.window, "idle (joined, nobody connected)")]

        opened, tasks = [], []
        for t in tokens:
            tasks.append(asyncio.create_task(subscribe(port, t, opened)))
        while len(opened) < a.people:
            await asyncio.sleep(0.2)
        results.append(await measure_async(server.pid, a.window, f"sse ({a.people} open streams)"))
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(3)

        stop, counter = asyncio.Event(), [0]
        pollers = [asyncio.create_task(poller(port, t, stop, counter)) for t in tokens]
        await asyncio.sleep(5)
        before = counter[0]
        r = await measure_async(server.pid, a.window, f"polling ({a.people} people honouring Retry-After)")
        r["polls_per_s"] = (counter[0] - before) / a.window
        results.append(r)
        stop.set()
        await asyncio.gather(*pollers, return_exceptions=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)

    base = results[0]["rss_mib"]
    print(f"\n{a.people} people, {a.window} s per phase, server CPU in % of one core:")
    print("| phase | server CPU % | RSS MiB | RSS over idle, KiB per person | polls/s |")
    print("|---|---|---|---|---|")
    for r in results:
        per = (r["rss_mib"] - base) * 1024 / a.people
        print(f"| {r['phase']} | {r['cpu_percent']:.2f} | {r['rss_mib']:.1f} | {per:.2f} | {r.get('polls_per_s', 0):.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
