"""The LD_PRELOAD shim (build/libkvmstat-preload.so) on unmodified QEMU.

Debian's qemu-system-x86_64 runs with the shim preloaded and registers its
VM and vCPUs; kvmstatd's values must equal QEMU's own QMP `query-stats`
for the same (stopped) guest. Without a daemon, with a socket that
misbehaves, or with a daemon that refuses, QEMU must behave as without the
shim. A Python "VMM" whose fcntl.ioctl() calls go through libc's ioctl()
checks return values, errno, fd tables and fork against runs without the
shim. QEMU is killed at teardown, always.
"""

import os
import re
import time

import pytest

import harness
import qemu as q
import statsfd

VM_NAME = "shimtest"
SMP = 4


@pytest.fixture
def qemu_factory(kvm):
    """qemu_factory(socket_path, **Qemu kwargs) -> started qemu.Qemu."""
    why = q.qemu_usable()
    if why:
        pytest.skip(why)
    made = []

    def make(socket_path, **kw):
        vm = q.Qemu(socket_path, **kw)
        made.append(vm)
        return vm.start()

    yield make
    for vm in reversed(made):
        vm.stop()


@pytest.fixture
def held_vmms(kvm):
    made = []

    def make(socket_path, **kw):
        v = q.HeldVmm(socket_path, **kw)
        made.append(v)
        return v

    yield make
    for v in reversed(made):
        v.stop()


def _vm_infos(expo, **labels):
    return [dict(k[1]) for k in expo.matching("kvm_vm_info", **labels)]


def _vcpus_of(expo, vm_name):
    return sorted(int(v) for v in harness.vcpu_exits(expo, vm_name))


def wait_registered(daemon, vm_name, vcpus, timeout=10.0):
    """Wait until the VM and `vcpus` vCPUs are served; returns the scrape."""
    def ok():
        e = daemon.scrape()
        return e if _vm_infos(e, vm=vm_name) and len(_vcpus_of(e, vm_name)) == vcpus else None
    return harness.wait_until(ok, timeout, 0.1, "VM %s with %d vCPUs in /metrics" % (vm_name, vcpus))


def assert_query_status(vm, want="running"):
    st = vm.qmp.cmd("query-status")
    assert st["status"] == want, st
    assert vm.alive()


def _fd_kinds(pid):
    """QEMU's fd table as a sorted list of link targets, numbers blanked out
    (socket:[N], anon_inode:kvm-vcpu:N, a deleted temp file /tmp/#N)."""
    return sorted(re.sub(r"\d+", "N", l) for l in harness.fd_links(pid).values())


# ------------------------------------------------------------- registered

def test_qemu_vm_and_vcpus_appear_with_the_qemu_name(daemon, qemu_factory):
    vm = qemu_factory(daemon.socket)
    expo = wait_registered(daemon, VM_NAME, SMP)

    infos = _vm_infos(expo, vm=VM_NAME)
    assert len(infos) == 1, infos
    # "discovered" when the helper's /proc scan ran in the instant the shim
    # held the VM's stats fd: the helper then adopts the registration into
    # the VM it found and keeps that VM's labels. The shim's log says it
    # registered either way.
    source = infos[0].pop("source")
    assert source in ("registered", "discovered"), source
    assert infos[0] == {"vm": VM_NAME, "kernel_id": "kvm-%d" % vm.pid, "vmm_pid": str(vm.pid),
                        "vmm_comm": harness.proc_comm(vm.pid)}, infos
    assert _vcpus_of(expo, VM_NAME) == list(range(SMP))
    # (no daemon-wide counts here: the helper's /proc discovery also finds
    # the VMs of whatever else runs on this host)

    lines = vm.shim_lines()
    assert sum("registered as handle" in l and '"%s"' % VM_NAME in l for l in lines) == 1, lines
    assert sum(l.endswith(": added") for l in lines) == SMP, lines
    # the shim's copies of the stats fds are closed: QEMU holds none
    assert harness.kvm_stats_links(vm.pid) == {}
    assert_query_status(vm)


