"""Processes and protocols around kvmstatd for the integration tests.

Daemon   - writes a temp config, starts build/kvmstatd, waits until it is
           ready (GET /-/healthy is 200 and the registration socket exists),
           finds the worker, stops it and checks that it stopped cleanly.
DemoVmm  - starts build/kvmstat-demo-vmm and parses its VM lines up to READY.
http()   - one HTTP request with a timeout, any status returned.
parse_exposition() - a small, strict parser of the text exposition written
           for these tests (independent of the daemon and of prometheus_client).

Every wait has a deadline: no test may hang.
"""

import contextlib
import gzip
import http.client as httpclient
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# KVMSTATD_BUILD_DIR runs the suite against another build (e.g. a sanitizer one)
BUILD = os.environ.get("KVMSTATD_BUILD_DIR") or os.path.join(REPO, "build")
KVMSTATD = os.path.join(BUILD, "kvmstatd")
DEMO_VMM = os.path.join(BUILD, "kvmstat-demo-vmm")
SHIPPED_CONFIG = os.path.join(REPO, "config", "kvmstatd.ini")

POLL_INTERVAL_MS = 200
EXIT_GRACE_MS = 1500
# long enough for the daemon to have polled after a read of ours
SETTLE = 2.5 * POLL_INTERVAL_MS / 1000.0

