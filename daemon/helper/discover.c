/* SPDX-License-Identifier: MIT */
/* discover - see discover.h. */
#include "discover.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "borrow.h"
#include "log.h"
#include "qemu_name.h"

#define MAX_CANDIDATES 1024	  /* stats fds looked at per process and scan */
#define CMDLINE_SIZE (256 * 1024) /* libvirt's command lines run long */

struct candidates {
	int vm[MAX_CANDIDATES];	   /* VM stats fds */
	int vcpu[MAX_CANDIDATES];  /* vCPU stats fds */
	int vm_fd[MAX_CANDIDATES]; /* VM fds, when we may borrow them */
	int vcpu_fd[MAX_CANDIDATES];
	int vcpu_fd_idx[MAX_CANDIDATES]; /* from the link: kvm-vcpu:<n> */
	size_t n_vm, n_vcpu, n_vm_fd, n_vcpu_fd;
	bool borrow;
	struct hvm *found[MAX_CANDIDATES]; /* new VMs of this process */
};

int discovery_init(struct discovery *d, struct vmtable *vt, bool borrow)
{
	*d = (struct discovery){ .vt = vt, .borrow = borrow, .cmdline_size = CMDLINE_SIZE };
	d->cmdline = malloc(d->cmdline_size);
	d->c = malloc(sizeof(*d->c));
	if (d->cmdline && d->c)
		return 0;
	discovery_fini(d);
	return -ENOMEM;
}

void discovery_fini(struct discovery *d)
{
	free(d->cmdline);
	free(d->c);
	d->cmdline = NULL;
	d->c = NULL;
}

/* One fd of the process: a stats fd, or (if we may borrow) a VM or vCPU fd. */
static void add_candidate(void *arg, int fd, const char *link)
{
	struct candidates *c = arg;

	if (!strcmp(link, "anon_inode:kvm-vm-stats") && c->n_vm < MAX_CANDIDATES)
		c->vm[c->n_vm++] = fd;
	else if (!strncmp(link, "anon_inode:kvm-vcpu-stats:", 26) && c->n_vcpu < MAX_CANDIDATES)
		c->vcpu[c->n_vcpu++] = fd;
	else if (c->borrow && borrow_link_is_vm(link) && c->n_vm_fd < MAX_CANDIDATES)
		c->vm_fd[c->n_vm_fd++] = fd;
	else if (c->borrow && borrow_link_is_vcpu(link) && c->n_vcpu_fd < MAX_CANDIDATES) {
		c->vcpu_fd_idx[c->n_vcpu_fd] = atoi(link + strlen("anon_inode:kvm-vcpu:"));
		c->vcpu_fd[c->n_vcpu_fd++] = fd;
	}
}

/*
 * Our checked copy of their fd (pidfd_getfd, or borrowed: a stats fd made
 * from their VM or vCPU fd), or -1. Checked like any other: the kernel
 * wrote it, but the fd number may have been reused since the listing.
 */
static int take_copy(const struct sysops *ops, int pidfd, pid_t pid, int their_fd,
		     enum fd_kind kind, bool borrowed, struct fdcheck_result *res)
{
	int fd = borrowed ? ops->borrow_fd(ops->ctx, pidfd, their_fd)
			  : ops->take_fd(ops->ctx, pidfd, their_fd);

	if (fd < 0 && borrowed)
		log_debug("discovery: pid %d fd %d: no stats fd from it: %s", (int)pid, their_fd,
			  strerror(-fd));
	if (fd >= 0 && sysops_check_owned(ops, fd, kind, pid, res) < 0) {
		close(fd);
		fd = -1;
	}
	return fd < 0 ? -1 : fd;
}

/* QEMU's -name on the command line of pid, or "". */
static void cmdline_name(struct discovery *d, pid_t pid, char *out, size_t size)
{
	const struct sysops *ops = d->vt->ops;
	ssize_t len = ops->proc_read(ops->ctx, pid, "cmdline", d->cmdline, d->cmdline_size);

	out[0] = '\0';
	if (len > 0) /* (an argument cut at the end is ignored by the parser) */
		qemu_name_from_cmdline(d->cmdline, (size_t)len, out,
				       size < KVMSTAT_NAME_MAX ? size : KVMSTAT_NAME_MAX);
}

/*
 * A checked VM stats fd (ours; closed here) into the table, named after
 * the VMM's -name, else by the default rule with their fd number as the
 * handle: NULL means stop.
 */