def test_qemu_fd_table_is_what_it_is_without_the_shim(daemon, qemu_factory):
    plain = qemu_factory(None, preload=False, stopped=True)
    shimmed = qemu_factory(daemon.socket, stopped=True)
    wait_registered(daemon, VM_NAME, SMP)
    assert _fd_kinds(shimmed.pid) == _fd_kinds(plain.pid)


def test_plain_name_form(daemon, qemu_factory):
    vm = qemu_factory(daemon.socket, name_args=("-name", "foo"), smp=2)
    expo = wait_registered(daemon, "foo", 2)
    assert [i["vmm_pid"] for i in _vm_infos(expo, vm="foo")] == [str(vm.pid)]
    assert not _vm_infos(expo, vm=VM_NAME)


def test_qemu_without_name_is_labelled_by_pid(daemon, qemu_factory):
    vm = qemu_factory(daemon.socket, name_args=(), smp=1)
    expo = wait_registered(daemon, "kvm-%d" % vm.pid, 1)
    assert _vm_infos(expo, vm="kvm-%d" % vm.pid)[0]["vmm_pid"] == str(vm.pid)


def test_qemu_daemonize_registers_from_the_daemon(daemon, qemu_factory):
    """-daemonize forks before the VM is made: the daemon process, not the
    foreground one, registers."""
    vm = qemu_factory(daemon.socket, smp=2, daemonize=True)
    expo = wait_registered(daemon, VM_NAME, 2)
    assert _vm_infos(expo, vm=VM_NAME)[0]["vmm_pid"] == str(vm.pid) != str(vm.proc.pid)
    assert_query_status(vm)


def test_hot_plugged_vcpus_are_added(daemon, qemu_factory):
    vm = qemu_factory(daemon.socket, smp="1,maxcpus=3")
    wait_registered(daemon, VM_NAME, 1)
    for cpu in vm.qmp.cmd("query-hotpluggable-cpus"):
        if "qom-path" not in cpu:
            vm.qmp.cmd("device_add", driver=cpu["type"], id="cpu-%d" % cpu["props"]["core-id"],
                       **cpu["props"])
    expo = wait_registered(daemon, VM_NAME, 3)
    assert _vcpus_of(expo, VM_NAME) == [0, 1, 2]
    assert sorted(q.vcpu_ids(vm.qmp).values()) == [0, 1, 2]
    assert_query_status(vm)


# ------------------------------------------------------------------ values

def test_values_equal_qmp_query_stats(daemon, qemu_factory):
    """A stopped guest's counters stand still: every series kvmstatd serves
    for the VM and its vCPUs equals QEMU's own query-stats, exactly."""
    vm = qemu_factory(daemon.socket)
    wait_registered(daemon, VM_NAME, SMP)
    # let the guest (SeaBIOS) run, so counters are not all 0
    harness.wait_until(lambda: daemon.scrape().total("kvm_vcpu_exits_total", vm=VM_NAME) > 0,
                       30, what="exits of %s" % VM_NAME)
    vm.qmp.cmd("stop")
    assert_query_status(vm, "paused")
    q.check_served_equals_qmp(daemon, vm, VM_NAME, SMP)


# --------------------------------------------------- the VMM is unaffected

def test_qemu_runs_with_no_daemon(qemu_factory, tmp_path):
    missing = str(tmp_path / "no-such-dir" / "register.sock")
    vm = qemu_factory(missing)
    assert_query_status(vm)
    lines = vm.wait_shim_lines(lambda ls: ls, what="the shim's failure line")
    time.sleep(0.3)  # vCPUs are created by now; none may be tried
    assert_query_status(vm)
    lines = vm.shim_lines()
    assert len(lines) == 1 and "cannot reach kvmstatd" in lines[0] and missing in lines[0], lines
    assert harness.kvm_stats_links(vm.pid) == {}


def test_qemu_is_silent_without_debug(qemu_factory, tmp_path):
    vm = qemu_factory(str(tmp_path / "absent.sock"), debug=False)
    assert_query_status(vm)
    time.sleep(0.3)
    assert_query_status(vm)
    assert "kvmstat" not in vm.stderr(), vm.stderr()


