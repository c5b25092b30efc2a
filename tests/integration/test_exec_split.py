"""The worker is a program of its own (build/kvmstatd-worker), exec'd by the
helper: the privileged binary links nothing that parses the network or
renders, and what runs as the worker is that program, with nothing of the
helper's but its channel.

- the helper binary's NEEDED libraries are a short list (no libmicrohttpd,
  GnuTLS, libcrypt, zlib, libsystemd), and it defines no renderer, HTTP,
  TLS or auth symbols; the worker binary has them (so the check is not
  vacuous); the running helper maps none of them, nor what libsystemd
  brought (libgcrypt, libgpg-error, liblzma, libzstd, liblz4, libcap);
- the running worker's /proc/<pid>/exe is the worker program, its command
  line "kvmstatd-worker", its environment empty, no capability in any set,
  its fds the ones it was handed; the helper maps no web library;
- a reload (SIGHUP) execs a new worker, checked first by the worker
  program under the helper's seccomp filter;
- the worker program refuses to run by hand, or with a boot message from
  another build.
"""

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys

import pytest

import harness

WORKER = os.path.join(harness.BUILD, "kvmstatd-worker")

# What the privileged helper may link, and why:
HELPER_MAY_NEED = {
    "libc.so.6",
    "libcap-ng.so.0",   # the exact capability drop (privdrop.c)
    "libseccomp.so.2",  # its own deny-list (sandbox.c)
    "libinih.so.1",     # the configuration file (config.c)
    "libbpf.so.1",      # loading the exit telemetry as root (bpfload.c; BPF=1)
}
# Not libsystemd either: the helper reads LISTEN_* and WATCHDOG_* itself
# (sdenv.c), and its four functions cost the libraries in SYSTEMD_BROUGHT.
FORBIDDEN_LIBS = re.compile(
    r"libmicrohttpd|libgnutls|libcrypt\.|libz\.|libssl|libcrypto|libsystemd")
SYSTEMD_BROUGHT = r"|libsystemd|libgcrypt|libgpg-error|liblzma|libzstd|liblz4|libcap\.so"
# Mapped at all, through any library: libz is not among them, libbpf's
# libelf loads it.
FORBIDDEN_MAPPED = re.compile(
    r"libmicrohttpd|libgnutls|libcrypt\.|libssl|libcrypto" + SYSTEMD_BROUGHT)
# Families of symbols that belong to the worker program only.
WORKER_SYMBOLS = re.compile(
    r"^(render_|http_|pagecache_|gzip_|webtls_|webauth_|help_|metric_|schema_|MHD_|gnutls_"
    r"|crypt|deflate)")
CAP_SETS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")


