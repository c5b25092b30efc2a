// SPDX-License-Identifier: GPL-2.0
/*
 * kvm-stats-observer: the in-guest test of kernel-patches/kvm-stats-observer.
 *
 * Runs as root (pid 1's child) inside a TCG guest with a working /dev/kvm.
 * Built static; needs nothing but the kernel. Prints one line per
 * observation, "KCHECK <key>=<value>", and a last line "KCHECK-DONE"; the
 * host (scripts/kernel-check.sh) compares them with what the kernel under
 * test must show. It judges nothing itself, except where a value is a
 * measurement (then it says "ok" or "blocked" against a stated bound).
 *
 * Processes:
 *   owner     creates the VM and one vCPU, asks for its own stats fds, runs
 *             the guest until HLT (ten OUTs first, so counters move), then,
 *             when told, runs it again in a "jmp $" loop that never exits
 *             to user space.
 *   observer  (the parent, root) takes the owner's VM, vCPU and stats fds
 *             with pidfd_getfd() and calls KVM_GET_STATS_FD on the borrowed
 *             VM and vCPU fds, tries other ioctls, compares what its stats
 *             fds read with the owner's.
 *   holder    a child of the observer that keeps the borrowed fds and
 *             becomes nobody (no capabilities) before asking.
 * Then, with a second VM, the ptrace rules themselves: a VMM running as uid
 * 1000 and an observer of the same uid without capabilities; the VMM makes
 * itself non-dumpable, then executes another program, then exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/kvm.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kcheck.h"

#define GUEST_MEM 0x10000
#define GUEST_CODE 0x1000
#define RUNNING_BOUND_MS 2000	/* "blocked" past this; a generous bound for a busy host */

static const char *errname(int e)
{
	switch (e) {
	case 0: return "ok";
	case EIO: return "EIO";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case EINVAL: return "EINVAL";
	case EINTR: return "EINTR";
	case ENOTTY: return "ENOTTY";
	case EFAULT: return "EFAULT";
	case EBADF: return "EBADF";
	case ESRCH: return "ESRCH";
	default: return "other";
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One byte over a pipe: a step of the protocol between owner and observer. */
static void send_byte(int fd, char c)
{
	if (write(fd, &c, 1) != 1)
		die("pipe write");
}

static char recv_byte(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&p, 1, timeout_ms) != 1)
		die("pipe timeout");
	if (read(fd, &c, 1) != 1)
		die("pipe read");
	return c;
}

/* ---- the owner ---------------------------------------------------------- */

struct owner {
	int kvm, vm, vcpu, vm_stats, vcpu_stats;
	struct kvm_run *run;
	int to_observer, from_observer;
	volatile int in_run;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stats_done, stats_err;
};

/*
 * Real-mode guest at GUEST_CODE: ten "out 0x10, al", then "hlt", then
 * "jmp $" forever.
 */
static const uint8_t guest_code[] = {
	0xb0, 0x42,		/* mov al, 0x42 */
	0xb9, 0x0a, 0x00,	/* mov cx, 10 */
	0xe6, 0x10,		/* 1: out 0x10, al */
	0xe2, 0xfc,		/* loop 1b */
	0xf4,			/* hlt */
	0xeb, 0xfe,		/* jmp $ */
};

static void *vcpu_thread(void *arg)
{
	struct owner *o = arg;
	int ios = 0;

	for (;;) {
		if (ioctl(o->vcpu, KVM_RUN, 0) < 0)
			die("KVM_RUN");
		if (o->run->exit_reason == KVM_EXIT_IO) {
			ios++;
			continue;
		}
		if (o->run->exit_reason == KVM_EXIT_HLT)
			break;
		printf("KCHECK-FATAL unexpected exit reason %u\n", o->run->exit_reason);
		fflush(stdout);
		_exit(2);
	}
	kinfo("owner: guest did %d OUTs and halted", ios);
	send_byte(o->to_observer, 'H');
	if (recv_byte(o->from_observer, 30000) != 'R')
		die("protocol");
	o->in_run = 1;
	ioctl(o->vcpu, KVM_RUN, 0);	/* "jmp $": returns only on a signal */
	o->in_run = 0;
	kinfo("owner: KVM_RUN returned: %s", strerror(errno));
	return NULL;
}

