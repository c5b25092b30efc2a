#!/usr/bin/python3
"""Make docs/live-page.png and docs/kvmstat-top.txt on a host without KVM.

A small stand-in for kvmstatd serves the real live page (the files of
daemon/exposition/web/) and canned /api/v1/ answers shaped like a demo
run (three demo VMs of 4 vCPUs and a QEMU guest of 2, their counters
moving at steady rates with some noise); headless Chromium takes the
page's screenshot and tmux captures `kvmstat top`. Where /dev/kvm exists,
tests/integration/test_kvmstat.py takes the real page's screenshot
(build/live-page.png) instead.

usage: scripts/docs-screenshots.py [OUTDIR [WIDTH,HEIGHT]]   (default docs/ 1000,660)
"""

import http.server
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
WEB = os.path.join(REPO, "daemon", "exposition", "web")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
# stat: (rate per vCPU of the busiest VM, counter?)
STATS = {"exits": 2400, "halt_exits": 1200, "io_exits": 1150, "halt_wakeup": 1190,
         "irq_injections": 100, "halt_attempted_poll": 600, "halt_successful_poll": 420,
         "pf_taken": 3, "blocking": None}
VMS = [("demo-0", 4, 1.0), ("demo-1", 4, 0.55), ("demo-2", 4, 0.2), ("qemu-demo", 2, 0.05)]
HISTORY = 60


