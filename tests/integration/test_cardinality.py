"""[metrics] cardinality on the real daemon with real demo VMs, and the
page rendered once per poll tick.

- vcpu_series = per_vm: one series per VM and stat, no vcpu label, whose
  value is the sum of the vCPUs' values read independently (statsfd.py,
  through the oracle's before/after window); promtool accepts the page;
- include / exclude select exactly the families the patterns predict
  (anchored, a counter also by its _total name);
- histograms = no: no bucket anywhere, the cumulative twins stay counters;
- max_series caps the page (kvmstatd_series <= cap, whole histograms only)
  and kvmstatd_series_dropped_total rises by exactly what a page left out;
- scrapes within one tick share one render: byte-identical bodies, gzip of
  the same bytes, kvmstatd_renders_total +1 per tick and format while
  kvmstatd_scrapes_total counts every request.
"""

import gzip
import os
import re
import subprocess
import time

import pytest

import harness
import statsfd
from harness import SETTLE

PROMTOOL = "/usr/bin/promtool"
KVM_PREFIXES = ("kvm_vm_", "kvm_vcpu_")


def _om(daemon, gz=False):
    h = {"Accept": harness.PROMETHEUS_ACCEPT}
    if gz:
        h["Accept-Encoding"] = "gzip"
    r = daemon.get("/metrics", headers=h)
    assert r.status == 200, r.status
    assert r.header("Content-Type") == harness.OPENMETRICS_CT
    return r


def _text(daemon, gz=False):
    r = daemon.get("/metrics", headers={"Accept-Encoding": "gzip"} if gz else None)
    assert r.status == 200, r.status
    assert r.header("Content-Type") == harness.TEXT_CT
    return r


def _kvm(expo):
    return {k: v for k, v in expo.samples.items()
            if k[0].startswith(KVM_PREFIXES) and k[0] != "kvm_vm_info"}


def _fmt(key):
    name, labels = key
    return "%s{%s}" % (name, ",".join('%s="%s"' % kv for kv in sorted(labels)))


def _families(expo):
    """KVM families of an OpenMetrics page, by its TYPE lines."""
    return {n: t for n, t in expo.types.items() if n.startswith(KVM_PREFIXES)}


# ------------------------------------------------------------------ per_vm

def _summed(oracle, kinds):
    """The oracle's per-vCPU samples summed per VM: {key without vcpu:
    (value, kind, vCPUs summed)}."""
    out = {}
    for (name, labels), v in oracle.items():
        lab = frozenset((k, x) for k, x in labels if k != "vcpu")
        key = (name, lab)
        val, kind, n = out.get(key, (0.0, kinds[(name, labels)], 0))
        out[key] = (val + v, kind, n + (1 if any(k == "vcpu" for k, _ in labels) else 0))
    return out


def test_per_vm_is_one_series_per_vm_equal_to_the_sum_of_its_vcpus(daemon_factory, demo_vmm):
    d = daemon_factory({("metrics", "vcpu_series"): "per_vm"})
    vmm = demo_vmm(d.socket, vms=2, vcpus=3, name_prefix="it-pervm-", hz=300)
    names = [vm.name for vm in vmm.vms]
    harness.wait_for_vms(d, names)
    time.sleep(SETTLE)

    kinds = {}
    before = harness.oracle(vmm.vms, kinds)
    time.sleep(SETTLE)
    expo = d.scrape(le_key=statsfd.le_key)
    after = harness.oracle(vmm.vms)
    lo, hi = _summed(before, kinds), _summed(after, kinds)
    got = _kvm(expo)

    assert not [k for k in got if "vcpu" in dict(k[1])], "a vcpu label is left"
    assert set(got) == set(lo), "series differ from the summed oracle: missing %s extra %s" % (
        [_fmt(k) for k in sorted(set(lo) - set(got))[:8]],
        [_fmt(k) for k in sorted(set(got) - set(lo))[:8]])
    # one series per VM for each vCPU stat
    exits = expo.matching("kvm_vcpu_exits_total")
    assert sorted(dict(k[1])["vm"] for k in exits) == sorted(names)
    bad = []
    for key, v in got.items():
        (b, kind, n), (a, _, _) = lo[key], hi[key]
        if kind == "boolean":
            ok = 0 <= v <= max(n, 1) and v == int(v)
        else:
            lo_v, hi_v = min(a, b), max(a, b)
            tol = 1e-9 * max(abs(lo_v), abs(hi_v)) + 1e-12
            ok = lo_v - tol <= v <= hi_v + tol
        if not ok:
            bad.append("%s = %r, summed oracle before %r after %r" % (_fmt(key), v, b, a))
    assert not bad, "%d values outside the summed oracle's window:\n%s" % (
        len(bad), "\n".join(bad[:15]))
    # the guests ran: the sums are not of zeros, and they add three vCPUs
    for vm in names:
        assert expo.value("kvm_vcpu_exits_total", vm=vm) > 0
    # histograms stay histograms: cumulative, +Inf equals _count
    for vm in names:
        buckets = sorted(((k, v) for k, v in expo.matching(
            "kvm_vcpu_halt_wait_seconds_bucket", vm=vm).items()),
            key=lambda kv: float(dict(kv[0][1])["le"]))
        values = [v for _, v in buckets]
        assert len(values) == 32 and values == sorted(values), values
        assert values[-1] == expo.value("kvm_vcpu_halt_wait_seconds_count", vm=vm)


