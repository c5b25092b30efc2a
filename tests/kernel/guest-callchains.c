// SPDX-License-Identifier: GPL-2.0
/*
 * guest-callchains: the in-guest test of kernel-patches/guest-callchains.
 *
 * Runs as root inside the TCG guest of scripts/kernel-check.sh, where
 * /dev/kvm works (nested SVM). Built static. It runs a guest of its own in
 * several scenarios and samples the vCPU thread meanwhile with a cpu-clock
 * event (TCG has no PMU; the hrtimer interrupt is taken right after a
 * VM-Exit, so samples are guest samples) asking for PERF_SAMPLE_CALLCHAIN,
 * reading the ring buffer itself.
 *
 * Scenarios (each about SAMPLE_MS of sampling):
 *   good64   64-bit long mode: main -> a -> b -> c, each "push rbp; mov
 *            rbp, rsp; call", c spins counting; return addresses known.
 *   good32   the same in 32-bit protected mode with 32-bit paging (4 MiB
 *            page).
 *   cycle    rbp points at a two-record cycle (A -> B -> A).
 *   unmapped a record whose caller pointer is a guest address with no
 *            page table entry.
 *   noslot   a record whose caller pointer maps to guest physical memory
 *            that no memslot backs.
 *   garbage  a non-canonical, misaligned rbp.
 *
 * For each, it prints the most common callchain of the guest samples in
 * symbolic form ("GK" = PERF_CONTEXT_GUEST_KERNEL, "K", "U" the host's
 * markers, "ip" = the sample's own IP, known return addresses by the
 * function they return into, anything else in hex) and whether at least
 * 90 % of the guest samples have exactly that chain; then whether the guest
 * kept running undisturbed (its counter moved, KVM_RUN ended only by our
 * signal) and whether page table entries only the sampler's walk could
 * touch still have their accessed bits clear. Last, a rough figure (KINFO)
 * of what a callchain costs per guest sample. Lines: "KCHECK key=value",
 * "KINFO ..." for figures, "KCHECK-DONE" at the end.
 *
 * guest-callchains --hold SCENARIO SECONDS MAPFILE runs one scenario's
 * guest (good64 or good32) for SECONDS without sampling it, for another
 * sampler (kvmstat profile in the lab on the patched kernel): it writes
 * the guest's functions to MAPFILE as a System.map ("ADDR t NAME", c being
 * the innermost, spinning one), prints "HOLD tid=TID" once the vCPU thread
 * runs, and exits 0 if the guest ran undisturbed all along.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "kcheck.h"

#define GUEST_MEM	0x200000	/* 2 MiB at guest physical 0 */
#define PML4		0x1000
#define PDPT		0x2000
#define PD64		0x3000
#define PT64		0x4000		/* maps guest virtual 0x200000.. */
#define PD32		0x5000
#define CODE64		0x10000
#define COUNTERS	0x11000
#define CODE32		0x20000
#define FRAMES		0x70000		/* crafted frame records, identity mapped */
#define FRAMES_HI	0x71000		/* mapped only at guest virtual 0x200000 */
#define STACK64		0x80000
#define STACK32		0x90000
#define NOSLOT_GPA	0x4000000	/* no memslot here */

#define PTE_P		0x1ull
#define PTE_RW		0x2ull
#define PTE_A		0x20ull
#define PTE_PS		0x80ull

#define SAMPLE_MS	600
#define RING_PAGES	128

/* A named address: a return address into a known function. */
struct name {
	uint64_t addr;
	const char *name;
};

struct scenario {
	const char *key;
	int mode32;
	uint64_t rip, rsp, rbp;
	uint64_t spin_lo, spin_hi;	/* the innermost loop: where IPs fall */
	uint64_t counter;		/* guest physical address of its counter */
};

struct vm {
	int kvm, vm, vcpu;
	struct kvm_run *run;
	uint8_t *mem;
	struct name names[16];
	int nnames;
};

