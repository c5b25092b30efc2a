"""The history, the JSON API (/api/v1/), the kvmstat CLI and the live page.

Without KVM (here and everywhere): the API on a daemon with no VMs, its
refusals, the same authentication, TLS and client certificates as
/metrics, the page's Content-Security-Policy and a clean load in headless
Chromium, and every sentence the CLI says when the daemon is absent or
refuses it (a small stub server stands in for answers the real daemon
does not give on demand: 429, an old daemon's 404, not JSON).

With KVM (the lab): the API's values against the independent reader
(statsfd.py) of the same stats fds, rates and sparklines from the
history, kvmstat --once against the same reader, kvmstat top driven in
tmux (the busiest VM on top, the VM filter, the drill-down, help, the
stats and pid filters, the interval, reset), and the live page in
headless Chromium with its rows and sparklines updating.
"""

import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest

import harness
import statsfd
from test_web_tls_auth import PASSWORD, bcrypt, pki, tls_overrides, users, web_daemon  # noqa: F401

KVMSTAT = os.path.join(harness.REPO, "cli", "kvmstat")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0"]


def api(d, path):
    r = d.get(path)
    assert r.header("Content-Type") == "application/json", (path, r.status)
    return r.status, json.loads(r.body)


def kvmstat(*args, env=None, timeout=20):
    e = {k: v for k, v in os.environ.items() if not k.startswith("KVMSTAT_")}
    e["HOME"] = tempfile.gettempdir()  # no ~/.netrc of the runner's
    e.update(env or {})
    return subprocess.run([KVMSTAT] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=e, stdin=subprocess.DEVNULL)


# ------------------------------------------------------------ without VMs

def test_api_on_a_daemon_without_vms_answers_empty_lists(daemon):
    for ep, key in (("vms", "vms"), ("stats", "rows"), ("exits", "rows")):
        status, doc = api(daemon, "/api/v1/" + ep)
        assert status == 200 and doc["status"] == "success" and doc["version"] == 1, doc
        d = doc["data"]
        assert d[key] == [] and d["truncated"] is False, d
        assert d["interval_s"] == harness.POLL_INTERVAL_MS / 1000
        assert d["history_s"] == 60
        assert abs(d["time"] - time.time()) < 60
    r = daemon.get("/api/v1/vms")
    assert r.header("Cache-Control") == "no-store"
    assert r.header("X-Content-Type-Options") == "nosniff"


@pytest.mark.parametrize("query,why", [
    ("limit=0", "limit: expected rows 1..1000"),
    ("window=3601", "window: expected seconds 0..3600"),
    ("group=cluster", "group: expected vcpu, vm or host"),
    ("vm=(", "vm: expected an extended regular expression"),
    ("match=a%2B%2B", "match: expected an extended regular expression"),
    ("format=json", 'unknown parameter "format"'),
])
def test_api_refuses_a_bad_query_with_400_and_the_reason(daemon, query, why):
    status, doc = api(daemon, "/api/v1/stats?" + query)
    assert status == 400 and doc["status"] == "error" and doc["errorType"] == "bad_data", doc
    assert doc["error"].startswith(why), doc


def test_api_bounds_its_parameters_whatever_http_allows(daemon_factory):
    many = "&".join("vcpu=%d" % i for i in range(17))
    d = daemon_factory()  # [http] max_query_args (16) answers first
    assert d.get("/api/v1/stats?" + many).status == 414
    d = daemon_factory({("http", "max_query_args"): "64"})
    status, doc = api(d, "/api/v1/stats?" + many)
    assert status == 400 and doc["error"] == "more than 16 parameters", doc


def test_api_unknown_endpoint_is_a_json_404(daemon):
    status, doc = api(daemon, "/api/v1/metrics")
    assert status == 404 and doc["errorType"] == "not_found", doc
    assert harness.http(daemon.url, "/api/v1/vms", method="POST").status == 405


