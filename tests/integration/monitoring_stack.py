"""What the monitoring/ tests run: a Prometheus that loads monitoring/'s
rules and sends alerts to a real Alertmanager (Debian's
prometheus-alertmanager), which delivers them to a webhook receiver inside
the test; the dashboards' queries, substituted and run through query_range.

RulesPrometheus(scrape_configs, rule_files, alertmanager=None) - a
    promserver.PrometheusServer with any scrape configs (file_sd, federation),
    rule files and an Alertmanager; rules evaluated every second.
Alertmanager(webhook_url).start() / .stop()
Webhook().start() - collects every notification POSTed to it (.alerts()).
shortened_alerts(dir) - a copy of the shipped alerts with `for:` cut to
    FOR_S seconds (the expressions untouched) and a label copy="short", so
    a test can see an alert fire without waiting the production minutes.
panels(), run_panel(prom, panel, values), panel_problems(panel, results) -
    every dashboard panel; its queries, variables substituted, over the
    last seconds; what is wrong with what they returned for that kind of
    panel.
wait_samples, wait_alert, wait_delivered - polls with WAIT_S bounds.
Fixtures for the test modules: rules_dir, alert_chain (webhook and
Alertmanager), proms (RulesPrometheus factory), _deadline (a longer one).
"""

import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

import harness
import promserver
import statsfd  # noqa: F401 (the tests' raw registration client)

MONITORING = os.path.join(harness.REPO, "monitoring")
sys.path.insert(0, os.path.join(MONITORING, "tools"))
import generate  # noqa: E402
import promql  # noqa: E402

RULE_FILES = generate.RULE_FILES
ALERTMANAGER = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"
FOR_S = 3
# The upper bound of every wait here, and of a whole test (see _deadline):
# in the lab guest (tests/lab/) Prometheus and Alertmanager run on emulated
# CPUs (TCG) and take tens of seconds for what takes one here. Waits poll,
# so a fast machine never waits longer for them.
WAIT_S = 90.0
DEADLINE_S = 420
# the scrape job the shipped alerts expect (KvmstatdTargetDown: up{job="kvm"})
JOB = "kvm"


def _yaml():
    """PyYAML, imported when a test needs it: a machine without it (a lab
    image without python3-yaml) fails those tests, not the collection."""
    try:
        import yaml
    except ImportError:
        raise AssertionError("python3-yaml is missing: scripts/install-deps.sh installs it "
                             "(and the lab image needs it in tests/lab/packages)")
    return yaml


