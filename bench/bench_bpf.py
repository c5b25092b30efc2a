#!/usr/bin/python3
"""make bench-bpf: what exit telemetry costs (build/bench-bpf does the work).

Prints the per-exit cost of the BPF programs as the ratio of a tight OUT
loop's exits per second with them detached and attached (alternating
rounds in one run, one vCPU pinned to CPU 0), and the worker's cost to
read a slot array of BENCH_BPF_VMS x BENCH_BPF_VCPUS (default 4000 x 4).
A harness that prints figures, not a test. BENCH_BPF_ROUNDS (default 5).
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(HERE, "..", os.environ.get("KVMSTATD_BUILD_DIR", "build"), "bench-bpf")


def main():
    args = [BIN, os.environ.get("BENCH_BPF_ROUNDS", "5"),
            os.environ.get("BENCH_BPF_VMS", "4000"), os.environ.get("BENCH_BPF_VCPUS", "4")]
    rc = subprocess.run(args).returncode
    if rc == 77:
        print("bench-bpf: part of it was skipped (see above)")
        rc = 0
    sys.exit(rc)


if __name__ == "__main__":
    main()