def test_history_memory_is_reported(daemon):
    e = daemon.scrape()
    assert e.value("kvmstatd_history_bytes") == 0  # no sources yet
    assert e.value("kvmstatd_history_seconds") == 60
    assert e.value("kvmstatd_history_limit_bytes") == 512 * 2**20
    assert e.value("kvmstatd_history_refused_total") == 0


def test_live_page_has_a_strict_csp_and_no_external_resources(daemon):
    r = daemon.get("/")
    assert r.status == 200 and r.header("Content-Type") == "text/html; charset=utf-8"
    csp = r.header("Content-Security-Policy")
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    for d in ("script-src", "style-src", "connect-src"):
        assert directives[d] == "'self'", csp
    assert "unsafe" not in csp
    page = r.text
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and all(u.startswith("/") and not u.startswith("//") for u in refs), refs
    assert "<script>" not in page and "style=" not in page  # nothing inline
    for path, ctype in (("/kvmstat.js", "text/javascript"), ("/kvmstat.css", "text/css")):
        a = daemon.get(path)
        assert a.status == 200 and a.header("Content-Type").startswith(ctype)
        assert a.header("Content-Security-Policy") == csp
        assert "http://" not in a.text.replace("http://www.w3.org/2000/svg", "")
    assert daemon.get("/index.html").status == 404


def test_cli_list_once_and_json_on_a_daemon_without_vms(daemon):
    r = kvmstat("list", "--url", daemon.url)
    assert r.returncode == 0 and r.stdout.split()[:6] == [
        "VM", "VCPUS", "PID", "COMM", "SOURCE", "UPTIME"], r
    r = kvmstat("--once", "--url", daemon.url)
    assert r.returncode == 0 and r.stdout.split() == ["Event", "Total", "Rate/s"], r
    r = kvmstat("--json", "--url", daemon.url)
    assert r.returncode == 0 and json.loads(r.stdout)["rows"] == [], r
    r = kvmstat("-l", "-c", "-n", "2", "-s", "0.2", "--url", daemon.url)
    assert r.returncode == 1 and r.stderr == (
        "kvmstat: kvmstatd at %s has no counters to log (no VM polled yet?)\n" % daemon.url), r


def test_cli_top_on_a_daemon_without_vms_says_so_and_quits(daemon):
    t = Tmux([KVMSTAT, "top", "--url", daemon.url, "-s", "0.3"])
    try:
        t.wait(lambda s: "no rows: no VM polled yet" in s and "q quit" in s, "the empty table")
        t.keys("q")
        harness.wait_until(lambda: not t.alive(), 5, 0.1, "kvmstat top to quit")
    finally:
        t.close()


def test_cli_says_when_no_daemon_listens():
    url = "http://127.0.0.1:%d" % harness.free_port()
    for args in (["--once"], ["list"], ["top"]):
        r = kvmstat("--url", url, *args)
        assert r.returncode == 1 and r.stdout == "", r
        assert r.stderr == ("kvmstat: no kvmstatd at %s (connection refused): is it running? "
                            "(systemctl status kvmstatd), or give --url\n" % url)
    r = kvmstat("--url", "ftp://x", "--once")
    assert r.returncode == 1 and "expected http://HOST[:PORT]" in r.stderr


@pytest.fixture
def auth_daemon(web_daemon, pki):  # noqa: F811
    o = tls_overrides(pki)
    o.update(users(alice=bcrypt(PASSWORD)))
    return web_daemon(o, pki, ("alice", PASSWORD))


def test_api_and_page_need_the_same_auth_and_tls_as_metrics(auth_daemon, pki):  # noqa: F811
    d = auth_daemon
    for path in ("/api/v1/vms", "/api/v1/stats", "/", "/kvmstat.js"):
        assert d.get(path).code == 401, path
        assert d.get(path, user=("alice", "wrong")).code == 401, path
        assert d.get(path, user=("alice", PASSWORD)).code == 200, path


