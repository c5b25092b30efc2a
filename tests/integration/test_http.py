"""The HTTP exporter: landing page, health, 404, 405, content negotiation
(text 0.0.4 by default, OpenMetrics 1.0 on request), gzip when accepted,
--listen overriding the config, and a silent client blocking no one."""

import gzip
import socket
import time

import harness


def test_landing_page_is_html_linking_metrics(daemon):
    r = daemon.get("/")
    assert r.status == 200
    assert r.header("Content-Type", "").startswith("text/html"), r.headers
    assert 'href="/metrics"' in r.text or "href='/metrics'" in r.text or 'href="metrics"' in r.text, r.text[:500]


def test_healthy_answers_200(daemon):
    r = daemon.get("/-/healthy")
    assert r.status == 200


def test_unknown_path_is_404(daemon):
    for path in ("/nope", "/metrics/extra", "/-/nope"):
        assert daemon.get(path).status == 404, path


def test_post_metrics_is_405_with_allow(daemon):
    r = harness.http(daemon.url, "/metrics", method="POST", body=b"x=1",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 405
    allow = r.header("Allow", "")
    assert "GET" in allow, "405 without an Allow header naming GET: %r" % r.headers


def test_default_format_is_text_0_0_4(daemon):
    r = daemon.get("/metrics")
    assert r.status == 200
    assert r.header("Content-Type") == harness.TEXT_CT
    assert "# EOF" not in r.text
    assert "kvmstatd_" in r.text


def test_openmetrics_when_accept_asks(daemon):
    for accept in (harness.PROMETHEUS_ACCEPT, "application/openmetrics-text",
                   "application/openmetrics-text; version=1.0.0"):
        r = daemon.get("/metrics", headers={"Accept": accept})
        assert r.status == 200
        assert r.header("Content-Type") == harness.OPENMETRICS_CT, (accept, r.headers)
        assert r.text.endswith("# EOF\n"), repr(r.text[-40:])
        assert r.text.count("# EOF") == 1


def test_text_when_accept_asks_for_text(daemon):
    for accept in ("text/plain", "text/plain;version=0.0.4", "*/*"):
        r = daemon.get("/metrics", headers={"Accept": accept})
        assert r.status == 200
        assert r.header("Content-Type") == harness.TEXT_CT, (accept, r.headers)


def test_format_parameter_overrides_accept(daemon):
    for q, ct in (("openmetrics", harness.OPENMETRICS_CT), ("prometheus", harness.TEXT_CT),
                  ("text", harness.TEXT_CT)):
        r = daemon.get("/metrics?format=" + q, headers={"Accept": harness.PROMETHEUS_ACCEPT
                                                        if q != "openmetrics" else "text/plain"})
        assert r.status == 200
        assert r.header("Content-Type") == ct, (q, r.headers)


def test_unknown_format_parameter_is_a_bad_request(daemon):
    r = daemon.get("/metrics?format=json")
    assert r.status == 400
    assert "format must be" in r.text


def test_gzip_when_accepted(daemon):
    plain = daemon.get("/metrics")
    assert plain.header("Content-Encoding") is None
    r = daemon.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert r.status == 200
    assert r.header("Content-Encoding") == "gzip", r.headers
    body = gzip.decompress(r.body).decode()
    assert r.header("Content-Type") == harness.TEXT_CT
    harness.parse_exposition(body)
    assert "kvmstatd_" in body


def test_listen_option_overrides_config(daemon_factory):
    d = daemon_factory(listen_port=harness.free_port())
    assert d.port != d.config_port
    assert d.get("/-/healthy").status == 200
    try:
        harness.http("http://127.0.0.1:%d" % d.config_port, "/-/healthy", timeout=1.0)
        served_on_config_port = True
    except OSError:
        served_on_config_port = False
    assert not served_on_config_port, "also listening on the config's port"


def test_idle_connection_does_not_block_scrapes(daemon):
    idle = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
    try:
        idle.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
        t = time.monotonic()
        r = daemon.get("/metrics", timeout=3.0)
        assert r.status == 200
        assert time.monotonic() - t < 2.0
    finally:
        idle.close()
