"""A real Prometheus server (2.42, Debian's /usr/bin/prometheus) scrapes
kvmstatd every second in three jobs: `text` (?format=prometheus),
`openmetrics` (?format=openmetrics) and `negotiated` (no parameter: the
Accept header Prometheus sends, which prefers OpenMetrics). What it stores
and reports through its HTTP API is what kvmstatd serves: every series, the
values of rising counters, the types, HELP and (OpenMetrics only) units of
the naming contract, histograms histogram_quantile() can use; and the series
of an exited VM go stale while the other VMs' series continue.

One daemon, two demo VMs and one Prometheus serve the whole module:
Prometheus takes some 5 s after start to scrape a target for the first time.
"""

import math
import os
import signal
import time

import pytest

import harness
import promserver
import statsfd

# job name -> scrape params
JOBS = {
    "text": {"format": ["prometheus"]},
    "openmetrics": {"format": ["openmetrics"]},
    "negotiated": None,
}
OM_JOBS = ("openmetrics", "negotiated")

VM_PREFIX = "it-prom-"
VM_MATCH = 'vm=~"%s.*"' % VM_PREFIX
VMS, VCPUS, HZ = 2, 2, 200
# short, so that the staleness test waits little
EXIT_GRACE_MS = 600
UNIT_NAMES = ("seconds", "bytes", "cycles")


class Stack:
    def __init__(self, daemon, vmm, prom, families, units):
        self.daemon, self.vmm, self.prom = daemon, vmm, prom
        self.names = [vm.name for vm in vmm.vms]
        self.families = families  # {family: type} by the naming contract
        self.units = units        # {family: unit or ""} from the descriptors


def _units(vms):
    """{family: OpenMetrics unit} of the demo VMs' stats, read from their
    descriptors: the unit a family's name ends in, "" for none."""
    out = {}
    for vm in vms:
        with harness.fd_copies(vm) as fds:
            for fd in fds:
                s = statsfd.StatsFd(fd)
                for d in s.descs:
                    out[d.family(s.scope)] = statsfd.UNIT_SUFFIX.get(d.unit, "")[1:]
    return out


def _exposition(daemon, job):
    """kvmstatd's page in the format the job's scrapes get."""
    if job == "negotiated":
        r = daemon.get("/metrics", headers={"Accept": harness.PROMETHEUS_ACCEPT})
        want_ct = harness.OPENMETRICS_CT
    else:
        fmt = JOBS[job]["format"][0]
        r = daemon.get("/metrics?format=" + fmt)
        want_ct = harness.OPENMETRICS_CT if fmt == "openmetrics" else harness.TEXT_CT
    assert r.status == 200 and r.header("Content-Type") == want_ct, (
        job, r.status, r.header("Content-Type"))
    return harness.parse_exposition(r.text)


def _strip(labels):
    """A series' labels without the ones Prometheus adds."""
    return {k: v for k, v in labels.items() if k not in ("__name__", "job", "instance")}


@pytest.fixture(scope="module")
def prometheus_bin():
    if not os.access(promserver.PROMETHEUS, os.X_OK):
        pytest.fail("%s is missing: scripts/install-deps.sh installs Debian's prometheus"
                    % promserver.PROMETHEUS, pytrace=False)
    return promserver.PROMETHEUS


@pytest.fixture(scope="module")
def stack(prometheus_bin, kvmstatd_bin, demo_vmm_bin, root, kvm):
    """kvmstatd with two demo VMs, scraped by Prometheus in every job of
    JOBS; returned once each job has a few samples of each VM."""
    daemon = harness.Daemon({("poll", "exit_grace_ms"): str(EXIT_GRACE_MS)})
    vmm = prom = None
    try:
        daemon.start()
        vmm = harness.DemoVmm(daemon.socket, vms=VMS, vcpus=VCPUS, name_prefix=VM_PREFIX, hz=HZ)
        vmm.start()
        names = [vm.name for vm in vmm.vms]
        assert len(names) == VMS and all(n.startswith(VM_PREFIX) for n in names), names
        harness.wait_for_vms(daemon, names)
        families = harness.oracle_families(vmm.vms)
        units = _units(vmm.vms)
        target = "127.0.0.1:%d" % daemon.port
        prom = promserver.PrometheusServer(
            {job: {"target": target, "params": p} for job, p in JOBS.items()})
        prom.start()
        prom.wait_targets_up(timeout=20.0)

        # three samples of every vCPU in every job: enough for rate()
        want = len(JOBS) * VMS * VCPUS

        def sampled():
            r = prom.query("count_over_time(kvm_vcpu_exits_total{%s}[10s]) >= 3" % VM_MATCH)
            return len(r) == want
        prom.wait_until(sampled, 10.0, what="3 samples of each vCPU's exits in every job")
        yield Stack(daemon, vmm, prom, families, units)
    finally:
        if prom is not None:
            prom.stop()
        if vmm is not None:
            vmm.stop()
        problem = None
        try:
            daemon.stop(check=True)
        except AssertionError as e:
            problem = str(e)
        finally:
            daemon.kill_all()
        if problem:
            pytest.fail("kvmstatd did not stop cleanly: " + problem, pytrace=False)


