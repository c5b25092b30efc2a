"""A fleet, not one host: three kvmstatd "hosts", each in a network
namespace of its own (ip netns + a veth pair, addresses 10.231.N.0/30 that
this module creates and removes) and listening on its own address; one
site Prometheus finds them through file-based service discovery, relabels
`instance` to the host's name and loads the shipped rules; a "global"
Prometheus federates from it only the recording rules and the exporter
health series (`up`, `kvmstatd_*`), as README's fleet recipe says.

Without KVM (runs everywhere, as root): every host is up under its name,
the global Prometheus has every host's exporter series and none of the raw
KVM series, the fleet overview's exporter panels and its variables work
against it, and a host whose kvmstatd stops shows as down on the global
Prometheus while KvmstatdTargetDown is pending for it by name on the site.
With KVM (the lab): each host runs a demo VM of the same name `web-0` at a
different rate; the fleet overview's top-VM table ranks the three by
exit rate, told apart by host, on the site and on the global Prometheus,
and every fleet panel has the data it needs on the global one.
"""

import json
import os
import subprocess
import tempfile

import pytest

import harness
import monitoring_stack as ms
from monitoring_stack import _deadline  # noqa: F401 (fixture: a longer deadline)

HOSTS = 3
PORT = 9735
CLUSTER = "lab"
# guest wake-ups per second of each host's VM: host N+1 exits most
HZ = (20, 60, 180)
FEDERATE = ['{__name__=~"[a-z0-9_]+:[a-z0-9_:]+"}', '{__name__=~"up|kvmstatd_.+", job="kvm"}']


def host_name(i):
    return "kvmhost-%d" % (i + 1)