struct runner {
	struct vm *vm;
	const struct scenario *sc;
	volatile pid_t tid;
	volatile int started;
	int err;		/* errno of KVM_RUN: EINTR is ours */
	unsigned int exit_reason;
};

static void put64(struct vm *v, uint64_t gpa, uint64_t val)
{
	memcpy(v->mem + gpa, &val, 8);
}

static void put32(struct vm *v, uint64_t gpa, uint32_t val)
{
	memcpy(v->mem + gpa, &val, 4);
}

static uint64_t get64(struct vm *v, uint64_t gpa)
{
	uint64_t val;

	memcpy(&val, v->mem + gpa, 8);
	return val;
}

static void add_name(struct vm *v, uint64_t addr, const char *name)
{
	v->names[v->nnames].addr = addr;
	v->names[v->nnames].name = name;
	v->nnames++;
}

/*
 * "push rbp; mov rbp, rsp; call callee; jmp $" at addr; the return address
 * of the call is named after the function it returns into.
 */
static void emit_caller(struct vm *v, uint64_t addr, uint64_t callee, int mode32,
			const char *name)
{
	uint8_t *p = v->mem + addr;
	uint64_t ret;
	int32_t rel;

	*p++ = 0x55;			/* push rbp / push ebp */
	if (!mode32)
		*p++ = 0x48;		/* REX.W */
	*p++ = 0x89;			/* mov rbp, rsp */
	*p++ = 0xe5;
	*p++ = 0xe8;			/* call rel32 */
	ret = addr + (uint64_t)(p - (v->mem + addr)) + 4;
	rel = (int32_t)(callee - ret);
	memcpy(p, &rel, 4);
	p += 4;
	*p++ = 0xeb;			/* jmp $ (never reached) */
	*p++ = 0xfe;
	add_name(v, ret, name);
}

/*
 * The innermost function: "push rbp; mov rbp, rsp", then a loop that
 * increments the counter at gpa `counter` forever. Returns the loop's
 * address; the loop is 9 (64-bit) or 8 (32-bit) bytes long.
 */
static uint64_t emit_spinner(struct vm *v, uint64_t addr, uint64_t counter, int mode32)
{
	uint8_t *p = v->mem + addr;
	uint64_t loop;
	int32_t disp;

	*p++ = 0x55;
	if (!mode32)
		*p++ = 0x48;
	*p++ = 0x89;
	*p++ = 0xe5;
	loop = addr + (uint64_t)(p - (v->mem + addr));
	if (!mode32) {
		/* inc qword [rip + disp32]: 48 ff 05 disp32 (7 bytes) */
		*p++ = 0x48;
		*p++ = 0xff;
		*p++ = 0x05;
		disp = (int32_t)(counter - (loop + 7));
		memcpy(p, &disp, 4);
		p += 4;
	} else {
		/* inc dword [abs32]: ff 05 addr32 (6 bytes) */
		uint32_t abs = (uint32_t)counter;

		*p++ = 0xff;
		*p++ = 0x05;
		memcpy(p, &abs, 4);
		p += 4;
	}
	*p = 0xeb;			/* jmp loop */
	p[1] = (uint8_t)(int8_t)(loop - (addr + (uint64_t)(p + 2 - (v->mem + addr))));
	return loop;
}

