"""The registration socket refuses every malformed request and every fd that
is not a KVM stats fd of the right kind, answers with the right -errno, counts
the refusal under the right reason, leaks no fd, and keeps serving the VMs
registered before. A VM made by this test process registers fine: the test
is its owner.

One daemon and one demo VMM serve the whole module (the cases are many)."""

import errno
import os
import socket
import tempfile

import pytest

import harness
import statsfd
from statsfd import (MSG_ADD_VCPUS, MSG_REGISTER_VM, MSG_REPLY, MSG_UNREGISTER_VM,
                     PROTO_MAGIC, PROTO_VERSION, body_add_vcpus, body_register_vm,
                     body_unregister_vm, message)

REASONS = ("bad_message", "bad_fd", "fd_count", "not_owner", "limit", "unknown_vm", "duplicate")
REASON_OF = {errno.EBADMSG: "bad_message", errno.EBADF: "bad_fd", errno.E2BIG: "fd_count",
             errno.EPERM: "not_owner", errno.ENOSPC: "limit", errno.ENOENT: "unknown_vm",
             errno.EEXIST: "duplicate"}

_handles = iter(range(1000, 10 ** 6))


def next_handle():
    return next(_handles)


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def served(kvmstatd_bin, demo_vmm_bin, root, kvm):
    """(daemon, demo VMM) shared by the module; stopped cleanly at the end."""
    d = harness.Daemon().start()
    vmm = None
    try:
        vmm = harness.DemoVmm(d.socket, vms=1, vcpus=2, name_prefix="it-victim", hz=500).start()
        assert vmm.vms[0].registered == "yes", vmm.lines
        harness.wait_for_vms(d, [vmm.vms[0].name])
        yield d, vmm
    finally:
        if vmm is not None:
            vmm.stop()
        try:
            d.stop(check=True)
        finally:
            d.kill_all()


@pytest.fixture
def own_vm(kvm):
    vm = statsfd.create_vm(vcpus=2)
    yield vm
    vm.close()


def fd_count(pid):
    return len(harness.fd_links(pid))


def rejected_counts(d):
    e = d.scrape()
    return {r: e.total("kvmstatd_registrations_rejected_total", reason=r) for r in REASONS}


def assert_victim_served(d, vmm):
    """The demo VM registered before is still served and its counters move."""
    assert d.proc.poll() is None, "kvmstatd died:\n" + d.log()
    name = vmm.vms[0].name
    a = harness.vcpu_exits(d.scrape(), name)
    assert sorted(a) == ["0", "1"], "series of %s missing: %r" % (name, a)
    harness.wait_until(
        lambda: all(v > a[k] for k, v in harness.vcpu_exits(d.scrape(), name).items()),
        3.0, 0.1, "the registered demo VM's exits to keep rising")


def assert_rejection_counted(d, before, reason):
    def risen():
        now = rejected_counts(d)
        return now if now[reason] >= before[reason] + 1 else None
    now = harness.wait_until(risen, 3.0, 0.1,
                             "kvmstatd_registrations_rejected_total{reason=%s} to rise" % reason)
    delta = {r: now[r] - before[r] for r in REASONS if now[r] != before[r]}
    assert delta == {reason: 1}, "rejection counters moved by %r, want {%r: 1}" % (delta, reason)


# --------------------------------------------------------------------- cases
# Each case builds (datagram, fds, owned fds to close) from the test's own VM.

def _reg(vm, **kw):
    return message(MSG_REGISTER_VM, body_register_vm(next_handle(), **kw), seq=4242)


def _vm_fds(vm):
    return [vm.vm_stats_fd] + vm.vcpu_stats_fds


def case_pipe(vm):
    r, w = os.pipe()
    return _reg(vm), [r] + vm.vcpu_stats_fds, [r, w]


def case_pipe_as_vcpu(vm):
    r, w = os.pipe()
    return _reg(vm), [vm.vm_stats_fd, vm.vcpu_stats_fds[0], r], [r, w]


def case_regular_file(vm):
    fd, path = tempfile.mkstemp(prefix="kvmstatd-it-")
    os.write(fd, b"\0" * 4096)
    os.unlink(path)
    rd = os.open("/proc/self/fd/%d" % fd, os.O_RDONLY)
    return _reg(vm), [rd], [fd, rd]


