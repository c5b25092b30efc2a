"""A real Prometheus server (Debian's /usr/bin/prometheus) for the
integration tests: a temp dir with its config, TSDB and log; a query client
for its HTTP API.

PrometheusServer(jobs).start() writes the config, starts the server on a
free 127.0.0.1 port and waits until GET /-/ready is 200; stop() ends it
(SIGTERM, then SIGKILL) and removes the temp dir. Every error and timeout
of this module carries the tail of Prometheus' log.

Prometheus 2.42 has no `scrape_protocols`: it always sends an Accept header
that prefers OpenMetrics. A job picks the text format with
params={"format": ["prometheus"]} (kvmstatd's ?format= override).
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import harness

PROMETHEUS = "/usr/bin/prometheus"

SCRAPE_INTERVAL_S = 1
# Prometheus' default, given explicitly: a series that merely stopped being
# scraped stays queryable this long; one that vanished from a scrape is
# marked stale at once.
LOOKBACK = "5m"


class PrometheusError(AssertionError):
    pass


class PrometheusServer:
    """jobs: {job_name: {"target": "host:port", "params": {...} or None}}."""

    def __init__(self, jobs, scrape_interval_s=SCRAPE_INTERVAL_S):
        self.jobs = jobs
        self.dir = tempfile.mkdtemp(prefix="kvmstatd-prom-")
        self.port = harness.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.config = os.path.join(self.dir, "prometheus.yml")
        self.log_path = os.path.join(self.dir, "prometheus.log")
        self.proc = None
        self._log = None
        interval = "%ds" % scrape_interval_s
        scrape_configs = []
        for name, job in jobs.items():
            sc = {"job_name": name, "scrape_interval": interval, "scrape_timeout": interval,
                  "static_configs": [{"targets": [job["target"]]}]}
            if job.get("params"):
                sc["params"] = job["params"]
            scrape_configs.append(sc)
        cfg = {"global": {"scrape_interval": interval, "scrape_timeout": interval,
                          "evaluation_interval": interval},
               "scrape_configs": scrape_configs}
        # JSON is YAML: no quoting rules to get wrong
        with open(self.config, "w") as f:
            json.dump(cfg, f, indent=1)

    # --------------------------------------------------------- process

    def start(self, timeout=60.0):
        # a deadline against a server that never gets ready, not a figure:
        # under emulation (the lab) on a busy machine its start took > 15 s
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS,
             "--config.file=%s" % self.config,
             "--storage.tsdb.path=%s" % os.path.join(self.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port,
             "--query.lookback-delta=%s" % LOOKBACK,
             "--log.level=info"],
            cwd=self.dir, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, close_fds=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise PrometheusError("prometheus exited with %s before it was ready%s"
                                      % (self.proc.returncode, self.log_tail()))
            if self._ready():
                return self
            if time.monotonic() >= deadline:
                raise PrometheusError("prometheus not ready after %.0fs%s"
                                      % (timeout, self.log_tail()))
            time.sleep(0.1)

    def _ready(self):
        try:
            return harness.http(self.url, "/-/ready", timeout=1.0).status == 200
        except OSError:
            return False

    def stop(self):
        """End the server (SIGTERM, SIGKILL after 10 s) and remove its dir."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self, tail=4000):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return "(no log)"
        if tail is not None:
            data = data[-tail:]
        return data.decode("utf-8", "replace")

    def log_tail(self):
        """The end of the log, to append to an error message."""
        return "\n--- prometheus log (tail) ---\n" + self.log()

    def why(self, message):
        """An assertion message with the log's tail."""
        return str(message) + self.log_tail()

    # ------------------------------------------------------------ HTTP API

    def api(self, path, params=None, timeout=5.0):
        """GET /api/v1/<path>?params (a dict or a list of pairs); returns
        the `data` of a successful answer."""
        q = urllib.parse.urlencode(params or {}, doseq=True)
        url = "%s/api/v1/%s%s" % (self.url, path, "?" + q if q else "")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                body = json.load(r)
        except urllib.error.HTTPError as e:
            raise PrometheusError("GET %s: %d %s%s" % (url, e.code, e.read()[:500], self.log_tail()))
        except (OSError, ValueError) as e:
            raise PrometheusError("GET %s: %s%s" % (url, e, self.log_tail()))
        if body.get("status") != "success":
            raise PrometheusError("GET %s: %r%s" % (url, body, self.log_tail()))
        return body["data"]

    def query(self, expr, at=None):
        """An instant query: a list of (labels, value) for a vector
        result, (labels, [(timestamp, value)...]) for a range vector."""
        params = {"query": expr}
        if at is not None:
            params["time"] = "%.3f" % at
        data = self.api("query", params)
        if data["resultType"] == "vector":
            return [(r["metric"], float(r["value"][1])) for r in data["result"]]
        if data["resultType"] == "matrix":
            return [(r["metric"], [(float(t), float(v)) for t, v in r["values"]])
                    for r in data["result"]]
        raise PrometheusError("%s: result type %s" % (expr, data["resultType"]))

    def series(self, match, start=None, end=None):
        """/api/v1/series: label sets (with __name__) of every series that
        has samples in [start, end] (all of the TSDB when not given)."""
        params = [("match[]", match)]
        if start is not None:
            params.append(("start", "%.3f" % start))
        if end is not None:
            params.append(("end", "%.3f" % end))
        return self.api("series", params)

    def metadata(self):
        """/api/v1/metadata: {metric: [{"type", "help", "unit"}...]}, one
        entry per distinct triple over all targets."""
        return self.api("metadata")

    def target_metadata(self, job):
        """/api/v1/targets/metadata of one job's targets: {metric: {"type",
        "help", "unit"}} as that job's scrapes reported them."""
        out = {}
        for m in self.api("targets/metadata", {"match_target": '{job="%s"}' % job}):
            out[m["metric"]] = {k: m[k] for k in ("type", "help", "unit")}
        return out

    def targets(self):
        """{job: [active target...]} from /api/v1/targets."""
        out = {}
        for t in self.api("targets", {"state": "active"})["activeTargets"]:
            out.setdefault(t["labels"]["job"], []).append(t)
        return out

    # --------------------------------------------------------------- waits

    def wait_until(self, pred, timeout, interval=0.2, what="condition"):
        """harness.wait_until, with Prometheus' log tail on a timeout."""
        try:
            return harness.wait_until(pred, timeout, interval, what)
        except AssertionError as e:
            raise PrometheusError(self.why(e))

    def wait_targets_up(self, timeout=20.0):
        """Wait until every job's targets were scraped without an error.
        Prometheus hands its discovered targets to the scrape manager on a
        5 s ticker, so the first scrape comes some 5 s after start."""
        def up():
            t = self.targets()
            ok = all(t.get(j) and all(x["health"] == "up" and x["lastError"] == "" for x in t[j])
                     for j in self.jobs)
            return t if ok else None
        try:
            return harness.wait_until(up, timeout, 0.2, "all of %s up" % sorted(self.jobs))
        except AssertionError as e:
            try:
                last = json.dumps(self.targets(), indent=1)[:3000]
            except PrometheusError:
                last = "(targets unavailable)"
            raise PrometheusError("%s\ntargets: %s%s" % (e, last, self.log_tail()))
