"""When a VMM dies its series stay, frozen, for exit_grace_ms, then vanish,
and kvmstatd closes every stats fd of it (a held stats fd pins the dead VM's
kernel objects). Other VMMs are not disturbed."""

import signal
import time

import harness
from harness import EXIT_GRACE_MS, POLL_INTERVAL_MS


def _series_of(expo, name):
    return {k: v for k, v in expo.samples.items()
            if k[0].startswith("kvm_") and dict(k[1]).get("vm") == name}


# Longer than the suite's 1.5 s: "still there within the grace period" is
# checked two and four poll ticks after the kill, which took more than 1.5 s
# in a loaded lab guest.
GRACE_MS = 8000


def test_killed_vmm_series_stay_for_grace_then_vanish(daemon_factory, demo_vmm):
    daemon = daemon_factory({("poll", "exit_grace_ms"): str(GRACE_MS)})
    doomed = demo_vmm(daemon.socket, vms=1, vcpus=2, name_prefix="it-doomed", hz=500)
    keeper = demo_vmm(daemon.socket, vms=1, vcpus=1, name_prefix="it-keeper", hz=500)
    dname, kname = doomed.vms[0].name, keeper.vms[0].name
    harness.wait_for_vms(daemon, [dname, kname])
    worker, helper = daemon.worker_pid(), daemon.proc.pid
    assert len(harness.kvm_stats_links(worker)) == 5  # 2 VMs + 3 vCPUs

    live = _series_of(daemon.scrape(), dname)
    assert live
    doomed.kill(signal.SIGKILL)
    killed_at = time.monotonic()

    # within the grace period: still there, and frozen at the last sample
    early = _series_of(daemon.settled(), dname)
    later = _series_of(daemon.settled(), dname)
    took = time.monotonic() - killed_at
    assert took < GRACE_MS / 1000.0 - 0.2, "four poll ticks took %.1f s: the test ran too slowly" \
        % took
    assert set(early) == set(live), "series of the dead VMM changed within the grace period"
    assert early == later, "series of a dead VMM still moved"

    # after the grace period: gone, and the fds closed
    harness.wait_vms_gone(daemon, [dname], timeout=GRACE_MS / 1000.0 + 10.0)
    gone_after = time.monotonic() - killed_at
    assert gone_after >= GRACE_MS / 1000.0 - 2.5 * POLL_INTERVAL_MS / 1000.0, (
        "series vanished %.2fs after the kill, before exit_grace_ms" % gone_after)
    harness.wait_until(lambda: len(harness.kvm_stats_links(worker)) == 2, 2.0,
                       what="the worker to close the dead VMM's stats fds")
    # the helper keeps a copy of every live stats fd (to recognise a VM sent
    # again, and for the next worker if this one dies: docs/security.md) and
    # nothing of a dead VMM
    held = harness.kvm_stats_links(helper)
    assert sorted(held.values()) == ["anon_inode:kvm-vcpu-stats:0", "anon_inode:kvm-vm-stats"], (
        "the helper holds other than the surviving VM's stats fds: %r" % held)

    expo = daemon.scrape()
    assert expo.value("kvmstatd_sources", kind="vm") == 1
    assert expo.value("kvmstatd_sources", kind="vcpu") == 1
    assert not expo.matching("kvm_vm_info", vm=dname)
    # the other VMM is still served and moving
    a = harness.vcpu_exits(expo, kname)
    harness.wait_until(lambda: harness.vcpu_exits(daemon.scrape(), kname)["0"] > a["0"], 3.0,
                       what="the surviving VM's exits to rise")


def test_no_stats_fd_left_after_all_vmms_exit(daemon, demo_vmm):
    vmm = demo_vmm(daemon.socket, vms=3, vcpus=2, name_prefix="it-allgone")
    names = [vm.name for vm in vmm.vms]
    harness.wait_for_vms(daemon, names)
    worker = daemon.worker_pid()
    assert len(harness.kvm_stats_links(worker)) == 9
    vmm.stop()  # SIGTERM: a clean exit this time
    harness.wait_vms_gone(daemon, names, timeout=EXIT_GRACE_MS / 1000.0 + 3.0)
    harness.wait_until(lambda: not harness.kvm_stats_links(worker), 2.0,
                       what="the worker to close every stats fd")
    assert harness.kvm_stats_links(daemon.proc.pid) == {}
    expo = daemon.scrape()
    assert expo.value("kvmstatd_sources", kind="vm") == 0
    assert expo.value("kvmstatd_sources", kind="vcpu") == 0
    assert not [k for k in expo.samples if k[0].startswith(("kvm_vm_", "kvm_vcpu_"))]