def case_socket(vm):
    a, b = socket.socketpair()
    fa, fb = a.detach(), b.detach()
    return _reg(vm), [fa], [fa, fb]


def case_kvm_vm_fd(vm):
    return _reg(vm), [vm.vm_fd] + vm.vcpu_stats_fds, []


def case_kvm_vcpu_fd(vm):
    return _reg(vm), [vm.vm_stats_fd, vm.vcpu_fds[0]], []


def case_dev_kvm_fd(vm):
    return _reg(vm), [vm.kvm_fd], []


def case_vcpu_stats_fd_first(vm):
    return _reg(vm), vm.vcpu_stats_fds[:1] + vm.vcpu_stats_fds[1:], []


def case_two_vm_stats_fds(vm):
    other = statsfd.create_vm(vcpus=0)
    return _reg(vm), [vm.vm_stats_fd, other.vm_stats_fd], [other]


def case_garbage(vm):
    return os.urandom(37) + b"\xff" * 59, _vm_fds(vm), []


def case_truncated(vm):
    return _reg(vm)[:50], _vm_fds(vm), []


def case_truncated_header(vm):
    return _reg(vm)[:10], _vm_fds(vm), []


def case_oversized(vm):
    body = body_register_vm(next_handle()) + b"\0" * 4000
    return message(MSG_REGISTER_VM, body), _vm_fds(vm), []


def case_length_field_lies(vm):
    body = body_register_vm(next_handle())
    return message(MSG_REGISTER_VM, body, length=16 + len(body) + 8), _vm_fds(vm), []


def case_wrong_magic(vm):
    return message(MSG_REGISTER_VM, body_register_vm(next_handle()), magic=0x4B565354), _vm_fds(vm), []


def case_wrong_version(vm):
    return message(MSG_REGISTER_VM, body_register_vm(next_handle()), version=2), _vm_fds(vm), []


def case_unknown_type(vm):
    return message(7, body_register_vm(next_handle())), _vm_fds(vm), []


def case_reply_type_as_request(vm):
    return message(MSG_REPLY, b"\0" * 104), _vm_fds(vm), []


def case_nonzero_reserved(vm):
    return _reg(vm, reserved=1), _vm_fds(vm), []


def case_nonzero_flags(vm):
    return _reg(vm, flags=0x80000000), _vm_fds(vm), []


def case_unterminated_name(vm):
    return _reg(vm, raw_name=b"x" * 64), _vm_fds(vm), []


def case_name_not_utf8(vm):
    return _reg(vm, raw_name=b"it-\xff\xfe-bad"), _vm_fds(vm), []


def case_too_many_fds(vm):
    dups = [os.dup(vm.vcpu_stats_fds[0]) for _ in range(64)]
    return _reg(vm), [vm.vm_stats_fd] + dups, dups


def case_zero_fds(vm):
    return _reg(vm), [], []


def case_add_vcpus_unknown_handle(vm):
    return message(MSG_ADD_VCPUS, body_add_vcpus(next_handle())), vm.vcpu_stats_fds, []


def case_unregister_unknown_handle(vm):
    return message(MSG_UNREGISTER_VM, body_unregister_vm(next_handle())), [], []


