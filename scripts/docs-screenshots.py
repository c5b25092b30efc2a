#!/usr/bin/python3
"""Make docs/live-page.png and docs/kvmstat-top.txt from a real kvmstatd.

Starts build/kvmstatd (the helper, as root; it execs build/kvmstatd-worker)
with a config of its own (1 s polls, 60 s of history, the exit telemetry
when it loads) through tests/integration/harness.py, three demo VMs of
different busyness (build/kvmstat-demo-vmm: demo-0, demo-1, demo-2) and,
where Debian's QEMU and the preload shim are there, a QEMU guest
(qemu-demo); waits until the history holds a full sparkline of every VM,
then headless Chromium takes the live page's screenshot and tmux captures
`kvmstat top` and its drill-down into the busiest VM (Enter on the top row).

Without a usable /dev/kvm it runs itself inside the lab's guest
(tests/lab/lab run, which mounts the repository at the same path, and
OUTDIR too when it is elsewhere), so the files land here. KVMSTATD_LAB=
always|never as for make run. Needs root (the helper; the lab). `make
docs-screenshots` builds first, then runs this.

usage: scripts/docs-screenshots.py [OUTDIR [WIDTH,HEIGHT]]   (default docs/ 1000,660)
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import harness  # noqa: E402
import statsfd  # noqa: E402

KVMSTAT = os.path.join(REPO, "cli", "kvmstat")
# (name, vCPUs, guest wake-ups per vCPU and second): busy, middling, idle
DEMO_VMS = [("demo-0", 4, 200), ("demo-1", 2, 150), ("demo-2", 2, 10)]
QEMU_NAME = "qemu-demo"
OVERRIDES = {("poll", "interval_ms"): "1000", ("poll", "history_s"): "60"}
OVERRIDES.update(harness.BPF_ON)  # exit reasons for the drill-down, when it loads
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--enable-logging=stderr", "--v=0"]
# deadlines, not figures: the lab's emulated CPU starts Chromium in minutes
CHROMIUM_TIMEOUT_S = 900
SCREEN_TIMEOUT_S = 120


T0 = time.monotonic()


def say(msg):
    print("docs-screenshots: [%3.0f s] %s" % (time.monotonic() - T0, msg), flush=True)


def in_lab(out, size):
    """Run this script again inside the lab's guest; its exit status."""
    cmd = [os.path.join(REPO, "tests", "lab", "lab"), "run"]
    if os.path.commonpath([out, REPO]) != REPO:
        cmd += ["--share", out]
    cmd += ["--", "/usr/bin/python3", "scripts/docs-screenshots.py", out, size]
    return subprocess.run(cmd, cwd=REPO).returncode


def api(d, path):
    r = d.get(path, timeout=30.0)
    if r.status != 200:
        raise AssertionError("GET %s: %d %r" % (path, r.status, r.body[:300]))
    return json.loads(r.body)["data"]


def wait_history(d, names):
    """Until every VM's sparkline of exits is full (no null point): the
    page then draws whole lines from its first refresh."""
    first = api(d, "/api/v1/vms")
    points = max(2, min(120, int(first["history_s"] / first["interval_s"])))
    say("waiting for %d samples of history (%g s)" % (points, points * first["interval_s"]))

    def full():
        rows = api(d, "/api/v1/stats?group=vm&match=%%5Eexits%%24&spark=%d" % points)["rows"]
        spark = {r["vm"]: r["spark"] for r in rows}
        return all(n in spark and len(spark[n]) == points and None not in spark[n]
                   for n in names)
    harness.wait_until(full, 2 * points * first["interval_s"] + 120, 1.0,
                       "%d samples of history of %s" % (points, names))


