/* SPDX-License-Identifier: MIT */
/* vmtable - see vmtable.h. */
#include "vmtable.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "escape.h"
#include "log.h"
#include "reason.h"

void vmtable_init(struct vmtable *t, const struct config *cfg, struct policy *policy,
		  const struct sysops *ops)
{
	*t = (struct vmtable){ .cfg = cfg, .policy = policy, .ops = ops, .next_vm_id = 1 };
}

struct hproc *vmtable_proc(const struct vmtable *t, pid_t pid)
{
	for (size_t i = 0; i < t->n_procs; i++)
		if (t->procs[i]->pid == pid)
			return t->procs[i];
	return NULL;
}

struct hvm *vmtable_by_handle(const struct vmtable *t, pid_t pid, uint64_t handle)
{
	for (size_t i = 0; i < t->n_vms; i++)
		if (t->vms[i]->has_handle && t->vms[i]->proc->pid == pid &&
		    t->vms[i]->handle == handle)
			return t->vms[i];
	return NULL;
}

/* One kcmp for every "is it the same open file" question. */
static bool same_file(const struct vmtable *t, pid_t holder, int fd, int our_fd)
{
	return t->ops->same_file(t->ops->ctx, holder ? holder : getpid(), fd, our_fd);
}

struct hvm *vmtable_by_file(const struct vmtable *t, pid_t holder, int fd, pid_t owner)
{
	for (size_t i = 0; i < t->n_vms; i++)
		if ((!owner || t->vms[i]->proc->pid == owner) &&
		    same_file(t, holder, fd, t->vms[i]->stats_fd))
			return t->vms[i];
	return NULL;
}

bool vmtable_has_vcpu_file(const struct vmtable *t, const struct hvm *vm, pid_t holder, int fd)
{
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		if (same_file(t, holder, fd, vm->vcpu_fds[i]))
			return true;
	return false;
}

struct hvm *vmtable_borrowed(const struct vmtable *t, pid_t pid, int their_fd)
{
	for (size_t i = 0; i < t->n_vms; i++)
		if (t->vms[i]->proc->pid == pid && t->vms[i]->origin == ORIGIN_BORROWED &&
		    t->vms[i]->borrowed_fd == their_fd)
			return t->vms[i];
	return NULL;
}

int vmtable_vcpu_slot(const struct hvm *vm, int vcpu)
{
	for (unsigned j = 0; j < vm->n_vcpus; j++)
		if (vm->vcpus[j] == vcpu)
			return (int)j;
	return -1;
}

bool vmtable_has_discovered(const struct vmtable *t, pid_t pid)
{
	for (size_t i = 0; i < t->n_vms; i++)
		if (!t->vms[i]->has_handle && t->vms[i]->proc->pid == pid)
			return true;
	return false;
}

bool vmtable_name_taken(const struct vmtable *t, const char *name)
{
	for (size_t i = 0; i < t->n_vms; i++)
		if (!strcmp(t->vms[i]->name, name))
			return true;
	return false;
}

int vmtable_name(const struct vmtable *t, const char *wanted, bool strict, pid_t pid,
		 uint64_t handle, char *out, size_t size, char *why, size_t why_size)
{
	if (wanted[0]) {
		snprintf(out, size, "%s", wanted);
		if (!vmtable_name_taken(t, out))
			return 0;
		if (strict)
			return reason_set(why, why_size, -EEXIST, "name \"%s\" is in use", out);
	}
	snprintf(out, size, "kvm-%d", (int)pid);
	if (vmtable_name_taken(t, out))
		snprintf(out, size, "kvm-%d-%llu", (int)pid, (unsigned long long)handle);
	if (vmtable_name_taken(t, out))
		return reason_set(why, why_size, -EEXIST, "default name \"%s\" in use", out);
	return 0;
}