CASES = [
    # (id, builder, expected errno)
    ("pipe", case_pipe, errno.EBADF),
    ("pipe-as-vcpu", case_pipe_as_vcpu, errno.EBADF),
    ("regular-file", case_regular_file, errno.EBADF),
    ("socket", case_socket, errno.EBADF),
    ("kvm-vm-fd", case_kvm_vm_fd, errno.EBADF),
    ("kvm-vcpu-fd", case_kvm_vcpu_fd, errno.EBADF),
    ("dev-kvm-fd", case_dev_kvm_fd, errno.EBADF),
    ("vcpu-stats-fd-first", case_vcpu_stats_fd_first, errno.EBADF),
    ("vm-stats-fd-as-vcpu", case_two_vm_stats_fds, errno.EBADF),
    ("garbage", case_garbage, errno.EBADMSG),
    ("truncated", case_truncated, errno.EBADMSG),
    ("truncated-header", case_truncated_header, errno.EBADMSG),
    ("oversized", case_oversized, errno.EBADMSG),
    ("length-field-lies", case_length_field_lies, errno.EBADMSG),
    ("wrong-magic", case_wrong_magic, errno.EBADMSG),
    ("wrong-version", case_wrong_version, errno.EBADMSG),
    ("unknown-type", case_unknown_type, errno.EBADMSG),
    ("reply-type-as-request", case_reply_type_as_request, errno.EBADMSG),
    ("nonzero-reserved", case_nonzero_reserved, errno.EBADMSG),
    ("nonzero-flags", case_nonzero_flags, errno.EBADMSG),
    ("unterminated-name", case_unterminated_name, errno.EBADMSG),
    ("name-not-utf8", case_name_not_utf8, errno.EBADMSG),
    ("too-many-fds-65", case_too_many_fds, errno.E2BIG),
    ("zero-fds", case_zero_fds, errno.E2BIG),
    ("add-vcpus-unknown-handle", case_add_vcpus_unknown_handle, errno.ENOENT),
    ("unregister-unknown-handle", case_unregister_unknown_handle, errno.ENOENT),
]

# headers good enough that the reply must echo the request's seq
SEQ_ECHOED = {"pipe", "pipe-as-vcpu", "regular-file", "socket", "kvm-vm-fd", "kvm-vcpu-fd",
              "dev-kvm-fd", "vcpu-stats-fd-first", "vm-stats-fd-as-vcpu", "nonzero-reserved",
              "nonzero-flags", "unterminated-name", "name-not-utf8",
              "zero-fds"}


def _close(owned):
    for o in owned:
        if isinstance(o, int):
            os.close(o)
        else:
            o.close()


@pytest.mark.parametrize("case_id,build,want", CASES, ids=[c[0] for c in CASES])
def test_bad_request_is_refused_counted_and_harmless(served, own_vm, case_id, build, want):
    d, vmm = served
    helper, worker = d.proc.pid, d.worker_pid()
    helper_fds, worker_fds = fd_count(helper), fd_count(worker)
    before = rejected_counts(d)
    data, fds, owned = build(own_vm)
    try:
        reply = statsfd.send_datagram(d.socket, data, fds)
    finally:
        _close(owned)
    assert reply is not None, "the helper closed the connection without a reply"
    status, accepted, reason = reply
    assert status == -want, "status %d (%s), want -%s; reason %r" % (
        status, errno.errorcode.get(-status, "?"), errno.errorcode[want], reason)
    assert accepted == 0, "a refused request still had %d fds accepted" % accepted
    assert reason, "a refusal without a reason for the VMM's log"
    assert reply.hdr["magic"] == PROTO_MAGIC and reply.hdr["version"] == PROTO_VERSION
    assert reply.hdr["type"] == MSG_REPLY and reply.hdr["length"] == 120
    if case_id in SEQ_ECHOED:
        assert reply.hdr["seq"] == 4242
    assert_rejection_counted(d, before, REASON_OF[want])
    # nothing sent along was kept, by the helper or by the worker
    harness.wait_until(lambda: fd_count(helper) <= helper_fds, 2.0,
                       what="the helper's fd count to return to %d" % helper_fds)
    harness.wait_until(lambda: fd_count(worker) <= worker_fds, 2.0,
                       what="the worker's fd count to return to %d" % worker_fds)
    assert_victim_served(d, vmm)


def test_vm_owned_by_another_process_is_refused(served):
    """The test borrows the demo VMM's stats fds (pidfd_getfd) and tries to
    register them as its own VM: not the owner."""
    d, vmm = served
    vm = vmm.vms[0]
    before = rejected_counts(d)
    fds = [statsfd.pidfd_getfd(vm.pid, fd) for fd in [vm.vm_stats_fd] + vm.vcpu_stats_fds]
    try:
        st, acc, reason = statsfd.register(d.socket, MSG_REGISTER_VM,
                                           body_register_vm(next_handle(), "it-stolen"), fds)
    finally:
        for fd in fds:
            os.close(fd)
    assert (st, acc) == (-errno.EPERM, 0), (st, acc, reason)
    assert_rejection_counted(d, before, "not_owner")
    assert not d.scrape().matching("kvm_vm_info", vm="it-stolen")
    assert_victim_served(d, vmm)


