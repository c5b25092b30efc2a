"""Real QEMU for the preload-shim tests (tests/integration/test_qemu_shim.py).

Qemu       - starts Debian's qemu-system-x86_64 with the shim preloaded and
             a QMP socket, waits for QMP, kills QEMU on stop() (always).
Qmp        - a minimal QMP client (one command at a time, events skipped).
qmp_expected() - the samples kvmstatd must serve for a QEMU VM, computed
             from QMP `query-stats-schemas` + `query-stats` (QEMU's own
             reading of the stats fds) under the metric-name contract, so
             the oracle shares nothing with the daemon.
SeqpacketServer - a registration socket that misbehaves on purpose.
ioctl_probe() - runs a tiny Python "VMM" (with or without the shim) that
             makes KVM ioctls through libc's ioctl() and reports results.

Every wait has a deadline.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import harness
import statsfd

QEMU = shutil.which("qemu-system-x86_64") or "/usr/bin/qemu-system-x86_64"
SHIM = os.path.join(harness.BUILD, "libkvmstat-preload.so")
SHIM_LOG_PREFIX = "kvmstat-preload["


def qemu_usable():
    """None when QEMU can be run here, else why not."""
    if not os.access(QEMU, os.X_OK):
        return "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
    return None


# ---------------------------------------------------------------------- QMP

class Qmp:
    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        greeting = self._read()
        assert "QMP" in greeting, greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                continue
            if "error" in r:
                raise AssertionError("QMP %s: %s" % (name, r["error"]))
            return r["return"]

    def close(self):
        self.sock.close()


# --------------------------------------------------------------------- QEMU

class Qemu:
    """qemu-system-x86_64 -accel kvm ... with LD_PRELOAD=the shim.

    name_args: the -name option(s), e.g. ("-name", "foo"); socket: the
    KVMSTAT_SOCKET value (None: unset); preload False runs QEMU without the
    shim; debug sets KVMSTAT_PRELOAD_DEBUG=1; daemonize runs QEMU with
    -daemonize (it forks before it makes the VM; .pid is the daemon's)."""

    def __init__(self, socket_path, name_args=("-name", "guest=shimtest,debug-threads=on"),
                 smp=4, stopped=False, preload=True, debug=True, env=None, daemonize=False):
        self.dir = tempfile.mkdtemp(prefix="kvmstat-qemu-")
        self.qmp_path = os.path.join(self.dir, "qmp.sock")
        self.args = [QEMU, "-accel", "kvm", "-smp", str(smp), "-m", "64", "-display", "none",
                     "-nodefaults"] + list(name_args)
        if stopped:
            self.args.append("-S")
        self.daemonize = daemonize
        self.pidfile = os.path.join(self.dir, "qemu.pid")
        self.daemon_pid = None
        if daemonize:
            self.args += ["-daemonize", "-pidfile", self.pidfile]
        self.args += ["-qmp", "unix:%s,server=on,wait=off" % self.qmp_path]
        self.env = dict(os.environ)
        for k in ("LD_PRELOAD", "KVMSTAT_SOCKET", "KVMSTAT_NAME", "KVMSTAT_PRELOAD_DEBUG"):
            self.env.pop(k, None)
        if preload:
            self.env["LD_PRELOAD"] = SHIM
        if socket_path is not None:
            self.env["KVMSTAT_SOCKET"] = socket_path
        if debug:
            self.env["KVMSTAT_PRELOAD_DEBUG"] = "1"
        self.env.update(env or {})
        self.proc = None
        self.qmp = None
        self.started_in = None

    def start(self, timeout=20.0):
        if not os.access(SHIM, os.R_OK):
            raise AssertionError("%s is missing: build it first (make)" % SHIM)
        self._err = tempfile.TemporaryFile()
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.args, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._err, close_fds=True)
        deadline = t0 + timeout
        if self.daemonize:
            # the foreground QEMU exits 0 once its daemon is initialised
            rc = self.proc.wait(timeout)
            if os.path.exists(self.pidfile):
                with open(self.pidfile) as f:
                    self.daemon_pid = int(f.read().strip())
            if rc != 0 or self.daemon_pid is None:
                raise AssertionError("QEMU -daemonize exited with %s, pid file %s:\n%s"
                                     % (rc, self.daemon_pid, self.stderr()))
        while True:
            if self.daemon_pid is None and self.proc.poll() is not None:
                raise AssertionError("QEMU exited with %s before QMP was up:\n%s"
                                     % (self.proc.returncode, self.stderr()))
            if os.path.exists(self.qmp_path):
                try:
                    self.qmp = Qmp(self.qmp_path)
                    break
                except OSError:
                    pass
            if time.monotonic() >= deadline:
                raise AssertionError("QEMU's QMP not up after %.0fs:\n%s" % (timeout, self.stderr()))
            time.sleep(0.05)
        self.started_in = time.monotonic() - t0
        return self

    @property
    def pid(self):
        return self.daemon_pid if self.daemon_pid is not None else self.proc.pid

    def alive(self):
        return harness.proc_alive(self.pid)

    def stderr(self):
        self._err.seek(0)
        return self._err.read().decode("utf-8", "replace")

    def shim_lines(self):
        return [l for l in self.stderr().splitlines() if l.startswith(SHIM_LOG_PREFIX)]

    def wait_shim_lines(self, pred, timeout=10.0, what="shim log lines"):
        """The shim's lines once pred(lines) holds."""
        def ok():
            lines = self.shim_lines()
            return lines if pred(lines) else None
        try:
            return harness.wait_until(ok, timeout, 0.05, what)
        except AssertionError as e:
            raise AssertionError("%s; stderr:\n%s" % (e, self.stderr())) from None

    def stop(self):
        """Kill QEMU (SIGKILL: nothing to save) and clean up; idempotent."""
        if self.qmp is not None:
            try:
                self.qmp.close()
            except OSError:
                pass
            self.qmp = None
        if self.daemon_pid is not None and harness.proc_alive(self.daemon_pid):
            if harness.proc_comm(self.daemon_pid) == "qemu-system-x86":
                os.kill(self.daemon_pid, signal.SIGKILL)
            try:
                harness.wait_until(lambda: not harness.proc_alive(self.daemon_pid), 10.0)
            except AssertionError:
                pass
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            self._err.close()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


