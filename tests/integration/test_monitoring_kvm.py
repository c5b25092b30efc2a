"""monitoring/ on real data (needs /dev/kvm: skips without it, runs in the
lab): kvmstatd with the exit telemetry on (`bpf = auto`), demo VMs and
(with the default settings, where QEMU is installed) Debian's QEMU under
the preload shim, scraped every second by a real Prometheus that loads the
shipped rules.

- every panel of the three dashboards, its variables substituted as a
  Grafana user would pick them, returns through query_range data of the
  kind its panel needs (a matrix for time series and heatmaps, `le` on
  heatmap series, a vector for instant tables and stats, ratios within
  [0, 1]); again under `vcpu_series = per_vm` with `reasons_top = 3`,
  `histograms = no` with `created = no`, and monitoring/kvmstatd-include.ini
  (which must then leave out every other KVM family and starve no panel). A panel that needs what the host
  cannot give (the hardware exit tracepoints, halt polling, huge pages)
  may be empty, and histogram panels must be empty under `histograms = no`;
- every rule is healthy, no alert fires and no exporter alert is pending
  on the healthy host;
- a CPU hog pinned on the vCPU's CPU makes KvmVmCpuContention go pending
  for that VM (the shipped rule, `for: 20m`), while a copy with a short
  `for:` fires and a real Alertmanager delivers it to a webhook here.
"""

import os
import subprocess

import pytest

import harness
import monitoring_stack as ms
import qemu
from monitoring_stack import _deadline, alert_chain, rules_dir  # noqa: F401 (fixtures)

VMS, VCPUS, HZ = 2, 2, 200
GROUPS = ("kvmstatd.recording", "kvmstatd.exporter", "kvmstatd.vms")
RATE_INTERVAL = "10s"
# run_panel's window: a feature counts when it moved within it
WINDOW = "20s"


def _include_profile():
    """monitoring/kvmstatd-include.ini's patterns, as one [metrics] include
    value that harness.write_config writes as repeated `include =` lines."""
    pats = [l.split("=", 1)[1].strip() for l in open(ms.generate.INCLUDE_FILE)
            if l.startswith("include =")]
    return "\ninclude = ".join(pats), set(pats)


# Four stacks, not six: each costs minutes on the lab's emulated CPUs, so
# the four cardinality settings go two by two (each pair touches
# different series: summing vCPUs and folding reasons; dropping histograms
# and _created samples).
CONFIGS = {
    "default": {},
    "include_profile": {("metrics", "include"): _include_profile()[0]},
    "per_vm_reasons_top_3": {("metrics", "vcpu_series"): "per_vm",
                             ("metrics", "reasons_top"): "3"},
    "no_histograms_no_created": {("metrics", "histograms"): "no",
                                 ("metrics", "created"): "no"},
}


class Stack:
    def __init__(self, name, overrides, prefix):
        self.name, self.overrides = name, overrides
        # the production poll interval: the harness's 200 ms ticks are
        # missed on the lab's emulated CPUs (12 % of them, which
        # KvmstatdMissedTicks rightly notices)
        self.daemon = harness.Daemon({**harness.BPF_ON, ("poll", "interval_ms"): "1000",
                                      **overrides})
        self.vmm = self.prom = self.qemu = None
        self.prefix = prefix

    def start(self, rule_files, alertmanager=None, vms=VMS, vcpus=VCPUS, hz=HZ, with_qemu=False):
        self.daemon.start()
        self.vmm = harness.DemoVmm(self.daemon.socket, vms=vms, vcpus=vcpus,
                                   name_prefix=self.prefix, hz=hz)
        self.vmm.start()
        self.names = [vm.name for vm in self.vmm.vms]
        if with_qemu and qemu.qemu_usable() is None:
            # an idle guest (no disk): in-kernel irqchip, halt polling
            name = self.prefix + "qemu"
            self.qemu = qemu.Qemu(self.daemon.socket, name_args=("-name", "guest=" + name),
                                  smp=2, debug=False)
            self.qemu.start()
            self.names.append(name)
        harness.wait_for_vms(self.daemon, self.names, timeout=ms.WAIT_S)
        self.prom = ms.RulesPrometheus([ms.kvm_job(["127.0.0.1:%d" % self.daemon.port])],
                                       rule_files, alertmanager=alertmanager)
        self.prom.start()
        self.prom.wait_targets_up()
        # enough samples of every VM for rates over RATE_INTERVAL
        want = 'count(count_over_time(kvm_vm_info{vm=~"%s.*"}[20s]) >= 6) == %d' % (
            self.prefix, len(self.names))
        self.prom.wait_until(lambda: self.prom.query(want), ms.WAIT_S,
                             what="6 samples of each demo VM")
        self.prom.wait_rules_evaluated(GROUPS)
        return self

    def stop(self):
        if self.prom is not None:
            self.prom.stop()
        if self.qemu is not None:
            self.qemu.stop()
        if self.vmm is not None:
            self.vmm.stop()
        try:
            self.daemon.stop(check=True)
        finally:
            self.daemon.kill_all()

    def scalar(self, expr):
        r = self.prom.query(expr)
        return r[0][1] if r else 0.0

    def features(self, vm=None):
        """Which optional parts this exporter and host give (generate.py's
        `needs` vocabulary), for one VM or all of this stack's."""
        vm = 'vm="%s"' % vm if vm else 'vm=~"%s.*"' % self.prefix
        have = {"schedstat"}
        if self.overrides.get(("metrics", "histograms")) != "no":
            have.add("histograms")
        if self.overrides.get(("metrics", "vcpu_series")) != "per_vm":
            have.add("per_vcpu")
        if self.scalar("max(kvmstatd_bpf_enabled)") == 1:
            have.add("bpf")
            if self.scalar("count(kvm_vcpu_exits_by_reason_total{%s})" % vm) > 0:
                have.add("hw_exits")
        if self.scalar("sum(increase(kvm_vcpu_halt_attempted_poll_total{%s}[%s]))"
                       % (vm, WINDOW)) > 0:
            have.add("halt_poll")
        if self.scalar("sum(kvm_vm_pages_4k{%s}) + sum(kvm_vm_pages_2m{%s}) + "
                       "sum(kvm_vm_pages_1g{%s})" % (vm, vm, vm)) > 0:
            have.add("huge_pages")
        return have


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def stack(request, kvmstatd_bin, demo_vmm_bin, root, kvm):
    s = Stack(request.param, CONFIGS[request.param], "mon-%s-" % request.param.replace("_", ""))
    try:
        s.start(ms.RULE_FILES, with_qemu=request.param == "default")
        yield s
    finally:
        s.stop()


