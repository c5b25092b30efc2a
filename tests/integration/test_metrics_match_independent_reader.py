"""Every kvm_vm_*/kvm_vcpu_* value kvmstatd serves equals what the test
suite's own stats-fd reader (statsfd.py) predicts from the same VMs.

The oracle reads pidfd_getfd copies of the demo VMM's stats fds once before
and once after the scrape (with a pause of a few poll intervals before the
scrape, so the daemon's newest sample is younger than the first read):
every scraped value must lie between the two readings.
"""

import math
import os
import time

import harness
import statsfd
from harness import SETTLE


def _kvm_series(expo):
    return {k: v for k, v in expo.samples.items() if harness.from_stats_fds(k[0])}


def _fmt(key):
    name, labels = key
    return "%s{%s}" % (name, ",".join('%s="%s"' % kv for kv in sorted(labels)))


def assert_matches_oracle(expo, before, after, kinds):
    """Scraped values lie between the oracle's two reads. A boolean gauge
    (e.g. kvm_vcpu_blocking) may flip and back in between: 0 or 1 will do."""
    got = _kvm_series(expo)
    assert set(before) == set(after), "the oracle's series changed between its two reads"
    missing = sorted(set(before) - set(got))
    unexpected = sorted(set(got) - set(before))
    assert not missing and not unexpected, (
        "series differ from the independent reader:\nmissing (%d): %s\nunexpected (%d): %s"
        % (len(missing), [_fmt(k) for k in missing[:15]],
           len(unexpected), [_fmt(k) for k in unexpected[:15]]))
    bad = []
    for key, v in got.items():
        b, a = before[key], after[key]
        if kinds[key] == "boolean":
            if v not in (0.0, 1.0):
                bad.append("%s = %r, not 0/1" % (_fmt(key), v))
            continue
        lo, hi = min(a, b), max(a, b)
        tol = 1e-9 * max(abs(lo), abs(hi)) + 1e-15
        if not (lo - tol <= v <= hi + tol) or math.isnan(v):
            bad.append("%s = %r, oracle before %r after %r" % (_fmt(key), v, b, a))
    assert not bad, "%d values outside the oracle's window:\n%s" % (len(bad), "\n".join(bad[:20]))


def assert_counters_forward(before, after, kinds):
    back = [_fmt(k) for k in before
            if kinds[k] in ("counter", "histogram") and after[k] < before[k]]
    assert not back, "oracle saw counters go backwards: %s" % back[:10]


def assert_vm_info(expo, name, pid):
    infos = expo.matching("kvm_vm_info", vm=name)
    assert len(infos) == 1, "kvm_vm_info for %s: %r" % (name, infos)
    (key, value), = infos.items()
    assert value == 1
    labels = dict(key[1])
    want = {"vm": name, "kernel_id": "kvm-%d" % pid, "vmm_pid": str(pid),
            "vmm_comm": harness.proc_comm(pid), "source": "registered"}
    assert labels == want, "kvm_vm_info labels %r, want %r" % (labels, want)


def test_demo_vm_series_equal_independent_reader(daemon, demo_vmm):
    vmm = demo_vmm(daemon.socket, vms=2, vcpus=2, name_prefix="it-match", hz=200)
    assert [vm.registered for vm in vmm.vms] == ["yes", "yes"], vmm.lines
    names = [vm.name for vm in vmm.vms]
    assert len(set(names)) == 2
    harness.wait_for_vms(daemon, names)

    kinds = {}
    before = harness.oracle(vmm.vms, kinds)
    time.sleep(SETTLE)
    expo = daemon.scrape(le_key=statsfd.le_key)
    after = harness.oracle(vmm.vms)

    assert_counters_forward(before, after, kinds)
    assert_matches_oracle(expo, before, after, kinds)
    for vm in vmm.vms:
        assert_vm_info(expo, vm.name, vm.pid)
    assert len(expo.matching("kvm_vm_info")) == 2
    # the guests ran: the comparison above was not one of zeros
    for vm in vmm.vms:
        exits = harness.vcpu_exits(expo, vm.name)
        assert sorted(exits) == ["0", "1"] and all(v > 0 for v in exits.values()), exits


def test_repeated_scrapes_stay_within_oracle_window(daemon, demo_vmm):
    vmm = demo_vmm(daemon.socket, vms=1, vcpus=3, name_prefix="it-repeat", hz=500)
    harness.wait_for_vms(daemon, [vm.name for vm in vmm.vms])
    for _ in range(3):
        kinds = {}
        before = harness.oracle(vmm.vms, kinds)
        time.sleep(SETTLE)
        expo = daemon.scrape(le_key=statsfd.le_key)
        after = harness.oracle(vmm.vms)
        assert_matches_oracle(expo, before, after, kinds)


def test_vm_registered_by_test_process_matches_reader(daemon, kvm):
    with statsfd.create_vm(vcpus=2) as vm:
        st, acc, reason = statsfd.register_vm(daemon.socket, 7, vm.vm_stats_fd,
                                              vm.vcpu_stats_fds, name="it-own")
        assert (st, acc) == (0, 3), reason
        harness.wait_for_vms(daemon, ["it-own"])
        kinds = {}
        before = statsfd.expected_for_vm(vm.vm_stats_fd, vm.vcpu_stats_fds, "it-own", kinds)
        time.sleep(SETTLE)
        expo = daemon.scrape(le_key=statsfd.le_key)
        after = statsfd.expected_for_vm(vm.vm_stats_fd, vm.vcpu_stats_fds, "it-own")
        assert_matches_oracle(expo, before, after, kinds)
        assert_vm_info(expo, "it-own", os.getpid())


def test_unnamed_vm_is_labelled_with_kernel_id(daemon, kvm):
    with statsfd.create_vm(vcpus=1) as vm:
        st, acc, reason = statsfd.register_vm(daemon.socket, 8, vm.vm_stats_fd,
                                              vm.vcpu_stats_fds, name="")
        assert (st, acc) == (0, 2), reason
        kernel_id = statsfd.StatsFd(vm.vm_stats_fd).id
        assert kernel_id == "kvm-%d" % os.getpid()
        expo = harness.wait_for_vms(daemon, [kernel_id])
        assert_vm_info(expo, kernel_id, os.getpid())
        assert expo.matching("kvm_vcpu_exits_total", vm=kernel_id, vcpu="0")
