"""An independent reader of KVM binary statistics fds (the test oracle).

This module shares no code with kvmstatd. It reads a VM or vCPU stats fd
(KVM_GET_STATS_FD, see Documentation/virt/kvm/api.rst "KVM_GET_STATS_FD" and
<linux/kvm.h>), parses header, id string, descriptors and data block on its
own, and applies the metric-name contract of shared/DESIGN.md to predict
exactly which samples kvmstatd must export and with which values:

    {(sample_name, frozenset(labels.items())): value}

Histogram `le` label values are normalised with le_key() on both sides so
that "1.023e-06" and "0.000001023" compare equal.

It also holds the raw tools the tests need around the daemon: pidfd_getfd()
to borrow a running VMM's stats fds, create_vm() to make a VM of our own
through /dev/kvm, and register() to speak the registration wire format
(client/kvmstat_proto.h) byte by byte over SOCK_SEQPACKET.

Run it as a script to print the expected series of a VM it creates itself:
    /usr/bin/python3 tests/integration/statsfd.py [--vcpus N] [--name NAME]
"""

import array
import ctypes
import fcntl
import math
import os
import re
import socket
import struct

# ---------------------------------------------------------------- kernel ABI

KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01
KVM_CHECK_EXTENSION = 0xAE03
KVM_CREATE_VCPU = 0xAE41
KVM_GET_STATS_FD = 0xAECE
KVM_CAP_BINARY_STATS_FD = 203

SYS_pidfd_open = 434
SYS_pidfd_getfd = 438

TYPE_MASK, TYPE_SHIFT = 0xF, 0
UNIT_MASK, UNIT_SHIFT = 0xF0, 4
BASE_MASK, BASE_SHIFT = 0xF00, 8

TYPE_CUMULATIVE, TYPE_INSTANT, TYPE_PEAK, TYPE_LINEAR_HIST, TYPE_LOG_HIST = range(5)
UNIT_NONE, UNIT_BYTES, UNIT_SECONDS, UNIT_CYCLES, UNIT_BOOLEAN = range(5)
BASE_POW10, BASE_POW2 = 0, 1

TYPE_NAMES = {TYPE_CUMULATIVE: "cumulative", TYPE_INSTANT: "instant",
              TYPE_PEAK: "peak", TYPE_LINEAR_HIST: "linear-hist",
              TYPE_LOG_HIST: "log-hist"}
UNIT_NAMES = {UNIT_NONE: "none", UNIT_BYTES: "bytes", UNIT_SECONDS: "seconds",
              UNIT_CYCLES: "cycles", UNIT_BOOLEAN: "boolean"}

HEADER = struct.Struct("=6I")          # flags name_size num_desc id_off desc_off data_off
DESC = struct.Struct("=IhHII")         # flags exponent size offset bucket_size
assert HEADER.size == 24 and DESC.size == 16

# Unit tokens stripped from the end of a (sanitised) stat name, per unit.
UNIT_TOKENS = {
    UNIT_SECONDS: ("_ns", "_us", "_ms", "_s", "_sec", "_secs", "_seconds",
                   "_nsec", "_usec", "_msec"),
    UNIT_BYTES: ("_bytes", "_b", "_kb", "_kib", "_mb", "_mib", "_gb", "_gib"),
    UNIT_CYCLES: ("_cycles",),
}
UNIT_SUFFIX = {UNIT_SECONDS: "_seconds", UNIT_BYTES: "_bytes",
               UNIT_CYCLES: "_cycles"}


class StatsFormatError(ValueError):
    """The stats fd's layout is not what the kernel ABI promises."""


def le_key(v):
    """Normalise a histogram bound (number or exposition string) for comparison."""
    if isinstance(v, str):
        if v in ("+Inf", "Inf", "+inf", "inf"):
            return "+Inf"
        v = float(v)
    if math.isinf(v):
        return "+Inf"
    return "%.12g" % v


def sanitise(name):
    return re.sub(r"[^a-z0-9_]", "_", name.lower())