# ----------------------------------------------------------- vCPU numbering

def _width(count):
    """Bits of an x86 APIC ID field holding `count` values."""
    return (count - 1).bit_length() if count > 1 else 0


def vcpu_ids(qmp):
    """{qom-path: KVM vCPU id} of a QEMU x86 guest. QEMU creates each KVM
    vCPU with its APIC ID, which is what the kernel writes into the vCPU
    stats fd's id (kvm-<tid>/vcpu-<id>) and so what kvmstatd's `vcpu`
    label holds. The APIC ID packs the topology ids into bit fields sized
    for the machine's smp counts (thread, core, die, socket)."""
    smp = qmp.cmd("qom-get", path="/machine", property="smp")
    smt_w, core_w, die_w = _width(smp["threads"]), _width(smp["cores"]), _width(smp["dies"])
    out = {}
    for cpu in qmp.cmd("query-cpus-fast"):
        p = cpu["props"]
        out[cpu["qom-path"]] = ((p.get("socket-id", 0) << (smt_w + core_w + die_w))
                                | (p.get("die-id", 0) << (smt_w + core_w))
                                | (p.get("core-id", 0) << smt_w)
                                | p.get("thread-id", 0))
    return out


# ----------------------------------------------------------------- oracle

QMP_TYPES = {"cumulative": statsfd.TYPE_CUMULATIVE, "instant": statsfd.TYPE_INSTANT,
             "peak": statsfd.TYPE_PEAK, "linear-histogram": statsfd.TYPE_LINEAR_HIST,
             "log2-histogram": statsfd.TYPE_LOG_HIST}