def load_rules():
    yaml = _yaml()
    alerts, records = {}, {}
    for path in RULE_FILES:
        for group in yaml.safe_load(open(path))["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    alerts[rule["alert"]] = rule
                else:
                    records[rule["record"]] = rule
    return alerts, records


def shortened_alerts(directory):
    """A copy of the shipped alerts file whose groups are renamed
    `<group>.short`, every `for:` cut to FOR_S seconds and every alert
    labelled copy="short"; the expressions are the shipped ones. Loaded
    next to the shipped files, the shipped alert goes pending (and stays so
    for its production `for:`) while its copy fires and is delivered."""
    yaml = _yaml()
    doc = yaml.safe_load(open(RULE_FILES[1]))
    for group in doc["groups"]:
        group["name"] += ".short"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "%ds" % FOR_S
            rule.setdefault("labels", {})["copy"] = "short"
    dst = os.path.join(directory, "kvmstatd-alerts.short.rules.yml")
    with open(dst, "w") as f:
        yaml.safe_dump(doc, f)
    return dst


def kvm_job(targets, params=None):
    """A static scrape config for the job the alerts expect."""
    sc = {"job_name": JOB, "static_configs": [{"targets": list(targets)}]}
    if params:
        sc["params"] = params
    return sc


class RulesPrometheus(promserver.PrometheusServer):
    """scrape_configs: full Prometheus scrape configs (their interval and
    timeout default to promserver's 1 s)."""

    def __init__(self, scrape_configs, rule_files=(), alertmanager=None, external_labels=None):
        super().__init__({})
        self.jobs = {sc["job_name"]: None for sc in scrape_configs}
        interval = "%ds" % promserver.SCRAPE_INTERVAL_S
        for sc in scrape_configs:
            sc.setdefault("scrape_interval", interval)
            sc.setdefault("scrape_timeout", interval)
        cfg = {"global": {"scrape_interval": interval, "scrape_timeout": interval,
                          "evaluation_interval": "1s"},
               "scrape_configs": scrape_configs,
               "rule_files": list(rule_files)}
        if external_labels:
            cfg["global"]["external_labels"] = external_labels
        if alertmanager is not None:
            cfg["alerting"] = {"alertmanagers": [{
                "api_version": "v2", "static_configs": [{"targets": [alertmanager.address]}]}]}
        with open(self.config, "w") as f:
            json.dump(cfg, f, indent=1)

    def rules(self):
        return self.api("rules")["groups"]

    def alerts(self):
        return self.api("alerts")["alerts"]

    def start(self, timeout=WAIT_S):
        return super().start(timeout)

    def api(self, path, params=None, timeout=WAIT_S / 3):
        # one query on emulated CPUs under load took longer than promserver's 5 s
        return super().api(path, params, timeout)

    def wait_targets_up(self, timeout=WAIT_S):
        return super().wait_targets_up(timeout)

    def wait_rules_evaluated(self, want_groups, timeout=WAIT_S):
        """Wait until every rule of every group was evaluated at least once;
        returns the groups."""
        def done():
            groups = self.rules()
            names = {g["name"] for g in groups}
            if not set(want_groups) <= names:
                return None
            for g in groups:
                for r in g["rules"]:
                    if r.get("lastEvaluation", "").startswith("0001-"):
                        return None
            return groups
        return self.wait_until(done, timeout, 0.2, "every rule evaluated once")

    def query_range(self, expr, start, end, step=1.0):
        data = self.api("query_range", {"query": expr, "start": "%.3f" % start,
                                        "end": "%.3f" % end, "step": "%g" % step})
        return data["resultType"], data["result"]


class Webhook:
    """An HTTP server that keeps every Alertmanager notification."""

    def __init__(self):
        self.notifications = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.notifications.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/alerts" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def alerts(self):
        """Every alert of every notification received: (status, labels)."""
        with self.lock:
            return [(a["status"], a["labels"]) for n in self.notifications for a in n["alerts"]]


class Alertmanager:
    def __init__(self, webhook_url):
        self.dir = tempfile.mkdtemp(prefix="kvmstatd-am-")
        self.port = harness.free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.url = "http://" + self.address
        self.config = os.path.join(self.dir, "alertmanager.yml")
        self.log_path = os.path.join(self.dir, "alertmanager.log")
        cfg = {"route": {"receiver": "test", "group_by": ["alertname", "instance", "vm"],
                         "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"},
               "receivers": [{"name": "test", "webhook_configs": [
                   {"url": webhook_url, "send_resolved": False}]}]}
        with open(self.config, "w") as f:
            json.dump(cfg, f)
        self.proc = None

    def start(self, timeout=WAIT_S):
        if not os.access(ALERTMANAGER, os.X_OK):
            raise AssertionError("%s missing: scripts/install-deps.sh installs "
                                 "prometheus-alertmanager (and the lab image needs it in "
                                 "tests/lab/packages)" % ALERTMANAGER)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [ALERTMANAGER, "--config.file=" + self.config,
             "--storage.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=" + self.address, "--cluster.listen-address="],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            close_fds=True, cwd=self.dir)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("alertmanager exited: " + self.log())
            try:
                return harness.http(self.url, "/-/ready", timeout=1.0).status == 200
            except OSError:
                return False
        harness.wait_until(ready, timeout, 0.1, "alertmanager ready")
        return self

    def log(self):
        try:
            return open(self.log_path, "rb").read()[-3000:].decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None:
            self._log.close()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------------ panel queries

def panels(dashboards=None):
    """(dashboard uid, Panel) of every panel."""
    for d in dashboards or generate.dashboards():
        for p in d.panels():
            yield d.uid, p


def only_self_metrics(panel):
    """True for a panel that reads only kvmstatd's own metrics and `up`
    (it has data without any VM)."""
    for q in panel.queries():
        for n in promql.metric_names(promql.substitute(q, generate.VAR_VALUES)):
            if not (n.startswith("kvmstatd_") or n == "up"):
                return False
    return True


