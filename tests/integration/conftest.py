"""Fixtures of the kvmstatd integration suite.

The binaries under build/ are made by `make check` before the suite runs;
when one is missing the tests that need it fail (they do not skip): a
missing build is a broken build. Tests that need a usable /dev/kvm skip with
"no usable /dev/kvm: ..."; tests that need root skip likewise.

Run: /usr/bin/python3 -m pytest tests/integration
KVMSTATD_BUILD_DIR=DIR runs it against the binaries in DIR instead of build/.
Tests marked `lab` run only in the lab guest (LAB_GUEST=1).
KVMSTATD_NO_SKIP=1 (set by .ci/run) turns every skip into a failure (for
want of KVM, root or the lab, or of a tool or kernel feature a test needs):
CI cannot pass by skipping. A test that applies to one parametrisation only
is deselected for the others (@pytest.mark.only_param), not skipped. At the end, one line says
where the KVM tests ran (host, or the lab guest of tests/lab/) and how
they ended.
Every test ends with the fds of the daemons it used back at their baseline
(_no_fd_leaks here, Daemon.stop in harness.py).
Modules: statsfd.py is the independent stats-fd reader (the oracle) and the
raw registration client; harness.py starts and checks the processes.
"""

import os
import platform
import signal

import pytest

import harness
import statsfd


TEST_DEADLINE_S = 90


@pytest.fixture(autouse=True)
def _deadline(request):
    """No test may hang: each one fails after TEST_DEADLINE_S seconds, or
    the seconds of its @pytest.mark.deadline(N)."""
    mark = request.node.get_closest_marker("deadline")
    limit = mark.args[0] if mark else TEST_DEADLINE_S

    def expired(signum, frame):
        raise TimeoutError("test still running after %d s" % limit)
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(limit)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _require_binary(path):
    if not os.access(path, os.X_OK):
        pytest.fail("%s is missing or not executable: build it first (make, or make check)"
                    % os.path.relpath(path, harness.REPO), pytrace=False)
    return path


@pytest.fixture(autouse=True)
def _no_fd_leaks():
    """After every test, a daemon that outlives it (a module's) holds no
    more fds than when it was ready (harness.Daemon.assert_fds_at_baseline);
    the daemons a test made itself are checked as they stop."""
    before = list(harness.LIVE_DAEMONS)
    yield
    for d in before:
        if d in harness.LIVE_DAEMONS:
            d.assert_fds_at_baseline()


@pytest.fixture(scope="session")
def kvmstatd_bin():
    return _require_binary(harness.KVMSTATD)


@pytest.fixture(scope="session")
def demo_vmm_bin():
    return _require_binary(harness.DEMO_VMM)


SKIP_NEEDS_ROOT = "needs root: "
SKIP_NO_KVM = "no usable /dev/kvm: "
SKIP_NEEDS_LAB = "runs only in the lab guest: "


def pytest_runtest_setup(item):
    """Tests marked `lab` change the machine (make install, units) or need
    systemd as PID 1: only in the lab guest (tests/lab/), which sets
    LAB_GUEST=1. tests/lab/integration runs them there on every machine."""
    if item.get_closest_marker("lab") and os.environ.get("LAB_GUEST") != "1":
        pytest.skip(SKIP_NEEDS_LAB + "it changes the machine or needs systemd as PID 1")


@pytest.fixture(scope="session")
def root():
    if os.geteuid() != 0:
        pytest.skip(SKIP_NEEDS_ROOT + "kvmstatd's helper is privileged and changes user")


@pytest.fixture(scope="session")
def kvm():
    why = statsfd.kvm_usable()
    if why:
        pytest.skip(SKIP_NO_KVM + why)


@pytest.fixture
def free_port():
    return harness.free_port()


@pytest.fixture
def daemon_factory(kvmstatd_bin, root):
    """daemon_factory(overrides={(section, key): value}) -> started Daemon.
    Every daemon still running at teardown must stop cleanly on SIGTERM."""
    made = []

    def make(overrides=None, user=None, start=True, listen_port=None):
        d = harness.Daemon(overrides, user=user, listen_port=listen_port)
        made.append(d)
        if start:
            d.start()
        return d

    yield make
    harness.stop_daemons(made)