class Desc:
    __slots__ = ("flags", "exponent", "size", "offset", "bucket_size", "name")

    def __init__(self, flags, exponent, size, offset, bucket_size, name):
        self.flags, self.exponent, self.size = flags, exponent, size
        self.offset, self.bucket_size, self.name = offset, bucket_size, name

    @property
    def type(self):
        return (self.flags & TYPE_MASK) >> TYPE_SHIFT

    @property
    def unit(self):
        return (self.flags & UNIT_MASK) >> UNIT_SHIFT

    @property
    def base(self):
        return (self.flags & BASE_MASK) >> BASE_SHIFT

    @property
    def is_hist(self):
        return self.type in (TYPE_LINEAR_HIST, TYPE_LOG_HIST)

    def scale(self, raw):
        """raw u64 x base^exponent, as exactly as a double allows."""
        b = 10 if self.base == BASE_POW10 else 2
        if self.exponent >= 0:
            return float(raw * b ** self.exponent)
        return raw / float(b ** -self.exponent)

    def family(self, scope):
        """Metric family name (without _total) under the naming contract."""
        base = sanitise(self.name)
        if self.is_hist and base.endswith("_hist"):
            base = base[: -len("_hist")]
        for tok in UNIT_TOKENS.get(self.unit, ()):
            if base.endswith(tok) and len(base) > len(tok):
                base = base[: -len(tok)]
                break
        return "kvm_%s_%s%s" % (scope, base, UNIT_SUFFIX.get(self.unit, ""))

    def metric_type(self):
        if self.is_hist:
            return "histogram"
        if self.unit == UNIT_BOOLEAN:
            return "gauge"
        if self.type == TYPE_CUMULATIVE:
            return "counter"
        return "gauge"

    def upper_bounds(self):
        """Inclusive integer upper bound of each bucket, in the stat's unit;
        the last one is +Inf."""
        n = self.size
        if self.type == TYPE_LINEAR_HIST:
            raw = [(i + 1) * self.bucket_size - 1 for i in range(n)]
        else:
            raw = [0] + [2 ** i - 1 for i in range(1, n)]
        out = [self.scale(r) for r in raw]
        out[-1] = math.inf
        return out

    def __repr__(self):
        return "Desc(%s %s %s base%d exp%d size%d off%d bs%d)" % (
            self.name, TYPE_NAMES.get(self.type), UNIT_NAMES.get(self.unit),
            10 if self.base == BASE_POW10 else 2, self.exponent, self.size,
            self.offset, self.bucket_size)