def _panel_runs(stack):
    """(dashboard, panel, variable values, features): the fleet and host
    dashboards once, the VM dashboard once per VM (a demo VM and QEMU give
    different data: QEMU's in-kernel irqchip halt-polls)."""
    values = dict(ms.generate.VAR_VALUES, __rate_interval=RATE_INTERVAL)
    have = stack.features()
    for uid, panel in ms.panels():
        if uid != "kvmstatd-vm":
            yield uid, panel, dict(values, vm=stack.names[0]), have
    per_vm = {name: stack.features(name) for name in stack.names}
    for uid, panel in ms.panels([ms.generate.vm()]):
        for name in stack.names:
            yield "%s %s" % (uid, name), panel, dict(values, vm=name), per_vm[name]


def test_every_panel_returns_the_data_its_panel_needs(stack):
    # schedstat needs no BPF: with bpf = auto it is always there
    assert stack.scalar('count(kvm_vcpu_run_delay_seconds_total{vm=~"%s.*"})'
                        % stack.prefix) > 0, stack.prom.why("no schedstat series")
    problems, checked = [], 0
    for uid, panel, values, have in _panel_runs(stack):
        results = ms.run_panel(stack.prom, panel, values)
        missing = panel.needs - have
        where = "%s / %s [%s]" % (uid, panel.title, stack.name)
        if missing:
            # what is there must still be the right kind; histogram panels
            # must be empty when histograms are off
            problems += ["%s: %s" % (where, p) for p in
                         ms.panel_problems(panel, results, expect_data=False)]
            if "histograms" in missing and any(r for _, _, r in results):
                problems.append("%s: data although histograms = no" % where)
            continue
        checked += 1
        problems += ["%s: %s" % (where, p) for p in ms.panel_problems(panel, results)]
    assert checked >= 30, (checked, have)
    assert not problems, stack.prom.why("features %s\n%s" % (sorted(stack.features()),
                                                               "\n".join(problems)))


def test_fleet_tables_rank_the_demo_vms(stack):
    """The fleet overview's top-VM tables hold each demo VM once, with its
    host."""
    values = dict(ms.generate.VAR_VALUES, __rate_interval=RATE_INTERVAL)
    fleet = {p.title: p for uid, p in ms.panels() if uid == "kvmstatd-fleet"}
    for title in ("Top VMs by exit rate", "Top VMs by CPU contention"):
        (expr, rtype, result), = ms.run_panel(stack.prom, fleet[title], values)
        assert rtype == "vector", (title, rtype)
        rows = [(r["metric"]["instance"], r["metric"]["vm"], float(r["value"][1])) for r in result]
        demo = [r for r in rows if r[1] in stack.names]
        assert all(r[0] == "127.0.0.1:%d" % stack.daemon.port for r in demo), rows
        assert sorted(r[1] for r in demo) == sorted(stack.names), stack.prom.why((title, rows))


