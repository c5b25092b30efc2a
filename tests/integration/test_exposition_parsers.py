"""Real parsers accept everything kvmstatd serves: promtool's linter (text
0.0.4), prometheus_client's text parser and its strict OpenMetrics parser;
and the types they see are the ones the naming contract predicts."""

import os
import subprocess
import time

import pytest

import harness
import statsfd

PROMTOOL = "/usr/bin/promtool"


@pytest.fixture
def served(daemon, demo_vmm, kvm):
    """A daemon serving two demo VMs and one VM of this process whose name
    needs UTF-8; returns (daemon, vms, expected families)."""
    vmm = demo_vmm(daemon.socket, vms=2, vcpus=2, name_prefix="it-parse", hz=300)
    own = statsfd.create_vm(vcpus=1)
    try:
        st, acc, reason = statsfd.register_vm(daemon.socket, 1, own.vm_stats_fd,
                                              own.vcpu_stats_fds, name="it-naïve.vm-1")
        assert (st, acc) == (0, 2), reason
        names = [vm.name for vm in vmm.vms] + ["it-naïve.vm-1"]
        harness.wait_for_vms(daemon, names)
        time.sleep(0.5)  # let some halt histograms fill
        fams = harness.oracle_families(vmm.vms)
        fams.update(statsfd.families_for_vm(own.vm_stats_fd, own.vcpu_stats_fds))
        yield daemon, names, fams
    finally:
        own.close()


def _text(daemon):
    r = daemon.get("/metrics")
    assert r.status == 200
    assert r.header("Content-Type") == harness.TEXT_CT
    return r.text


def _openmetrics(daemon):
    r = daemon.get("/metrics", headers={"Accept": harness.PROMETHEUS_ACCEPT})
    assert r.status == 200
    assert r.header("Content-Type") == harness.OPENMETRICS_CT
    return r.text


def test_promtool_check_metrics_finds_no_problem(served):
    if not os.access(PROMTOOL, os.X_OK):
        pytest.fail("%s missing: scripts/install-deps.sh installs prometheus" % PROMTOOL)
    daemon, _, _ = served
    text = _text(daemon)
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert p.returncode == 0 and out.strip() == "", "promtool check metrics: rc %d\n%s" % (
        p.returncode, out[:3000])


# Families of the exit telemetry and schedstat (README "Exit telemetry"): not
# in the stats fds' schema, predicted by the contract with these types; the
# BPF ones exist only where the program loads, so they are expected when present.
EXIT_TELEMETRY = {
    "kvm_vcpu_userspace_exits": "counter",
    "kvm_vcpu_exits_by_reason": "counter",
    "kvm_vcpu_exit_roundtrip_seconds": "histogram",
    "kvm_vcpu_run_delay_seconds": "counter",
    "kvm_vcpu_thread_cpu_seconds": "counter",
}


def _check_families(families, expected, names, fmt):
    expected = dict(expected)
    present = {f.name for f in families}
    expected.update({n: t for n, t in EXIT_TELEMETRY.items() if n in present})
    by_sample = {}
    for fam in families:
        for s in fam.samples:
            by_sample.setdefault(s.name, set()).add((fam.name, fam.type))
    # every expected family is there with its contract type
    got = {f.name: f.type for f in families}
    wrong = {f: (got.get(f), t) for f, t in expected.items() if got.get(f) != t}
    assert not wrong, "%s: family types (got, want): %r" % (fmt, dict(list(wrong.items())[:10]))
    # no kvm/kvmstatd sample fell outside a typed family
    untyped = sorted({f.name for f in families if f.type in ("untyped", "unknown")
                      and f.name.startswith("kvm")})
    assert not untyped, "%s: untyped families %r" % (fmt, untyped)
    unexpected = sorted(f.name for f in families
                        if f.name.startswith(("kvm_vm_", "kvm_vcpu_")) and f.name not in expected
                        and f.name != "kvm_vm_info")
    assert not unexpected, "%s: families the contract does not predict: %r" % (fmt, unexpected)
    # kvm_vm_info: one series per VM, value 1
    infos = [s for f in families for s in f.samples if s.name == "kvm_vm_info"]
    assert sorted(s.labels["vm"] for s in infos) == sorted(names)
    assert all(s.value == 1 for s in infos)
    info_types = by_sample.get("kvm_vm_info")
    assert info_types and all(t in ("gauge", "info") for _, t in info_types), info_types
    for s in infos:
        assert set(s.labels) == {"vm", "kernel_id", "vmm_pid", "vmm_comm", "source"}, s.labels
    # self-metrics are there too
    assert any(f.name.startswith("kvmstatd_") for f in families)
    assert "kvmstatd_registrations_rejected" in got, sorted(n for n in got if n.startswith("kvmstatd"))
    assert got["kvmstatd_registrations_rejected"] == "counter"
    assert got.get("kvmstatd_sources") == "gauge"


def test_prometheus_client_text_parser_accepts_all(served):
    from prometheus_client.parser import text_string_to_metric_families
    daemon, names, fams = served
    families = list(text_string_to_metric_families(_text(daemon)))
    _check_families(families, fams, names, "text 0.0.4")


def test_openmetrics_parser_accepts_all(served):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    daemon, names, fams = served
    text = _openmetrics(daemon)
    assert text.endswith("# EOF\n"), repr(text[-40:])
    families = list(text_string_to_metric_families(text))
    _check_families(families, fams, names, "OpenMetrics 1.0")


def test_both_formats_carry_the_same_series(served):
    daemon, _, _ = served
    text = harness.parse_exposition(_text(daemon), le_key=statsfd.le_key)
    om = harness.parse_exposition(_openmetrics(daemon), le_key=statsfd.le_key)

    def keys(e):
        return {k for k in e.samples if k[0].startswith("kvm") and not k[0].endswith("_created")}
    assert keys(text) == keys(om), (sorted(keys(text) ^ keys(om))[:10])


def test_text_format_types_name_counters_with_total(served):
    """Text 0.0.4 names a counter's TYPE line after its sample (X_total)."""
    daemon, _, fams = served
    e = harness.parse_exposition(_text(daemon))
    for fam, typ in fams.items():
        if typ == "counter":
            assert e.types.get(fam + "_total") == "counter", fam
            assert fam + "_total" in e.helps, "no HELP for %s_total" % fam
        else:
            assert e.types.get(fam) == typ, (fam, e.types.get(fam), typ)
            assert fam in e.helps, "no HELP for %s" % fam


def test_every_stat_of_this_kernel_has_a_help_from_the_table(served):
    """The HELP table knows every stat the running kernel defines: no family
    falls back to the sentence built from its descriptor alone, which
    starts with "KVM statistic" (a new kernel's stats would, and still be
    exported)."""
    daemon, _, fams = served
    e = harness.parse_exposition(_text(daemon))
    generic = sorted(name for name, text in e.helps.items()
                     if name.startswith("kvm_") and text.startswith("KVM statistic"))
    assert not generic, "stats missing from daemon/exposition/help.c's table: %r" % generic
    assert all(f in e.helps or f + "_total" in e.helps for f in fams)