static void *owner_stats_thread(void *arg)
{
	struct owner *o = arg;
	int fd = ioctl(o->vcpu, KVM_GET_STATS_FD, NULL);

	pthread_mutex_lock(&o->lock);
	o->stats_done = 1;
	o->stats_err = fd < 0 ? errno : 0;
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void owner_main(int to_observer, int from_observer)
{
	struct owner o = { .to_observer = to_observer, .from_observer = from_observer };
	struct kvm_userspace_memory_region region = { 0 };
	struct kvm_sregs sregs;
	struct kvm_regs regs = { 0 };
	struct timespec deadline;
	pthread_t vt, st;
	int fds[4], size, r;
	void *mem;

	pthread_mutex_init(&o.lock, NULL);
	pthread_cond_init(&o.cond, NULL);
	o.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (o.kvm < 0)
		die("open /dev/kvm");
	o.vm = ioctl(o.kvm, KVM_CREATE_VM, 0);
	if (o.vm < 0)
		die("KVM_CREATE_VM");
	mem = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap guest memory");
	memcpy((char *)mem + GUEST_CODE, guest_code, sizeof(guest_code));
	region.memory_size = GUEST_MEM;
	region.userspace_addr = (uintptr_t)mem;
	if (ioctl(o.vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
	o.vcpu = ioctl(o.vm, KVM_CREATE_VCPU, 0);
	if (o.vcpu < 0)
		die("KVM_CREATE_VCPU");
	size = ioctl(o.kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < 0)
		die("KVM_GET_VCPU_MMAP_SIZE");
	o.run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, o.vcpu, 0);
	if (o.run == MAP_FAILED)
		die("mmap kvm_run");
	if (ioctl(o.vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (ioctl(o.vcpu, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");
	regs.rip = GUEST_CODE;
	regs.rflags = 2;
	if (ioctl(o.vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");
	/* The owner's own stats fds, taken before the vCPU runs. */
	o.vm_stats = ioctl(o.vm, KVM_GET_STATS_FD, NULL);
	o.vcpu_stats = ioctl(o.vcpu, KVM_GET_STATS_FD, NULL);
	if (o.vm_stats < 0 || o.vcpu_stats < 0)
		die("owner KVM_GET_STATS_FD");

	fds[0] = o.vm;
	fds[1] = o.vcpu;
	fds[2] = o.vm_stats;
	fds[3] = o.vcpu_stats;
	if (write(to_observer, fds, sizeof(fds)) != sizeof(fds))
		die("pipe write");

	if (pthread_create(&vt, NULL, vcpu_thread, &o))
		die("pthread_create");
	/* The vCPU thread reads the observer's 'R' and enters KVM_RUN again. */
	for (r = 0; !o.in_run && r < 600; r++)
		usleep(100 * 1000);
	usleep(300 * 1000);
	kcheck("owner_vcpu_in_run", "%s", o.in_run ? "yes" : "no");

	/* The owner itself asks for the running vCPU's stats fd. */
	if (pthread_create(&st, NULL, owner_stats_thread, &o))
		die("pthread_create");
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += RUNNING_BOUND_MS / 1000;
	pthread_mutex_lock(&o.lock);
	r = 0;
	while (!o.stats_done && r == 0)
		r = pthread_cond_timedwait(&o.cond, &o.lock, &deadline);
	if (o.stats_done)
		kcheck("owner_running_vcpu_stats", "%s", errname(o.stats_err));
	else
		kcheck("owner_running_vcpu_stats", "blocked");
	pthread_mutex_unlock(&o.lock);
	send_byte(to_observer, 'D');
	/* Stay until the observer kills us (SIGKILL also ends a blocked call). */
	for (;;)
		pause();
}

/* ---- stats file helpers --------------------------------------------------- */

/* Whole file contents (header, id, descriptors, data): at most 64 KiB. */
static ssize_t read_all(int fd, char *buf, size_t size)
{
	return pread(fd, buf, size, 0);
}

/* Value of the u64 stat "name" (first element), or -1. */
static int64_t stat_value(int fd, const char *name)
{
	static char buf[65536];
	struct kvm_stats_header *h = (void *)buf;
	ssize_t n = read_all(fd, buf, sizeof(buf));
	size_t dsz;

	if (n < (ssize_t)sizeof(*h))
		return -1;
	dsz = sizeof(struct kvm_stats_desc) + h->name_size;
	for (uint32_t i = 0; i < h->num_desc; i++) {
		struct kvm_stats_desc *d = (void *)(buf + h->desc_offset + i * dsz);

		if ((char *)d + dsz > buf + n)
			return -1;
		if (strncmp(d->name, name, h->name_size) == 0) {
			uint64_t v;

			if (h->data_offset + d->offset + 8 > (size_t)n)
				return -1;
			memcpy(&v, buf + h->data_offset + d->offset, 8);
			return (int64_t)v;
		}
	}
	return -1;
}

/* "yes" if both fds read the same bytes (and a non-trivial file). */
static const char *same_contents(int a, int b)
{
	static char ba[65536], bb[65536];
	ssize_t na = read_all(a, ba, sizeof(ba)), nb = read_all(b, bb, sizeof(bb));

	if (na < (ssize_t)sizeof(struct kvm_stats_header) || na != nb)
		return "size-differs";
	return memcmp(ba, bb, na) == 0 ? "yes" : "differs";
}

/* "yes" if header, id string and descriptors are the same bytes. */
static const char *same_layout(int a, int b)
{
	static char ba[65536], bb[65536];
	ssize_t na = read_all(a, ba, sizeof(ba)), nb = read_all(b, bb, sizeof(bb));
	struct kvm_stats_header *h = (void *)ba;

	if (na < (ssize_t)sizeof(*h) || na != nb || h->data_offset > (size_t)na)
		return "size-differs";
	return memcmp(ba, bb, h->data_offset) == 0 ? "yes" : "differs";
}

static int try_ioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) < 0 ? errno : 0;
}

/*
 * Every VM and vCPU ioctl but KVM_GET_STATS_FD, on borrowed fds: all must
 * answer EIO. Prints the first one that does not (name:errno), or "EIO".
 */
static void check_foreign_ioctls(const char *key, int vm, int vcpu)
{
	static char buf[8192];
	struct kvm_userspace_memory_region region = { .slot = 1, .guest_phys_addr = 0x100000,
						      .memory_size = 0x1000,
						      .userspace_addr = (uintptr_t)buf };
	struct kvm_irqfd irqfd = { .fd = -1 };
	struct kvm_enable_cap cap = { 0 };
	struct kvm_dirty_log log = { .dirty_bitmap = buf };
	struct kvm_create_device dev = { .type = 0xffff };
	struct kvm_signal_mask *sigmask = (void *)buf;
	struct {
		const char *name;
		int fd;
		unsigned long req;
		void *arg;
	} calls[] = {
		{ "vm:CREATE_VCPU", vm, KVM_CREATE_VCPU, (void *)1 },
		{ "vm:SET_USER_MEMORY_REGION", vm, KVM_SET_USER_MEMORY_REGION, &region },
		{ "vm:CHECK_EXTENSION", vm, KVM_CHECK_EXTENSION, (void *)KVM_CAP_USER_MEMORY },
		{ "vm:GET_CLOCK", vm, KVM_GET_CLOCK, buf },
		{ "vm:CREATE_IRQCHIP", vm, KVM_CREATE_IRQCHIP, NULL },
		{ "vm:IRQFD", vm, KVM_IRQFD, &irqfd },
		{ "vm:ENABLE_CAP", vm, KVM_ENABLE_CAP, &cap },
		{ "vm:GET_DIRTY_LOG", vm, KVM_GET_DIRTY_LOG, &log },
		{ "vm:CREATE_DEVICE", vm, KVM_CREATE_DEVICE, &dev },
		{ "vm:unknown", vm, _IO(KVMIO, 0xfe), NULL },
		{ "vcpu:RUN", vcpu, KVM_RUN, NULL },
		{ "vcpu:GET_REGS", vcpu, KVM_GET_REGS, buf },
		{ "vcpu:SET_REGS", vcpu, KVM_SET_REGS, buf },
		{ "vcpu:GET_SREGS", vcpu, KVM_GET_SREGS, buf },
		{ "vcpu:GET_MP_STATE", vcpu, KVM_GET_MP_STATE, buf },
		{ "vcpu:SET_SIGNAL_MASK", vcpu, KVM_SET_SIGNAL_MASK, sigmask },
		{ "vcpu:GET_VCPU_EVENTS", vcpu, KVM_GET_VCPU_EVENTS, buf },
		{ "vcpu:GET_ONE_REG", vcpu, KVM_GET_ONE_REG, buf },
		{ "vcpu:SMI", vcpu, KVM_SMI, NULL },
		{ "vcpu:unknown", vcpu, _IO(KVMIO, 0xfe), NULL },
		{ "vcpu:foreign-type", vcpu, _IO(0xAF, 0x01), NULL },
	};
	unsigned int i;

	memset(buf, 0, sizeof(buf));
	for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		int e = try_ioctl(calls[i].fd, calls[i].req, calls[i].arg);

		if (e != EIO) {
			kcheck(key, "%s:%s", calls[i].name, errname(e));
			return;
		}
	}
	kinfo("%s: %u ioctls, all EIO", key, i);
	kcheck(key, "EIO");
}

struct stats_call {
	int fd, result, err;
	int64_t ms;
	volatile int done;
};

static void *stats_call_thread(void *arg)
{
	struct stats_call *c = arg;
	int64_t t0 = now_ms();

	c->result = ioctl(c->fd, KVM_GET_STATS_FD, NULL);
	c->err = c->result < 0 ? errno : 0;
	c->ms = now_ms() - t0;
	c->done = 1;
	return NULL;
}

/* ---- same uid: dumpable, non-dumpable, after exec, after exit ------------- */

#define UID 1000

static void become(uid_t uid)
{
	if (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid))
		die("setresuid");
}

static void owner2_main(int kvm, int to, int from)
{
	int vm;

	become(UID);
	prctl(PR_SET_DUMPABLE, 1);	/* the uid change made it non-dumpable */
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM as uid 1000");
	if (write(to, &vm, sizeof(vm)) != sizeof(vm))
		die("pipe write");
	if (recv_byte(from, 30000) != 'N')
		die("protocol");
	prctl(PR_SET_DUMPABLE, 0);
	send_byte(to, 'n');
	if (recv_byte(from, 30000) != 'E')
		die("protocol");
	/* The VM now belongs to no running program: its mm is gone. */
	execl("/bin/busybox", "sleep", "60", (char *)NULL);
	die("exec");
}

static void check_same_uid(void)
{
	int kvm, to[2], from[2], ovm, pidfd, vm, status;
	pid_t owner2, peer;

	kvm = open("/dev/kvm", O_RDWR);
	if (kvm < 0 || pipe(to) || pipe(from))
		die("setup");
	owner2 = fork();
	if (owner2 < 0)
		die("fork");
	if (owner2 == 0) {
		close(to[0]);
		close(from[1]);
		owner2_main(kvm, to[1], from[0]);
	}
	close(kvm);
	close(to[1]);
	close(from[0]);
	if (read(to[0], &ovm, sizeof(ovm)) != sizeof(ovm))
		die("owner2 setup");
	pidfd = pidfd_open(owner2, 0);
	vm = pidfd < 0 ? -1 : pidfd_getfd(pidfd, ovm, 0);
	if (vm < 0)
		die("pidfd_getfd owner2");

	peer = fork();
	if (peer < 0)
		die("fork");
	if (peer == 0) {
		int fd;

		become(UID);	/* no capabilities left */
		fd = ioctl(vm, KVM_GET_STATS_FD, NULL);
		kcheck("sameuid_vm_stats", "%s", errname(fd < 0 ? errno : 0));
		send_byte(from[1], 'N');
		if (recv_byte(to[0], 30000) != 'n')
			die("protocol");
		fd = ioctl(vm, KVM_GET_STATS_FD, NULL);
		kcheck("sameuid_nondumpable_vm_stats", "%s", errname(fd < 0 ? errno : 0));
		send_byte(from[1], 'E');
		_exit(0);
	}
	if (waitpid(peer, &status, 0) != peer || !WIFEXITED(status) || WEXITSTATUS(status))
		die("peer");
	/* Wait for the exec: /proc/<pid>/exe changes (busybox). */
	{
		char path[64], exe[256];
		int i;
		ssize_t n = 0;

		snprintf(path, sizeof(path), "/proc/%d/exe", owner2);
		for (i = 0; i < 300; i++) {
			n = readlink(path, exe, sizeof(exe) - 1);
			if (n > 0 && (exe[n] = 0, strstr(exe, "busybox")))
				break;
			usleep(10 * 1000);
		}
		if (i == 300)
			die("owner2 exec");
	}
	{
		int fd = ioctl(vm, KVM_GET_STATS_FD, NULL);

		kcheck("sameuid_after_exec_vm_stats", "%s", errname(fd < 0 ? errno : 0));
	}
	kill(owner2, SIGKILL);
	waitpid(owner2, &status, 0);
	{
		int fd = ioctl(vm, KVM_GET_STATS_FD, NULL);

		kcheck("after_exit_vm_stats", "%s", errname(fd < 0 ? errno : 0));
	}
	close(vm);
	close(pidfd);
}

/* ---- the observer -------------------------------------------------------- */

int main(int argc, char **argv)
{
	int to_obs[2], from_obs[2], ofds[4], pidfd, vm, vcpu, o_vm_stats, o_vcpu_stats;
	int vm_stats, vcpu_stats, status;
	pid_t owner, holder;

	(void)argc;
	(void)argv;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (pipe2(to_obs, O_CLOEXEC) || pipe2(from_obs, O_CLOEXEC))
		die("pipe");
	owner = fork();
	if (owner < 0)
		die("fork");
	if (owner == 0) {
		close(to_obs[0]);
		close(from_obs[1]);
		owner_main(to_obs[1], from_obs[0]);
	}
	close(to_obs[1]);
	close(from_obs[0]);
	alarm(120);	/* nothing here may take that long */

	{
		struct pollfd p = { .fd = to_obs[0], .events = POLLIN };

		if (poll(&p, 1, 30000) != 1 || read(to_obs[0], ofds, sizeof(ofds)) != sizeof(ofds))
			die("owner setup");
	}
	if (recv_byte(to_obs[0], 30000) != 'H')
		die("protocol");
	kcheck("owner_guest_halted", "yes");

	pidfd = pidfd_open(owner, 0);
	if (pidfd < 0)
		die("pidfd_open");
	vm = pidfd_getfd(pidfd, ofds[0], 0);
	vcpu = pidfd_getfd(pidfd, ofds[1], 0);
	o_vm_stats = pidfd_getfd(pidfd, ofds[2], 0);
	o_vcpu_stats = pidfd_getfd(pidfd, ofds[3], 0);
	if (vm < 0 || vcpu < 0 || o_vm_stats < 0 || o_vcpu_stats < 0)
		die("pidfd_getfd");
	kcheck("owner_vcpu_exits_nonzero", "%s",
	       stat_value(o_vcpu_stats, "exits") > 0 ? "yes" : "no");

	/* Step 1: the vCPU is halted, out of KVM_RUN: everything is still. */
	vm_stats = ioctl(vm, KVM_GET_STATS_FD, NULL);
	kcheck("observer_vm_stats", "%s", errname(vm_stats < 0 ? errno : 0));
	vcpu_stats = ioctl(vcpu, KVM_GET_STATS_FD, NULL);
	kcheck("observer_vcpu_stats", "%s", errname(vcpu_stats < 0 ? errno : 0));
	if (vm_stats >= 0) {
		kcheck("observer_vm_stats_rdonly", "%s",
		       (fcntl(vm_stats, F_GETFL) & O_ACCMODE) == O_RDONLY ? "yes" : "no");
		kcheck("observer_vm_stats_same", "%s", same_contents(vm_stats, o_vm_stats));
	}
	if (vcpu_stats >= 0) {
		kcheck("observer_vcpu_stats_same", "%s", same_contents(vcpu_stats, o_vcpu_stats));
		kinfo("vcpu exits read by the observer: %lld",
		      (long long)stat_value(vcpu_stats, "exits"));
	}
	check_foreign_ioctls("observer_other_ioctls", vm, vcpu);

	/* Step 2: a holder of the same fds without privilege. */
	holder = fork();
	if (holder < 0)
		die("fork");
	if (holder == 0) {
		int a, b;

		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			die("setuid nobody");
		a = ioctl(vm, KVM_GET_STATS_FD, NULL);
		kcheck("nobody_vm_stats", "%s", errname(a < 0 ? errno : 0));
		b = ioctl(vcpu, KVM_GET_STATS_FD, NULL);
		kcheck("nobody_vcpu_stats", "%s", errname(b < 0 ? errno : 0));
		check_foreign_ioctls("nobody_other_ioctls", vm, vcpu);
		/* What it got before dropping privileges still reads. */
		kcheck("nobody_reads_passed_stats_fd", "%s",
		       stat_value(o_vcpu_stats, "exits") > 0 ? "yes" : "no");
		_exit(0);
	}
	if (waitpid(holder, &status, 0) != holder || !WIFEXITED(status) || WEXITSTATUS(status))
		die("holder");

	/* Step 3: the vCPU runs "jmp $" in KVM_RUN, never leaving the kernel. */
	send_byte(from_obs[1], 'R');
	if (recv_byte(to_obs[0], 10000) != 'D')
		die("protocol");
	{
		int64_t e0 = stat_value(o_vcpu_stats, "exits"), e1;

		usleep(300 * 1000);
		e1 = stat_value(o_vcpu_stats, "exits");
		kinfo("running vcpu exits: %lld -> %lld", (long long)e0, (long long)e1);
	}
	{
		struct stats_call c = { .fd = vcpu };
		pthread_t t;
		int64_t t0 = now_ms();

		if (pthread_create(&t, NULL, stats_call_thread, &c))
			die("pthread_create");
		while (!c.done && now_ms() - t0 < RUNNING_BOUND_MS)
			usleep(10 * 1000);
		if (!c.done) {
			kcheck("observer_running_vcpu_stats", "blocked");
		} else {
			kinfo("observer's call on the running vCPU took %lld ms", (long long)c.ms);
			kcheck("observer_running_vcpu_stats", "%s", errname(c.err));
			if (c.result >= 0) {
				int64_t a = stat_value(c.result, "exits"), b;

				usleep(300 * 1000);
				b = stat_value(c.result, "exits");
				kinfo("exits read by the observer on the running vCPU: %lld -> %lld",
				      (long long)a, (long long)b);
				kcheck("observer_running_vcpu_layout_same", "%s",
				       same_layout(c.result, o_vcpu_stats));
				kcheck("observer_running_vcpu_exits_moving", "%s",
				       a >= 0 && b > a ? "yes" : "no");
			}
		}
		/* A blocked call ends with us: SIGKILL of the owner does not end it. */
	}
	kill(owner, SIGKILL);
	waitpid(owner, &status, 0);
	check_same_uid();
	printf("KCHECK-DONE\n");
	fflush(stdout);
	/* exit_group also kills a thread still waiting in KVM_GET_STATS_FD. */
	_exit(0);
}
