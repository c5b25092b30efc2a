/* SPDX-License-Identifier: MIT */
/*
 * bench-bpf - what the exit telemetry costs, measured in one run:
 *
 *  1. exits per second of a tight OUT loop on one vCPU pinned to one CPU,
 *     with the BPF programs detached and attached, alternating rounds, as
 *     a ratio (the per-exit cost in ns follows from it);
 *  2. the worker's cost to read a slot array of N vCPUs (default 4000 x 4)
 *     through the same code the worker runs (bpfview.c): the tick (check
 *     every join), the first join (scan), and reading every slot's parts
 *     as a scrape does.
 *
 * Needs root (CAP_BPF, CAP_PERFMON) and /dev/kvm; says so and exits 77
 * otherwise. Not a test: it prints figures.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bpf_layout.h"
#include "bpfview.h"
#include "kvmexit.skel.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct loop {
	int vcpu;
	struct kvm_run *run;
};

/* Real mode at 0x1000: out 0x10, al; jmp back. Every iteration is one exit. */
static int loop_setup(struct loop *l)
{
	static const unsigned char code[] = { 0xe6, 0x10, 0xeb, 0xfc };
	struct kvm_userspace_memory_region mr = { .memory_size = 0x10000 };
	struct kvm_sregs sr;
	struct kvm_regs regs = { .rip = 0x1000, .rflags = 2 };
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm, size;
	void *mem;

	if (kvm < 0 || (vm = ioctl(kvm, KVM_CREATE_VM, 0)) < 0)
		return -errno;
	mem = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	memcpy((char *)mem + 0x1000, code, sizeof(code));
	mr.userspace_addr = (unsigned long)mem;
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mr) < 0 ||
	    (l->vcpu = ioctl(vm, KVM_CREATE_VCPU, 0)) < 0 ||
	    (size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0)) <= 0)
		return -errno;
	l->run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, l->vcpu, 0);
	if (l->run == MAP_FAILED || ioctl(l->vcpu, KVM_GET_SREGS, &sr) < 0)
		return -errno;
	sr.cs.base = 0;
	sr.cs.selector = 0;
	if (ioctl(l->vcpu, KVM_SET_SREGS, &sr) < 0 || ioctl(l->vcpu, KVM_SET_REGS, &regs) < 0)
		return -errno;
	return 0;
}

