"""Least privilege after start-up (docs/security.md).

The helper needs root only to create the socket directory, the sockets and
the worker: afterwards it runs as [daemon] user and keeps what discovery
needs, or nothing when [discovery] is off. Discovery needs CAP_SYS_PTRACE
(pidfd_getfd of another user's fd) and CAP_DAC_READ_SEARCH: /proc/<pid>/fd
of another user's process is a 0500 directory of that user, and
CAP_SYS_PTRACE alone gets EACCES listing it (and reading its links).
The worker runs as the same user with no capability at all (bounding set
included), no supplementary group, no_new_privs and a seccomp allow-list
([daemon] sandbox = yes, the default). --sandbox-selftest makes every
worker try what the sandbox forbids and log the outcome."""

import os
import pwd
import re
import signal

import harness

CAP_DAC_READ_SEARCH = 1 << 2
CAP_SYS_PTRACE = 1 << 19
DISCOVERY_CAPS = CAP_SYS_PTRACE | CAP_DAC_READ_SEARCH
CAP_SETS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


def _ids(status, key):
    return [int(x) for x in status[key].split()]


def _caps(status):
    return {k: int(status[k], 16) for k in CAP_SETS}


def assert_runs_as_service_user(pid, user_name):
    st = harness.proc_status(pid)
    assert st is not None, "process %d is gone" % pid
    user = pwd.getpwnam(user_name)
    assert _ids(st, "Uid") == [user.pw_uid] * 4, "Uid: %s, want %d x4" % (st["Uid"], user.pw_uid)
    assert _ids(st, "Gid") == [user.pw_gid] * 4, "Gid: %s, want %d x4" % (st["Gid"], user.pw_gid)
    assert st["Groups"].split() == [], "supplementary groups kept: %r" % st["Groups"]
    assert st["NoNewPrivs"] == "1", "NoNewPrivs: %s" % st["NoNewPrivs"]
    return st


# ------------------------------------------------------------------- helper

def test_helper_runs_as_service_user_with_only_discovery_caps(daemon_factory):
    # enabled = yes is the daemon's default; the harness turns it off
    d = daemon_factory({("discovery", "enabled"): "yes"})
    st = assert_runs_as_service_user(d.proc.pid, d.user)
    want = {"CapInh": 0, "CapPrm": DISCOVERY_CAPS, "CapEff": DISCOVERY_CAPS, "CapBnd": 0,
            "CapAmb": 0}
    assert _caps(st) == want, "helper capabilities %s, want %s" % (
        {k: "%#x" % v for k, v in _caps(st).items()}, {k: "%#x" % v for k, v in want.items()})


def test_helper_keeps_no_capability_when_discovery_is_off(daemon_factory):
    d = daemon_factory({("discovery", "enabled"): "no"})
    st = assert_runs_as_service_user(d.proc.pid, d.user)
    assert _caps(st) == dict.fromkeys(CAP_SETS, 0), "helper capabilities %s" % {
        k: "%#x" % v for k, v in _caps(st).items()}


def test_helper_still_serves_registrations_and_stops_cleanly_unprivileged(daemon_factory,
                                                                          demo_vmm):
    """Dropping root must not cost the helper its job: it accepts a VMM,
    and on SIGTERM it still removes its socket (the teardown checks)."""
    d = daemon_factory({("discovery", "enabled"): "no"})
    vmm = demo_vmm(d.socket, vms=1, vcpus=1, name_prefix="it-lp-")
    assert vmm.vms[0].registered == "yes", vmm.lines
    harness.wait_for_vms(d, [vmm.vms[0].name])
    d.stop(check=True)


# ------------------------------------------------------------------- worker

