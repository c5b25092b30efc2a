"""kvmstat profile: folded stacks of a VM's vCPU threads from perf_event_open.

Without KVM (here and everywhere): the ring-buffer reader and the folding,
proved on real samples of spinning host processes (--pid): host frames
only, the counts add up to the samples it reports, threads started only
once it holds its first events are sampled too, a ring too small for the rate wraps and
loses records that it counts; what it says when the process is gone, the
VM is unknown to the daemon, or the user may not sample.

With KVM (the lab, Debian's stock 6.12 kernel): a demo VM whose vCPUs spin
in the guest is profiled through the daemon; its samples are guest
samples of that VM's vCPU threads only, with the guest's IP and no frame
beyond it (and the notice saying so), named by a System.map made here;
--pid profiles a VMM without the daemon; perf_event_paranoid 2 and 3, and
a user without ptrace rights, get the sentence naming what is missing.
The guest-callchains kernel (its guest frames beyond the IP) is proved by
`make kernel-check`, whose guest runs busybox, not Python.
"""

import errno
import http.server
import json
import os
import mmap
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

import harness
from test_kvmstat import Stub, stub  # noqa: F401 (a fixture)

KVMSTAT = os.path.join(harness.REPO, "cli", "kvmstat")
NOBODY = 65534
IP_ONLY = "guest callchains need the guest-callchains kernel series: IP only"
# The KVM tests' guest stacks are the guest's IP alone: the lab's stock
# kernel never gives a guest frame beyond it (test_patched_kernel.py
# proves the series on the kernel that has it)
STOCK = "expects a stock kernel (without the guest-callchains series): "
REPORT = re.compile(r"kvmstat: profiled (.*) for \S+s at (\d+) Hz: (\d+) samples \((\d+) guest, "
                    r"(\d+) host(, left out)?\), (\d+) lost, (\d+) throttled, (\d+) threads "
                    r"sampled")
PAGE = mmap.PAGESIZE
SPIN_LO, SPIN_HI = 0x1020, 0x1023  # demo/kvmstat-demo-vmm.c: GUEST_SPIN's loop


def kvmstat_cmd(args, user=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("KVMSTAT_")}
    e["HOME"] = tempfile.gettempdir()
    cmd = [KVMSTAT] + list(args)
    if user is not None:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + cmd
    return cmd, e


def kvmstat(*args, timeout=120, user=None):
    cmd, e = kvmstat_cmd(args, user)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=e,
                          stdin=subprocess.DEVNULL)


def kvmstat_started(*args):
    """kvmstat running, for a test that acts while it samples; finish(p)
    gives its CompletedProcess."""
    cmd, e = kvmstat_cmd(args)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=e, stdin=subprocess.DEVNULL)


def finish(p, timeout=120):
    out, err = p.communicate(timeout=timeout)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def perf_fds(pid):
    """How many perf events process pid holds open."""
    n = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            n += os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "anon_inode:[perf_event]"
        except OSError:
            pass
    return n


def wait_for_perf_fds(p, timeout=60):
    """Until kvmstat (Popen p) holds its first events: its first scan of
    the threads is done, and sampling starts."""
    deadline = time.monotonic() + timeout
    while not perf_fds(p.pid):
        assert p.poll() is None, finish(p)
        assert time.monotonic() < deadline, "kvmstat opened no perf event in %d s" % timeout
        time.sleep(0.01)


def folded(r):
    """{stack (frames, root first): count} of a profile's stdout; every line
    must be 'frame;frame count'."""
    out = {}
    for line in r.stdout.splitlines():
        m = re.fullmatch(r"(\S.*) (\d+)", line)
        assert m, "not a folded stack line: %r" % line
        frames = tuple(m.group(1).split(";"))
        assert frames not in out, "stack printed twice: %r" % line
        out[frames] = int(m.group(2))
    return out


def report(r):
    """The end-of-run line on stderr: samples, guest, host, lost, threads."""
    m = REPORT.search(r.stderr)
    assert m, r.stderr
    return {"samples": int(m.group(3)), "guest": int(m.group(4)), "host": int(m.group(5)),
            "lost": int(m.group(7)), "throttled": int(m.group(8)), "threads": int(m.group(9)),
            "hz": int(m.group(2))}