def test_every_job_is_up_without_scrape_error(stack):
    """Each job has one target, on kvmstatd's /metrics with the job's
    ?format=, healthy and with an empty lastError; `up` is 1."""
    prom, port = stack.prom, stack.daemon.port
    targets = prom.targets()
    assert sorted(targets) == sorted(JOBS), prom.why("jobs: %r" % sorted(targets))
    for job, params in JOBS.items():
        assert len(targets[job]) == 1, prom.why(targets[job])
        t = targets[job][0]
        url = "http://127.0.0.1:%d/metrics" % port
        if params:
            url += "?format=" + params["format"][0]
        assert t["scrapeUrl"] == url, prom.why(t)
        assert (t["health"], t["lastError"]) == ("up", ""), prom.why(t)
    # Prometheus 2.42's target API does not say which format a scrape got
    # (no scrapeProtocol); the metadata test below tells them apart.
    up = {m["job"]: v for m, v in prom.query("up")}
    assert up == {job: 1.0 for job in JOBS}, prom.why(up)
    samples = {m["job"]: v for m, v in prom.query("scrape_samples_scraped")}
    assert sorted(samples) == sorted(JOBS) and all(v > 0 for v in samples.values()), prom.why(samples)


def test_openmetrics_jobs_get_openmetrics_and_the_text_job_text(stack):
    """What each job's scrapes reported tells the formats apart: in
    OpenMetrics a counter family is named without _total, kvm_vm_info is
    the family kvm_vm of type info and units are given; text 0.0.4 names
    the TYPE line after the sample and has no units."""
    prom = stack.prom
    for job in JOBS:
        md = prom.target_metadata(job)
        if job in OM_JOBS:
            assert md.get("kvm_vm", {}).get("type") == "info", prom.why((job, md.get("kvm_vm")))
            assert "kvm_vm_info" not in md, prom.why(job)
            assert md.get("kvm_vcpu_exits", {}).get("type") == "counter", prom.why(job)
            assert "kvm_vcpu_exits_total" not in md, prom.why(job)
            assert md["kvm_vcpu_halt_wait_seconds"]["unit"] == "seconds", prom.why(
                (job, md["kvm_vcpu_halt_wait_seconds"]))
        else:
            assert md.get("kvm_vm_info", {}).get("type") == "gauge", prom.why(
                (job, md.get("kvm_vm_info")))
            assert "kvm_vm" not in md, prom.why(job)
            assert md.get("kvm_vcpu_exits_total", {}).get("type") == "counter", prom.why(job)
            assert "kvm_vcpu_exits" not in md, prom.why(job)
            with_unit = {n: m["unit"] for n, m in md.items() if m["unit"]}
            assert not with_unit, prom.why("text scrapes with a unit: %r" % with_unit)


def test_vm_info_of_each_demo_vm_is_in_every_job(stack):
    """kvm_vm_info{vm=...} is 1 for each demo VM in each job, with the
    labels kvmstatd serves."""
    prom = stack.prom
    served = {i["vm"]: i for i in harness.vm_infos(stack.daemon.scrape()) if i["vm"] in stack.names}
    assert sorted(served) == sorted(stack.names), served
    got = {}
    for m, v in prom.query("kvm_vm_info{%s}" % VM_MATCH):
        assert v == 1.0, prom.why(m)
        got.setdefault(m["job"], {})[m["vm"]] = _strip(m)
    assert got == {job: served for job in JOBS}, prom.why("stored %r\nserved %r" % (got, served))


def test_prometheus_stores_exactly_the_series_kvmstatd_serves(stack):
    """/api/v1/series of the demo VMs, per job, is the set of series on
    kvmstatd's page in that job's format: names and labels, le included."""
    prom = stack.prom
    for job in JOBS:
        expo = _exposition(stack.daemon, job)
        want = {(n, lab) for (n, lab) in expo.samples if dict(lab).get("vm") in stack.names}
        assert want
        got = set()
        for s in prom.series('{job="%s",%s}' % (job, VM_MATCH)):
            got.add((s["__name__"], frozenset(_strip(s).items())))
        assert got == want, prom.why("%s: only stored %r\nonly served %r" % (
            job, sorted(got - want)[:5], sorted(want - got)[:5]))