def test_per_vm_page_passes_promtool_and_the_openmetrics_parser(daemon_factory, demo_vmm):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    if not os.access(PROMTOOL, os.X_OK):
        pytest.fail("%s missing: scripts/install-deps.sh installs prometheus" % PROMTOOL)
    d = daemon_factory({("metrics", "vcpu_series"): "per_vm"})
    vmm = demo_vmm(d.socket, vms=2, vcpus=2, name_prefix="it-pervm-lint-", hz=300)
    harness.wait_for_vms(d, [vm.name for vm in vmm.vms])
    time.sleep(SETTLE)
    text = _text(d).text
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert p.returncode == 0 and out.strip() == "", "promtool: rc %d\n%s" % (p.returncode,
                                                                            out[:3000])
    fams = list(text_string_to_metric_families(_om(d).text))
    for f in fams:
        for s in f.samples:
            if s.name.startswith(KVM_PREFIXES) and f.name != "kvm_vm":
                assert "vcpu" not in s.labels, s


# --------------------------------------------------------- include/exclude

def _predicted(families, include, exclude, histograms=True):
    def match(pat, fam, typ):
        return bool(re.fullmatch(pat, fam) or (typ == "counter"
                                               and re.fullmatch(pat, fam + "_total")))
    return {f: t for f, t in families.items()
            if (not include or match(include, f, t))
            and not (exclude and match(exclude, f, t))
            and (histograms or t != "histogram")}


@pytest.mark.parametrize("include,exclude", [
    ("kvm_vcpu_(exits|io_exits|halt_exits)_total|kvm_vm_pages_.*", "kvm_vm_pages_1g"),
    ("kvm_vcpu_.*", "kvm_vcpu_.*_seconds|kvm_vcpu_pf_.*_total"),
    ("", "kvm_vcpu_.*"),
    # anchored: a part of a name selects nothing
    ("exits", ""),
])
def test_include_exclude_select_exactly_the_predicted_families(daemon_factory, demo_vmm,
                                                               include, exclude):
    ov = {}
    if include:
        ov[("metrics", "include")] = include
    if exclude:
        ov[("metrics", "exclude")] = exclude
    d = daemon_factory(ov)
    vmm = demo_vmm(d.socket, vms=1, vcpus=2, name_prefix="it-filter-", hz=200)
    harness.wait_for_vms(d, [vm.name for vm in vmm.vms])
    time.sleep(SETTLE)
    want = _predicted(harness.oracle_families(vmm.vms), include, exclude)
    expo = harness.parse_exposition(_om(d).text)
    got = _families(expo)
    assert got == want, "families: missing %s, unexpected %s" % (
        sorted(set(want) - set(got)), sorted(set(got) - set(want)))
    # every kept family has samples; nothing outside them
    names = {n for n, _ in _kvm(expo)}
    for f in got:
        assert any(n == f or n.startswith(f + "_") for n in names), f
    # the VM info and self-metrics are always there
    assert harness.vm_infos(expo)
    assert expo.value("kvmstatd_sources", kind="vcpu") == 2


