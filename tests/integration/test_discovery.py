"""Discovery: every [discovery] interval_s, and ~100 ms after a VMM
registers or exits, the helper scans /proc for processes holding KVM stats
fds it does not have, copies them (pidfd_getfd) and exports them like
registered ones, with source="discovered" in kvm_vm_info and the name
QEMU's -name gives, else kvm-<pid>. vCPU stats fds join the process's VM
only when it holds exactly one VM stats fd. A VM found both ways is one
source. The uid policy applies as it does to registrations.

The host may run other VMMs meanwhile (they would be discovered too), so
every assertion is about this test's own VMMs, by pid or by name."""

import os
import signal
import time

import pytest

import harness
import statsfd

INTERVAL_S = 1
# the harness turns discovery off unless a test asks for it
DISCOVERY = {("discovery", "enabled"): "yes", ("discovery", "interval_s"): str(INTERVAL_S)}


def with_discovery(overrides):
    ov = dict(DISCOVERY)
    ov.update(overrides)
    return ov


# a scan every second: found within that, plus a tick to poll and publish
FOUND_WITHIN = INTERVAL_S + 2.0


@pytest.fixture
def launcher(demo_vmm_bin, kvm):
    """launcher(socket, **DemoVmm kwargs) -> DemoVmm started without waiting
    for READY (it may be holding its VMs unregistered)."""
    made = []

    def launch(socket_path, **kw):
        v = harness.DemoVmm(socket_path, **kw)
        made.append(v)
        return v.launch()

    yield launch
    for v in reversed(made):
        v.stop()


def infos_of_pid(expo, pid):
    return harness.vm_infos(expo, vmm_pid=pid)


def wait_infos_of_pid(d, pid, count, timeout=FOUND_WITHIN, watch=None, **labels):
    def ok():
        e = watch.poll() if watch else d.scrape()
        infos = harness.vm_infos(e, vmm_pid=pid, **labels)
        return (e, infos) if len(infos) >= count else None
    try:
        return harness.wait_until(ok, timeout, 0.1, "%d kvm_vm_info of pid %d %r" % (
            count, pid, labels))
    except AssertionError as err:
        raise AssertionError("%s\n--- kvmstatd log ---\n%s" % (err, d.log()))


def discovered_total(expo):
    return expo.value("kvmstatd_vms_discovered_total")


def discovered_infos(expo):
    return {frozenset(i.items()) for i in harness.vm_infos(expo, source="discovered")}


def series_of(expo, name):
    return {k: v for k, v in expo.samples.items()
            if harness.from_stats_fds(k[0]) and dict(k[1]).get("vm") == name}


def _tids(pid):
    try:
        return [int(t) for t in os.listdir("/proc/%d/task" % pid)]
    except OSError:
        return []


