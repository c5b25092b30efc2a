"""Exit-reason cardinality: [metrics] reasons_exclude drops reasons,
reasons_top keeps a VM's N largest and sums the rest into reason="other"
(totals unchanged); family include/exclude names the BPF families too."""

import time

import pytest

import harness


def _start(daemon_factory, overrides):
    ov = dict(harness.BPF_ON)
    ov.update(overrides or {})
    d = daemon_factory(ov)
    if harness.parse_exposition(d.get().text).value("kvmstatd_bpf_enabled") != 1:
        pytest.skip("exit telemetry did not load here")
    return d


def _reasons(expo, vm):
    return {dict(lab)["reason"]: v for (_, lab), v in
            expo.matching("kvm_vcpu_userspace_exits_total", vm=vm, vcpu="0").items()}


def test_reasons_top_1_sums_the_rest_into_other(daemon_factory, demo_vmm):
    d = _start(daemon_factory, {("metrics", "reasons_top"): "1"})
    vmm = demo_vmm(d.socket, vms=1, vcpus=1, name_prefix="top-", hz=300,
                   extra=["--halt-mode", "user"])  # io and hlt, equally often
    vm = vmm.vms[0].name
    harness.wait_for_vms(d, [vm])
    time.sleep(1.0)
    got = _reasons(harness.parse_exposition(d.get().text), vm)
    assert len(got) == 2 and "other" in got, got
    assert set(got) - {"other"} <= {"io", "hlt"}, got


def test_reasons_exclude_and_family_exclude(daemon_factory, demo_vmm):
    d = _start(daemon_factory, {("metrics", "reasons_exclude"): "hlt",
                                ("metrics", "exclude"): "kvm_vcpu_exit_roundtrip_seconds"})
    vmm = demo_vmm(d.socket, vms=1, vcpus=1, name_prefix="excl-", hz=300,
                   extra=["--halt-mode", "user"])
    vm = vmm.vms[0].name
    harness.wait_for_vms(d, [vm])
    time.sleep(1.0)
    expo = harness.parse_exposition(d.get().text)
    got = _reasons(expo, vm)
    assert "io" in got and "hlt" not in got, got
    assert not expo.matching("kvm_vcpu_exit_roundtrip_seconds_count")