@pytest.fixture
def daemon(daemon_factory):
    """A running kvmstatd with .url .socket .proc .worker_pid(); on teardown
    SIGTERM must make it exit 0, remove its socket and leave no worker."""
    return daemon_factory()


@pytest.fixture
def demo_vmm(demo_vmm_bin, kvm):
    """demo_vmm(socket_path, vms=1, vcpus=1, name_prefix=None, register=True,
    hz=None) -> started DemoVmm whose .vms were parsed from its stdout."""
    made = []

    def make(socket_path, **kw):
        v = harness.DemoVmm(socket_path, **kw)
        made.append(v)
        v.start()
        return v

    yield make
    for v in reversed(made):
        v.stop()


def _no_skip():
    return os.environ.get("KVMSTATD_NO_SKIP", "0") not in ("", "0")


def _skip_reason(report):
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        return str(report.longrepr[2])
    return str(report.longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under KVMSTATD_NO_SKIP, every skip fails: a skipped test proved nothing."""
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and _no_skip()) or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report)
    report.outcome = "failed"
    if any(s in reason for s in (SKIP_NO_KVM, SKIP_NEEDS_ROOT, SKIP_NEEDS_LAB)):
        report.longrepr = ("KVMSTATD_NO_SKIP is set, so this skip fails: %s\n"
                           "(make check runs such tests in the lab: tests/lab/README.md)" % reason)
    else:
        report.longrepr = ("KVMSTATD_NO_SKIP is set, so this skip fails: %s\n"
                           "(scripts/install-deps.sh and the lab's image install what the "
                           "tests need)" % reason)


def _needs_kvm(item):
    return "kvm" in getattr(item, "fixturenames", ())


def pytest_terminal_summary(terminalreporter):
    """One line: where the KVM tests ran and how they ended."""
    if terminalreporter.config.option.collectonly or not terminalreporter.config._kvm_items:
        return
    counts = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            item = terminalreporter.config._kvm_items.get(report.nodeid)
            if item is None or (report.when != "call" and outcome == "passed"):
                continue
            counts[report.nodeid] = outcome
    total = {o: 0 for o in ("passed", "failed", "error", "skipped")}
    for outcome in counts.values():
        total[outcome] += 1
    if os.environ.get("LAB_GUEST") == "1":
        where = "in the lab (Debian 12 guest, kernel %s, nested KVM under TCG)" % platform.release()
    else:
        where = "on this host (kernel %s)" % platform.release()
    terminalreporter.write_line(
        "KVM tests ran %s: %d passed, %d failed, %d errors, %d skipped (of %d)"
        % (where, total["passed"], total["failed"], total["error"], total["skipped"],
           len(terminalreporter.config._kvm_items)))


def pytest_collection_modifyitems(config, items):
    # A test that applies to one parametrisation of a shared fixture (say,
    # one configuration of a module's stack) names it with
    # @pytest.mark.only_param(fixture, value); the other combinations are
    # deselected, not skipped: they do not exist, so CI's no-skip rule holds.
    # Tests marked patched_kernel need the kernel of kernel-patches/
    # kvm-stats-observer: they run when KVMSTATD_PATCHED_KERNEL=1 (make
    # lab-kernel-check, tests/lab/patched-kernel), and are deselected otherwise.
    patched = os.environ.get("KVMSTATD_PATCHED_KERNEL", "0") not in ("", "0")
    keep, drop = [], []
    for item in items:
        m = item.get_closest_marker("only_param")
        spec = getattr(item, "callspec", None)
        if m and (spec is None or m.args[0] not in spec.params):
            # a misspelt fixture would deselect every combination, silently
            raise pytest.UsageError("%s: only_param(%r, ...) names no parameter of this test"
                                    % (item.nodeid, m.args[0]))
        if m and spec.params[m.args[0]] != m.args[1]:
            drop.append(item)
        elif item.get_closest_marker("patched_kernel") and not patched:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    config._kvm_items = {item.nodeid: item for item in items if _needs_kvm(item)}