def test_rising_counter_in_prometheus_lies_between_kvmstatd_scrapes(stack):
    """kvm_vcpu_exits_total (rises with every halt and wake-up of the demo
    guests): the sample each job stored after one scrape of ours and before
    another lies between the two values kvmstatd served; rate() over 5 s is
    positive for every vCPU in every job."""
    prom, daemon = stack.prom, stack.daemon
    sel = "kvm_vcpu_exits_total{%s}" % VM_MATCH
    want = len(JOBS) * VMS * VCPUS
    before = daemon.scrape()
    t_before = time.time()

    def stored_since():
        latest = {(m["job"], m["vm"], m["vcpu"]): vals[-1]
                  for m, vals in prom.query(sel + "[10s]")}
        # a sample's timestamp is when its scrape started
        if len(latest) == want and all(ts > t_before for ts, _ in latest.values()):
            return latest
        return None
    latest = prom.wait_until(stored_since, 5.0, 0.1, "a scrape after ours in every job")
    after = daemon.scrape()
    for (job, vm, vcpu), (ts, v) in sorted(latest.items()):
        lo = before.value("kvm_vcpu_exits_total", vm=vm, vcpu=vcpu)
        hi = after.value("kvm_vcpu_exits_total", vm=vm, vcpu=vcpu)
        assert lo <= v <= hi, prom.why("%s %s/%s: Prometheus has %r, kvmstatd served %r then %r"
                                       % (job, vm, vcpu, v, lo, hi))
    assert after.total("kvm_vcpu_exits_total") > before.total("kvm_vcpu_exits_total"), (
        "exits did not rise between our scrapes")

    rates = {(m["job"], m["vm"], m["vcpu"]): v for m, v in prom.query("rate(%s[5s])" % sel)}
    assert len(rates) == want, prom.why(rates)
    assert all(v > 0 for v in rates.values()), prom.why("rates: %r" % rates)


def test_metadata_types_and_help_follow_the_naming_contract(stack):
    """/api/v1/metadata gives every family the contract's type and a HELP:
    counters under their family name (OpenMetrics jobs) and under X_total
    (the text job's TYPE line), gauges and histograms under the family."""
    prom = stack.prom
    md = prom.metadata()
    wrong, no_help = [], []
    expected = dict(stack.families)
    expected.update({"kvmstatd_sources": "gauge", "kvmstatd_polls": "counter",
                     "kvmstatd_start_time_seconds": "gauge",
                     "kvmstatd_poll_duration_seconds": "counter"})
    assert "histogram" in expected.values() and "counter" in expected.values()
    for fam, typ in sorted(expected.items()):
        for name in ([fam, fam + "_total"] if typ == "counter" else [fam]):
            entries = md.get(name)
            if not entries or {e["type"] for e in entries} != {typ}:
                wrong.append((name, typ, entries))
            elif not all(e["help"].strip() for e in entries):
                no_help.append(name)
    assert not wrong, prom.why("(name, contract type, metadata): %r" % wrong[:5])
    assert not no_help, prom.why("no HELP: %r" % no_help)
    # kvm_vm_info: a gauge in text, the family kvm_vm of type info in OpenMetrics
    assert {e["type"] for e in md.get("kvm_vm_info", [])} == {"gauge"}, prom.why(md.get("kvm_vm_info"))
    assert {e["type"] for e in md.get("kvm_vm", [])} == {"info"}, prom.why(md.get("kvm_vm"))


def test_openmetrics_units_reach_prometheus_metadata(stack):
    """Prometheus 2.42 keeps the OpenMetrics UNIT in the metadata's `unit`
    field: "seconds" for the *_seconds families of both OpenMetrics jobs,
    "" for families without a unit; text scrapes report "" for all. The
    global /api/v1/metadata lists a family scraped both ways once per
    distinct (type, help, unit)."""
    prom = stack.prom
    with_unit = {f: u for f, u in stack.units.items() if u and f in stack.families}
    assert with_unit.get("kvm_vcpu_halt_wait_seconds") == "seconds", with_unit
    for job in OM_JOBS:
        md = prom.target_metadata(job)
        wrong = {f: (md.get(f, {}).get("unit"), stack.units[f])
                 for f in stack.families if md.get(f, {}).get("unit") != stack.units[f]}
        assert not wrong, prom.why("%s: (unit, want) %r" % (job, wrong))
        for name, m in md.items():
            if name.startswith("kvmstatd_"):
                want = next((u for u in UNIT_NAMES if name.endswith("_" + u)), "")
                assert m["unit"] == want, prom.why((job, name, m))
    md = prom.metadata()
    for fam, unit in with_unit.items():
        assert {e["unit"] for e in md[fam]} == {"", unit}, prom.why((fam, md[fam]))


