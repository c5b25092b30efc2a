"""A hostile local user and a hostile configuration path, against the real
daemon (issue 14): none of these needs /dev/kvm.

- fds sent with a datagram of no bytes (taken for a hang-up once, and
  leaked) are closed, counted and logged, from any uid, with several
  control messages, with credentials, with every kind of fd;
- a configuration path that is a directory, a device or a FIFO is refused
  by --check-config, at start and at a reload (which keeps what runs);
- a repeated section or scalar key, and a user that does not exist, fail
  --check-config with the line and the reason;
- a file name chosen to forge a log line shows up escaped, on its own line;
- a uid outside allow_users is turned away at accept, and no set of uids
  can take every registration connection from root.
"""

import array
import errno
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile

import pytest

import harness
import statsfd
from statsfd import MSG_REGISTER_VM, MSG_UNREGISTER_VM, body_register_vm, body_unregister_vm

NO_DISCOVERY = {("discovery", "enabled"): "no"}


def fd_count(pid):
    return len(harness.fd_links(pid))


def rejected(d, reason):
    return d.rejected(reason)


def wait_rejected(d, reason, at_least):
    return harness.wait_until(lambda: rejected(d, reason) >= at_least, 5.0, 0.1,
                              "kvmstatd_registrations_rejected_total{reason=%s} >= %d"
                              % (reason, at_least))


def wait_fds_back(pid, baseline, what):
    def back():
        return fd_count(pid) <= baseline
    try:
        harness.wait_until(back, 5.0, 0.05, "%s's fd count to return to %d" % (what, baseline))
    except AssertionError as e:
        raise AssertionError("%s; now %d: %r" % (e, fd_count(pid),
                                                 sorted(harness.fd_links(pid).values())))


def daemon_for_others(daemon_factory, overrides=None):
    """A daemon whose registration socket every uid can reach."""
    ov = dict(NO_DISCOVERY)
    ov[("registration", "socket_mode")] = "0666"
    ov.update(overrides or {})
    d = daemon_factory(ov, start=False)
    os.chmod(d.dir, 0o711)
    return d.start()


class FdZoo:
    """One fd of every kind a hostile VMM might attach: pipe ends, an
    eventfd, a memfd, a socket, /dev/null, a directory, an unlinked file,
    a /proc file, a pidfd; take(n) hands them out in turn."""

    def __init__(self):
        r, w = os.pipe()
        a, b = socket.socketpair()
        self._sockets = (a, b)
        tmp = tempfile.TemporaryFile()
        self._tmp = tmp
        self.kinds = [r, w, os.eventfd(0), os.memfd_create("kvmstatd-it"), a.fileno(),
                      os.open("/dev/null", os.O_RDONLY), os.open("/", os.O_RDONLY | os.O_DIRECTORY),
                      tmp.fileno(), os.open("/proc/self/stat", os.O_RDONLY),
                      statsfd.pidfd_open(os.getpid())]
        self._own = [fd for fd in self.kinds if fd not in (a.fileno(), tmp.fileno())]

    def take(self, n):
        return [self.kinds[i % len(self.kinds)] for i in range(n)]

    def close(self):
        for fd in self._own:
            os.close(fd)
        for s in self._sockets:
            s.close()
        self._tmp.close()


@pytest.fixture
def zoo():
    z = FdZoo()
    yield z
    z.close()