def test_worker_has_no_capability_and_runs_under_seccomp(daemon_factory):
    d = daemon_factory({("discovery", "enabled"): "yes"})
    worker = d.worker_pid()
    st = assert_runs_as_service_user(worker, d.user)
    assert _caps(st) == dict.fromkeys(CAP_SETS, 0), "worker capabilities %s" % {
        k: "%#x" % v for k, v in _caps(st).items()}
    assert st["Seccomp"] == "2", "worker Seccomp: %s, want 2 (filter)" % st["Seccomp"]
    assert st["PPid"] == str(d.proc.pid)


def test_worker_without_discovery_is_just_as_confined(daemon_factory):
    d = daemon_factory({("discovery", "enabled"): "no"})
    st = assert_runs_as_service_user(d.worker_pid(), d.user)
    assert _caps(st) == dict.fromkeys(CAP_SETS, 0)
    assert st["Seccomp"] == "2"


# What --sandbox-selftest tries, and how its log lines name each attempt
# (the exact wording is the daemon's: only the call and its target count).
SELFTEST_ATTEMPTS = [
    ("open(/etc/passwd)", r"open\w*\([^)]*/etc/passwd"),
    ("socket(AF_INET)", r"socket\([^)]*AF_INET"),
    ("execve", r"execve\b"),
    ("ptrace(ATTACH, parent)", r"ptrace\([^)]*ATTACH"),
    ("kill(parent, 0)", r"kill\([^)]*\b0\)"),
    ("mmap(PROT_EXEC)", r"mmap\([^)]*PROT_EXEC"),
]
ALL_DENIED = r"sandbox self-test: every attempt was denied"


def assert_selftest_denied_everything(d, count=1):
    d.wait_log(ALL_DENIED, timeout=5.0, count=count)
    for what, rx in SELFTEST_ATTEMPTS:
        lines = d.log_lines(r"sandbox self-test: %s.* denied \((.+)\)$" % rx)
        assert len(lines) >= count, "no %d line(s) 'sandbox self-test: %s denied (...)':\n%s" % (
            count, what, d.log())
    allowed = d.log_lines(r"sandbox self-test: .* was allowed")
    assert not allowed, "the sandbox let something through: %r" % allowed


def test_sandbox_selftest_every_attempt_is_denied(daemon_factory):
    d = daemon_factory(start=False)
    d.args.append("--sandbox-selftest")
    d.start()
    worker = d.worker_pid()
    assert_selftest_denied_everything(d)
    # the worker that ran the self-test is the one serving: it did not die
    assert harness.proc_alive(worker)
    e = d.scrape()
    assert e.value("kvmstatd_worker_restarts_total") == 0
    assert d.worker_pid() == worker
    # every worker runs it: so does a replacement
    os.kill(worker, signal.SIGKILL)
    d.wait_new_worker(worker)
    assert_selftest_denied_everything(d, count=2)


def test_sandbox_selftest_without_sandbox_reports_what_was_allowed(daemon_factory):
    """sandbox = no: the self-test finds the holes, logs "... was allowed"
    and the worker exits 1; a worker that keeps failing ends the helper."""
    d = daemon_factory({("daemon", "sandbox"): "no", ("discovery", "enabled"): "no"},
                       start=False)
    d.args.append("--sandbox-selftest")
    d.launch()
    try:
        d.wait_log(r"sandbox self-test: %s.* was allowed" % SELFTEST_ATTEMPTS[0][1], timeout=5.0)
        d.wait_log(r"the worker exited with status 1; starting another in 300 ms", timeout=5.0)
        # five failing starts within a minute: the helper gives up
        rc = d.proc.wait(15)
        assert rc == 1, "kvmstatd exit status %s, want 1\n%s" % (rc, d.log())
        d.wait_log(r"the fifth time within a minute", timeout=1.0)
        denied_all = d.log_lines(ALL_DENIED)
        assert not denied_all, "self-test claims success without a sandbox: %r" % denied_all
        failures = d.log_lines(r"the worker exited with status (\d+)")
        assert failures and all(re.search(r"exited with status 1\b", l) for l in failures), (
            "every self-test failure must end its worker with status 1: %r" % failures)
    finally:
        d.stop(check=False)