def run_panel(prom, panel, values, seconds=20.0):
    """Run every query of a panel through query_range over the last
    `seconds`; returns [(expr, result type, result)]."""
    end = time.time()
    out = []
    for q in panel.queries():
        expr = promql.substitute(q, values)
        if panel.instant:
            # A failed scrape marks every series of its target stale, and an
            # instant query then finds nothing until the next good scrape:
            # on a loaded machine (the lab's emulated CPUs miss the 1 s
            # scrape timeout now and then) ask again for a few seconds.
            deadline = time.monotonic() + 10.0
            while True:
                data = prom.api("query", {"query": expr, "time": "%.3f" % time.time()})
                if data["result"] or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            out.append((expr, data["resultType"], data["result"]))
        else:
            rtype, result = prom.query_range(expr, end - seconds, end, 1.0)
            out.append((expr, rtype, result))
    return out


def panel_problems(panel, results, expect_data=True):
    """What is wrong with a panel's results for its kind of panel: a
    matrix for time series and heatmaps (with le for heatmaps), a vector for
    tables and instant queries, ratios within [0, 1], data unless none is
    expected."""
    problems = []
    any_data = False
    for expr, rtype, result in results:
        want = "vector" if panel.instant else "matrix"
        if rtype != want:
            problems.append("%s: result type %s, want %s" % (expr, rtype, want))
            continue
        if result:
            any_data = True
        for r in result:
            if panel.kind == "heatmap" and "le" not in r["metric"]:
                problems.append("%s: heatmap series without le: %r" % (expr, r["metric"]))
            values = [v for _, v in r["values"]] if rtype == "matrix" else [r["value"][1]]
            for v in values:
                f = float(v)
                if panel.ratio and f == f and not 0.0 <= f <= 1.0:
                    problems.append("%s: ratio %s outside [0, 1] for %r" % (expr, v, r["metric"]))
                    break
    if expect_data and not any_data and not panel.may_be_empty:
        problems.append("no data from any query: %s" % [e for e, _, _ in results])
    return problems


def free_local_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ------------------------------------------------------------- alert waits

def wait_samples(prom, n=4):
    """Wait until Prometheus holds n samples of kvmstatd_polls_total."""
    prom.wait_until(lambda: prom.query("count_over_time(kvmstatd_polls_total[1m]) >= %d" % n),
                    WAIT_S, what="%d samples of kvmstatd_polls_total" % n)


def wait_alert(prom, name, state, **labels):
    def found():
        for a in prom.alerts():
            if a["labels"].get("alertname") == name and a["state"] == state and \
                    all(a["labels"].get(k) == v for k, v in labels.items()):
                return a
        return None
    return prom.wait_until(found, WAIT_S, 0.1, "%s %s %r" % (name, state, labels))


def wait_delivered(hook, am, name, **labels):
    def found():
        for status, lab in hook.alerts():
            if status == "firing" and lab.get("alertname") == name and \
                    all(lab.get(k) == v for k, v in labels.items()):
                return lab
        return None
    try:
        return harness.wait_until(found, WAIT_S, 0.1, "webhook got %s %r" % (name, labels))
    except AssertionError as e:
        raise AssertionError("%s\nreceived: %r\n--- alertmanager log ---\n%s"
                             % (e, hook.alerts(), am.log()))


# ---------------------------------------------------------------- fixtures

@pytest.fixture(autouse=True)
def _deadline():
    """conftest's deadline, longer: a test here may start Prometheus,
    Alertmanager and VMs and wait for rules to evaluate, which on the lab's
    emulated CPUs takes minutes. Modules that import it use it instead."""
    def expired(signum, frame):
        raise TimeoutError("test still running after %d s" % DEADLINE_S)
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(DEADLINE_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture
def rules_dir():
    d = tempfile.mkdtemp(prefix="kvmstatd-rules-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def alert_chain():
    """(webhook, alertmanager): started, stopped at teardown."""
    hook = Webhook().start()
    am = Alertmanager(hook.url)
    try:
        am.start()
        yield hook, am
    finally:
        am.stop()
        hook.stop()


def _prometheus(made, *a, **kw):
    p = RulesPrometheus(*a, **kw)
    made.append(p)
    return p.start()


@pytest.fixture
def proms():
    made = []
    yield lambda *a, **kw: _prometheus(made, *a, **kw)
    for p in made:
        p.stop()
