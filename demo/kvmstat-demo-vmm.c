/* SPDX-License-Identifier: MIT */
/*
 * kvmstat-demo-vmm - start real KVM VMs whose statistics move, and register
 * their stats fds with kvmstatd.
 *
 * Each VM has 64 KiB of guest memory and M vCPUs, each on its own thread,
 * running a real-mode loop: "out 0x10, al" (an I/O exit to us), then
 * "sti; hlt". The guest must sleep, not spin: benchmarks run 200 vCPUs on
 * two host cores. Two ways to wake it up again, chosen at start:
 *
 *   kernel: an in-kernel irqchip halts the vCPU in KVM (so halt_wait_ns,
 *           halt_wait_hist and the halt_poll stats move) and each vCPU's
 *           LAPIC timer, programmed by us through KVM_SET_LAPIC, wakes it
 *           periodically. No host thread or ioctl per tick, which matters
 *           at 4000 VMs. The timer's interrupt handler must write the LAPIC
 *           EOI register, or the in-service bit blocks every later tick; a
 *           real-mode guest cannot reach 0xfee00000, so we move the LAPIC
 *           to guest physical 0x20000 (reached through ES = 0x2000).
 *   user:   no irqchip: HLT exits to userspace and the vCPU thread sleeps
 *           1/hz before entering the guest again. The fallback when any
 *           irqchip ioctl fails.
 *
 * All stats fds stay open for the life of the process, so tests can take
 * copies with pidfd_getfd(). SIGINT/SIGTERM stop the VMs; exit status 0.
 *
 * For discovery tests: --no-register keeps the fds unannounced, and
 * --register-delay-ms holds every VM (running, fds open) unregistered for a
 * while, then registers them and prints their lines; --name puts a QEMU
 * guest name on the command line (and names the VMs after it).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "kvmstat_client.h"

#ifndef KVMSTAT_VERSION
#define KVMSTAT_VERSION "dev"
#endif

#define PROG "kvmstat-demo-vmm"

#define GUEST_MEM_SIZE 0x10000 /* 64 KiB at guest physical 0 */
#define GUEST_CODE 0x1000
#define GUEST_STACK_TOP 0x8000 /* vCPU i: 0x8000 - i * 0x100 */
#define GUEST_STACK_SIZE 0x100
#define GUEST_IO_PORT 0x10
#define TIMER_VECTOR 0x20
#define LAPIC_GPA 0x20000 /* outside guest memory: MMIO */
#define VCPU_THREAD_STACK (64 * 1024)
#define PREFIX_MAX 200 /* --name-prefix bytes */
#define VCPUS_MAX 64

/* LAPIC register offsets (kvm_lapic_state.regs mirrors the MMIO page). */
#define APIC_SVR 0xf0
#define APIC_LVT_TIMER 0x320
#define APIC_TMICT 0x380
#define APIC_TDCR 0x3e0
#define APIC_SVR_ENABLE 0x100
#define APIC_LVT_PERIODIC (1u << 17)
#define APIC_TDCR_DIV1 0xb
#define APIC_BASE_FLAGS 0xfffull /* BSP, x2APIC and enable bits of the MSR */

/*
 * The guest, 16-bit real mode, loaded at GUEST_CODE:
 *   loop:    cli; inc ax; out 0x10, al; sti; hlt; jmp loop
 *   handler: mov dword [es:0xb0], 0  (LAPIC EOI); iret
 * cli keeps interrupts to the sti;hlt window, so each tick is one loop.
 */
static const unsigned char guest_code[] = {
	0xfa,					     /* 1000 cli */
	0x40,					     /* 1001 inc ax */
	0xe6, GUEST_IO_PORT,			     /* 1002 out 0x10, al */
	0xfb,					     /* 1004 sti */
	0xf4,					     /* 1005 hlt */
	0xeb, 0xf8,				     /* 1006 jmp 1000 */
	0x26, 0x66,	     0xc7, 0x06, 0xb0, 0x00, /* 1008 mov dword [es:0xb0], */
	0x00, 0x00,	     0x00, 0x00,	     /*      0 */
	0xcf,					     /* 1012 iret */
};
#define GUEST_HANDLER (GUEST_CODE + 8)

/*
 * --spin: the vCPUs start here instead and never leave the guest (IF stays
 * clear, no I/O): a busy VM for profilers (kvmstat profile), its IPs in
 * GUEST_SPIN..GUEST_SPIN + 3.
 *   cli; spin: inc ax; jmp spin
 */
#define GUEST_SPIN (GUEST_CODE + 0x20)
static const unsigned char guest_spin_code[] = {
	0xfa,	    /* 1020 cli */
	0x40,	    /* 1021 inc ax */
	0xeb, 0xfd, /* 1022 jmp 1021 */
};

enum halt_mode { HALT_AUTO, HALT_KERNEL, HALT_USER };

