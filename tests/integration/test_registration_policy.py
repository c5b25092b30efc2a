"""Registration policy ([registration] in the configuration): who may
register (allow_users / allow_groups, names or numbers; empty: whoever can
connect), how often (rate_limit requests/s per uid, rate_burst at once) and
how much (max_sources_per_uid stats fds over all of a uid's VMMs). Every
refusal is answered, logged with the peer's pid, uid and reason, and
counted in kvmstatd_registrations_rejected_total{reason}: not_allowed
(EPERM), rate (EAGAIN), limit (ENOSPC).

Discovery is off here: this test process makes VMs of its own, which a
scan would otherwise find and export before they are registered."""

import errno
import os
import pwd
import subprocess
import sys

import pytest

import harness
import statsfd
from statsfd import MSG_UNREGISTER_VM, body_unregister_vm

REASONS = ("bad_message", "bad_fd", "fd_count", "not_owner", "limit", "unknown_vm", "duplicate",
           "not_allowed", "rate")
NO_DISCOVERY = {("discovery", "enabled"): "no"}

_handles = iter(range(5000, 10 ** 6))


def next_handle():
    return next(_handles)


def rejected_counts(d):
    e = d.scrape()
    return {r: e.total("kvmstatd_registrations_rejected_total", reason=r) for r in REASONS}


def assert_counted(d, before, reason, n=1):
    def risen():
        now = rejected_counts(d)
        return now if now[reason] >= before[reason] + n else None
    now = harness.wait_until(risen, 3.0, 0.1,
                             "kvmstatd_registrations_rejected_total{reason=%s} to rise" % reason)
    delta = {r: now[r] - before[r] for r in REASONS if now[r] != before[r]}
    assert delta == {reason: n}, "rejection counters moved by %r, want {%r: %d}" % (
        delta, reason, n)


def assert_refusal_logged(d, pid, uid, reason):
    d.wait_log(r"registration from pid %d \(uid %d\) refused \(%s\): \S" % (pid, uid, reason),
               timeout=2.0)


def other_user():
    """A uid that is neither root nor, if possible, the daemon's own."""
    return pwd.getpwnam("nobody")


def config(**registration):
    """Overrides: discovery off and these [registration] keys."""
    ov = dict(NO_DISCOVERY)
    ov.update({("registration", k): v for k, v in registration.items()})
    return ov


def daemon_for_others(daemon_factory, overrides):
    """A daemon whose socket any uid can reach (mode 0666 in a directory
    others may traverse), so that requests can come from another uid."""
    ov = dict(NO_DISCOVERY)
    ov[("registration", "socket_mode")] = "0666"
    ov.update(overrides)
    d = daemon_factory(ov, start=False)
    os.chmod(d.dir, 0o711)
    return d.start()


_CHILD = r"""
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.settimeout(5)
s.connect(sys.argv[1])
try:
    s.send(bytes.fromhex(sys.argv[2]))
except BrokenPipeError:
    pass  # turned away at connect: its answer waits all the same
r = s.recv(4096)
print(os.getpid(), r.hex())
"""


def request_as(user, sock_path, data, extra_groups=()):
    """Send one fd-less datagram as another user (with these supplementary
    gids); returns (pid, reply)."""
    out = subprocess.run([sys.executable, "-c", _CHILD, sock_path, data.hex()],
                         user=user.pw_uid, group=user.pw_gid, extra_groups=list(extra_groups),
                         capture_output=True, text=True, timeout=10, cwd="/")
    assert out.returncode == 0, "request as %s failed: %s" % (user.pw_name, out.stderr)
    pid, hexreply = out.stdout.split()
    return int(pid), statsfd.parse_reply(bytes.fromhex(hexreply))


def unknown_unregister(seq=4343):
    return statsfd.message(MSG_UNREGISTER_VM, body_unregister_vm(987654), seq=seq)


def assert_seq_echoed(reply, seq):
    """A refusal of a well-framed request echoes its seq, as every reply does
    (the C client takes any other seq for a protocol error: -EPROTO)."""
    assert reply.hdr["seq"] == seq, "reply seq %d to a request of seq %d (%r)" % (
        reply.hdr["seq"], seq, tuple(reply))


@pytest.fixture
def own_vms(kvm):
    """own_vms(n, vcpus) -> n VMs made by this process, closed at the end."""
    made = []

    def make(n, vcpus=0):
        vms = [statsfd.create_vm(vcpus=vcpus) for _ in range(n)]
        made.extend(vms)
        return vms

    yield make
    for vm in made:
        vm.close()


def register_own(d, vm, name="", seq=4242):
    """REGISTER_VM of one of this process's VMs; the reply has .hdr."""
    return statsfd.register_vm(d.socket, next_handle(), vm.vm_stats_fd, vm.vcpu_stats_fds, name,
                               seq=seq)


