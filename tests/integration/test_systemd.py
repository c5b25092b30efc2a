"""kvmstatd under a service manager, without systemd as PID 1.

- socket activation: systemd-socket-activate hands the daemon its HTTP and
  registration sockets (named "http" and "register", as kvmstatd.socket
  does); HTTP is served and VMs register on the inherited sockets;
- the notify protocol: a NOTIFY_SOCKET of the test's own receives READY=1,
  STATUS= and WATCHDOG=1, in that order and only from the helper (the
  main pid, SCM_CREDENTIALS); a stopped poller (SIGSTOP of the worker)
  stops the pings, SIGCONT brings them back;
- SIGHUP: RELOADING=1, the new configuration applied, READY=1 again, and
  every VM still polled with counters that keep rising.
"""

import os
import re
import shutil
import signal
import socket
import struct
import time

import pytest

import harness

ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"
WATCHDOG_USEC = 1000000  # the helper beats 4 times a period: every 250 ms


@pytest.fixture
def activate():
    if not os.access(ACTIVATE, os.X_OK):
        pytest.skip("systemd-socket-activate is missing (Debian package systemd)")
    return ACTIVATE


class NotifySocket:
    """The service manager's end of NOTIFY_SOCKET: a datagram socket that
    records each message with the sender's pid."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.messages = []  # (monotonic time, sender pid, {key: value}, raw)

    def poll(self, timeout=0.1):
        self.sock.settimeout(timeout)
        try:
            while True:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
                pid = None
                for level, kind, payload in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                        pid = struct.unpack("iII", payload[:12])[0]
                text = data.decode()
                fields = dict(l.split("=", 1) for l in text.split("\n") if "=" in l)
                self.messages.append((time.monotonic(), pid, fields, text))
                self.sock.settimeout(0)
        except (BlockingIOError, socket.timeout):
            pass

    def wait(self, pred, timeout=10.0, what="a notify message", since=0.0):
        """Wait until a message received after `since` (monotonic time)
        satisfies pred(fields); returns its index."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for i in range(seen, len(self.messages)):
                if self.messages[i][0] > since and pred(self.messages[i][2]):
                    return i
            seen = len(self.messages)
            if time.monotonic() >= deadline:
                raise AssertionError("no %s within %.0f s; got %r"
                                     % (what, timeout, [m[3] for m in self.messages]))
            self.poll(0.1)

    def pings_between(self, t0, t1):
        return [m for m in self.messages if t0 <= m[0] <= t1 and m[2].get("WATCHDOG") == "1"]

    def close(self):
        self.sock.close()


def status_counts(fields):
    m = re.match(r"Polling (\d+) VMs with (\d+) vCPUs", fields.get("STATUS", ""))
    return (int(m.group(1)), int(m.group(2))) if m else None


@pytest.fixture
def notified(kvmstatd_bin, root):
    """A daemon with a NOTIFY_SOCKET and a 1 s watchdog; WATCHDOG_PID names
    the pid systemd would watch, the one it started (the helper)."""
    made, socks = [], []

    def make(overrides=None, watchdog_usec=WATCHDOG_USEC):
        d = harness.Daemon(overrides, prefix=["sh", "-c", 'WATCHDOG_PID=$$ exec "$@"', "sh"])
        n = NotifySocket(os.path.join(d.dir, "notify.sock"))
        d.env = {"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": str(watchdog_usec)}
        made.append(d)
        socks.append(n)
        d.start()
        return d, n

    yield make
    harness.stop_daemons(made)
    for n in socks:
        n.close()


def test_ready_status_and_watchdog_come_in_order_from_the_helper(notified, demo_vmm):
    d, n = notified()
    ready = n.wait(lambda f: f.get("READY") == "1", what="READY=1")
    assert status_counts(n.messages[ready][2]) == (0, 0), n.messages[ready][3]
    vmm = demo_vmm(d.socket, vms=1, vcpus=2, name_prefix="sd")
    status = n.wait(lambda f: status_counts(f) == (1, 2), what="STATUS= with 1 VM, 2 vCPUs")
    n.wait(lambda f: f.get("WATCHDOG") == "1", what="WATCHDOG=1")
    first_ping = min(i for i, m in enumerate(n.messages) if m[2].get("WATCHDOG") == "1")
    assert ready < status, [m[3] for m in n.messages]
    assert ready < first_ping, "a watchdog ping before READY=1: %r" % [m[3] for m in n.messages]
    n.wait(lambda f: False if len(n.pings_between(0, 1e12)) < 4 else True, timeout=3,
           what="four pings")
    # only the main process talks to systemd (NotifyAccess=main)
    assert {m[1] for m in n.messages} == {d.proc.pid}, [(m[1], m[3]) for m in n.messages]
    assert len(vmm.vms) == 1