static struct hvm *new_vm(struct discovery *d, pid_t pid, uid_t uid, int pidfd, int fd,
			  enum ipc_origin origin, int their_fd)
{
	char why[KVMSTAT_REASON_MAX], wanted[KVMSTAT_NAME_MAX],
	    name[sizeof(((struct hvm *)0)->name)];
	const struct sysops *ops = d->vt->ops;
	uint64_t created = ops->real_ns(ops->ctx);
	struct hvm *vm = NULL;
	int rc;

	cmdline_name(d, pid, wanted, sizeof(wanted));
	rc = vmtable_name(d->vt, wanted, false, pid, (uint64_t)their_fd, name, sizeof(name), why,
			  sizeof(why));
	/* its counters started after the VMM did: a safe lower bound */
	ops->start_time_ns(ops->ctx, pid, &created);
	if (rc == 0)
		rc = vmtable_add_vm(
		    d->vt,
		    &(struct vt_new_vm){ .pid = pid,
					 .uid = uid,
					 .pidfd = pidfd,
					 .stats_fd = fd,
					 .origin = origin,
					 .name = name,
					 .borrowed_fd = origin == ORIGIN_BORROWED ? their_fd : -1,
					 .created_ns = created },
		    &vm, why, sizeof(why));
	if (rc < 0)
		log_warn("discovery: VM of pid %d (uid %u) left out: %s", (int)pid, (unsigned)uid,
			 why);
	close(fd);
	return vm;
}

/*
 * New VMs of one process into c->found: from its VM stats fds if it has
 * any, else from its VM fds (borrowed); never both (one VM twice).
 */
static unsigned take_vms(struct discovery *d, pid_t pid, uid_t uid, int pidfd)
{
	struct candidates *c = d->c;
	bool borrowed = c->n_vm == 0;
	const int *theirs = borrowed ? c->vm_fd : c->vm;
	size_t n = borrowed ? c->n_vm_fd : c->n_vm;
	struct fdcheck_result res;
	unsigned found = 0;

	for (size_t i = 0; i < n; i++) {
		struct hvm *vm;
		int fd;

		if (borrowed ? vmtable_borrowed(d->vt, pid, theirs[i]) != NULL
			     : vmtable_by_file(d->vt, pid, theirs[i], pid) != NULL)
			continue;
		fd = take_copy(d->vt->ops, pidfd, pid, theirs[i], FD_VM_STATS, borrowed, &res);
		if (fd < 0)
			continue;
		vm = new_vm(d, pid, uid, pidfd, fd, borrowed ? ORIGIN_BORROWED : ORIGIN_DISCOVERED,
			    theirs[i]);
		if (!vm)
			break;
		c->found[found++] = vm;
	}
	return found;
}

/*
 * vCPU fds go to the process's VM only when it holds exactly one VM stats
 * fd (the kernel links a vCPU to its VM in no way) and discovery found
 * that VM: a VMM that registered its VM chose which vCPUs to send.
 */
static struct hvm *only_vm(struct discovery *d, pid_t pid)
{
	const struct candidates *c = d->c;
	struct hvm *vm = NULL;

	if (c->n_vm == 1)
		vm = vmtable_by_file(d->vt, pid, c->vm[0], pid);
	else if (c->n_vm == 0 && c->n_vm_fd == 1)
		vm = vmtable_borrowed(d->vt, pid, c->vm_fd[0]);
	return vm && vm->origin != ORIGIN_REGISTERED ? vm : NULL;
}

/* One more vCPU stats fd (ours; closed here) for vm, if it is new and fits. */
static unsigned add_vcpu(struct discovery *d, struct hvm *vm, int fd, int vcpu)
{
	char why[KVMSTAT_REASON_MAX];
	bool added =
	    vmtable_vcpu_slot(vm, vcpu) < 0 &&
	    vmtable_add_vcpus(d->vt, vm, &vcpu, &fd, 1, vm->created_ns, why, sizeof(why)) == 0;

	close(fd);
	return added;
}

static unsigned take_vcpus(struct discovery *d, struct hvm *vm, int pidfd)
{
	const struct candidates *c = d->c;
	struct fdcheck_result res;
	pid_t pid = vm->proc->pid;
	unsigned added = 0;

	for (size_t i = 0; i < c->n_vcpu; i++) {
		int fd;

		if (vmtable_has_vcpu_file(d->vt, vm, pid, c->vcpu[i]))
			continue;
		fd = take_copy(d->vt->ops, pidfd, pid, c->vcpu[i], FD_VCPU_STATS, false, &res);
		if (fd >= 0)
			added += add_vcpu(d, vm, fd, res.vcpu);
	}
	/* vCPUs with no stats fd of the VMM's: from their vCPU fds (borrow.h) */
	for (size_t i = 0; i < c->n_vcpu_fd; i++) {
		int fd;

		if (vmtable_vcpu_slot(vm, c->vcpu_fd_idx[i]) >= 0)
			continue;
		fd = take_copy(d->vt->ops, pidfd, pid, c->vcpu_fd[i], FD_VCPU_STATS, true, &res);
		if (fd >= 0)
			added += add_vcpu(d, vm, fd, res.vcpu);
	}
	return added;
}