class Elf:
    """What these tests read of an ELF64 little-endian file, without
    binutils (the lab guest has none): the NEEDED entries of .dynamic, the
    names defined in .symtab and .dynsym, the names .dynsym imports."""

    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        d = self.data
        assert d[:4] == b"\x7fELF" and d[4] == 2 and d[5] == 1, "not ELF64 LE: %s" % path
        shoff, = struct.unpack_from("<Q", d, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", d, 0x3a)
        # name, type, flags, addr, offset, size, link, info, align, entsize
        self.sections = [struct.unpack_from("<IIQQQQIIQQ", d, shoff + i * shentsize)
                         for i in range(shnum)]

    def _str(self, sec, off):
        start = self.sections[sec][4] + off
        return self.data[start:self.data.index(b"\0", start)].decode()

    def _of_type(self, t):
        return [s for s in self.sections if s[1] == t]

    def needed(self):
        out = set()
        for s in self._of_type(6):  # SHT_DYNAMIC
            for off in range(s[4], s[4] + s[5], 16):
                tag, val = struct.unpack_from("<qQ", self.data, off)
                if tag == 1:  # DT_NEEDED
                    out.add(self._str(s[6], val))
        return out

    def symbols(self, defined):
        out = set()
        for t in (2, 11):  # SHT_SYMTAB, SHT_DYNSYM
            for s in self._of_type(t):
                for off in range(s[4] + 24, s[4] + s[5], 24):  # entry 0 is null
                    name, info, other, shndx = struct.unpack_from("<IBBH", self.data, off)
                    if name and (shndx != 0) == defined:
                        out.add(self._str(s[6], name))
        return out


def needed(binary):
    return Elf(binary).needed()


def symbols(binary, defined=True):
    """Names the binary defines (or, defined=False, imports)."""
    return Elf(binary).symbols(defined)


@pytest.fixture(scope="module")
def worker_bin():
    if not os.access(WORKER, os.X_OK):
        pytest.fail("%s is missing: build it first (make)" % WORKER, pytrace=False)
    return WORKER


# ------------------------------------------------------------- the binaries

def test_helper_needs_only_its_own_libraries(kvmstatd_bin, worker_bin):
    got = needed(kvmstatd_bin)
    assert got <= HELPER_MAY_NEED, "the helper links %s" % sorted(got - HELPER_MAY_NEED)
    assert not [l for l in got if FORBIDDEN_LIBS.search(l)], got
    assert "libsystemd.so.0" not in got, got
    assert not [s for s in symbols(kvmstatd_bin, defined=False) if s.startswith("sd_")], \
        "the helper calls libsystemd"
    # the worker program is where they went
    w = needed(worker_bin)
    assert {"libmicrohttpd.so.12", "libgnutls.so.30", "libcrypt.so.1", "libz.so.1"} <= w, w
    assert not {"libcap-ng.so.0", "libsystemd.so.0", "libbpf.so.1"} & w, w


def test_helper_has_no_renderer_http_tls_or_auth_code(kvmstatd_bin, worker_bin):
    defined = symbols(kvmstatd_bin)
    imported = symbols(kvmstatd_bin, defined=False)
    bad = sorted(s for s in defined | imported if WORKER_SYMBOLS.match(s))
    assert not bad, "the helper carries worker code: %s" % bad[:20]
    w = symbols(worker_bin) | symbols(worker_bin, defined=False)
    for family in ("render_", "http_start", "MHD_start_daemon", "gnutls_", "webauth_"):
        assert any(s.startswith(family) for s in w), "worker program without %s*" % family


def test_metrics_reference_comes_from_the_worker_program(kvmstatd_bin, worker_bin):
    a = subprocess.run([kvmstatd_bin, "--metrics-reference"], capture_output=True, timeout=10)
    b = subprocess.run([worker_bin, "--metrics-reference"], capture_output=True, timeout=10)
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    assert a.stdout == b.stdout and a.stdout.startswith(b"| Metric |")


# ------------------------------------------------------------ the processes

def test_the_worker_is_the_exec_d_program_with_nothing_of_the_helper(daemon, worker_bin):
    w = daemon.worker_pid()
    assert os.path.realpath("/proc/%d/exe" % w) == os.path.realpath(worker_bin)
    assert harness.proc_cmdline(w) == b"kvmstatd-worker\0"
    with open("/proc/%d/environ" % w, "rb") as f:
        assert f.read() == b"", "the worker inherited an environment"
    st = harness.proc_status(w)
    assert {k: int(st[k], 16) for k in CAP_SETS} == dict.fromkeys(CAP_SETS, 0), st
    assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2"
    # the helper's filter, inherited across the exec, and its own
    assert int(st.get("Seccomp_filters", "2")) >= 2, st.get("Seccomp_filters")
    links = harness.fd_links(w)
    # 0-2, the channel as fd 3, the HTTP listener; no file of the helper's
    # (its O_PATH of the worker program is close-on-exec)
    assert links[3].startswith("socket:"), links
    files = {fd: l for fd, l in links.items() if fd > 2 and l.startswith("/")}
    assert not files, "the worker holds files: %s" % files
    assert all(l.startswith(("socket:", "anon_inode:")) for fd, l in links.items() if fd > 2), links


def test_helper_maps_no_web_library_and_keeps_the_worker_program_open(daemon, worker_bin):
    with open("/proc/%d/maps" % daemon.proc.pid) as f:
        maps = f.read()
    libs = set(re.findall(r"\S+\.so[.\d]*$", maps, re.M))
    bad = [l for l in libs if FORBIDDEN_MAPPED.search(os.path.basename(l))]
    assert not bad, "the helper maps %s" % bad
    # one O_PATH fd of the worker program: what every worker is exec'd from
    exe = os.path.realpath(worker_bin)
    held = [fd for fd, l in harness.fd_links(daemon.proc.pid).items() if l == exe]
    assert len(held) == 1, harness.fd_links(daemon.proc.pid)


def test_a_reload_execs_a_new_worker_checked_first(daemon_factory, worker_bin):
    d = daemon_factory()
    os.chmod(d.dir, 0o755)  # the helper, no longer root, reads the file again
    os.chmod(d.config, 0o644)
    old = d.worker_pid()
    assert d.get("/metrics").status == 200
    pw = "$2b$04$" + "a" * 53  # a bcrypt hash of some password: any will do here
    harness.write_config(d.config, d.socket, d.config_port, d.user,
                         {("basic_auth_users", "alice"): pw})
    d.signal(signal.SIGHUP)
    d.wait_log(r"configuration reloaded: the new worker")
    new = d.wait_new_worker(old)
    assert os.path.realpath("/proc/%d/exe" % new) == os.path.realpath(worker_bin)
    harness.wait_until(lambda: d.get("/metrics").status == 401, 5, 0.05,
                       "the new worker to ask for basic auth")
    assert not d.log_lines(r"exited with status"), d.log()


def test_workers_come_from_the_file_opened_at_start(daemon_factory, tmp_path):
    """The helper execs every worker from the fd it opened at start-up: a
    worker program replaced or removed on disk (a package upgrade) changes
    nothing until a restart, and the pair stays one build."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("kvmstatd", "kvmstatd-worker"):
        shutil.copy(os.path.join(harness.BUILD, name), bindir / name)
    d = daemon_factory(start=False)
    d.args[0] = str(bindir / "kvmstatd")
    d.start()
    old = d.worker_pid()
    assert os.path.realpath("/proc/%d/exe" % old) == str(bindir / "kvmstatd-worker")
    os.unlink(bindir / "kvmstatd-worker")
    os.kill(old, signal.SIGKILL)
    new = d.wait_new_worker(old)
    assert os.readlink("/proc/%d/exe" % new) == str(bindir / "kvmstatd-worker") + " (deleted)"
    assert d.get("/metrics").status == 200


# -------------------------------------------------------- not run by hand

def test_worker_program_refuses_to_run_without_a_channel(worker_bin):
    p = subprocess.run([worker_bin], stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    assert p.returncode == 2
    assert b"started by" in p.stderr and b"kvmstatd" in p.stderr, p.stderr


def test_worker_program_refuses_a_boot_message_from_another_build(worker_bin):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    # struct boot_msg: type, len, version[16], config_size, pem_len[3], flags, log_level
    msg = struct.pack("=II16sIIIIII", 0x200, 48, b"0.0.0-other", 1234, 0, 0, 0, 0, 2)
    memfd = os.memfd_create("boot", os.MFD_CLOEXEC)
    ours.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", memfd))])
    n = theirs.fileno()  # as fd 3, where the program looks for its channel
    dup_to_3 = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.execv(sys.argv[2], sys.argv[2:])"
    p = subprocess.run([sys.executable, "-c", dup_to_3, str(n), worker_bin],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=10, pass_fds=(n,))
    os.close(memfd)
    ours.close()
    theirs.close()
    assert p.returncode == 1, p.stderr
    assert re.search(rb"cannot start: the helper is another build \(version 0\.0\.0-other",
                     p.stderr), p.stderr


def test_a_helper_without_its_worker_program_says_so(tmp_path, kvmstatd_bin):
    # the path `make` compiled in: $(LIBEXECDIR) of the last build or install
    with open(kvmstatd_bin, "rb") as f:
        m = re.search(rb"\0(/[^\0]*/kvmstatd/kvmstatd-worker)\0", f.read())
    assert m, "no worker program path in %s" % kvmstatd_bin
    installed = m.group(1).decode()
    if os.path.exists(installed):
        pytest.skip("%s exists: the lone helper would find it" % installed)
    lone = tmp_path / "kvmstatd"
    shutil.copy(kvmstatd_bin, lone)
    cfg = tmp_path / "k.ini"  # a user that exists: --check-config looks it up first
    harness.write_config(str(cfg), str(tmp_path / "r.sock"), harness.free_port(),
                         harness.worker_user().pw_name)
    p = subprocess.run([str(lone), "--check-config", "--config", str(cfg)],
                       capture_output=True, timeout=10)
    assert p.returncode == 1, p.stderr
    assert b"the worker program " + installed.encode() + b": No such file" in p.stderr, p.stderr


# In a mount namespace of its own, with a journal socket of the test's own
# on /run/systemd/journal/socket: both processes send structured entries
# there (the worker on the socket the helper connected and handed over in
# its boot message), none to stderr.
_JOURNAL_SCRIPT = r'''
import os, shutil, socket, subprocess, sys
sys.path.insert(0, sys.argv[2])
import harness
if os.system("mount -t tmpfs none /run") != 0:
    print("SKIP mount"); sys.exit(0)
os.makedirs("/run/systemd/journal")
j = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
j.bind("/run/systemd/journal/socket")
j.settimeout(0.5)
d = harness.Daemon()
log = open(d.log_path, "wb")
st = os.fstat(log.fileno())
env = {"JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino), "PATH": "/usr/bin:/bin"}
p = subprocess.Popen([sys.argv[1], "--config", d.config], stderr=log, env=env)
harness.wait_until(d._healthy, 10, what="HTTP")
p.terminate()
p.wait(10)
roles = set()
while True:
    try:
        m = j.recv(65536)
    except socket.timeout:
        break
    roles.update(l.decode() for l in m.split(b"\n") if l.startswith(b"KVMSTATD_ROLE="))
print(" ".join(sorted(roles)))
print("STDERR %d" % os.path.getsize(d.log_path))
log.close()
shutil.rmtree(d.dir, ignore_errors=True)
'''


def test_the_worker_logs_to_the_journal_socket_the_helper_handed_over(kvmstatd_bin, root):
    if not shutil.which("unshare"):
        pytest.skip("no unshare(1)")
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c",
                        _JOURNAL_SCRIPT, kvmstatd_bin, here], capture_output=True, text=True,
                       timeout=30)
    if p.returncode != 0 and "unshare" in p.stderr:
        pytest.skip("no mount namespace here: %s" % p.stderr.strip())
    if p.stdout.startswith("SKIP"):
        pytest.skip("cannot mount a tmpfs on /run in a namespace")
    assert p.returncode == 0, p.stderr
    roles, stderr = p.stdout.splitlines()
    assert roles == "KVMSTATD_ROLE=helper KVMSTATD_ROLE=worker", p.stdout
    assert stderr == "STDERR 0", "records went to stderr instead: %s" % p.stdout