def test_cli_with_tls_and_basic_auth(auth_daemon, pki, tmp_path):  # noqa: F811
    d = auth_daemon
    ca = ["--cacert", pki.path("server.pem")]
    r = kvmstat("--url", d.base, *ca, "list")
    assert r.returncode == 1 and r.stderr == (
        "kvmstat: kvmstatd at %s wants a user and password (401): set KVMSTAT_USER and "
        "KVMSTAT_PASSWORD, or put them in ~/.config/kvmstat/netrc\n" % d.base), r
    r = kvmstat("--url", d.base, *ca, "list",
                env={"KVMSTAT_USER": "alice", "KVMSTAT_PASSWORD": "nope"})
    assert r.returncode == 1 and 'refused user "alice" (401): wrong user or password' in r.stderr
    r = kvmstat("--url", d.base, *ca, "list",
                env={"KVMSTAT_USER": "alice", "KVMSTAT_PASSWORD": PASSWORD})
    assert r.returncode == 0 and r.stdout.startswith("VM "), r
    rc = tmp_path / "netrc"
    rc.write_text("machine 127.0.0.1 login alice password %s\n" % PASSWORD)
    rc.chmod(0o600)
    r = kvmstat("--url", d.base, *ca, "--netrc", str(rc), "--once")
    assert r.returncode == 0, r
    r = kvmstat("--url", d.base, "list", env={"KVMSTAT_USER": "alice",
                                               "KVMSTAT_PASSWORD": PASSWORD})
    assert r.returncode == 1 and "TLS certificate not trusted" in r.stderr, r
    assert "--cacert" in r.stderr


def test_cli_without_the_client_certificate_is_told_403(web_daemon, pki):  # noqa: F811
    o = tls_overrides(pki, tls_client_auth_type="RequireAndVerifyClientCert",
                      tls_client_ca_file=pki.path("ca.pem"))
    mine = ["--cert", pki.path("client.pem"), "--key", pki.path("client.key")]
    d = web_daemon(o, pki, probe_args=mine)
    r = kvmstat("--url", d.base, "--cacert", pki.path("server.pem"), "list")
    assert r.returncode == 1 and "(403 Forbidden): it wants a valid client certificate" in \
        r.stderr, r
    r = kvmstat("--url", d.base, "--cacert", pki.path("server.pem"), *mine, "list")
    assert r.returncode == 0, r


class Stub(http.server.BaseHTTPRequestHandler):
    """Answers what the real daemon does not give on demand."""
    answers = {}

    def do_GET(self):
        status, headers, body = self.answers[urllib.parse.urlsplit(self.path).path]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def stub():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("status,headers,body,said", [
    (429, {"Retry-After": "3"}, b"too many\n",
     "kvmstatd at {url} is busy (429 Too Many Requests): try again in 3 s"),
    (429, {}, b"", "kvmstatd at {url} is busy (429 Too Many Requests): try again later"),
    (404, {}, b"not found\n",
     "kvmstatd at {url} has no JSON API (404): it is older than this kvmstat"),
    (200, {}, b"# HELP something\n", "{url}/api/v1/vms did not answer with kvmstatd's JSON API"),
    (503, {"Content-Type": "application/json"},
     b'{"status":"error","errorType":"unavailable","error":"starting up"}',
     "kvmstatd at {url} answered 503 Service Unavailable: starting up"),
])
def test_cli_refusals_are_one_clear_sentence(stub, status, headers, body, said):
    Stub.answers = {"/api/v1/vms": (status, headers, body)}
    r = kvmstat("--url", stub, "list")
    assert r.returncode == 1 and r.stdout == "", r
    assert r.stderr == "kvmstat: %s\n" % said.format(url=stub), r.stderr


# Headless Chromium starts in seconds on a host, in minutes in the lab's
# emulated guest (over 240 s for the ranking page when other guests share
# the cores): its run and the tests that use it get a longer deadline.
CHROMIUM_TIMEOUT_S = 420
CHROMIUM_DEADLINE_S = CHROMIUM_TIMEOUT_S + 60


