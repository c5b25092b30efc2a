"""The shipped units under a real systemd (PID 1), as an operator uses them.

`make install` puts kvmstatd on the machine; then, with the units as they
ship (plus a test drop-in that only shortens WatchdogSec):

- socket activation: the two socket units hold the HTTP port and the
  registration socket, the first connection starts kvmstatd.service, and
  both sockets arrive with their own names;
- readiness: `systemctl start` returns once the service said READY=1, and
  by then /metrics answers; StatusText counts the VMs;
- `systemctl reload` keeps every VM (counters keep rising);
- the watchdog restarts a service whose worker stops beating (SIGSTOP);
- Restart=on-failure brings it back after a crash (SIGSEGV);
- journald: the helper's events can be queried by KVMSTATD_REASON= and
  KVMSTATD_VM=;
- `systemd-analyze security` on the running unit.

These change the machine (they install into /usr/local and start units),
so they run only in a disposable one: the lab guest (LAB_GUEST=1), where
`make check` runs them on every machine. Elsewhere they skip, and under
KVMSTATD_NO_SKIP a skip fails.
"""

import json
import os
import signal
import socket
import subprocess

import pytest

import harness
import statsfd

# only in the lab guest (conftest.py skips it elsewhere)
pytestmark = pytest.mark.lab

UNIT = "kvmstatd.service"
SOCKETS = ("kvmstatd.socket", "kvmstatd-register.socket")
REGISTER_SOCK = "/run/kvmstatd/register.sock"
PORT = 9735
WATCHDOG_S = 3
DROPIN_DIR = "/run/systemd/system/kvmstatd.service.d"
EXPOSURE_MAX = 3.3  # the README's figure for the shipped unit


def run(*args, check=True, timeout=60):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s" % (" ".join(args), r.returncode, r.stdout,
                                                     r.stderr))
    return r


def show(prop, unit=UNIT):
    return run("systemctl", "show", "-P", prop, unit).stdout.strip()


def journal(*matches, since=None):
    args = ["journalctl", "--no-pager", "-o", "json", "-u", UNIT]
    if since:
        args += ["--since", since]
    out = run(*(args + list(matches))).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def main_pid():
    pid = int(show("MainPID") or 0)
    return pid if pid > 0 else None


def worker_of(pid):
    kids = [k for k in harness.children_of(pid)
            if (harness.proc_comm(k) or "").startswith("kvmstatd")]
    return kids[0] if len(kids) == 1 else None


def scrape():
    r = harness.http("http://127.0.0.1:%d" % PORT, "/metrics")
    assert r.status == 200, r.status
    return harness.parse_exposition(r.text)


def wait_active_with_new_pid(old, timeout):
    def ok():
        pid = main_pid()
        return pid if pid and pid != old and show("ActiveState") == "active" else None
    return harness.wait_until(ok, timeout, interval=0.2, what="a new active main pid")


@pytest.fixture(scope="module")
def installed(root, kvm):
    if os.environ.get("LAB_GUEST") != "1":
        pytest.skip("changes the machine (make install, units): runs in the lab guest")
    with open("/proc/1/comm") as f:
        if f.read().strip() != "systemd":
            pytest.fail("the lab guest's PID 1 is not systemd", pytrace=False)
    run("make", "-C", harness.REPO, "--no-print-directory", "install", "PREFIX=/usr/local",
        timeout=300)
    os.makedirs(DROPIN_DIR, exist_ok=True)
    with open(os.path.join(DROPIN_DIR, "50-test.conf"), "w") as f:
        # the watchdog test waits WATCHDOG_S, not the shipped 30 s;
        # RestartSec stays as shipped
        f.write("[Service]\nWatchdogSec=%ds\n" % WATCHDOG_S)
    run("systemctl", "daemon-reload")
    yield
    run("systemctl", "stop", UNIT, *SOCKETS, check=False)
    run("systemctl", "reset-failed", UNIT, check=False)


@pytest.fixture(scope="module")
def service(installed):
    run("systemctl", "start", *SOCKETS)
    assert show("ActiveState") == "inactive", "the service started before any connection"
    # the first scrape starts it: socket activation of the HTTP socket
    with socket.create_connection(("127.0.0.1", PORT), timeout=60) as s:
        s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        s.settimeout(60)
        first = s.recv(64)
    assert first.startswith(b"HTTP/1."), first
    harness.wait_until(lambda: show("ActiveState") == "active", 60, interval=0.2,
                       what="kvmstatd.service active")
    yield
    run("systemctl", "stop", UNIT, check=False)


