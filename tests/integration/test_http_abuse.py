"""HTTP under abuse, against the real daemon from outside, with real
sockets from many loopback addresses (127.0.0.x; all of 127/8 is local):

- warnings of HTTP are rate-limited, and the log says how many were left out;
- a request with too many query arguments gets 414 at once;
- a whole request has a deadline: a client that trickles a byte at a time,
  never silent long enough for the idle timeout, is cut off;
- a few addresses holding every connection do not starve another address;
- a client that keeps failing its password is refused (429) without a
  bcrypt; bcrypt runs on a thread of its own, so wrong passwords do not
  slow a scrape whose success is remembered; remembered successes expire
  and a reload forgets them.

Every load loop here is bounded; waits are for events (a log line, a
closed socket, an fd count, a thread's CPU time), never sleeps.
"""

import base64
import http.client as httpclient
import os
import signal
import socket
import threading
import time
import warnings

with warnings.catch_warnings():  # deprecated, still in 3.11; libxcrypt underneath
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

import pytest

import harness

PASSWORD = "s3cret"


def bcrypt(password, cost):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2 ** cost))


def basic(user, password):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def connect_from(port, src, timeout=5.0):
    """A TCP connection to the daemon from loopback address src."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def get_from(port, src, path="/metrics", headers=None, timeout=5.0):
    """One GET on a new connection from src: (status, headers dict, body)."""
    conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(src, 0))
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def closed_by_server(s, timeout):
    """True when the server closes s (EOF or reset) within timeout seconds."""
    s.settimeout(timeout)
    try:
        while s.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except (socket.timeout, BlockingIOError):
        return False


def socket_count(pid):
    return sum(1 for l in harness.fd_links(pid).values() if l.startswith("socket:"))


def slow_lane_cpu(worker):
    """CPU ticks of the worker's kvmstatd-slow thread (the bcrypt thread)."""
    for tid in os.listdir("/proc/%d/task" % worker):
        try:
            with open("/proc/%d/task/%s/comm" % (worker, tid)) as f:
                if f.read().strip() != "kvmstatd-slow":
                    continue
            with open("/proc/%d/task/%s/stat" % (worker, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime + stime
        except OSError:
            continue
    raise AssertionError("no kvmstatd-slow thread in worker %d" % worker)


class AuthDaemon(harness.Daemon):
    """A Daemon with basic auth: its readiness probe sends alice's password."""

    def _healthy(self):
        try:
            return get_from(self.port, "127.0.0.1", "/-/healthy",
                            {"Authorization": basic("alice", PASSWORD)}, 1.0)[0] == 200
        except OSError:
            return False


@pytest.fixture
def auth_daemon(kvmstatd_bin, root):
    made = []

    def make(cost=4, overrides=None):
        o = {("basic_auth_users", "alice"): bcrypt(PASSWORD, cost)}
        o.update(overrides or {})
        d = AuthDaemon(o)
        made.append(d)
        return d.start(timeout=30)

    yield make
    harness.stop_daemons(made)


def timed_get(d, src, user, password, timeout=20.0):
    t = time.monotonic()
    status = get_from(d.port, src, headers={"Authorization": basic(user, password)},
                      timeout=timeout)[0]
    return status, time.monotonic() - t


# ------------------------------------------------------------------ warnings

def test_2000_malformed_requests_log_a_few_warnings_and_say_how_many_were_left_out(daemon):
    """Each request has a header line without a colon: libmicrohttpd answers
    400 and warns. Before, that was 2,000 lines; now at most 20 at once and
    one a second, then one line with the count of those left out."""
    n = 2000
    t0 = time.monotonic()
    for _ in range(n):
        s = connect_from(daemon.port, "127.0.0.2")
        try:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n")
            assert s.recv(12).startswith(b"HTTP/1.1 400"), "not a 400"
        finally:
            s.close()
    took = time.monotonic() - t0
    def tally():
        left = daemon.log_lines(r"http: \d+ warnings left out")
        return (len(daemon.log_lines(r"worker\]: warning: http: Error processing request")),
                sum(int(l.split("http: ")[1].split()[0]) for l in left))

    # the last count comes once the warnings stop (a quiet spell)
    harness.wait_until(lambda: sum(tally()) >= n, 10.0,
                       what="every warning written or counted as left out")
    written, left_out = tally()
    # the budget: 20 at once, then one a second (an emulated machine takes
    # longer over the 2,000 requests: the bound follows the time they took)
    assert written <= 20 + int(took) + 2, "%d warnings written in %.1f s" % (written, took)
    assert written + left_out >= n, (written, left_out)


# ------------------------------------------------------------- request bounds

def test_a_request_of_500_query_arguments_is_answered_414_at_once(daemon):
    q = "&".join("a%d=%d" % (i, i) for i in range(500))
    s = connect_from(daemon.port, "127.0.0.1", timeout=3.0)
    try:
        s.sendall(("GET /metrics?%s HTTP/1.1\r\nHost: x\r\n\r\n" % q).encode())
        assert s.recv(64).startswith(b"HTTP/1.1 414 "), "no 414"
        assert closed_by_server(s, 3.0)
    finally:
        s.close()
    # a few arguments are fine, and the daemon serves on, counting the refusal
    assert daemon.get("/metrics?format=text&a=1&b=2").status == 200
    harness.wait_until(lambda: daemon.scrape().value("kvmstatd_http_refused_total",
                                                     reason="query_args") == 1, 5.0,
                       what="kvmstatd_http_refused_total{reason=\"query_args\"} 1")


def test_query_arguments_beyond_max_query_args_are_414_and_up_to_it_served(daemon_factory):
    d = daemon_factory(overrides={("http", "max_query_args"): "4"})
    assert d.get("/metrics?format=text&a=1&b=2&c=3").status == 200
    assert d.get("/metrics?format=text&a=1&b=2&c=3&d=4").status == 414


def test_500_request_headers_are_answered_431_at_once(daemon):
    many = "".join("X-H%d: v\r\n" % i for i in range(500))
    s = connect_from(daemon.port, "127.0.0.1", timeout=3.0)
    try:
        s.sendall(("GET /metrics HTTP/1.1\r\nHost: x\r\n%s\r\n" % many).encode())
        assert s.recv(64).startswith(b"HTTP/1.1 431 "), "no 431"
    finally:
        s.close()


# ------------------------------------------------------------ the deadline

def test_a_client_trickling_a_byte_at_a_time_is_cut_at_the_request_deadline(daemon_factory):
    """Never silent for the idle timeout (10 s), so before only
    max_request_bytes bounded it; now the whole request has 2 s."""
    d = daemon_factory(overrides={("http", "request_timeout_s"): "2"})
    s = connect_from(d.port, "127.0.0.2")
    t0 = time.monotonic()
    request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40
    cut = False
    try:
        for i in range(len(request)):  # a byte every 0.25 s: at most 10 s
            try:
                s.sendall(request[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            if closed_by_server(s, 0.25):
                cut = True
                break
    finally:
        s.close()
    took = time.monotonic() - t0
    assert cut, "still connected after %.1f s of trickling" % took
    assert 1.5 < took < 4.0, took
    assert d.get("/-/healthy").status == 200


def test_a_kept_alive_connection_gets_a_new_deadline_per_request(daemon_factory):
    """The deadline is per request: three quick requests spread over more
    than the deadline on one connection are all answered."""
    d = daemon_factory(overrides={("http", "request_timeout_s"): "1"})
    conn = httpclient.HTTPConnection("127.0.0.1", d.port, timeout=5)
    try:
        t0 = time.monotonic()
        for i in range(3):
            conn.request("GET", "/-/healthy")
            r = conn.getresponse()
            assert r.status == 200 and r.read() == b"OK\n"
            # half the deadline between requests: 1.5 s in all
            harness.wait_until(lambda: time.monotonic() - t0 >= 0.5 * (i + 1), 2.0)
    finally:
        conn.close()


# ------------------------------------------------- few addresses, every connection

def test_eight_addresses_holding_every_connection_do_not_starve_a_ninth(daemon):
    """8 addresses x 8 half-sent requests fill max_connections (64) within
    max_connections_per_ip (8). Before, a ninth address waited in the
    backlog for as long as they held on; now its connection takes the place
    of the oldest held one and is answered at once."""
    worker = daemon.worker_pid()
    base = socket_count(worker)
    held = []
    try:
        for a in range(8):
            for _ in range(8):
                s = connect_from(daemon.port, "127.0.1.%d" % (a + 1))
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                held.append(s)
        harness.wait_until(lambda: socket_count(worker) >= base + 64, 5.0,
                           what="the worker holding all 64 connections")
        t = time.monotonic()
        status = get_from(daemon.port, "127.0.2.1", "/-/healthy", timeout=3.0)[0]
        assert status == 200
        assert time.monotonic() - t < 1.0
        # the one cut: of the first address (all hold 8), the oldest
        cut = [i for i, s in enumerate(held) if closed_by_server(s, 0.01)]
        assert len(cut) == 1 and cut[0] < 8, cut
    finally:
        for s in held:
            s.close()


def test_a_full_pool_refreshed_by_its_holders_still_serves_a_newcomer(daemon_factory):
    """The holders reconnect as soon as they are cut (bounded: 200 times);
    scrapes from another address are answered throughout."""
    d = daemon_factory(overrides={("http", "max_connections"): "16",
                                  ("http", "max_connections_per_ip"): "4"})
    stop = threading.Event()
    reconnects = [0]

    def hold(addr):
        socks = []
        try:
            while not stop.is_set() and reconnects[0] < 200:
                socks = [s for s in socks if not closed_by_server(s, 0)]
                while len(socks) < 4 and reconnects[0] < 200:
                    try:
                        s = connect_from(d.port, addr, timeout=2)
                        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                        socks.append(s)
                    except OSError:
                        pass
                    reconnects[0] += 1
                stop.wait(0.01)
        finally:
            for s in socks:
                s.close()

    threads = [threading.Thread(target=hold, args=("127.0.3.%d" % (a + 1),)) for a in range(4)]
    for t in threads:
        t.start()
    try:
        harness.wait_until(lambda: reconnects[0] >= 16, 5.0, what="the pool filled")
        for _ in range(10):
            assert get_from(d.port, "127.0.4.1", "/-/healthy", timeout=3.0)[0] == 200
    finally:
        stop.set()
        for t in threads:
            t.join(10)


class V6Daemon(harness.Daemon):
    """A Daemon listening on [::1] only."""

    def __init__(self, overrides):
        super().__init__(overrides)
        o = dict(overrides)
        o[("http", "listen")] = "[::1]:%d" % self.port
        harness.write_config(self.config, self.socket, self.config_port, self.user, o)

    def _healthy(self):
        try:
            s = socket.create_connection(("::1", self.port), timeout=1.0)
        except OSError:
            return False
        try:
            s.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(12).startswith(b"HTTP/1.1 200")
        except OSError:
            return False
        finally:
            s.close()


def test_an_ipv6_client_is_held_to_its_share(kvmstatd_bin, root):
    """The guard on an IPv6 listener: ::1 (its /64) holds 2 connections, a
    third is closed without an answer. (Other /64s need addresses this host
    does not have: the /64 rule itself is tested in test_httpguard.c.)"""
    d = V6Daemon({("http", "max_connections_per_ip"): "2", ("http", "threads"): "1"})
    d.start()
    held = []
    try:
        for _ in range(2):
            s = socket.create_connection(("::1", d.port), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            held.append(s)
        third = socket.create_connection(("::1", d.port), timeout=5)
        try:
            third.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
            assert closed_by_server(third, 5.0)
        finally:
            third.close()
        assert not any(closed_by_server(s, 0.01) for s in held)
        d.wait_log(r"http: ::/64 holds its share of connections")
    finally:
        for s in held:
            s.close()
        d.stop()


# ---------------------------------------------------------------- passwords

def test_a_client_that_spends_its_failed_checks_gets_429_without_a_bcrypt(auth_daemon):
    """auth_fail_limit 5 per 60 s. Cost 12 (a bcrypt takes 0.2-0.5 s): the
    sixth wrong password is refused at once, 429 with Retry-After; alice's
    remembered password still works from that address, and another address
    still has its own budget."""
    d = auth_daemon(cost=12)
    for _ in range(5):
        status, took = timed_get(d, "127.0.5.1", "alice", "wrong")
        assert status == 401
    t = time.monotonic()
    status, headers, _ = get_from(d.port, "127.0.5.1",
                                  headers={"Authorization": basic("alice", "wrong")})
    fast = time.monotonic() - t
    assert status == 429, status
    assert int(headers["retry-after"]) >= 1
    assert fast < took / 2, (fast, took)
    auth = {"Authorization": basic("alice", PASSWORD)}
    harness.wait_until(lambda: d.scrape(headers=auth).value(
        "kvmstatd_http_refused_total", reason="failed_checks") >= 1, 5.0,
        what="kvmstatd_http_refused_total{reason=\"failed_checks\"}")
    assert d.scrape(headers=auth).value("kvmstatd_http_password_checks_total",
                                        result="failed") == 5
    # an unknown user is charged the same way
    assert get_from(d.port, "127.0.5.1", headers={"Authorization": basic("mallory", "x")})[0] \
        == 429
    # remembered (the readiness probe checked it): no bcrypt, no budget needed
    assert timed_get(d, "127.0.5.1", "alice", PASSWORD)[0] == 200
    assert timed_get(d, "127.0.5.2", "alice", "wrong")[0] == 401
    d.wait_log(r"127\.0\.5\.1 failed too many password checks")


@pytest.mark.parametrize("threads", [2, 1])
def test_wrong_passwords_on_many_connections_do_not_slow_a_remembered_scrape(auth_daemon,
                                                                               threads):
    """The issue's case with the budget off: 16 connections from 4
    addresses keep sending wrong passwords at cost 12. bcrypt runs on the
    slow lane, so the HTTP threads answer alice's remembered password at
    once (before: 0.5-2 s with both threads inside bcrypt)."""
    d = auth_daemon(cost=12, overrides={("http", "auth_fail_limit"): "0",
                                        ("http", "threads"): str(threads)})
    # one bcrypt at cost 12 on this machine (an emulated one is slower)
    h = bcrypt("x", 12)
    t = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt.crypt("x", h)
    one_bcrypt = time.monotonic() - t
    idle = sorted(timed_get(d, "127.0.7.1", "alice", PASSWORD)[1] for _ in range(5))[2]
    worker = d.worker_pid()
    cpu0 = slow_lane_cpu(worker)
    stop = threading.Event()
    attempts = [0]

    def attack(addr):
        while not stop.is_set() and attempts[0] < 400:
            attempts[0] += 1
            try:
                get_from(d.port, addr, headers={"Authorization": basic("alice", "wrong")},
                         timeout=10)
            except OSError:
                pass

    attackers = [threading.Thread(target=attack, args=("127.0.6.%d" % (i % 4 + 1),))
                 for i in range(16)]
    for t in attackers:
        t.start()
    try:
        # the slow lane is busy with their bcrypts
        harness.wait_until(lambda: slow_lane_cpu(worker) > cpu0 + 20, 20.0,
                           what="the slow lane running bcrypt")
        took = sorted(timed_get(d, "127.0.7.1", "alice", PASSWORD)[1] for _ in range(10))
    finally:
        stop.set()
        for t in attackers:
            t.join(20)
    # the median: as fast as without the attack, give or take the machine's
    # own noise. Before the slow lane it waited behind whole bcrypts (0.5-2 s
    # where one takes 0.25 s, i.e. two bcrypts or more); half of one bcrypt
    # on this machine is the bound where the CPU is emulated or shared (the
    # lab: a bcrypt takes 0.6 s there, and the CPU the bcrypt thread shares
    # with the HTTP thread made a remembered scrape take 0.14-0.20 s).
    assert took[5] < max(0.1, 4 * idle, one_bcrypt / 2), (took, idle, one_bcrypt)
    # The slowest: less than two (before: every scrape waited for one or
    # more; one bcrypt was the bound until a loaded lab gave 0.66 s against
    # a bcrypt of 0.61 s, the HTTP thread sharing the CPU it ran on)
    assert took[-1] < max(0.4, 2 * one_bcrypt), (took, one_bcrypt)


def test_a_scraper_with_the_right_password_is_checked_before_guessers(auth_daemon):
    """40 addresses keep guessing bob's password (cost 4; a budget of 1000,
    so they are checked and their failures recorded) and keep the 16 places
    of the check queue full: others get 503. bob, whose password was never
    checked, from an address that never failed, takes the place of a
    guesser's check and is answered 200 at once, three times in a row."""
    o = {("basic_auth_users", "bob"): bcrypt("hunter2", 4),
         ("http", "auth_fail_limit"): "1000"}
    d = auth_daemon(cost=4, overrides=o)
    auth = {"Authorization": basic("alice", PASSWORD)}  # remembered: no check
    stop = threading.Event()
    attempts = [0]

    def guess(addr):
        while not stop.is_set() and attempts[0] < 4000:
            attempts[0] += 1
            try:
                get_from(d.port, addr, headers={"Authorization": basic("bob", "guess")},
                         timeout=20)
            except OSError:
                pass

    addrs = ["127.0.12.%d" % (i + 1) for i in range(40)]
    for a in addrs:  # each guesser has failed once: its next checks are not clean
        assert get_from(d.port, a, headers={"Authorization": basic("bob", "guess")},
                        timeout=20)[0] == 401
    guessers = [threading.Thread(target=guess, args=(a,)) for a in addrs]
    for t in guessers:
        t.start()
    try:
        def busy():
            return d.scrape(headers=auth).value("kvmstatd_http_refused_total", reason="busy")
        harness.wait_until(lambda: busy() >= 20, 30.0, what="the check queue full (503s)")
        statuses = []
        for i in range(3):
            status, took = timed_get(d, "127.0.13.%d" % (i + 1), "bob", "hunter2", timeout=20)
            statuses.append((status, round(took, 2)))
            assert status == 200, statuses
    finally:
        stop.set()
        for t in guessers:
            t.join(30)


def remembered_and_bcrypt(d, src):
    """The median time of a remembered check, and of one bcrypt (a wrong
    password for alice from another address), measured now."""
    remembered = sorted(timed_get(d, src, "alice", PASSWORD)[1] for _ in range(3))[1]
    status, bcrypt_s = timed_get(d, "127.0.0.99", "alice", "wrong")
    assert status == 401
    return remembered, bcrypt_s


def test_a_remembered_success_expires_after_auth_cache_s(auth_daemon):
    d = auth_daemon(cost=12, overrides={("http", "auth_cache_s"): "2"})
    assert timed_get(d, "127.0.8.1", "alice", PASSWORD)[0] == 200  # remembered from now
    t_ok = time.monotonic()
    remembered, bcrypt_s = remembered_and_bcrypt(d, "127.0.8.1")
    assert remembered < bcrypt_s / 4, (remembered, bcrypt_s)
    harness.wait_until(lambda: time.monotonic() - t_ok > 2.2, 5.0)
    status, again = timed_get(d, "127.0.8.1", "alice", PASSWORD)
    assert status == 200
    assert again > bcrypt_s / 2, (again, bcrypt_s)


def test_a_reload_forgets_remembered_successes(auth_daemon):
    """SIGHUP starts a new worker, and with it an empty cache (and a new
    HMAC key): the first check after it pays a bcrypt again."""
    d = auth_daemon(cost=12)
    remembered, bcrypt_s = remembered_and_bcrypt(d, "127.0.9.1")
    assert remembered < bcrypt_s / 4, (remembered, bcrypt_s)
    old = d.worker_pid()
    os.chmod(d.dir, 0o755)  # the helper reads it again as the service user
    os.chmod(d.config, 0o644)
    d.signal(signal.SIGHUP)
    d.wait_new_worker(old, timeout=15)
    harness.wait_until(lambda: not harness.proc_alive(old), 10.0, what="the old worker gone")
    status, after = timed_get(d, "127.0.9.1", "alice", PASSWORD)
    assert status == 200
    assert after > bcrypt_s / 2, (after, bcrypt_s)