TEXT_CT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CT = "application/openmetrics-text; version=1.0.0; charset=utf-8"
# what a Prometheus server sends
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,"
                     "application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def worker_user():
    """The user the test daemons' workers run as: kvmstatd when
    scripts/install-deps.sh created it, else nobody."""
    for name in ("kvmstatd", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    raise RuntimeError("neither user kvmstatd nor nobody exists")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until it returns a true value; returns it or raises."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# ------------------------------------------------------------------- /proc

def proc_status(pid):
    """/proc/<pid>/status as a dict, or None when the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            return dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
    except (FileNotFoundError, ProcessLookupError):
        return None


def proc_alive(pid):
    """True while pid exists and is not a zombie."""
    st = proc_status(pid)
    return st is not None and not st.get("State", "").startswith(("Z", "X"))


def proc_comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().rstrip("\n")
    except OSError:
        return None


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except OSError:
        return None


# A serving worker's command line. The helper also runs the worker program
# as "kvmstatd-worker --check-config" for a moment (start-up, reload):
# that one is not the worker.
WORKER_CMDLINE = b"kvmstatd-worker\0"


def is_worker(pid):
    return proc_comm(pid) == "kvmstatd-worker" and proc_cmdline(pid) == WORKER_CMDLINE


def children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_status(int(d))
        if st and st.get("PPid") == str(pid):
            out.append(int(d))
    return out


def fd_links(pid):
    """{fd: link target} of a process (empty when it is gone)."""
    out = {}
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return out
    for n in names:
        try:
            out[int(n)] = os.readlink("/proc/%d/fd/%s" % (pid, n))
        except OSError:
            pass
    return out


def kvm_stats_links(pid):
    return {fd: l for fd, l in fd_links(pid).items()
            if l == "anon_inode:kvm-vm-stats" or l.startswith("anon_inode:kvm-vcpu-stats")}


# -------------------------------------------------------------------- HTTP

class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    @property
    def text(self):
        body = self.body
        if (self.header("Content-Encoding") or "").lower() == "gzip":
            body = gzip.decompress(body)
        return body.decode("utf-8")


def http(url, path="/", method="GET", headers=None, body=None, timeout=5.0):
    m = re.fullmatch(r"http://([^/:]+):(\d+)", url)
    conn = httpclient.HTTPConnection(m.group(1), int(m.group(2)), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


# -------------------------------------------------------------- exposition

_SAMPLE_RE = re.compile(
    r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ ]+(\S+)(?:[ ]+(-?\d+(?:\.\d+)?))?$")
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def _unescape(v):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}.get(m.group(1), "\\" + m.group(1)), v)


def parse_float(s):
    if s in ("+Inf", "Inf"):
        return float("inf")
    if s == "-Inf":
        return float("-inf")
    if s == "NaN":
        return float("nan")
    return float(s)


class Exposition:
    """samples: {(name, frozenset(labels)): value}; types: {name: type};
    helps: {name: text}; order: list of sample names in order."""

    def __init__(self):
        self.samples, self.types, self.helps, self.order = {}, {}, {}, []

    def matching(self, name=None, prefix=None, **labels):
        out = {}
        for (n, lab), v in self.samples.items():
            if name is not None and n != name:
                continue
            if prefix is not None and not n.startswith(prefix):
                continue
            d = dict(lab)
            if all(d.get(k) == str(val) for k, val in labels.items()):
                out[(n, lab)] = v
        return out

    def value(self, name, **labels):
        m = self.matching(name, **labels)
        if len(m) != 1:
            raise AssertionError("%d series match %s%r" % (len(m), name, labels))
        return next(iter(m.values()))

    def total(self, name, **labels):
        return sum(self.matching(name, **labels).values())


def parse_exposition(text, le_key=None):
    """Strict line parser for text 0.0.4 / OpenMetrics samples. Duplicate
    series and malformed lines raise AssertionError. `le` labels are passed
    through le_key() when it is given."""
    e = Exposition()
    for ln, line in enumerate(text.split("\n"), 1):
        if not line or line == "# EOF":
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                e.types[parts[2]] = parts[3] if len(parts) > 3 else ""
            elif len(parts) >= 3 and parts[1] == "HELP":
                e.helps[parts[2]] = parts[3] if len(parts) > 3 else ""
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise AssertionError("line %d does not parse: %r" % (ln, line))
        name, lstr, val = m.group(1), m.group(2), m.group(3)
        labels = {}
        if lstr:
            pos = 0
            lstr = lstr.rstrip(",")
            while pos < len(lstr):
                lm = _LABEL_RE.match(lstr, pos)
                if not lm:
                    raise AssertionError("line %d: bad labels %r" % (ln, lstr))
                k, v = lm.group(1), _unescape(lm.group(2))
                if k in labels:
                    raise AssertionError("line %d: label %s twice" % (ln, k))
                labels[k] = le_key(v) if (k == "le" and le_key) else v
                pos = lm.end()
        key = (name, frozenset(labels.items()))
        if key in e.samples:
            raise AssertionError("line %d: duplicate series %r" % (ln, line))
        e.samples[key] = parse_float(val)
        e.order.append(name)
    return e


# --------------------------------------------------------------- fd leaks
# "No fd leaks, ever": every Daemon notes its helper's and worker's fd
# counts once ready, and after each test (conftest.py) and before each stop
# they must be back at or under them. While the daemon holds VMs, the fds a
# VM legitimately holds are left out of the count (stats fds, pidfds of
# VMMs, schedstat files); the worker's sockets are always left out (HTTP
# clients come and go at the test's pace, and no registration fd ever
# reaches the worker but stats fds).

VM_HELD_FDS = ("anon_inode:kvm-vm-stats", "anon_inode:kvm-vcpu-stats:", "anon_inode:[pidfd]",
               "/proc/")
FD_LEAK_TIMEOUT = EXIT_GRACE_MS / 1000.0 + 3.0
LIVE_DAEMONS = []


def fd_tally(pid, skip=(), skip_links=frozenset()):
    """The link names of pid's fds but those starting with one of skip and
    those in skip_links."""
    return sorted(l for l in fd_links(pid).values()
                  if not l.startswith(tuple(skip)) and l not in skip_links)


def unix_connections(path):
    """Links ("socket:[inode]") of the connected sockets bound to path: the
    server's ends of its connections (the listening socket is unconnected)."""
    out = set()
    try:
        with open("/proc/net/unix") as f:
            next(f)
            for line in f:
                cols = line.split()
                # Num RefCount Protocol Flags Type St Inode Path
                if len(cols) >= 8 and cols[7] == path and cols[5] == "03":
                    out.add("socket:[%s]" % cols[6])
    except OSError:
        pass
    return frozenset(out)


def _kind(link):
    """socket:[123] -> socket: what an fd is, without its inode number."""
    return re.sub(r":\[\d+\]$", "", link)


# ------------------------------------------------------------------ daemon

BPF_ON = {("daemon", "bpf"): "auto"}


def require_bpf(d):
    """The exit telemetry must load on every kernel the suite runs on (the
    host's, the lab's): where it did not, fail with the daemon's reason
    rather than skip, or a broken BPF object would pass unseen."""
    import pytest  # here, not at the top: scripts import the harness on the standard library
    if parse_exposition(d.get().text).value("kvmstatd_bpf_enabled") != 1:
        pytest.fail("the exit telemetry did not load: %s"
                    % (" / ".join(d.log_lines("exit telemetry")) or "no reason logged"),
                    pytrace=False)
    return d


def write_config(path, socket_path, port, user, overrides=None):
    sections = {
        # Exit telemetry adds families the stats-fd tests do not predict and
        # counts every vCPU thread on the host: off unless a test asks
        # (test_bpf_*.py pass BPF_ON).
        "daemon": {"user": user, "bpf": "off"},
        "registration": {"socket": socket_path, "socket_mode": "0660"},
        "poll": {"interval_ms": str(POLL_INTERVAL_MS), "exit_grace_ms": str(EXIT_GRACE_MS)},
        "http": {"listen": "127.0.0.1:%d" % port},
        # Discovery sees every VMM on the host, other tests' too (and this
        # pytest process, which holds VMs of its own): off unless a test
        # asks for it, so that each daemon sees only its own test's VMs.
        "discovery": {"enabled": "no"},
    }
    for (sec, key), val in (overrides or {}).items():
        sections.setdefault(sec, {})[key] = val
    with open(path, "w") as f:
        f.write("; written by tests/integration/harness.py\n")
        for sec, kv in sections.items():
            f.write("[%s]\n" % sec)
            for k, v in kv.items():
                f.write("%s = %s\n" % (k, v))


class Daemon:
    """A kvmstatd of a test's own: temp config, socket and log."""

    def __init__(self, overrides=None, user=None, listen_port=None, args=(), prefix=(),
                 env=None, owns_socket=True):
        """listen_port: pass --listen 127.0.0.1:PORT on the command line
        (the config then names another port, which must stay unused).
        args: more command-line flags, e.g. ["--sandbox-selftest"].
        prefix: a command that execs kvmstatd (systemd-socket-activate ...).
        env: variables added to the daemon's environment.
        owns_socket: False when the registration socket is not the
        daemon's (socket activation): it then stays after a stop."""
        self.dir = tempfile.mkdtemp(prefix="kvmstatd-it-")
        # a directory the helper must create itself
        self.socket = os.path.join(self.dir, "run", "register.sock")
        self.config_port = free_port()
        self.port = listen_port or self.config_port
        self.url = "http://127.0.0.1:%d" % self.port
        self.args = [KVMSTATD, "--config", None]
        if listen_port:
            self.args += ["--listen", "127.0.0.1:%d" % listen_port]
        self.args += list(args)
        self.user = user or worker_user().pw_name
        self.config = os.path.join(self.dir, "kvmstatd.ini")
        self.args[2] = self.config
        write_config(self.config, self.socket, self.config_port, self.user, overrides)
        self.log_path = os.path.join(self.dir, "kvmstatd.log")
        self.proc = None
        self._workers = set()
        self.fd_baseline = None
        self.prefix = list(prefix)
        self.env = env
        self.owns_socket = owns_socket

    def launch(self):
        """Start the process and return at once (start() also waits until
        it is ready)."""
        self._log = open(self.log_path, "wb")
        env = None
        if self.env is not None:
            env = dict(os.environ)
            env.update(self.env)
        self.proc = subprocess.Popen(self.prefix + self.args, env=env,
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, close_fds=True)
        return self

    def start(self, timeout=30.0):
        # a deadline against a daemon that never gets ready, not a figure:
        # under emulation (the lab) a start takes seconds
        self.launch()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("kvmstatd exited with %s before it was ready:\n%s"
                                     % (self.proc.returncode, self.log()))
            if os.path.exists(self.socket) and self._healthy():
                break
            if time.monotonic() >= deadline:
                raise AssertionError("kvmstatd not ready after %.0fs:\n%s" % (timeout, self.log()))
            time.sleep(0.05)
        worker = self.worker_pid()
        self.fd_baseline = (self._helper_fds(), fd_tally(worker, ("socket:",)))
        LIVE_DAEMONS.append(self)
        return self

    # --- fd leaks
    def _live_worker(self):
        for c in children_of(self.proc.pid):
            if is_worker(c) and proc_alive(c):
                return c
        return None

    def _helper_fds(self, skip=()):
        """The helper's fds but its registration connections, each of which
        holds a socket and the peer's pidfd."""
        conns = unix_connections(self.socket)
        links = fd_tally(self.proc.pid, skip, conns)
        for _ in conns:
            if "anon_inode:[pidfd]" in links:
                links.remove("anon_inode:[pidfd]")
        return links

    def _holds_vms(self):
        """True when the daemon serves VMs (or cannot tell: a TLS or
        authenticated endpoint, a broken one)."""
        try:  # plain http(): a subclass's get() may speak TLS or ask a password
            r = http(self.url, "/metrics", timeout=2.0)
            e = parse_exposition(r.text) if r.status == 200 else None
        except Exception:  # pylint: disable=broad-except
            return True
        return e is None or bool(e.matching("kvm_vm_info")) or e.total("kvmstatd_sources") > 0

    def assert_fds_at_baseline(self, timeout=FD_LEAK_TIMEOUT):
        """The helper and the worker (a new one, if the first was replaced)
        hold no more fds than when they were ready, VMs' own fds aside."""
        if self.proc is None or self.proc.poll() is not None or self.fd_baseline is None:
            return
        base_h, base_w = self.fd_baseline
        state = {}

        def back():
            held = VM_HELD_FDS if self._holds_vms() else ()
            worker = self._live_worker()
            h = self._helper_fds(held)
            w = fd_tally(worker, ("socket:",) + held) if worker else None
            state.update(helper=h, worker=w)
            return w is not None and len(h) <= len(base_h) and len(w) <= len(base_w)
        try:
            wait_until(back, timeout, 0.1, "the helper's and the worker's fd counts to return "
                       "to %d and %d" % (len(base_h), len(base_w)))
        except AssertionError as e:
            def extra(now, base):
                left = [_kind(l) for l in base]
                out = []
                for l in map(_kind, now or []):
                    if l in left:
                        left.remove(l)
                    else:
                        out.append(l)
                return out
            raise AssertionError("fd leak: %s; the helper holds %r more, the worker %r more\n"
                                 "--- kvmstatd log ---\n%s"
                                 % (e, extra(state.get("helper"), base_h),
                                    extra(state.get("worker"), base_w), self.log()))

    def _healthy(self):
        try:
            return http(self.url, "/-/healthy", timeout=1.0).status == 200
        except OSError:
            return False

    def log(self, tail=6000):
        """The end of the log (all of it with tail=None)."""
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return "(no log)"
        if tail is not None:
            data = data[-tail:]
        return data.decode("utf-8", "replace")

    def log_lines(self, pattern):
        """Every log line in which the regular expression is found."""
        return [l for l in self.log(tail=None).splitlines() if re.search(pattern, l)]

    def wait_log(self, pattern, timeout=5.0, count=1):
        """Wait until `count` log lines match the regular expression;
        returns the matching lines."""
        def found():
            lines = self.log_lines(pattern)
            return lines if len(lines) >= count else None
        try:
            return wait_until(found, timeout, 0.05, "%d log line(s) matching %r" % (count, pattern))
        except AssertionError as e:
            raise AssertionError("%s\n--- kvmstatd log ---\n%s" % (e, self.log()))

    def worker_pid(self, timeout=5.0):
        """pid of the helper's child that is the worker program (is_worker)."""
        def find():
            for c in children_of(self.proc.pid):
                if is_worker(c):
                    return c
            return None
        pid = wait_until(find, timeout, what="the kvmstatd-worker child of %d" % self.proc.pid)
        # every child of the helper must be gone after it stops
        self._workers.update(children_of(self.proc.pid))
        self._workers.add(pid)
        return pid

    def wait_new_worker(self, old, timeout=5.0):
        """pid of a live kvmstatd-worker child other than `old` (the one
        the helper started after `old` died)."""
        def find():
            for c in children_of(self.proc.pid):
                if c != old and is_worker(c) and proc_alive(c):
                    return c
            return None
        try:
            pid = wait_until(find, timeout, 0.02,
                             "a new kvmstatd-worker child of %d" % self.proc.pid)
        except AssertionError as e:
            raise AssertionError("%s\n--- kvmstatd log ---\n%s" % (e, self.log()))
        self._workers.add(pid)
        return pid

    # --- HTTP shortcuts
    def get(self, path="/metrics", headers=None, timeout=5.0):
        return http(self.url, path, headers=headers, timeout=timeout)

    def scrape(self, le_key=None, headers=None):
        r = self.get("/metrics", headers=headers)
        assert r.status == 200, "GET /metrics: %d %r\n%s" % (r.status, r.body[:200], self.log())
        return parse_exposition(r.text, le_key=le_key)

    def settled(self, ticks=2, timeout=30.0, le_key=None):
        """A scrape taken after `ticks` more completed polls: whatever the
        VMs did before the call (a stopped VMM's last counts, too) is in it.
        An event to wait for, not a sleep: the lab's emulated CPU polls late."""
        polls = self.scrape().value("kvmstatd_polls_total")

        def later():
            e = self.scrape(le_key=le_key)
            return e if e.value("kvmstatd_polls_total") >= polls + ticks else None
        return wait_until(later, timeout, 0.05, "%d poll ticks" % ticks)

    def rejected(self, reason):
        """kvmstatd_registrations_rejected_total{reason=...} (0 if absent)."""
        return self.scrape().total("kvmstatd_registrations_rejected_total", reason=reason)

    # --- stopping
    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def stop(self, check=True, timeout=10.0):
        """SIGTERM the helper; with check, assert a clean stop: exit 0, the
        socket removed, the worker gone."""
        if self.proc is None:
            return
        problems = []
        if self in LIVE_DAEMONS:
            LIVE_DAEMONS.remove(self)
        if check:
            try:
                self.assert_fds_at_baseline()
            except AssertionError as e:
                problems.append(str(e))
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                problems.append("kvmstatd did not stop within %.0fs of SIGTERM" % timeout)
                self.proc.kill()
                self.proc.wait(5)
        rc = self.proc.returncode
        if rc != 0:
            problems.append("kvmstatd exit status %s, want 0" % rc)
        if self.owns_socket and os.path.exists(self.socket):
            problems.append("registration socket %s left behind" % self.socket)
        try:
            wait_until(lambda: not any(proc_alive(w) for w in self._workers), 3.0)
        except AssertionError:
            problems.append("child(ren) %s still running after the helper exited"
                            % [w for w in self._workers if proc_alive(w)])
            for w in self._workers:
                if proc_alive(w) and (proc_comm(w) or "").startswith("kvmstatd"):
                    os.kill(w, signal.SIGKILL)
        self._log.close()
        log = self.log()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
        if check and problems:
            raise AssertionError("; ".join(problems) + "\n--- kvmstatd log ---\n" + log)

    def kill_all(self):
        """Best-effort cleanup after a test that broke the daemon on purpose."""
        if self in LIVE_DAEMONS:
            LIVE_DAEMONS.remove(self)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for w in self._workers:
            if proc_alive(w) and (proc_comm(w) or "").startswith("kvmstatd"):
                os.kill(w, signal.SIGKILL)
        if self.proc is not None:
            self._log.close()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- demo VMM

_VM_LINE = re.compile(r"^VM (.*)$")


def stop_daemons(made):
    """Stop every daemon a fixture started, newest first; fail the test if
    one did not stop cleanly (each is killed either way)."""
    import pytest
    errors = []
    for d in reversed(made):
        try:
            d.stop(check=True)
        except AssertionError as e:
            errors.append(str(e))
        finally:
            d.kill_all()
    if errors:
        pytest.fail("kvmstatd did not stop cleanly: " + "\n".join(errors), pytrace=False)


class DemoVm:
    def __init__(self, fields):
        self.fields = fields
        self.name = fields["name"]
        self.pid = int(fields["pid"])
        self.handle = int(fields["handle"])
        self.vm_stats_fd = int(fields["vm_stats_fd"])
        self.vcpu_stats_fds = [int(x) for x in fields["vcpu_stats_fds"].split(",") if x]
        self.registered = fields["registered"]

    def __repr__(self):
        return "DemoVm(%r)" % self.fields


class DemoVmm:
    """register_delay_ms: the demo runs its VMs unregistered that long, then
    registers them and only then prints their lines and READY.
    qemu_name: --name NAME, a QEMU-style -name on its command line (VM 0 is
    named NAME)."""

    def __init__(self, socket_path, vms=1, vcpus=1, name_prefix=None, register=True,
                 hz=None, extra=(), register_delay_ms=None, qemu_name=None):
        self.args = [DEMO_VMM, "--vms", str(vms), "--vcpus", str(vcpus), "--socket", socket_path]
        if name_prefix is not None:
            self.args += ["--name-prefix", name_prefix]
        if not register:
            self.args.append("--no-register")
        if hz is not None:
            self.args += ["--hz", str(hz)]
        if register_delay_ms is not None:
            self.args += ["--register-delay-ms", str(register_delay_ms)]
        if qemu_name is not None:
            self.args += ["--name", qemu_name]
        self.args += list(extra)
        self.proc = None
        self.vms = []
        self.lines = []

    def launch(self):
        """Start the process and return at once; wait_ready() reads its VM
        lines up to READY."""
        self._err = tempfile.TemporaryFile()
        self._buf = b""
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._err, close_fds=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        return self

    def start(self, timeout=15.0):
        self.launch()
        return self.wait_ready(timeout)

    def wait_ready(self, timeout=15.0):
        buf = self._buf
        deadline = time.monotonic() + timeout
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            while True:
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    line = line.decode("utf-8", "replace")
                    self.lines.append(line)
                    if line == "READY":
                        self._buf = buf
                        return self
                    m = _VM_LINE.match(line)
                    if m:
                        # values have no spaces, except the last (registered=error:...)
                        fields = dict(re.findall(r"(\w+)=(.*?)(?= \w+=|$)", m.group(1)))
                        self.vms.append(DemoVm(fields))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("demo VMM printed no READY within %.0fs: %r\n%s"
                                         % (timeout, self.lines, self.stderr()))
                for _ in sel.select(min(left, 0.5)):
                    try:
                        chunk = os.read(self.proc.stdout.fileno(), 65536)
                    except BlockingIOError:
                        chunk = None
                    if chunk == b"":
                        self.proc.wait(5)
                        raise AssertionError("demo VMM exited (%s) before READY: %r\n%s"
                                             % (self.proc.returncode, self.lines, self.stderr()))
                    if chunk:
                        buf += chunk
        finally:
            sel.close()

    def stderr(self):
        self._err.seek(0)
        return self._err.read()[-4000:].decode("utf-8", "replace")

    @property
    def pid(self):
        return self.proc.pid

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(10)

    def stop(self, timeout=10.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        self._err.close()
        self.proc = None


# ------------------------------------------------------------------ oracle

@contextlib.contextmanager
def fd_copies(vm):
    """pidfd_getfd copies of a demo VM's stats fds [vm, vcpu...], closed on
    exit (a held stats fd would keep an exited VM alive)."""
    import statsfd
    fds = []
    try:
        for fd in [vm.vm_stats_fd] + vm.vcpu_stats_fds:
            fds.append(statsfd.pidfd_getfd(vm.pid, fd))
        yield fds
    finally:
        for fd in fds:
            os.close(fd)


def oracle(vms, kinds=None):
    """Expected samples of demo VMs, read now through copies of the fds the
    demo VMM keeps open."""
    import statsfd
    out = {}
    for vm in vms:
        with fd_copies(vm) as fds:
            exp = statsfd.expected_for_vm(fds[0], fds[1:], vm.name, kinds)
        assert not set(exp) & set(out), "two VMs with the same series"
        out.update(exp)
    return out


def oracle_families(vms):
    import statsfd
    out = {}
    for vm in vms:
        with fd_copies(vm) as fds:
            out.update(statsfd.families_for_vm(fds[0], fds[1:]))
    return out


def wait_for_vms(daemon, names, timeout=5.0):
    """Wait until kvm_vm_info is served for every VM name; returns the scrape."""
    def ok():
        e = daemon.scrape()
        have = {dict(l).get("vm") for (n, l) in e.samples if n == "kvm_vm_info"}
        return e if set(names) <= have else None
    return wait_until(ok, timeout, 0.1, "kvm_vm_info of %s" % sorted(names))


def wait_vms_gone(daemon, names, timeout):
    def ok():
        e = daemon.scrape()
        left = {dict(l).get("vm") for (n, l) in e.samples
                if n.startswith("kvm_") and dict(l).get("vm") in names}
        return e if not left else None
    return wait_until(ok, timeout, 0.1, "series of %s to vanish" % sorted(names))


def vcpu_exits(expo, vm_name):
    """{vcpu: exits} of one VM from a scrape."""
    return {dict(l)["vcpu"]: v for (n, l), v in
            expo.matching("kvm_vcpu_exits_total", vm=vm_name).items()}


def vm_infos(expo, **labels):
    """Label dicts of the kvm_vm_info series matching labels."""
    return [dict(l) for (n, l) in expo.matching("kvm_vm_info", **labels)]


def stats_ids_held(pid):
    """The kernel ids ("kvm-<pid>", "kvm-<tid>/vcpu-<n>") of the KVM stats
    fds process `pid` holds, read through pidfd_getfd copies."""
    import statsfd
    ids = []
    for fd in kvm_stats_links(pid):
        try:
            copy = statsfd.pidfd_getfd(pid, fd)
        except OSError:
            continue  # closed meanwhile
        try:
            ids.append(statsfd.StatsFd(copy).id)
        finally:
            os.close(copy)
    return ids


# Families of kvm_vm_*/kvm_vcpu_* that do not come from the stats fds:
# exit telemetry (BPF) and the vCPU threads' schedstat (test_bpf_*.py).
NOT_FROM_STATS_FDS = ("kvm_vcpu_userspace_exits", "kvm_vcpu_exits_by_reason",
                      "kvm_vcpu_exit_roundtrip_seconds", "kvm_vcpu_run_delay_seconds",
                      "kvm_vcpu_thread_cpu_seconds")


def from_stats_fds(name):
    """A KVM stat series, the kind an independent stats-fd reader also sees."""
    return (name.startswith(("kvm_vm_", "kvm_vcpu_")) and name != "kvm_vm_info"
            and not name.startswith(NOT_FROM_STATS_FDS))
