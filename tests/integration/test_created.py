"""OpenMetrics _created on the real daemon.

Every counter and histogram series is followed by its _created sample
(prometheus_client's OpenMetrics parser reports it), never in text 0.0.4
and never for gauges. Its value is a lower bound of when the kernel's
counters started: for a registered VM the registration, so between the
VMM's process start (/proc/<pid>/stat) and now; for a discovered VM the
VMM's process start itself. It does not move from scrape to scrape. The
self-metrics' counters carry the worker's start (or, for the totals the
helper hands over, the helper's). [metrics] created = no leaves them out.
"""

import os
import time

import pytest

import harness
from harness import SETTLE

KVM_PREFIXES = ("kvm_vm_", "kvm_vcpu_")


def _om_text(daemon):
    r = daemon.get("/metrics", headers={"Accept": harness.PROMETHEUS_ACCEPT})
    assert r.status == 200
    assert r.header("Content-Type") == harness.OPENMETRICS_CT
    return r.text


def _om_families(daemon):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    return list(text_string_to_metric_families(_om_text(daemon)))


def _boot_time():
    """Unix time of boot, as the daemon computes it (realtime - boottime)."""
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)


def process_start(pid):
    """Unix time a process started: /proc/<pid>/stat field 22 (clock ticks
    after boot)."""
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    ticks = int(fields[22 - 3])
    return _boot_time() + ticks / os.sysconf("SC_CLK_TCK")


def _created(families):
    """{(family, labels): created} of every KVM series that has one, and
    the set of (family, labels) of every counter/histogram series."""
    created, owners = {}, set()
    for f in families:
        if not f.name.startswith(KVM_PREFIXES):
            continue
        for s in f.samples:
            lab = frozenset((k, v) for k, v in s.labels.items() if k != "le")
            if s.name == f.name + "_created":
                assert (f.name, lab) not in created, ("two _created", f.name, lab)
                created[(f.name, lab)] = s.value
            elif f.type in ("counter", "histogram"):
                owners.add((f.name, lab))
    return created, owners


@pytest.fixture
def served(daemon, demo_vmm):
    vmm = demo_vmm(daemon.socket, vms=2, vcpus=2, name_prefix="it-created-", hz=300)
    harness.wait_for_vms(daemon, [vm.name for vm in vmm.vms])
    time.sleep(SETTLE)
    return daemon, vmm


def test_every_counter_and_histogram_series_has_created_and_gauges_none(served):
    daemon, vmm = served
    families = _om_families(daemon)
    created, owners = _created(families)
    assert owners, "no counters served"
    assert set(created) == owners, "series without _created: %s; _created without a series: %s" % (
        sorted(owners - set(created))[:5], sorted(set(created) - owners)[:5])
    types = {f.name: f.type for f in families}
    assert not [k for k in created if types[k[0]] not in ("counter", "histogram")]
    # one per VM stat and per vCPU stat of each of the 2 VMs x 2 vCPUs
    exits = [k for k in created if k[0] == "kvm_vcpu_exits"]
    assert len(exits) == 4, exits
    hist = [k for k in created if k[0] == "kvm_vcpu_halt_wait_seconds"]
    assert len(hist) == 4, hist
    # self-metrics: counters have one, gauges none
    self_created = {f.name for f in families if f.name.startswith("kvmstatd_")
                    for s in f.samples if s.name.endswith("_created")}
    self_counters = {f.name for f in families if f.name.startswith("kvmstatd_")
                     and f.type == "counter"}
    assert self_created == self_counters


def test_created_follows_its_series_line_by_line(served):
    """_created comes right after the counter sample, or after the
    histogram's _sum, with the same labels."""
    daemon, _ = served
    lines = _om_text(daemon).split("\n")
    for prev, line in zip(lines, lines[1:]):
        if line.startswith("#") or not line:
            continue
        name, rest = line.split("{", 1) if "{" in line else line.split(" ", 1)
        if not name.endswith("_created"):
            if prev.split("{")[0].split(" ")[0].endswith("_total") and not prev.startswith("#"):
                pytest.fail("counter sample not followed by _created: %r / %r" % (prev, line))
            continue
        fam = name[: -len("_created")]
        pname = prev.split("{")[0].split(" ")[0]
        assert pname in (fam + "_total", fam + "_sum"), (prev, line)
        if "{" in line:
            assert prev[len(pname):].split("}")[0] == line[len(name):].split("}")[0], (prev, line)


def test_text_format_has_no_created(served):
    daemon, _ = served
    from prometheus_client.parser import text_string_to_metric_families
    text = daemon.get("/metrics").text
    for f in text_string_to_metric_families(text):
        for s in f.samples:
            assert not s.name.endswith("_created"), s