/* The grace is over for these: the worker has closed them. */
static void release_retired(struct vmtable *t)
{
	uint64_t now = t->ops->mono_ns(t->ops->ctx);
	size_t j = 0;

	for (size_t i = 0; i < t->n_retiring; i++) {
		if (t->retiring[i].until_ns <= now) {
			t->n_sources -= t->retiring[i].n_fds;
			if (t->policy)
				policy_refund(t->policy, t->retiring[i].uid, t->retiring[i].n_fds);
		} else
			t->retiring[j++] = t->retiring[i];
	}
	t->n_retiring = j;
}

int vmtable_room(struct vmtable *t, const struct hproc *p, const struct hvm *vm, size_t n_vcpus,
		 size_t n_fds, char *why, size_t why_size)
{
	const struct config *cfg = t->cfg;

	release_retired(t);
	if (!vm && p && p->n_vms >= cfg->max_vms_per_peer)
		return reason_set(why, why_size, -ENOSPC,
				  "pid %d has %u VMs registered (max_vms_per_peer)", (int)p->pid,
				  p->n_vms);
	if ((vm ? vm->n_vcpus : 0) + n_vcpus > cfg->max_vcpus_per_vm)
		return reason_set(why, why_size, -ENOSPC,
				  "more than %u vCPUs for one VM (max_vcpus_per_vm)",
				  cfg->max_vcpus_per_vm);
	if (t->n_sources + n_fds > cfg->max_sources)
		return reason_set(
		    why, why_size, -ENOSPC,
		    "%u stats fds held already, some in their exit grace (max_sources %u)",
		    t->n_sources, cfg->max_sources);
	/* the worker's fds: sources, a pidfd per VM (live or in grace), its own */
	if (cfg->fd_limit && (unsigned long)t->n_sources + n_fds + t->n_vms + t->n_retiring + !vm +
				     CONFIG_FD_RESERVE >
				 cfg->fd_limit)
		return reason_set(why, why_size, -ENOSPC,
				  "%u stats fds and %zu VMs held already: the fd limit is %lu",
				  t->n_sources, t->n_vms + t->n_retiring, cfg->fd_limit);
	return 0;
}

/* The limits, then the uid's budget: charged only if both allow. */
static int reserve(struct vmtable *t, const struct hproc *p, const struct hvm *vm, uid_t uid,
		   size_t n_vcpus, size_t n_fds, char *why, size_t why_size)
{
	int rc = vmtable_room(t, p, vm, n_vcpus, n_fds, why, why_size);

	if (rc == 0 && t->policy)
		rc = policy_charge(t->policy, uid, (unsigned)n_fds, why, why_size);
	return rc;
}

static void refund(struct vmtable *t, uid_t uid, size_t n_fds)
{
	if (t->policy && n_fds)
		policy_refund(t->policy, uid, (unsigned)n_fds);
}

/* Our copies of fds[0..n) into out, all or none: 0 or -errno. */
static int copy_fds(const struct vmtable *t, const int *fds, size_t n, int *out)
{
	int rc = 0;
	size_t i;

	for (i = 0; i < n && rc == 0; i++) {
		out[i] = t->ops->copy_fd(t->ops->ctx, fds[i]);
		if (out[i] < 0)
			rc = out[i];
	}
	if (rc < 0)
		for (size_t j = 0; j + 1 < i; j++)
			close(out[j]);
	return rc;
}

/* Room for n more vCPUs in vm's arrays: 0 or -ENOMEM. */
static int grow_vcpus(struct hvm *vm, size_t n)
{
	int *nv = realloc(vm->vcpus, (vm->n_vcpus + n) * sizeof(*nv)), *nf;

	if (nv)
		vm->vcpus = nv;
	nf = nv ? realloc(vm->vcpu_fds, (vm->n_vcpus + n) * sizeof(*nf)) : NULL;
	if (nf)
		vm->vcpu_fds = nf;
	return nf ? 0 : -ENOMEM;
}