QMP_UNITS = {None: statsfd.UNIT_NONE, "bytes": statsfd.UNIT_BYTES,
             "seconds": statsfd.UNIT_SECONDS, "cycles": statsfd.UNIT_CYCLES,
             "boolean": statsfd.UNIT_BOOLEAN}
QMP_BASES = {None: statsfd.BASE_POW10, 10: statsfd.BASE_POW10, 2: statsfd.BASE_POW2}


def qmp_hist_reversed(qmp):
    """True when this QEMU lists histogram buckets last first. QEMU 7.2
    builds the list by prepending bucket 0, 1, ... in turn, so QMP shows the
    kernel's last bucket first (seen here: a 1.2 s halt, whose log2 bucket
    is the last, at index 0). check_hist_sums() proves the orientation on
    the data itself."""
    v = qmp.cmd("query-version")["qemu"]
    return (v["major"], v["minor"]) <= (7, 2)


def check_hist_sums(values, schemas, where):
    """Oracle self-check, independent of kvmstatd: every log2 histogram
    X_hist must agree with its cumulative twin X_ns (the kernel adds the
    same value to both): sum(count_i * 2^(i-1)) <= X_ns <= sum(count_i *
    (2^i - 1)), the last bucket unbounded."""
    for name, hist in values.items():
        if schemas[name]["type"] != "log2-histogram" or not name.endswith("_hist"):
            continue
        twin = name[: -len("_hist")] + "_ns"
        if twin not in values:
            continue
        lo = sum(c * (2 ** (i - 1) if i else 0) for i, c in enumerate(hist))
        hi = sum(c * (2 ** i - 1) for i, c in enumerate(hist[:-1])) + (
            float("inf") if hist[-1] else 0)
        assert lo <= values[twin] <= hi, (
            "%s: QMP's %s %r does not fit %s = %d (bucket order?)"
            % (where, name, hist, twin, values[twin]))


def qmp_stats(qmp):
    """QEMU's view of the stats: (schemas, vm, vcpus) with schemas
    {target: {name: schema}}, vm {name: value} and vcpus {qom-path: {name:
    value}}; values are ints or lists of ints (histograms, bucket 0 first)."""
    schemas = {}
    for prov in qmp.cmd("query-stats-schemas", provider="kvm"):
        schemas[prov["target"]] = {s["name"]: s for s in prov["stats"]}
    reverse = qmp_hist_reversed(qmp)

    def flat(stats):
        out = {}
        for s in stats:
            v = s["value"]
            if isinstance(v, bool):
                v = int(v)
            elif isinstance(v, list) and reverse:
                v = v[::-1]
            out[s["name"]] = v
        return out

    vm = {}
    for r in qmp.cmd("query-stats", target="vm", providers=[{"provider": "kvm"}]):
        vm.update(flat(r["stats"]))
    vcpus = {}
    for r in qmp.cmd("query-stats", target="vcpu", providers=[{"provider": "kvm"}]):
        vcpus[r["qom-path"]] = flat(r["stats"])
        check_hist_sums(vcpus[r["qom-path"]], schemas["vcpu"], r["qom-path"])
    check_hist_sums(vm, schemas["vm"], "vm")
    return schemas, vm, vcpus


def _desc(schema, value):
    flags = (QMP_TYPES[schema["type"]] << statsfd.TYPE_SHIFT
             | QMP_UNITS[schema.get("unit")] << statsfd.UNIT_SHIFT
             | QMP_BASES[schema.get("base")] << statsfd.BASE_SHIFT)
    size = len(value) if isinstance(value, list) else 1
    return statsfd.Desc(flags, schema.get("exponent", 0), size, 0,
                        schema.get("bucket-size", 0), schema["name"])


