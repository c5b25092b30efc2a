"""The other ways to read KVM statistics, measured on the bench's VMs.

debugfs      one open/read/close per stat file under /sys/kernel/debug/kvm/
             <pid>-<fd>/ (what kvm_stat and PCP's pmdakvm do). Under kernel
             lockdown most files refuse to open: we report how many do, the
             cost per file that did, and that cost projected to all files.
query_stats  QEMU's QMP `query-stats` (vcpu + vm targets) on real QEMU
             guests started with the preload shim, so kvmstatd polls the
             same guests; the vCPU exits each query forces are read from the
             vCPUs' own `signal_exits` (through kvmstatd's page, which the
             integration tests check against an independent reader).
"""
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

DEBUGFS = "/sys/kernel/debug"
NOT_A_STAT = {"mmu_rmaps_stat"}  # a per-VM table, not one statistic


def debugfs_mounted():
    if os.path.isdir(os.path.join(DEBUGFS, "kvm")):
        return True
    subprocess.run(["mount", "-t", "debugfs", "none", DEBUGFS], stderr=subprocess.DEVNULL)
    return os.path.isdir(os.path.join(DEBUGFS, "kvm"))


def _vm_dirs(pids):
    top = os.path.join(DEBUGFS, "kvm")
    want = {str(p) for p in pids}
    return [os.path.join(top, d) for d in sorted(os.listdir(top))
            if "-" in d and d.split("-", 1)[0] in want]


def debugfs(pids, rounds, pause_ms):
    """Readable/total stat files of these VMMs' VMs, ns per read file (C
    reader, one round per pause_ms like a poller, median over rounds of the
    per-file mean) and that cost projected to every file."""
    if not debugfs_mounted():
        return {"available": False}
    dirs = _vm_dirs(pids)
    files = [os.path.join(d, f) for d in dirs for f in sorted(os.listdir(d))
             if f not in NOT_A_STAT and os.path.isfile(os.path.join(d, f))]
    out = subprocess.run([os.path.join(ROOT, "build", "bench-debugfs"), str(rounds),
                          str(pause_ms)],
                         input="\n".join(files) + "\n", capture_output=True, text=True,
                         check=True).stdout
    r = json.loads(out)
    ns = statistics.median(x["ok_ns"] for x in r["rounds"])
    return {"available": True, "vms": len(dirs), "files": len(files), "readable": r["readable"],
            "ns_per_file": ns, "projected_ns": ns * len(files),
            "refused_ns_per_file": statistics.median(x["refused_ns"] for x in r["rounds"])}


def qemu_guests(n, vcpus, socket_path):
    """n QEMU guests of vcpus vCPUs with the shim (registering with the
    kvmstatd on socket_path). Returns the started Qemu objects."""
    import qemu
    if qemu.qemu_usable():
        return []
    guests = []
    try:
        for i in range(n):
            g = qemu.Qemu(socket_path, name_args=("-name", "guest=q%d,debug-threads=on" % i),
                          smp=vcpus, debug=False)
            guests.append(g)
            g.start(timeout=60)
    except BaseException:
        stop_guests(guests)
        raise
    return guests


def stop_guests(guests):
    for g in guests:
        g.stop()


def query_stats_round(guests):
    """ns for one query-stats (vcpu, then vm) of every guest, back to back."""
    t0 = time.perf_counter_ns()
    for g in guests:
        g.qmp.cmd("query-stats", target="vcpu", providers=[{"provider": "kvm"}])
        g.qmp.cmd("query-stats", target="vm", providers=[{"provider": "kvm"}])
    return time.perf_counter_ns() - t0