def send_raw(path, data, ancillary, read_reply=True):
    """One datagram with any ancillary data; the reply, or None when the
    helper closed the connection without one."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        s.settimeout(5)
        s.connect(path)
        s.sendmsg([data], ancillary)
        if not read_reply:
            return None
        try:
            r = s.recv(4096)
        except ConnectionResetError:
            return None
        return statsfd.parse_reply(r) if r else None
    finally:
        s.close()


def rights(fds):
    return (socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())


# ------------------------------------------------------- item 1: fd leak

def test_empty_datagrams_carrying_fds_leave_no_fd_behind(daemon_factory, zoo):
    """50 datagrams of no bytes with 64 fds each took the helper from 28 to
    3,238 fds once; now each is refused as a message shorter than a header,
    answered, counted, and every fd closed."""
    d = daemon_factory(NO_DISCOVERY)
    helper = d.proc.pid
    base = fd_count(helper)
    before = rejected(d, "bad_message")
    for _ in range(50):
        reply = send_raw(d.socket, b"", [rights(zoo.take(64))])
        assert reply is not None, "no answer to a datagram of no bytes with fds"
        assert reply[0] == -errno.EBADMSG, reply
    wait_rejected(d, "bad_message", before + 50)
    wait_fds_back(helper, base, "the helper")
    d.wait_log(r"refused \(bad_message\): message of 0 bytes is shorter than a header")


def test_fds_in_every_shape_of_control_data_are_closed(daemon_factory, zoo):
    """Several SCM_RIGHTS messages in one datagram, credentials next to
    them, the kernel's maximum of 253 fds (more than a request may carry),
    with no payload, a short one and one too long: none stays open."""
    d = daemon_factory(NO_DISCOVERY)
    helper, worker = d.proc.pid, d.worker_pid()
    base, worker_base = fd_count(helper), fd_count(worker)
    creds = (socket.SOL_SOCKET, socket.SCM_CREDENTIALS,
             struct.pack("=iII", os.getpid(), os.getuid(), os.getgid()))
    shapes = [
        (b"", [rights(zoo.take(3)), rights(zoo.take(5))]),
        (b"", [creds, rights(zoo.take(7))]),
        (b"\0" * 10, [rights(zoo.take(253))]),
        (b"x" * 4096, [rights(zoo.take(64))]),
        (statsfd.message(MSG_REGISTER_VM, body_register_vm(1)), [rights(zoo.take(64)),
                                                                 rights(zoo.take(2))]),
        (statsfd.message(MSG_UNREGISTER_VM, body_unregister_vm(1)), [rights(zoo.take(1))]),
    ]
    for data, anc in shapes:
        send_raw(d.socket, data, anc)
        # a peer that leaves at once, without reading its answer
        send_raw(d.socket, data, anc, read_reply=False)
    wait_fds_back(helper, base, "the helper")
    wait_fds_back(worker, worker_base, "the worker")
    assert d.proc.poll() is None


def test_fds_from_a_uid_outside_allow_users_are_closed(daemon_factory):
    """The uid is turned away at accept; what it queued goes with its
    connection."""
    d = daemon_for_others(daemon_factory, {("registration", "allow_users"): "root"})
    helper = d.proc.pid
    base = fd_count(helper)
    before = rejected(d, "not_allowed")
    out = run_as(harness.worker_user().pw_uid, _SEND_EMPTY_WITH_FDS, d.socket, "20")
    assert out.returncode == 0, out.stderr
    wait_rejected(d, "not_allowed", before + 1)
    wait_fds_back(helper, base, "the helper")


_SEND_EMPTY_WITH_FDS = r"""
import array, os, socket, sys
path, n = sys.argv[1], int(sys.argv[2])
fds = [os.eventfd(0) for _ in range(64)]
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(path)
    try:
        s.sendmsg([b""], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                           array.array("i", fds).tobytes())])
    except (BrokenPipeError, ConnectionResetError):
        pass
    s.close()