def expected_from_qmp(schemas, values, scope, labels):
    """{(sample, frozenset(labels)): value} kvmstatd must serve for one VM
    (scope "vm") or vCPU ("vcpu") whose QMP stats are `values`, following
    the README's naming contract (statsfd.Desc holds the test suite's
    reading of it): unit suffix and scaling, _total for counters, gauges,
    histograms with cumulative `le` buckets and _count, and a cumulative
    stat named like a histogram family as that histogram's _sum."""
    descs = [_desc(schemas[name], v) for name, v in values.items()]
    hist_fams = {d.family(scope) for d in descs if d.is_hist}
    out = {}

    def put(sample, extra, value):
        lab = dict(labels)
        lab.update(extra)
        key = (sample, frozenset(lab.items()))
        assert key not in out, "two QMP stats map to %r" % (key,)
        out[key] = value

    for d in descs:
        fam, raw, mt = d.family(scope), values[d.name], d.metric_type()
        if mt == "histogram":
            acc = 0
            for ub, count in zip(d.upper_bounds(), raw):
                acc += count
                put(fam + "_bucket", {"le": statsfd.le_key(ub)}, float(acc))
            put(fam + "_count", {}, float(acc))
        elif mt == "counter" and fam in hist_fams:
            put(fam + "_sum", {}, d.scale(raw))
        elif mt == "counter":
            put(fam + "_total", {}, d.scale(raw))
        else:
            put(fam, {}, d.scale(raw))
    return out


def served_for(expo, vm_name):
    """The kvm_vm_*/kvm_vcpu_* samples of one VM in a scrape (no kvm_vm_info)."""
    return {k: v for k, v in expo.samples.items()
            if harness.from_stats_fds(k[0])
            and dict(k[1]).get("vm") == vm_name}


# -------------------------------------------------------- hostile listeners

def _fmt(key):
    return "%s{%s}" % (key[0], ",".join('%s="%s"' % kv for kv in sorted(key[1])))


def check_served_equals_qmp(daemon, vm, vm_name, smp):
    """The oracle for a stopped QEMU guest: every series daemon serves for
    vm_name and its smp vCPUs equals QEMU's own query-stats, exactly (the
    same stats fds, read by QEMU itself). Asserts; returns the scrape."""
    daemon.settled()  # a poll tick after the last change
    ids = vcpu_ids(vm.qmp)
    assert sorted(ids.values()) == list(range(smp)), ids

    for attempt in range(5):
        schemas, before_vm, before_vcpus = qmp_stats(vm.qmp)
        expo = daemon.scrape(le_key=statsfd.le_key)
        _, after_vm, after_vcpus = qmp_stats(vm.qmp)
        if (before_vm, before_vcpus) == (after_vm, after_vcpus):
            break
        daemon.settled()  # something moved (e.g. the kernel's NX recovery): again
    else:
        raise AssertionError("QMP query-stats kept changing on a stopped guest")

    expected = expected_from_qmp(schemas["vm"], after_vm, "vm", {"vm": vm_name})
    assert set(after_vcpus) == set(ids), (sorted(after_vcpus), ids)
    for path, values in after_vcpus.items():
        expected.update(expected_from_qmp(schemas["vcpu"], values, "vcpu",
                                          {"vm": vm_name, "vcpu": str(ids[path])}))
    served = served_for(expo, vm_name)

    missing = sorted(set(expected) - set(served))
    extra = sorted(set(served) - set(expected))
    assert not missing and not extra, (
        "series differ from QMP's:\nmissing (%d): %s\nnot in QMP (%d): %s"
        % (len(missing), [_fmt(k) for k in missing[:15]], len(extra),
           [_fmt(k) for k in extra[:15]]))
    wrong = ["%s = %r, QMP says %r" % (_fmt(k), served[k], v)
             for k, v in sorted(expected.items()) if served[k] != v]
    assert not wrong, "%d of %d values differ:\n%s" % (len(wrong), len(expected),
                                                       "\n".join(wrong[:20]))

    # A well-chosen few, spelled out, so a mapping bug cannot hide in both
    # the oracle and the daemon.
    for cpu_path, idx in ids.items():
        v = after_vcpus[cpu_path]
        lab = {"vm": vm_name, "vcpu": str(idx)}
        assert expo.value("kvm_vcpu_exits_total", **lab) == v["exits"]
        assert expo.value("kvm_vcpu_halt_exits_total", **lab) == v["halt_exits"]
        assert expo.value("kvm_vcpu_io_exits_total", **lab) == v["io_exits"]
        assert expo.value("kvm_vcpu_blocking", **lab) == v["blocking"] == 0
        assert expo.value("kvm_vcpu_halt_wait_seconds_sum", **lab) == v["halt_wait_ns"] / 1e9
        assert expo.value("kvm_vcpu_halt_wait_seconds_count", **lab) == sum(v["halt_wait_hist"])
    assert sum(after_vcpus[p]["exits"] for p in ids) > 0, "the guest never ran"
    assert expo.value("kvm_vm_remote_tlb_flush_total", vm=vm_name) == after_vm["remote_tlb_flush"]
    assert expo.value("kvm_vm_pages_4k", vm=vm_name) == after_vm["pages_4k"]
    assert expo.value("kvm_vm_mmu_shadow_zapped_total", vm=vm_name) == after_vm["mmu_shadow_zapped"]
    return expo