/* Exits per second over `seconds`. */
static double loop_rate(struct loop *l, double seconds)
{
	double t0 = now_s(), t;
	unsigned long n = 0;

	do {
		for (int i = 0; i < 1000; i++) {
			if (ioctl(l->vcpu, KVM_RUN, 0) < 0 || l->run->exit_reason != KVM_EXIT_IO)
				return -1;
			n++;
		}
		t = now_s() - t0;
	} while (t < seconds);
	return (double)n / t;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Exits the BPF side counted for this thread: proof that the "on" rounds ran it. */
static __u64 counted(struct kvmexit *skel)
{
	int fd = bpf_map__fd(skel->maps.slots);
	struct kx_slot *s = malloc(sizeof(*s));
	__u64 n = 0;

	for (__u32 k = 0; s && k < KX_SLOTS_DEFAULT; k++)
		if (bpf_map_lookup_elem(fd, &k, s) == 0 && s->owner_tid == (__u32)gettid())
			n += s->c.uexit[KVM_EXIT_IO];
	free(s);
	return n;
}

static int bench_exits(int rounds, double seconds)
{
	struct kvmexit *skel = kvmexit__open_and_load();
	double off[64], on[64];
	struct loop l;
	cpu_set_t cpu;
	int rc;

	if (!skel) {
		printf("exit loop: BPF program does not load here (%s): skipped\n",
		       strerror(errno));
		return 77;
	}
	CPU_ZERO(&cpu);
	CPU_SET(0, &cpu);
	sched_setaffinity(0, sizeof(cpu), &cpu); /* the vCPU thread, pinned */
	if ((rc = loop_setup(&l)) < 0) {
		printf("exit loop: no usable /dev/kvm (%s): skipped\n", strerror(-rc));
		kvmexit__destroy(skel);
		return 77;
	}
	loop_rate(&l, 0.3); /* warm up */
	for (int r = 0; r < rounds; r++) {
		off[r] = loop_rate(&l, seconds);
		if (kvmexit__attach(skel) < 0)
			return 1;
		on[r] = loop_rate(&l, seconds);
		kvmexit__detach(skel);
	}
	printf("  (BPF counted %llu exits of this vCPU thread: the programs did run)\n",
	       (unsigned long long)counted(skel));
	qsort(off, (size_t)rounds, sizeof(double), cmp_double);
	qsort(on, (size_t)rounds, sizeof(double), cmp_double);
	printf("exit loop (1 vCPU pinned to CPU 0, OUT per iteration, %d rounds of %.1f s each):\n",
	       rounds, seconds);
	printf("  BPF off: %.0f exits/s (%.3f us each)\n", off[rounds / 2], 1e6 / off[rounds / 2]);
	printf("  BPF on:  %.0f exits/s (%.3f us each)\n", on[rounds / 2], 1e6 / on[rounds / 2]);
	printf("  on/off time per exit: %.3f (+%.1f%%, +%.0f ns per exit); target <= +6%%\n",
	       off[rounds / 2] / on[rounds / 2], 100.0 * (off[rounds / 2] / on[rounds / 2] - 1),
	       1e9 / on[rounds / 2] - 1e9 / off[rounds / 2]);
	kvmexit__destroy(skel);
	return 0;
}

/* A plain (not frozen, writable) map of the same layout, filled like busy vCPUs. */
static int bench_read(unsigned vms, unsigned vcpus)
{
	unsigned n = vms * vcpus;
	size_t len = ((size_t)n * sizeof(struct kx_slot) + 4095) / 4096 * 4096;
	struct bpf_map_create_opts o = { .sz = sizeof(o), .map_flags = BPF_F_MMAPABLE };
	int fd =
	    bpf_map_create(BPF_MAP_TYPE_ARRAY, "bench_slots", 4, sizeof(struct kx_slot), n, &o);
	int mfd =
	    bpf_map_create(BPF_MAP_TYPE_ARRAY, "bench_meta", 4, sizeof(struct kx_meta), 1, &o);
	struct vm_meta *metas = calloc(vms, sizeof(*metas));
	struct source *src = calloc(n, sizeof(*src));
	struct source **ptr = calloc(n, sizeof(*ptr));
	struct kx_slot *w = MAP_FAILED;
	struct bpfview *view = NULL;
	double t0, tick, scan, readall;
	struct kx_counts c;
	int rc = 1;

	if (fd < 0 || mfd < 0 || !metas || !src || !ptr)
		goto out;
	w = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (w == MAP_FAILED)
		goto out;
	for (unsigned i = 0; i < n; i++) {
		struct kx_slot *s = &w[(i * 7919u) % n]; /* scattered, as the BPF side hashes */

		s->seq = 2;
		s->owner_tid = 1000 + i;
		snprintf(s->vm_id, KX_ID_LEN, "kvm-%u", 100000 + i / vcpus);
		snprintf(s->vcpu_id, KX_ID_LEN, "kvm-%u/vcpu-%u", 200000 + i, i % vcpus);
		s->c.uexit_mask = 1u << 2 | 1u << 10;
		s->c.uexit[2] = 1000 + i;
		s->c.uexit[10] = 3;
		s->c.n_hw = 3;
		s->c.n_hist = 2;
		s->c.hist[0].kind = KX_KIND_USER;
		s->c.hist[0].reason = 2;
		s->c.hist[0].bucket[5] = 1000;
		snprintf(metas[i / vcpus].kernel_id, sizeof(metas[0].kernel_id), "kvm-%u",
			 100000 + i / vcpus);
		src[i].vm = &metas[i / vcpus];
		src[i].vcpu = (int)(i % vcpus);
		snprintf(src[i].id, sizeof(src[i].id), "kvm-%u/vcpu-%u", 200000 + i, i % vcpus);
		ptr[i] = &src[i];
	}
	if (bpfview_new(&view) < 0 || bpfview_map(view, fd, mfd, n, sizeof(struct kx_slot)) < 0)
		goto out;
	t0 = now_s();
	bpfview_join(view, ptr, n, true);
	scan = now_s() - t0;
	for (unsigned i = 0; i < n; i++)
		if (!atomic_load(&src[i].bpf_join)) {
			printf("slot read: source %u not joined\n", i);
			goto out;
		}
	t0 = now_s();
	for (int r = 0; r < 100; r++)
		bpfview_join(view, ptr, n, false);
	tick = (now_s() - t0) / 100;
	t0 = now_s();
	for (int r = 0; r < 20; r++)
		for (unsigned i = 0; i < n; i++)
			bpfview_read(view, &src[i], 0, sizeof(c), &c);
	readall = (now_s() - t0) / 20;
	printf("slot array, %u VMs x %u vCPUs = %u slots of %zu bytes (%.1f MiB):\n", vms, vcpus, n,
	       sizeof(struct kx_slot), (double)len / 1048576);
	printf("  worker tick (check every join):   %.3f ms; target <= 1 ms\n", tick * 1e3);
	printf("  first join (scan all slots):      %.3f ms (only when slots are claimed)\n",
	       scan * 1e3);
	printf("  read every slot whole (a scrape): %.3f ms\n", readall * 1e3);
	rc = 0;
out:
	bpfview_free(view);
	if (w != MAP_FAILED)
		munmap(w, len);
	if (fd >= 0)
		close(fd);
	if (mfd >= 0)
		close(mfd);
	free(metas);
	free(src);
	free(ptr);
	return rc;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	unsigned vms = argc > 2 ? (unsigned)atoi(argv[2]) : 4000;
	unsigned vcpus = argc > 3 ? (unsigned)atoi(argv[3]) : 4;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (rounds < 1 || rounds > 64 || !vms || !vcpus || vms * vcpus > 65536) {
		fprintf(stderr, "usage: bench-bpf [ROUNDS (1..64)] [VMS] [VCPUS]\n");
		return 2;
	}
	rc = bench_exits(rounds, 1.0);
	if (rc == 1)
		return 1;
	return bench_read(vms, vcpus) ? 1 : rc;
}
