"""Privilege separation: the worker that parses, polls and serves HTTP runs
as the configured user with no capabilities, no supplementary groups,
no_new_privs and a seccomp filter, as a child of the helper; it stops with
the helper, including when the helper is SIGKILLed."""

import pwd
import signal
import time

import harness


def _ids(status, key):
    return [int(x) for x in status[key].split()]


def test_worker_runs_unprivileged_as_configured_user(daemon):
    helper = daemon.proc.pid
    worker = daemon.worker_pid()
    assert harness.proc_comm(helper) == "kvmstatd"
    assert harness.proc_comm(worker) == "kvmstatd-worker"
    st = harness.proc_status(worker)
    assert st["PPid"] == str(helper)
    user = pwd.getpwnam(daemon.user)
    assert _ids(st, "Uid") == [user.pw_uid] * 4, st["Uid"]
    assert _ids(st, "Gid") == [user.pw_gid] * 4, st["Gid"]
    assert st["Groups"].split() == [], "supplementary groups kept: %r" % st["Groups"]
    for cap in ("CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"):
        assert int(st[cap], 16) == 0, "%s = %s" % (cap, st[cap])
    assert st["NoNewPrivs"] == "1"


def test_worker_runs_under_a_seccomp_filter(daemon):
    """[daemon] sandbox = yes (the default): a seccomp filter (mode 2)."""
    st = harness.proc_status(daemon.worker_pid())
    assert st["Seccomp"] == "2", "no seccomp filter on the worker (Seccomp: %s)" % st["Seccomp"]


def test_only_one_worker_and_no_other_children(daemon):
    kids = harness.children_of(daemon.proc.pid)
    assert [harness.proc_comm(k) for k in kids] == ["kvmstatd-worker"], kids


def test_worker_holds_no_registration_socket_or_kvm_device(daemon):
    worker = daemon.worker_pid()
    links = harness.fd_links(worker).values()
    assert "/dev/kvm" not in links
    # the helper's listening socket is the helper's alone
    helper_sockets = {l for l in harness.fd_links(daemon.proc.pid).values() if l.startswith("socket:")}
    with open("/proc/net/unix") as f:
        listening = {"socket:[%s]" % row.split()[6] for row in f.read().splitlines()[1:]
                     if len(row.split()) >= 8 and row.split()[7] == daemon.socket}
    assert listening, "registration socket not found in /proc/net/unix"
    assert listening & helper_sockets, "the helper does not hold the registration socket"
    assert not listening & set(links), "the worker holds the registration socket"


def test_sigterm_to_helper_stops_worker(daemon_factory):
    d = daemon_factory()
    worker = d.worker_pid()
    d.stop(check=True)  # SIGTERM: exit 0, socket removed, worker gone
    assert not harness.proc_alive(worker)


def test_sigkill_of_helper_makes_worker_exit(daemon_factory):
    d = daemon_factory()
    worker = d.worker_pid()
    try:
        d.signal(signal.SIGKILL)
        d.proc.wait(5)
        t = time.monotonic()
        harness.wait_until(lambda: not harness.proc_alive(worker), 3.0, 0.05,
                           "the orphaned worker to exit")
        assert time.monotonic() - t < 3.0
    finally:
        d.kill_all()