class SeqpacketServer:
    """A registration socket that misbehaves. mode:
      "close"   - accepts and closes every connection at once
      "silent"  - accepts and never answers (the client's reply wait expires)
      "backlog" - never accepts, and its backlog is kept full (connect waits)
    """

    def __init__(self, path, mode):
        self.path, self.mode = path, mode
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        self.sock.listen(0 if mode == "backlog" else 16)
        self.held = []
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = None
        if mode == "backlog":
            # fill the queue: further connects block until their timeout
            for _ in range(4):
                c = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
                c.setblocking(False)
                try:
                    c.connect(path)
                except (BlockingIOError, InterruptedError):
                    c.close()
                    break
                self.held.append(c)
            assert self.held, "could not fill the backlog"
        else:
            self.sock.settimeout(0.1)
            self._thread = threading.Thread(target=self._serve, daemon=True)
            self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            if self.mode == "close":
                conn.close()
            else:
                self.held.append(conn)

    def close(self):
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        for c in self.held:
            c.close()
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


# ------------------------------------------------------------ ioctl probe

# A Python "VMM": every fcntl.ioctl() below goes through libc's ioctl(),
# which the shim interposes. It prints one JSON object per step: the
# result (fd or 0) or the errno, and which fds the process gained.
PROBE = r"""
import fcntl, json, os, sys, time
KVM_CREATE_VM, KVM_CREATE_VCPU = 0xAE01, 0xAE41

def fds():
    # F_GETFD opens nothing (listing /proc/self/fd would add an fd of its own)
    out = []
    for fd in range(1024):
        try:
            fcntl.fcntl(fd, fcntl.F_GETFD)
            out.append(fd)
        except OSError:
            pass
    return out

def step(name, fd, req, arg):
    before = fds()
    try:
        r = fcntl.ioctl(fd, req, arg)
        res = {"ret": "fd" if r > 2 else r, "errno": 0}
    except OSError as e:
        r, res = -1, {"ret": -1, "errno": e.errno}
    after = fds()
    gained = [f for f in after if f not in before]
    res["gained"] = len(gained)
    res["gained_is_result"] = gained == ([r] if r > 2 else [])
    out.append([name, res])
    return r

out = []
kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
step("create_vm on /dev/null", null, KVM_CREATE_VM, 0)
step("create_vm bad type", kvm, KVM_CREATE_VM, 0x7fffffff)
step("create_vcpu on bad fd", 987, KVM_CREATE_VCPU, 0)
step("create_vcpu on /dev/kvm", kvm, KVM_CREATE_VCPU, 0)
vm = step("create_vm", kvm, KVM_CREATE_VM, 0)
step("create_vcpu 0", vm, KVM_CREATE_VCPU, 0)
step("create_vcpu 0 again", vm, KVM_CREATE_VCPU, 0)
step("create_vcpu huge id", vm, KVM_CREATE_VCPU, 1 << 30)
step("create_vcpu 1", vm, KVM_CREATE_VCPU, 1)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    out = []
    step("child: create_vcpu on parent's vm", vm, KVM_CREATE_VCPU, 2)
    cvm = step("child: create_vm", kvm, KVM_CREATE_VM, 0)
    step("child: create_vcpu 0", cvm, KVM_CREATE_VCPU, 0)
    os.write(w, json.dumps(out).encode())
    os.close(w)
    if sys.argv[1:] == ["hold"]:
        time.sleep(float(sys.argv[2]) if len(sys.argv) > 2 else 5)
    os._exit(0)
os.close(w)
child = b""
while True:
    b = os.read(r, 65536)
    if not b:
        break
    child += b
os.waitpid(pid, 0)
out += json.loads(child)
print(json.dumps(out), flush=True)
if sys.argv[1:2] == ["hold"]:
    sys.stdin.read()
"""