/*
 * vcpus[0..n) into vm with our copies of fds[0..n), all or none: the one
 * place a vCPU joins a VM. 0 or -errno.
 */
static int put_vcpus(const struct vmtable *t, struct hvm *vm, const int *vcpus, const int *fds,
		     size_t n)
{
	int rc = n ? grow_vcpus(vm, n) : 0;

	if (rc == 0 && n)
		rc = copy_fds(t, fds, n, vm->vcpu_fds + vm->n_vcpus);
	if (rc == 0 && n) {
		memcpy(vm->vcpus + vm->n_vcpus, vcpus, n * sizeof(*vcpus));
		vm->n_vcpus += (unsigned)n;
	}
	return rc;
}

int vmtable_add_vcpus(struct vmtable *t, struct hvm *vm, const int *vcpus, const int *fds, size_t n,
		      uint64_t created_ns, char *why, size_t why_size)
{
	bool news = vm->n_told < vm->n_vcpus;
	int rc;

	if (n == 0)
		return 0;
	rc = reserve(t, vm->proc, vm, vm->proc->uid, n, n, why, why_size);
	if (rc < 0)
		return rc;
	rc = put_vcpus(t, vm, vcpus, fds, n);
	if (rc < 0) {
		refund(t, vm->proc->uid, n);
		return reason_set(why, why_size, -ENOMEM, "%zu vCPUs not taken: %s", n,
				  strerror(-rc));
	}
	if (!news || created_ns < vm->news_created_ns)
		vm->news_created_ns = created_ns; /* the earliest of the news */
	t->n_sources += (unsigned)n;
	return 0;
}

static void read_comm(const struct vmtable *t, pid_t pid, char *comm, size_t size)
{
	if (t->ops->proc_read(t->ops->ctx, pid, "comm", comm, size) < 0)
		comm[0] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	if (!escape_is_clean_utf8(comm, strlen(comm)))
		comm[0] = '\0';
}

/* A process not in the table yet, with a copy of pidfd: NULL when out of memory or fds. */
static struct hproc *new_proc(struct vmtable *t, pid_t pid, uid_t uid, int pidfd)
{
	struct hproc **nv = realloc(t->procs, (t->n_procs + 1) * sizeof(*nv));
	struct hproc *p = nv ? calloc(1, sizeof(*p)) : NULL;

	if (nv)
		t->procs = nv;
	if (p)
		p->pidfd = t->ops->copy_fd(t->ops->ctx, pidfd);
	if (p && p->pidfd < 0) {
		free(p);
		p = NULL;
	}
	if (p) {
		p->tag = TAG_PROC;
		p->pid = pid;
		p->uid = uid;
		read_comm(t, pid, p->comm, sizeof(p->comm));
		t->procs[t->n_procs++] = p;
	}
	return p;
}

static void free_vm(struct hvm *vm)
{
	if (vm->stats_fd >= 0)
		close(vm->stats_fd);
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		close(vm->vcpu_fds[i]);
	free(vm->vcpus);
	free(vm->vcpu_fds);
	free(vm);
}

/* A VM with copies of the stats fd and every vCPU fd, in no table yet. */
static int make_vm(const struct vmtable *t, const struct vt_new_vm *n, struct hvm **out)
{
	struct hvm *vm = calloc(1, sizeof(*vm));
	int rc = vm ? copy_fds(t, &n->stats_fd, 1, &vm->stats_fd) : -ENOMEM;

	if (rc == 0)
		rc = put_vcpus(t, vm, n->vcpus, n->vcpu_fds, n->n_vcpus);
	if (rc < 0 && vm)
		free_vm(vm);
	*out = rc == 0 ? vm : NULL;
	return rc;
}