@pytest.fixture(scope="module")
def vmm(service, demo_vmm_bin):
    v = harness.DemoVmm(REGISTER_SOCK, vms=1, vcpus=2, name_prefix="unit-")
    v.start(timeout=60)
    harness.wait_until(lambda: "Polling 1 VMs with 2 vCPUs" in show("StatusText"), 60,
                       interval=0.2, what="StatusText counting the demo VM")
    yield v
    v.stop()


def exits(name):
    """The VM's exits over all its vCPUs, from a scrape."""
    return sum(harness.vcpu_exits(scrape(), name).values())


def test_both_sockets_arrive_named_and_the_service_is_ready(vmm):
    # the helper took the registration socket from systemd (register) and
    # serves HTTP on the other one (http): a VM registered through it
    assert vmm.vms[0].registered == "yes", vmm.vms[0].fields
    helper = main_pid()
    fds = harness.fd_links(helper)
    assert any(l.startswith("socket:") for l in fds.values())
    lines = [e["MESSAGE"] for e in journal()]
    assert any("socket from the service manager" in m for m in lines), lines[-20:]
    assert show("Type") == "notify" and show("SubState") == "running"
    assert harness.vm_infos(scrape(), vm=vmm.vms[0].name)


def test_exit_telemetry_loads_under_the_shipped_unit(vmm):
    """The unit's capability bounding set is enough for libbpf to load the
    object against KVM's module BTF (Debian's kvm_amd is a module)."""
    expo = scrape()
    why = [e["MESSAGE"] for e in journal() if "exit telemetry" in e["MESSAGE"]]
    assert expo.value("kvmstatd_bpf_enabled") == 1, why
    name = vmm.vms[0].name
    harness.wait_until(
        lambda: scrape().total("kvm_vcpu_exits_by_reason_total", vm=name) > 0, 30,
        interval=0.2, what="hardware exits counted by reason")


def test_reload_keeps_every_vm_and_the_counters_rise(vmm):
    name = vmm.vms[0].name
    before = exits(name)
    pid = main_pid()
    run("systemctl", "reload", UNIT)
    assert main_pid() == pid, "reload replaced the main process"
    harness.wait_until(lambda: show("ActiveState") == "active", 30, interval=0.2,
                       what="active after reload")
    harness.wait_until(lambda: exits(name) > before, 30, interval=0.2,
                       what="exits rising after the reload")
    assert "Polling 1 VMs with 2 vCPUs" in show("StatusText")


def test_the_journal_answers_by_vm_and_by_reason(vmm):
    name = vmm.vms[0].name
    by_vm = journal("KVMSTATD_VM=" + name)
    assert by_vm, "no journal entry with KVMSTATD_VM=%s" % name
    assert all(e.get("KVMSTATD_VM") == name for e in by_vm)
    r, w = os.pipe()
    try:
        reply = statsfd.send_datagram(
            REGISTER_SOCK,
            statsfd.message(statsfd.MSG_REGISTER_VM, statsfd.body_register_vm(77, "bad")),
            fds=[r])
    finally:
        os.close(r)
        os.close(w)
    assert reply is not None and reply[0] < 0, reply

    def refused():
        return journal("KVMSTATD_REASON=bad_fd")
    entries = harness.wait_until(refused, 30, interval=0.2,
                                 what="a KVMSTATD_REASON=bad_fd journal entry")
    assert all(e.get("KVMSTATD_REASON") == "bad_fd" for e in entries)


def test_systemd_analyze_security_rates_the_running_unit(service):
    r = run("systemd-analyze", "security", "--no-pager", UNIT)
    line = [l for l in r.stdout.splitlines() if "Overall exposure level" in l]
    assert line, r.stdout[-2000:]
    level = float(line[0].split(":")[1].split()[0])
    assert level <= EXPOSURE_MAX, r.stdout


def test_the_watchdog_restarts_a_service_whose_worker_stopped(vmm):
    pid = main_pid()
    worker = harness.wait_until(lambda: worker_of(pid), 30, what="the worker")
    restarts = int(show("NRestarts"))
    os.kill(worker, signal.SIGSTOP)
    new = wait_active_with_new_pid(pid, WATCHDOG_S + 60)
    assert int(show("NRestarts")) == restarts + 1
    assert new != pid
    # systemd's own words, in the unit's journal
    entries = run("journalctl", "--no-pager", "-u", UNIT, "-o", "cat").stdout
    assert "Watchdog timeout" in entries, entries[-3000:]


def test_restart_on_failure_after_a_crash(service):
    pid = main_pid()
    restarts = int(show("NRestarts"))
    os.kill(pid, signal.SIGSEGV)
    new = wait_active_with_new_pid(pid, 60)
    assert new != pid
    assert int(show("NRestarts")) == restarts + 1
    # it serves again on the socket systemd kept open
    assert harness.http("http://127.0.0.1:%d" % PORT, "/metrics", timeout=30).status == 200