/*
 * The VMM's effective uid, gid and groups, as SO_PEERCRED would have told
 * (not the owner of /proc/<pid>: that is root for a non-dumpable process).
 */
static int creds_of(const struct sysops *ops, pid_t pid, uid_t *uid, gid_t *gid, gid_t *groups,
		    size_t *n_groups)
{
	char buf[4096], *line, *save = NULL, *gsave = NULL;
	unsigned r, e;
	int found = 0;

	if (ops->proc_read(ops->ctx, pid, "status", buf, sizeof(buf)) <= 0)
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

/* Is pid's VMM ours to read: it holds KVM fds and the policy admits its uid? */
static bool worth_a_look(struct discovery *d, pid_t pid, uid_t *uid)
{
	const struct sysops *ops = d->vt->ops;
	const struct hproc *p = vmtable_proc(d->vt, pid);
	struct candidates *c = d->c;
	char why[KVMSTAT_REASON_MAX];
	gid_t gid = 0, groups[64];
	size_t n_groups = 0;

	/* a VMM that registered once names its own VMs, even one it unregistered */
	if (p && p->registers)
		return false;
	c->n_vm = c->n_vcpu = c->n_vm_fd = c->n_vcpu_fd = 0;
	c->borrow = d->borrow;
	if (ops->list_fds(ops->ctx, pid, add_candidate, c) < 0 ||
	    (c->n_vm == 0 && c->n_vcpu == 0 && c->n_vm_fd == 0))
		return false;
	/* not ours to export: the same rule as for registration */
	return creds_of(ops, pid, uid, &gid, groups, &n_groups) == 0 &&
	       !(d->vt->policy &&
		 policy_admit(d->vt->policy, *uid, gid, groups, n_groups, why, sizeof(why)) < 0);
}

static void log_found(const struct candidates *c, unsigned found, pid_t pid, uid_t uid)
{
	for (unsigned i = 0; i < found; i++) {
		const struct hvm *vm = c->found[i];
		bool borrowed = vm->origin == ORIGIN_BORROWED;

		log_event(
		    LOG_LVL_INFO,
		    &(struct log_fields){ vm->name, pid, borrowed ? "borrowed" : "discovered" },
		    "discovery: VM \"%s\" of pid %d (uid %u, %s) with %u vCPUs%s", vm->name,
		    (int)pid, (unsigned)uid, vm->proc->comm, vm->n_vcpus,
		    borrowed ? ", from its VM and vCPU fds" : "");
	}
	if (found > 1 && (c->n_vcpu || c->n_vcpu_fd))
		log_info("discovery: pid %d has %u VMs: its vCPU stats fds cannot be told apart "
			 "and are left out (register them instead)",
			 (int)pid, found);
}

void discover_pid(struct discovery *d, pid_t pid, struct scan_counts *n)
{
	const struct sysops *ops = d->vt->ops;
	struct candidates *c = d->c;
	unsigned found = 0;
	struct hvm *vm;
	uid_t uid = 0;
	int pidfd;

	n->procs++;
	if (!worth_a_look(d, pid, &uid))
		return;
	pidfd = ops->pidfd_open(ops->ctx, pid);
	if (pidfd < 0)
		return;
	found = take_vms(d, pid, uid, pidfd);
	n->vms += found;
	vm = c->n_vcpu || c->n_vcpu_fd ? only_vm(d, pid) : NULL;
	if (vm)
		n->vcpus += take_vcpus(d, vm, pidfd);
	else if ((c->n_vcpu || c->n_vcpu_fd) && !found)
		log_debug("discovery: pid %d holds vCPU stats fds, and the stats fds of "
			  "several VMs or of none: vCPUs left out",
			  (int)pid);
	log_found(c, found, pid, uid);
	close(pidfd);
}

void discover_scan(struct discovery *d, const pid_t *skip, size_t n_skip, struct scan_counts *n)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;

	while (dir && (de = readdir(dir))) {
		pid_t pid = (pid_t)atoi(de->d_name);
		bool skipped = pid <= 0;

		for (size_t i = 0; i < n_skip && !skipped; i++)
			skipped = skip[i] == pid;
		if (!skipped)
			discover_pid(d, pid, n);
	}
	if (dir)
		closedir(dir);
}