int vmtable_add_vm(struct vmtable *t, const struct vt_new_vm *n, struct hvm **out, char *why,
		   size_t why_size)
{
	struct hproc *p = vmtable_proc(t, n->pid), *made = NULL;
	uid_t uid = p ? p->uid : n->uid; /* the uid it was first known by, as refunds */
	struct hvm **nv, *vm = NULL;
	size_t n_fds = 1 + n->n_vcpus;
	int rc = reserve(t, p, NULL, uid, n->n_vcpus, n_fds, why, why_size);

	if (rc < 0)
		return rc;
	nv = realloc(t->vms, (t->n_vms + 1) * sizeof(*nv));
	if (nv)
		t->vms = nv;
	if (nv && !p)
		p = made = new_proc(t, n->pid, n->uid, n->pidfd);
	rc = !nv || !p ? -ENOMEM : make_vm(t, n, &vm);
	if (rc < 0) {
		if (made)
			vmtable_forget_proc(t, made);
		refund(t, uid, n_fds);
		return reason_set(why, why_size, -ENOMEM, "out of memory or descriptors: %s",
				  strerror(-rc));
	}
	vm->id = t->next_vm_id++;
	vm->proc = p;
	vm->origin = n->origin;
	vm->has_handle = n->has_handle;
	vm->handle = n->handle;
	vm->borrowed_fd = n->borrowed_fd;
	vm->created_ns = n->created_ns;
	snprintf(vm->name, sizeof(vm->name), "%s", n->name);
	p->n_vms++;
	t->vms[t->n_vms++] = vm;
	t->n_sources += (unsigned)n_fds;
	*out = vm;
	return 0;
}

/* The worker keeps a dropped VM's fds for exit_grace_ms: so does our count. */
static void retire(struct vmtable *t, uid_t uid, unsigned n_fds, uint32_t tell_id)
{
	uint64_t slack = 2ull * t->cfg->interval_ms + 1000; /* its next tick, and then some */
	struct vt_retiring *nv = realloc(t->retiring, (t->n_retiring + 1) * sizeof(*nv));

	if (!nv) { /* cannot remember: count them as gone now */
		t->n_sources -= n_fds;
		refund(t, uid, n_fds);
		if (tell_id)
			log_warn("out of memory: the worker keeps polling VM %u",
				 (unsigned)tell_id);
		return;
	}
	t->retiring = nv;
	t->retiring[t->n_retiring++] =
	    (struct vt_retiring){ t->ops->mono_ns(t->ops->ctx) +
				      (t->cfg->exit_grace_ms + slack) * 1000000ull,
				  n_fds, uid, tell_id };
}

void vmtable_drop_vm(struct vmtable *t, struct hvm *vm, bool tell)
{
	for (size_t i = 0; i < t->n_vms; i++)
		if (t->vms[i] == vm) {
			t->vms[i] = t->vms[--t->n_vms];
			break;
		}
	retire(t, vm->proc->uid, 1 + vm->n_vcpus, tell && vm->told ? vm->id : 0);
	vm->proc->n_vms--;
	free_vm(vm);
}

void vmtable_forget_proc(struct vmtable *t, struct hproc *p)
{
	for (size_t i = t->n_vms; i-- > 0;)
		if (t->vms[i]->proc == p)
			vmtable_drop_vm(t, t->vms[i], false);
	for (size_t i = 0; i < t->n_procs; i++)
		if (t->procs[i] == p) {
			t->procs[i] = t->procs[--t->n_procs];
			break;
		}
	close(p->pidfd);
	free(p);
}

void vmtable_untell_all(struct vmtable *t)
{
	for (size_t i = 0; i < t->n_vms; i++) {
		t->vms[i]->told = false;
		t->vms[i]->n_told = 0;
	}
	for (size_t i = 0; i < t->n_retiring; i++)
		t->retiring[i].tell_id = 0;
}

void vmtable_fini(struct vmtable *t)
{
	while (t->n_procs)
		vmtable_forget_proc(t, t->procs[0]);
	free(t->procs);
	free(t->vms);
	free(t->retiring);
	*t = (struct vmtable){ 0 };
}