@pytest.mark.only_param("stack", "include_profile")
def test_the_include_profile_keeps_only_what_the_dashboards_read(stack):
    _, profile = _include_profile()
    expo = stack.daemon.scrape()
    fams = {ms.generate.kvm_family(n) for (n, _) in expo.samples
            if n.startswith("kvm_") and n != "kvm_vm_info"}
    assert fams and fams <= profile, sorted(fams - profile)


@pytest.mark.only_param("stack", "default")
def test_rules_healthy_and_no_alert_on_a_healthy_host(stack):
    bad = {r["name"]: r.get("lastError") for g in stack.prom.rules() for r in g["rules"]
           if r["health"] != "ok"}
    assert not bad, stack.prom.why(bad)
    recorded = stack.prom.query('count by (__name__) ({__name__=~"vm:.+|vm_.+:.+|instance:.+", '
                                'vm=~"%s.*"})' % stack.prefix)
    names = {m["__name__"] for m, _ in recorded}
    for want in ("vm:kvm_vcpu_exits:rate5m", "vm:kvm_vcpu_run_delay:ratio5m",
                 "vm:kvm_vcpu_thread_cpu_seconds:rate5m"):
        assert want in names, stack.prom.why((want, sorted(names)))
    alerts = stack.prom.alerts()
    firing = [a for a in alerts if a["state"] == "firing"]
    assert not firing, stack.prom.why(firing)
    # the exporter's alerts must not even be pending, but for missed ticks,
    # which measure the machine's speed as much as the exporter's (the
    # lab's emulated CPUs under load miss some); a VM alert may be pending
    # on a slow machine too (nested, emulated CPUs make QEMU's exits slow):
    # their production `for:` exists to ride such spells out
    exporter = {r["name"] for g in stack.prom.rules() if g["name"] == "kvmstatd.exporter"
                for r in g["rules"]} - {"KvmstatdMissedTicks"}
    pending = [a for a in alerts if a["labels"]["alertname"] in exporter]
    assert not pending, stack.prom.why(pending)
    for a in alerts:
        print("pending on this host: %s %s" % (a["labels"]["alertname"], a["labels"].get("vm")))


# ------------------------------------------------------------ CPU contention

def _pin_and_renice(pid, cpu, nice):
    for task in os.listdir("/proc/%d/task" % pid):
        tid = int(task)
        try:
            os.sched_setaffinity(tid, {cpu})
            os.setpriority(os.PRIO_PROCESS, tid, nice)
        except ProcessLookupError:
            pass


def test_cpu_hog_on_the_vcpus_cpu_makes_contention_pending_and_delivered(
        kvmstatd_bin, demo_vmm_bin, root, kvm, rules_dir, alert_chain):
    """One VM, one vCPU waking 1000 times a second, pinned to a CPU; two
    busy loops at nice -20 join it there and its threads drop to nice 5
    (about 0.2 % of that CPU: less than the vCPU wants, so it waits nearly
    all the time; nice 19 would let it run, and so update its schedstat
    run delay, only every few seconds). The shipped
    KvmVmCpuContention goes pending for that VM (its `for:` is 20 minutes)
    and the short copy fires and is delivered."""
    if not os.path.exists("/proc/self/schedstat"):
        pytest.skip("no /proc/<pid>/schedstat here (CONFIG_SCHED_INFO)")
    hook, am = alert_chain
    s = Stack("hog", {}, "mon-hog-")
    hogs = []
    try:
        s.start(ms.RULE_FILES + [ms.shortened_alerts(rules_dir)], alertmanager=am,
                vms=1, vcpus=1, hz=1000)
        vm = s.names[0]
        cpu = max(os.sched_getaffinity(0))
        _pin_and_renice(s.vmm.pid, cpu, 0)
        before = [a for a in s.prom.alerts() if a["labels"].get("vm") == vm and
                  a["labels"]["alertname"] == "KvmVmCpuContention"]
        assert not before, s.prom.why("alerts before the hog: %r" % before)

        def hog_setup():
            os.sched_setaffinity(0, {cpu})
            os.nice(-20)
        # each busy loop ends by itself after 80 s should the test die
        loop = "import time\nend = time.monotonic() + 80\nwhile time.monotonic() < end: pass\n"
        hogs = [subprocess.Popen(["/usr/bin/python3", "-c", loop], preexec_fn=hog_setup)
                for _ in range(2)]
        _pin_and_renice(s.vmm.pid, cpu, 5)
        pending = ms.wait_alert(s.prom, "KvmVmCpuContention", "pending", vm=vm, copy=None)
        assert pending["labels"]["instance"] == "127.0.0.1:%d" % s.daemon.port, pending
        ratio = float(pending["value"])
        assert 0.10 < ratio <= 1.0, pending
        ms.wait_alert(s.prom, "KvmVmCpuContention", "firing", vm=vm, copy="short")
        got = ms.wait_delivered(hook, am, "KvmVmCpuContention", vm=vm)
        assert got["severity"] == "warning", got
    finally:
        for h in hogs:
            h.kill()
            h.wait()
        s.stop()