def chromium(url, budget_ms=6000, screenshot=None, size="1000,700", extra=()):
    """Load url headless; returns (DOM after budget_ms of the page's time,
    the console lines and page errors Chromium logged)."""
    if not CHROMIUM:
        pytest.fail("chromium is missing: scripts/install-deps.sh installs it "
                    "(the lab's image: tests/lab/packages)", pytrace=False)
    with tempfile.TemporaryDirectory(prefix="kvmstat-chromium-") as profile:
        cmd = [CHROMIUM] + CHROMIUM_FLAGS + list(extra) + [
            "--user-data-dir=" + profile, "--window-size=" + size,
            "--virtual-time-budget=%d" % budget_ms]
        cmd += ["--dump-dom"] + (["--screenshot=" + screenshot] if screenshot else [])
        # one start per test: under the lab's TCG a start takes tens of seconds
        p = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S,
                           stdin=subprocess.DEVNULL)
    console = [l for l in p.stderr.splitlines()
               if "CONSOLE" in l or "Uncaught" in l or "Content Security Policy" in l]
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout, console


def refreshes(dom):
    m = re.search(r'<body[^>]*data-refreshes="(\d+)"', dom)
    return int(m.group(1)) if m else 0


@pytest.mark.deadline(CHROMIUM_DEADLINE_S)
def test_live_page_loads_in_chromium_without_errors(daemon):
    dom, console = chromium(daemon.url + "/")
    assert not console, console
    assert refreshes(dom) >= 2, dom[:2000]  # it asked the API again and again
    assert "0 rows · every 0.2 s" in dom, dom


@pytest.mark.deadline(CHROMIUM_DEADLINE_S)
def test_live_page_works_behind_basic_auth(web_daemon):  # noqa: F811
    d = web_daemon(users(alice=bcrypt(PASSWORD)), user_pw=("alice", PASSWORD))
    dom, console = chromium("http://alice:%s@127.0.0.1:%d/" % (PASSWORD, d.port))
    assert not console, console
    assert refreshes(dom) >= 2, dom[:2000]


@pytest.mark.deadline(CHROMIUM_DEADLINE_S)
def test_live_page_works_over_tls_with_basic_auth(auth_daemon):
    d = auth_daemon
    url = "https://alice:%s@127.0.0.1:%d/" % (PASSWORD, d.port)
    dom, console = chromium(url, extra=["--ignore-certificate-errors"])  # the test's own CA
    assert not console, console
    assert refreshes(dom) >= 2, dom[:2000]


# --------------------------------------------------------------- with KVM

def start_vms(daemon, demo_vmm, prefix, vms=2, vcpus=2, hz=200):
    vmm = demo_vmm(daemon.socket, vms=vms, vcpus=vcpus, name_prefix=prefix, hz=hz)
    harness.wait_for_vms(daemon, [vm.name for vm in vmm.vms])
    return vmm


def raw_values(vms, kinds=None):
    """{(vm, vcpu or None, stat): value in base units} of every counter and
    gauge the API serves, read now by statsfd; kinds (a dict) receives
    "boolean", "counter" or "gauge" per key. A histogram's cumulative twin
    is its _sum on /metrics, not a stat of its own: left out, as the daemon
    does."""
    out = {}
    for vm in vms:
        with harness.fd_copies(vm) as fds:
            for i, fd in enumerate(fds):
                s = statsfd.StatsFd(fd)
                vals = s.read_data()
                hist = {d.family(s.scope) for d in s.descs if d.is_hist}
                for d in s.descs:
                    if d.is_hist or (d.type == statsfd.TYPE_CUMULATIVE and
                                     d.unit != statsfd.UNIT_BOOLEAN and
                                     d.family(s.scope) in hist):
                        continue
                    key = (vm.name, s.vcpu_index if i else None, d.name)
                    out[key] = d.scale(vals[d.name][0])
                    if kinds is not None:
                        kinds[key] = ("boolean" if d.unit == statsfd.UNIT_BOOLEAN else
                                      "counter" if d.type == statsfd.TYPE_CUMULATIVE else "gauge")
    return out