def test_qemu_without_kvmstat_socket_uses_the_default_path(qemu_factory):
    """KVMSTAT_SOCKET unset: the default path, which need not exist here."""
    vm = qemu_factory(None)
    assert_query_status(vm)
    lines = vm.wait_shim_lines(lambda ls: ls, what="the shim's first line")
    assert "/run/kvmstatd/register.sock" in lines[0], lines


@pytest.mark.parametrize("mode", ["close", "silent", "backlog"])
def test_qemu_runs_with_a_misbehaving_socket(qemu_factory, tmp_path, mode):
    path = str(tmp_path / ("%s.sock" % mode))
    server = q.SeqpacketServer(path, mode)
    try:
        vm = qemu_factory(path)
        assert_query_status(vm)
        lines = vm.wait_shim_lines(lambda ls: ls, what="the shim's failure line")
        time.sleep(0.5)
        assert_query_status(vm)
        lines = vm.shim_lines()
        # one try for the VM, none for its vCPUs
        assert len(lines) == 1, lines
        assert "registration failed" in lines[0] or "cannot reach" in lines[0], lines
        if mode != "close":
            assert "timed out" in lines[0], lines
        # 200 ms waits: QEMU is up in well under the client's default 2 s x 3
        assert vm.started_in < 5.0, vm.started_in
        assert harness.kvm_stats_links(vm.pid) == {}
        vm.qmp.cmd("stop")
        assert_query_status(vm, "paused")
        vm.qmp.cmd("cont")
        assert_query_status(vm)
    finally:
        server.close()


def test_qemu_runs_when_the_daemon_refuses_the_vm(daemon_factory, qemu_factory):
    d = daemon_factory({("registration", "allow_users"): "nobody"})
    vm = qemu_factory(d.socket)
    assert_query_status(vm)
    vm.wait_shim_lines(lambda ls: ls, what="the shim's refusal line")
    time.sleep(0.5)
    lines = vm.shim_lines()
    assert len(lines) == 1 and "registration failed" in lines[0], lines
    # the helper's refusal and its reason reach the shim
    assert "Operation not permitted: " in lines[0], lines
    assert d.scrape().total("kvmstatd_registrations_rejected_total") >= 1
    assert not _vm_infos(d.scrape())
    assert_query_status(vm)


def test_qemu_runs_when_the_daemon_refuses_some_vcpus(daemon_factory, qemu_factory):
    d = daemon_factory({("registration", "max_vcpus_per_vm"): "2"})
    vm = qemu_factory(d.socket)
    expo = wait_registered(d, VM_NAME, 2)
    lines = vm.wait_shim_lines(lambda ls: sum("not added" in l for l in ls) == SMP - 2,
                               what="%d refused vCPUs" % (SMP - 2))
    assert all("No space left" in l for l in lines if "not added" in l), lines
    assert sum(l.endswith(": added") for l in lines) == 2, lines
    assert d.rejected("limit") >= SMP - 2
    assert len(_vcpus_of(d.scrape(), VM_NAME)) == 2
    assert _vm_infos(expo, vm=VM_NAME)
    assert_query_status(vm)


# ------------------------------------------------------- ioctl semantics

