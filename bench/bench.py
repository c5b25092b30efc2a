#!/usr/bin/python3
"""kvmstatd benchmark: real KVM VMs, figures side by side, ratios to the
pread limit measured in the same run. A harness that prints figures, not a
test: nothing here passes or fails on time.

    make bench                       # sizes 50x4 and 500x4
    BENCH_SIZES=50x4,1000x4 make bench

For each size it starts kvmstatd and demo VMMs (<= 500 VMs per VMM
process), waits until every stats fd is registered, then measures:
  pread limit   one pread of every data block (bench-pread, fds copied
                from the VMMs with pidfd_getfd), median of rounds;
  poll tick     kvmstatd's own wall and CPU time per tick (self-metrics);
  scrape        GET /metrics over loopback, median latency and bytes;
  RSS           helper and worker resident memory.
Writes build/bench.json.
"""
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = os.path.join(ROOT, "build")
VMS_PER_VMM = 500


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(url, accept=None):
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    t0 = time.perf_counter_ns()
    with urllib.request.urlopen(req, timeout=120) as r:
        body = r.read()
    return time.perf_counter_ns() - t0, body


def self_metric(text, name):
    m = re.search(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def worker_pid(helper):
    with open("/proc/%d/task/%d/children" % (helper, helper)) as f:
        kids = f.read().split()
    return int(kids[0]) if kids else None


def start_vmms(n_vms, n_vcpus, sock, hz):
    procs, lines = [], []
    left, k = n_vms, 0
    while left > 0:
        count = min(left, VMS_PER_VMM)
        p = subprocess.Popen([os.path.join(B, "kvmstat-demo-vmm"), "--vms", str(count),
                              "--vcpus", str(n_vcpus), "--socket", sock, "--hz", str(hz),
                              "--name-prefix", "b%d-" % k],
                             stdout=subprocess.PIPE, text=True)
        procs.append(p)
        for line in p.stdout:
            if line.startswith("READY"):
                break
            if line.startswith("VM "):
                lines.append((p.pid, dict(kv.split("=", 1) for kv in line.split()[1:])))
        left -= count
        k += 1
    return procs, lines


def wait_sources(url, want_vm, want_vcpu, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = scrape(url)[1].decode()
        if (self_metric(text, 'kvmstatd_sources{kind="vm"}') == want_vm and
                self_metric(text, 'kvmstatd_sources{kind="vcpu"}') == want_vcpu):
            return text
        time.sleep(0.2)
    raise RuntimeError("sources never reached %d VMs / %d vCPUs" % (want_vm, want_vcpu))


def pread_limit(lines, rounds=200, pause_ms=0):
    args = []
    by_pid = {}
    for pid, kv in lines:
        fds = [kv["vm_stats_fd"]] + kv["vcpu_stats_fds"].split(",")
        by_pid.setdefault(pid, []).extend(fds)
    for pid, fds in by_pid.items():
        args += [str(pid), ",".join(fds)]
    out = subprocess.run([os.path.join(B, "bench-pread"), str(rounds), str(pause_ms)] + args, check=True,
                         capture_output=True, text=True).stdout
    r = json.loads(out)
    return statistics.median(r["round_ns"]), r["fds"], r["values"]


def poll_ticks(url, n=7):
    wall, cpu = [], []
    for _ in range(n):
        time.sleep(1.05)
        text = scrape(url)[1].decode()
        wall.append(self_metric(text, "kvmstatd_last_poll_duration_seconds") * 1e9)
        cpu.append(self_metric(text, "kvmstatd_last_poll_cpu_seconds") * 1e9)
    return statistics.median(wall), statistics.median(cpu)


def scrape_gzip(url, accept=None):
    hdr = {"Accept-Encoding": "gzip"}
    if accept:
        hdr["Accept"] = accept
    req = urllib.request.Request(url, headers=hdr)
    t0 = time.perf_counter_ns()
    with urllib.request.urlopen(req, timeout=120) as r:
        body = r.read()
    return time.perf_counter_ns() - t0, body


PAGE_COUNTERS = ("kvmstatd_renders_total", "kvmstatd_render_duration_seconds_total",
                 "kvmstatd_compressions_total", "kvmstatd_compress_duration_seconds_total")


def page_counters(url, accept=None):
    """kvmstatd's render and gzip counters, and the series of the page in
    that format. A page is cached for a poll tick, self-metrics included:
    wait for the next tick to read fresh ones."""
    time.sleep(1.1)
    text = scrape(url, accept)[1].decode()
    return [self_metric(text, n) for n in PAGE_COUNTERS], self_metric(text, "kvmstatd_series")


def scrapes(url, accept=None, n=30):
    """Median latency of n plain and n gzip scrapes (most of them warm:
    served from the tick's cached page), their sizes, and kvmstatd's own
    mean cost of a cold render and of one compression meanwhile."""
    plain, gz = [], []
    c0, series = page_counters(url, accept)
    for _ in range(n):
        ns, body = scrape(url, accept)
        plain.append(ns)
        ns, zbody = scrape_gzip(url, accept)
        gz.append(ns)
    c1, _ = page_counters(url, accept)
    d = [b - a for a, b in zip(c0, c1)]
    return {"plain_ns": statistics.median(plain), "plain_bytes": len(body),
            "gzip_ns": statistics.median(gz), "gzip_bytes": len(zbody), "series": series,
            "render_ns": d[1] / max(d[0], 1) * 1e9, "renders": d[0],
            "compress_ns": d[3] / max(d[2], 1) * 1e9, "compressions": d[2]}


def run_size(n_vms, n_vcpus):
    tmp = tempfile.mkdtemp(prefix="kvmstatd-bench-")
    port = free_port()
    sock = os.path.join(tmp, "reg.sock")
    cfg = os.path.join(tmp, "kvmstatd.ini")
    with open(cfg, "w") as f:
        f.write("[registration]\nsocket = %s\nmax_vms_per_peer = 4096\nmax_sources = 20000\n"
                "[poll]\ninterval_ms = 1000\n[http]\nlisten = 127.0.0.1:%d\n" % (sock, port))
    url = "http://127.0.0.1:%d/metrics" % port
    daemon = subprocess.Popen([os.path.join(B, "kvmstatd"), "--config", cfg],
                              stderr=subprocess.DEVNULL)
    procs = []
    try:
        deadline = time.time() + 10
        while not os.path.exists(sock) and time.time() < deadline:
            time.sleep(0.05)
        # guests wake the host at hz per vCPU: keep the host itself unsaturated
        # (8000 vCPUs at 10 Hz drove the load average past 4000 on 2 cores)
        n = n_vms * n_vcpus
        hz = 100 if n <= 400 else 10 if n <= 2000 else 1
        procs, lines = start_vmms(n_vms, n_vcpus, sock, hz)
        wait_sources(url, n_vms, n_vms * n_vcpus)
        limit_ns, fds, values = pread_limit(lines)
        cold_ns = pread_limit(lines, rounds=7, pause_ms=1000)[0]
        wall, cpu = poll_ticks(url)
        text = scrapes(url)
        om = scrapes(url, "application/openmetrics-text; version=1.0.0")
        res = {
            "vms": n_vms, "vcpus_per_vm": n_vcpus, "fds": fds, "values": values,
            "series": text["series"], "pread_limit_ns": limit_ns, "pread_cold_ns": cold_ns,
            "poll_wall_ns": wall, "poll_cpu_ns": cpu,
            "scrape_text_ns": text["plain_ns"], "scrape_text_bytes": text["plain_bytes"],
            "render_text_ns": text["render_ns"], "text": text, "openmetrics": om,
            "scrape_om_ns": om["plain_ns"], "scrape_om_bytes": om["plain_bytes"],
            "rss_helper_kib": rss_kib(daemon.pid), "rss_worker_kib": rss_kib(worker_pid(daemon.pid)),
        }
        return res
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)


def report(results):
    print()
    print("%-10s %6s %7s %7s | %10s | %10s %6s | %10s %6s | %11s %6s %9s %8s | %9s" % (
        "size", "fds", "values", "series", "pread lim", "poll wall", "x lim", "poll cpu", "x lim",
        "scrape", "x lim", "bytes", "ns/line", "RSS w+h"))
    for r in results:
        lim = r["pread_limit_ns"]
        print("%-10s %6d %7d %7d | %8.3fms | %8.3fms %6.1f | %8.3fms %6.1f | %9.3fms %6.1f %9d %8.1f | %6.1fMiB" % (
            "%dx%d" % (r["vms"], r["vcpus_per_vm"]), r["fds"], r["values"], r["series"], lim / 1e6,
            r["poll_wall_ns"] / 1e6, r["poll_wall_ns"] / lim, r["poll_cpu_ns"] / 1e6,
            r["poll_cpu_ns"] / lim, r["scrape_text_ns"] / 1e6, r["scrape_text_ns"] / lim,
            r["scrape_text_bytes"], r["scrape_text_ns"] / max(r["series"], 1),
            (r["rss_worker_kib"] + r["rss_helper_kib"]) / 1024))
    print("\npread limit = one pread of every stats fd's data block, median of 200 back-to-back rounds.")
    print("pread cold = the same, one round per second like a 1 s poll tick (median of 7): " + ", ".join(
        "%dx%d %.3fms (poll wall = %.1fx cold)" % (r["vms"], r["vcpus_per_vm"], r["pread_cold_ns"] / 1e6,
                                              r["poll_wall_ns"] / r["pread_cold_ns"]) for r in results))
    print("poll = kvmstatd's own tick timing (median of 7 ticks); scrape = GET /metrics over")
    print("loopback, text format, median of 30, end to end (Python client); x lim = ratio to the limit.")
    print("\nPages (kvmstatd renders a page once per tick and format, compresses it once; the")
    print("scrapes above are mostly warm, served from that cache). Per KVM series (sample line):")
    print("%-10s %-11s %8s %9s %7s | %8s %9s %7s | %9s %9s" % (
        "size", "format", "series", "render", "ns/ser", "gzip", "ns/ser", "x lim",
        "B/ser", "gz B/ser"))
    for r in results:
        for name in ("text", "openmetrics"):
            p = r[name]
            n = max(p["series"] or 1, 1)
            print("%-10s %-11s %8d %7.2fms %7.1f | %6.2fms %9.1f %7.1f | %9.1f %9.2f" % (
                "%dx%d" % (r["vms"], r["vcpus_per_vm"]), name, n, p["render_ns"] / 1e6,
                p["render_ns"] / n, p["compress_ns"] / 1e6, p["compress_ns"] / n,
                (p["render_ns"] + p["compress_ns"]) / r["pread_limit_ns"],
                p["plain_bytes"] / n, p["gzip_bytes"] / n))
    print("render, gzip = kvmstatd's own mean time per cold render / compression (self-metrics);")
    print("x lim = render + gzip as a ratio to the pread limit. Scrape medians (warm, end to end): " + ", ".join(
        "%dx%d text %.3fms gzip %.3fms, OpenMetrics %.3fms gzip %.3fms" % (
            r["vms"], r["vcpus_per_vm"], r["text"]["plain_ns"] / 1e6, r["text"]["gzip_ns"] / 1e6,
            r["openmetrics"]["plain_ns"] / 1e6, r["openmetrics"]["gzip_ns"] / 1e6)
        for r in results))


def main():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("bench: no usable /dev/kvm: nothing to measure")
        return 0
    sizes = os.environ.get("BENCH_SIZES", "50x4,500x4")
    results = []
    for s in sizes.split(","):
        v, c = (int(x) for x in s.split("x"))
        print("bench: %d VMs x %d vCPUs ..." % (v, c), flush=True)
        results.append(run_size(v, c))
    report(results)
    with open(os.path.join(B, "bench.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("\nwrote build/bench.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
