"""Exit telemetry (BPF) on real VMs: the counts on /metrics equal the VMM's
own counts of KVM_RUN returns, for the right VM and vCPU; round-trip
histograms count every exit; VMs created and destroyed in a loop never
leak counts into each other; the worker reads the maps unprivileged.

The oracle is the demo VMM itself (--print-exits: what each vCPU thread
saw come back from KVM_RUN), independent of the BPF program. Tests skip
when /dev/kvm or the BPF program is unavailable, saying which."""

import os
import re
import signal
import time

import pytest

import harness

_EXITS = re.compile(r"EXITS name=(\S+) vcpu=(\d+) io=(\d+) hlt=(\d+) intr=(\d+) errors=(\d+)")


@pytest.fixture
def bpf_daemon(daemon_factory, kvm):
    d = daemon_factory(harness.BPF_ON)
    return harness.require_bpf(d)


def stop_and_count(vmm):
    """SIGTERM the demo VMM, wait, and return {(vm, vcpu): {io, hlt, intr, errors}}."""
    vmm.proc.send_signal(signal.SIGTERM)
    vmm.proc.wait(15)
    os.set_blocking(vmm.proc.stdout.fileno(), True)
    out = vmm._buf + vmm.proc.stdout.read()
    counts = {}
    for m in _EXITS.finditer(out.decode()):
        counts[(m.group(1), m.group(2))] = {
            "io": int(m.group(3)), "hlt": int(m.group(4)),
            "intr": int(m.group(5)), "errors": int(m.group(6))}
    return counts


def series(expo, name, **labels):
    out = {}
    for (_, lab), v in expo.matching(name, **labels).items():
        d = dict(lab)
        out[(d["vm"], d["vcpu"])] = v
    return out


def test_userspace_io_exits_equal_the_vmms_own_count(bpf_daemon, demo_vmm):
    vmm = demo_vmm(bpf_daemon.socket, vms=2, vcpus=2, name_prefix="bpfio-", hz=500,
                   extra=["--print-exits"])
    names = [vm.name for vm in vmm.vms]
    harness.wait_for_vms(bpf_daemon, names)
    # every vCPU's io exits are counted while it runs
    harness.wait_until(lambda: len([k for k, v in series(
        bpf_daemon.scrape(), "kvm_vcpu_userspace_exits_total", reason="io").items()
        if k[0] in names and v > 100]) == 4, 60, what="io exits of all 4 vCPUs over 100")
    counts = stop_and_count(vmm)
    assert len(counts) == 4, counts
    # the worker copies each slot when it sees the VMM exit: two ticks later
    expo = bpf_daemon.settled()
    io = series(expo, "kvm_vcpu_userspace_exits_total", reason="io")
    for (vm, vcpu), c in counts.items():
        assert c["io"] > 100, c
        assert io.get((vm, vcpu)) == c["io"], (vm, vcpu, io, counts)
    # round trips: every io exit but possibly the last (stopped before re-entry)
    hist = series(expo, "kvm_vcpu_exit_roundtrip_seconds_count", kind="userspace",
                  reason="io")
    for (vm, vcpu), c in counts.items():
        assert c["io"] - 1 <= hist[(vm, vcpu)] <= c["io"], (vm, vcpu, hist, c)
        inf = expo.matching("kvm_vcpu_exit_roundtrip_seconds_bucket", vm=vm, vcpu=vcpu,
                            kind="userspace", reason="io", le="+Inf")
        assert list(inf.values()) == [hist[(vm, vcpu)]]


def test_userspace_hlt_exits_in_user_halt_mode(bpf_daemon, demo_vmm):
    vmm = demo_vmm(bpf_daemon.socket, vms=1, vcpus=1, name_prefix="bpfhlt-", hz=200,
                   extra=["--print-exits", "--halt-mode", "user"])
    name = vmm.vms[0].name
    harness.wait_for_vms(bpf_daemon, [name])
    harness.wait_until(lambda: series(bpf_daemon.scrape(), "kvm_vcpu_userspace_exits_total",
                                      reason="hlt").get((name, "0"), 0) > 50, 60,
                       what="over 50 hlt exits")
    counts = stop_and_count(vmm)
    expo = bpf_daemon.settled()
    (vm, vcpu), c = next(iter(counts.items()))
    assert c["hlt"] > 50, c
    for reason in ("io", "hlt"):
        got = series(expo, "kvm_vcpu_userspace_exits_total", reason=reason)
        assert got.get((vm, vcpu)) == c[reason], (reason, got, c)


def test_no_counts_leak_between_vms_created_in_a_loop(bpf_daemon, demo_vmm):
    """Each short-lived VMM's vCPUs reuse slots (and struct kvm addresses) of
    the ones before: every VM's counts must be its own, exactly."""
    for i in range(6):
        vmm = demo_vmm(bpf_daemon.socket, vms=1, vcpus=2, name_prefix="loop%d-" % i, hz=1000,
                       extra=["--print-exits"])
        harness.wait_for_vms(bpf_daemon, [vmm.vms[0].name])
        time.sleep(0.3 + 0.1 * i)
        counts = stop_and_count(vmm)
        io = series(bpf_daemon.settled(), "kvm_vcpu_userspace_exits_total", reason="io")
        for key, c in counts.items():
            assert io.get(key) == c["io"], (i, key, io.get(key), c)


def test_worker_reads_the_maps_without_capabilities(bpf_daemon, demo_vmm):
    vmm = demo_vmm(bpf_daemon.socket, vms=1, vcpus=1, name_prefix="bpfcap-", hz=500)
    name = vmm.vms[0].name
    harness.wait_for_vms(bpf_daemon, [name])
    # the worker has read the maps: a count is on the page
    harness.wait_until(lambda: series(bpf_daemon.scrape(), "kvm_vcpu_userspace_exits_total",
                                      reason="io").get((name, "0")), 60, what="io exits counted")
    worker = bpf_daemon.worker_pid()
    st = harness.proc_status(worker)
    for cap in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        assert int(st[cap], 16) == 0, (cap, st[cap])
    assert st["Seccomp"] == "2"
    maps = open("/proc/%d/maps" % worker).read()
    bpf_maps = [l for l in maps.splitlines() if "anon_inode:bpf-map" in l]
    assert bpf_maps and all(l.split()[1].startswith("r--s") for l in bpf_maps), bpf_maps
    helper = harness.proc_status(bpf_daemon.proc.pid)
    assert int(helper["CapEff"], 16) & ((1 << 38) | (1 << 39)) == 0, helper["CapEff"]
    expo = harness.parse_exposition(bpf_daemon.get().text)
    assert series(expo, "kvm_vcpu_userspace_exits_total", reason="io")


def test_bpf_off_works_as_before(daemon_factory, demo_vmm):
    d = daemon_factory({("daemon", "bpf"): "off"})
    vmm = demo_vmm(d.socket, vms=1, vcpus=1, name_prefix="bpfoff-", hz=200)
    harness.wait_for_vms(d, [vmm.vms[0].name])
    expo = d.settled()
    assert expo.value("kvmstatd_bpf_enabled") == 0
    assert not expo.matching("kvm_vcpu_userspace_exits_total")
    assert expo.matching("kvm_vcpu_exits_total")
    assert not d.log_lines("exit telemetry")
