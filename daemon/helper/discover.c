/* SPDX-License-Identifier: MIT */
/*
 * discover - find VMs whose VMM holds stats fds but never registered.
 *
 * A scan reads /proc/<pid>/fd of every process (the link names only: it
 * never touches a foreign fd's file) and, for a process holding
 * kvm-vm-stats or kvm-vcpu-stats fds we do not have yet, takes copies
 * with pidfd_getfd. Each copy passes the same checks as a registered fd
 * (fdcheck, and the owner rule: the id's tid is a thread of the holder,
 * so a tool that merely borrowed fds is not mistaken for the VMM), the
 * same limits and the same per-uid policy. A VM already known (the same
 * open file, by kcmp) is skipped: one VM is one source however it came.
 *
 * The kernel does not link a vCPU stats fd to its VM. vCPU fds are given
 * to the process's VM when it has exactly one and discovery found it;
 * with several, they are left out (the log says so).
 *
 * A process connected to the registration socket, or with a VM it
 * registered, is left to register its own VMs.
 *
 * On a kernel that lets an observer ask for stats fds (borrow.h), a
 * process holding no VM stats fd but a VM fd (an unmodified VMM) has its
 * VM and vCPU fds borrowed and turned into stats fds: the same checks
 * follow, and the borrowed fds are closed at once. Such a VM is
 * remembered by the VMM's fd number, since we keep no file to compare.
 *
 * Scans run every [discovery] interval_s, shortly after a VMM registers
 * or exits, and need CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH for other
 * users' processes.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "borrow.h"
#include "clock.h"
#include "fdcheck.h"
#include "helper_state.h"
#include "log.h"
#include "procfs.h"
#include "qemu_name.h"

#define MAX_CANDIDATES 1024 /* stats fds looked at per process and scan */

struct candidates {
	int vm[MAX_CANDIDATES];	   /* VM stats fds */
	int vcpu[MAX_CANDIDATES];  /* vCPU stats fds */
	int vm_fd[MAX_CANDIDATES]; /* VM fds, when we may borrow them */
	int vcpu_fd[MAX_CANDIDATES];
	int vcpu_fd_idx[MAX_CANDIDATES]; /* from the link: kvm-vcpu:<n> */
	size_t n_vm, n_vcpu, n_vm_fd, n_vcpu_fd;
	struct hvm *found[MAX_CANDIDATES]; /* new VMs of this process */
};

/* A VM or vCPU fd worth borrowing, by its link name. */
static void add_kvm_fd(struct candidates *c, int fd, const char *link)
{
	if (borrow_link_is_vm(link) && c->n_vm_fd < MAX_CANDIDATES) {
		c->vm_fd[c->n_vm_fd++] = fd;
	} else if (borrow_link_is_vcpu(link) && c->n_vcpu_fd < MAX_CANDIDATES) {
		c->vcpu_fd_idx[c->n_vcpu_fd] = atoi(link + strlen("anon_inode:kvm-vcpu:"));
		c->vcpu_fd[c->n_vcpu_fd++] = fd;
	}
}

/* The stats fds a process holds (and VM and vCPU fds if borrow), by their link names. */
static int list_stats_fds(pid_t pid, struct candidates *c, bool borrow)
{
	char path[64], link[64];
	struct dirent *de;
	DIR *d;
	int dfd;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return -ENOMEM;
	}
	c->n_vm = c->n_vcpu = c->n_vm_fd = c->n_vcpu_fd = 0;
	while ((de = readdir(d))) {
		ssize_t n = readlinkat(dfd, de->d_name, link, sizeof(link) - 1);
		int fd = atoi(de->d_name);

		if (n <= 0 || !isdigit((unsigned char)de->d_name[0]))
			continue;
		link[n] = '\0';
		if (!strcmp(link, "anon_inode:kvm-vm-stats") && c->n_vm < MAX_CANDIDATES)
			c->vm[c->n_vm++] = fd;
		else if (!strncmp(link, "anon_inode:kvm-vcpu-stats:", 26) &&
			 c->n_vcpu < MAX_CANDIDATES)
			c->vcpu[c->n_vcpu++] = fd;
		else if (borrow)
			add_kvm_fd(c, fd, link);
	}
	closedir(d);
	return 0;
}