def wait_history(daemon, samples=4):
    """Until the sources have a few samples of history (ticks, not sleeps)."""
    first = daemon.scrape().value("kvmstatd_polls_total")
    harness.wait_until(lambda: daemon.scrape().value("kvmstatd_polls_total") >= first + samples,
                       10, 0.05, "%d poll ticks" % samples)


def test_api_values_match_the_independent_reader(daemon, demo_vmm):
    vmm = start_vms(daemon, demo_vmm, "api-match")
    wait_history(daemon, 2)
    kinds = {}
    before = raw_values(vmm.vms, kinds)
    wait_history(daemon, 2)
    _, doc = api(daemon, "/api/v1/stats?group=vcpu&limit=1000&sort=name")
    after = raw_values(vmm.vms)
    rows = doc["data"]["rows"]
    got = {(r["vm"], r.get("vcpu"), r["stat"]): r for r in rows}
    assert set(got) == set(before), sorted(set(got) ^ set(before))[:20]
    assert doc["data"]["truncated"] is False
    bad = []
    for k, r in got.items():
        lo, hi = sorted((before[k], after[k]))
        assert r["kind"] == ("counter" if kinds[k] == "counter" else "gauge"), (k, r)
        if kinds[k] == "boolean":  # may flip and back between the reads
            ok = r["value"] in (0, 1)
        else:
            ok = lo - 1e-9 * abs(hi) <= r["value"] <= hi + 1e-9 * abs(hi)
        if not ok:
            bad.append("%s: api %r, reader %r .. %r" % (k, r["value"], before[k], after[k]))
    assert not bad, "\n".join(bad[:20])
    assert any(r["stat"] == "exits" and r["value"] > 0 for r in rows)


def test_api_rates_and_sparklines_come_from_the_history(daemon, demo_vmm):
    vmm = start_vms(daemon, demo_vmm, "api-rate", vms=1, vcpus=2, hz=500)
    wait_history(daemon, 6)
    t0, r0 = time.monotonic(), raw_values(vmm.vms)
    wait_history(daemon, 5)
    t1, r1 = time.monotonic(), raw_values(vmm.vms)
    _, doc = api(daemon, "/api/v1/stats?match=exits&group=vm&window=1&spark=5")
    (row,) = doc["data"]["rows"]
    reader_rate = sum(r1[k] - r0[k] for k in r1 if k[2] == "exits") / (t1 - t0)
    assert row["vcpus"] == 2 and row["rate"] > 0, row
    assert reader_rate / 3 <= row["rate"] <= reader_rate * 3, (row, reader_rate)
    assert len(row["spark"]) == 5 and all(p is not None and p > 0 for p in row["spark"]), row
    # group=vm is the sum of its vCPUs, and host the sum of everything
    _, per_vcpu = api(daemon, "/api/v1/stats?match=exits&group=vcpu&window=1")
    assert len(per_vcpu["data"]["rows"]) == 2
    _, host = api(daemon, "/api/v1/stats?match=exits&group=host")
    assert host["data"]["rows"][0]["sources"] == 2


def test_history_stays_within_its_limit_and_rates_still_come(daemon_factory, demo_vmm):
    # 3600 s at 200 ms: 4096 samples of 384 bytes, 1.5 MiB a vCPU, past 1 MiB
    daemon = daemon_factory({("poll", "history_s"): "3600", ("poll", "history_max_mib"): "1"})
    vmm = start_vms(daemon, demo_vmm, "hist-cap", vms=1, vcpus=2, hz=300)
    e = daemon.scrape()
    # the VM's own history (15 counters and gauges, 0.75 MiB) fits, its vCPUs' do not
    assert e.value("kvmstatd_history_refused_total") == 2, daemon.log()
    assert 0 < e.value("kvmstatd_history_bytes") <= 2**20
    assert len(daemon.log_lines(r"history_max_mib \(1\) reached")) == 1
    wait_history(daemon, 3)
    _, doc = api(daemon, "/api/v1/stats?match=exits&group=vcpu")
    rows = doc["data"]["rows"]
    assert len(rows) == 2 and all(r["rate"] > 0 for r in rows), rows  # from the poll ring
    assert vmm.vms[0].name == "hist-cap0"