"""


def run_as(uid, code, *args, timeout=30):
    return subprocess.run([sys.executable, "-c", code, *args], user=uid, group=uid,
                          extra_groups=[], capture_output=True, text=True, timeout=timeout,
                          cwd="/")


# -------------------------------------------- items 2 and 3: configuration

def check_config(kvmstatd_bin, path, timeout=10):
    return subprocess.run([kvmstatd_bin, "--check-config", "--config", str(path)],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("kind", ["directory", "dev-zero", "dev-null", "fifo"])
def test_check_config_refuses_a_path_that_is_not_a_regular_file(kvmstatd_bin, tmp_path, kind):
    path, what = {"directory": (tmp_path, "a directory"),
                  "dev-zero": ("/dev/zero", "a character device"),
                  "dev-null": ("/dev/null", "a character device"),
                  "fifo": (None, "a FIFO")}[kind]
    if kind == "fifo":
        path = tmp_path / "kvmstatd.ini"
        os.mkfifo(path)
    p = check_config(kvmstatd_bin, path)
    assert p.returncode == 2, "rc %d: %s%s" % (p.returncode, p.stdout, p.stderr)
    assert "%s: %s: the configuration must be a regular file" % (path, what) in p.stderr, p.stderr


def test_start_refuses_a_config_that_is_a_directory(kvmstatd_bin, root, tmp_path):
    p = subprocess.run([kvmstatd_bin, "--config", str(tmp_path)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 2, p.stderr
    assert "a directory: the configuration must be a regular file" in p.stderr


def test_reload_of_a_config_replaced_by_a_directory_keeps_the_running_one(daemon_factory):
    d = daemon_factory(NO_DISCOVERY)
    os.chmod(d.dir, 0o755)  # the helper reads it again as the service user
    worker = d.worker_pid()
    os.rename(d.config, d.config + ".away")
    os.mkdir(d.config)
    try:
        d.signal(signal.SIGHUP)
        d.wait_log(r"reload: .*kvmstatd\.ini: a directory: the configuration must be a "
                   r"regular file of at most 1 MiB; still running with the configuration "
                   r"read before")
    finally:
        os.rmdir(d.config)
        os.rename(d.config + ".away", d.config)
    # nothing was reloaded: the worker of the old configuration still serves
    assert not d.log_lines(r"configuration reloaded")
    assert d.worker_pid() == worker
    assert d.get("/-/healthy").status == 200


REPEATS = [
    ("section", "[poll]\ninterval_ms = 200\n[http]\n[poll]\n",
     ":4: [poll]: section repeated (first at line 1)"),
    ("scalar-key", "[poll]\ninterval_ms = 200\nring_slots = 4\ninterval_ms = 300\n",
     ":4: [poll] interval_ms: set twice (first at line 2)"),
    ("same-value", "[daemon]\nuser = root\nuser = root\n", ":3: [daemon] user: set twice"),
]


@pytest.mark.parametrize("case,text,want", REPEATS, ids=[r[0] for r in REPEATS])
def test_check_config_refuses_repeats_naming_the_line(kvmstatd_bin, tmp_path, case, text, want):
    cfg = tmp_path / "kvmstatd.ini"
    cfg.write_text(text)
    p = check_config(kvmstatd_bin, cfg)
    assert p.returncode == 2, "rc %d: %s%s" % (p.returncode, p.stdout, p.stderr)
    assert str(cfg) + want in p.stderr, p.stderr


def test_check_config_lets_list_keys_repeat(kvmstatd_bin, tmp_path):
    cfg = tmp_path / "kvmstatd.ini"
    cfg.write_text("[daemon]\nuser = %s\n[registration]\nallow_users = root\n"
                   % harness.worker_user().pw_name +
                   "allow_users = 0\n[metrics]\ninclude = kvm_vcpu_exits.*\n"
                   "include = kvm_vm_pages.*\n")
    p = check_config(kvmstatd_bin, cfg)
    assert p.returncode == 0, p.stderr


def test_check_config_refuses_a_user_that_does_not_exist(kvmstatd_bin, tmp_path):
    cfg = tmp_path / "kvmstatd.ini"
    cfg.write_text("[daemon]\nuser = nosuchuser\n")
    p = check_config(kvmstatd_bin, cfg)
    assert p.returncode == 2, "rc %d: %s%s" % (p.returncode, p.stdout, p.stderr)
    assert 'user "nosuchuser" (config [daemon] user): no such user' in p.stderr, p.stderr


# ---------------------------------------------------- item 4: forged lines

def test_file_name_cannot_forge_a_log_line(daemon_factory):
    """The helper logs a refused fd's /proc link name: a file named with a
    newline, a fake line and terminal escapes stays one escaped line."""
    d = daemon_factory(NO_DISCOVERY)
    top = tempfile.mkdtemp(prefix="k", dir="/tmp")
    name = os.path.join(top, "x\nkvmstatd[helper]: info: FORGED\x1b[31m\xc2\x85")
    fd = os.open(name.encode("utf-8", "surrogateescape"), os.O_CREAT | os.O_RDONLY, 0o600)
    try:
        reply = statsfd.send_datagram(d.socket, statsfd.message(
            MSG_REGISTER_VM, body_register_vm(7)), [fd])
        assert reply is not None and reply[0] == -errno.EBADF, reply
    finally:
        os.close(fd)
        os.unlink(name)
        os.rmdir(top)
    line = d.wait_log(r"refused \(bad_fd\)")[0]
    assert "x\\nkvmstatd[helper]: info: FORGED\\e[31m" in line, line
    raw = open(d.log_path, "rb").read()
    assert b"\x1b" not in raw, "an ESC byte reached the log"
    assert b"\xc2\x85" not in raw, "a C1 control (NEL) reached the log"
    assert not d.log_lines(r"^kvmstatd\[helper\]: info: FORGED"), d.log()


# ------------------------------------------------ item 8: connections

# Opens n connections, asks each the same (seq 9) and keeps those the
# helper answered; a connection turned away gets a refusal of seq 0.
_HOLD = r"""
import os, socket, struct, sys
path, n = sys.argv[1], int(sys.argv[2])
req = bytes.fromhex(sys.argv[3])
held, answered, refused = [], 0, 0
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(10)
    s.connect(path)
    try:
        s.send(req)
    except BrokenPipeError:
        pass
    try:
        r = s.recv(4096)
    except ConnectionResetError:
        r = b""
    if len(r) >= 16 and struct.unpack_from("=I", r, 12)[0] == 9:
        answered += 1
        held.append(s)
    else:
        refused += 1
        s.close()
