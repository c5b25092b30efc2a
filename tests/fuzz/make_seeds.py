#!/usr/bin/python3
"""Write the seed corpora of fuzz_regmsg, fuzz_ipc and fuzz_regsock.

    tests/fuzz/make_seeds.py        (from anywhere; rewrites both directories)

Every seed is one fuzz input: a first byte with the number of fds that came
with the message, then the message. corpus/regmsg/ holds VMM requests
(client/kvmstat_proto.h), corpus/ipc/ helper -> worker messages
(daemon/channel/ipc.h): a valid one of every type and the edge cases next to each
rule, accepted and refused. Output is deterministic and committed; run this
again after a change to either format. The enum sizes (REJ__COUNT,
ORIGIN__COUNT) are read from the headers.
"""

import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")

# client/kvmstat_proto.h
MAGIC, VERSION = 0x5453564B, 1
REGISTER_VM, ADD_VCPUS, UNREGISTER_VM, REPLY = 1, 2, 3, 0x8000
MAX_FDS = 64
NAME_MAX = 64
HDR = struct.Struct("=IHHII")  # magic, version, type, length, seq
REGISTER = struct.Struct("=QII%ds" % NAME_MAX)  # vm_handle, flags, reserved, name
SMALL_BODY = struct.Struct("=QII")  # ADD_VCPUS, UNREGISTER_VM
REPLY_BODY = struct.Struct("=iI96s")

# daemon/channel/ipc.h
IPC_ADD_VM, IPC_ADD_VCPUS, IPC_REMOVE_VM, IPC_REJECTED, IPC_HELLO, IPC_SYNC, IPC_END = range(1, 8)
HEARTBEAT_MAX_MS = 3600000
IPC_HDR = struct.Struct("=II")  # type, len
ADD_VM = struct.Struct("=IIIiIII80s32s")  # hdr, vm_id, pid, uid, n_vcpus, origin, name, comm
ADD_VCPUS_MSG = struct.Struct("=IIII")  # hdr, vm_id, n_vcpus
REMOVE_VM = struct.Struct("=III")  # hdr, vm_id
REJECTED = struct.Struct("=III")  # hdr, reason