def _ip(*args, ns=None):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + ["ip"] + list(args)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Host:
    def __init__(self, i):
        self.i = i
        self.name = host_name(i)
        self.ns = "kvmstatd-mon-%d" % (i + 1)
        self.veth_host, self.veth_ns = "kvmmon%dh" % (i + 1), "kvmmon%dn" % (i + 1)
        self.addr = "10.231.%d.2" % (i + 1)
        self.gw = "10.231.%d.1" % (i + 1)
        self.daemon = None
        self.vmm = None

    def remove(self):
        """Remove this module's namespace and veth, if left by a run that died."""
        subprocess.run(["ip", "netns", "del", self.ns], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "link", "del", self.veth_host], stderr=subprocess.DEVNULL)

    def create(self):
        self.remove()
        _ip("netns", "add", self.ns)
        _ip("link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_ns)
        _ip("link", "set", self.veth_ns, "netns", self.ns)
        _ip("addr", "add", self.gw + "/30", "dev", self.veth_host)
        _ip("link", "set", self.veth_host, "up")
        _ip("link", "set", "lo", "up", ns=self.ns)
        _ip("addr", "add", self.addr + "/30", "dev", self.veth_ns, ns=self.ns)
        _ip("link", "set", self.veth_ns, "up", ns=self.ns)

    def start_daemon(self):
        overrides = dict(harness.BPF_ON)
        overrides[("daemon", "bpf_slots")] = "256"
        overrides[("http", "listen")] = "%s:%d" % (self.addr, PORT)
        self.daemon = harness.Daemon(overrides, prefix=["ip", "netns", "exec", self.ns])
        # the health check and scrapes go to the namespace's address
        self.daemon.port = PORT
        self.daemon.url = "http://%s:%d" % (self.addr, PORT)
        self.daemon.start()

    @property
    def target(self):
        return "%s:%d" % (self.addr, PORT)


class Fleet:
    def __init__(self):
        self.hosts = [Host(i) for i in range(HOSTS)]
        self.dir = tempfile.mkdtemp(prefix="kvmstatd-fleet-")
        self.site = self.glob = None

    def start(self):
        for h in self.hosts:
            h.create()
            h.start_daemon()
        sd = os.path.join(self.dir, "kvmstatd-targets.json")
        with open(sd, "w") as f:
            json.dump([{"targets": [h.target], "labels": {"__kvm_host": h.name, "cluster": CLUSTER}}
                       for h in self.hosts], f)
        site_job = {"job_name": ms.JOB, "file_sd_configs": [{"files": [sd]}],
                    "relabel_configs": [{"source_labels": ["__kvm_host"],
                                         "target_label": "instance"}]}
        self.site = ms.RulesPrometheus([site_job], ms.RULE_FILES,
                                       external_labels={"site": "site-a"}).start()
        self.site.wait_targets_up()
        fed_job = {"job_name": "federate", "honor_labels": True, "metrics_path": "/federate",
                   "params": {"match[]": FEDERATE},
                   "static_configs": [{"targets": ["127.0.0.1:%d" % self.site.port]}]}
        self.glob = ms.RulesPrometheus([fed_job]).start()
        self.glob.wait_targets_up()
        return self

    def stop(self):
        problems = []
        for p in (self.glob, self.site):
            if p is not None:
                p.stop()
        for h in self.hosts:
            if h.vmm is not None:
                h.vmm.stop()
            if h.daemon is not None:
                try:
                    h.daemon.stop(check=True)
                except AssertionError as e:
                    problems.append("%s: %s" % (h.name, e))
                finally:
                    h.daemon.kill_all()
            h.remove()
        ms.shutil.rmtree(self.dir, ignore_errors=True)
        return problems


@pytest.fixture(scope="module")
def fleet(kvmstatd_bin, root):
    if not ms.shutil.which("ip"):
        pytest.skip("ip (iproute2) is missing")
    f = Fleet()
    try:
        f.start()
        yield f
    finally:
        problems = f.stop()
    if problems:
        pytest.fail("kvmstatd did not stop cleanly: %s" % problems, pytrace=False)


NAMES = sorted(host_name(i) for i in range(HOSTS))
VALUES = dict(ms.generate.VAR_VALUES, cluster=CLUSTER, job=ms.JOB, __rate_interval="10s")


def _instances(prom, expr):
    return sorted(m["instance"] for m, _ in prom.query(expr))


def test_every_host_is_up_under_its_name_on_site_and_global(fleet):
    site, glob = fleet.site, fleet.glob
    assert _instances(site, 'up{job="kvm", cluster="lab"} == 1') == NAMES, site.why("site up")
    targets = site.targets()[ms.JOB]
    assert sorted(t["labels"]["instance"] for t in targets) == NAMES, targets
    assert sorted(t["scrapeUrl"] for t in targets) == sorted(
        "http://%s/metrics" % h.target for h in fleet.hosts), targets
    glob.wait_until(lambda: _instances(glob, 'kvmstatd_build_info{cluster="lab", site="site-a"}')
                    == NAMES, ms.WAIT_S, what="every host's kvmstatd_build_info on the global")
    assert _instances(glob, 'up{job="kvm"} == 1') == NAMES, glob.why("global up")
    raw = glob.query('count({__name__=~"kvm_.+"})')
    assert not raw, glob.why("raw KVM series federated: %r" % raw)


def test_fleet_variables_and_exporter_panels_work_on_the_global(fleet):
    glob = fleet.glob
    ms.wait_samples(glob, 6)
    # the fleet dashboard's variables: cluster, then job, then instance
    variables = {v["name"]: v["query"]["query"] for v in ms.generate.fleet().templating
                 if v["type"] == "query"}
    for name, want in (("cluster", [CLUSTER]), ("job", [ms.JOB]), ("instance", NAMES)):
        q = ms.promql.substitute(variables[name], VALUES)
        sel, label = q[len("label_values("):-1].rsplit(",", 1)
        got = sorted({s[label.strip()] for s in glob.series(sel) if label.strip() in s})
        assert got == want, glob.why((name, q, got))
    problems, checked = [], 0
    for uid, panel in ms.panels([ms.generate.fleet()]):
        if not ms.only_self_metrics(panel):
            continue
        checked += 1
        problems += ["%s: %s" % (panel.title, p)
                     for p in ms.panel_problems(panel, ms.run_panel(glob, panel, VALUES))]
    assert checked >= 6 and not problems, glob.why("\n".join(problems))
    per_host = ms.generate.fleet()
    vms = {p.title: p for p in per_host.panels()}["VMs"]
    (expr, rtype, result), = ms.run_panel(glob, vms, VALUES)
    assert result and float(result[0]["values"][-1][1]) == 0.0, (expr, result)


def test_vms_of_the_same_name_are_ranked_across_hosts(fleet, demo_vmm_bin, kvm):
    """Each host runs `web-0`, at HZ[i] wake-ups per second: the fleet
    overview's top-VMs-by-exit-rate table holds three `web-0` rows told
    apart by host, ranked host 3, 2, 1, on the site and on the global
    Prometheus; every fleet panel has what it needs on the global one."""
    for h, hz in zip(fleet.hosts, HZ):
        h.vmm = harness.DemoVmm(h.daemon.socket, vms=1, vcpus=1, name_prefix="web-", hz=hz)
        h.vmm.start()
        assert [vm.name for vm in h.vmm.vms] == ["web-0"], h.vmm.lines
        harness.wait_for_vms(h.daemon, ["web-0"])
    site, glob = fleet.site, fleet.glob
    enough = 'count(count_over_time(vm:kvm_vcpu_exits:rate5m{vm="web-0"}[60s]) >= 5) == 3'
    for prom in (site, glob):
        prom.wait_until(lambda: prom.query(enough), ms.WAIT_S,
                        what="5 evaluations of the 3 web-0 exit rates")
    top = {p.title: p for p in ms.generate.fleet().panels()}["Top VMs by exit rate"]
    want = [host_name(i) for i in reversed(range(HOSTS))]
    for prom in (site, glob):
        (expr, rtype, result), = ms.run_panel(prom, top, VALUES)
        rows = sorted(((float(r["value"][1]), r["metric"]["instance"]) for r in result
                       if r["metric"]["vm"] == "web-0"), reverse=True)
        assert [i for _, i in rows] == want, prom.why((expr, rows))
    have = {"schedstat", "histograms", "per_vcpu"}
    if glob.query("max(kvmstatd_bpf_enabled) == 1"):
        have.add("bpf")
        if glob.query("count(vm_reason:kvm_vcpu_exits_by_reason:rate5m) > 0"):
            have.add("hw_exits")
    problems = []
    for uid, panel in ms.panels([ms.generate.fleet()]):
        results = ms.run_panel(glob, panel, VALUES)
        problems += ["%s: %s" % (panel.title, p)
                     for p in ms.panel_problems(panel, results, expect_data=panel.needs <= have)]
    assert not problems, glob.why("features %s\n%s" % (sorted(have), "\n".join(problems)))


def test_a_stopped_host_is_down_by_name_on_site_and_global(fleet):
    """Runs last: it stops host 3's kvmstatd."""
    h = fleet.hosts[-1]
    h.daemon.stop()
    site, glob = fleet.site, fleet.glob
    glob.wait_until(lambda: _instances(glob, 'up{job="kvm"} == 0') == [h.name], ms.WAIT_S,
                    what="%s down on the global Prometheus" % h.name)
    down = {p.title: p for p in ms.generate.fleet().panels()}["Hosts down"]
    (expr, rtype, result), = ms.run_panel(glob, down, VALUES, seconds=2.0)
    assert result and float(result[0]["values"][-1][1]) == 1.0, glob.why((expr, result))
    alert = ms.wait_alert(site, "KvmstatdTargetDown", "pending", instance=h.name)
    assert alert["labels"]["cluster"] == CLUSTER, alert
