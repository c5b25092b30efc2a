"""The whole daemon on a kernel with the kvm-stats-observer series
(kernel-patches/kvm-stats-observer): discovery borrows an unmodified VMM's
VM and vCPU fds, asks KVM for stats fds itself and serves them with
source="borrowed"; a vCPU busy inside KVM_RUN does not hold the helper up.
And kvmstat profile on the guest-callchains series (the same lab kernel
has both): a guest with a known frame-pointer chain (main -> a -> b -> c,
spinning in c; tests/kernel/guest-callchains.c --hold) is folded into
that chain, named from the map the program writes, in 64-bit and 32-bit
mode.

These tests are marked `patched_kernel`: they are deselected unless
KVMSTATD_PATCHED_KERNEL=1, which `make lab-kernel-check` sets when it
boots the lab image with that kernel (tests/lab/kernel). There, a kernel
that does not lend stats fds fails them: they never skip.

The oracle for values is QEMU itself (QMP query-stats reads the same
stats fds from inside QEMU); the oracle for "inside KVM_RUN" is the vCPU
thread's guest time (/proc/PID/task/TID/stat, field 43) growing before
and after the borrow, and the demo VMM's own count of KVM_RUN returns
(--print-exits) staying at zero: the thread never left KVM_RUN."""

import os
import re
import select
import signal
import subprocess
import time

import pytest

import harness
import qemu as q

pytestmark = pytest.mark.patched_kernel

DISCOVERY = {("discovery", "enabled"): "yes", ("discovery", "interval_s"): "1",
             ("discovery", "borrow"): "yes", ("daemon", "bpf"): "off"}
# built for the lab kernel by tests/lab/patched-kernel (the lab has no gcc)
GUEST_CHAINS = os.path.join(harness.BUILD, "lab-kernel", "guest-callchains")
KVMSTAT = os.path.join(harness.REPO, "cli", "kvmstat")


@pytest.fixture(autouse=True)
def lends(kvm):
    """The kernel must lend stats fds: this is its test, not a skip."""
    import test_discovery
    assert test_discovery.kernel_lends_stats_fds(), \
        "this kernel answers EIO to a borrowed VM fd: not the kvm-stats-observer series " \
        "(uname -r: %s)" % os.uname().release


def borrowed_infos(d, pid):
    return harness.vm_infos(d.scrape(), vmm_pid=str(pid), source="borrowed")


def held_fds(pid):
    return [l for l in harness.fd_links(pid).values()
            if l == "anon_inode:kvm-vm" or l.startswith("anon_inode:kvm-vcpu:")]