def test_api_exits_has_reasons_quantiles_and_run_delay(daemon_factory, demo_vmm):
    daemon = harness.require_bpf(daemon_factory(harness.BPF_ON))
    start_vms(daemon, demo_vmm, "api-exits", vms=1, vcpus=1, hz=500)
    wait_history(daemon, 4)
    _, doc = api(daemon, "/api/v1/exits?group=vm")
    d = doc["data"]
    assert d["bpf"] is True
    io = [r for r in d["rows"] if r["kind"] == "userspace" and r["reason"] == "io"]
    assert io and io[0]["count"] > 0 and io[0]["vm"] == "api-exits0", d["rows"]
    assert io[0]["roundtrips"] > 0 and 0 < io[0]["p50_s"] <= io[0]["p99_s"], io
    # the exposition's count of the same exits, on a page rendered after the
    # API's answer (pages are rendered once per tick): never below the API's
    harness.wait_until(
        lambda: daemon.scrape().total("kvm_vcpu_userspace_exits_total", vm="api-exits0",
                                      reason="io") >= io[0]["count"], 10.0, 0.1,
        "a page counting at least the API's %d io exits" % io[0]["count"])
    (s,) = d["sched"]
    assert s["vm"] == "api-exits0" and s["cpu_s"] > 0 and s["run_delay_s"] >= 0, s


def test_cli_once_matches_the_independent_reader(daemon, demo_vmm):
    vmm = start_vms(daemon, demo_vmm, "cli-once")
    wait_history(daemon, 2)
    before = raw_values(vmm.vms)
    wait_history(daemon, 2)
    r = kvmstat("--url", daemon.url, "--once", "--per-vm", "--json", "-f", "^exits$")
    after = raw_values(vmm.vms)
    assert r.returncode == 0, r
    rows = {row["vm"]: row["value"] for row in json.loads(r.stdout)["rows"]}
    for vm in vmm.vms:
        lo = sum(v for k, v in before.items() if k[0] == vm.name and k[2] == "exits")
        hi = sum(v for k, v in after.items() if k[0] == vm.name and k[2] == "exits")
        assert lo <= rows[vm.name] <= hi, (vm.name, lo, rows[vm.name], hi)
    r = kvmstat("--url", daemon.url, "--once", "--per-vm", "-f", "^exits$")
    assert r.returncode == 0 and "cli-once0" in r.stdout and "cli-once1" in r.stdout, r
    # --log: a header, then a line per interval with every VM's exits per second
    r = kvmstat("--url", daemon.url, "-l", "-c", "-n", "3", "-s", "0.2", "-f", "^exits$")
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines[0] == "timestamp,exits" and len(lines) == 4, r
    assert all(float(l.split(",")[1]) > 0 for l in lines[1:]), lines


class Tmux:
    """One tmux session running a command; keys in, the screen out."""

    def __init__(self, cmd, cols=120, rows=40):
        self.name = "kvmstat-test-%d" % os.getpid()
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(cols),
                        "-y", str(rows), " ".join(cmd)], check=True, timeout=10)

    def keys(self, *keys):
        subprocess.run(["tmux", "send-keys", "-t", self.name] + list(keys), check=True,
                       timeout=10)

    def type(self, text):
        """Literal text (send-keys -l: '^e' is not Ctrl-E)."""
        subprocess.run(["tmux", "send-keys", "-t", self.name, "-l", text], check=True,
                       timeout=10)

    def screen(self):
        p = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name],
                           capture_output=True, text=True, timeout=10)
        return p.stdout

    def wait(self, pred, what, timeout=40):  # an emulated machine (the lab) redraws slowly
        try:
            return harness.wait_until(lambda: pred(self.screen()), timeout, 0.1, what)
        except AssertionError as e:
            raise AssertionError("%s; the screen:\n%s" % (e, self.screen())) from None

    def alive(self):
        return subprocess.run(["tmux", "has-session", "-t", self.name],
                              capture_output=True).returncode == 0

    def close(self):
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def human_value(text):
    """kvmstat's 69.1k back to 69100."""
    scale = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}.get(text[-1:], 1)
    return float(text[:-1] if scale != 1 else text) * scale


