"""Counters of running guests rise from scrape to scrape and never go back;
histograms stay internally consistent; kvmstatd_sources counts the fds."""

import math
import time

import harness
import statsfd


def _histograms(expo):
    """{(family, labels-without-le): [(le, value)...]} and their _count."""
    buckets, counts = {}, {}
    for (n, lab), v in expo.samples.items():
        if not n.startswith("kvm_"):
            continue
        d = dict(lab)
        if n.endswith("_bucket"):
            le = d.pop("le")
            buckets.setdefault((n[:-7], frozenset(d.items())), []).append(
                (float("inf") if le == "+Inf" else float(le), v))
        elif n.endswith("_count"):
            counts[(n[:-6], lab)] = v
    return buckets, counts


def test_vcpu_exit_counters_rise_while_guests_run(daemon, demo_vmm):
    vmm = demo_vmm(daemon.socket, vms=1, vcpus=2, name_prefix="it-rise", hz=500)
    name = vmm.vms[0].name
    harness.wait_for_vms(daemon, [name])
    first = daemon.scrape()
    time.sleep(1.0)
    second = daemon.scrape()
    a, b = harness.vcpu_exits(first, name), harness.vcpu_exits(second, name)
    assert sorted(a) == ["0", "1"], a
    for vcpu in a:
        assert b[vcpu] > a[vcpu], "kvm_vcpu_exits_total{vcpu=%s} did not rise: %s -> %s" % (
            vcpu, a[vcpu], b[vcpu])


def test_counters_never_go_backwards(daemon, demo_vmm):
    vmm = demo_vmm(daemon.socket, vms=2, vcpus=2, name_prefix="it-mono", hz=1000)
    harness.wait_for_vms(daemon, [vm.name for vm in vmm.vms])
    prev = None
    for _ in range(5):
        expo = daemon.scrape(le_key=statsfd.le_key)
        cur = {k: v for k, v in expo.samples.items()
               if k[0].startswith("kvm_") and k[0].endswith(("_total", "_count", "_sum", "_bucket"))}
        assert cur, "no counter series"
        if prev is not None:
            assert set(cur) == set(prev), "counter series appeared or vanished between scrapes"
            back = [(k, prev[k], v) for k, v in cur.items() if v < prev[k]]
            assert not back, "counters went backwards: %r" % back[:5]
        prev = cur
        time.sleep(0.3)


def test_histograms_are_cumulative_and_end_in_inf(daemon, demo_vmm):
    vmm = demo_vmm(daemon.socket, vms=1, vcpus=2, name_prefix="it-hist", hz=500)
    harness.wait_for_vms(daemon, [vm.name for vm in vmm.vms])
    time.sleep(0.5)
    expo = daemon.scrape()
    buckets, counts = _histograms(expo)
    assert buckets, "no histograms served"
    assert any(f == "kvm_vcpu_halt_wait_seconds" for f, _ in buckets), sorted({f for f, _ in buckets})
    for key, bs in buckets.items():
        bs.sort()
        les = [le for le, _ in bs]
        assert len(set(les)) == len(les), "duplicate le in %s" % (key,)
        assert math.isinf(les[-1]), "%s has no +Inf bucket" % (key,)
        vals = [v for _, v in bs]
        assert vals == sorted(vals), "%s buckets are not cumulative: %r" % (key, vals)
        assert counts.get(key) == vals[-1], "%s _count %r != +Inf bucket %r" % (
            key, counts.get(key), vals[-1])


def test_sources_gauge_counts_vm_and_vcpu_fds(daemon, demo_vmm):
    vmm = demo_vmm(daemon.socket, vms=2, vcpus=3, name_prefix="it-src")
    harness.wait_for_vms(daemon, [vm.name for vm in vmm.vms])
    expo = daemon.scrape()
    assert expo.value("kvmstatd_sources", kind="vm") == 2
    assert expo.value("kvmstatd_sources", kind="vcpu") == 6