def guest_ticks(pid):
    """{tid: guest time in clock ticks} of pid's threads (stat field 43:
    time spent running a guest; /proc/PID/task/TID/syscall cannot tell, it
    says "running" for a runnable thread)."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = int(fields[40])  # field 43; fields[0] is field 3
    return out


def in_guest(pid, since):
    """Threads of pid whose guest time grew since the `since` reading."""
    now = guest_ticks(pid)
    return {t for t, v in now.items() if v > since.get(t, 0)}


def test_an_unmodified_qemu_is_borrowed_and_served_equal_to_its_own_query_stats(
        daemon_factory):
    why = q.qemu_usable()
    assert not why, why
    d = daemon_factory(DISCOVERY)
    vm = q.Qemu(None, name_args=("-name", "guest=borrowed,debug-threads=on"), smp=2,
                preload=False, debug=False).start()
    try:
        # no shim, no stats fd of its own: only its VM and vCPU fds
        links = harness.fd_links(vm.pid).values()
        assert "anon_inode:kvm-vm" in links and not any("stats" in l for l in links), links
        harness.wait_until(lambda: borrowed_infos(d, vm.pid), 30, 0.1,
                           "kvm_vm_info{source=\"borrowed\"} of QEMU %d" % vm.pid)
        info = borrowed_infos(d, vm.pid)[0]
        assert info["vm"] == "borrowed", info  # QEMU's -name
        harness.wait_until(lambda: sorted(harness.vcpu_exits(d.scrape(), "borrowed")) ==
                           ["0", "1"], 30, 0.1, "both borrowed vCPUs")
        d.wait_log(r"this kernel gives stats fds to an observer")
        # the borrowed fds were closed at once: only stats fds stay
        for pid in (d.proc.pid, d.worker_pid()):
            assert not held_fds(pid), (pid, held_fds(pid))
        harness.wait_until(lambda: d.scrape().total("kvm_vcpu_exits_total", vm="borrowed") > 0,
                           60, what="exits of the borrowed guest")
        vm.qmp.cmd("stop")
        q.check_served_equals_qmp(d, vm, "borrowed", 2)
    finally:
        vm.stop()
    harness.wait_vms_gone(d, ["borrowed"], 30)


def test_borrowing_vcpus_inside_kvm_run_does_not_hold_the_helper_up(daemon_factory,
                                                                     demo_vmm_bin):
    """The demo holds only its VM and vCPU fds, as an unmodified VMM does
    (--no-stats-fds), and its vCPUs spin in the guest and never exit to
    userspace, so their threads stay inside KVM_RUN, holding each vCPU's
    mutex. A stock
    kernel's KVM_GET_STATS_FD takes that mutex and waits for ever (the
    borrow never completes: this test times out); the series does not.
    Discovery borrows them, and the helper then serves a registration."""
    spinning = harness.DemoVmm("/nonexistent.sock", vms=1, vcpus=2, name_prefix="spin-",
                               register=False, extra=["--spin", "--no-stats-fds",
                                                      "--print-exits"]).start(60)
    try:
        before = guest_ticks(spinning.pid)
        harness.wait_until(lambda: len(in_guest(spinning.pid, before)) == 2, 30, 0.2,
                           "both vCPU threads running the guest")
        d = daemon_factory(DISCOVERY)
        t0 = time.monotonic()
        harness.wait_until(lambda: len(borrowed_infos(d, spinning.pid)) == 1 and len(
            harness.vcpu_exits(d.scrape(), borrowed_infos(d, spinning.pid)[0]["vm"])) == 2,
            30, 0.1, "the spinning VM and its 2 vCPUs, borrowed")
        took = time.monotonic() - t0
        # still running the guest after the borrow
        after = guest_ticks(spinning.pid)
        harness.wait_until(lambda: len(in_guest(spinning.pid, after)) == 2, 30, 0.2,
                           "both vCPU threads still running the guest")
        # the helper is free: a VMM registers and is served
        other = harness.DemoVmm(d.socket, vms=1, vcpus=1, name_prefix="after-spin-").start(60)
        try:
            harness.wait_for_vms(d, [other.vms[0].name], timeout=30)
        finally:
            other.stop()
        for pid in (d.proc.pid, d.worker_pid()):
            assert not held_fds(pid), (pid, held_fds(pid))
        print("borrowed 2 vCPUs inside KVM_RUN %.2f s after the daemon started" % took)
    finally:
        spinning.proc.send_signal(signal.SIGTERM)
        spinning.proc.wait(30)
        os.set_blocking(spinning.proc.stdout.fileno(), True)
        out = (spinning._buf + spinning.proc.stdout.read()).decode()
    # the VMM's own count: KVM_RUN returned once, to the stop (EINTR, which
    # the demo counts as an error), and never before it
    runs = re.findall(r"EXITS name=\S+ vcpu=\d+ io=(\d+) hlt=(\d+) intr=(\d+) errors=(\d+)", out)
    assert len(runs) == 2 and all(r == ("0", "0", "0", "1") for r in runs), out


@pytest.mark.parametrize("mode,chain", [("good64", ["main", "a", "b", "c"]),
                                        ("good32", ["main32", "a32", "b32", "c32"])])
def test_kvmstat_profile_folds_a_guests_known_call_chain(tmp_path, mode, chain):
    assert os.access(GUEST_CHAINS, os.X_OK), \
        "%s is missing: tests/lab/patched-kernel builds it" % GUEST_CHAINS
    sysmap = str(tmp_path / "System.map")
    guest = subprocess.Popen([GUEST_CHAINS, "--hold", mode, "40", sysmap],
                             stdout=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([guest.stdout], [], [], 60)
        line = guest.stdout.readline() if ready else ""
        assert line.startswith("HOLD tid="), "guest-callchains did not start: %r" % line
        r = subprocess.run([KVMSTAT, "profile", "--pid", str(guest.pid), "--seconds", "8",
                            "--frequency", "199", "--symbols", sysmap, "--guest-only"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r
        stacks = {}
        for out in r.stdout.splitlines():
            m = re.fullmatch(r"(\S.*) (\d+)", out)
            assert m, out
            stacks[tuple(m.group(1).split(";"))] = int(m.group(2))
        total = sum(stacks.values())
        want = tuple("[guest] %s" % f for f in chain)
        print("%s: %d guest samples, %d with the chain %s" % (mode, total, stacks.get(want, 0),
                                                              ";".join(want)))
        assert total >= 50, (r.stdout, r.stderr)
        assert stacks.get(want, 0) * 10 >= total * 9, (want, stacks, r.stderr)
        assert "IP only" not in r.stderr, r.stderr
    finally:
        try:
            out, _ = guest.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            guest.kill()
            out, _ = guest.communicate()
    assert guest.returncode == 0, out  # the guest ran undisturbed: counted, no exit
