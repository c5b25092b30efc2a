"""Exit telemetry on a real QEMU guest: kvm_vcpu_userspace_exits_total
equals what the kernel's own kvm_userspace_exit tracepoint recorded for
QEMU's vCPU thread, counted through a private tracefs instance (an oracle
that shares nothing with the BPF program but the tracepoint itself).

QEMU (Debian's, with SeaBIOS) runs under the shim so it registers; it is
paused with QMP "stop" before the counts are compared, so both sides have
seen the same exits."""

import os
import re

import pytest

import harness
import qemu

TRACEFS = "/sys/kernel/tracing"
INSTANCE = os.path.join(TRACEFS, "instances", "kvmstatd-test-bpf-qemu")
# "  CPU 0/KVM-1234  [001] d..1.  12.345: kvm_userspace_exit: reason KVM_EXIT_IO (2)"
_LINE = re.compile(r"^\s*(.+?)-(\d+)\s+\[\d+\].*kvm_userspace_exit: reason (\S+)")
_REASON = {"KVM_EXIT_IO": "io", "KVM_EXIT_MMIO": "mmio", "KVM_EXIT_HLT": "hlt",
           "KVM_EXIT_INTR": "intr", "KVM_EXIT_SHUTDOWN": "shutdown"}


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


@pytest.fixture
def trace_instance():
    if not os.path.isdir(TRACEFS + "/events") and os.system(
            "mount -t tracefs nodev %s 2>/dev/null" % TRACEFS) != 0:
        pytest.skip("no tracefs at %s" % TRACEFS)
    if not os.path.isdir(TRACEFS + "/events/kvm/kvm_userspace_exit"):
        pytest.skip("no kvm_userspace_exit tracepoint")
    if os.path.isdir(INSTANCE):
        os.rmdir(INSTANCE)
    os.mkdir(INSTANCE)
    try:
        _write(INSTANCE + "/buffer_size_kb", "16384")
        yield INSTANCE
    finally:
        _write(INSTANCE + "/events/kvm/kvm_userspace_exit/enable", "0")
        os.rmdir(INSTANCE)


def traced_exits(inst, tids):
    """{reason: count} of kvm_userspace_exit lines from the given threads;
    fails if the ring lost any event."""
    for cpu in os.listdir(inst + "/per_cpu"):
        with open("%s/per_cpu/%s/stats" % (inst, cpu)) as f:
            stats = f.read()
        m = re.search(r"^overrun: (\d+)", stats, re.M)
        assert m and m.group(1) == "0", "trace ring lost events on %s:\n%s" % (cpu, stats)
    out = {}
    with open(inst + "/trace") as f:
        for line in f:
            m = _LINE.match(line)
            if m and int(m.group(2)) in tids:
                r = _REASON.get(m.group(3), m.group(3))
                out[r] = out.get(r, 0) + 1
    return out


def test_qemu_userspace_exits_equal_the_kernels_tracepoint(daemon_factory, kvm, trace_instance):
    if qemu.qemu_usable():
        pytest.skip(qemu.qemu_usable())
    d = daemon_factory(harness.BPF_ON)
    harness.require_bpf(d)
    _write(trace_instance + "/events/kvm/kvm_userspace_exit/enable", "1")
    vm = qemu.Qemu(d.socket, name_args=("-name", "guest=bpfqemu,debug-threads=on"), smp=1,
                   debug=False).start()
    try:
        harness.wait_for_vms(d, ["bpfqemu"])
        # SeaBIOS: port I/O first; then the guest idles in HLT
        harness.wait_until(lambda: d.scrape().total("kvm_vcpu_userspace_exits_total",
                                                    vm="bpfqemu") >= 100, 120,
                           what="100 userspace exits of QEMU's guest")
        vm.qmp.cmd("stop")  # returns once every vCPU is out of KVM_RUN
        _write(trace_instance + "/events/kvm/kvm_userspace_exit/enable", "0")
        tids = {int(t) for t in os.listdir("/proc/%d/task" % vm.pid)}
        want = traced_exits(trace_instance, tids)
        assert want.get("io", 0) > 0, "the tracepoint saw no port I/O from QEMU: %r" % want

        def got():
            e = harness.parse_exposition(d.get().text)
            out = {}
            for (_, lab), v in e.matching("kvm_vcpu_userspace_exits_total", vm="bpfqemu").items():
                r = dict(lab)["reason"]
                out[r] = out.get(r, 0) + int(v)
            return out if out == want else None
        try:
            harness.wait_until(got, 30.0, 0.2, "BPF counts equal to the tracepoint's")
        except AssertionError:
            e = harness.parse_exposition(d.get().text)
            raise AssertionError("tracepoint %r, /metrics %r" % (want, {
                dict(l)["reason"]: v for (_, l), v in
                e.matching("kvm_vcpu_userspace_exits_total", vm="bpfqemu").items()}))
    finally:
        vm.stop()
