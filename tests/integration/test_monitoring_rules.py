"""monitoring/ against real servers, no KVM needed: a real Prometheus 2.42
loads the shipped rule files and scrapes a real kvmstatd (which starts
without /dev/kvm, serving its own metrics); every rule is healthy and no
alert is pending or firing (but KvmstatdMissedTicks, which a loaded machine
may earn); the dashboards' exporter-health panels return
data of the kind they need; stopping kvmstatd fires KvmstatdTargetDown and
a real Alertmanager delivers it to a webhook receiver here, and so it does
for a target where no exporter ever ran; a malformed registration request
fires KvmstatdRegistrationsRejected for its reason, delivered too.

The target-down tests load, next to the shipped files, a copy of the
alerts whose `for:` is cut to monitoring_stack.FOR_S seconds and which
carry copy="short" (the expressions are the shipped ones): the shipped
alert goes pending, as it would stay for its 2 minutes, while the copy
fires and is delivered.
"""

import pytest

import monitoring_stack as ms
from monitoring_stack import _deadline, alert_chain, proms, rules_dir  # noqa: F401 (fixtures)

GROUPS = ("kvmstatd.recording", "kvmstatd.exporter", "kvmstatd.vms")


@pytest.fixture
def daemon(daemon_factory):
    """kvmstatd at the production poll interval (1 s): on the lab's
    emulated CPUs the harness's 200 ms ticks are missed often enough for
    KvmstatdMissedTicks to notice, rightly."""
    return daemon_factory({("poll", "interval_ms"): "1000"})


def quiet(prom):
    """Alerts that should not be there on a healthy exporter: all of them
    but missed ticks, which measure the machine as much as kvmstatd (a
    loaded lab guest misses some even at 1 s)."""
    return [a for a in prom.alerts() if a["labels"]["alertname"] != "KvmstatdMissedTicks"]
# the selector values a Grafana user would have picked: every host
VALUES = dict(ms.generate.VAR_VALUES, __rate_interval="10s")


def test_shipped_rules_load_healthy_and_quiet(daemon, proms):
    """Every group and rule of the shipped files is loaded, evaluates
    without error against a real kvmstatd's page, and nothing is pending or
    firing on a healthy exporter."""
    prom = proms([ms.kvm_job(["127.0.0.1:%d" % daemon.port])], ms.RULE_FILES)
    prom.wait_targets_up()
    ms.wait_samples(prom)
    groups = prom.wait_rules_evaluated(GROUPS)
    alerts, records = ms.load_rules()
    loaded = {r["name"]: r for g in groups for r in g["rules"]}
    assert sorted(loaded) == sorted(set(alerts) | set(records)), prom.why(sorted(loaded))
    bad = {n: (r["health"], r.get("lastError")) for n, r in loaded.items()
           if r["health"] != "ok" or r.get("lastError")}
    assert not bad, prom.why(bad)
    # a few more evaluations with rates available, then still quiet
    ms.wait_samples(prom, 8)
    assert quiet(prom) == [], prom.why(prom.alerts())


def test_exporter_health_panels_return_data(daemon, proms):
    """The panels that read only kvmstatd's own metrics and `up` (the
    fleet overview's exporter health, the host dashboard's kvmstatd row)
    return data of the kind their panel needs from a kvmstatd with no VMs."""
    prom = proms([ms.kvm_job(["127.0.0.1:%d" % daemon.port])], ms.RULE_FILES)
    prom.wait_targets_up()
    ms.wait_samples(prom, 6)
    checked, problems = [], []
    for uid, panel in ms.panels():
        if not ms.only_self_metrics(panel):
            continue
        checked.append("%s/%s" % (uid, panel.title))
        for p in ms.panel_problems(panel, ms.run_panel(prom, panel, VALUES)):
            problems.append("%s / %s: %s" % (uid, panel.title, p))
    assert len(checked) >= 10, checked
    assert not problems, prom.why("\n".join(problems))


def test_stopping_kvmstatd_fires_target_down_to_alertmanager(daemon, proms, rules_dir,
                                                              alert_chain):
    """kvmstatd serves, nothing fires; kvmstatd stops: KvmstatdTargetDown
    goes firing for its target and the Alertmanager delivers it, with its
    severity and runbook, to the webhook."""
    hook, am = alert_chain
    target = "127.0.0.1:%d" % daemon.port
    prom = proms([ms.kvm_job([target])], ms.RULE_FILES + [ms.shortened_alerts(rules_dir)],
                 alertmanager=am)
    prom.wait_targets_up()
    ms.wait_samples(prom)
    prom.wait_rules_evaluated(GROUPS)
    assert quiet(prom) == [], prom.why(prom.alerts())
    daemon.stop()
    shipped = ms.wait_alert(prom, "KvmstatdTargetDown", "pending", instance=target, copy=None)
    assert shipped["labels"]["severity"] == "critical", shipped
    alert = ms.wait_alert(prom, "KvmstatdTargetDown", "firing", instance=target, copy="short")
    assert alert["annotations"]["runbook_url"] == "monitoring/runbooks/KvmstatdTargetDown.md"
    got = ms.wait_delivered(hook, am, "KvmstatdTargetDown", instance=target, job=ms.JOB)
    assert got["severity"] == "critical", got
    others = {a["labels"]["alertname"] for a in quiet(prom)} - {"KvmstatdTargetDown"}
    assert not others, prom.why(others)


def test_target_down_without_any_exporter_reaches_alertmanager(proms, rules_dir, alert_chain):
    """A target where nothing listens: up is 0 from the first scrape,
    KvmstatdTargetDown fires and is delivered."""
    hook, am = alert_chain
    target = "127.0.0.1:%d" % ms.free_local_port()
    prom = proms([ms.kvm_job([target])], ms.RULE_FILES + [ms.shortened_alerts(rules_dir)],
                 alertmanager=am)
    prom.wait_until(lambda: prom.query('up{job="kvm"} == 0'), ms.WAIT_S, what="up == 0")
    ms.wait_alert(prom, "KvmstatdTargetDown", "firing", instance=target, copy="short")
    ms.wait_delivered(hook, am, "KvmstatdTargetDown", instance=target)


def test_a_refused_registration_fires_the_shipped_alert_to_alertmanager(daemon, proms,
                                                                        alert_chain):
    """A malformed registration request (kvmstatd refuses it as
    bad_message): the shipped KvmstatdRegistrationsRejected, which has no
    `for:`, fires for that reason and is delivered."""
    hook, am = alert_chain
    prom = proms([ms.kvm_job(["127.0.0.1:%d" % daemon.port])], ms.RULE_FILES, alertmanager=am)
    prom.wait_targets_up()
    ms.wait_samples(prom)
    assert quiet(prom) == [], prom.why(prom.alerts())
    ms.statsfd.send_datagram(daemon.socket, b"not a registration request")
    prom.wait_until(lambda: prom.query(
        'kvmstatd_registrations_rejected_total{reason="bad_message"} > 0'), ms.WAIT_S,
        what="the refusal counted")
    alert = ms.wait_alert(prom, "KvmstatdRegistrationsRejected", "firing", reason="bad_message")
    assert alert["labels"]["severity"] == "warning", alert
    ms.wait_delivered(hook, am, "KvmstatdRegistrationsRejected", reason="bad_message")