def test_ioctl_results_errno_and_fds_are_unchanged(daemon):
    """Odd and failing KVM_CREATE_* calls, and a fork, give the same results,
    errno and fd tables with the shim (daemon up or down) as without it."""
    if statsfd.kvm_usable():
        pytest.skip("no usable /dev/kvm: " + statsfd.kvm_usable())
    plain, _ = q.ioctl_probe(None, preload=False)
    shimmed, err = q.ioctl_probe(daemon.socket, env={"KVMSTAT_PRELOAD_DEBUG": "1"})
    nodaemon, err2 = q.ioctl_probe("/nonexistent/register.sock",
                                   env={"KVMSTAT_PRELOAD_DEBUG": "1"})
    assert shimmed == plain, "with the shim:\n%s\nwithout:\n%s\n%s" % (shimmed, plain, err)
    assert nodaemon == plain, "no daemon:\n%s\nwithout:\n%s\n%s" % (nodaemon, plain, err2)
    results = dict(plain)
    assert results["create_vm on /dev/null"]["errno"] != 0
    assert results["create_vcpu 0 again"]["errno"] != 0
    assert results["create_vm"]["ret"] == "fd" and results["create_vcpu 1"]["ret"] == "fd"
    assert results["child: create_vcpu on parent's vm"]["errno"] != 0
    assert all(r["gained_is_result"] for _, r in plain), plain

    lines = [l for l in err.splitlines() if l.startswith(q.SHIM_LOG_PREFIX)]
    pids = {int(re.match(r"kvmstat-preload\[(\d+)\]", l).group(1)) for l in lines}
    assert len(pids) == 2, lines  # the parent and the forked child, each its own
    assert sum("registered as handle" in l for l in lines) == 2, lines
    # parent: vCPUs 0 and 1; child: its own VM's vCPU 0
    assert sum(l.endswith(": added") for l in lines) == 3, lines
    assert not any("not added" in l or "failed" in l for l in lines), lines


def test_name_from_the_command_line_and_env(daemon, held_vmms):
    by_cmdline = held_vmms(daemon.socket, argv=("-name", "guest=py,,vm,debug-threads=on"))
    by_env = held_vmms(daemon.socket, argv=("-name", "ignored"), env={"KVMSTAT_NAME": "env-vm"})
    bad_env = held_vmms(daemon.socket, env={"KVMSTAT_NAME": "x" * 64})
    expo = harness.wait_for_vms(daemon, ["py,vm", "env-vm", "kvm-%d" % bad_env.pid])
    assert _vm_infos(expo, vm="py,vm")[0]["vmm_pid"] == str(by_cmdline.pid)
    assert _vm_infos(expo, vm="env-vm")[0]["vmm_pid"] == str(by_env.pid)
    assert not _vm_infos(expo, vm="ignored")


def test_a_taken_name_falls_back_to_no_name(daemon, held_vmms):
    first = held_vmms(daemon.socket, vcpus=2, env={"KVMSTAT_NAME": "dup"})
    second = held_vmms(daemon.socket, vcpus=2, env={"KVMSTAT_NAME": "dup"})
    harness.wait_for_vms(daemon, ["dup"])
    # the shim adds vCPUs one message at a time: wait for both, not just the VM
    expo = wait_registered(daemon, "kvm-%d" % second.pid, 2)
    assert _vm_infos(expo, vm="dup")[0]["vmm_pid"] == str(first.pid)
    assert _vcpus_of(expo, "kvm-%d" % second.pid) == [0, 1]
    assert any("trying without a name" in l for l in second.stderr().splitlines())


def test_a_reused_vm_fd_number_releases_the_old_vm(daemon, kvm):
    """VM fd closed, a new VM gets the same number: the shim unregisters the
    old one instead of pinning it for the life of the process."""
    script = r"""
import fcntl, os, sys
kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
a = fcntl.ioctl(kvm, 0xAE01, 0)
fcntl.ioctl(a, 0xAE41, 0)
os.close(a)
b = fcntl.ioctl(kvm, 0xAE01, 0)
assert a == b, (a, b)
print("READY", flush=True)
sys.stdin.read()
"""
    import subprocess
    import sys
    env = dict(os.environ, LD_PRELOAD=q.SHIM, KVMSTAT_SOCKET=daemon.socket,
               KVMSTAT_PRELOAD_DEBUG="1", KVMSTAT_NAME="reuse")
    p = subprocess.Popen([sys.executable, "-c", script], env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline().strip() == b"READY"
        harness.wait_until(
            lambda: daemon.scrape().total("kvmstatd_vms_exited_total") >= 1, 5.0, 0.1,
            "the first VM to be released")
        expo = harness.wait_for_vms(daemon, ["reuse"])
        assert len(_vm_infos(expo, vmm_pid=str(p.pid))) == 1
    finally:
        p.kill()
        out, err = p.communicate(timeout=10)
    assert b"unregistered" in err, err