/* Is their fd the same open file as our fd? (kcmp, no copy needed) */
static bool theirs_is(pid_t pid, int their_fd, int our_fd)
{
	return syscall(SYS_kcmp, getpid(), pid, KCMP_FILE, our_fd, their_fd) == 0;
}

/* Only this process's VMs: another's fd held here fails the owner rule. */
static struct hvm *known_vm(struct helper *h, pid_t pid, int their_fd)
{
	for (size_t i = 0; i < h->n_vms; i++)
		if (h->vms[i]->proc->pid == pid && theirs_is(pid, their_fd, h->vms[i]->stats_fd))
			return h->vms[i];
	return NULL;
}

static bool known_vcpu(const struct hvm *vm, pid_t pid, int their_fd)
{
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		if (theirs_is(pid, their_fd, vm->vcpu_fds[i]))
			return true;
	return false;
}

/* A checked copy of their fd, or -1. */
static int take_copy(int pidfd, pid_t pid, int their_fd, enum fd_kind kind,
		     struct fdcheck_result *res)
{
	int fd = (int)syscall(SYS_pidfd_getfd, pidfd, their_fd, 0);

	if (fd < 0)
		return -1;
	if (fdcheck_stats_fd(fd, kind, res) < 0 || !fdcheck_is_thread_of(res->id_pid, pid)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Call before vm joins the table under this name (it would find itself). */
static void vm_name(struct helper *h, pid_t pid, uint32_t id, char *out, size_t size)
{
	static char buf[256 * 1024]; /* libvirt's command lines run long */
	ssize_t len = procfs_read(pid, "cmdline", buf, sizeof(buf));

	out[0] = '\0';
	if (len > 0) /* (an argument cut at the end is ignored by the parser) */
		qemu_name_from_cmdline(buf, (size_t)len, out,
				       size < KVMSTAT_NAME_MAX ? size : KVMSTAT_NAME_MAX);
	if (out[0] && !helper_name_taken(h, out))
		return;
	snprintf(out, size, "kvm-%d", (int)pid);
	if (helper_name_taken(h, out))
		snprintf(out, size, "kvm-%d-%u", (int)pid, (unsigned)id);
}

static struct hproc *find_proc(struct helper *h, pid_t pid)
{
	for (size_t i = 0; i < h->n_procs; i++)
		if (h->procs[i]->pid == pid)
			return h->procs[i];
	return NULL;
}

static struct hproc *proc_of(struct helper *h, pid_t pid, uid_t uid, int pidfd)
{
	struct hproc *p = find_proc(h, pid);

	return p ? p : helper_get_proc(h, pid, uid, pidfd);
}

/* A VM this process's VM fd their_fd was borrowed for, in an earlier scan. */
static struct hvm *borrowed_vm(struct helper *h, pid_t pid, int their_fd)
{
	for (size_t i = 0; i < h->n_vms; i++)
		if (h->vms[i]->proc->pid == pid && h->vms[i]->origin == ORIGIN_BORROWED &&
		    h->vms[i]->borrowed_fd == their_fd)
			return h->vms[i];
	return NULL;
}

/* A checked VM stats fd (ours; closed here) into the table: NULL means stop. */
static struct hvm *new_vm(struct helper *h, pid_t pid, uid_t uid, int pidfd, int fd,
			  enum ipc_origin origin)
{
	char why[KVMSTAT_REASON_MAX], name[sizeof(((struct hvm *)0)->name)];
	struct hproc *p = proc_of(h, pid, uid, pidfd);
	struct hvm *vm = NULL;

	if (!p || helper_room(h, p, NULL, 0, 1, p->uid, why, sizeof(why)) < 0) {
		log_warn("discovery: VM of pid %d (uid %u) left out: %s", (int)pid, (unsigned)uid,
			 p ? why : "out of memory");
		goto out;
	}
	vm_name(h, pid, h->next_vm_id, name, sizeof(name));
	vm = helper_new_vm(h, p, fd);
	if (!vm) {
		helper_refund(h, p->uid, 1);
		goto out;
	}
	vm->origin = origin;
	/* its counters started after the VMM did: a safe lower bound */
	procfs_start_time_ns(pid, &vm->created_ns);
	snprintf(vm->name, sizeof(vm->name), "%s", name);
out:
	close(fd);
	return vm;
}

/* New VMs of one process, from the stats fds it holds, into c->found. */
static unsigned take_vms(struct helper *h, pid_t pid, uid_t uid, int pidfd, struct candidates *c)
{
	struct fdcheck_result res;
	unsigned found = 0;

	for (size_t i = 0; i < c->n_vm; i++) {
		struct hvm *vm;
		int fd;

		if (known_vm(h, pid, c->vm[i]))
			continue;
		fd = take_copy(pidfd, pid, c->vm[i], FD_VM_STATS, &res);
		if (fd < 0)
			continue;
		if (!(vm = new_vm(h, pid, uid, pidfd, fd, ORIGIN_DISCOVERED)))
			break;
		c->found[found++] = vm;
	}
	return found;
}

/*
 * A stats fd made from their VM or vCPU fd, checked like any other (the
 * kernel wrote it, but the fd number may have been reused since the
 * listing), or -1.
 */
static int take_borrowed(int pidfd, pid_t pid, int their_fd, enum fd_kind kind,
			 struct fdcheck_result *res)
{
	int fd = borrow_stats_fd(pidfd, their_fd);

	if (fd < 0) {
		log_debug("discovery: pid %d fd %d: no stats fd from it: %s", (int)pid, their_fd,
			  strerror(-fd));
		return -1;
	}
	if (fdcheck_stats_fd(fd, kind, res) < 0 || !fdcheck_is_thread_of(res->id_pid, pid)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* New VMs of a process that holds VM fds but no VM stats fd (borrow.h). */
static unsigned borrow_vms(struct helper *h, pid_t pid, uid_t uid, int pidfd, struct candidates *c)
{
	struct fdcheck_result res;
	unsigned found = 0;

	for (size_t i = 0; i < c->n_vm_fd; i++) {
		struct hvm *vm;
		int fd;

		if (borrowed_vm(h, pid, c->vm_fd[i]))
			continue;
		fd = take_borrowed(pidfd, pid, c->vm_fd[i], FD_VM_STATS, &res);
		if (fd < 0)
			continue;
		if (!(vm = new_vm(h, pid, uid, pidfd, fd, ORIGIN_BORROWED)))
			break;
		vm->borrowed_fd = c->vm_fd[i];
		c->found[found++] = vm;
	}
	return found;
}

/*
 * vCPU fds go to the process's VM only when it holds exactly one VM stats
 * fd (the kernel links a vCPU to its VM in no way) and discovery found
 * that VM: a VMM that registered its VM chose which vCPUs to send.
 */
static struct hvm *only_vm(struct helper *h, pid_t pid, const struct candidates *c)
{
	struct hvm *vm = c->n_vm == 1			   ? known_vm(h, pid, c->vm[0])
			 : c->n_vm == 0 && c->n_vm_fd == 1 ? borrowed_vm(h, pid, c->vm_fd[0])
							   : NULL;

	return vm && vm->origin != ORIGIN_REGISTERED ? vm : NULL;
}

/* One more vCPU stats fd (ours; closed here) for vm, if there is room. */
static bool add_vcpu(struct helper *h, struct hvm *vm, int fd, int vcpu)
{
	char why[KVMSTAT_REASON_MAX];
	bool added = false;

	if (helper_vcpu_slot(vm, vcpu) < 0 &&
	    helper_room(h, vm->proc, vm, 1, 1, vm->proc->uid, why, sizeof(why)) == 0) {
		added = helper_add_vcpu(vm, vcpu, fd) == 0;
		if (added)
			h->n_sources++;
		else
			helper_refund(h, vm->proc->uid, 1);
	}
	close(fd);
	return added;
}

static unsigned take_vcpus(struct helper *h, struct hvm *vm, int pidfd, const struct candidates *c)
{
	struct fdcheck_result res;
	pid_t pid = vm->proc->pid;
	unsigned added = 0;

	for (size_t i = 0; i < c->n_vcpu; i++) {
		int fd;

		if (known_vcpu(vm, pid, c->vcpu[i]))
			continue;
		fd = take_copy(pidfd, pid, c->vcpu[i], FD_VCPU_STATS, &res);
		if (fd >= 0)
			added += add_vcpu(h, vm, fd, res.vcpu);
	}
	/* vCPUs with no stats fd of the VMM's: from their vCPU fds (borrow.h) */
	for (size_t i = 0; i < c->n_vcpu_fd; i++) {
		int fd;

		if (helper_vcpu_slot(vm, c->vcpu_fd_idx[i]) >= 0)
			continue;
		fd = take_borrowed(pidfd, pid, c->vcpu_fd[i], FD_VCPU_STATS, &res);
		if (fd >= 0)
			added += add_vcpu(h, vm, fd, res.vcpu);
	}
	return added;
}

/*
 * The VMM's effective uid, gid and groups, as SO_PEERCRED would have told
 * (not the owner of /proc/<pid>: that is root for a non-dumpable process).
 */
static int creds_of(pid_t pid, uid_t *uid, gid_t *gid, gid_t *groups, size_t *n_groups)
{
	char buf[4096], *line, *save = NULL, *gsave = NULL;
	unsigned r, e;
	int found = 0;

	if (procfs_read(pid, "status", buf, sizeof(buf)) <= 0)
		return -ENOENT;
	*n_groups = 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "Uid: %u %u", &r, &e) == 2 && ++found)
			*uid = e;
		else if (sscanf(line, "Gid: %u %u", &r, &e) == 2 && ++found)
			*gid = e;
		else if (!strncmp(line, "Groups:", 7))
			for (char *t = strtok_r(line + 7, " \t", &gsave); t && *n_groups < 64;
			     t = strtok_r(NULL, " \t", &gsave))
				groups[(*n_groups)++] = (gid_t)strtoul(t, NULL, 10);
	}
	return found == 2 ? 0 : -EINVAL;
}

/*
 * A VMM that talks to us registers its own VMs: while it is connected, or
 * once it has registered one (even if it unregistered it since and keeps
 * the fd), discovery leaves it alone. Otherwise a scan between its
 * KVM_CREATE_VM and its REGISTER_VM would take the VM first, under a name
 * the VMM did not choose.
 */
static bool registers_itself(struct helper *h, pid_t pid)
{
	const struct hproc *p = find_proc(h, pid);

	if (p && p->registers)
		return true;
	for (size_t i = 0; i < h->n_conns; i++)
		if (h->conns[i]->pid == pid)
			return true;
	return false;
}

/* One process: returns how many VMs it brought; counts vCPUs in *vcpus. */
static unsigned scan_pid(struct helper *h, pid_t pid, struct candidates *c, unsigned *vcpus)
{
	char why[KVMSTAT_REASON_MAX];
	gid_t gid = 0, groups[64];
	size_t n_groups = 0;
	unsigned found = 0;
	struct hvm *vm;
	uid_t uid = 0;
	int pidfd;

	if (registers_itself(h, pid) || list_stats_fds(pid, c, h->borrow) < 0 ||
	    (c->n_vm == 0 && c->n_vcpu == 0 && c->n_vm_fd == 0))
		return 0;
	if (creds_of(pid, &uid, &gid, groups, &n_groups) < 0 ||
	    (h->policy &&
	     policy_admit(h->policy, uid, gid, groups, n_groups, why, sizeof(why)) < 0))
		return 0; /* not ours to export: the same rule as for registration */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return 0;
	/* its VM stats fds if it has any, else its VM fds: never both (one VM twice) */
	found = c->n_vm ? take_vms(h, pid, uid, pidfd, c) : borrow_vms(h, pid, uid, pidfd, c);
	vm = c->n_vcpu || c->n_vcpu_fd ? only_vm(h, pid, c) : NULL;
	if (vm) {
		unsigned first = vm->n_vcpus, added = take_vcpus(h, vm, pidfd, c);

		*vcpus += added;
		if (added && !(found == 1 && c->found[0] == vm)) /* a known VM's new vCPUs */
			helper_send_vcpus(h, vm, first, vm->created_ns);
	} else if ((c->n_vcpu || c->n_vcpu_fd) && !found) {
		log_debug("discovery: pid %d holds vCPU stats fds, and the stats fds of "
			  "several VMs or of none: vCPUs left out",
			  (int)pid);
	}
	for (unsigned i = 0; i < found; i++) {
		helper_send_vm(h, c->found[i]);
		log_event(LOG_LVL_INFO,
			  &(struct log_fields){
			      c->found[i]->name, pid,
			      c->found[i]->origin == ORIGIN_BORROWED ? "borrowed" : "discovered" },
			  "discovery: VM \"%s\" of pid %d (uid %u, %s) with %u vCPUs%s",
			  c->found[i]->name, (int)pid, (unsigned)uid, c->found[i]->proc->comm,
			  c->found[i]->n_vcpus,
			  c->found[i]->origin == ORIGIN_BORROWED ? ", from its VM and vCPU fds"
								 : "");
	}
	if (found > 1 && (c->n_vcpu || c->n_vcpu_fd))
		log_info("discovery: pid %d has %u VMs: its vCPU stats fds cannot be told apart "
			 "and are left out (register them instead)",
			 (int)pid, found);
	close(pidfd);
	return found;
}

void helper_discover(struct helper *h)
{
	uint64_t t0 = clock_mono_ns(), expirations;
	struct candidates *c = malloc(sizeof(*c));
	unsigned procs = 0, vms = 0, vcpus = 0;
	struct dirent *de;
	DIR *d;

	if (read(h->discover_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_debug("discovery timer: %s", strerror(errno));
	d = c ? opendir("/proc") : NULL;
	while (d && (de = readdir(d))) {
		pid_t pid = (pid_t)atoi(de->d_name);

		if (pid <= 0 || pid == getpid() || pid == h->worker)
			continue;
		procs++;
		vms += scan_pid(h, pid, c, &vcpus);
	}
	if (d)
		closedir(d);
	free(c);
	if (vms) {
		h->discovered += vms;
		helper_send_totals(h);
	}
	log_debug("discovery: %u processes scanned in %.1f ms: %u new VMs, %u new vCPUs", procs,
		  (double)(clock_mono_ns() - t0) / 1e6, vms, vcpus);
	if (!h->scanned) { /* the start-up scan: READY=1 once the worker has its VMs */
		h->scanned = true;
		helper_sync(h);
	}
	if (h->cfg->discovery_interval_s)
		helper_schedule_discovery(h, h->cfg->discovery_interval_s * 1000u);
}

void helper_schedule_discovery(struct helper *h, unsigned delay_ms)
{
	struct itimerspec its = { 0 }, cur;

	if (!h->cfg->discovery_enabled || h->discover_fd < 0)
		return;
	if (delay_ms == 0) /* soon, but after this batch of events: a burst is one scan */
		delay_ms = 100;
	if (timerfd_gettime(h->discover_fd, &cur) == 0 &&
	    (cur.it_value.tv_sec || cur.it_value.tv_nsec) &&
	    (uint64_t)cur.it_value.tv_sec * 1000u + (uint64_t)cur.it_value.tv_nsec / 1000000u <=
		delay_ms)
		return; /* a scan comes sooner anyway */
	its.it_value.tv_sec = delay_ms / 1000;
	its.it_value.tv_nsec = (long)(delay_ms % 1000) * 1000000L;
	timerfd_settime(h->discover_fd, 0, &its, NULL);
}