class StatsFd:
    """Schema of one stats fd, read once; read_data() preads the values."""

    def __init__(self, fd):
        self.fd = fd
        hdr = os.pread(fd, HEADER.size, 0)
        if len(hdr) != HEADER.size:
            raise StatsFormatError("short header: %d bytes" % len(hdr))
        (self.flags, self.name_size, self.num_desc, self.id_offset,
         self.desc_offset, self.data_offset) = HEADER.unpack(hdr)
        if self.name_size < 2 or self.name_size > 4096:
            raise StatsFormatError("name_size %d" % self.name_size)
        if self.num_desc == 0 or self.num_desc > 4096:
            raise StatsFormatError("num_desc %d" % self.num_desc)
        raw_id = os.pread(fd, self.name_size, self.id_offset)
        if b"\0" not in raw_id:
            raise StatsFormatError("id string not NUL-terminated")
        self.id = raw_id.split(b"\0", 1)[0].decode("ascii")
        stride = DESC.size + self.name_size
        blob = os.pread(fd, stride * self.num_desc, self.desc_offset)
        if len(blob) != stride * self.num_desc:
            raise StatsFormatError("short descriptor block")
        self.descs = []
        self.data_size = 0
        for i in range(self.num_desc):
            off = i * stride
            flags, exp, size, offset, bsize = DESC.unpack_from(blob, off)
            nraw = blob[off + DESC.size: off + stride]
            if b"\0" not in nraw:
                raise StatsFormatError("descriptor %d: name not terminated" % i)
            name = nraw.split(b"\0", 1)[0].decode("ascii")
            if not name:
                raise StatsFormatError("descriptor %d: empty name" % i)
            if flags & ~(TYPE_MASK | UNIT_MASK | BASE_MASK):
                raise StatsFormatError("%s: unknown flag bits %#x" % (name, flags))
            d = Desc(flags, exp, size, offset, bsize, name)
            if d.type > TYPE_LOG_HIST or d.unit > UNIT_BOOLEAN or d.base > BASE_POW2:
                raise StatsFormatError("%s: unknown type/unit/base %#x" % (name, flags))
            if size == 0 or offset % 8:
                raise StatsFormatError("%s: size %d offset %d" % (name, size, offset))
            if d.type == TYPE_LINEAR_HIST and bsize == 0:
                raise StatsFormatError("%s: linear histogram without bucket_size" % name)
            if not d.is_hist and size != 1:
                raise StatsFormatError("%s: non-histogram stat of size %d" % (name, size))
            self.descs.append(d)
            self.data_size = max(self.data_size, offset + 8 * size)
        # the data block follows the descriptors and ends the file
        if self.data_offset < self.desc_offset + stride * self.num_desc:
            raise StatsFormatError("data block overlaps descriptors")

    @property
    def vcpu_index(self):
        m = re.fullmatch(r"kvm-(\d+)/vcpu-(\d+)", self.id)
        return int(m.group(2)) if m else None

    @property
    def id_pid(self):
        """pid (VM) or tid (vCPU) in the id string."""
        m = re.match(r"kvm-(\d+)", self.id)
        return int(m.group(1)) if m else None

    @property
    def scope(self):
        return "vcpu" if self.vcpu_index is not None else "vm"

    def read_data(self):
        buf = os.pread(self.fd, self.data_size, self.data_offset)
        if len(buf) != self.data_size:
            raise StatsFormatError("short data read: %d of %d" % (len(buf), self.data_size))
        return {d.name: list(struct.unpack_from("=%dQ" % d.size, buf, d.offset))
                for d in self.descs}

    # ------------------------------------------------------ naming contract

    def families(self):
        """{family: metric type} this fd contributes (hist _sum twins folded)."""
        out = {}
        hist = {d.family(self.scope) for d in self.descs if d.is_hist}
        for d in self.descs:
            fam = d.family(self.scope)
            if d.type == TYPE_CUMULATIVE and d.unit != UNIT_BOOLEAN and fam in hist:
                continue  # becomes that histogram's _sum
            if fam in out:
                raise StatsFormatError("two families named %s" % fam)
            out[fam] = d.metric_type()
        return out

    def expected(self, vm_name, values=None, kinds=None):
        """Expected samples {(name, frozenset(labels)): value} for this fd.
        kinds, when given a dict, receives {key: "counter" | "gauge" |
        "boolean" | "histogram"} (how a value may move over time)."""
        if values is None:
            values = self.read_data()
        labels = {"vm": vm_name}
        if self.scope == "vcpu":
            labels["vcpu"] = str(self.vcpu_index)
        scope = self.scope
        self.families()  # raises on a name clash
        hist_fams = {d.family(scope): d for d in self.descs if d.is_hist}
        out = {}

        def put(name, extra, value, kind):
            lab = dict(labels)
            lab.update(extra)
            key = (name, frozenset(lab.items()))
            assert key not in out, key
            out[key] = value
            if kinds is not None:
                kinds[key] = kind

        for d in self.descs:
            fam = d.family(scope)
            raw = values[d.name]
            mt = d.metric_type()
            if mt == "histogram":
                acc = 0
                for ub, cnt in zip(d.upper_bounds(), raw):
                    acc += cnt
                    put(fam + "_bucket", {"le": le_key(ub)}, float(acc), "histogram")
                put(fam + "_count", {}, float(acc), "histogram")
            elif mt == "counter":
                if fam in hist_fams:
                    put(fam + "_sum", {}, d.scale(raw[0]), "histogram")
                else:
                    put(fam + "_total", {}, d.scale(raw[0]), "counter")
            else:
                put(fam, {}, d.scale(raw[0]),
                    "boolean" if d.unit == UNIT_BOOLEAN else "gauge")
        return out


# ----------------------------------------------------------- fds and syscalls

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _syscall(nr, *args):
    r = _libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def pidfd_open(pid):
    return _syscall(SYS_pidfd_open, pid, 0)


