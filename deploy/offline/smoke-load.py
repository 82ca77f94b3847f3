#!/usr/bin/env python3
"""Traffic for deploy/offline/container-smoke.sh (stdlib only; 127.0.0.1 only; bounded in time).

  smoke-load.py stop-burst PORT CONTAINER [--threads N] [--grace S]
      N threads send requests on fresh connections (GET /api/v1/concerts and POST
      /api/v1/users/5/points/charge {amount: 1}, alternately); after 1.5 s it runs
      `docker stop -t S CONTAINER` and keeps sending until the port refuses connections.
      Prints JSON: answered (by status), refused (listener closed: expected), reset (connection
      reset or closed without an answer), charged (charges answered 200), stop_seconds.

  smoke-load.py joins PORT --users N [--threads N] [--seconds S]
      POST /api/v1/queue/tokens for users 1..N (concert 1) on keep-alive connections until done,
      S seconds pass, or the port has refused connections for 2 s (the server is gone).
      Prints JSON: joined, errors, seconds.
"""
import argparse, http.client, json, subprocess, sys, threading, time

HOST = "127.0.0.1"


def stop_burst(a):
    res = {"answered": 0, "statuses": {}, "refused": 0, "reset": 0, "charged": 0, "reset_errors": []}
    lock = threading.Lock()
    end = time.time() + a.grace + 20

    def one(i):
        c = http.client.HTTPConnection(HOST, a.port, timeout=a.grace + 5)
        try:
            if i % 2:
                c.request("POST", "/api/v1/users/5/points/charge", json.dumps({"amount": 1}),
                          {"content-type": "application/json", "connection": "close"})
            else:
                c.request("GET", "/api/v1/concerts", headers={"connection": "close"})
            r = c.getresponse()
            r.read()
            with lock:
                res["answered"] += 1
                res["statuses"][str(r.status)] = res["statuses"].get(str(r.status), 0) + 1
                if i % 2 and r.status == 200:
                    res["charged"] += 1
            return "answered"
        except ConnectionRefusedError:
            with lock:
                res["refused"] += 1
            return "refused"
        except Exception as e:  # reset, closed without an answer, timeout
            with lock:
                res["reset"] += 1
                res["reset_errors"].append(f"{type(e).__name__}: {e}"[:90])
            return "reset"
        finally:
            c.close()

    def work(k):
        i, refused = k, 0
        while time.time() < end and refused < 3:
            r = one(i)
            i += a.threads
            refused = refused + 1 if r == "refused" else 0
            if r == "refused":
                time.sleep(0.1)

    ts = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(a.threads)]
    for t in ts:
        t.start()
    time.sleep(1.5)
    t0 = time.time()
    p = subprocess.run(["docker", "stop", "-t", str(a.grace), a.container], capture_output=True, text=True,
                       timeout=a.grace + 30)
    res["stop_seconds"] = round(time.time() - t0, 2)
    res["stop_rc"] = p.returncode
    for t in ts:
        t.join(timeout=max(1, end - time.time()))
    res["reset_errors"] = sorted(set(res["reset_errors"]))[:5]
    print(json.dumps(res))


def joins(a):
    lock = threading.Lock()
    res = {"joined": 0, "errors": 0}
    end = time.time() + a.seconds
    last_ok = [time.time()]

    def work(k):
        c = http.client.HTTPConnection(HOST, a.port, timeout=5)
        for uid in range(k + 1, a.users + 1, a.threads):
            if time.time() > end or time.time() - last_ok[0] > 2:
                break
            try:
                c.request("POST", "/api/v1/queue/tokens", json.dumps({"userId": uid, "concertId": 1}),
                          {"content-type": "application/json"})
                r = c.getresponse()
                r.read()
                with lock:
                    if r.status in (200, 201):
                        res["joined"] += 1
                        last_ok[0] = time.time()
                    else:
                        res["errors"] += 1
            except Exception:
                with lock:
                    res["errors"] += 1
                c.close()
                c = http.client.HTTPConnection(HOST, a.port, timeout=5)
                time.sleep(0.1)
        c.close()

    t0 = time.time()
    ts = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(a.threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=max(1, end - time.time() + 6))
    res["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(res))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stop-burst")
    s.add_argument("port", type=int)
    s.add_argument("container")
    s.add_argument("--threads", type=int, default=16)
    s.add_argument("--grace", type=int, default=20)
    j = sub.add_parser("joins")
    j.add_argument("port", type=int)
    j.add_argument("--users", type=int, required=True)
    j.add_argument("--threads", type=int, default=4)
    j.add_argument("--seconds", type=float, default=60)
    a = ap.parse_args()
    {"stop-burst": stop_burst, "joins": joins}[a.cmd](a)


if __name__ == "__main__":
    main()