@pytest.fixture
def registered_vm(served, kvm):
    """A VM of this process, registered as "it-dup-a"; unregistered after."""
    d, _ = served
    vm = statsfd.create_vm(vcpus=1)
    h = next_handle()
    try:
        st, acc, reason = statsfd.register_vm(d.socket, h, vm.vm_stats_fd, vm.vcpu_stats_fds,
                                              "it-dup-a")
        assert (st, acc) == (0, 2), reason
        yield h, vm
        statsfd.register(d.socket, MSG_UNREGISTER_VM, body_unregister_vm(h))
    finally:
        vm.close()


def _assert_duplicate(d, vmm, send):
    before = rejected_counts(d)
    st, acc, reason = send()
    assert (st, acc) == (-errno.EEXIST, 0), (st, acc, reason)
    assert_rejection_counted(d, before, "duplicate")
    assert_victim_served(d, vmm)


def test_duplicate_handle_is_refused(served, registered_vm):
    d, vmm = served
    h, _ = registered_vm
    with statsfd.create_vm(vcpus=1) as b:
        _assert_duplicate(d, vmm, lambda: statsfd.register_vm(
            d.socket, h, b.vm_stats_fd, b.vcpu_stats_fds, "it-dup-b"))


def test_same_vm_fds_under_new_handle_are_refused(served, registered_vm):
    d, vmm = served
    _, a = registered_vm
    _assert_duplicate(d, vmm, lambda: statsfd.register_vm(
        d.socket, next_handle(), a.vm_stats_fd, a.vcpu_stats_fds, "it-dup-c"))


def test_name_taken_by_another_vmm_is_refused(served, kvm):
    d, vmm = served
    with statsfd.create_vm(vcpus=1) as b:
        _assert_duplicate(d, vmm, lambda: statsfd.register_vm(
            d.socket, next_handle(), b.vm_stats_fd, b.vcpu_stats_fds, vmm.vms[0].name))


def test_vcpu_added_twice_is_refused(served, registered_vm):
    d, vmm = served
    h, a = registered_vm
    _assert_duplicate(d, vmm, lambda: statsfd.register(
        d.socket, MSG_ADD_VCPUS, body_add_vcpus(h), a.vcpu_stats_fds))


def test_peer_disconnecting_without_reading_reply_is_harmless(served, own_vm):
    d, vmm = served
    before = rejected_counts(d)
    statsfd.send_datagram(d.socket, os.urandom(96), _vm_fds(own_vm), read_reply=False)
    assert_rejection_counted(d, before, "bad_message")
    assert_victim_served(d, vmm)
    # and a well-behaved VMM is still welcome afterwards
    h = next_handle()
    st, acc, reason = statsfd.register_vm(d.socket, h, own_vm.vm_stats_fd,
                                          own_vm.vcpu_stats_fds, "it-after-hangup")
    assert (st, acc) == (0, 3), reason
    assert statsfd.register(d.socket, MSG_UNREGISTER_VM, body_unregister_vm(h))[0] == 0


def test_peer_connecting_and_closing_without_sending_is_harmless(served):
    d, vmm = served
    helper_fds = fd_count(d.proc.pid)
    before = rejected_counts(d)
    for _ in range(20):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(2)
        s.connect(d.socket)
        s.close()
    harness.wait_until(lambda: fd_count(d.proc.pid) <= helper_fds, 2.0,
                       what="the helper to close the silent connections")
    assert rejected_counts(d) == before
    assert_victim_served(d, vmm)