def ioctl_probe(socket_path, preload=True, env=None, timeout=30.0):
    """Run PROBE; returns (steps, stderr) with steps [[name, result], ...]."""
    e = dict(os.environ)
    for k in ("LD_PRELOAD", "KVMSTAT_SOCKET", "KVMSTAT_NAME", "KVMSTAT_PRELOAD_DEBUG"):
        e.pop(k, None)
    if preload:
        e["LD_PRELOAD"] = SHIM
    if socket_path is not None:
        e["KVMSTAT_SOCKET"] = socket_path
    e.update(env or {})
    p = subprocess.run([sys.executable, "-c", PROBE], env=e, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout)
    assert p.returncode == 0, "probe failed (%d):\n%s" % (p.returncode, p.stderr.decode())
    return json.loads(p.stdout), p.stderr.decode("utf-8", "replace")


class HeldVmm:
    """A Python process that makes one VM with `vcpus` vCPUs through libc's
    ioctl() (so through the shim when preloaded) and keeps them until
    stop(). Prints READY when done."""

    SCRIPT = r"""
import fcntl, os, sys
kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
vm = fcntl.ioctl(kvm, 0xAE01, 0)
for i in range(int(sys.argv[1])):
    fcntl.ioctl(vm, 0xAE41, i)
print("READY", flush=True)
sys.stdin.read()
"""

    def __init__(self, socket_path, vcpus=1, env=None, argv=()):
        e = dict(os.environ)
        for k in ("LD_PRELOAD", "KVMSTAT_SOCKET", "KVMSTAT_NAME", "KVMSTAT_PRELOAD_DEBUG"):
            e.pop(k, None)
        e.update({"LD_PRELOAD": SHIM, "KVMSTAT_SOCKET": socket_path,
                  "KVMSTAT_PRELOAD_DEBUG": "1"})
        e.update(env or {})
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-c", self.SCRIPT, str(vcpus)] + list(argv),
                                     env=e, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, close_fds=True)
        line = self._readline(15.0)
        assert line == "READY", "held VMM said %r:\n%s" % (line, self.stderr())

    def _readline(self, timeout):
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            if not sel.select(timeout):
                return None
            return self.proc.stdout.readline().decode().strip()
        finally:
            sel.close()

    @property
    def pid(self):
        return self.proc.pid

    def stderr(self):
        self._err.seek(0)
        return self._err.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.proc.stdin.close()
        self.proc.stdout.close()
        self._err.close()
        self.proc = None