def data_rows(screen):
    """The rows of top's table: after the header line, until a blank line."""
    lines = screen.splitlines()
    head = next((i for i, l in enumerate(lines) if "Rate/s" in l), None)
    if head is None:  # help screen, or not drawn yet
        return []
    out = []
    for l in lines[head + 1:]:
        if not l.strip() or l.startswith("q quit"):
            break
        out.append(l.split())
    return out


def long_run(rows):
    """rows when the top row's total is ten seconds of its rate or more."""
    try:
        total, rate = human_value(rows[0][2]), human_value(rows[0][3])
    except (IndexError, ValueError):
        return None
    return rows if rate > 0 and total >= 10 * rate else None


def test_cli_top_in_tmux_ranks_filters_and_drills_down(daemon_factory, demo_vmm):
    if not shutil.which("tmux"):
        pytest.fail("tmux is missing: scripts/install-deps.sh installs it "
                    "(the lab's image: tests/lab/packages)", pytrace=False)
    daemon = harness.require_bpf(daemon_factory(harness.BPF_ON))  # exit reasons to drill into
    start_vms(daemon, demo_vmm, "busy", vms=1, vcpus=2, hz=1000)
    start_vms(daemon, demo_vmm, "idle", vms=1, vcpus=2, hz=1)
    wait_history(daemon, 3)
    t = Tmux([KVMSTAT, "top", "--url", daemon.url, "-f", "'^exits$'", "-s", "0.5"])
    try:
        # the busiest VM is on top
        t.wait(lambda s: "Rate/s" in s and len(data_rows(s)) == 2, "two VM rows")
        t.wait(lambda s: data_rows(s)[0][0] == "busy0", "busy0 on top")
        assert "q quit" in t.screen()  # the help line
        # g: only the VMs the regex names
        t.keys("g")
        t.wait(lambda s: "VM regex" in s, "the prompt")
        t.keys("idle.*", "Enter")
        t.wait(lambda s: [r[0] for r in data_rows(s)] == ["idle0"], "only idle0")
        assert "VM~idle.*" in t.screen()
        # c clears every filter, the stats regex too (as kvm_stat's c does):
        # both VMs and all their stats
        t.keys("c")
        t.wait(lambda s: "[" not in s.splitlines()[0] and
               {r[0] for r in data_rows(s)} == {"busy0", "idle0"} and len(data_rows(s)) > 2,
               "every stat of both VMs")
        # f sets the stats regex again; Enter drills into the chosen row's VM
        t.keys("f")
        t.wait(lambda s: "stats regex" in s, "the stats prompt")
        t.type("^exits$")
        t.keys("Enter")
        t.wait(lambda s: [r[0] for r in data_rows(s)] == ["busy0", "idle0"],
               "busy0 on top again, exits only")
        t.keys("Enter")
        t.wait(lambda s: "VM busy0" in s and sorted(r[0] for r in data_rows(s)) == ["0", "1"],
               "busy0's two vCPUs")
        t.wait(lambda s: "Threads" in s, "the vCPU threads' run delay")
        t.wait(lambda s: re.search(r"^userspace +io ", s, re.M), "busy0's io exits")
        t.keys("b")
        t.wait(lambda s: "all VMs" in s, "back to every VM")
        t.keys("o")
        t.wait(lambda s: "sort: total" in s, "sorted by total")
        t.keys("q")
        harness.wait_until(lambda: not t.alive(), 5, 0.1, "kvmstat top to quit")
    finally:
        t.close()