class Watch:
    """Scrapes of one daemon that remember every discovered VM seen, and the
    discovery counter at the first one. Other VMMs on the host are
    discovered too; this tells their discoveries (and exits) from ours."""

    def __init__(self, d):
        self.d = d
        self.seen = set()
        self.last = self.poll()
        self.first_total = discovered_total(self.last)
        self.first_seen = set(self.seen)

    def poll(self):
        self.last = self.d.scrape()
        self.seen |= discovered_infos(self.last)
        return self.last

    def run(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.poll()
            time.sleep(0.1)
        return self.poll()

    def new_discoveries(self):
        """(counter increase, discovered VMs first seen since the start)."""
        return discovered_total(self.last) - self.first_total, self.seen - self.first_seen

    def foreign_exits(self, my_pids):
        """Discovered VMs of other processes that have exited: each exit
        makes the helper scan."""
        mine = {str(p) for p in my_pids}
        return sorted(dict(i)["vm"] for i in self.seen
                      if dict(i)["vmm_pid"] not in mine
                      and not harness.proc_alive(int(dict(i)["vmm_pid"])))


def test_unregistered_vmm_is_discovered_and_exported_with_its_vcpus(daemon_factory, demo_vmm):
    d = daemon_factory(DISCOVERY)
    watch = Watch(d)
    vmm = demo_vmm(d.socket, vms=1, vcpus=2, register=False, hz=500)
    assert vmm.vms[0].registered == "no", vmm.lines
    name = "kvm-%d" % vmm.pid
    e, infos = wait_infos_of_pid(d, vmm.pid, 1, watch=watch)
    assert infos == [{"vm": name, "kernel_id": "kvm-%d" % vmm.pid, "vmm_pid": str(vmm.pid),
                      "vmm_comm": "kvmstat-demo-vm", "source": "discovered"}], infos
    # both vCPUs joined the process's only VM, and they run
    harness.wait_until(lambda: sorted(harness.vcpu_exits(d.scrape(), name)) == ["0", "1"],
                       3.0, 0.1, "the vCPU series of %s" % name)
    a = harness.vcpu_exits(d.scrape(), name)
    harness.wait_until(lambda: all(v > a[c] for c, v in harness.vcpu_exits(d.scrape(),
                                                                            name).items()),
                       3.0, 0.1, "the discovered vCPUs' exits to rise")
    # exported exactly like a registered VM: the oracle's series, no more,
    # no less, and counters no higher than the kernel's a moment later
    e = d.scrape(le_key=statsfd.le_key)
    kinds = {}
    with harness.fd_copies(vmm.vms[0]) as fds:
        want = statsfd.expected_for_vm(fds[0], fds[1:], name, kinds)
    got = series_of(e, name)
    assert set(got) == set(want), "series of %s differ from the oracle's: missing %s, extra %s" % (
        name, sorted(set(want) - set(got))[:5], sorted(set(got) - set(want))[:5])
    for k, v in got.items():
        if kinds[k] == "counter":
            assert v <= want[k], "%r = %r, above the kernel's later %r" % (k, v, want[k])
    # the discovery counter counts this VM (and any other VM found meanwhile)
    watch.poll()
    counted, new = watch.new_discoveries()
    assert frozenset(infos[0].items()) in new
    assert counted == len(new), "kvmstatd_vms_discovered_total rose by %d for %r" % (
        counted, sorted(dict(i)["vm"] for i in new))
    # the helper holds a copy of each of its fds (for a next worker), so does the worker
    for pid in (d.proc.pid, d.worker_pid()):
        ids = harness.stats_ids_held(pid)
        assert "kvm-%d" % vmm.pid in ids, "pid %d lacks the VM's stats fd: %r" % (pid, ids)
        vcpus = sorted(i.split("/")[1] for i in ids if "/" in i
                       and int(i[4:].split("/")[0]) in _tids(vmm.pid))
        assert vcpus == ["vcpu-0", "vcpu-1"], "pid %d holds %r of the VM's vCPUs" % (pid, vcpus)


def test_discovered_vm_is_named_by_qemu_name_on_the_command_line(daemon_factory, demo_vmm):
    d = daemon_factory(DISCOVERY)
    vmm = demo_vmm(d.socket, vms=1, vcpus=1, register=False, qemu_name="it-qemu-guest")
    e, infos = wait_infos_of_pid(d, vmm.pid, 1)
    assert [(i["vm"], i["source"]) for i in infos] == [("it-qemu-guest", "discovered")], infos
    assert not harness.vm_infos(e, vm="kvm-%d" % vmm.pid)


def test_vmm_registering_after_discovery_stays_one_source_with_the_discovered_name(
        daemon_factory, launcher):
    d = daemon_factory(DISCOVERY)
    delay_ms = 2500
    vmm = launcher(d.socket, vms=1, vcpus=2, name_prefix="it-late-", hz=500,
                   register_delay_ms=delay_ms)
    t0 = time.monotonic()
    name = "kvm-%d" % vmm.pid
    e, infos = wait_infos_of_pid(d, vmm.pid, 1, timeout=delay_ms / 1000.0 - 0.3,
                                 source="discovered")
    assert time.monotonic() - t0 < delay_ms / 1000.0, "too slow to see it before it registered"
    assert [i["vm"] for i in infos] == [name], infos
    harness.wait_until(lambda: sorted(harness.vcpu_exits(d.scrape(), name)) == ["0", "1"],
                       3.0, 0.1, "the discovered vCPUs")
    watch = Watch(d)
    rejected_before = watch.last.total("kvmstatd_registrations_rejected_total")

    # now it registers: accepted, and it is the same source
    vmm.wait_ready(timeout=10.0)
    assert [v.registered for v in vmm.vms] == ["yes"], vmm.lines
    assert vmm.vms[0].name == "it-late-0"
    # a scan and polls later (the parser refuses duplicate series)
    e = watch.run(3 * harness.POLL_INTERVAL_MS / 1000.0 + INTERVAL_S)
    assert infos_of_pid(e, vmm.pid) == infos, "kvm_vm_info changed: %r -> %r" % (
        infos, infos_of_pid(e, vmm.pid))
    assert not harness.vm_infos(e, vm="it-late-0"), "the registered name made a second VM"
    assert not series_of(e, "it-late-0")
    assert sorted(harness.vcpu_exits(e, name)) == ["0", "1"]
    counted, new = watch.new_discoveries()
    assert counted == len(new), "the registration counted as a discovery (+%d, %r new)" % (
        counted, sorted(dict(i)["vm"] for i in new))
    assert e.total("kvmstatd_registrations_rejected_total") == rejected_before
    # one source: each fd of the VM held once by the worker
    ids = [i for i in harness.stats_ids_held(d.worker_pid())
           if i == name or i.startswith(tuple("kvm-%d/" % t for t in _tids(vmm.pid)))]
    assert sorted(ids).count(name) == 1, ids
    assert len(ids) == 3, "the worker holds %r of this VM, want the VM and 2 vCPUs once" % ids


def test_registered_vmm_is_not_discovered_again(daemon_factory, demo_vmm):
    d = daemon_factory(DISCOVERY)
    watch = Watch(d)
    vmm = demo_vmm(d.socket, vms=1, vcpus=1, name_prefix="it-regfirst-")
    assert vmm.vms[0].registered == "yes", vmm.lines
    harness.wait_for_vms(d, ["it-regfirst-0"])
    e = watch.run(INTERVAL_S + 0.5)  # at least one scan after the registration
    assert [(i["vm"], i["source"]) for i in infos_of_pid(e, vmm.pid)] == [
        ("it-regfirst-0", "registered")]
    counted, new = watch.new_discoveries()
    assert not [i for i in new if dict(i)["vmm_pid"] == str(vmm.pid)]
    assert counted == len(new), "kvmstatd_vms_discovered_total rose by %d for %r" % (
        counted, sorted(dict(i)["vm"] for i in new))


def test_vmm_with_two_vms_gets_both_discovered_without_vcpus(daemon_factory, demo_vmm):
    d = daemon_factory(DISCOVERY)
    vmm = demo_vmm(d.socket, vms=2, vcpus=1, register=False, hz=500)
    e, infos = wait_infos_of_pid(d, vmm.pid, 2)
    names = sorted(i["vm"] for i in infos)
    assert len(set(names)) == 2, names
    assert "kvm-%d" % vmm.pid in names, names
    assert all(n == "kvm-%d" % vmm.pid or n.startswith("kvm-%d-" % vmm.pid) for n in names), names
    assert all(i["source"] == "discovered" for i in infos), infos
    # vCPU fds cannot be told apart between two VMs: left out, scan after scan
    time.sleep(INTERVAL_S + 0.5)
    e = d.scrape()
    assert len(infos_of_pid(e, vmm.pid)) == 2
    for n in names:
        assert not harness.vcpu_exits(e, n), "vCPUs given to %s: %r" % (n, harness.vcpu_exits(e, n))
        assert series_of(e, n), "no VM series for %s" % n
    held = harness.stats_ids_held(d.worker_pid())
    assert not [i for i in held if "/vcpu-" in i and int(i[4:].split("/")[0]) in _tids(vmm.pid)]


def test_discovered_series_vanish_after_vmm_exit_and_grace(daemon_factory, demo_vmm):
    grace_ms = 1000
    d = daemon_factory(with_discovery({("poll", "exit_grace_ms"): str(grace_ms)}))
    vmm = demo_vmm(d.socket, vms=1, vcpus=2, register=False, hz=500)
    pid = vmm.pid
    name = "kvm-%d" % pid
    wait_infos_of_pid(d, pid, 1)
    harness.wait_until(lambda: sorted(harness.vcpu_exits(d.scrape(), name)) == ["0", "1"],
                       3.0, 0.1, "the discovered vCPUs")
    watch = Watch(d)
    exited_before = watch.last.value("kvmstatd_vms_exited_total")
    vmm.kill(signal.SIGKILL)
    killed_at = time.monotonic()
    # within the grace period they stay, like a registered VM's
    time.sleep(2 * harness.POLL_INTERVAL_MS / 1000.0)
    early = d.scrape()
    if time.monotonic() - killed_at < grace_ms / 1000.0 - 0.1:
        assert infos_of_pid(early, pid), "series gone before exit_grace_ms"
        assert sorted(harness.vcpu_exits(early, name)) == ["0", "1"]
    e = harness.wait_vms_gone(d, [name], timeout=grace_ms / 1000.0 + 3.0)
    gone_after = time.monotonic() - killed_at
    assert gone_after >= grace_ms / 1000.0 - 2.5 * harness.POLL_INTERVAL_MS / 1000.0, (
        "series vanished %.2fs after the kill, before exit_grace_ms" % gone_after)
    assert not infos_of_pid(e, pid)
    watch.poll()
    exited = e.value("kvmstatd_vms_exited_total") - exited_before
    assert 1 <= exited <= 1 + len(watch.foreign_exits([pid])), (
        "kvmstatd_vms_exited_total rose by %d" % exited)
    # no fd of the dead VM is kept (a held stats fd pins its kernel memory)
    for holder in (d.proc.pid, d.worker_pid()):
        harness.wait_until(lambda: not [i for i in harness.stats_ids_held(holder)
                                        if i == name or i.startswith("kvm-%d/" % pid)],
                           2.0, 0.1, "pid %d to close the dead VM's stats fds" % holder)
    # and a later scan does not bring it back
    time.sleep(INTERVAL_S + 0.3)
    assert not infos_of_pid(d.scrape(), pid)


def test_discovery_applies_the_uid_policy(daemon_factory, demo_vmm):
    """allow_users without root: root's unregistered VMM is not exported
    either; with root listed it is."""
    other = harness.worker_user().pw_name
    d = daemon_factory(with_discovery({("registration", "allow_users"): other}))
    refused = demo_vmm(d.socket, vms=1, vcpus=1, register=False)
    d2 = daemon_factory(with_discovery({("registration", "allow_users"): "%s, root" % other}))
    wait_infos_of_pid(d2, refused.pid, 1, source="discovered")
    time.sleep(INTERVAL_S + 0.5)  # d has scanned since, at least once
    e = d.scrape()
    assert not infos_of_pid(e, refused.pid), "a VMM of a uid not allowed was discovered"
    assert not [i for i in harness.stats_ids_held(d.proc.pid) if i == "kvm-%d" % refused.pid]


def test_no_discovery_when_disabled(daemon_factory, demo_vmm):
    d = daemon_factory({("discovery", "enabled"): "no"})
    vmm = demo_vmm(d.socket, vms=1, vcpus=1, register=False)
    demo_vmm(d.socket, vms=1, vcpus=1, name_prefix="it-nodisc-")  # would trigger a scan
    harness.wait_for_vms(d, ["it-nodisc-0"])
    time.sleep(1.0)
    e = d.scrape()
    assert not infos_of_pid(e, vmm.pid)
    assert discovered_total(e) == 0


def test_registration_and_exit_trigger_a_scan_without_periodic_scans(daemon_factory, demo_vmm):
    """interval_s = 0: no periodic scans (one at start-up); a scan still
    follows ~100 ms after a VMM registers or exits."""
    d = daemon_factory(with_discovery({("discovery", "interval_s"): "0"}))
    time.sleep(0.5)  # after the scan at start-up
    watch = Watch(d)
    quiet = demo_vmm(d.socket, vms=1, vcpus=1, register=False)
    e = watch.run(1.0)
    # (the exit of another VMM on the host that this daemon discovered
    # would be a reason: then the quiet period proves nothing)
    if not watch.foreign_exits([quiet.pid]):
        assert not infos_of_pid(e, quiet.pid), "scanned without a reason"
    # a registration: a scan follows
    t0 = time.monotonic()
    reg = demo_vmm(d.socket, vms=1, vcpus=1, name_prefix="it-trigger-")
    wait_infos_of_pid(d, quiet.pid, 1, timeout=2.0, source="discovered")
    assert time.monotonic() - t0 < 2.0
    # an exit: a scan follows too
    quiet2 = demo_vmm(d.socket, vms=1, vcpus=1, register=False)
    watch = Watch(d)
    e = watch.run(0.5)
    if not watch.foreign_exits([quiet.pid, quiet2.pid, reg.pid]):
        assert not infos_of_pid(e, quiet2.pid), "scanned without a reason"
    reg.kill(signal.SIGKILL)
    wait_infos_of_pid(d, quiet2.pid, 1, timeout=2.0, source="discovered")


def test_a_vmm_that_registered_once_is_left_to_register_its_own_vms(daemon_factory,
                                                                     demo_vmm):
    """This test process as a VMM: it registers a VM with a vCPU,
    unregisters it and keeps its fds, then makes a VM it never registers.
    Discovery leaves both alone: a VMM that registers names its own VMs (a
    scan between its KVM_CREATE_VM and its REGISTER_VM must not take one
    first), and an unregistered VM stays unregistered. Processes holding two
    VMs' fds without registering:
    test_vmm_with_two_vms_gets_both_discovered_without_vcpus."""
    d = daemon_factory(with_discovery({("discovery", "interval_s"): "0",
                                       ("poll", "exit_grace_ms"): "300"}))
    time.sleep(0.5)  # after the scan at start-up: from now on only triggered scans
    with statsfd.create_vm(vcpus=1) as kept:
        st, acc, reason = statsfd.register_vm(d.socket, 7, kept.vm_stats_fd,
                                              kept.vcpu_stats_fds, "it-unreg")
        assert (st, acc) == (0, 2), reason
        harness.wait_for_vms(d, ["it-unreg"])
        st, acc, reason = statsfd.register(d.socket, statsfd.MSG_UNREGISTER_VM,
                                           statsfd.body_unregister_vm(7))
        assert st == 0, reason
        harness.wait_vms_gone(d, ["it-unreg"], timeout=3.0)
        with statsfd.create_vm(vcpus=0):  # never registered
            # a registration elsewhere: a scan follows, and finds that VMM
            vmm = demo_vmm(d.socket, vms=1, vcpus=1, name_prefix="it-unreg-trigger-")
            harness.wait_for_vms(d, [vmm.vms[0].name])
            time.sleep(0.5)  # the scan and a poll are surely done
            e = d.scrape()
            assert not infos_of_pid(e, os.getpid()), infos_of_pid(e, os.getpid())


def kernel_lends_stats_fds():
    """Our own answer, not the daemon's: does a forked child get a stats fd
    (or EACCES) for its parent's VM, or EIO as on a stock kernel?"""
    import errno
    import fcntl
    kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    vm = fcntl.ioctl(kvm, statsfd.KVM_CREATE_VM, 0)
    try:
        pid = os.fork()
        if pid == 0:
            try:
                fcntl.ioctl(vm, statsfd.KVM_GET_STATS_FD, 0)
                os._exit(0)
            except OSError as e:
                os._exit(1 if e.errno == errno.EACCES else 2 if e.errno == errno.EIO else 3)
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    finally:
        os.close(vm)
        os.close(kvm)
    assert code in (0, 1, 2), "KVM_GET_STATS_FD from a child: neither a fd, EACCES nor EIO"
    return code != 2


def test_a_vmm_with_only_vm_and_vcpu_fds_is_read_through_them_only_where_the_kernel_lends(
        daemon_factory, kvm):
    """An unmodified VMM (no shim, no stats fd of its own): on a kernel with
    the kvm-stats-observer series the helper borrows its VM and vCPU fds,
    makes stats fds of them (source="borrowed") and closes the borrowed fds
    at once; on a stock kernel it says so once and leaves the VMM out."""
    import qemu
    lends = kernel_lends_stats_fds()
    d = daemon_factory(DISCOVERY)
    vmm = qemu.HeldVmm(d.socket, vcpus=2, env={"LD_PRELOAD": ""})
    try:
        links = harness.fd_links(vmm.pid).values()
        assert "anon_inode:kvm-vm" in links and not any("stats" in l for l in links), links
        name = "kvm-%d" % vmm.pid
        if lends:
            e, infos = wait_infos_of_pid(d, vmm.pid, 1)
            assert infos[0]["source"] == "borrowed", infos
            harness.wait_until(lambda: sorted(harness.vcpu_exits(d.scrape(), name)) ==
                               ["0", "1"], 3.0, 0.1, "the borrowed vCPUs of %s" % name)
            assert "gives stats fds to an observer" in d.log(None)
        else:
            time.sleep(FOUND_WITHIN)
            assert not infos_of_pid(d.scrape(), vmm.pid)
            log = d.log(None)
            assert log.count("answers EIO to a borrowed VM fd") == 1, log
        # borrowed or refused, no VM or vCPU fd of the VMM's stays with us
        for pid in (d.proc.pid, d.worker_pid()):
            kept = [l for l in harness.fd_links(pid).values()
                    if l == "anon_inode:kvm-vm" or l.startswith("anon_inode:kvm-vcpu:")]
            assert not kept, "pid %d holds %r" % (pid, kept)
    finally:
        vmm.stop()


def test_borrowing_switched_off_leaves_such_a_vmm_out_without_asking(daemon_factory, kvm):
    import qemu
    d = daemon_factory(with_discovery({("discovery", "borrow"): "no"}))
    vmm = qemu.HeldVmm(d.socket, vcpus=1, env={"LD_PRELOAD": ""})
    try:
        time.sleep(FOUND_WITHIN)
        assert not infos_of_pid(d.scrape(), vmm.pid)
        assert "borrowed VM fd" not in d.log(None) and "observer" not in d.log(None)
    finally:
        vmm.stop()
