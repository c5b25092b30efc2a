"""Exit-reason cardinality: [metrics] reasons_exclude drops reasons,
reasons_top keeps a VM's N largest and sums the rest into reason="other"
(totals unchanged); family include/exclude names the BPF families too;
vcpu_series = per_vm sums the exit telemetry per VM (equal to the per-vCPU
series added up, checked on a stopped VMM across a reload); max_series
caps its lines with the KVM stats' and counts what it leaves out."""

import os
import signal

import pytest

import harness


def _start(daemon_factory, overrides):
    ov = dict(harness.BPF_ON)
    ov.update(overrides or {})
    d = daemon_factory(ov)
    return harness.require_bpf(d)


def _reasons(expo, vm):
    return {dict(lab)["reason"]: v for (_, lab), v in
            expo.matching("kvm_vcpu_userspace_exits_total", vm=vm, vcpu="0").items()}


def test_reasons_top_1_sums_the_rest_into_other(daemon_factory, demo_vmm):
    d = _start(daemon_factory, {("metrics", "reasons_top"): "1"})
    vmm = demo_vmm(d.socket, vms=1, vcpus=1, name_prefix="top-", hz=300,
                   extra=["--halt-mode", "user"])  # io and hlt, equally often
    vm = vmm.vms[0].name
    harness.wait_for_vms(d, [vm])
    # both lines once both reasons have happened (the VMM makes both)
    got = harness.wait_until(lambda: (lambda g: g if len(g) >= 2 and sum(g.values()) >= 20
                                      else None)(_reasons(d.scrape(), vm)), 60,
                             what="two reason lines of %s" % vm)
    assert len(got) == 2 and "other" in got, got
    assert set(got) - {"other"} <= {"io", "hlt"}, got


def test_reasons_exclude_and_family_exclude(daemon_factory, demo_vmm):
    d = _start(daemon_factory, {("metrics", "reasons_exclude"): "hlt",
                                ("metrics", "exclude"): "kvm_vcpu_exit_roundtrip_seconds"})
    vmm = demo_vmm(d.socket, vms=1, vcpus=1, name_prefix="excl-", hz=300,
                   extra=["--halt-mode", "user"])
    vm = vmm.vms[0].name
    harness.wait_for_vms(d, [vm])
    # the VMM alternates io and hlt: by 20 io exits, hlt exits happened too
    harness.wait_until(lambda: _reasons(d.scrape(), vm).get("io", 0) >= 20, 60,
                       what="20 io exits of %s" % vm)
    expo = d.settled()
    got = _reasons(expo, vm)
    assert "io" in got and "hlt" not in got, got
    assert not expo.matching("kvm_vcpu_exit_roundtrip_seconds_count")


BPF_NAMES = ("kvm_vcpu_userspace_exits_total", "kvm_vcpu_exits_by_reason_total",
             "kvm_vcpu_exit_roundtrip_seconds_bucket", "kvm_vcpu_exit_roundtrip_seconds_count",
             "kvm_vcpu_exit_roundtrip_seconds_sum", "kvm_vcpu_run_delay_seconds_total",
             "kvm_vcpu_thread_cpu_seconds_total")


def _bpf_by_vm(expo, vm):
    """vm's exit telemetry with the vcpu label dropped and equal label sets
    added up (cumulative buckets add up like the buckets themselves), and
    whether any series carried a vcpu label."""
    out, per_vcpu = {}, False
    for (name, lab), v in expo.matching(vm=vm).items():
        if name not in BPF_NAMES:
            continue
        d = dict(lab)
        per_vcpu |= d.pop("vcpu", None) is not None
        key = (name, frozenset(d.items()))
        out[key] = out.get(key, 0.0) + v
    return out, per_vcpu


def _steady(d, vm, per_vcpu):
    """Two scrapes a few ticks apart that agree (the VMM is stopped, so
    nothing moves once the worker has joined every vCPU)."""
    def same():
        a = _bpf_by_vm(d.scrape(), vm)
        b = _bpf_by_vm(d.settled(), vm)
        return a[0] if a == b and a[0] and a[1] == per_vcpu else None
    return harness.wait_until(same, 15, 0.1, "steady exit telemetry of %s" % vm)


def test_per_vm_sums_the_exit_telemetry_of_a_vms_vcpus(daemon_factory, demo_vmm):
    d = _start(daemon_factory, {})
    os.chmod(d.dir, 0o755)  # the helper, no longer root, reads the file again
    os.chmod(d.config, 0o644)
    vmm = demo_vmm(d.socket, vms=1, vcpus=2, name_prefix="sum-", hz=300,
                   extra=["--halt-mode", "user"])
    vm = vmm.vms[0].name
    harness.wait_for_vms(d, [vm])
    harness.wait_until(lambda: len({dict(lab)["vcpu"] for (_, lab) in d.scrape().matching(
        "kvm_vcpu_userspace_exits_total", vm=vm)}) == 2, 60,
        what="exit counts of both vCPUs of %s" % vm)
    os.kill(vmm.proc.pid, signal.SIGSTOP)  # every count of the VM stops
    try:
        summed = _steady(d, vm, per_vcpu=True)
        ov = dict(harness.BPF_ON)
        ov[("metrics", "vcpu_series")] = "per_vm"
        harness.write_config(d.config, d.socket, d.config_port, d.user, ov)
        old = d.worker_pid()
        d.signal(signal.SIGHUP)
        d.wait_new_worker(old)
        per_vm = _steady(d, vm, per_vcpu=False)
    finally:
        os.kill(vmm.proc.pid, signal.SIGCONT)
    assert set(per_vm) == set(summed)
    for key, v in summed.items():
        assert per_vm[key] == pytest.approx(v, rel=1e-9, abs=1e-9), key
    names = {name for name, _ in per_vm}
    assert {"kvm_vcpu_userspace_exits_total", "kvm_vcpu_exit_roundtrip_seconds_count",
            "kvm_vcpu_run_delay_seconds_total"} <= names, names


def test_max_series_caps_the_exit_telemetry_and_counts_it(daemon_factory, demo_vmm):
    # one KVM line (exits) and the userspace exits (io, hlt) fit in 3; a
    # round-trip histogram (22 lines) never does and is left out whole
    d = _start(daemon_factory, {
        ("metrics", "include"): "kvm_vcpu_(exits|userspace_exits)_total|"
                                "kvm_vcpu_exit_roundtrip_seconds",
        ("metrics", "max_series"): "3"})
    vmm = demo_vmm(d.socket, vms=1, vcpus=1, name_prefix="cap-", hz=300,
                   extra=["--halt-mode", "user"])
    vm = vmm.vms[0].name
    harness.wait_for_vms(d, [vm])
    harness.wait_until(lambda: d.scrape().value("kvmstatd_series_dropped_total") >= 22, 60,
                       what="the round-trip histogram left out")
    expo = d.settled()
    lines = [n for n in expo.order if n.startswith("kvm_") and n != "kvm_vm_info"]
    assert expo.value("kvmstatd_series") == len(lines) <= 3, lines
    assert "kvm_vcpu_exits_total" in lines
    assert not expo.matching(prefix="kvm_vcpu_exit_roundtrip_seconds")
    assert expo.value("kvmstatd_series_dropped_total") >= 22