def test_cli_top_keys_help_fields_pid_interval_reset(daemon, demo_vmm):
    """The keys the drill-down test does not press, on two VMMs' VMs: help,
    the stats regex, the VMM pid, the interval, reset."""
    if not shutil.which("tmux"):
        pytest.fail("tmux is missing: scripts/install-deps.sh installs it "
                    "(the lab's image: tests/lab/packages)", pytrace=False)
    start_vms(daemon, demo_vmm, "keys", vms=1, vcpus=2, hz=500)
    other = start_vms(daemon, demo_vmm, "other", vms=1, vcpus=2, hz=50)
    wait_history(daemon, 3)
    t = Tmux([KVMSTAT, "top", "--url", daemon.url, "-s", "0.3"])
    try:
        t.wait(lambda s: "Rate/s" in s and data_rows(s), "the table")
        t.wait(lambda s: data_rows(s)[0][:2] == ["keys0", "exits"], "keys0's exits on top")
        t.keys("h")
        t.wait(lambda s: "kvmstat top: the busiest VMs" in s, "the help")
        t.keys("x")  # any key returns
        t.wait(lambda s: "Rate/s" in s, "the table again")
        t.keys("f")
        t.wait(lambda s: "stats regex" in s, "the prompt")
        t.keys("halt_.*", "Enter")
        t.wait(lambda s: data_rows(s) and all(r[1].startswith("halt_") for r in data_rows(s)),
               "only halt_* stats")
        t.keys("p")
        t.wait(lambda s: "VMM pid" in s, "the prompt")
        t.keys(str(other.pid), "Enter")
        t.wait(lambda s: data_rows(s) and {r[0] for r in data_rows(s)} == {"other0"},
               "only other0")
        assert "pid=%d" % other.pid in t.screen()
        t.keys("s")
        t.wait(lambda s: "interval in seconds" in s, "the prompt")
        t.keys("2", "Enter")
        t.wait(lambda s: "every 2s" in s, "the new interval")
        t.keys("c")
        t.wait(lambda s: "[" not in s.splitlines()[0] and len({r[0] for r in data_rows(s)}) > 1,
               "filters cleared")
        # the top row's total is ten seconds of its rate or more, then r:
        # totals count from now, a refresh's worth, not the history's
        before = human_value(t.wait(lambda s: long_run(data_rows(s)), "ten seconds' total")[0][2])
        t.keys("r")
        t.wait(lambda s: data_rows(s) and human_value(data_rows(s)[0][2]) < before / 3,
               "reset totals")
        t.keys("q")
        harness.wait_until(lambda: not t.alive(), 5, 0.1, "kvmstat top to quit")
    finally:
        t.close()


@pytest.mark.deadline(CHROMIUM_DEADLINE_S + 60)
def test_live_page_shows_the_ranking_with_sparklines_updating(daemon, demo_vmm):
    start_vms(daemon, demo_vmm, "page", vms=2, vcpus=2, hz=300)
    wait_history(daemon, 5)
    # the DOM only: a screenshot makes Chromium render to a PNG too, which
    # took minutes more in the lab (make docs-screenshots takes the README's)
    dom, console = chromium(daemon.url + "/", budget_ms=8000)
    assert not console, console
    assert refreshes(dom) >= 3, dom[:2000]
    rows = re.findall(r"<tr>(.*?)</tr>", dom[dom.index("<tbody>"):])
    assert len(rows) >= 2 and any("page0" in r for r in rows), rows[:3]
    points = re.findall(r'<polyline points="([^"]+)"', dom)
    assert len(points) >= 2 and all(len(p.split()) >= 2 for p in points), points[:3]
    moved = re.search(r'data-sparklines-moved="(\d+)"', dom)
    assert moved and int(moved.group(1)) >= 3, "sparklines did not move: %s" % dom[:500]