# ---------------------------------------------------------------- who may

def test_policy_reasons_are_exported_from_start(daemon_factory):
    d = daemon_factory(NO_DISCOVERY)
    e = d.scrape()
    for reason in ("not_allowed", "rate", "limit"):
        assert e.matching("kvmstatd_registrations_rejected_total", reason=reason), reason
        assert e.total("kvmstatd_registrations_rejected_total", reason=reason) == 0


def test_uid_not_in_allow_users_is_refused_logged_and_counted(daemon_factory):
    d = daemon_for_others(daemon_factory, {("registration", "allow_users"): "root"})
    nobody = other_user()
    before = rejected_counts(d)
    pid, reply = request_as(nobody, d.socket, unknown_unregister(seq=4343))
    st, acc, reason = reply
    assert (st, acc) == (-errno.EPERM, 0), (st, acc, reason)
    assert reason, "a refusal without a reason"
    assert_counted(d, before, "not_allowed")
    assert_refusal_logged(d, pid, nobody.pw_uid, "not_allowed")


def test_vmm_of_a_uid_not_allowed_cannot_register_and_leaves_nothing(daemon_factory,
                                                                    demo_vmm, own_vms):
    d = daemon_factory(config(allow_users=harness.worker_user().pw_name))
    before = rejected_counts(d)
    vmm = demo_vmm(d.socket, vms=1, vcpus=1, name_prefix="it-notallowed-")
    assert vmm.vms[0].registered.startswith("error:"), vmm.lines
    assert_counted(d, before, "not_allowed")
    assert_refusal_logged(d, vmm.pid, 0, "not_allowed")
    assert not harness.vm_infos(d.scrape(), vm="it-notallowed-0")
    # fds sent along with a refused request are not kept
    helper_fds = len(harness.fd_links(d.proc.pid))
    vm, = own_vms(1, vcpus=2)
    st, acc, reason = register_own(d, vm, "it-notallowed-own")
    assert (st, acc) == (-errno.EPERM, 0), (st, acc, reason)
    harness.wait_until(lambda: len(harness.fd_links(d.proc.pid)) <= helper_fds, 2.0,
                       what="the helper to close the refused fds")
    assert harness.kvm_stats_links(d.proc.pid) == {}
    assert harness.kvm_stats_links(d.worker_pid()) == {}
    # the VMM (C client) learnt why: EPERM and the helper's sentence
    assert vmm.vms[0].registered.startswith("error:EPERM:"), vmm.lines


@pytest.mark.parametrize("allow", [
    {"allow_users": "root"},
    {"allow_users": "0"},
    {"allow_users": "nobody, root"},
    {"allow_users": "nobody", "allow_groups": "root"},
    {"allow_users": "nobody", "allow_groups": "0"},
    {"allow_groups": "nogroup root"},
], ids=["user-name", "user-number", "user-list", "group-name", "group-number", "group-list"])
def test_allow_lists_admit_root_by_name_or_number(daemon_factory, own_vms, allow):
    d = daemon_factory(config(**allow))
    vm, = own_vms(1, vcpus=1)
    st, acc, reason = register_own(d, vm, "it-allowed")
    assert (st, acc) == (0, 2), (st, acc, reason)
    harness.wait_for_vms(d, ["it-allowed"])
    assert rejected_counts(d)["not_allowed"] == 0


def test_group_not_in_allow_groups_is_refused(daemon_factory, own_vms):
    d = daemon_factory(config(allow_groups="nogroup"))
    before = rejected_counts(d)
    vm, = own_vms(1)
    reply = register_own(d, vm, "it-wronggroup", seq=77)
    st, acc, reason = reply
    assert (st, acc) == (-errno.EPERM, 0), (st, acc, reason)
    assert_counted(d, before, "not_allowed")
    assert_refusal_logged(d, os.getpid(), 0, "not_allowed")


def test_policy_refusals_echo_the_request_seq(daemon_factory, own_vms):
    """Refused before the request is looked at, still answered like any
    other reply: the C client checks the seq and would otherwise report a
    protocol error instead of the refusal. A uid outside allow_users is
    refused at connect, before it asked anything: seq 0, the one reply the
    C client takes for any request (docs/wire-protocol.md)."""
    d = daemon_for_others(daemon_factory, {("registration", "allow_users"): "root",
                                           ("registration", "rate_limit"): "1",
                                           ("registration", "rate_burst"): "1",
                                           ("registration", "max_sources_per_uid"): "1"})
    a, b = own_vms(2, vcpus=1)
    _, reply = request_as(other_user(), d.socket, unknown_unregister(seq=4343))
    assert reply[0] == -errno.EPERM, tuple(reply)
    not_allowed_seq = reply.hdr["seq"]
    reply = register_own(d, a, "it-seq-a", seq=77)  # the burst's one token; 2 fds > 1
    assert reply[0] == -errno.ENOSPC, tuple(reply)
    limit_seq = reply.hdr["seq"]
    reply = register_own(d, b, "it-seq-b", seq=78)
    assert reply[0] == -errno.EAGAIN, tuple(reply)
    rate_seq = reply.hdr["seq"]
    assert (not_allowed_seq, rate_seq, limit_seq) == (0, 78, 77), (
        "reply seq (not_allowed, rate, limit) = %r, want (0, 78, 77)"
        % ((not_allowed_seq, rate_seq, limit_seq),))


