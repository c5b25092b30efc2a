#!/usr/bin/python3
"""kvmstatd benchmark: real KVM VMs, kvmstatd and its peers side by side,
every figure a ratio to the pread limit measured in the same run, on the
same stats fds. A harness that prints figures, not a test: nothing here
fails on time (the goals table says which hold).

    make bench                                # 50x4 in full, sweep 50,400,1600
    BENCH_SWEEP=50,400,1600,4000 make bench   # up to the fd limit
    BENCH_QEMU=0 BENCH_REPS=3 make bench      # no QEMU guests, fewer repetitions

Environment: BENCH_SWEEP (VM counts, or NxM), BENCH_VCPUS (4), BENCH_REPS
(cold repetitions, 5), BENCH_WARM (warm scrapes per repetition, 8),
BENCH_QEMU (QEMU guests for query-stats, 50; 0: none), BENCH_INTERVAL_MS
(kvmstatd's poll interval, 1000 = its default), BENCH_CPU_SECONDS (window
for CPU per second, 10), BENCH_QEMU_SETTLE_S (3), BENCH_JSON
(build/bench.json). `make bench-smoke` runs all of it at a tiny size in
seconds (make check does, to prove the harness still works).

For every size it starts kvmstatd and demo VMMs (<= 500 VMs per VMM
process), waits until every stats fd is polled, then measures:
  pread limit  bench-pread: one pread of every data block of the very fds
               the kvmstatd worker holds (pidfd_getfd), median of 200
               back-to-back rounds ("hot"), and one round per poll interval
               ("cold": caches and clocks as a real tick finds them);
  poll tick    kvmstatd's own wall and CPU time of a tick (self-metrics);
  render       kvmstatd's own mean time per cold render and per gzip, and
               bench-render: the renderer alone in a loop (hot caches);
  scrape       GET /metrics with curl over loopback: cold (first scrape after
               a tick: renders), warm (served from the tick's cached page),
               plain and gzip; next to the transport floor: the same bytes
               from bench-static through the same curl;
  exits        kvm_vcpu_signal_exits_total summed over the bench's vCPUs
               before and after (kvmstatd must cause none);
  RSS, CPU/s   helper + worker, over BENCH_CPU_SECONDS with no scrapes.
At the first size also debugfs and QEMU's QMP query-stats (see peers.py).
"""
import json
import os
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import peers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = os.path.join(ROOT, "build")
VMS_PER_VMM = 500
RING_SLOTS = 4  # kvmstatd's default [poll] ring_slots
# worker fds beside the stats fds: one pidfd per VM, and what the helper
# keeps aside for the worker's own fds (CONFIG_FD_RESERVE in daemon/common/config.h)
WORKER_FDS_PER_VM = 1
WORKER_FDS_FIXED = 256


def env_int(name, default):
    return int(os.environ.get(name, default))


REPS = env_int("BENCH_REPS", 5)
WARM = env_int("BENCH_WARM", 8)
INTERVAL_MS = env_int("BENCH_INTERVAL_MS", 1000)
CPU_SECONDS = env_int("BENCH_CPU_SECONDS", 10)
TICK = INTERVAL_MS / 1000.0
QEMU_SETTLE_S = env_int("BENCH_QEMU_SETTLE_S", 3)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, accept=None):
    """Untimed fetch for bookkeeping (sources, bodies)."""
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=120) as r:
        return r.read()


class Curl:
    """One client for every timed fetch: curl, body to a scratch file (the
    same cost for kvmstatd and the floor), time from curl's own clock."""

    def __init__(self, tmp):
        self.out = os.path.join(tmp, "curl.out")

    def fetch(self, url, gz=False, accept=None, keep=False, tail=False):
        """(ns, bytes, body): body is the whole body if keep, its last
        16 KiB decoded if tail (the self-metrics: which tick made the page)."""
        args = ["curl", "-s", "-o", self.out, "-w", "%{time_total} %{size_download} %{http_code}"]
        if gz:
            args += ["-H", "Accept-Encoding: gzip"]  # no --compressed: bytes stay gzip
        if accept:
            args += ["-H", "Accept: " + accept]
        t, size, code = subprocess.run(args + [url], capture_output=True, text=True,
                                       check=True).stdout.split()
        if code != "200":
            raise RuntimeError("%s: HTTP %s" % (url, code))
        body = None
        if keep or tail:
            with open(self.out, "rb") as f:
                if tail:
                    f.seek(max(0, int(size) - 16384))
                body = f.read()
            if tail:
                body = body.decode("utf-8", "replace")
        return float(t) * 1e9, int(size), body