def test_histograms_no_removes_every_bucket_and_keeps_the_twins_as_counters(daemon_factory,
                                                                           demo_vmm):
    d = daemon_factory({("metrics", "histograms"): "no"})
    vmm = demo_vmm(d.socket, vms=1, vcpus=2, name_prefix="it-nohist-", hz=300)
    harness.wait_for_vms(d, [vm.name for vm in vmm.vms])
    time.sleep(SETTLE)
    text, om = _text(d).text, _om(d).text
    for page in (text, om):
        assert "_bucket{" not in page
        assert " histogram\n" not in page
        assert not re.search(r"^kvm_\S*_count\{", page, re.M)
    e = harness.parse_exposition(text)
    name = vmm.vms[0].name
    # what was the halt_wait histogram's _sum is a counter of its own now
    assert e.types.get("kvm_vcpu_halt_wait_seconds_total") == "counter", sorted(
        n for n in e.types if "halt" in n)
    with harness.fd_copies(vmm.vms[0]) as fds:
        raw = statsfd.StatsFd(fds[1]).read_data()["halt_wait_ns"][0] / 1e9
    got = e.value("kvm_vcpu_halt_wait_seconds_total", vm=name, vcpu="0")
    assert 0 <= got <= raw, (got, raw)
    # the families are those of the contract minus the histograms, twins added
    fams = _families(harness.parse_exposition(om))
    assert not [f for f, t in fams.items() if t == "histogram"]
    assert fams.get("kvm_vcpu_halt_poll_success_seconds") == "counter"
    assert fams.get("kvm_vcpu_halt_poll_fail_seconds") == "counter"


# --------------------------------------------------------------- max_series

def _whole_histograms(expo):
    """{(family, labels without le): lines} for every histogram series."""
    out = {}
    for (n, lab) in expo.samples:
        for sfx in ("_bucket", "_count", "_sum"):
            if n.startswith(KVM_PREFIXES) and n.endswith(sfx) and expo.types.get(
                    n[:-len(sfx)]) == "histogram":
                key = (n[:-len(sfx)], frozenset(kv for kv in lab if kv[0] != "le"))
                out[key] = out.get(key, 0) + 1
    return out


def test_max_series_caps_the_page_and_counts_what_it_left_out(daemon_factory, demo_vmm):
    cap = 100
    d = daemon_factory({("metrics", "max_series"): str(cap)})
    vmm = demo_vmm(d.socket, vms=1, vcpus=2, name_prefix="it-cap-", hz=300)
    harness.wait_for_vms(d, [vm.name for vm in vmm.vms])
    time.sleep(SETTLE)
    uncapped = len(harness.oracle(vmm.vms))
    assert uncapped > cap

    a = d.scrape()
    time.sleep(SETTLE)
    b = d.scrape()
    for e in (a, b):
        series = e.value("kvmstatd_series")
        assert series <= cap
        assert series == len(_kvm(e)), (series, len(_kvm(e)))
        assert e.value("kvmstatd_series_limit") == cap
    # the same series every time while the VMs stay the same
    assert set(_kvm(a)) == set(_kvm(b))
    # each text render left out exactly the lines it did not show
    dropped_a = a.value("kvmstatd_series_dropped_total")
    dropped_b = b.value("kvmstatd_series_dropped_total")
    assert dropped_a >= uncapped - a.value("kvmstatd_series")
    assert dropped_b - dropped_a == uncapped - b.value("kvmstatd_series"), (
        dropped_a, dropped_b, uncapped, b.value("kvmstatd_series"))
    # never half a histogram
    for key, lines in _whole_histograms(b).items():
        assert lines == 32 + 2, (key, lines)

    # OpenMetrics: _created lines count against the cap too
    om = harness.parse_exposition(_om(d).text)
    assert om.value("kvmstatd_series") <= cap
    kvm_om = [k for k in om.samples if k[0].startswith(KVM_PREFIXES) and k[0] != "kvm_vm_info"]
    assert om.value("kvmstatd_series") == len(kvm_om)
    for key, lines in _whole_histograms(om).items():
        assert lines == 32 + 2, (key, lines)


def test_max_series_zero_is_no_cap(daemon_factory, demo_vmm):
    d = daemon_factory({("metrics", "max_series"): "0"})
    vmm = demo_vmm(d.socket, vms=1, vcpus=2, name_prefix="it-nocap-", hz=200)
    harness.wait_for_vms(d, [vm.name for vm in vmm.vms])
    time.sleep(SETTLE)
    e = d.scrape()
    assert e.value("kvmstatd_series") == len(harness.oracle(vmm.vms)) == len(_kvm(e))
    assert e.value("kvmstatd_series_limit") == 0
    assert e.value("kvmstatd_series_dropped_total") == 0