struct opts {
	long vms;
	long vcpus;
	const char *socket;
	const char *prefix;
	const char *name; /* QEMU-style guest name, or NULL */
	bool no_register;
	bool print_exits;  /* --print-exits */
	bool spin;	   /* --spin */
	bool no_stats_fds; /* --no-stats-fds */
	long register_delay_ms;
	long wait_seconds;
	long hz;
	enum halt_mode halt;
};

struct vm;

struct vcpu {
	struct vm *vm;
	int index;
	int fd;
	int stats_fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	int setup_rc;	    /* set by the thread before vm->ready */
	const char *failed; /* its failed step, if any */
	/* KVM_RUN returns by exit reason, as this VMM saw them (its thread only;
	 * read after the join): the oracle of the exit telemetry tests */
	unsigned long exits_io, exits_hlt, exits_intr, run_errors;
};

struct vm {
	/* Longer than the protocol allows: a long name is the helper's refusal. */
	char name[PREFIX_MAX + 8];
	enum halt_mode mode;
	int fd;
	int stats_fd;
	void *mem;
	int n_vcpus;
	struct vcpu *vcpus;
	sem_t ready; /* each vCPU thread: set up (or failed) */
	sem_t go;    /* main: run, or leave if abort */
	bool abort;
};

static struct {
	struct opts o;
	int kvm_fd;
	size_t run_size;
	enum halt_mode mode; /* HALT_KERNEL or HALT_USER once chosen */
	struct vm *vms;
	long n_vms;		  /* VMs set up so far */
	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID, kernel mode */
	struct kvmstat_client *client;
	struct timespec connect_deadline;
	bool daemon_hung; /* a request timed out: stop asking */
} g = { .kvm_fd = -1 };

static atomic_bool stopping;
static _Thread_local const char *failed_step; /* this thread's last failure */

/* ---- small helpers ---- */

static int kvm_ioctl(int fd, unsigned long req, void *arg, const char *what)
{
	int rc = ioctl(fd, req, arg);

	if (rc < 0) {
		rc = -errno;
		failed_step = what;
	}
	return rc;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void sleep_ns(long ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000L, .tv_nsec = ns % 1000000000L };

	nanosleep(&ts, NULL); /* an early wake by our kick signal is fine */
}

static bool before(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec < deadline->tv_sec ||
	       (now.tv_sec == deadline->tv_sec && now.tv_nsec < deadline->tv_nsec);
}

static void put32(void *base, size_t off, uint32_t v)
{
	memcpy((char *)base + off, &v, sizeof(v));
}

/* ---- vCPU threads ---- */

static void kick_handler(int sig)
{
	(void)sig; /* exists only so SIGUSR1 interrupts KVM_RUN and sleeps */
}

/* One KVM exit; false when the vCPU should stop. */
static bool handle_exit(struct vcpu *v, const char *vm_name)
{
	bool ok = true;

	switch (v->run->exit_reason) {
	case KVM_EXIT_IO: /* the guest's out 0x10: nothing to emulate */
		v->exits_io++;
		break;
	case KVM_EXIT_INTR:
		v->exits_intr++;
		break;
	case KVM_EXIT_HLT: /* user mode only: the throttle */
		v->exits_hlt++;
		sleep_ns(1000000000L / g.o.hz);
		break;
	default:
		fprintf(stderr, PROG ": %s vcpu %d: unexpected exit reason %u, vCPU stopped\n",
			vm_name, v->index, v->run->exit_reason);
		ok = false;
		break;
	}
	return ok;
}

static void vcpu_run(struct vcpu *v)
{
	bool running = true;

	while (running && !atomic_load(&stopping)) {
		if (ioctl(v->fd, KVM_RUN, NULL) == 0)
			running = handle_exit(v, v->vm->name);
		else if (++v->run_errors, errno != EINTR && errno != EAGAIN) {
			fprintf(stderr, PROG ": %s vcpu %d: KVM_RUN: %m, vCPU stopped\n",
				v->vm->name, v->index);
			running = false;
		}
	}
}

static int vcpu_create(struct vm *vm, struct vcpu *v, enum halt_mode mode);

/*
 * A vCPU thread creates its own vCPU, as QEMU does, so the stats id
 * "kvm-<tid>/vcpu-<n>" names the thread that runs it. It reports to the
 * main thread, waits for the whole VM to be ready, then runs.
 */
