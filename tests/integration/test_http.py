"""The HTTP exporter: landing page, health, 404, 405, content negotiation
(text 0.0.4 by default, OpenMetrics 1.0 on request), gzip when accepted,
--listen overriding the config, a silent client blocking no one, and the
bounds on clients: connections per address, header count, request size,
idle timeout."""

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


# ----------------------------------------------------------- bounds on clients

def _raw(port, data, timeout=5.0):
    """Send data on a new connection; return everything the server sent
    until it closed (b"" when it closed at once or reset)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    except ConnectionResetError:
        return out
    finally:
        s.close()


def _status(reply):
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.") else None


def _turned_away(s):
    """True once the server closed s without sending a byte."""
    s.setblocking(False)
    try:
        return s.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        s.setblocking(True)


def test_connections_per_client_address_are_bounded(daemon_factory):
    """Two half-sent requests from 127.0.0.1 (a slowloris) use up its
    share; the next connection is closed without an answer, and once the
    two are gone the address is served again. One HTTP thread, so the
    connections are accepted in the order they arrived."""
    d = daemon_factory(overrides={("http", "max_connections_per_ip"): "2",
                                  ("http", "threads"): "1"})
    held = [socket.create_connection(("127.0.0.1", d.port), timeout=5) for _ in range(2)]
    try:
        for s in held:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.5)
        reply = _raw(d.port, b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert reply == b"", reply[:100]
        assert not any(_turned_away(s) for s in held)
    finally:
        for s in held:
            s.close()
    def served():
        try:
            return d.get("/-/healthy", timeout=1.0).status == 200
        except OSError:  # the server may not have seen the two close yet
            return False
    harness.wait_until(served, 5.0, what="the address served again")


def test_per_address_bound_holds_across_http_threads(daemon_factory):
    """With a pool of HTTP threads two connections may be counted in
    either order, so which one is turned away is not fixed; but of three
    half-sent requests from one address exactly one is, and two stay."""
    d = daemon_factory(overrides={("http", "max_connections_per_ip"): "2",
                                  ("http", "threads"): "4"})
    conns = [socket.create_connection(("127.0.0.1", d.port), timeout=5) for _ in range(3)]
    try:
        for s in conns:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        def one_turned_away():
            return sum(_turned_away(s) for s in conns) == 1
        harness.wait_until(one_turned_away, 5.0, what="one of three connections turned away")
        time.sleep(0.3)
        assert sum(_turned_away(s) for s in conns) == 1
    finally:
        for s in conns:
            s.close()


def test_too_many_request_headers_is_431(daemon_factory):
    d = daemon_factory(overrides={("http", "max_headers"): "8"})
    few = {"X-H%d" % i: "v" for i in range(6)}  # + Host, Accept-Encoding
    assert d.get("/metrics", headers=few).status == 200
    many = {"X-H%d" % i: "v" for i in range(20)}
    r = d.get("/metrics", headers=many)
    assert r.status == 431, r.status
    assert d.get("/-/healthy").status == 200


def test_request_larger_than_max_request_bytes_is_refused(daemon_factory):
    d = daemon_factory(overrides={("http", "max_request_bytes"): "8192"})
    assert d.get("/metrics", headers={"X-Big": "a" * 2000}).status == 200
    reply = _raw(d.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 16384 +
                 b"\r\n\r\n")
    assert _status(reply) == 431, reply[:200]
    reply = _raw(d.port, b"GET /metrics?" + b"a" * 16384 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _status(reply) in (414, 431), reply[:200]
    assert d.get("/-/healthy").status == 200


def test_a_silent_half_request_is_dropped_after_the_idle_timeout(daemon_factory):
    d = daemon_factory(overrides={("http", "connection_timeout_s"): "1"})
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        t = time.monotonic()
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            data = b""
        assert data == b"" and time.monotonic() - t < 4.0
    finally:
        s.close()