# ------------------------------------------------------ one render per tick

def _polls(body):
    m = re.search(r"^kvmstatd_polls_total (\S+)$", body, re.M)
    assert m, body[-500:]
    return float(m.group(1))


def _value(body, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), body, re.M)
    assert m, name
    return float(m.group(1))


def test_scrapes_within_one_tick_share_one_render_and_one_gzip(daemon_factory, demo_vmm):
    interval = 5.0
    d = daemon_factory({("poll", "interval_ms"): str(int(interval * 1000))})
    vmm = demo_vmm(d.socket, vms=1, vcpus=2, name_prefix="it-tick-", hz=300)
    harness.wait_for_vms(d, [vm.name for vm in vmm.vms], timeout=2 * interval + 2)
    requests = 0

    def text_body():
        nonlocal requests
        requests += 1
        return _text(d).body.decode()

    def next_tick(start):
        """Scrape text until a page of a later tick than `start` shows."""
        deadline = time.monotonic() + 2 * interval + 2
        while True:
            body = text_body()
            if _polls(body) != start:
                return body
            assert time.monotonic() < deadline, "no new tick within %.0f s" % (2 * interval)
            time.sleep(0.05)

    page = next_tick(_polls(text_body()))
    # right after a tick: the rest of this batch lands in the same tick
    t0 = time.monotonic()
    requests = 1  # the request that rendered `page`
    texts = [text_body() for _ in range(4)]
    oms = [_om(d).body for _ in range(3)]
    text_gz = [_text(d, gz=True) for _ in range(3)]
    om_gz = [_om(d, gz=True) for _ in range(3)]
    requests += 3 + 3 + 3
    assert time.monotonic() - t0 < interval / 2, "the batch took too long to share a tick"

    assert all(t == page for t in texts), "text pages of one tick differ"
    assert all(o == oms[0] for o in oms), "OpenMetrics pages of one tick differ"
    for r in text_gz + om_gz:
        assert r.header("Content-Encoding") == "gzip"
    assert all(r.body == text_gz[0].body for r in text_gz), "gzip bodies of one tick differ"
    assert all(r.body == om_gz[0].body for r in om_gz)
    assert gzip.decompress(text_gz[0].body).decode() == page
    assert gzip.decompress(om_gz[0].body) == oms[0]
    assert oms[0] != page.encode()

    # the next tick's page counts what this tick cost
    nxt = next_tick(_polls(page))
    requests -= 1  # the request that rendered `nxt` counts after its render
    assert _value(nxt, "kvmstatd_renders_total") - _value(page, "kvmstatd_renders_total") == 2
    assert _value(nxt, "kvmstatd_compressions_total") - _value(
        page, "kvmstatd_compressions_total") == 2
    assert _value(nxt, "kvmstatd_scrapes_total") - _value(page, "kvmstatd_scrapes_total") == \
        requests
    assert _value(nxt, "kvmstatd_render_duration_seconds_total") > _value(
        page, "kvmstatd_render_duration_seconds_total")
    assert _value(nxt, "kvmstatd_compress_duration_seconds_total") > _value(
        page, "kvmstatd_compress_duration_seconds_total")


def test_renders_grow_at_most_once_per_tick_and_format_under_many_scrapes(daemon_factory,
                                                                          demo_vmm):
    d = daemon_factory()  # harness interval: 200 ms
    vmm = demo_vmm(d.socket, vms=1, vcpus=1, name_prefix="it-many-", hz=100)
    harness.wait_for_vms(d, [vm.name for vm in vmm.vms])
    # first and last each the first request of its tick: their pages count
    # every request before them
    time.sleep(0.3)
    first = _text(d).text
    n = 0
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        _text(d)
        _om(d)
        n += 2
    time.sleep(0.3)
    last = _text(d).text
    ticks = _polls(last) - _polls(first)
    renders = _value(last, "kvmstatd_renders_total") - _value(first, "kvmstatd_renders_total")
    scrapes = _value(last, "kvmstatd_scrapes_total") - _value(first, "kvmstatd_scrapes_total")
    assert ticks >= 3
    # text and OpenMetrics of each tick in between, at most
    assert renders <= 2 * (ticks + 1), (renders, ticks)
    assert scrapes == n + 1, (scrapes, n)
    assert n > renders