def screenshot(url, png, size):
    """The page after 8 s of its own time (several refreshes); fails when it
    shows no rows or no sparklines."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise AssertionError("chromium is missing (scripts/install-deps.sh installs it)")
    # Chromium's helpers may still write to the profile as it exits
    with tempfile.TemporaryDirectory(prefix="kvmstat-chromium-",
                                     ignore_cleanup_errors=True) as profile:
        p = subprocess.run([chromium] + CHROMIUM_FLAGS + [
            "--user-data-dir=" + profile, "--window-size=" + size,
            "--virtual-time-budget=8000", "--dump-dom", "--screenshot=" + png, url],
            capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise AssertionError("chromium exited with %d:\n%s" % (p.returncode, p.stderr[-2000:]))
    dom = p.stdout
    console = [l for l in p.stderr.splitlines()
               if "CONSOLE" in l or "Uncaught" in l or "Content Security Policy" in l]
    rows = re.findall(r"<tr>", dom[dom.find("<tbody>"):])
    lines = re.findall(r'<polyline points="([^"]+)"', dom)
    refreshes = re.search(r'data-refreshes="(\d+)"', dom)
    say("page: %d rows, %d sparklines, %s refreshes" % (len(rows), len(lines),
                                                       refreshes and refreshes.group(1)))
    if console or not rows or not lines or not os.path.exists(png):
        raise AssertionError("the page is not worth a screenshot: console %r, %d rows, "
                             "%d sparklines" % (console, len(rows), len(lines)))


class Tmux:
    def __init__(self, cmd, cols, rows):
        self.name = "kvmstat-docs-%d" % os.getpid()
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(cols),
                        "-y", str(rows), " ".join(cmd)], check=True, timeout=30)

    def keys(self, *keys):
        subprocess.run(["tmux", "send-keys", "-t", self.name] + list(keys), check=True,
                       timeout=30)

    def screen(self):
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name],
                              capture_output=True, text=True, timeout=30).stdout

    def wait(self, pred, what):
        """The first screen for which pred holds."""
        def ok():
            s = self.screen()
            return s if pred(s) else None
        return harness.wait_until(ok, SCREEN_TIMEOUT_S, 0.2, what)

    def close(self):
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def table(screen, head):
    """The rows (split) under the header line starting with head, until a
    blank line or the key line."""
    lines = screen.splitlines()
    at = [i for i, l in enumerate(lines) if l.startswith(head)]
    out = []
    for l in lines[at[0] + 1:] if at else []:
        if not l.strip() or l.startswith("q quit"):
            break
        out.append(l.split())
    return out


def rated(rows, col, n=1):
    """The first n rows have a rate in column col (kvmstat shows '-' until
    it has two samples; gauges never have one)."""
    return len(rows) >= n and all(len(r) > col and r[col] != "-" for r in rows[:n])


def capture_top(url, bpf):
    """kvmstat top's screen, then the drill-down into the top row's VM."""
    t = Tmux([KVMSTAT, "top", "--url", url, "-s", "1"], 96, 22)
    try:
        top = t.wait(lambda s: len(table(s, "VM ")) >= 10 and rated(table(s, "VM "), 3, 3),
                     "kvmstat top's table with rates")
        busiest = table(top, "VM ")[0][0]
        t.keys("Enter")

        def drilled(s):
            if "VM %s " % busiest not in s or "Threads" not in s:
                return False
            if not rated(table(s, "vCPU "), 3):
                return False
            return not bpf or rated(table(s, "Exit "), 3)
        drill = t.wait(drilled, "the drill-down into %s with rates" % busiest)
    finally:
        t.close()
    return top, drill


def start_qemu(socket):
    """Debian's QEMU under the preload shim (2 vCPUs, no disk: its firmware
    finds nothing to boot and waits), or None where it cannot run."""
    import qemu
    why = qemu.qemu_usable() or (None if os.access(qemu.SHIM, os.R_OK) else "no shim built")
    if why:
        say("no QEMU guest: %s" % why)
        return None
    vm = qemu.Qemu(socket, name_args=("-name", "guest=%s,debug-threads=on" % QEMU_NAME),
                   smp=2, debug=False)
    try:
        return vm.start(timeout=180)
    except AssertionError as e:
        vm.stop()
        say("no QEMU guest: %s" % str(e).splitlines()[0])
        return None


def make(out, size):
    for path in (harness.KVMSTATD, harness.KVMSTATD + "-worker", harness.DEMO_VMM):
        if not os.access(path, os.X_OK):
            raise AssertionError("%s is missing: make all first" % path)
    if os.geteuid() != 0:
        raise AssertionError("needs root: kvmstatd's helper is privileged")
    d = harness.Daemon(OVERRIDES)
    vmms, vm = [], None
    try:
        d.start(timeout=120)
        bpf = harness.parse_exposition(d.get().text).value("kvmstatd_bpf_enabled") == 1
        say("kvmstatd at %s, exit telemetry %s" % (
            d.url, "on" if bpf else "off (%s)" % " / ".join(d.log_lines("exit telemetry"))))
        for name, vcpus, hz in DEMO_VMS:
            vmm = harness.DemoVmm(d.socket, vcpus=vcpus, hz=hz, qemu_name=name)
            vmms.append(vmm)
            vmm.start(timeout=60)
        vm = start_qemu(d.socket)
        names = [n for n, _, _ in DEMO_VMS] + ([QEMU_NAME] if vm else [])
        harness.wait_for_vms(d, names, timeout=60)
        say("VMs: %s" % ", ".join(names))
        wait_history(d, names)
        say("history full; Chromium")
        with tempfile.TemporaryDirectory(prefix="kvmstat-docs-") as tmp:
            png = os.path.join(tmp, "live-page.png")
            screenshot(d.url + "/", png, size)
            say("kvmstat top in tmux")
            top, drill = capture_top(d.url, bpf)
            shutil.copyfile(png, os.path.join(out, "live-page.png"))
        with open(os.path.join(out, "kvmstat-top.txt"), "w") as f:
            f.write(top.rstrip() + "\n\n" + drill.rstrip() + "\n")
        say("wrote %s and %s" % (os.path.join(out, "live-page.png"),
                                 os.path.join(out, "kvmstat-top.txt")))
    finally:
        if vm:
            vm.stop()
        for vmm in reversed(vmms):
            vmm.stop()
        d.stop(check=False)
        d.kill_all()


def main():
    if len(sys.argv) > 3 or any(a.startswith("-") for a in sys.argv[1:]):
        sys.exit("usage: scripts/docs-screenshots.py [OUTDIR [WIDTH,HEIGHT]]")
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "docs"))
    size = sys.argv[2] if len(sys.argv) > 2 else "1000,660"
    if not re.fullmatch(r"\d+,\d+", size):
        sys.exit("docs-screenshots: WIDTH,HEIGHT, e.g. 1000,660, not %r" % size)
    os.makedirs(out, exist_ok=True)
    why = statsfd.kvm_usable()
    mode = os.environ.get("KVMSTATD_LAB", "auto")
    if os.environ.get("LAB_GUEST") != "1" and mode != "never" and (why or mode == "always"):
        say("no usable /dev/kvm here (%s): running inside the lab's guest (tests/lab/)"
            % (why or "KVMSTATD_LAB=always"))
        sys.exit(in_lab(out, size))
    try:
        make(out, size)
    except (AssertionError, OSError, subprocess.SubprocessError) as e:
        sys.exit("docs-screenshots: %s" % e)


if __name__ == "__main__":
    main()