def test_created_of_registered_vms_lies_between_vmm_start_and_now_and_stays(served):
    daemon, vmm = served
    start = process_start(vmm.pid)
    a, _ = _created(_om_families(daemon))
    time.sleep(SETTLE)  # a few ticks: new pages, same _created
    b, _ = _created(_om_families(daemon))
    now = time.time()
    assert a == b, "_created moved: %s" % sorted(
        (k, a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k))[:5]
    by_vm = {}
    for (fam, lab), v in a.items():
        by_vm.setdefault(dict(lab)["vm"], set()).add(v)
    assert sorted(by_vm) == sorted(vm.name for vm in vmm.vms)
    for vm, values in by_vm.items():
        # registered: the registration, after the process started, before now
        # (the process start is in clock ticks, _created in milliseconds)
        for v in values:
            assert start - 0.02 <= v <= now, (vm, v, start, now)
        # the VM and its vCPUs registered together
        assert max(values) - min(values) < 1.0, (vm, sorted(values))


def test_created_no_leaves_out_the_kvm_created_samples(daemon_factory, demo_vmm):
    d = daemon_factory({("metrics", "created"): "no"})
    vmm = demo_vmm(d.socket, vms=1, vcpus=2, name_prefix="it-nocreated-", hz=200)
    harness.wait_for_vms(d, [vm.name for vm in vmm.vms])
    time.sleep(SETTLE)
    families = _om_families(d)
    created, owners = _created(families)
    assert owners and not created, sorted(created)[:5]
    assert any(f.name == "kvm_vcpu_exits" for f in families)


def test_created_no_leaves_out_every_created_sample_self_metrics_too(daemon_factory):
    d = daemon_factory({("metrics", "created"): "no"})
    text = _om_text(d)
    left = [l for l in text.split("\n") if l and not l.startswith("#")
            and l.split("{")[0].split(" ")[0].endswith("_created")]
    assert not left, left[:5]


def test_self_metric_counters_carry_the_worker_and_helper_start(daemon):
    families = {f.name: f for f in _om_families(daemon)}

    def created(name):
        vals = {s.value for s in families[name].samples if s.name == name + "_created"}
        assert len(vals) == 1, (name, vals)
        return vals.pop()

    worker_start = next(s.value for s in families["kvmstatd_start_time_seconds"].samples)
    helper_start = process_start(daemon.proc.pid)
    now = time.time()
    for name in ("kvmstatd_polls", "kvmstatd_renders", "kvmstatd_scrapes",
                 "kvmstatd_compressions", "kvmstatd_series_dropped",
                 "kvmstatd_render_duration_seconds", "kvmstatd_stats_skipped"):
        assert abs(created(name) - worker_start) < 0.0015, (name, created(name), worker_start)
    for name in ("kvmstatd_registrations_rejected", "kvmstatd_vms_discovered",
                 "kvmstatd_worker_restarts"):
        v = created(name)
        assert helper_start - 0.02 <= v <= worker_start <= now, (name, v, helper_start,
                                                                 worker_start)


DISCOVERY = {("discovery", "enabled"): "yes", ("discovery", "interval_s"): "1"}


def test_discovered_vm_created_is_the_vmm_process_start(daemon_factory, demo_vmm):
    d = daemon_factory(DISCOVERY)
    vmm = demo_vmm(d.socket, vms=1, vcpus=2, register=False, hz=300)
    assert vmm.vms[0].registered == "no", vmm.lines
    name = "kvm-%d" % vmm.pid

    def found():
        e = d.scrape()
        infos = harness.vm_infos(e, vmm_pid=vmm.pid, source="discovered")
        return infos if infos and e.matching("kvm_vcpu_exits_total", vm=name) else None
    harness.wait_until(found, 5.0, 0.1, "the discovered VM of pid %d" % vmm.pid)
    time.sleep(SETTLE)
    start = process_start(vmm.pid)
    a, owners = _created(_om_families(d))
    mine = {k: v for k, v in a.items() if dict(k[1]).get("vm") == name}
    assert mine and set(mine) == {k for k in owners if dict(k[1]).get("vm") == name}
    for k, v in mine.items():
        assert abs(v - start) < 1.0, (k, v, start)
        # a lower bound: never after the process started (ticks, then ms)
        assert v <= start + 0.011, (k, v, start)
    # VM and vCPUs: one start
    assert len(set(mine.values())) == 1, sorted(set(mine.values()))
    time.sleep(SETTLE)
    b, _ = _created(_om_families(d))
    assert {k: b[k] for k in mine} == mine


def test_created_of_a_vm_registered_late_is_not_after_its_counters_started(daemon, demo_vmm):
    delay = 2.0
    vmm = demo_vmm(daemon.socket, vms=1, vcpus=1, name_prefix="it-late-created-", hz=300,
                   register_delay_ms=int(delay * 1000))
    start = process_start(vmm.pid)
    harness.wait_for_vms(daemon, [vm.name for vm in vmm.vms])
    time.sleep(SETTLE)
    created, _ = _created(_om_families(daemon))
    mine = {k: v for k, v in created.items() if dict(k[1])["vm"] == vmm.vms[0].name}
    assert mine
    # the demo created and ran its VM at start-up, `delay` s before registering it
    for k, v in mine.items():
        assert v <= start + delay / 2, (k, v - start)