static void setup_memory(struct vm *v, struct scenario *sc, int nsc)
{
	uint64_t loop64, loop32;
	int i;

	/* 64-bit: PML4 -> PDPT -> PD; PD[0] a 2 MiB identity page, PD[1] a PT. */
	put64(v, PML4, PDPT | PTE_P | PTE_RW);
	put64(v, PDPT, PD64 | PTE_P | PTE_RW);
	put64(v, PD64, 0 | PTE_P | PTE_RW | PTE_PS);
	put64(v, PD64 + 8, PT64 | PTE_P | PTE_RW);
	put64(v, PT64 + 0 * 8, FRAMES_HI | PTE_P | PTE_RW);	/* 0x200000 */
	put64(v, PT64 + 1 * 8, 0);				/* 0x201000: not present */
	put64(v, PT64 + 2 * 8, NOSLOT_GPA | PTE_P | PTE_RW);	/* 0x202000 */
	/* 32-bit paging: PD[0] a 4 MiB identity page. */
	put32(v, PD32, 0 | PTE_P | PTE_RW | PTE_PS);

	emit_caller(v, CODE64 + 0x000, CODE64 + 0x100, 0, "main");
	emit_caller(v, CODE64 + 0x100, CODE64 + 0x200, 0, "a");
	emit_caller(v, CODE64 + 0x200, CODE64 + 0x300, 0, "b");
	loop64 = emit_spinner(v, CODE64 + 0x300, COUNTERS, 0);
	emit_caller(v, CODE32 + 0x000, CODE32 + 0x100, 1, "main32");
	emit_caller(v, CODE32 + 0x100, CODE32 + 0x200, 1, "a32");
	emit_caller(v, CODE32 + 0x200, CODE32 + 0x300, 1, "b32");
	loop32 = emit_spinner(v, CODE32 + 0x300, COUNTERS + 8, 1);

	/* cycle: A -> B -> A */
	put64(v, FRAMES + 0x000, FRAMES + 0x100);
	put64(v, FRAMES + 0x008, 0x10777);
	put64(v, FRAMES + 0x100, FRAMES + 0x000);
	put64(v, FRAMES + 0x108, 0x10888);
	add_name(v, 0x10777, "r1");
	add_name(v, 0x10888, "r2");
	/* unmapped: the caller's record is at a guest address with no PTE */
	put64(v, FRAMES + 0x200, 0x201000);
	put64(v, FRAMES + 0x208, 0x10aaa);
	add_name(v, 0x10aaa, "r3");
	/* noslot: at guest virtual 0x200000; its caller maps to no memslot */
	put64(v, FRAMES_HI + 0x000, 0x202000);
	put64(v, FRAMES_HI + 0x008, 0x10bbb);
	add_name(v, 0x10bbb, "r4");

	for (i = 0; i < nsc; i++) {
		uint64_t loop = sc[i].mode32 ? loop32 : loop64;

		if (!sc[i].rip)
			sc[i].rip = loop;
		sc[i].spin_lo = loop;
		sc[i].spin_hi = loop + (sc[i].mode32 ? 8 : 9);
		sc[i].counter = sc[i].mode32 ? COUNTERS + 8 : COUNTERS;
	}
}

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int l, int db)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->l = l;
	s->db = db;
	s->g = 1;
}