def pidfd_getfd(pid, fd):
    """A copy (O_CLOEXEC) of fd number `fd` of process `pid`."""
    pidfd = pidfd_open(pid)
    try:
        return _syscall(SYS_pidfd_getfd, pidfd, fd, 0)
    finally:
        os.close(pidfd)


def fd_link(fd, pid="self"):
    try:
        return os.readlink("/proc/%s/fd/%d" % (pid, fd))
    except OSError:
        return None


def kvm_usable():
    """None when /dev/kvm can make VMs with stats fds, else why not."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return "cannot open /dev/kvm: %s" % e
    try:
        try:
            ver = fcntl.ioctl(fd, KVM_GET_API_VERSION, 0)
        except OSError as e:
            return "KVM_GET_API_VERSION: %s" % e
        if ver != 12:
            return "KVM API version %d" % ver
        try:
            has = fcntl.ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD)
        except OSError as e:
            return "KVM_CHECK_EXTENSION: %s" % e
        if has <= 0:
            return "no KVM_CAP_BINARY_STATS_FD (kernel < 5.14?)"
    finally:
        os.close(fd)
    return None


class KvmVm:
    """A VM made by this process; its vCPUs never run."""

    def __init__(self, vcpus=1):
        self.kvm_fd = self.vm_fd = self.vm_stats_fd = -1
        self.vcpu_fds, self.vcpu_stats_fds = [], []
        try:
            self.kvm_fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
            self.vm_fd = fcntl.ioctl(self.kvm_fd, KVM_CREATE_VM, 0)
            self.vm_stats_fd = fcntl.ioctl(self.vm_fd, KVM_GET_STATS_FD, 0)
            for i in range(vcpus):
                vfd = fcntl.ioctl(self.vm_fd, KVM_CREATE_VCPU, i)
                self.vcpu_fds.append(vfd)
                # ask before any KVM_RUN: the call blocks while a vCPU runs
                self.vcpu_stats_fds.append(fcntl.ioctl(vfd, KVM_GET_STATS_FD, 0))
        except BaseException:
            self.close()
            raise

    @property
    def stats_fds(self):
        return [self.vm_stats_fd] + list(self.vcpu_stats_fds)

    def close(self):
        for fd in self.vcpu_stats_fds + self.vcpu_fds + [self.vm_stats_fd, self.vm_fd, self.kvm_fd]:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.kvm_fd = self.vm_fd = self.vm_stats_fd = -1
        self.vcpu_fds, self.vcpu_stats_fds = [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def create_vm(vcpus=1):
    """Create a VM with `vcpus` vCPUs through /dev/kvm; returns a KvmVm with
    .kvm_fd .vm_fd .vcpu_fds .vm_stats_fd .vcpu_stats_fds and .close()."""
    return KvmVm(vcpus)


def expected_for_vm(vm_stats_fd, vcpu_stats_fds, vm_name, kinds=None):
    """Expected samples of one VM (VM fd + its vCPU fds), read now."""
    out = {}
    for fd in [vm_stats_fd] + list(vcpu_stats_fds):
        s = StatsFd(fd)
        exp = s.expected(vm_name, kinds=kinds)
        dup = set(out) & set(exp)
        assert not dup, "duplicate series %s" % sorted(dup)[:3]
        out.update(exp)
    return out


def families_for_vm(vm_stats_fd, vcpu_stats_fds):
    out = {}
    for fd in [vm_stats_fd] + list(vcpu_stats_fds):
        out.update(StatsFd(fd).families())
    return out


# ------------------------------------------------------- registration wire

PROTO_MAGIC = 0x5453564B
PROTO_VERSION = 1
MSG_REGISTER_VM = 1
MSG_ADD_VCPUS = 2
MSG_UNREGISTER_VM = 3
MSG_REPLY = 0x8000
MAX_FDS_PER_MSG = 64
NAME_MAX = 64
REASON_MAX = 96

HDR = struct.Struct("=IHHII")               # magic version type length seq
REPLY = struct.Struct("=iI%ds" % REASON_MAX)  # status accepted reason
assert HDR.size == 16 and HDR.size + REPLY.size == 120


def body_register_vm(handle, name="", flags=0, reserved=0, raw_name=None):
    nm = raw_name if raw_name is not None else name.encode()
    assert len(nm) <= NAME_MAX
    return struct.pack("=QII", handle, flags, reserved) + nm.ljust(NAME_MAX, b"\0")


def body_add_vcpus(handle, flags=0, reserved=0):
    return struct.pack("=QII", handle, flags, reserved)


body_unregister_vm = body_add_vcpus


def message(msg_type, body, seq=1, magic=PROTO_MAGIC, version=PROTO_VERSION, length=None):
    if length is None:
        length = HDR.size + len(body)
    return HDR.pack(magic, version, msg_type, length, seq) + body


class Reply(tuple):
    """(status, accepted, reason) with the reply header fields attached."""
    hdr = None


def parse_reply(data):
    if len(data) != HDR.size + REPLY.size:
        raise AssertionError("reply of %d bytes, want 120: %r" % (len(data), data[:32]))
    magic, version, mtype, length, seq = HDR.unpack_from(data, 0)
    status, accepted, reason = REPLY.unpack_from(data, HDR.size)
    r = Reply((status, accepted, reason.split(b"\0", 1)[0].decode("utf-8", "replace")))
    r.hdr = {"magic": magic, "version": version, "type": mtype, "length": length, "seq": seq}
    return r


def send_datagram(sock_path, data, fds=(), timeout=5.0, read_reply=True):
    """Send one raw datagram (+fds). Returns the reply, or None when the
    helper closed the connection without one (or read_reply is False)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        s.settimeout(timeout)
        s.connect(sock_path)
        anc = []
        if fds:
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
        try:
            s.sendmsg([data], anc)
        except BrokenPipeError:
            pass  # turned away at connect: the helper's answer (seq 0) waits
        if not read_reply:
            return None
        try:
            reply = s.recv(4096)
        except ConnectionResetError:
            return None
        if not reply:
            return None
        return parse_reply(reply)
    finally:
        s.close()