def test_supplementary_group_in_allow_groups_admits(daemon_factory):
    """A peer's supplementary groups count, not only its primary one."""
    group = harness.worker_user().pw_gid  # a group nobody is not a member of
    d = daemon_for_others(daemon_factory, {("registration", "allow_users"): "root",
                                           ("registration", "allow_groups"): str(group)})
    before = rejected_counts(d)
    _, reply = request_as(other_user(), d.socket, unknown_unregister(), extra_groups=[group])
    assert tuple(reply)[:2] == (-errno.ENOENT, 0), tuple(reply)  # heard: the handle is unknown
    assert_counted(d, before, "unknown_vm")
    before = rejected_counts(d)
    pid, reply = request_as(other_user(), d.socket, unknown_unregister())
    assert tuple(reply)[:2] == (-errno.EPERM, 0), tuple(reply)
    assert_counted(d, before, "not_allowed")
    assert_refusal_logged(d, pid, other_user().pw_uid, "not_allowed")


# --------------------------------------------------------------- how often

def test_rate_limit_refuses_requests_beyond_the_burst_per_uid(daemon_factory, own_vms):
    d = daemon_for_others(daemon_factory, {("registration", "rate_limit"): "1",
                                           ("registration", "rate_burst"): "2"})
    a, b, c = own_vms(3)
    before = rejected_counts(d)
    assert register_own(d, a, "it-rate-a")[:2] == (0, 1)
    assert register_own(d, b, "it-rate-b")[:2] == (0, 1)
    reply = register_own(d, c, "it-rate-c", seq=78)
    st, acc, reason = reply
    assert (st, acc) == (-errno.EAGAIN, 0), (st, acc, reason)
    assert_counted(d, before, "rate")
    assert_refusal_logged(d, os.getpid(), 0, "rate")
    # another uid has a bucket of its own: its request is heard (and refused
    # for what it is, an unknown handle)
    pid, (st, acc, reason) = request_as(other_user(), d.socket, unknown_unregister())
    assert (st, acc) == (-errno.ENOENT, 0), (st, acc, reason)
    # a token a second later
    harness.wait_until(lambda: register_own(d, c, "it-rate-c")[:2] == (0, 1), 3.0, 0.6,
                       "a token for root again")
    harness.wait_for_vms(d, ["it-rate-a", "it-rate-b", "it-rate-c"])


# ---------------------------------------------------------------- how much

def test_max_sources_per_uid_counts_every_vmm_of_the_uid(daemon_factory, demo_vmm, own_vms):
    d = daemon_factory(config(max_sources_per_uid="3"))
    vmm = demo_vmm(d.socket, vms=1, vcpus=1, name_prefix="it-budget-")  # 2 fds of uid 0
    assert vmm.vms[0].registered == "yes", vmm.lines
    one_vcpu, no_vcpu, another = own_vms(1, vcpus=1) + own_vms(2, vcpus=0)
    # another process, the same uid: 2 more fds would make 4
    before = rejected_counts(d)
    reply = register_own(d, one_vcpu, "it-budget-own", seq=79)
    st, acc, reason = reply
    assert (st, acc) == (-errno.ENOSPC, 0), (st, acc, reason)
    assert_counted(d, before, "limit")
    assert_refusal_logged(d, os.getpid(), 0, "limit")
    # 1 more makes 3: allowed; then the budget is spent
    assert register_own(d, no_vcpu, "it-budget-small")[:2] == (0, 1)
    before = rejected_counts(d)
    st, acc, reason = register_own(d, another, "it-budget-more")
    assert (st, acc) == (-errno.ENOSPC, 0), (st, acc, reason)
    assert_counted(d, before, "limit")
    # the demo's fds are given back once it has exited (at the latest after
    # its grace period)
    vmm.stop()
    harness.wait_until(lambda: register_own(d, one_vcpu, "it-budget-own")[:2] == (0, 2),
                       harness.EXIT_GRACE_MS / 1000.0 + 3.0, 0.3,
                       "the uid's budget to be given back")
    harness.wait_for_vms(d, ["it-budget-own", "it-budget-small"])