static void set_mode(struct vm *v, const struct scenario *sc)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	if (ioctl(v->vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	if (sc->mode32) {
		set_seg(&sregs.cs, 0x08, 11, 0, 1);
		sregs.cr0 = 0x80000031;		/* PG | NE | ET | PE */
		sregs.cr3 = PD32;
		sregs.cr4 = 0x10;		/* PSE */
		sregs.efer = 0;
	} else {
		set_seg(&sregs.cs, 0x08, 11, 1, 0);
		sregs.cr0 = 0x80000031;
		sregs.cr3 = PML4;
		sregs.cr4 = 0x20;		/* PAE */
		sregs.efer = 0x500;		/* LME | LMA */
	}
	set_seg(&sregs.ds, 0x10, 3, 0, 1);
	sregs.es = sregs.ds;
	sregs.fs = sregs.ds;
	sregs.gs = sregs.ds;
	sregs.ss = sregs.ds;
	sregs.tr.selector = 0x18;
	sregs.tr.limit = 0x67;
	sregs.tr.type = 11;
	sregs.tr.present = 1;
	if (ioctl(v->vcpu, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");
	memset(&regs, 0, sizeof(regs));
	regs.rip = sc->rip;
	regs.rsp = sc->rsp;
	regs.rbp = sc->rbp;
	regs.rflags = 2;
	if (ioctl(v->vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");
}

/* Long mode, PAE and PSE need the CPUID bits that announce them. */
static void set_cpuid(struct vm *v)
{
	struct kvm_cpuid2 *c;

	c = calloc(1, sizeof(*c) + 256 * sizeof(c->entries[0]));
	if (!c)
		die("calloc");
	c->nent = 256;
	if (ioctl(v->kvm, KVM_GET_SUPPORTED_CPUID, c) < 0)
		die("KVM_GET_SUPPORTED_CPUID");
	if (ioctl(v->vcpu, KVM_SET_CPUID2, c) < 0)
		die("KVM_SET_CPUID2");
	free(c);
}

static void on_signal(int sig)
{
	(void)sig;
}

static void *vcpu_thread(void *arg)
{
	struct runner *r = arg;

	r->tid = (pid_t)syscall(SYS_gettid);
	r->started = 1;
	for (;;) {
		if (ioctl(r->vm->vcpu, KVM_RUN, 0) < 0) {
			r->err = errno;
			break;
		}
		/* Any exit to user space is a disturbance (a fault ends in SHUTDOWN). */
		r->err = 0;
		r->exit_reason = r->vm->run->exit_reason;
		break;
	}
	return NULL;
}

static long perf_open(pid_t tid, int callchain, uint64_t period_ns)
{
	struct perf_event_attr a;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.type = PERF_TYPE_SOFTWARE;
	a.config = PERF_COUNT_SW_CPU_CLOCK;
	a.sample_period = period_ns;	/* of the thread's CPU time */
	a.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID;
	if (callchain)
		a.sample_type |= PERF_SAMPLE_CALLCHAIN;
	a.disabled = 1;
	return syscall(SYS_perf_event_open, &a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

static const char *name_of(struct vm *v, uint64_t addr, char *buf, size_t len)
{
	int i;

	switch (addr) {
	case PERF_CONTEXT_GUEST_KERNEL: return "GK";
	case PERF_CONTEXT_GUEST_USER: return "GU";
	case PERF_CONTEXT_GUEST: return "G";
	case PERF_CONTEXT_KERNEL: return "K";
	case PERF_CONTEXT_USER: return "U";
	case PERF_CONTEXT_HV: return "H";
	}
	for (i = 0; i < v->nnames; i++)
		if (v->names[i].addr == addr)
			return v->names[i].name;
	snprintf(buf, len, "%#llx", (unsigned long long)addr);
	return buf;
}

/* One guest sample's callchain in symbolic form. */
static void chain_string(struct vm *v, uint64_t ip, const uint64_t *ips, uint64_t nr,
			 char *out, size_t len)
{
	char hex[32];
	size_t used = 0;
	uint64_t i;

	out[0] = 0;
	for (i = 0; i < nr && used + 40 < len; i++) {
		const char *n = ips[i] == ip ? "ip" : name_of(v, ips[i], hex, sizeof(hex));

		used += (size_t)snprintf(out + used, len - used, "%s%s", i ? "," : "", n);
	}
	if (!nr)
		snprintf(out, len, "empty");
}

struct tally {
	char chain[32][160];
	int count[32];
	int n;
};

static void tally_add(struct tally *t, const char *chain)
{
	int i;

	for (i = 0; i < t->n; i++) {
		if (!strcmp(t->chain[i], chain)) {
			t->count[i]++;
			return;
		}
	}
	if (t->n < 32) {
		snprintf(t->chain[t->n], sizeof(t->chain[0]), "%s", chain);
		t->count[t->n++] = 1;
	}
}

/* Read every sample of the ring; returns the number of guest samples. */
static int read_ring(struct vm *v, const struct scenario *sc, void *ring, struct tally *t,
		     int *host, int *in_spin)
{
	struct perf_event_mmap_page *meta = ring;
	uint8_t *data = (uint8_t *)ring + meta->data_offset;
	uint64_t size = meta->data_size, head, tail = meta->data_tail;
	int guest = 0;
	char chain[160];

	head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
	while (tail < head) {
		struct perf_event_header h;
		uint8_t rec[8192];
		uint64_t off = tail % size, i;

		for (i = 0; i < sizeof(h); i++)
			((uint8_t *)&h)[i] = data[(off + i) % size];
		if (h.size < sizeof(h) || h.size > sizeof(rec))
			break;
		for (i = 0; i < h.size; i++)
			rec[i] = data[(off + i) % size];
		tail += h.size;
		if (h.type != PERF_RECORD_SAMPLE)
			continue;
		{
			uint64_t ip, nr;
			const uint64_t *ips;
			uint8_t *p = rec + sizeof(h);
			unsigned int mode = h.misc & PERF_RECORD_MISC_CPUMODE_MASK;

			memcpy(&ip, p, 8);
			p += 8 + 8;		/* ip, pid/tid */
			if (mode != PERF_RECORD_MISC_GUEST_KERNEL) {
				(*host)++;
				continue;
			}
			guest++;
			if (ip >= sc->spin_lo && ip < sc->spin_hi)
				(*in_spin)++;
			if (!t)			/* no callchain asked for */
				continue;
			memcpy(&nr, p, 8);
			p += 8;
			if (nr > (h.size - (uint64_t)(p - rec)) / 8)
				continue;
			ips = (const uint64_t *)p;
			chain_string(v, ip, ips, nr, chain, sizeof(chain));
			tally_add(t, chain);
		}
	}
	__atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
	return guest;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* What one sampling run saw. */
struct run {
	int guest, host, in_spin;	/* samples */
	uint64_t progress;		/* guest counter increments */
	uint64_t thread_ns;		/* the vCPU thread's CPU time, sampled */
	int err;			/* errno of KVM_RUN: EINTR is ours */
	unsigned int exit_reason;
};

/*
 * Run the scenario's guest on a new vCPU thread and sample that thread for
 * ms milliseconds; t (if not NULL) gets the callchains.
 */
static void sample_run(struct vm *v, const struct scenario *sc, struct tally *t,
		       uint64_t period_ns, int ms, struct run *out)
{
	struct runner r = { .vm = v, .sc = sc };
	uint64_t before;
	pthread_t th;
	void *ring;
	long pfd;
	int fd;

	memset(out, 0, sizeof(*out));
	set_mode(v, sc);
	if (pthread_create(&th, NULL, vcpu_thread, &r))
		die("pthread_create");
	while (!r.started)
		sleep_ms(1);
	pfd = perf_open(r.tid, t != NULL, period_ns);
	if (pfd < 0)
		die("perf_event_open");
	fd = (int)pfd;
	ring = mmap(NULL, (RING_PAGES + 1) * 4096UL, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ring == MAP_FAILED)
		die("mmap perf ring");
	sleep_ms(50);			/* let the guest reach its innermost loop */
	before = get64(v, sc->counter);
	ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
	sleep_ms(ms);
	ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
	out->progress = get64(v, sc->counter) - before;
	if (read(fd, &out->thread_ns, sizeof(out->thread_ns)) != sizeof(out->thread_ns))
		out->thread_ns = 0;
	pthread_kill(th, SIGUSR1);
	pthread_join(th, NULL);
	out->err = r.err;
	out->exit_reason = r.exit_reason;
	out->guest = read_ring(v, sc, ring, t, &out->host, &out->in_spin);
	munmap(ring, (RING_PAGES + 1) * 4096UL);
	close(fd);
}

/*
 * The cost of a guest callchain: sample the spinning guest at 10 kHz with
 * and without PERF_SAMPLE_CALLCHAIN; the guest's progress per nanosecond
 * of its thread's CPU time, without callchains, prices the time the
 * callchains took. A rough figure under TCG (and next to nothing on the
 * unpatched kernel, whose callchains are empty): KINFO only.
 */
static void measure_cost(struct vm *v, const struct scenario *sc)
{
	static struct tally t;
	struct run with, without;
	double ns_per_step, extra;

	memset(&t, 0, sizeof(t));
	sample_run(v, sc, NULL, 100000, 400, &without);
	sample_run(v, sc, &t, 100000, 400, &with);
	if (!without.progress || !with.guest || !without.thread_ns) {
		kinfo("%s: cost: no figure (no progress or no samples)", sc->key);
		return;
	}
	ns_per_step = (double)without.thread_ns / (double)without.progress;
	extra = ((double)with.thread_ns - ns_per_step * (double)with.progress) / with.guest;
	kinfo("%s: cost: %.1f us of vCPU thread time per guest sample for its callchain "
	      "(%d and %d guest samples at 10 kHz; TCG, rough)", sc->key, extra / 1000.0,
	      with.guest, without.guest);
}

static void run_scenario(struct vm *v, const struct scenario *sc)
{
	static struct tally t;
	int guest, host, in_spin, best = 0, i;
	struct run run;
	char key[64];

	memset(&t, 0, sizeof(t));
	sample_run(v, sc, &t, 1000000, SAMPLE_MS, &run);
	guest = run.guest;
	host = run.host;
	in_spin = run.in_spin;
	for (i = 1; i < t.n; i++)
		if (t.count[i] > t.count[best])
			best = i;
	kinfo("%s: %d guest samples (%d in the innermost loop), %d host samples, counter +%llu",
	      sc->key, guest, in_spin, host, (unsigned long long)run.progress);
	for (i = 0; i < t.n; i++)
		kinfo("%s:   %5d  %s", sc->key, t.count[i], t.chain[i]);

	snprintf(key, sizeof(key), "%s_guest_samples", sc->key);
	kcheck(key, "%s", guest >= 20 ? "yes" : "few");
	snprintf(key, sizeof(key), "%s_chain", sc->key);
	kcheck(key, "%s", t.n ? t.chain[best] : "none");
	snprintf(key, sizeof(key), "%s_chain_share", sc->key);
	kcheck(key, "%s", t.n && t.count[best] * 10 >= guest * 9 ? "ge90" : "lt90");
	snprintf(key, sizeof(key), "%s_ip_in_loop", sc->key);
	kcheck(key, "%s", guest && in_spin * 10 >= guest * 9 ? "yes" : "no");
	/* Undisturbed: it kept counting, and only our signal ended KVM_RUN. */
	snprintf(key, sizeof(key), "%s_guest_undisturbed", sc->key);
	kcheck(key, "%s", run.progress && run.err == EINTR ? "yes" : "no");
	if (run.err != EINTR)
		kinfo("%s: KVM_RUN ended with errno %d, exit reason %u", sc->key, run.err,
		      run.exit_reason);
}

/* The known functions of the good64/good32 guests, as a System.map. */
static void write_map(const char *path, int mode32)
{
	static const char *const names64[] = { "main", "a", "b", "c" };
	static const char *const names32[] = { "main32", "a32", "b32", "c32" };
	uint64_t base = mode32 ? CODE32 : CODE64;
	FILE *f = fopen(path, "w");
	int i;

	if (!f)
		die("fopen map");
	for (i = 0; i < 4; i++)
		fprintf(f, "%016llx t %s\n", (unsigned long long)(base + 0x100 * (uint64_t)i),
			mode32 ? names32[i] : names64[i]);
	fprintf(f, "%016llx A _end\n", (unsigned long long)(base + 0x400));
	if (fclose(f))
		die("write map");
}

static int hold(struct vm *v, const struct scenario *sc, int seconds, const char *map)
{
	struct runner r = { .vm = v, .sc = sc };
	uint64_t before;
	pthread_t th;

	write_map(map, sc->mode32);
	set_mode(v, sc);
	if (pthread_create(&th, NULL, vcpu_thread, &r))
		die("pthread_create");
	while (!r.started)
		sleep_ms(1);
	sleep_ms(50);
	before = get64(v, sc->counter);
	printf("HOLD tid=%d\n", (int)r.tid);
	fflush(stdout);
	sleep_ms(seconds * 1000);
	pthread_kill(th, SIGUSR1);
	pthread_join(th, NULL);
	printf("HOLD-DONE progress=%llu err=%d exit_reason=%u\n",
	       (unsigned long long)(get64(v, sc->counter) - before), r.err, r.exit_reason);
	fflush(stdout);
	return get64(v, sc->counter) != before && r.err == EINTR ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct scenario sc[] = {
		{ .key = "good64", .rip = CODE64, .rsp = STACK64, .rbp = 0 },
		{ .key = "good32", .mode32 = 1, .rip = CODE32, .rsp = STACK32, .rbp = 0 },
		{ .key = "cycle", .rsp = STACK64, .rbp = FRAMES },
		{ .key = "unmapped", .rsp = STACK64, .rbp = FRAMES + 0x200 },
		{ .key = "noslot", .rsp = STACK64, .rbp = 0x200000 },
		{ .key = "garbage", .rsp = STACK64, .rbp = 0xdead00000000beefull },
	};
	struct kvm_userspace_memory_region region = { 0 };
	struct sigaction sa;
	struct vm v = { 0 };
	int size, i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: KVM_RUN returns EINTR */
	sigaction(SIGUSR1, &sa, NULL);

	v.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (v.kvm < 0)
		die("open /dev/kvm");
	v.vm = ioctl(v.kvm, KVM_CREATE_VM, 0);
	if (v.vm < 0)
		die("KVM_CREATE_VM");
	v.mem = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (v.mem == MAP_FAILED)
		die("mmap guest memory");
	setup_memory(&v, sc, (int)(sizeof(sc) / sizeof(sc[0])));
	region.memory_size = GUEST_MEM;
	region.userspace_addr = (uintptr_t)v.mem;
	if (ioctl(v.vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
	v.vcpu = ioctl(v.vm, KVM_CREATE_VCPU, 0);
	if (v.vcpu < 0)
		die("KVM_CREATE_VCPU");
	size = ioctl(v.kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < 0)
		die("KVM_GET_VCPU_MMAP_SIZE");
	v.run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, v.vcpu, 0);
	if (v.run == MAP_FAILED)
		die("mmap kvm_run");
	set_cpuid(&v);

	if (argc == 5 && !strcmp(argv[1], "--hold")) {
		char *end;
		long seconds = strtol(argv[3], &end, 10);

		if (*end || end == argv[3] || seconds < 1 || seconds > 3600) {
			fprintf(stderr, "--hold: SECONDS is 1 to 3600\n");
			return 2;
		}
		for (i = 0; i < 2; i++)
			if (!strcmp(argv[2], sc[i].key))
				return hold(&v, &sc[i], (int)seconds, argv[4]);
		fprintf(stderr, "--hold: good64 or good32\n");
		return 2;
	}
	if (argc != 1) {
		fprintf(stderr, "usage: guest-callchains [--hold good64|good32 SECONDS MAPFILE]\n");
		return 2;
	}
	for (i = 0; i < (int)(sizeof(sc) / sizeof(sc[0])); i++)
		run_scenario(&v, &sc[i]);
	measure_cost(&v, &sc[0]);

	/*
	 * The guest never touches guest virtual 0x200000-0x3fffff; only the
	 * sampler's walk reads its page table entries, and it must not set
	 * their accessed bits.
	 */
	kcheck("walk_ptes_accessed", "%s",
	       (get64(&v, PD64 + 8) | get64(&v, PT64) | get64(&v, PT64 + 16)) & PTE_A ?
	       "yes" : "no");
	printf("KCHECK-DONE\n");
	fflush(stdout);
	return 0;
}