def test_own_vm_registers_and_unregisters(served, own_vm):
    d, vmm = served
    h = next_handle()
    reply = statsfd.send_datagram(d.socket, message(
        MSG_REGISTER_VM, body_register_vm(h, "it-own-reg"), seq=77), _vm_fds(own_vm))
    status, accepted, reason = reply
    assert (status, accepted) == (0, 3), reason
    assert reply.hdr == {"magic": PROTO_MAGIC, "version": PROTO_VERSION, "type": MSG_REPLY,
                         "length": 120, "seq": 77}
    expo = harness.wait_for_vms(d, ["it-own-reg"])
    assert sorted(dict(l)["vcpu"] for (n, l) in expo.matching("kvm_vcpu_exits_total", vm="it-own-reg")) == ["0", "1"]
    st, acc, reason = statsfd.register(d.socket, MSG_UNREGISTER_VM, body_unregister_vm(h))
    assert st == 0, reason
    harness.wait_vms_gone(d, ["it-own-reg"], timeout=harness.EXIT_GRACE_MS / 1000.0 + 3.0)
    assert_victim_served(d, vmm)


def test_vcpus_can_be_added_later(served, own_vm):
    d, vmm = served
    h = next_handle()
    st, acc, reason = statsfd.register_vm(d.socket, h, own_vm.vm_stats_fd, [], "it-hotplug")
    assert (st, acc) == (0, 1), reason
    expo = harness.wait_for_vms(d, ["it-hotplug"])
    assert not expo.matching("kvm_vcpu_exits_total", vm="it-hotplug")
    st, acc, reason = statsfd.register(d.socket, MSG_ADD_VCPUS, body_add_vcpus(h),
                                       own_vm.vcpu_stats_fds)
    assert (st, acc) == (0, 2), reason
    harness.wait_until(
        lambda: len(d.scrape().matching("kvm_vcpu_exits_total", vm="it-hotplug")) == 2, 3.0,
        what="the added vCPUs' series")
    assert statsfd.register(d.socket, MSG_UNREGISTER_VM, body_unregister_vm(h))[0] == 0


def test_rejection_counters_exist_from_start(served):
    d, _ = served
    e = d.scrape()
    have = {dict(l).get("reason") for (n, l) in e.samples
            if n == "kvmstatd_registrations_rejected_total"}
    assert set(REASONS) <= have, "reasons not exported: %s" % sorted(set(REASONS) - have)


def test_limits_are_enforced(daemon_factory, kvm):
    d = daemon_factory({("registration", "max_vms_per_peer"): "1",
                        ("registration", "max_vcpus_per_vm"): "2"})
    a, b = statsfd.create_vm(vcpus=3), statsfd.create_vm(vcpus=1)
    try:
        # three vCPUs where two are allowed
        before = rejected_counts(d)
        st, acc, reason = statsfd.register_vm(d.socket, 1, a.vm_stats_fd, a.vcpu_stats_fds, "it-lim-a")
        assert (st, acc) == (-errno.ENOSPC, 0), (st, acc, reason)
        assert_rejection_counted(d, before, "limit")
        st, acc, reason = statsfd.register_vm(d.socket, 1, a.vm_stats_fd, a.vcpu_stats_fds[:2], "it-lim-a")
        assert (st, acc) == (0, 3), reason
        # a third vCPU added later
        before = rejected_counts(d)
        st, acc, reason = statsfd.register(d.socket, MSG_ADD_VCPUS, body_add_vcpus(1),
                                           a.vcpu_stats_fds[2:])
        assert (st, acc) == (-errno.ENOSPC, 0), (st, acc, reason)
        assert_rejection_counted(d, before, "limit")
        # a second VM from the same process
        before = rejected_counts(d)
        st, acc, reason = statsfd.register_vm(d.socket, 2, b.vm_stats_fd, b.vcpu_stats_fds, "it-lim-b")
        assert (st, acc) == (-errno.ENOSPC, 0), (st, acc, reason)
        assert_rejection_counted(d, before, "limit")
        # room again once the first one is unregistered (at the latest when
        # its grace period is over)
        assert statsfd.register(d.socket, MSG_UNREGISTER_VM, body_unregister_vm(1))[0] == 0
        harness.wait_until(
            lambda: statsfd.register_vm(d.socket, 2, b.vm_stats_fd, b.vcpu_stats_fds,
                                        "it-lim-b")[:2] == (0, 2),
            harness.EXIT_GRACE_MS / 1000.0 + 3.0, 0.3, "a free slot after unregistering")
    finally:
        a.close()
        b.close()