print(answered, refused, flush=True)
sys.stdin.read()   # hold them until the test lets go
"""


def unknown_unregister():
    return statsfd.message(MSG_UNREGISTER_VM, body_unregister_vm(424242), seq=9)


def test_uid_outside_allow_users_is_closed_at_accept(daemon_factory):
    """Not at its first request: a silent connection of a refused uid would
    otherwise hold one of the 256 for 60 s."""
    d = daemon_for_others(daemon_factory, {("registration", "allow_users"): "root"})
    before = rejected(d, "not_allowed")
    code = (r"""
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(5)
s.connect(sys.argv[1])
try:
    r = s.recv(4096)      # without asking anything
    seq, status = struct.unpack_from("=Ii", r, 12)
    print("reply", seq, status, "closed" if s.recv(4096) == b"" else "open")
except socket.timeout:
    print("still open")
""")
    out = run_as(harness.worker_user().pw_uid, code, d.socket)
    # told why (seq 0: it asked nothing), then closed
    assert out.stdout.split() == ["reply", "0", str(-errno.EPERM), "closed"], (out.stdout,
                                                                            out.stderr)
    wait_rejected(d, "not_allowed", before + 1)
    d.wait_log(r"registration from pid \d+ \(uid %d\) refused \(not_allowed\): uid %d is not "
               r"in allow_users/allow_groups" % ((harness.worker_user().pw_uid,) * 2))


def test_sixteen_uids_cannot_keep_root_from_registering(daemon_factory):
    """16 uids x 16 connections filled all 256 once; now the uids other than
    root share 240 and root's request is answered."""
    d = daemon_for_others(daemon_factory)
    req = unknown_unregister().hex()
    holders = []
    before = rejected(d, "limit")
    try:
        for uid in range(61001, 61017):
            holders.append(subprocess.Popen(
                [sys.executable, "-c", _HOLD, d.socket, "16", req], user=uid, group=uid,
                extra_groups=[], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                cwd="/"))
        counts = [tuple(map(int, h.stdout.readline().split())) for h in holders]
        assert sum(a for a, _ in counts) == 240, counts
        assert sum(r for _, r in counts) == 16, counts
        wait_rejected(d, "limit", before + 16)
        reply = statsfd.send_datagram(d.socket, unknown_unregister())
        assert reply is not None, "root's connection was closed: the others hold them all"
        assert reply[0] == -errno.ENOENT and reply.hdr["seq"] == 9, reply
    finally:
        for h in holders:
            h.stdin.close()
            h.wait(10)
            h.stdout.close()
    # (its log lines may be among those left out: 256 refusals came at once)


def test_one_uid_holds_at_most_max_connections_per_uid(daemon_factory):
    d = daemon_for_others(daemon_factory, {("registration", "max_connections_per_uid"): "3"})
    h = subprocess.Popen([sys.executable, "-c", _HOLD, d.socket, "5", unknown_unregister().hex()],
                         user=61100, group=61100, extra_groups=[], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, cwd="/")
    try:
        assert h.stdout.readline().split() == ["3", "2"]
    finally:
        h.stdin.close()
        h.wait(10)
        h.stdout.close()
    d.wait_log(r"\(uid 61100\) refused \(limit\): uid 61100 holds 3 registration connections "
               r"\(max_connections_per_uid\)")