class World:
    """Samples of every (vm, vcpu, stat) at t = 0, 1, 2, ... seconds."""

    def __init__(self):
        self.rng = random.Random(17)
        self.t = 0
        self.samples = []  # [{key: value}]
        self.t0 = time.time() - 3600
        for _ in range(HISTORY + 1):
            self.step()

    def step(self):
        prev = self.samples[-1] if self.samples else {}
        cur = {}
        for vm, vcpus, load in VMS:
            for c in range(vcpus):
                for stat, rate in STATS.items():
                    k = (vm, c, stat)
                    if rate is None:
                        cur[k] = self.rng.random() < 0.5
                        continue
                    wave = 1 + 0.35 * ((self.t // 7 + c) % 3 - 1) * (stat == "exits" or 0.5)
                    inc = rate * load * wave * (0.8 + 0.4 * self.rng.random())
                    cur[k] = prev.get(k, 1000 * load) + int(inc)
        self.samples.append(cur)
        self.samples = self.samples[-(HISTORY + 2):]
        self.t += 1

    def rate(self, k, back):
        a, b = self.samples[-1 - back], self.samples[-2 - back]
        return float(a[k] - b[k])


def stats(world, q):
    group = q.get("group", "vcpu")
    vm_re = re.compile(q.get("vm", ".*"))
    match = re.compile(q.get("match", ".*"))
    spark = int(q.get("spark", 0))
    rows = {}
    for (vm, c, stat), v in world.samples[-1].items():
        if not vm_re.fullmatch(vm) or not match.fullmatch(stat):
            continue
        key = {"vcpu": (vm, c, stat), "vm": (vm, stat), "host": (stat,)}[group]
        r = rows.setdefault(key, {"members": [], "value": 0, "rate": 0.0})
        r["members"].append((vm, c, stat))
        r["value"] += int(v)
        r["rate"] += 0 if STATS[stat] is None else world.rate((vm, c, stat), 0)
    out = []
    for key, r in rows.items():
        vm, c, stat = r["members"][0]
        counter = STATS[stat] is not None
        row = {"scope": "vcpu", "stat": stat, "kind": "counter" if counter else "gauge",
               "metric": "kvm_vcpu_%s%s" % (stat, "_total" if counter else ""), "unit": None,
               "value": r["value"], "rate": r["rate"] if counter else None}
        if group != "host":
            row["vm"] = vm
        if group == "vcpu":
            row["vcpu"] = c
        else:
            row["sources"] = row["vcpus"] = len(r["members"])
        if spark:
            pts = []
            for back in range(spark - 1, -1, -1):
                if counter:
                    pts.append(sum(world.rate(m, back) for m in r["members"]))
                else:
                    pts.append(sum(int(world.samples[-1 - back][m]) for m in r["members"]))
            row["spark"] = pts
        if q.get("nonzero") == "1" and not row["value"]:
            continue
        out.append(row)
    sort = q.get("sort", "rate")
    if sort == "name":
        out.sort(key=lambda r: (r.get("vm", ""), r.get("vcpu", -1), r["stat"]))
    else:
        out.sort(key=lambda r: (-(r["rate"] or -1) if sort == "rate" else 0, -r["value"]))
    limit = int(q.get("limit", 100))
    return {"window_s": int(q.get("window", 0)), "group": group, "rows": out[:limit],
            "total": len(out), "truncated": len(out) > limit}


def exits(world, q):
    vm_re = re.compile(q.get("vm", ".*"))
    rows, sched = [], []
    for vm, vcpus, load in VMS:
        if not vm_re.fullmatch(vm):
            continue
        n = world.samples[-1][(vm, 0, "exits")] * vcpus
        for kind, reason, share, p50 in (("userspace", "io", 0.48, 3.1e-6),
                                         ("userspace", "hlt", 0.5, 9.8e-4),
                                         ("hardware", "npf", 0.01, 1.2e-6),
                                         ("userspace", "intr", 0.01, 2.0e-6)):
            rows.append({"kind": kind, "reason": reason, "vm": vm, "vcpus": vcpus,
                         "count": int(n * share), "roundtrips": int(n * share),
                         "mean_s": p50 * 1.3, "p50_s": p50, "p90_s": p50 * 2.2,
                         "p99_s": p50 * 6.5})
        sched.append({"vm": vm, "vcpus": vcpus, "run_delay_s": 0.8 * load * world.t / 60,
                      "cpu_s": 12.5 * load * world.t / 60})
    rows.sort(key=lambda r: -r["count"])
    return {"bpf": True, "group": "vm", "rows": rows, "total": len(rows), "truncated": False,
            "sched": sched, "sched_total": len(sched), "sched_truncated": False}


def vms(world, q):
    out = [{"vm": vm, "kernel_id": "kvm-%d" % (4242 + i), "vmm_pid": 4242 + i,
            "vmm_comm": "qemu-system-x86" if vm.startswith("qemu") else "kvmstat-demo-vm",
            "source": "registered", "vcpus": vcpus, "created": world.t0 + 60 * i}
           for i, (vm, vcpus, _) in enumerate(VMS)]
    return {"vms": out, "total": len(out), "truncated": False}


class Handler(http.server.BaseHTTPRequestHandler):
    world = None
    lock = threading.Lock()

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        with self.lock:
            if u.path.startswith("/api/v1/"):
                if u.path == "/api/v1/stats":
                    self.world.step()  # every refresh is a new tick
                fn = {"/api/v1/stats": stats, "/api/v1/exits": exits, "/api/v1/vms": vms}
                data = fn[u.path](self.world, q)
                data = dict({"time": self.world.t0 + 3600 + self.world.t, "interval_s": 1.0,
                             "history_s": HISTORY}, **data)
                body = json.dumps({"status": "success", "version": 1, "data": data}).encode()
                self.reply(200, "application/json", body)
                return
        name = "index.html" if u.path == "/" else u.path.lstrip("/")
        path = os.path.join(WEB, name)
        if "/" in name or not os.path.exists(path):
            self.reply(404, "text/plain", b"not found\n")
            return
        with open(path, "rb") as f:
            self.reply(200, TYPES[os.path.splitext(name)[1]], f.read())

    def reply(self, status, ctype, body):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "docs")
    size = sys.argv[2] if len(sys.argv) > 2 else "1000,660"
    Handler.world = World()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d" % srv.server_address[1]
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-quic", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        "--user-data-dir=" + profile, "--hide-scrollbars",
                        "--window-size=" + size, "--virtual-time-budget=4000",
                        "--screenshot=" + os.path.join(out, "live-page.png"), url + "/"],
                       check=True, capture_output=True, timeout=120)
    session = "kvmstat-docs-%d" % os.getpid()
    cli = os.path.join(REPO, "cli", "kvmstat")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "96", "-y", "22",
                    "%s top --url %s -s 0.5" % (cli, url)], check=True)
    try:
        time.sleep(2.5)  # a few refreshes: rates settle (a script, not a test)
        top = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                             capture_output=True, text=True, check=True).stdout
        subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
        time.sleep(2.5)
        drill = subprocess.run(["tmux", "capture-pane", "-p", "-t", session],
                               capture_output=True, text=True, check=True).stdout
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    with open(os.path.join(out, "kvmstat-top.txt"), "w") as f:
        f.write(top.rstrip() + "\n\n" + drill.rstrip() + "\n")
    srv.shutdown()


if __name__ == "__main__":
    main()
