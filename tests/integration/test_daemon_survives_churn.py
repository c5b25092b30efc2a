"""Lifetimes at the edges: VMs that come and go fast, a zero grace period,
a limit that must count the fds the worker still holds in their grace
period, and a worker that dies (the helper must say so in its exit status,
so that systemd restarts the service)."""

import errno
import os
import signal

import harness
import statsfd
from statsfd import MSG_UNREGISTER_VM

from test_registration_rejects_bad_input import body_unregister_vm


def test_zero_grace_with_vmm_exits_keeps_serving(daemon_factory, demo_vmm):
    d = daemon_factory({("poll", "exit_grace_ms"): "0"})
    for round_ in range(5):
        vmm = demo_vmm(d.socket, vms=2, vcpus=2, name_prefix="it-zero%d-" % round_)
        names = [vm.name for vm in vmm.vms]
        harness.wait_for_vms(d, names)
        vmm.kill(signal.SIGKILL)
        harness.wait_vms_gone(d, names, timeout=3.0)
    assert d.proc.poll() is None, "kvmstatd died:\n" + d.log()
    assert harness.kvm_stats_links(d.worker_pid()) == {}


def test_unregistered_vms_count_against_max_sources_until_their_grace_ends(daemon_factory,
                                                                            kvm):
    # each VM is 1 fd; the worker keeps an unregistered VM's fd for the grace
    d = daemon_factory({("registration", "max_sources"): "3",
                        ("poll", "exit_grace_ms"): "60000"})
    with statsfd.create_vm(vcpus=0) as vm:
        for i in range(3):
            st, acc, reason = statsfd.register_vm(d.socket, 100 + i, vm.vm_stats_fd, [],
                                                  "it-churn-%d" % i)
            assert st == 0, reason
            st, _, reason = statsfd.register(d.socket, MSG_UNREGISTER_VM,
                                             body_unregister_vm(100 + i))
            assert st == 0, reason
        st, acc, reason = statsfd.register_vm(d.socket, 200, vm.vm_stats_fd, [], "it-churn-x")
        assert st == -errno.ENOSPC, (st, reason)
        assert "grace" in reason
    assert len(harness.kvm_stats_links(d.worker_pid())) == 3


def test_worker_death_brings_a_new_worker_not_an_exit(daemon_factory):
    # the full story (VMs handed over, counters, crash loop) is in
    # test_worker_restart.py
    d = daemon_factory()
    worker = d.worker_pid()

    os.kill(worker, signal.SIGKILL)
    harness.wait_until(lambda: d.proc.poll() is None and d.worker_pid() not in (None, worker),
                       5.0, 0.1, "a new worker")
    assert d.get("/-/healthy").status == 200
    d.stop(check=True)