def test_a_stopped_poller_stops_the_watchdog_pings(notified):
    d, n = notified()
    n.wait(lambda f: f.get("WATCHDOG") == "1", what="WATCHDOG=1")
    worker = d.worker_pid()
    os.kill(worker, signal.SIGSTOP)
    try:
        time.sleep(0.3)  # a beat already on its way may still arrive
        n.poll(0)
        t0 = time.monotonic()
        time.sleep(1.5)
        n.poll(0.1)
        t1 = time.monotonic()
        assert n.pings_between(t0, t1) == [], "pings while the poller was stopped"
    finally:
        os.kill(worker, signal.SIGCONT)
    n.poll(0)
    t2 = time.monotonic()
    n.wait(lambda f: f.get("WATCHDOG") == "1", timeout=3, what="a ping after SIGCONT", since=t2)
    assert d.worker_pid() == worker, "the worker was replaced: %s" % d.log()


LATE_PING = r"systemd will likely restart the service"


def pings_in_a_second(n):
    n.wait(lambda f: f.get("WATCHDOG") == "1", what="WATCHDOG=1")
    n.poll(0)
    t0 = time.monotonic()
    while time.monotonic() < t0 + 1.0:  # messages are stamped when read
        n.poll(0.01)
    return len(n.pings_between(t0, t0 + 1.0))


def test_a_watchdog_of_80_ms_is_kept_with_a_ping_every_50_ms(notified):
    # libsystemd took it; refusing it sent no pings while systemd still
    # restarted the service every 80 ms
    d, n = notified(watchdog_usec=80000)
    assert pings_in_a_second(n) >= 12, [m[3] for m in n.messages[-30:]]  # 20 at 50 ms
    assert not d.log_lines(LATE_PING), d.log()


def test_a_watchdog_shorter_than_a_beat_is_warned_about_and_still_pinged(notified):
    d, n = notified(watchdog_usec=40000)
    d.wait_log(LATE_PING)
    assert pings_in_a_second(n) >= 12, [m[3] for m in n.messages[-30:]]