def test_histograms_answer_histogram_quantile(stack):
    """Each job stored the halt-wait histogram with kvmstatd's le bounds;
    _count equals the +Inf bucket; histogram_quantile(0.5, rate(...[5s]))
    is a finite duration in seconds for every vCPU."""
    prom, daemon = stack.prom, stack.daemon
    fam = "kvm_vcpu_halt_wait_seconds"
    vm = stack.names[0]
    for job in JOBS:
        expo = _exposition(daemon, job)
        served = {dict(lab)["le"] for (n, lab) in expo.matching(fam + "_bucket", vm=vm, vcpu="0")}
        stored = {s["le"] for s in prom.series('%s_bucket{job="%s",vm="%s",vcpu="0"}' % (fam, job, vm))}
        assert stored == served and "+Inf" in stored, prom.why((job, sorted(stored ^ served)))
    diff = prom.query('%s_count{%s} - on(job, instance, vm, vcpu) %s_bucket{le="+Inf",%s}'
                      % (fam, VM_MATCH, fam, VM_MATCH))
    assert len(diff) == len(JOBS) * VMS * VCPUS and all(v == 0 for _, v in diff), prom.why(diff)

    if "falling back to userspace HLT" in stack.vmm.stderr():
        pytest.skip("the demo guests halt in userspace here: their halt-wait histograms stay empty")
    q = prom.query("histogram_quantile(0.5, rate(%s_bucket{%s}[5s]))" % (fam, VM_MATCH))
    assert len(q) == len(JOBS) * VMS * VCPUS, prom.why(q)
    # the guests halt until their 200 Hz timer fires, some 5 ms; a unit
    # scaling error (ns served as s) would be a factor 1e9 off
    bad = [(m, v) for m, v in q if not (math.isfinite(v) and 1e-5 < v < 0.5)]
    assert not bad, prom.why("median halt waits: %r" % bad)


def test_exited_vm_series_go_stale_while_the_others_continue(stack, demo_vmm):
    """A VM whose VMM is killed: after exit_grace_ms kvmstatd stops serving
    its series, Prometheus marks them stale and an instant query finds none
    of them (long before the 5 min lookback would drop them), though
    /api/v1/series still has them; the other VMs' series go on, fresh."""
    prom, daemon = stack.prom, stack.daemon
    doomed = demo_vmm(daemon.socket, vms=1, vcpus=1, name_prefix="it-stale-", hz=HZ)
    name = doomed.vms[0].name
    harness.wait_for_vms(daemon, [name])
    sel = '{vm="%s"}' % name
    # per job: OpenMetrics pages also carry _created series, which 2.42 stores
    served = {job: float(sum(1 for k in _exposition(daemon, job).samples
                             if dict(k[1]).get("vm") == name)) for job in JOBS}

    def stored_in_every_job():
        jobs = {}
        for m, v in prom.query("count by (job) (%s)" % sel):
            jobs[m["job"]] = v
        return jobs == served
    prom.wait_until(stored_in_every_job, 5.0, 0.1, "all %r series of %s in every job"
                    % (served, name))
    others = {m["job"]: v for m, v in prom.query("count by (job) ({%s})" % VM_MATCH)}

    doomed.kill(signal.SIGKILL)
    killed = time.time()
    harness.wait_vms_gone(daemon, [name], timeout=EXIT_GRACE_MS / 1000.0 + 3.0)
    gone = time.time()

    # the next scrape of each job no longer has them: stale at once (a
    # series only dropped by the lookback would stay queryable for 5 min)
    prom.wait_until(lambda: prom.query(sel) == [], 2 * promserver.SCRAPE_INTERVAL_S + 3.0, 0.1,
                    "an instant query of %s to find nothing" % sel)
    kept = prom.series(sel, start=killed - 30)
    assert {s["job"] for s in kept} == set(JOBS), prom.why(
        "/api/v1/series lost the stale series: %r" % kept[:3])

    # the other VMs: every series still there, and scraped since
    assert {m["job"]: v for m, v in prom.query("count by (job) ({%s})" % VM_MATCH)} == others, (
        prom.why("the other VMs' series changed"))

    def fresh():
        ts = prom.query("timestamp(kvm_vcpu_exits_total{%s})" % VM_MATCH)
        return len(ts) == len(JOBS) * VMS * VCPUS and all(v > gone for _, v in ts)
    prom.wait_until(fresh, 2 * promserver.SCRAPE_INTERVAL_S + 3.0, 0.1,
                    "samples of the other VMs scraped after %s vanished" % name)
    infos = {(m["job"], m["vm"]) for m, _ in prom.query("kvm_vm_info")}
    assert infos == {(job, vm) for job in JOBS for vm in stack.names}, prom.why(infos)