def register(sock_path, msg_type, body, fds=(), seq=1, timeout=5.0):
    """Send one well-framed request; returns (status, accepted, reason).
    Raises AssertionError when the helper sent no reply."""
    r = send_datagram(sock_path, message(msg_type, body, seq=seq), fds, timeout)
    if r is None:
        raise AssertionError("helper closed the connection without a reply")
    return r


def register_vm(sock_path, handle, vm_stats_fd, vcpu_stats_fds=(), name="", seq=1):
    return register(sock_path, MSG_REGISTER_VM, body_register_vm(handle, name),
                    [vm_stats_fd] + list(vcpu_stats_fds), seq=seq)


# ------------------------------------------------------------- standalone

def _main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vcpus", type=int, default=2)
    ap.add_argument("--name", default=None)
    ap.add_argument("--descs", action="store_true", help="print descriptors too")
    a = ap.parse_args()
    why = kvm_usable()
    if why:
        raise SystemExit("no usable /dev/kvm: " + why)
    with create_vm(a.vcpus) as vm:
        name = a.name or "kvm-%d" % os.getpid()
        for fd in vm.stats_fds:
            s = StatsFd(fd)
            print("# fd %d link %s id %s: %d descriptors, name_size %d, data %d bytes"
                  % (fd, fd_link(fd), s.id, s.num_desc, s.name_size, s.data_size))
            if a.descs:
                for d in s.descs:
                    print("#   %r -> %s %s" % (d, d.family(s.scope), d.metric_type()))
        fams = families_for_vm(vm.vm_stats_fd, vm.vcpu_stats_fds)
        for f in sorted(fams):
            print("# family %s %s" % (f, fams[f]))
        exp = expected_for_vm(vm.vm_stats_fd, vm.vcpu_stats_fds, name)
        for (n, lab), v in sorted(exp.items(), key=lambda kv: (kv[0][0], sorted(kv[0][1]))):
            print("%s{%s} %r" % (n, ",".join('%s="%s"' % kv for kv in sorted(lab)), v))
        print("# %d series" % len(exp))


if __name__ == "__main__":
    _main()