def test_another_process_s_watchdog_is_noted_and_not_pinged(kvmstatd_bin, root):
    # systemd watches another process: none of our business, no warning
    d = harness.Daemon(env={"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    try:
        d.start()
        d.wait_log(r"\]: info: WATCHDOG_PID is 1, not us \(\d+\): no watchdog beats")
    finally:
        harness.stop_daemons([d])


def exits_by_vcpu(expo, vm):
    return {dict(l)["vcpu"]: v for (name, l), v in
            expo.matching("kvm_vcpu_halt_exits_total", vm=vm).items()}


def test_sighup_applies_the_new_config_and_keeps_every_vm(notified, demo_vmm):
    d, n = notified()
    os.chmod(d.dir, 0o755)  # the helper, no longer root, reads the file again
    os.chmod(d.config, 0o644)
    vmm = demo_vmm(d.socket, vms=2, vcpus=2, name_prefix="hup")
    names = [vm.name for vm in vmm.vms]
    before = harness.wait_for_vms(d, names)
    assert before.matching("kvm_vcpu_exits_total")
    halts = {vm: exits_by_vcpu(before, vm) for vm in names}
    old_worker = d.worker_pid()

    harness.write_config(d.config, d.socket, d.config_port, d.user, {
        ("metrics", "exclude"): "kvm_vcpu_exits",
        ("http", "listen"): "127.0.0.1:%d" % harness.free_port(),  # needs a restart
    })
    n.poll(0.05)  # messages are stamped when read: read the old ones first
    t0 = time.monotonic()
    d.signal(signal.SIGHUP)
    reloading = n.wait(lambda f: f.get("RELOADING") == "1", what="RELOADING=1", since=t0)
    assert int(n.messages[reloading][2]["MONOTONIC_USEC"]) > 0
    ready = n.wait(lambda f: f.get("READY") == "1", what="READY=1 after the reload", since=t0)
    assert status_counts(n.messages[ready][2]) == (2, 4), n.messages[ready][3]
    d.wait_log(r"\[http\] listen changed, but takes effect only at a restart")

    after = harness.wait_until(
        lambda: (lambda e: e if not e.matching("kvm_vcpu_exits_total") else None)(d.scrape()),
        5, 0.1, "kvm_vcpu_exits_total to leave /metrics")
    assert {dict(l)["vm"] for (nm, l) in after.matching("kvm_vm_info")} == set(names)
    time.sleep(harness.SETTLE)
    after = d.scrape()
    for vm in names:
        now = exits_by_vcpu(after, vm)
        assert set(now) == set(halts[vm])
        for vcpu, v in now.items():
            assert v >= halts[vm][vcpu], "%s vcpu %s went back: %s -> %s" % (
                vm, vcpu, halts[vm][vcpu], v)
    assert after.value("kvmstatd_worker_restarts_total") == 0
    assert d.worker_pid() != old_worker
    # the kernel's counters, not ours: they keep rising under the new worker
    assert sum(sum(exits_by_vcpu(after, vm).values()) for vm in names) > \
        sum(sum(h.values()) for h in halts.values())


def test_sighup_with_a_broken_config_keeps_running(notified):
    d, n = notified()
    os.chmod(d.dir, 0o755)
    os.chmod(d.config, 0o644)
    n.wait(lambda f: f.get("READY") == "1", what="READY=1")
    worker = d.worker_pid()
    harness.write_config(d.config, d.socket, d.config_port, d.user,
                         {("poll", "interval_ms"): "1"})
    n.poll(0.05)  # messages are stamped when read: read the old ones first
    t0 = time.monotonic()
    d.signal(signal.SIGHUP)
    i = n.wait(lambda f: f.get("READY") == "1", what="READY=1 after a failed reload", since=t0)
    assert "Reload failed" in n.messages[i][2]["STATUS"]
    d.wait_log(r"reload: .*interval_ms: out of range")
    assert d.get("/-/healthy").status == 200
    assert d.worker_pid() == worker


# ------------------------------------------------------------ activation

def _connect_seqpacket(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    harness.wait_until(lambda: os.path.exists(path), timeout, what=path)
    s.connect(path)
    return s


def test_socket_activation_serves_http_and_registration(activate, kvmstatd_bin, root,
                                                        demo_vmm):
    port = harness.free_port()
    d = harness.Daemon(owns_socket=False)
    os.makedirs(os.path.dirname(d.socket))
    # two managers in a row: the first passes the seqpacket socket through
    # the second (one systemd-socket-activate makes one kind of socket)
    d.prefix = [activate, "--seqpacket", "-l", d.socket, "--fdname=register", "--",
                activate, "-l", "127.0.0.1:%d" % port, "--fdname=register:http", "--"]
    d.port, d.url = port, "http://127.0.0.1:%d" % port
    made = [d]
    try:
        d.launch()
        first = _connect_seqpacket(d.socket)  # wakes both managers up
        harness.wait_until(d._healthy, 10, what="HTTP on the inherited socket")
        first.close()
        d.worker_pid()
        d.wait_log(r"metrics on the socket from the service manager")
        # the config's own port was never bound
        with socket.socket() as s:
            s.bind(("127.0.0.1", d.config_port))
        vmm = demo_vmm(d.socket, vms=1, vcpus=2, name_prefix="act")
        assert vmm.vms[0].registered == "yes", vmm.vms[0].fields
        harness.wait_for_vms(d, [vmm.vms[0].name])
        assert d.scrape().total("kvmstatd_sources", kind="vcpu") == 2
    finally:
        harness.stop_daemons(made)
    # the socket is the manager's: the daemon leaves it alone
    assert not os.path.exists(d.socket) or os.path.exists(os.path.dirname(d.socket))


def test_socket_activation_refuses_a_socket_it_does_not_know(activate, kvmstatd_bin, root):
    port = harness.free_port()
    d = harness.Daemon(prefix=[activate, "-l", "127.0.0.1:%d" % port, "--fdname=metrics", "--"])
    try:
        d.launch()
        harness.wait_until(lambda: _try_connect(port), 5, what="the manager's socket")
        d.proc.wait(10)
        assert d.proc.returncode == 1, d.log()
        assert re.search(r'socket fd 3 \("metrics", a TCP stream socket\): not one of ours',
                         d.log()), d.log()
    finally:
        d.kill_all()


def _try_connect(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_sockets_for_another_process_stay_in_the_helper_and_never_reach_the_worker(
        kvmstatd_bin, root):
    # fd 3 as a manager would leave it for LISTEN_PID=1: not ours to use
    # or close; the worker's exec (close_range) must not carry it over
    d = harness.Daemon(prefix=["sh", "-c", 'exec 3</dev/null; exec "$@"', "sh"],
                       env={"LISTEN_PID": "1", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "http"})
    try:
        d.start()
        d.wait_log(r"LISTEN_PID is 1, not us .*opening our own")
        assert harness.fd_links(d.proc.pid).get(3) == "/dev/null", harness.fd_links(d.proc.pid)
        links = harness.fd_links(d.worker_pid())
        assert "/dev/null" not in [l for fd, l in links.items() if fd > 2], links
    finally:
        harness.stop_daemons([d])