def enum_count(header, enum, last):
    """Number of enumerators of `enum` in daemon/<header> before `last`."""
    text = open(os.path.join(ROOT, "daemon", header)).read()
    body = re.search(r"enum\s+%s\s*\{(.*?)\}" % enum, text, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    names = [n.split("=")[0].strip() for n in body.split(",") if n.strip()]
    return names.index(last)


REJ_COUNT = enum_count("selfstats.h", "reject_reason", "REJ__COUNT")
ORIGIN_COUNT = enum_count("ipc.h", "ipc_origin", "ORIGIN__COUNT")
HELLO = struct.Struct("=IIII%dQQ" % REJ_COUNT)  # hdr, worker_starts, heartbeat_ms, rejected, discovered
SYNC = struct.Struct("=III")  # hdr, seq


def seed(n_fds, msg):
    return bytes([n_fds]) + msg


# ------------------------------------------------------------------ regmsg

def request(msg_type, body, seq=1, magic=MAGIC, version=VERSION, length=None):
    if length is None:
        length = HDR.size + len(body)
    return HDR.pack(magic, version, msg_type, length, seq) + body


def register(name=b"web-1", handle=1, flags=0, reserved=0):
    return request(REGISTER_VM, REGISTER.pack(handle, flags, reserved, name))


def small(msg_type, handle=1, flags=0, reserved=0):
    return request(msg_type, SMALL_BODY.pack(handle, flags, reserved))


def regmsg_seeds():
    s = {}
    # accepted
    s["register-vm-3-fds"] = seed(3, register())
    s["register-vm-1-fd-no-name"] = seed(1, register(b""))
    s["register-vm-64-fds"] = seed(MAX_FDS, register(b"big", handle=2 ** 64 - 1))
    s["register-vm-name-63-bytes"] = seed(2, register(b"n" * 63))
    s["register-vm-name-utf8"] = seed(2, register("M\u00fcnchen-\u20ac-\U0001F600".encode()))
    s["register-vm-name-padding-not-zero"] = seed(1, register(b"vm\0" + b"\xff" * 61))
    s["add-vcpus-1-fd"] = seed(1, small(ADD_VCPUS))
    s["add-vcpus-64-fds"] = seed(MAX_FDS, small(ADD_VCPUS, handle=7))
    s["unregister-vm"] = seed(0, small(UNREGISTER_VM))
    # refused: fd counts
    s["register-vm-65-fds"] = seed(MAX_FDS + 1, register())
    s["register-vm-no-fd"] = seed(0, register())
    s["add-vcpus-no-fd"] = seed(0, small(ADD_VCPUS))
    s["unregister-vm-with-fds"] = seed(2, small(UNREGISTER_VM))
    # refused: header
    s["empty"] = seed(0, b"")
    s["header-15-bytes"] = seed(1, register()[:15])
    s["header-only"] = seed(1, register()[:HDR.size])
    s["bad-magic"] = seed(1, request(REGISTER_VM, REGISTER.pack(1, 0, 0, b""), magic=0x4B565354))
    s["bad-version"] = seed(1, request(ADD_VCPUS, SMALL_BODY.pack(1, 0, 0), version=2))
    s["type-0"] = seed(0, request(0, SMALL_BODY.pack(1, 0, 0)))
    s["type-4"] = seed(0, request(4, SMALL_BODY.pack(1, 0, 0)))
    s["type-reply"] = seed(0, request(REPLY, REPLY_BODY.pack(0, 0, b"ok")))
    s["length-field-wrong"] = seed(1, request(REGISTER_VM, REGISTER.pack(1, 0, 0, b""), length=95))
    s["register-vm-one-byte-short"] = seed(1, request(REGISTER_VM, REGISTER.pack(1, 0, 0, b"")[:-1]))
    s["register-vm-one-byte-long"] = seed(1, request(REGISTER_VM, REGISTER.pack(1, 0, 0, b"") + b"\0"))
    s["add-vcpus-with-register-length"] = seed(1, request(ADD_VCPUS, REGISTER.pack(1, 0, 0, b"")))
    # refused: body
    s["register-vm-flags"] = seed(1, register(flags=1))
    s["add-vcpus-reserved"] = seed(1, small(ADD_VCPUS, reserved=0x80000000))
    s["unregister-vm-flags"] = seed(0, small(UNREGISTER_VM, flags=2))
    s["name-unterminated"] = seed(1, register(b"a" * NAME_MAX))
    s["name-newline"] = seed(1, register(b"a\nb"))
    s["name-del"] = seed(1, register(b"del\x7f"))
    s["name-c1-control"] = seed(1, register(b"c1-\xc2\x85"))
    s["name-invalid-utf8"] = seed(1, register(b"\xc3("))
    s["name-overlong"] = seed(1, register(b"\xc0\xaf"))
    s["name-surrogate"] = seed(1, register(b"\xed\xa0\x80"))
    s["name-truncated-utf8"] = seed(1, register(b"ab\xe2\x82"))
    return s


# ------------------------------------------------------------------ ipc

def add_vm(n_vcpus=2, name=b"web-1", comm=b"qemu-system-x86", origin=0, length=ADD_VM.size):
    return ADD_VM.pack(IPC_ADD_VM, length, 7, 4242, 1000, n_vcpus, origin, name, comm)


def add_vcpus(n_vcpus=3):
    return ADD_VCPUS_MSG.pack(IPC_ADD_VCPUS, ADD_VCPUS_MSG.size, 7, n_vcpus)


def hello(starts=1, heartbeat_ms=0):
    rejected = [3 * i for i in range(REJ_COUNT)]
    return HELLO.pack(IPC_HELLO, HELLO.size, starts, heartbeat_ms, *rejected, 5)


def ipc_seeds():
    s = {}
    # accepted
    s["add-vm-2-vcpus"] = seed(4, add_vm())
    s["add-vm-0-vcpus"] = seed(2, add_vm(0, b"", b""))
    s["add-vm-64-vcpus"] = seed(2 + MAX_FDS, add_vm(MAX_FDS))
    s["add-vm-discovered"] = seed(3, add_vm(1, b"kvm-4242", b"qemu", origin=ORIGIN_COUNT - 1))
    s["add-vm-full-strings"] = seed(2, add_vm(0, b"n" * 79, b"c" * 31))
    s["add-vcpus-1"] = seed(1, add_vcpus(1))
    s["add-vcpus-64"] = seed(MAX_FDS, add_vcpus(MAX_FDS))
    s["remove-vm"] = seed(0, REMOVE_VM.pack(IPC_REMOVE_VM, REMOVE_VM.size, 7))
    for reason in (0, REJ_COUNT - 1):
        s["rejected-reason-%d" % reason] = seed(0, REJECTED.pack(IPC_REJECTED, REJECTED.size, reason))
    s["hello-first"] = seed(0, hello())
    s["hello-restart"] = seed(0, hello(starts=3))
    s["hello-heartbeat"] = seed(0, hello(heartbeat_ms=250))
    s["sync"] = seed(0, SYNC.pack(IPC_SYNC, SYNC.size, 1))
    # refused: header
    s["empty"] = seed(0, b"")
    s["header-7-bytes"] = seed(0, IPC_HDR.pack(IPC_REMOVE_VM, 12)[:7])
    s["header-only"] = seed(0, IPC_HDR.pack(IPC_REMOVE_VM, IPC_HDR.size))
    s["len-field-wrong"] = seed(0, REMOVE_VM.pack(IPC_REMOVE_VM, REMOVE_VM.size + 1, 7))
    s["type-0"] = seed(0, REMOVE_VM.pack(0, REMOVE_VM.size, 7))
    s["type-end"] = seed(0, REMOVE_VM.pack(IPC_END, REMOVE_VM.size, 7))
    s["remove-vm-one-byte-long"] = seed(0, REMOVE_VM.pack(IPC_REMOVE_VM, REMOVE_VM.size + 1, 7) + b"\0")
    s["add-vm-one-byte-short"] = seed(2, add_vm(0, length=ADD_VM.size - 1)[:-1])
    s["hello-with-rejected-size"] = seed(0, HELLO.pack(IPC_HELLO, REJECTED.size, 1, 0, *[0] * REJ_COUNT, 0)[:REJECTED.size])
    # refused: per type
    s["add-vm-fds-mismatch"] = seed(3, add_vm(2))
    s["add-vm-65-vcpus"] = seed(67, add_vm(MAX_FDS + 1))
    s["add-vm-n-vcpus-wraps"] = seed(1, add_vm(0xFFFFFFFF))
    s["add-vm-name-unterminated"] = seed(2, add_vm(0, b"n" * 80))
    s["add-vm-comm-unterminated"] = seed(2, add_vm(0, b"vm", b"c" * 32))
    s["add-vm-origin-out-of-range"] = seed(2, add_vm(0, origin=ORIGIN_COUNT))
    s["add-vcpus-0"] = seed(0, add_vcpus(0))
    s["add-vcpus-65"] = seed(65, add_vcpus(65))
    s["add-vcpus-fds-mismatch"] = seed(2, add_vcpus(3))
    s["remove-vm-with-fd"] = seed(1, REMOVE_VM.pack(IPC_REMOVE_VM, REMOVE_VM.size, 7))
    s["rejected-reason-out-of-range"] = seed(0, REJECTED.pack(IPC_REJECTED, REJECTED.size, REJ_COUNT))
    s["rejected-with-fds"] = seed(2, REJECTED.pack(IPC_REJECTED, REJECTED.size, 1))
    s["hello-heartbeat-too-slow"] = seed(0, hello(heartbeat_ms=HEARTBEAT_MAX_MS + 1))
    s["sync-with-fd"] = seed(1, SYNC.pack(IPC_SYNC, SYNC.size, 1))
    s["hello-with-fd"] = seed(1, hello())
    return s


# ----------------------------------------------------------------- regsock
# tests/fuzz/fuzz_regsock.c: flags, fd count, SCM_RIGHTS messages - 1,
# limits, one kind byte per fd, then datagrams split at ff ff ff.
F_PASSCRED, F_SEND_CREDS, F_NOT_ALLOWED, F_HANG_UP, F_FAKE_KVM, F_FIX_HEADER, F_WATCH_FAILS = (
    1, 2, 4, 8, 16, 32, 64)
# kinds: 0/1 pipe ends, 2/3 a socketpair, 4 eventfd "VM", 5..8 "vCPUs 0..3",
# 9 another "vCPU 0", 10 memfd, 11 /dev/null, 12 /, 13 unlinked file,
# 14 epoll, 15 FIFO, 16 the connection itself
EVERY_KIND = bytes(range(17))
CUT = b"\xff\xff\xff"
LIMITS_ROOMY = 0x1f  # 4 VMs, 8 vCPUs, 2 stats fds (0x1f: max_sources from bits 5..7 = 0)


def regsock(flags, kinds, datagrams, n_cmsgs=1, limits=0xff):
    return bytes([flags, len(kinds), n_cmsgs - 1, limits]) + bytes(kinds) + CUT.join(datagrams)


def regsock_seeds():
    many = (EVERY_KIND * 4)[:64]
    s = {
        # issue 14: no bytes, 64 fds: taken for a hang-up, the fds never closed
        "empty-64-fds": regsock(0, many, [b""]),
        "empty-64-fds-three-cmsgs": regsock(0, many, [b""], n_cmsgs=3),
        "empty-fds-and-credentials": regsock(F_SEND_CREDS, EVERY_KIND, [b""]),
        "empty-no-fds": regsock(0, b"", [b""]),
        "empty-fds-not-allowed": regsock(F_NOT_ALLOWED, many, [b""]),
        "empty-fds-hang-up": regsock(F_HANG_UP, many, [b"", b""]),
        # 253 fds (the kernel's maximum) and credentials asked for: cut (MSG_CTRUNC)
        "passcred-253-fds": regsock(F_PASSCRED, (EVERY_KIND * 15)[:253], [b""]),
        "253-fds-too-many": regsock(0, (EVERY_KIND * 15)[:253], [register()]),
        "every-kind-as-vm": regsock(0, EVERY_KIND, [register()]),
        "too-long": regsock(0, EVERY_KIND, [register() + b"x" * 200]),
        "garbage": regsock(0, EVERY_KIND, [bytes(range(96))]),
        # with eventfds for stats fds: register, add, duplicate, unregister
        "fake-register": regsock(F_FAKE_KVM, [4, 5, 6], [register(b"vm-a", handle=1)],
                                 limits=0xff),
        "fake-register-add-unregister": regsock(
            F_FAKE_KVM, [4, 5], [register(b"vm-a", handle=1), small(ADD_VCPUS, handle=1),
                                 small(UNREGISTER_VM, handle=1)], limits=0xff),
        "fake-vcpu-twice": regsock(F_FAKE_KVM, [4, 5, 9], [register(b"vm-b")], limits=0xff),
        "fake-limits": regsock(F_FAKE_KVM, [4, 5, 6, 7, 8], [register(b"vm-c")], limits=0),
        "fake-watch-fails": regsock(F_FAKE_KVM | F_WATCH_FAILS, [4, 5], [register(b"vm-d")]),
        "fake-fixed-header": regsock(F_FAKE_KVM | F_FIX_HEADER, [4, 6],
                                     [b"\x00\x00\x00\x00\x07\x01", b"\x01\x00\x00\x00\x08\x01"]),
        "fake-rate": regsock(F_FAKE_KVM, [4], [register(b"r1", handle=1), register(b"r2", handle=2),
                                               register(b"r3", handle=3), register(b"r4", handle=4)],
                             limits=0x80),
        "itself-over-itself": regsock(0, [16, 16, 4], [b""]),
    }
    return s


def write(directory, seeds):
    path = os.path.join(CORPUS, directory)
    os.makedirs(path, exist_ok=True)
    for old in os.listdir(path):  # the directory is all ours: no stale seeds
        if old.endswith(".bin"):
            os.unlink(os.path.join(path, old))
    for name, data in sorted(seeds.items()):
        with open(os.path.join(path, name + ".bin"), "wb") as f:
            f.write(data)
    return len(seeds)


def main():
    n = write("regmsg", regmsg_seeds())
    m = write("ipc", ipc_seeds())
    k = write("regsock", regsock_seeds())
    print("make_seeds: %d regmsg, %d ipc and %d regsock seeds in %s"
          % (n, m, k, os.path.relpath(CORPUS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