static void *vcpu_thread(void *p)
{
	struct vcpu *v = p;
	struct vm *vm = v->vm;
	sigset_t kick;

	sigemptyset(&kick);
	sigaddset(&kick, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	v->setup_rc = vcpu_create(vm, v, vm->mode);
	v->failed = failed_step;
	sem_post(&vm->ready);
	while (sem_wait(&vm->go) < 0 && errno == EINTR)
		;
	if (v->setup_rc == 0 && !vm->abort)
		vcpu_run(v);
	return NULL;
}

static int vcpu_start(struct vcpu *v)
{
	pthread_attr_t attr;
	int rc;

	pthread_attr_init(&attr);
	/* The loop needs little stack; 4000 VMs of 8 MiB stacks would not. */
	pthread_attr_setstacksize(&attr, VCPU_THREAD_STACK);
	rc = -pthread_create(&v->thread, &attr, vcpu_thread, v);
	pthread_attr_destroy(&attr);
	if (rc < 0)
		failed_step = "pthread_create";
	v->started = rc == 0;
	return rc;
}

/*
 * immediate_exit covers the race where the thread has checked `stopping`
 * but not yet entered KVM_RUN; the signal interrupts a running KVM_RUN or
 * the userspace-halt sleep.
 */
static void vcpu_kick(struct vcpu *v)
{
	if (!v->started || !v->run)
		return;
	v->run->immediate_exit = 1;
	pthread_kill(v->thread, SIGUSR1);
}

/* ---- VM and vCPU set-up ---- */

static void load_guest(void *mem)
{
	uint16_t ivt[2] = { GUEST_HANDLER, 0 }; /* offset, segment */

	memcpy((char *)mem + GUEST_CODE, guest_code, sizeof(guest_code));
	memcpy((char *)mem + GUEST_SPIN, guest_spin_code, sizeof(guest_spin_code));
	memcpy((char *)mem + TIMER_VECTOR * 4, ivt, sizeof(ivt));
}

static int vm_create(struct vm *vm, enum halt_mode mode)
{
	struct kvm_userspace_memory_region slot = {
		.memory_size = GUEST_MEM_SIZE,
	};
	int rc;

	vm->fd = kvm_ioctl(g.kvm_fd, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
	if (vm->fd < 0)
		return vm->fd;
	vm->mem = mmap(NULL, GUEST_MEM_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->mem == MAP_FAILED) {
		vm->mem = NULL;
		failed_step = "mmap guest memory";
		return -errno;
	}
	load_guest(vm->mem);
	slot.userspace_addr = (uintptr_t)vm->mem;
	rc = kvm_ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &slot, "KVM_SET_USER_MEMORY_REGION");
	if (rc < 0)
		return rc;
	/*
	 * The irqchip must exist before the first vCPU. After the memory slot,
	 * not before: measured here, a slot added after the irqchip waits
	 * ~10 ms (an SRCU grace period), one added before ~0.05 ms.
	 */
	if (mode == HALT_KERNEL) {
		rc = kvm_ioctl(vm->fd, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP");
		if (rc < 0)
			return rc;
	}
	if (g.o.no_stats_fds)
		return 0; /* like a VMM that never asks: only its VM and vCPU fds */
	vm->stats_fd = kvmstat_get_stats_fd(vm->fd);
	if (vm->stats_fd < 0)
		failed_step = "KVM_GET_STATS_FD (VM)";
	return vm->stats_fd < 0 ? vm->stats_fd : 0;
}

static void set_real_mode_seg(struct kvm_segment *s, uint16_t selector)
{
	s->selector = selector;
	s->base = (uint64_t)selector << 4;
	s->limit = 0xffff;
}

/* Real mode at GUEST_CODE; ES reaches the relocated LAPIC in kernel mode. */
static int vcpu_set_regs(struct vcpu *v, enum halt_mode mode)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = {
		.rip = g.o.spin ? GUEST_SPIN : GUEST_CODE,
		.rflags = 0x2,
		.rsp = GUEST_STACK_TOP - (uint64_t)v->index * GUEST_STACK_SIZE,
	};
	int rc;

	rc = kvm_ioctl(v->fd, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	if (rc < 0)
		return rc;
	set_real_mode_seg(&sregs.cs, 0);
	set_real_mode_seg(&sregs.ds, 0);
	set_real_mode_seg(&sregs.ss, 0);
	set_real_mode_seg(&sregs.fs, 0);
	set_real_mode_seg(&sregs.gs, 0);
	set_real_mode_seg(&sregs.es, mode == HALT_KERNEL ? LAPIC_GPA >> 4 : 0);
	if (mode == HALT_KERNEL)
		sregs.apic_base = (sregs.apic_base & APIC_BASE_FLAGS) | LAPIC_GPA;
	rc = kvm_ioctl(v->fd, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
	if (rc == 0)
		rc = kvm_ioctl(v->fd, KVM_SET_REGS, &regs, "KVM_SET_REGS");
	return rc;
}

/*
 * Software-enable the LAPIC and start its periodic timer: KVM_SET_LAPIC
 * (re)arms the timer from TMICT. The APIC bus cycle is 1 ns in KVM, so with
 * divide-by-1 TMICT is the period in ns. KVM only honours the periodic mode
 * bit once a CPUID is set (until then every timer is one-shot). APs start
 * UNINITIALIZED (waiting for INIT/SIPI) with an in-kernel irqchip: make
 * them runnable.
 */
static int vcpu_setup_lapic(struct vcpu *v)
{
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	int rc;

	rc = kvm_ioctl(v->fd, KVM_SET_CPUID2, g.cpuid, "KVM_SET_CPUID2");
	if (rc == 0)
		rc = kvm_ioctl(v->fd, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC");
	if (rc < 0)
		return rc;
	put32(lapic.regs, APIC_SVR, APIC_SVR_ENABLE | 0xff);
	put32(lapic.regs, APIC_TDCR, APIC_TDCR_DIV1);
	put32(lapic.regs, APIC_LVT_TIMER, APIC_LVT_PERIODIC | TIMER_VECTOR);
	put32(lapic.regs, APIC_TMICT, (uint32_t)(1000000000L / g.o.hz));
	rc = kvm_ioctl(v->fd, KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC");
	if (rc == 0)
		rc = kvm_ioctl(v->fd, KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE");
	return rc;
}

static int vcpu_create(struct vm *vm, struct vcpu *v, enum halt_mode mode)
{
	void *run;
	int rc;

	v->fd = kvm_ioctl(vm->fd, KVM_CREATE_VCPU, (void *)(long)v->index, "KVM_CREATE_VCPU");
	if (v->fd < 0)
		return v->fd;
	/* Now, not later: KVM_GET_STATS_FD blocks while the vCPU runs. */
	v->stats_fd = g.o.no_stats_fds ? -1 : kvmstat_get_stats_fd(v->fd);
	if (v->stats_fd < 0 && !g.o.no_stats_fds) {
		failed_step = "KVM_GET_STATS_FD (vCPU)";
		return v->stats_fd;
	}
	run = mmap(NULL, g.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (run == MAP_FAILED) {
		failed_step = "mmap kvm_run";
		return -errno;
	}
	v->run = run;
	rc = vcpu_set_regs(v, mode);
	if (rc == 0 && mode == HALT_KERNEL)
		rc = vcpu_setup_lapic(v);
	return rc;
}

/* Its vCPU threads must have ended (vm_join) or never started. */
static void vm_teardown(struct vm *vm)
{
	for (int i = 0; i < vm->n_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->run)
			munmap(v->run, g.run_size);
		v->run = NULL;
		close_fd(&v->stats_fd);
		close_fd(&v->fd);
	}
	free(vm->vcpus);
	vm->vcpus = NULL;
	vm->n_vcpus = 0;
	close_fd(&vm->stats_fd);
	close_fd(&vm->fd);
	if (vm->mem)
		munmap(vm->mem, GUEST_MEM_SIZE);
	vm->mem = NULL;
	sem_destroy(&vm->ready);
	sem_destroy(&vm->go);
}

static void vm_join(struct vm *vm)
{
	for (int i = 0; i < vm->n_vcpus; i++)
		if (vm->vcpus[i].started)
			pthread_join(vm->vcpus[i].thread, NULL);
}

/*
 * Start the vCPU threads and wait until each has set up its vCPU. Then let
 * them run, or, if any failed, make them all leave.
 */
static int vm_start_vcpus(struct vm *vm)
{
	int rc = 0, started = 0;

	for (int i = 0; i < vm->n_vcpus && rc == 0; i++) {
		rc = vcpu_start(&vm->vcpus[i]);
		started += rc == 0;
	}
	for (int i = 0; i < started; i++)
		while (sem_wait(&vm->ready) < 0 && errno == EINTR)
			;
	for (int i = 0; i < started && rc == 0; i++) {
		rc = vm->vcpus[i].setup_rc;
		failed_step = vm->vcpus[i].failed;
	}
	vm->abort = rc < 0;
	for (int i = 0; i < started; i++)
		sem_post(&vm->go);
	if (rc < 0)
		vm_join(vm);
	return rc;
}

/* A VM with running vCPUs, or nothing left behind. */
static int vm_setup(struct vm *vm, enum halt_mode mode)
{
	int rc;

	vm->fd = vm->stats_fd = -1;
	vm->mode = mode;
	vm->abort = false;
	sem_init(&vm->ready, 0, 0);
	sem_init(&vm->go, 0, 0);
	vm->vcpus = calloc((size_t)g.o.vcpus, sizeof(*vm->vcpus));
	if (vm->vcpus) {
		vm->n_vcpus = (int)g.o.vcpus;
		for (int i = 0; i < vm->n_vcpus; i++)
			vm->vcpus[i] =
			    (struct vcpu){ .vm = vm, .index = i, .fd = -1, .stats_fd = -1 };
		rc = vm_create(vm, mode);
	} else {
		failed_step = "calloc";
		rc = -ENOMEM;
	}
	if (rc == 0)
		rc = vm_start_vcpus(vm);
	if (rc < 0)
		vm_teardown(vm);
	return rc;
}

/*
 * Set up a VM in the chosen mode. Auto mode settles with the first VM: if
 * it fails in kernel mode, all VMs use user halt. A later failure (EMFILE,
 * ENOMEM) is not the irqchip's fault and is not retried.
 */
static int vm_setup_any(struct vm *vm, bool first)
{
	int rc = vm_setup(vm, g.mode);

	if (rc < 0 && first && g.mode == HALT_KERNEL && g.o.halt == HALT_AUTO) {
		fprintf(stderr,
			PROG ": in-kernel halt unavailable (%s: %s), "
			     "falling back to userspace HLT\n",
			failed_step, strerror(-rc));
		g.mode = HALT_USER;
		rc = vm_setup(vm, g.mode);
	}
	return rc;
}

/* ---- registration ---- */

static bool retry_connect(int rc)
{
	/* The socket file is not there yet, or nobody listens on it yet. */
	return (rc == -ENOENT || rc == -ECONNREFUSED) && before(&g.connect_deadline);
}

static int client_connect(char *why, size_t why_size)
{
	int rc;

	while ((rc = kvmstat_client_open(&g.client, g.o.socket)) < 0 && retry_connect(rc))
		sleep_ns(100 * 1000000L);
	if (rc < 0)
		snprintf(why, why_size, "connect %s: %s", g.o.socket, strerror(-rc));
	return rc;
}

/* After these the connection is gone or out of step: reconnect next time. */
static bool connection_lost(int rc)
{
	return rc == -EPIPE || rc == -ECONNRESET || rc == -ENOTCONN || rc == -ETIMEDOUT ||
	       rc == -EPROTO;
}

/*
 * A daemon that accepts but never answers would cost 2 s per VM: after one
 * timeout the remaining VMs are not offered to it.
 */
static void vm_register(const struct vm *vm, long handle, char *out, size_t out_size)
{
	int fds[VCPUS_MAX];
	char why[KVMSTAT_REASON_MAX + 128] = "";
	int rc = 0;

	if (g.daemon_hung) {
		rc = -ETIMEDOUT;
		snprintf(why, sizeof(why), "not tried: an earlier request timed out");
	} else if (!g.client) {
		rc = client_connect(why, sizeof(why));
	}
	if (rc == 0) {
		for (int i = 0; i < vm->n_vcpus; i++)
			fds[i] = vm->vcpus[i].stats_fd;
		rc = kvmstat_client_register_vm(g.client, (uint64_t)handle, vm->name, vm->stats_fd,
						fds, (size_t)vm->n_vcpus, why, sizeof(why));
		if (rc < 0 && connection_lost(rc)) {
			kvmstat_client_close(g.client);
			g.client = NULL;
			g.daemon_hung = rc == -ETIMEDOUT;
		}
	}
	if (rc == 0)
		snprintf(out, out_size, "yes");
	else
		snprintf(out, out_size, "error:%s:%s", strerrorname_np(-rc),
			 why[0] ? why : strerror(-rc));
}

/* ---- the VM line ---- */

static void print_vm(const struct vm *vm, long handle, const char *registered)
{
	char fds[VCPUS_MAX * 12] = "";
	size_t len = 0;

	for (int i = 0; i < vm->n_vcpus; i++)
		len += (size_t)snprintf(fds + len, sizeof(fds) - len, "%s%d", i ? "," : "",
					vm->vcpus[i].stats_fd);
	printf("VM name=%s pid=%d handle=%ld vm_stats_fd=%d vcpu_stats_fds=%s registered=%s\n",
	       vm->name, (int)getpid(), handle, vm->stats_fd, fds, registered);
	fflush(stdout);
}

/* ---- process set-up ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: " PROG " [OPTION]...\n"
		"Start real KVM VMs whose statistics move and register their stats fds\n"
		"with kvmstatd. Runs until SIGINT or SIGTERM.\n\n"
		"  --vms N            VMs to start (1..4000, default 2)\n"
		"  --vcpus M          vCPUs per VM (1..64, default 2)\n"
		"  --socket PATH      registration socket (default " KVMSTAT_DEFAULT_SOCKET ")\n"
		"  --name-prefix P    VM i is named P<i> (default \"demo-\")\n"
		"  --no-register      start the VMs, do not register them\n"
		"  --print-exits      at the end, print each vCPU's KVM_RUN returns by reason\n"
		"  --spin             the vCPUs spin in the guest (real mode, IF clear, at\n"
		"                     guest 0x1020..0x1023) and never exit: for profilers\n"
		"  --no-stats-fds     ask KVM for no stats fd (implies --no-register): a VMM\n"
		"                     that holds only its VM and vCPU fds, for discovery\n"
		"  --register-delay-ms D  run the VMs D ms unregistered (stats fds open),\n"
		"                     then register them and print their lines (0..600000,\n"
		"                     default 0)\n"
		"  --name N           a QEMU-style guest name on the command line, as QEMU's\n"
		"                     -name: VM 0 is named N, VM i > 0 N-<i> (overrides\n"
		"                     --name-prefix)\n"
		"  --wait-seconds S   retry connecting while the socket is absent (default 10)\n"
		"  --hz R             guest wake-ups per vCPU and second (1..1000, default 100)\n"
		"  --halt-mode MODE   auto (default), kernel (irqchip + LAPIC timer)\n"
		"                     or user (HLT exits to us, we sleep)\n"
		"  --help, --version\n\n"
		"Prints one line per VM:\n"
		"  VM name=N pid=P handle=I vm_stats_fd=F vcpu_stats_fds=F,F,... "
		"registered=yes|no|error:ERRNO:REASON\n"
		"then READY.\n");
}

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_halt(const char *s, enum halt_mode *out)
{
	static const char *const names[] = { "auto", "kernel", "user" };

	for (int i = 0; i < 3; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = (enum halt_mode)i;
			return 0;
		}
	return -EINVAL;
}

/* One option; 1 after --help/--version, -EINVAL on a bad value. */
static int parse_opt(int c, const char *arg, struct opts *o)
{
	int rc = 0;

	switch (c) {
	case 'n':
		rc = parse_long(arg, 1, 4000, &o->vms);
		break;
	case 'c':
		rc = parse_long(arg, 1, VCPUS_MAX, &o->vcpus);
		break;
	case 's':
		o->socket = arg;
		break;
	case 'p':
		o->prefix = arg;
		rc = strlen(arg) <= PREFIX_MAX ? 0 : -EINVAL;
		break;
	case 'N':
		o->no_register = true;
		break;
	case 'X':
		o->print_exits = true;
		break;
	case 'S':
		o->spin = true;
		break;
	case 'F':
		o->no_stats_fds = o->no_register = true;
		break;
	case 'D':
		rc = parse_long(arg, 0, 600000, &o->register_delay_ms);
		break;
	case 'q':
		o->name = arg;
		rc = strlen(arg) <= PREFIX_MAX ? 0 : -EINVAL;
		break;
	case 'w':
		rc = parse_long(arg, 0, 3600, &o->wait_seconds);
		break;
	case 'z':
		rc = parse_long(arg, 1, 1000, &o->hz);
		break;
	case 'm':
		rc = parse_halt(arg, &o->halt);
		break;
	case 'h':
		usage(stdout);
		rc = 1;
		break;
	case 'V':
		printf(PROG " " KVMSTAT_VERSION "\n");
		rc = 1;
		break;
	default:
		rc = -EINVAL;
		break;
	}
	return rc;
}

/* Returns 0 to run, 1 after --help/--version, -EINVAL on bad usage. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = { { "vms", required_argument, NULL, 'n' },
						  { "vcpus", required_argument, NULL, 'c' },
						  { "socket", required_argument, NULL, 's' },
						  { "name-prefix", required_argument, NULL, 'p' },
						  { "no-register", no_argument, NULL, 'N' },
						  { "print-exits", no_argument, NULL, 'X' },
						  { "spin", no_argument, NULL, 'S' },
						  { "no-stats-fds", no_argument, NULL, 'F' },
						  { "register-delay-ms", required_argument, NULL,
						    'D' },
						  { "name", required_argument, NULL, 'q' },
						  { "wait-seconds", required_argument, NULL, 'w' },
						  { "hz", required_argument, NULL, 'z' },
						  { "halt-mode", required_argument, NULL, 'm' },
						  { "help", no_argument, NULL, 'h' },
						  { "version", no_argument, NULL, 'V' },
						  { 0 } };
	int c, idx = 0, rc = 0;

	*o = (struct opts){ .vms = 2,
			    .vcpus = 2,
			    .socket = KVMSTAT_DEFAULT_SOCKET,
			    .prefix = "demo-",
			    .wait_seconds = 10,
			    .hz = 100 };
	while (rc == 0 && (c = getopt_long(argc, argv, "", longopts, &idx)) != -1) {
		rc = parse_opt(c, optarg, o);
		/* getopt_long already complained about an unknown option. */
		if (rc == -EINVAL && c != '?')
			fprintf(stderr, PROG ": bad value '%s' for --%s\n", optarg,
				longopts[idx].name);
	}
	if (rc == 0 && optind < argc) {
		fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		rc = -EINVAL;
	}
	return rc;
}

/*
 * Each VM keeps 2 + 2 * vCPUs fds (VM, VM stats, vCPU, vCPU stats). Raise
 * the soft limit to the hard one, and the hard one too where allowed
 * (CAP_SYS_RESOURCE); refuse at once rather than after minutes of set-up.
 */
static int fit_nofile(void)
{
	rlim_t need = (rlim_t)(g.o.vms * (2 + 2 * g.o.vcpus) + 16);
	struct rlimit rl = { 0 };
	int rc = 0;

	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_max < need) {
		struct rlimit more = { .rlim_cur = need, .rlim_max = need };

		if (setrlimit(RLIMIT_NOFILE, &more) == 0)
			rl = more;
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < need) {
		fprintf(stderr,
			PROG ": %ld VMs x %ld vCPUs need %llu fds, "
			     "RLIMIT_NOFILE allows %llu\n",
			g.o.vms, g.o.vcpus, (unsigned long long)need,
			(unsigned long long)rl.rlim_cur);
		rc = -EMFILE;
	}
	return rc;
}

static int check_cap(long cap, const char *name)
{
	int rc = ioctl(g.kvm_fd, KVM_CHECK_EXTENSION, cap);

	if (rc <= 0)
		fprintf(stderr, PROG ": /dev/kvm lacks %s\n", name);
	return rc > 0 ? 0 : -EOPNOTSUPP;
}

/* The host's supported CPUID, set on every vCPU (see vcpu_setup_lapic). */
static int load_cpuid(void)
{
	int rc = -E2BIG;

	for (uint32_t n = 64; rc == -E2BIG && n <= 4096; n *= 2) {
		free(g.cpuid);
		g.cpuid = calloc(1, sizeof(*g.cpuid) + n * sizeof(g.cpuid->entries[0]));
		if (!g.cpuid)
			return -ENOMEM;
		g.cpuid->nent = n;
		rc = kvm_ioctl(g.kvm_fd, KVM_GET_SUPPORTED_CPUID, g.cpuid,
			       "KVM_GET_SUPPORTED_CPUID");
	}
	return rc;
}

/* Pick the halt mode: kernel if asked or possible, else user. */
static int choose_mode(void)
{
	int rc = 0;

	g.mode = g.o.halt == HALT_USER ? HALT_USER : HALT_KERNEL;
	if (g.mode == HALT_KERNEL) {
		rc = ioctl(g.kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) > 0 ? 0 : -EOPNOTSUPP;
		if (rc < 0)
			failed_step = "KVM_CAP_IRQCHIP";
		else
			rc = load_cpuid();
	}
	if (rc < 0 && g.o.halt == HALT_AUTO) {
		fprintf(stderr,
			PROG ": in-kernel halt unavailable (%s: %s), "
			     "using userspace HLT\n",
			failed_step, strerror(-rc));
		g.mode = HALT_USER;
		rc = 0;
	}
	if (rc < 0)
		fprintf(stderr, PROG ": %s: %s\n", failed_step, strerror(-rc));
	return rc;
}

static int kvm_open(void)
{
	int rc, size;

	g.kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (g.kvm_fd < 0) {
		rc = -errno;
		fprintf(stderr, PROG ": open /dev/kvm: %m\n");
		return rc;
	}
	rc = check_cap(KVM_CAP_BINARY_STATS_FD, "KVM_CAP_BINARY_STATS_FD");
	if (rc == 0)
		rc = check_cap(KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT");
	if (rc < 0)
		return rc;
	size = ioctl(g.kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(struct kvm_run)) {
		fprintf(stderr, PROG ": KVM_GET_VCPU_MMAP_SIZE: %d\n", size);
		return -EINVAL;
	}
	g.run_size = (size_t)size;
	return choose_mode();
}

/*
 * Every thread inherits a mask blocking the stop signals (the main thread
 * takes them with sigwait) and SIGUSR1 (only vCPU threads unblock it).
 */
static void setup_signals(sigset_t *stop)
{
	struct sigaction sa = { .sa_handler = kick_handler }; /* no SA_RESTART */
	sigset_t block;

	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(stop);
	sigaddset(stop, SIGINT);
	sigaddset(stop, SIGTERM);
	block = *stop;
	sigaddset(&block, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
}

static bool registers_later(void)
{
	return !g.o.no_register && g.o.register_delay_ms > 0;
}

/* Set up, start and register VM i, then print its line. */
static int vm_bring_up(long i)
{
	struct vm *vm = &g.vms[i];
	char registered[KVMSTAT_REASON_MAX + 256] = "no";
	int rc;

	if (g.o.name && i == 0)
		snprintf(vm->name, sizeof(vm->name), "%s", g.o.name);
	else if (g.o.name)
		snprintf(vm->name, sizeof(vm->name), "%s-%ld", g.o.name, i);
	else
		snprintf(vm->name, sizeof(vm->name), "%s%ld", g.o.prefix, i);
	rc = vm_setup_any(vm, i == 0);
	if (rc < 0) {
		fprintf(stderr, PROG ": %s: %s: %s\n", vm->name, failed_step, strerror(-rc));
		return rc;
	}
	g.n_vms = i + 1;
	if (registers_later())
		return 0; /* registered and printed by register_later() */
	if (!g.o.no_register)
		vm_register(vm, i, registered, sizeof(registered));
	print_vm(vm, i, registered);
	return 0;
}

/*
 * --register-delay-ms: every VM runs, its stats fds open but unannounced,
 * for the delay; then each is registered and its line printed. A stop
 * signal during the delay stops the VMs unregistered (returns 1).
 */
static int register_later(const sigset_t *stop)
{
	struct timespec delay = { .tv_sec = g.o.register_delay_ms / 1000,
				  .tv_nsec = (g.o.register_delay_ms % 1000) * 1000000L };
	char registered[KVMSTAT_REASON_MAX + 256];
	struct timespec end, now;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += delay.tv_sec;
	end.tv_nsec += delay.tv_nsec;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	for (;;) {
		if (sigtimedwait(stop, NULL, &delay) >= 0)
			return 1;
		if (errno != EINTR && errno != EAGAIN)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!before(&end))
			break;
		delay.tv_sec = end.tv_sec - now.tv_sec;
		delay.tv_nsec = end.tv_nsec - now.tv_nsec;
		if (delay.tv_nsec < 0) {
			delay.tv_sec--;
			delay.tv_nsec += 1000000000L;
		}
	}
	/* --wait-seconds counts from now, not from the start */
	clock_gettime(CLOCK_MONOTONIC, &g.connect_deadline);
	g.connect_deadline.tv_sec += g.o.wait_seconds;
	for (long i = 0; i < g.n_vms; i++) {
		vm_register(&g.vms[i], i, registered, sizeof(registered));
		print_vm(&g.vms[i], i, registered);
	}
	return 0;
}

/*
 * After the vCPU threads are joined: one line per vCPU with this VMM's own
 * counts of KVM_RUN returns (errors are returns too, e.g. EINTR).
 */
static void print_exits(void)
{
	for (long i = 0; i < g.n_vms; i++)
		for (int j = 0; j < g.vms[i].n_vcpus; j++) {
			const struct vcpu *v = &g.vms[i].vcpus[j];

			printf("EXITS name=%s vcpu=%d io=%lu hlt=%lu intr=%lu errors=%lu\n",
			       g.vms[i].name, v->index, v->exits_io, v->exits_hlt, v->exits_intr,
			       v->run_errors);
		}
	fflush(stdout);
}

static void stop_all(void)
{
	atomic_store(&stopping, true);
	for (long i = 0; i < g.n_vms; i++)
		for (int j = 0; j < g.vms[i].n_vcpus; j++)
			vcpu_kick(&g.vms[i].vcpus[j]);
	for (long i = 0; i < g.n_vms; i++)
		vm_join(&g.vms[i]);
	if (g.o.print_exits)
		print_exits();
	for (long i = 0; i < g.n_vms; i++)
		vm_teardown(&g.vms[i]);
}

static const char *mode_text(void)
{
	return g.mode == HALT_KERNEL ? "in-kernel halt (irqchip + LAPIC timer)"
				     : "userspace halt (HLT exits, thread sleeps)";
}

static int run(void)
{
	sigset_t stop;
	bool stopped;
	int rc, sig;

	setup_signals(&stop);
	rc = fit_nofile();
	if (rc == 0)
		rc = kvm_open();
	g.vms = rc == 0 ? calloc((size_t)g.o.vms, sizeof(*g.vms)) : NULL;
	if (rc == 0 && !g.vms)
		rc = -ENOMEM;
	clock_gettime(CLOCK_MONOTONIC, &g.connect_deadline);
	g.connect_deadline.tv_sec += g.o.wait_seconds;
	for (long i = 0; i < g.o.vms && rc == 0; i++)
		rc = vm_bring_up(i);
	/* a stop signal during the delay: stop at once, unregistered */
	stopped = rc == 0 && registers_later() && register_later(&stop) > 0;
	if (rc == 0 && !stopped) {
		fprintf(stderr, PROG ": %ld VMs x %ld vCPUs running, %s, %ld Hz%s\n", g.o.vms,
			g.o.vcpus, mode_text(), g.o.hz, g.o.spin ? ", spinning" : "");
		printf("READY\n");
		fflush(stdout);
		sigwait(&stop, &sig);
	}
	stop_all();
	free(g.vms);
	free(g.cpuid);
	kvmstat_client_close(g.client);
	close_fd(&g.kvm_fd);
	return rc;
}

int main(int argc, char **argv)
{
	int rc = parse_opts(argc, argv, &g.o);

	if (rc < 0) {
		fprintf(stderr, "Try '" PROG " --help'.\n");
		return 2;
	}
	if (rc > 0)
		return 0;
	return run() < 0 ? 1 : 0;
}