class Spinner:
    """A host process whose main thread waits and N threads spin in Python:
    they start at once, or with wait=True when go() tells it to (a line on
    its stdin); it prints their tids when they run."""

    def __init__(self, threads=2, wait=False):
        code = ("import sys, threading\n"
                "def spin():\n"
                "    while True: pass\n"
                "if %r:\n"
                "    sys.stdin.readline()\n"
                "ts = [threading.Thread(target=spin, daemon=True) for _ in range(%d)]\n"
                "for t in ts: t.start()\n"
                "print(' '.join(str(t.native_id) for t in ts), flush=True)\n"
                "sys.stdin.read()\n" % (wait, threads))
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                     text=True, stdin=subprocess.PIPE)
        self.pid = self.proc.pid

    def go(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def tids(self):
        return [int(t) for t in self.proc.stdout.readline().split()]

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stdin.close()


@pytest.fixture
def spinner():
    made = []

    def make(**kw):
        s = Spinner(**kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.stop()


def load_kvmstat():
    """cli/kvmstat as a module, for what is decided inside it."""
    import importlib.machinery
    import importlib.util
    loader = importlib.machinery.SourceFileLoader("kvmstat_cli", KVMSTAT)
    spec = importlib.util.spec_from_loader("kvmstat_cli", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def perf_allowed_here():
    """Root may sample anything whatever perf_event_paranoid says (CAP_PERFMON)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the test samples with CAP_PERFMON")


# ------------------------------------------------------------ without KVM

def test_profile_of_a_host_process_folds_real_samples(spinner):
    """The spinning threads start only once kvmstat holds the events of its
    first scan (the main thread's): they are sampled because the rescans
    while sampling found them."""
    perf_allowed_here()
    s = spinner(threads=2, wait=True)
    p = kvmstat_started("profile", "--pid", str(s.pid), "--seconds", "4", "--per-vcpu")
    wait_for_perf_fds(p)
    s.go()
    late = s.tids()
    r = finish(p)
    assert r.returncode == 0, r
    n = report(r)
    stacks = folded(r)
    assert n["guest"] == 0 and n["host"] == n["samples"] > 0, r.stderr
    assert sum(stacks.values()) == n["samples"], (n, r.stdout[-2000:])
    assert n["threads"] == 3, r.stderr  # the main thread and the two that came later
    roots = {f[0] for f in stacks}
    assert roots <= {"[thread %d python3]" % t for t in [s.pid] + late}, roots
    # the spinning threads, started after the first scan, have samples of their own
    assert {"[thread %d python3]" % t for t in late} <= roots, (late, roots)
    for frames in stacks:
        assert all(re.match(r"\[(user|kernel)\] \S", f) for f in frames[1:]), frames
    assert IP_ONLY not in r.stderr


def test_profile_ring_wraps_and_counts_lost_records(spinner, tmp_path):
    """One data page per thread: the reader goes round the ring many times;
    stopped (SIGSTOP) for 1.5 s while the thread spins, it cannot keep up,
    and what the kernel could not write is counted from PERF_RECORD_LOST,
    not printed; past --max-stacks distinct stacks, samples go to
    [other stacks]."""
    perf_allowed_here()
    s = spinner(threads=1)
    out = tmp_path / "stacks.folded"
    p = kvmstat_started("profile", "--pid", str(s.pid), "--seconds", "5", "--frequency",
                        "20000", "--ring-pages", "1", "--max-stacks", "2", "--output",
                        str(out))
    wait_for_perf_fds(p)
    time.sleep(1.0)  # the events are enabled: microseconds after they are open
    os.kill(p.pid, signal.SIGSTOP)
    try:
        time.sleep(1.5)
    finally:
        os.kill(p.pid, signal.SIGCONT)
    r = finish(p)
    assert r.returncode == 0 and r.stdout == "", r
    assert os.listdir(tmp_path) == ["stacks.folded"], os.listdir(tmp_path)
    n = report(r)
    print("kvmstat profile, a 1-page ring, stopped 1.5 s: %s" % n)
    stacks = folded(subprocess.CompletedProcess([], 0, out.read_text(), ""))
    assert sum(stacks.values()) == n["samples"] > 0, n
    # a sample record is at least 48 bytes (header, IP, pid and tid, time,
    # a callchain of one): what was read went round the 4 KiB ring twice
    # at least
    assert n["samples"] * 48 > 2 * PAGE, n
    # the kernel had more than a page for it while it was stopped: lost
    assert n["lost"] > 0, n
    # memory is bounded: 2 distinct stacks kept (a spinning interpreter
    # has many more), the rest counted in one line
    assert len(stacks) == 3 and stacks[("[other stacks]",)] > 0, stacks
    assert ", %d samples in [other stacks] past --max-stacks" % stacks[("[other stacks]",)] \
        in r.stderr, r.stderr


def own_perf_fds():
    return perf_fds(os.getpid())


@pytest.mark.parametrize("fails", ["perf_event_open", "mmap", "Ctrl-C"])
def test_profile_closes_what_it_opened_when_a_thread_cannot_be_sampled(spinner, fails):
    """The third thread's event cannot be opened, or its ring mapped, or
    Ctrl-C comes then: the two before it are closed and unmapped, and the
    error says why (Ctrl-C goes up: kvmstat exits 130)."""
    perf_allowed_here()
    k = load_kvmstat()
    s = spinner(threads=3)
    third = sorted([s.pid] + s.tids())[2]
    sampler = k.Sampler(s.pid, None, 99, 1, k.Profile(100, False, False))
    real_open, real_map, opened = sampler.perf.open, sampler.map, []

    def open_(tid, freq):
        if fails == "perf_event_open" and tid == third:
            return -1, errno.EPERM
        opened.append(tid)
        return real_open(tid, freq)

    def map_(fd):
        if fails != "perf_event_open" and opened[-1] == third:
            raise k.ProfileError("no ring") if fails == "mmap" else KeyboardInterrupt()
        return real_map(fd)
    sampler.perf.open, sampler.map = open_, map_
    before = own_perf_fds()
    with pytest.raises(KeyboardInterrupt if fails == "Ctrl-C" else k.ProfileError) as e:
        sampler.run(2)
    assert len(sampler.events) == 2, sampler.events  # these were open when it failed
    assert own_perf_fds() == before, "perf events left open"
    if fails == "mmap":
        assert str(e.value) == "no ring"
    elif fails == "perf_event_open":
        assert str(e.value).startswith("cannot sample pid %d: perf_event_open: " % s.pid)


def test_profile_goes_on_when_a_later_thread_cannot_be_sampled(spinner, capsys):
    """Threads that come while sampling: one that cannot be sampled (here
    out of open files) is said once on stderr, one gone already (ESRCH)
    not at all, and the others are sampled to the end."""
    perf_allowed_here()
    k = load_kvmstat()
    s = spinner(threads=4, wait=True)
    sampler = k.Sampler(s.pid, None, 499, 1, k.Profile(100, False, False))
    real_open, fate = sampler.perf.open, {s.pid: 0}
    fates = [errno.EMFILE, errno.EMFILE, errno.ESRCH, 0]  # of the late threads, as seen

    def open_(tid, freq):
        if tid not in fate:
            fate[tid] = fates[len(fate) - 1]
        if fate[tid]:
            return -1, fate[tid]
        return real_open(tid, freq)
    sampler.perf.open = open_
    failed = []

    def run():
        try:
            sampler.run(3)
        except BaseException as e:
            failed.append(e)
    t = threading.Thread(target=run)
    t.start()
    try:
        deadline = time.monotonic() + 30
        while not sampler.events and t.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert list(sampler.events) == [s.pid], sampler.events
        s.go()
        late = s.tids()
    finally:
        t.join(60)
    assert not failed, failed
    assert sorted(fate) == sorted([s.pid] + late), (fate, late)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "kvmstat: cannot sample pid %d: perf_event_open: Too many open files: " % s.pid), err
    assert err.endswith("; sampling goes on without the threads that came since and cannot "
                        "be sampled\n"), err
    by = {f: {t for t in fate if fate[t] == f} for f in (0, errno.EMFILE, errno.ESRCH)}
    assert sampler.refused == by[errno.EMFILE] and sampler.gone >= 1, (sampler.refused, fate)
    assert set(sampler.events) == by[0] and len(by[0]) == 2, (sampler.events, fate)
    assert sampler.profile.samples > 0


def test_profile_says_when_the_mmap_dup_runs_out_of_files(spinner):
    """Python's mmap (before 3.13) keeps a dup of the fd it maps: with
    the open files limit reached there, the sentence is about open files,
    not locked memory, and counts two per thread."""
    perf_allowed_here()
    import resource
    k = load_kvmstat()
    if k.FDS_PER_THREAD == 1:
        pytest.skip("Python %s's mmap does not dup the fd" % sys.version.split()[0])
    s = spinner(threads=1)
    sampler = k.Sampler(s.pid, None, 99, 1, k.Profile(100, False, False))
    before = own_perf_fds()
    lowest = os.open("/dev/null", os.O_RDONLY)
    os.close(lowest)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest + 1, hard))  # the event, not its dup
    try:
        with pytest.raises(k.ProfileError) as e:
            sampler.run(1)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert str(e.value) == (
        "cannot sample pid %d: mmap: Too many open files: two fds (the event and Python's "
        "mmap's dup of it) per thread (0 threads so far): raise the open files limit "
        "(ulimit -n)" % s.pid), e.value
    assert own_perf_fds() == before


def test_profile_of_a_process_that_is_gone():
    pid = int(open("/proc/sys/kernel/pid_max").read()) - 1
    while os.path.exists("/proc/%d" % pid):
        pid -= 1
    r = kvmstat("profile", "--pid", str(pid), "--seconds", "1")
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr == "kvmstat: no process %d (the VMM is gone)\n" % pid, r


@pytest.mark.parametrize("machine", ["aarch64", "ppc64le", "s390x", "riscv64", "i686"])
def test_profile_refuses_cpus_whose_ring_needs_barriers(monkeypatch, machine):
    """The ring protocol needs memory barriers that Python has not, except
    on x86_64: elsewhere kvmstat refuses, saying so, before any syscall."""
    k = load_kvmstat()
    monkeypatch.setattr(k.platform, "machine", lambda: machine)
    with pytest.raises(k.ProfileError) as e:
        k.Perf()
    assert str(e.value).startswith("kvmstat profile runs on x86_64 only (a 64-bit Python), "
                                   "not %s: reading perf's ring buffer needs memory barriers "
                                   "there that Python cannot express" % machine), e.value


def test_profile_output_is_left_as_it_was_when_the_run_fails(tmp_path):
    """--output is written beside the file and renamed when done: a run
    that fails leaves the old stacks, and no temporary file."""
    pid = int(open("/proc/sys/kernel/pid_max").read()) - 1
    while os.path.exists("/proc/%d" % pid):
        pid -= 1
    out = tmp_path / "stacks.folded"
    out.write_text("[thread 1 old] 7\n")
    r = kvmstat("profile", "--pid", str(pid), "--seconds", "1", "--output", str(out))
    assert r.returncode == 1 and "the VMM is gone" in r.stderr, r
    assert out.read_text() == "[thread 1 old] 7\n"
    assert os.listdir(tmp_path) == ["stacks.folded"], os.listdir(tmp_path)
    r = kvmstat("profile", "--pid", str(pid), "--seconds", "1", "--output",
                str(tmp_path / "no-such-dir" / "x"))
    assert r.returncode == 1 and "No such file or directory" in r.stderr, r


class Silent(http.server.BaseHTTPRequestHandler):
    """Takes the request and answers nothing until told."""
    asked = threading.Event()
    done = threading.Event()

    def do_GET(self):
        Silent.asked.set()
        Silent.done.wait(60)

    def log_message(self, *a):
        pass


def test_profile_interrupted_before_sampling_exits_130_quietly():
    """Ctrl-C while kvmstat waits for the daemon: no traceback, status 130."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        p = kvmstat_started("profile", "--url", "http://127.0.0.1:%d" % srv.server_address[1],
                            "--vm", "x", "--seconds", "1", "--timeout", "60")
        assert Silent.asked.wait(60), finish(p)
        p.send_signal(signal.SIGINT)
        r = finish(p)
    finally:
        Silent.done.set()
        srv.shutdown()
        srv.server_close()
    assert r.returncode == 130 and r.stdout == "" and r.stderr == "", r


def test_profile_usage_errors():
    r = kvmstat("profile", "--seconds", "1")
    assert r.returncode == 2 and "give --vm NAME (through kvmstatd) or --pid PID" in r.stderr
    r = kvmstat("profile", "--pid", "1", "--ring-pages", "3")
    assert r.returncode == 2 and "--ring-pages: a power of 2" in r.stderr
    r = kvmstat("profile", "--pid", "1", "--symbols", "/nonexistent/System.map")
    assert r.returncode == 1 and "System.map" in r.stderr, r


def test_profile_of_an_unknown_vm_says_so(daemon):
    r = kvmstat("profile", "--url", daemon.url, "--vm", "no-such-vm", "--seconds", "1")
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr == ('kvmstat: kvmstatd at %s polls no VM named "no-such-vm" '
                        "(kvmstat list shows them)\n" % daemon.url), r


@pytest.fixture
def fake_api(stub):  # noqa: F811 (test_kvmstat's stub server)
    """put(vms) -> the URL of a server answering /api/v1/vms with them."""
    def put(vms):
        body = json.dumps({"status": "success", "data": {
            "vms": vms, "total": len(vms), "truncated": False}}).encode()
        Stub.answers = {"/api/v1/vms": (200, {"Content-Type": "application/json"}, body)}
        return stub
    return put


def vm_of(pid, comm, tids, name="fake-1"):
    return {"vm": name, "kernel_id": "kvm-%d" % pid, "vmm_pid": pid, "vmm_comm": comm,
            "source": "registered", "vcpus": len(tids), "created": 1.0,
            "vcpu_threads": [{"vcpu": i, "tid": t} for i, t in enumerate(tids)]}


@pytest.mark.parametrize("url", ["http://192.0.2.1:9735", "https://kvm-host-2.example:9735",
                                 "http://[2001:db8::1]:9735"])
def test_profile_refuses_a_remote_daemon(url):
    """The daemon's pids are its host's: asked nothing, kvmstat says so."""
    r = kvmstat("profile", "--url", url, "--vm", "web-1", "--seconds", "1", timeout=30)
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr == ("kvmstat: kvmstatd at %s is on another host, and profiling needs the "
                        "VMM on this host: run kvmstat profile on the VM's host (against its "
                        "own kvmstatd, http://localhost:PORT), or give --pid\n" % url), r


def test_profile_refuses_a_pid_that_is_not_the_vmm(spinner, fake_api):
    """The daemon's vmm_pid is another program here (another pid
    namespace, or the pid was reused): kvmstat samples nothing."""
    s = spinner(threads=1)
    url = fake_api([vm_of(s.pid, "qemu-system-x86", [s.pid + 1])])
    r = kvmstat("profile", "--url", url, "--vm", "fake-1", "--seconds", "1")
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr == ("kvmstat: pid %d is python3 here, the daemon says qemu-system-x86: "
                        "not the VMM (it has exited and its pid is taken, or kvmstatd sees "
                        "another pid namespace)\n" % s.pid), r


def test_profile_of_a_vm_whose_vmm_is_gone(fake_api):
    pid = int(open("/proc/sys/kernel/pid_max").read()) - 1
    while os.path.exists("/proc/%d" % pid):
        pid -= 1
    url = fake_api([vm_of(pid, "qemu-system-x86", [pid])])
    r = kvmstat("profile", "--url", url, "--vm", "fake-1", "--seconds", "1")
    assert r.returncode == 1 and r.stderr == "kvmstat: no process %d (the VMM is gone)\n" % pid


def test_profile_samples_every_thread_when_vcpu_threads_are_only_the_creator(spinner,
                                                                             fake_api):
    """A VMM that creates its vCPUs in the main thread and runs them in
    others (Cloud Hypervisor, Firecracker): every vcpu_threads entry is the
    main thread, so kvmstat samples every thread of the VMM, saying once
    why."""
    perf_allowed_here()
    s = spinner(threads=2)
    spinning = s.tids()
    url = fake_api([vm_of(s.pid, "python3", [s.pid, s.pid])])
    r = kvmstat("profile", "--url", url, "--vm", "fake-1", "--seconds", "2", "--per-vcpu")
    assert r.returncode == 0, r
    assert r.stderr.startswith(
        "kvmstat: kvmstatd gives vCPU thread ids that are not 2 distinct threads of it (they "
        "are the threads that created the vCPUs; this VMM runs them in others) for VM fake-1: "
        "sampling every thread of its VMM (pid %d)\n" % s.pid), r.stderr
    assert r.stderr.count("\n") == 2, r.stderr  # that, and the report
    n = report(r)
    assert n["threads"] == 3 and n["samples"] > 0, n
    roots = {f[0] for f in folded(r)}
    assert {"[thread %d python3]" % t for t in spinning} <= roots, roots


def test_profile_samples_the_vcpu_threads_the_daemon_names(spinner, fake_api):
    perf_allowed_here()
    s = spinner(threads=3)
    spinning = s.tids()
    url = fake_api([vm_of(s.pid, "python3", spinning[:2])])
    r = kvmstat("profile", "--url", url, "--vm", "fake-1", "--seconds", "2", "--per-vcpu")
    assert r.returncode == 0, r
    n = report(r)
    assert n["threads"] == 2 and r.stderr.count("\n") == 1, r.stderr
    assert {f[0] for f in folded(r)} == {"[vcpu 0]", "[vcpu 1]"}, r.stdout


def test_profile_without_a_daemon_says_so():
    url = "http://127.0.0.1:%d" % harness.free_port()
    r = kvmstat("profile", "--url", url, "--vm", "x", "--seconds", "1")
    assert r.returncode == 1 and "no kvmstatd at %s (connection refused)" % url in r.stderr


def test_profile_unprivileged_is_told_what_is_missing(spinner):
    """As nobody, against a process of root's, with this machine's
    perf_event_paranoid: above 1 it names the sysctl and CAP_PERFMON; at 1
    or below, the missing ptrace rights."""
    if os.geteuid() != 0:
        pytest.skip("needs root: to run kvmstat as nobody against root's process")
    s = spinner(threads=1)
    paranoid = int(open("/proc/sys/kernel/perf_event_paranoid").read())
    r = kvmstat("profile", "--pid", str(s.pid), "--seconds", "1", user=NOBODY)
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr.startswith("kvmstat: cannot sample pid %d: perf_event_open: " % s.pid), r
    assert r.stderr.count("\n") == 1, r.stderr
    if paranoid > 1:
        assert "kernel.perf_event_paranoid is %d" % paranoid in r.stderr, r.stderr
        assert "kvmstat has no CAP_PERFMON" in r.stderr, r.stderr
    else:
        assert ("no ptrace rights over it: it runs as uid 0, kvmstat as uid %d" % NOBODY
                in r.stderr), r.stderr


# --------------------------------------------------------------- with KVM

def start_spinning_vms(daemon, demo_vmm, prefix, vms=2, vcpus=2):
    vmm = demo_vmm(daemon.socket, vms=vms, vcpus=vcpus, name_prefix=prefix, extra=["--spin"])
    harness.wait_for_vms(daemon, [vm.name for vm in vmm.vms], timeout=60)
    return vmm


def vcpu_threads(daemon, name):
    r = daemon.get("/api/v1/vms")
    vms = {v["vm"]: v for v in json.loads(r.body)["data"]["vms"]}
    return {t["tid"]: t["vcpu"] for t in vms[name]["vcpu_threads"]}


def spin_ip(frame):
    m = re.fullmatch(r"\[guest\] 0x([0-9a-f]+)", frame)
    return m and SPIN_LO <= int(m.group(1), 16) <= SPIN_HI


@pytest.mark.deadline(300)
def test_profile_of_a_spinning_vm_gives_guest_stacks_per_vcpu(daemon, demo_vmm):
    vmm = start_spinning_vms(daemon, demo_vmm, "prof-")
    name = vmm.vms[0].name
    tids = vcpu_threads(daemon, name)
    assert sorted(tids.values()) == [0, 1], tids
    assert all(os.path.exists("/proc/%d/task/%d" % (vmm.proc.pid, t)) for t in tids), tids
    r = kvmstat("profile", "--url", daemon.url, "--vm", name, "--seconds", "6", "--per-vcpu",
                timeout=240)
    assert r.returncode == 0, r
    n = report(r)
    stacks = folded(r)
    print("kvmstat profile --vm %s: %s" % (name, n))
    assert n["threads"] == 2, r.stderr  # this VM's two vCPUs, not the other VM's
    assert sum(stacks.values()) == n["samples"] > 0
    assert n["guest"] > n["samples"] / 2, n  # the vCPUs spin in the guest
    assert {f[0] for f in stacks} <= {"[vcpu 0]", "[vcpu 1]"}, stacks
    guest = {f: c for f, c in stacks.items() if f[-1].startswith("[guest")}
    assert sum(guest.values()) == n["guest"], stacks
    for frames in guest:  # the stock kernel: the guest's IP, in the spin loop, alone
        assert len(frames) == 2 and spin_ip(frames[1]), STOCK + repr(frames)
    assert {f[0] for f in guest} == {"[vcpu 0]", "[vcpu 1]"}, guest
    assert r.stderr.count(IP_ONLY) == 1, STOCK + r.stderr


@pytest.mark.deadline(300)
def test_profile_names_guest_frames_from_a_system_map(daemon, demo_vmm, tmp_path):
    vmm = start_spinning_vms(daemon, demo_vmm, "prof-sym-", vms=1, vcpus=1)
    smap = tmp_path / "System.map"
    smap.write_text("0000000000001000 T demo_loop\n"
                    "0000000000001008 t demo_timer_handler\n"
                    "0000000000001020 T demo_spin\n"
                    "0000000000001024 B _end\n")
    r = kvmstat("profile", "--url", daemon.url, "--vm", vmm.vms[0].name, "--seconds", "4",
                "--symbols", str(smap), "--guest-only", timeout=240)
    assert r.returncode == 0, r
    n = report(r)
    stacks = folded(r)
    print("kvmstat profile --symbols: %s" % n)
    assert n["guest"] > 0 and sum(stacks.values()) == n["guest"], (n, stacks)
    assert stacks == {("[guest] demo_spin",): n["guest"]}, stacks


@pytest.mark.deadline(300)
def test_profile_by_pid_needs_no_daemon(demo_vmm, tmp_path):
    vmm = demo_vmm(str(tmp_path / "no-daemon.sock"), vms=1, vcpus=2, register=False,
                   extra=["--spin"])
    dead = "http://127.0.0.1:%d" % harness.free_port()  # were it asked, it would fail
    r = kvmstat("profile", "--url", dead, "--pid", str(vmm.proc.pid), "--seconds", "4",
                timeout=240)
    assert r.returncode == 0, r
    n = report(r)
    stacks = folded(r)
    print("kvmstat profile --pid: %s" % n)
    assert n["threads"] >= 3, n  # the main thread and two vCPU threads
    assert sum(stacks.values()) == n["samples"] and n["guest"] > n["samples"] / 2, n
    assert all(spin_ip(f[-1]) for f in stacks if f[-1].startswith("[guest")), stacks
    assert r.stderr.count(IP_ONLY) == 1, STOCK + r.stderr


@pytest.fixture
def paranoid():
    """Set kernel.perf_event_paranoid for the test; restored after."""
    path = "/proc/sys/kernel/perf_event_paranoid"
    with open(path) as f:
        old = f.read().strip()

    def put(v):
        with open(path, "w") as f:
            f.write("%d\n" % v)
    yield put
    with open(path, "w") as f:
        f.write(old + "\n")


@pytest.mark.lab
@pytest.mark.deadline(300)
def test_profile_unprivileged_by_paranoid_level(demo_vmm, tmp_path, paranoid):
    vmm = demo_vmm(str(tmp_path / "no-daemon.sock"), vms=1, vcpus=1, register=False,
                   extra=["--spin"])
    pid = vmm.proc.pid
    head = "kvmstat: cannot sample pid %d: perf_event_open: Permission denied: " % pid
    for level in (3, 2):
        paranoid(level)
        r = kvmstat("profile", "--pid", str(pid), "--seconds", "1", user=NOBODY)
        assert r.returncode == 1 and r.stdout == "", r
        assert r.stderr.startswith(head + "kernel.perf_event_paranoid is %d, which " % level), r
        assert "kvmstat has no CAP_PERFMON" in r.stderr and r.stderr.count("\n") == 1, r
    # root has CAP_PERFMON: even level 3 lets it sample
    r = kvmstat("profile", "--pid", str(pid), "--seconds", "2", timeout=240)
    assert r.returncode == 0 and report(r)["guest"] > 0, r
    paranoid(1)  # kernel samples allowed: what is missing is ptrace rights over root's VMM
    r = kvmstat("profile", "--pid", str(pid), "--seconds", "1", user=NOBODY)
    assert r.returncode == 1, r
    assert r.stderr == (head + "no ptrace rights over it: it runs as uid 0, kvmstat as uid "
                        "%d without CAP_SYS_PTRACE: run kvmstat profile as the VMM's user, "
                        "or with CAP_SYS_PTRACE\n" % NOBODY), r