def metric(text, name):
    m = re.search(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def metric_sum(text, name):
    return sum(float(v) for v in re.findall(r"^%s\{[^}]*\} (\S+)$" % re.escape(name), text, re.M))


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_kib(pid, what="VmRSS:"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(what):
                return int(line.split()[1])
    return 0


def worker_pid(helper):
    with open("/proc/%d/task/%d/children" % (helper, helper)) as f:
        kids = f.read().split()
    return int(kids[0]) if kids else None


def wait_tick():
    """Sleep past the next poll tick: the next scrape is the tick's first."""
    time.sleep(TICK * 1.05 + 0.01)


class Daemon:
    def __init__(self, tmp, name="d"):
        self.sock = os.path.join(tmp, name + "-reg.sock")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d/metrics" % self.port
        cfg = os.path.join(tmp, name + ".ini")
        # bpf = off: this bench measures the stats-fd path (make bench-bpf
        # measures exit telemetry), and the BPF slots are host-wide: thousands
        # of bench vCPUs would fill those of any other daemon on the machine
        with open(cfg, "w") as f:
            f.write("[daemon]\nbpf = off\n[registration]\nsocket = %s\nmax_vms_per_peer = 4096\nmax_sources = 20000\n"
                    "max_sources_per_uid = 20000\nrate_limit = 0\n[discovery]\nenabled = no\n"
                    "[poll]\ninterval_ms = %d\n[http]\nlisten = 127.0.0.1:%d\n"
                    % (self.sock, INTERVAL_MS, self.port))
        self.log = os.path.join(tmp, name + ".log")
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([os.path.join(B, "kvmstatd"), "--config", cfg],
                                         stderr=log)
        deadline = time.time() + 10
        while not os.path.exists(self.sock) and time.time() < deadline:
            time.sleep(0.05)

    def worker(self):
        return worker_pid(self.proc.pid)

    def wait_sources(self, want_vm, want_vcpu, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = get(self.url).decode()
            if (metric(text, 'kvmstatd_sources{kind="vm"}') == want_vm and
                    metric(text, 'kvmstatd_sources{kind="vcpu"}') == want_vcpu):
                return text
            time.sleep(0.2)
        raise RuntimeError("sources never reached %d VMs / %d vCPUs (%s / %s)" % (
            want_vm, want_vcpu, metric(text, 'kvmstatd_sources{kind="vm"}'),
            metric(text, 'kvmstatd_sources{kind="vcpu"}')))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_vmms(n_vms, n_vcpus, sock):
    # guests wake the host at hz per vCPU: keep the host itself unsaturated
    # (8000 vCPUs at 10 Hz drove the load average past 4000 on 2 cores)
    n = n_vms * n_vcpus
    hz = 100 if n <= 400 else 10 if n <= 2000 else 1
    procs, left, k = [], n_vms, 0
    try:
        while left > 0:
            count = min(left, VMS_PER_VMM)
            p = subprocess.Popen([os.path.join(B, "kvmstat-demo-vmm"), "--vms", str(count),
                                  "--vcpus", str(n_vcpus), "--socket", sock, "--hz", str(hz),
                                  "--name-prefix", "b%d-" % k], stdout=subprocess.PIPE, text=True)
            procs.append(p)
            for line in p.stdout:
                if line.startswith("READY"):
                    break
            left -= count
            k += 1
    except BaseException:
        stop_procs(procs)
        raise
    return procs


def stop_procs(procs):
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()


def pread_limit(pid, rounds, pause_ms=0, keep=False):
    out = subprocess.run([os.path.join(B, "bench-pread")] + (["-k"] if keep else []) +
                         [str(rounds), str(pause_ms), str(pid), "all"],
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    return {"ns": statistics.median(r["round_ns"]), "fds": r["fds"], "values": r["values"]}


def page_counters(text):
    return {k: metric(text, "kvmstatd_" + k) for k in
            ("renders_total", "render_duration_seconds_total", "compressions_total",
             "compress_duration_seconds_total")}


def mean_cost(c0, c1, what):
    """kvmstatd's mean ns per render or compression between two pages."""
    count = {"render": "renders_total", "compress": "compressions_total"}[what]
    n = c1[count] - c0[count]
    s = c1[what + "_duration_seconds_total"] - c0[what + "_duration_seconds_total"]
    return s / n * 1e9 if n > 0 else None


class Floor:
    """bench-static serving the given plain and gzip bytes."""

    def __init__(self, tmp, plain, gz):
        pf, gf = os.path.join(tmp, "floor.txt"), os.path.join(tmp, "floor.gz")
        with open(pf, "wb") as f:
            f.write(plain)
        with open(gf, "wb") as f:
            f.write(gz)
        self.proc = subprocess.Popen([os.path.join(B, "bench-static"), pf, gf],
                                     stdout=subprocess.PIPE, text=True)
        port = int(self.proc.stdout.readline().split()[1])
        self.plain = "http://127.0.0.1:%d/plain" % port
        self.gz = "http://127.0.0.1:%d/gzip" % port

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def warm(d, curl, floor, m):
    """Warm scrapes of this tick's cached pages, each next to the floor. A
    scrape counts only if the pages around it came from the same tick (the
    page's kvmstatd_polls_total): a tick landing mid-loop would make it
    cold. Plain scrapes bracket the gzip ones to prove the same of them."""
    ns, _, tail = curl.fetch(d.url, tail=True)
    tick = metric(tail, "kvmstatd_polls_total")
    for _ in range(WARM):
        # the same order on both servers: a plain scrape, then a gzip one
        g = curl.fetch(d.url, gz=True)[0]
        fp = curl.fetch(floor.plain)[0]
        fg = curl.fetch(floor.gz, gz=True)[0]
        m["floor_gzip"].append(fg)
        m["floor_plain"].append(fp)
        ns2, _, tail = curl.fetch(d.url, tail=True)
        if metric(tail, "kvmstatd_polls_total") != tick:
            return
        m["warm_plain"].append(ns)
        m["warm_gzip"].append(g)
        ns = ns2


def scrapes(d, curl, tmp):
    """Cold and warm scrapes, plain and gzip, next to the floor; kvmstatd's
    own poll, render and gzip costs over the same ticks."""
    wait_tick()
    _, _, plain = curl.fetch(d.url, keep=True)
    _, _, gz = curl.fetch(d.url, gz=True, keep=True)
    floor = Floor(tmp, plain, gz)
    m = {k: [] for k in ("cold_plain", "cold_gzip", "gzip_after_render", "warm_plain",
                         "warm_gzip", "floor_plain", "floor_gzip", "poll_wall", "poll_cpu")}
    bodies = []
    try:
        for rep in range(2 * REPS):
            wait_tick()
            if rep % 2 == 0:
                ns, size, body = curl.fetch(d.url, keep=True)
                m["cold_plain"].append(ns)
                text = body.decode()
                bodies.append(text)
                m["poll_wall"].append(metric(text, "kvmstatd_last_poll_duration_seconds") * 1e9)
                m["poll_cpu"].append(metric(text, "kvmstatd_last_poll_cpu_seconds") * 1e9)
                m["gzip_after_render"].append(curl.fetch(d.url, gz=True)[0])
            else:
                m["cold_gzip"].append(curl.fetch(d.url, gz=True)[0])
            warm(d, curl, floor, m)
        wait_tick()
        bodies.append(curl.fetch(d.url, keep=True)[2].decode())
    finally:
        floor.stop()
    c0, c1 = page_counters(bodies[0]), page_counters(bodies[-1])
    if os.environ.get("BENCH_DEBUG"):
        print(json.dumps({k: [round(x / 1e3) for x in v] for k, v in m.items()}), flush=True)
    # a page that takes longer than a tick to fetch leaves no warm scrape
    res = {k: statistics.median(v) if v else None for k, v in m.items()}
    res.update(plain_bytes=len(plain), gzip_bytes=len(gz),
               series=metric(bodies[-1], "kvmstatd_series"),
               render_ns=mean_cost(c0, c1, "render"), compress_ns=mean_cost(c0, c1, "compress"),
               signal_exits=metric_sum(bodies[-1], "kvm_vcpu_signal_exits_total") -
               metric_sum(bodies[0], "kvm_vcpu_signal_exits_total"),
               exits_window_s=(2 * REPS + 1) * TICK)
    return res


def openmetrics_render(d, curl):
    """kvmstatd's mean cold render of the OpenMetrics page (_created lines too)."""
    om = "application/openmetrics-text; version=1.0.0"
    bodies = []
    for _ in range(REPS + 1):
        wait_tick()
        bodies.append(curl.fetch(d.url, accept=om, keep=True)[2].decode())
    return {"render_ns": mean_cost(page_counters(bodies[0]), page_counters(bodies[-1]), "render"),
            "series": metric(bodies[-1], "kvmstatd_series")}


def render_micro(n_vms, n_vcpus):
    """bench-render: the renderer alone, same size, captured layouts, hot."""
    rounds = max(3, min(50, 2000000 // max(n_vms * n_vcpus * 140, 1)))
    out = subprocess.run([os.path.join(B, "bench-render"), str(n_vms), str(n_vcpus), str(rounds),
                          os.path.join(ROOT, "tests", "data")], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


def cpu_and_rss(d):
    helper, worker = d.proc.pid, d.worker()
    t0 = time.monotonic()
    c0 = cpu_ticks(helper) + cpu_ticks(worker)
    time.sleep(CPU_SECONDS)
    c1 = cpu_ticks(helper) + cpu_ticks(worker)
    hz = os.sysconf("SC_CLK_TCK")
    history = metric(get(d.url).decode(), "kvmstatd_history_bytes") or 0
    return {"cpu_per_s": (c1 - c0) / hz / (time.monotonic() - t0),
            "history_bytes": history,
            "rss_helper_kib": rss_kib(helper), "rss_worker_kib": rss_kib(worker),
            "rss_peak_kib": rss_kib(helper, "VmHWM:") + rss_kib(worker, "VmHWM:")}


def fits(n_vms, n_vcpus):
    """Most VMs whose stats fds (and pidfds) the worker can hold."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    per_vm = n_vcpus + 1 + WORKER_FDS_PER_VM
    return min(n_vms, (hard - WORKER_FDS_FIXED) // per_vm), hard


def run_size(n_vms, n_vcpus, peers_too):
    tmp = tempfile.mkdtemp(prefix="kvmstatd-bench-")
    curl = Curl(tmp)
    micro = render_micro(n_vms, n_vcpus)  # before the VMs load the host
    d = Daemon(tmp)
    procs = []
    try:
        t0 = time.monotonic()
        procs = start_vmms(n_vms, n_vcpus, d.sock)
        d.wait_sources(n_vms, n_vms * n_vcpus)
        print("bench:   %d VMMs up and polled in %.1fs" % (len(procs), time.monotonic() - t0),
              flush=True)
        w = d.worker()
        hot = pread_limit(w, 200)
        cold = pread_limit(w, REPS, INTERVAL_MS)
        kept = pread_limit(w, REPS, INTERVAL_MS, keep=True)
        r = {"vms": n_vms, "vcpus_per_vm": n_vcpus, "fds": hot["fds"], "values": hot["values"],
             "pread_hot_ns": hot["ns"], "pread_cold_ns": cold["ns"],
             "pread_kept_ns": kept["ns"],
             "ring_bytes": hot["values"] * 8 * RING_SLOTS}
        r["micro"] = micro
        r["scrape"] = scrapes(d, curl, tmp)
        r["openmetrics"] = openmetrics_render(d, curl)
        r.update(cpu_and_rss(d))
        if peers_too:
            r["debugfs"] = peers.debugfs([p.pid for p in procs], REPS, INTERVAL_MS)
        return r
    finally:
        stop_procs(procs)
        d.stop()


def run_qemu(n, n_vcpus):
    """QMP query-stats on n QEMU guests next to kvmstatd polling the same
    guests (through the preload shim)."""
    tmp = tempfile.mkdtemp(prefix="kvmstatd-bench-qemu-")
    curl = Curl(tmp)
    d = Daemon(tmp, "q")
    guests = []
    try:
        t0 = time.monotonic()
        guests = peers.qemu_guests(n, n_vcpus, d.sock)
        if not guests:
            return None
        d.wait_sources(n, n * n_vcpus)
        print("bench:   %d QEMU guests up and polled in %.1fs" % (n, time.monotonic() - t0),
              flush=True)
        hot = pread_limit(d.worker(), 200)
        time.sleep(QEMU_SETTLE_S)  # past SeaBIOS: its start kicks vCPUs on its own
        wait_tick()
        b0 = curl.fetch(d.url, keep=True)[2].decode()
        walls = []
        for _ in range(REPS):
            wait_tick()
            b1 = curl.fetch(d.url, keep=True)[2].decode()
            walls.append(metric(b1, "kvmstatd_last_poll_duration_seconds") * 1e9)
        quiet = metric_sum(b1, "kvm_vcpu_signal_exits_total") - \
            metric_sum(b0, "kvm_vcpu_signal_exits_total")
        rounds = [peers.query_stats_round(guests) for _ in range(REPS)]
        wait_tick()
        b2 = curl.fetch(d.url, keep=True)[2].decode()
        forced = metric_sum(b2, "kvm_vcpu_signal_exits_total") - \
            metric_sum(b1, "kvm_vcpu_signal_exits_total")
        return {"guests": n, "vcpus_per_vm": n_vcpus, "pread_hot_ns": hot["ns"],
                "fds": hot["fds"], "values": hot["values"], "poll_wall_ns": statistics.median(walls),
                "qmp_round_ns": statistics.median(rounds), "qmp_rounds": REPS,
                "exits_kvmstatd": quiet, "exits_kvmstatd_window_s": REPS * TICK,
                "exits_qmp": forced,
                "exits_per_vcpu_query": forced / (REPS * n * n_vcpus)}
    finally:
        peers.stop_guests(guests)
        d.stop()


def parse_sweep(spec, vcpus):
    out = []
    for s in spec.split(","):
        v, _, c = s.strip().partition("x")
        out.append((int(v), int(c) if c else vcpus))
    return out


def main():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("bench: no usable /dev/kvm: nothing to measure")
        return 0
    vcpus = env_int("BENCH_VCPUS", 4)
    sweep = parse_sweep(os.environ.get("BENCH_SWEEP", "50,400,1600"), vcpus)
    n_qemu = env_int("BENCH_QEMU", 50)
    out = {"machine": machine(), "interval_ms": INTERVAL_MS, "reps": REPS, "sizes": [],
           "notes": []}
    for i, (v, c) in enumerate(sweep):
        fit, hard = fits(v, c)
        if fit < v:
            note = ("%dx%d needs %d worker fds (%d stats fds + a pidfd per VM + %d of its own); "
                    "the hard RLIMIT_NOFILE is %d: ran %dx%d instead" %
                    (v, c, v * (c + 1 + WORKER_FDS_PER_VM) + WORKER_FDS_FIXED, v * (c + 1),
                     WORKER_FDS_FIXED, hard, fit, c))
            print("bench: " + note, flush=True)
            out["notes"].append(note)
            v = fit
        print("bench: %d VMs x %d vCPUs ..." % (v, c), flush=True)
        try:
            out["sizes"].append(run_size(v, c, i == 0))
            write_json(out)  # a later size failing keeps these figures
        except Exception as e:  # one size failing keeps the others' figures
            note = "%dx%d failed: %s: %s" % (v, c, type(e).__name__, e)
            print("bench: " + note, flush=True)
            out["notes"].append(note)
    if n_qemu > 0:
        print("bench: %d QEMU guests x %d vCPUs (QMP query-stats) ..." % (n_qemu, vcpus), flush=True)
        out["qemu"] = run_qemu(n_qemu, vcpus)
    path = write_json(out)
    import report
    if out["sizes"]:
        report.print_all(out)
    for n in out["notes"] if not out["sizes"] else []:
        print("note: " + n)
    print("\nwrote %s" % os.path.relpath(path, ROOT))
    return 0


def write_json(out):
    path = os.environ.get("BENCH_JSON", os.path.join(B, "bench.json"))
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    return path


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpu": model, "cpus": os.cpu_count(), "kernel": os.uname().release,
            "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}


if __name__ == "__main__":
    sys.exit(main())
