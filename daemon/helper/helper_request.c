/* SPDX-License-Identifier: MIT */
/*
 * helper_request - one registration request: decode, check, decide,
 * forward, answer. Every refusal carries an errno for the VMM, a reason
 * label for the metric and a sentence for the log; a refused request
 * keeps no fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/kcmp.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "escape.h"
#include "fdcheck.h"
#include "fdpass.h"
#include "helper_state.h"
#include "ipc.h"
#include "clock.h"
#include "log.h"
#include "procfs.h"
#include "regmsg.h"
#include "reject.h"

struct verdict {
	int status; /* 0 or -errno */
	enum reject_reason reason;
	unsigned accepted;
	char why[KVMSTAT_REASON_MAX];
};

/* the longest request and one byte more: fdpass_recv reports longer ones */
#define REQUEST_BUF (sizeof(struct kvmstat_msg_register_vm) + 1)

static int deny(struct verdict *v, int status, enum reject_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int deny(struct verdict *v, int status, enum reject_reason reason, const char *fmt, ...)
{
	va_list ap;

	v->status = status;
	v->reason = reason;
	va_start(ap, fmt);
	vsnprintf(v->why, sizeof(v->why), fmt, ap);
	va_end(ap);
	return status;
}

static struct hvm *find_vm(struct helper *h, pid_t pid, uint64_t handle)
{
	for (size_t i = 0; i < h->n_vms; i++)
		if (h->vms[i]->has_handle && h->vms[i]->proc->pid == pid &&
		    h->vms[i]->handle == handle)
			return h->vms[i];
	return NULL;
}

bool helper_name_taken(struct helper *h, const char *name)
{
	for (size_t i = 0; i < h->n_vms; i++)
		if (!strcmp(h->vms[i]->name, name))
			return true;
	return false;
}

static struct hproc *find_proc(struct helper *h, pid_t pid)
{
	for (size_t i = 0; i < h->n_procs; i++)
		if (h->procs[i]->pid == pid)
			return h->procs[i];
	return NULL;
}

/* The same open file (kcmp): one VM is one source however often it is sent. */
static bool same_file(int a, int b)
{
	pid_t self = getpid();

	return syscall(SYS_kcmp, self, self, KCMP_FILE, a, b) == 0;
}

struct hvm *helper_vm_by_file(struct helper *h, int stats_fd)
{
	for (size_t i = 0; i < h->n_vms; i++)
		if (same_file(stats_fd, h->vms[i]->stats_fd))
			return h->vms[i];
	return NULL;
}

int helper_vcpu_slot(const struct hvm *vm, int vcpu)
{
	for (unsigned j = 0; j < vm->n_vcpus; j++)
		if (vm->vcpus[j] == vcpu)
			return (int)j;
	return -1;
}

/*
 * A lower bound of when thread tid made a stats fd: *created (the time of
 * the request), or the thread's start if that is earlier. A VMM may
 * register long after it created a VM; the kernel counted all along, and
 * _created must never be later than that start.
 */
static void bound_by_thread(pid_t tid, uint64_t *created)
{
	uint64_t start;

	if (procfs_start_time_ns(tid, &start) == 0 && start < *created)
		*created = start;
}

/*
 * Check n vCPU fds for vm (NULL: a VM being registered). known[i]: a VM
 * that discovery found has this vCPU already, from the very same file:
 * accepted, but no new source. Otherwise a vCPU sent twice is an error.
 */
static int check_vcpus(struct helper *h, struct conn *c, const struct hvm *vm, const int *fds,
		       size_t n, int *idx, bool *known, uint64_t *created, struct verdict *v)
{
	struct fdcheck_result res;

	for (size_t i = 0; i < n; i++) {
		int slot;

		if (h->check_fd(fds[i], FD_VCPU_STATS, &res) < 0)
			return deny(v, -EBADF, REJ_BAD_FD, "fd %zu: %s", i, res.why);
		if (!fdcheck_is_thread_of(res.id_pid, c->pid))
			return deny(v, -EPERM, REJ_NOT_OWNER,
				    "fd %zu: vCPU created by tid %d, not by pid %d", i,
				    (int)res.id_pid, (int)c->pid);
		idx[i] = res.vcpu;
		bound_by_thread(res.id_pid, created);
		for (size_t j = 0; j < i; j++)
			if (idx[j] == res.vcpu)
				return deny(v, -EEXIST, REJ_DUPLICATE, "vCPU %d sent twice",
					    res.vcpu);
		slot = vm ? helper_vcpu_slot(vm, res.vcpu) : -1;
		/* discovery may have found it first: the same file is no error then */
		known[i] = slot >= 0 && vm->origin == ORIGIN_DISCOVERED &&
			   same_file(fds[i], vm->vcpu_fds[slot]);
		if (slot >= 0 && !known[i])
			return deny(v, -EEXIST, REJ_DUPLICATE, "vCPU %d already registered",
				    res.vcpu);
	}
	return 0;
}

static void release_retired(struct helper *h);

static int check_counts(struct helper *h, const struct hproc *p, const struct hvm *vm,
			size_t n_new_vcpus, size_t n_fds, struct verdict *v)
{
	const struct config *cfg = h->cfg;

	release_retired(h);
	if (!vm && p && p->n_vms >= cfg->max_vms_per_peer)
		return deny(v, -ENOSPC, REJ_LIMIT,
			    "pid %d has %u VMs registered (max_vms_per_peer)", (int)p->pid,
			    p->n_vms);
	if ((vm ? vm->n_vcpus : 0) + n_new_vcpus > cfg->max_vcpus_per_vm)
		return deny(v, -ENOSPC, REJ_LIMIT,
			    "more than %u vCPUs for one VM (max_vcpus_per_vm)",
			    cfg->max_vcpus_per_vm);
	if (h->n_sources + n_fds > cfg->max_sources)
		return deny(v, -ENOSPC, REJ_LIMIT,
			    "%u stats fds held already, some in their exit grace (max_sources %u)",
			    h->n_sources, cfg->max_sources);
	/* the worker's fds: sources, a pidfd per VM (live or in grace), its own */
	if (cfg->fd_limit && (unsigned long)h->n_sources + n_fds + h->n_vms + h->n_retiring + !vm +
				     CONFIG_FD_RESERVE >
				 cfg->fd_limit)
		return deny(v, -ENOSPC, REJ_LIMIT,
			    "%u stats fds and %zu VMs held already: the fd limit is %lu",
			    h->n_sources, h->n_vms + h->n_retiring, cfg->fd_limit);
	return 0;
}

/* The per-uid budget, taken last: after every other check has passed. */
static int charge(struct helper *h, uid_t uid, size_t n_fds, struct verdict *v)
{
	char why[sizeof(v->why)];

	if (h->policy && policy_charge(h->policy, uid, (unsigned)n_fds, why, sizeof(why)) < 0)
		return deny(v, -ENOSPC, REJ_LIMIT, "%s", why);
	return 0;
}

static void refund(struct helper *h, uid_t uid, size_t n_fds)
{
	if (h->policy && n_fds)
		policy_refund(h->policy, uid, (unsigned)n_fds);
}

int helper_room(struct helper *h, const struct hproc *p, const struct hvm *vm, size_t n_new_vcpus,
		size_t n_fds, uid_t uid, char *why, size_t why_size)
{
	struct verdict v = { 0 };

	if (check_counts(h, p, vm, n_new_vcpus, n_fds, &v) < 0 || charge(h, uid, n_fds, &v) < 0) {
		snprintf(why, why_size, "%s", v.why);
		return v.status;
	}
	return 0;
}

void helper_refund(struct helper *h, uid_t uid, size_t n_fds)
{
	refund(h, uid, n_fds);
}

static int pick_name(struct helper *h, struct conn *c, const struct regmsg *m, char *name,
		     size_t size, struct verdict *v)
{
	if (m->name[0]) { /* regmsg checked it: terminated, UTF-8, no controls */
		snprintf(name, size, "%s", m->name);
		if (helper_name_taken(h, name))
			return deny(v, -EEXIST, REJ_DUPLICATE, "name \"%s\" is in use", name);
		return 0;
	}
	snprintf(name, size, "kvm-%d", (int)c->pid);
	if (helper_name_taken(h, name))
		snprintf(name, size, "kvm-%d-%llu", (int)c->pid, (unsigned long long)m->vm_handle);
	return helper_name_taken(h, name) ? deny(v, -EEXIST, REJ_DUPLICATE, "default name in use")
					  : 0;
}

int helper_add_vcpu(struct hvm *vm, int vcpu, int fd)
{
	int *nv = realloc(vm->vcpus, (vm->n_vcpus + 1) * sizeof(*nv)), *nf;
	int copy;

	if (!nv)
		return -ENOMEM;
	vm->vcpus = nv;
	nf = realloc(vm->vcpu_fds, (vm->n_vcpus + 1) * sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	vm->vcpu_fds = nf;
	copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (copy < 0)
		return -errno;
	vm->vcpus[vm->n_vcpus] = vcpu;
	vm->vcpu_fds[vm->n_vcpus++] = copy;
	return 0;
}

static void read_comm(pid_t pid, char *comm, size_t size)
{
	if (procfs_read(pid, "comm", comm, size) < 0)
		comm[0] = '\0';
	comm[strcspn(comm, "\n")] = '\0';
	if (!escape_is_clean_utf8(comm, strlen(comm)))
		comm[0] = '\0';
}

struct hproc *helper_get_proc(struct helper *h, pid_t pid, uid_t uid, int pidfd)
{
	struct hproc *p = find_proc(h, pid), **nv;

	if (p)
		return p;
	nv = realloc(h->procs, (h->n_procs + 1) * sizeof(*nv));
	if (!nv)
		return NULL;
	h->procs = nv;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->tag = TAG_PROC;
	p->pid = pid;
	p->uid = uid;
	read_comm(pid, p->comm, sizeof(p->comm));
	p->pidfd = fcntl(pidfd, F_DUPFD_CLOEXEC, 3);
	if (p->pidfd < 0 || helper_watch_proc(h, p) < 0) {
		if (p->pidfd >= 0)
			close(p->pidfd);
		free(p);
		return NULL;
	}
	h->procs[h->n_procs++] = p;
	return p;
}

static void free_hvm(struct hvm *vm)
{
	if (!vm)
		return;
	if (vm->stats_fd >= 0)
		close(vm->stats_fd);
	for (unsigned i = 0; i < vm->n_vcpus; i++)
		close(vm->vcpu_fds[i]);
	free(vm->vcpus);
	free(vm->vcpu_fds);
	free(vm);
}

/* A new VM of p from (a copy of) stats_fd; NULL when out of memory or fds. */
struct hvm *helper_new_vm(struct helper *h, struct hproc *p, int stats_fd)
{
	struct hvm *vm, **nv = realloc(h->vms, (h->n_vms + 1) * sizeof(*nv));

	if (!nv)
		return NULL;
	h->vms = nv;
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return NULL;
	vm->stats_fd = fcntl(stats_fd, F_DUPFD_CLOEXEC, 3);
	if (vm->stats_fd < 0) {
		free(vm);
		return NULL;
	}
	vm->id = h->next_vm_id++;
	vm->proc = p;
	vm->borrowed_fd = -1;
	vm->created_ns = clock_ns(CLOCK_REALTIME);
	p->n_vms++;
	h->vms[h->n_vms++] = vm;
	h->n_sources++;
	return vm;
}

/* Take the vCPUs that are new (known[i] false) into vm and the worker. */
static int take_vcpus(struct helper *h, struct hvm *vm, const int *fds, const int *idx,
		      const bool *known, size_t n, uint64_t created, struct verdict *v)
{
	unsigned first = vm->n_vcpus;
	size_t lost = 0;

	for (size_t i = 0; i < n; i++) {
		if (known[i])
			continue;
		if (helper_add_vcpu(vm, idx[i], fds[i]) < 0)
			lost++;
		else
			h->n_sources++;
	}
	refund(h, vm->proc->uid, lost);
	if (lost)
		return deny(v, -ENOMEM, REJ_LIMIT, "%zu vCPUs lost: out of memory or descriptors",
			    lost);
	/* (or the next worker gets them, dated like their VM: a lower bound) */
	helper_send_vcpus(h, vm, first, created);
	v->accepted = (unsigned)n;
	return 0;
}

static int count_new(const bool *known, size_t n)
{
	int k = 0;

	for (size_t i = 0; i < n; i++)
		k += !known[i];
	return k;
}

/*
 * A registration of a VM that discovery found first: the VMM's handle now
 * names it, and its new vCPUs join it. Its name stays (its series must not
 * change identity), which the log says.
 */
static int adopt(struct helper *h, struct conn *c, struct hvm *vm, const struct regmsg *b,
		 const int *fds, size_t n, struct verdict *v)
{
	int idx[KVMSTAT_MAX_FDS_PER_MSG];
	bool known[KVMSTAT_MAX_FDS_PER_MSG];
	uint64_t created = clock_ns(CLOCK_REALTIME);

	if (vm->has_handle || vm->proc->pid != c->pid)
		return deny(v, -EEXIST, REJ_DUPLICATE, "this VM stats fd is registered as \"%s\"",
			    vm->name);
	if (check_vcpus(h, c, vm, fds + 1, n - 1, idx, known, &created, v) < 0 ||
	    check_counts(h, vm->proc, vm, (size_t)count_new(known, n - 1),
			 (size_t)count_new(known, n - 1), v) < 0 ||
	    charge(h, vm->proc->uid, (size_t)count_new(known, n - 1), v) < 0)
		return v->status;
	vm->handle = b->vm_handle;
	vm->has_handle = true;
	vm->proc->registers = true;
	log_event(LOG_LVL_INFO, &(struct log_fields){ vm->name, c->pid, "registered" },
		  "pid %d (uid %u) registered VM \"%s\", found by discovery before: same source",
		  (int)c->pid, (unsigned)c->uid, vm->name);
	if (take_vcpus(h, vm, fds + 1, idx, known, n - 1, created, v) < 0)
		return v->status;
	v->accepted = (unsigned)n;
	return 0;
}

static bool has_discovered_vms(struct helper *h, pid_t pid)
{
	for (size_t i = 0; i < h->n_vms; i++)
		if (!h->vms[i]->has_handle && h->vms[i]->proc->pid == pid)
			return true;
	return false;
}

static int check_vm_fd(struct helper *h, struct conn *c, int fd, uint64_t *created,
		       struct verdict *v)
{
	struct fdcheck_result res;

	if (h->check_fd(fd, FD_VM_STATS, &res) < 0)
		return deny(v, -EBADF, REJ_BAD_FD, "fd 0: %s", res.why);
	if (!fdcheck_is_thread_of(res.id_pid, c->pid))
		return deny(v, -EPERM, REJ_NOT_OWNER, "VM created by tid %d, not by pid %d",
			    (int)res.id_pid, (int)c->pid);
	bound_by_thread(res.id_pid, created);
	return 0;
}

static void drop_borrowed(struct helper *h, pid_t pid);

static int do_register(struct helper *h, struct conn *c, const struct regmsg *b, const int *fds,
		       size_t n, struct verdict *v)
{
	int idx[KVMSTAT_MAX_FDS_PER_MSG];
	bool known[KVMSTAT_MAX_FDS_PER_MSG];
	char name[sizeof(((struct hvm *)0)->name)];
	uint64_t created = clock_ns(CLOCK_REALTIME);
	struct hproc *p;
	struct hvm *vm;
	uid_t uid;

	if (find_vm(h, c->pid, b->vm_handle))
		return deny(v, -EEXIST, REJ_DUPLICATE, "handle %llu is registered already",
			    (unsigned long long)b->vm_handle);
	drop_borrowed(h, c->pid);
	if (has_discovered_vms(h, c->pid)) { /* maybe one of those: look first */
		if (check_vm_fd(h, c, fds[0], &created, v) < 0)
			return v->status;
		if ((vm = helper_vm_by_file(h, fds[0])))
			return adopt(h, c, vm, b, fds, n, v);
	}
	/* the cheap checks first: no pread for a request refused anyway */
	if (pick_name(h, c, b, name, sizeof(name), v) < 0 ||
	    check_counts(h, find_proc(h, c->pid), NULL, n - 1, n, v) < 0)
		return v->status;
	if (check_vm_fd(h, c, fds[0], &created, v) < 0 ||
	    check_vcpus(h, c, NULL, fds + 1, n - 1, idx, known, &created, v) < 0)
		return v->status;
	if ((vm = helper_vm_by_file(h, fds[0])))
		return deny(v, -EEXIST, REJ_DUPLICATE, "this VM stats fd is registered as \"%s\"",
			    vm->name);
	/* charged to the uid the process was first known by, as refunds are */
	p = find_proc(h, c->pid);
	uid = p ? p->uid : c->uid;
	if (charge(h, uid, n, v) < 0)
		return v->status;
	p = helper_get_proc(h, c->pid, c->uid, c->pidfd);
	vm = p ? helper_new_vm(h, p, fds[0]) : NULL;
	if (!vm) {
		refund(h, uid, n);
		return deny(v, -ENOMEM, REJ_LIMIT, "out of memory or descriptors");
	}
	p->registers = true;
	vm->handle = b->vm_handle;
	vm->has_handle = true;
	vm->origin = ORIGIN_REGISTERED;
	vm->created_ns = created;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	for (size_t i = 0; i < n - 1; i++)
		if (helper_add_vcpu(vm, idx[i], fds[i + 1]) == 0)
			h->n_sources++;
	refund(h, uid, n - 1 - vm->n_vcpus);
	helper_send_vm(h, vm); /* or the next worker gets it */
	v->accepted = 1 + vm->n_vcpus;
	log_event(LOG_LVL_INFO, &(struct log_fields){ name, c->pid, "registered" },
		  "pid %d (uid %u) registered VM \"%s\" with %u vCPUs", (int)c->pid,
		  (unsigned)c->uid, name, vm->n_vcpus);
	return 0;
}

static int do_add_vcpus(struct helper *h, struct conn *c, const struct regmsg *b, const int *fds,
			size_t n, struct verdict *v)
{
	int idx[KVMSTAT_MAX_FDS_PER_MSG];
	bool known[KVMSTAT_MAX_FDS_PER_MSG];
	struct hvm *vm = find_vm(h, c->pid, b->vm_handle);
	uint64_t created = clock_ns(CLOCK_REALTIME);
	size_t n_new;

	if (!vm)
		return deny(v, -ENOENT, REJ_UNKNOWN_VM, "no VM with handle %llu",
			    (unsigned long long)b->vm_handle);
	if (check_counts(h, vm->proc, vm, n, n, v) < 0 || /* cheap, before any pread */
	    check_vcpus(h, c, vm, fds, n, idx, known, &created, v) < 0)
		return v->status;
	n_new = (size_t)count_new(known, n);
	if (charge(h, vm->proc->uid, n_new, v) < 0)
		return v->status;
	return take_vcpus(h, vm, fds, idx, known, n, created, v);
}

/* The worker keeps a released VM's fds for exit_grace_ms: so does our count. */
static void retire_fds(struct helper *h, uid_t uid, unsigned n_fds)
{
	uint64_t slack = 2ull * h->cfg->interval_ms + 1000; /* its next tick, and then some */
	struct retiring *nv = realloc(h->retiring, (h->n_retiring + 1) * sizeof(*nv));

	if (!nv) { /* cannot remember: count them as gone now */
		h->n_sources -= n_fds;
		refund(h, uid, n_fds);
		return;
	}
	h->retiring = nv;
	h->retiring[h->n_retiring++] =
	    (struct retiring){ clock_mono_ns() + (h->cfg->exit_grace_ms + slack) * 1000000ull,
			       n_fds, uid };
}

static void release_retired(struct helper *h)
{
	uint64_t now = clock_mono_ns();
	size_t j = 0;

	for (size_t i = 0; i < h->n_retiring; i++) {
		if (h->retiring[i].until_ns <= now) {
			h->n_sources -= h->retiring[i].n_fds;
			refund(h, h->retiring[i].uid, h->retiring[i].n_fds);
		} else
			h->retiring[j++] = h->retiring[i];
	}
	h->n_retiring = j;
}

void helper_drop_vm(struct helper *h, struct hvm *vm)
{
	for (size_t i = 0; i < h->n_vms; i++)
		if (h->vms[i] == vm) {
			h->vms[i] = h->vms[--h->n_vms];
			break;
		}
	/* the worker keeps them for the grace: so do the counts, global and per uid */
	retire_fds(h, vm->proc->uid, 1 + vm->n_vcpus);
	vm->proc->n_vms--;
	free_hvm(vm);
}

/* Out of the table and out of the worker (which keeps it for the grace). */
static void remove_vm(struct helper *h, struct hvm *vm)
{
	struct ipc_remove_vm m = { .hdr = { IPC_REMOVE_VM, sizeof(m) }, .vm_id = vm->id };

	if (h->ipc_fd >= 0)
		fdpass_send(h->ipc_fd, &m, sizeof(m), NULL, 0);
	helper_drop_vm(h, vm);
}

/*
 * A VMM that registers names its own VMs: those discovery made from its VM
 * fds (no file to match a registration against) give way to its own.
 */
static void drop_borrowed(struct helper *h, pid_t pid)
{
	for (size_t i = h->n_vms; i-- > 0;) {
		struct hvm *vm = h->vms[i];

		if (vm->proc->pid == pid && vm->origin == ORIGIN_BORROWED) {
			log_event(LOG_LVL_INFO, &(struct log_fields){ vm->name, pid, "replaced" },
				  "pid %d registers: VM \"%s\" made from its VM fd is replaced",
				  (int)pid, vm->name);
			remove_vm(h, vm);
		}
	}
}

static int do_unregister(struct helper *h, struct conn *c, const struct regmsg *b,
			 struct verdict *v)
{
	struct hvm *vm = find_vm(h, c->pid, b->vm_handle);

	if (!vm)
		return deny(v, -ENOENT, REJ_UNKNOWN_VM, "no VM with handle %llu",
			    (unsigned long long)b->vm_handle);
	log_event(LOG_LVL_INFO, &(struct log_fields){ vm->name, c->pid, "unregistered" },
		  "pid %d unregistered VM \"%s\"", (int)c->pid, vm->name);
	remove_vm(h, vm);
	return 0;
}

/*
 * Every refusal is logged, but a hostile peer must not flood the journal:
 * h->refusal_log lets a burst through, then a few a second, with a count
 * of those left out. Every refusal is counted regardless.
 */
void helper_log_refusal(struct helper *h, pid_t pid, uid_t uid, enum reject_reason reason,
			const char *why)
{
	uint64_t left_out;

	if (!logbudget_take(&h->refusal_log, clock_mono_ns(), &left_out))
		return;
	if (left_out)
		log_warn("%llu more refusals not logged (too many)", (unsigned long long)left_out);
	log_event(LOG_LVL_WARN, &(struct log_fields){ NULL, pid, reject_reason_name(reason) },
		  "registration from pid %d (uid %u) refused (%s): %s", (int)pid, (unsigned)uid,
		  reject_reason_name(reason), why);
}

void helper_send_reply(int fd, uint32_t seq, int status, unsigned accepted, const char *why)
{
	struct kvmstat_msg_reply r = { .hdr = { KVMSTAT_PROTO_MAGIC, KVMSTAT_PROTO_VERSION,
						KVMSTAT_MSG_REPLY, sizeof(r), seq } };

	r.body.status = status;
	r.body.accepted = accepted;
	snprintf(r.body.reason, sizeof(r.body.reason), "%s", status ? why : "ok");
	/* a peer that left without reading its answer is no error of ours */
	send(fd, &r, sizeof(r), MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void answer(struct helper *h, struct conn *c, uint32_t seq, const struct verdict *v)
{
	if (v->status) {
		helper_log_refusal(h, c->pid, c->uid, v->reason, v->why);
		helper_send_rejected(h, v->reason);
	}
	helper_send_reply(c->fd, seq, v->status, v->accepted, v->why);
}

/* Who may ask, and how often: before anything the request carries is read. */
static int check_policy(struct helper *h, struct conn *c, struct verdict *v)
{
	char why[sizeof(v->why)];

	if (!h->policy)
		return 0;
	if (policy_admit(h->policy, c->uid, c->gid, c->groups, c->n_groups, why, sizeof(why)) < 0)
		return deny(v, -EPERM, REJ_NOT_ALLOWED, "%s", why);
	if (policy_take_token(h->policy, c->uid, clock_mono_ns(), why, sizeof(why)) < 0)
		return deny(v, -EAGAIN, REJ_RATE, "%s", why);
	return 0;
}

static void decide(struct helper *h, struct conn *c, const char *buf, int len, int *fds, size_t n,
		   struct regmsg *m, struct verdict *v)
{
	char why[sizeof(v->why)];
	int rc;

	memset(m, 0, sizeof(*m));
	/* parsing is pure and cheap: first, so that a policy refusal echoes seq */
	rc = len < 0 ? regmsg_recv_failed(len, m, why, sizeof(why))
		     : regmsg_parse(buf, (size_t)len, n, m, why, sizeof(why));
	if (rc < 0)
		deny(v, rc, m->reason, "%s", why);
	else if (check_policy(h, c, v) < 0)
		return;
	else if (m->type == KVMSTAT_MSG_REGISTER_VM)
		do_register(h, c, m, fds, n, v);
	else if (m->type == KVMSTAT_MSG_ADD_VCPUS)
		do_add_vcpus(h, c, m, fds, n, v);
	else
		do_unregister(h, c, m, v);
}

/*
 * recvmsg's 0 is a hang-up only when no fd came with it: a datagram of no
 * bytes carrying fds is a request (refused as shorter than a header), and
 * its fds must be closed like any other's.
 */
static bool hung_up(int len, size_t n_fds)
{
	return (len == 0 && n_fds == 0) || len == -ECONNRESET;
}

int helper_serve_request(struct helper *h, struct conn *c)
{
	int fds[KVMSTAT_MAX_FDS_PER_MSG];
	char buf[REQUEST_BUF];
	struct verdict v = { 0 };
	struct regmsg m;
	size_t n = 0;
	int len;

	len = fdpass_recv(c->fd, buf, sizeof(buf), fds, KVMSTAT_MAX_FDS_PER_MSG, &n);
	if (len == -EAGAIN)
		return 0;
	if (hung_up(len, n))
		return -1;
	decide(h, c, buf, len, fds, n, &m, &v);
	/* we keep copies of what we accepted: the received fds go either way */
	fdpass_close_all(fds, n);
	answer(h, c, m.has_seq ? m.seq : 0, &v);
	if (v.status == 0 && m.type == KVMSTAT_MSG_REGISTER_VM)
		helper_schedule_discovery(h, 0); /* its other VMs, if it holds some */
	/* a peer that speaks garbage, sends foreign fds or may not register at
	 * all is not heard twice */
	if (v.status && (v.reason == REJ_BAD_MESSAGE || v.reason == REJ_BAD_FD ||
			 v.reason == REJ_FD_COUNT || v.reason == REJ_NOT_ALLOWED))
		return -1;
	return 0;
}

void helper_forget_proc(struct helper *h, struct hproc *p)
{
	for (size_t i = h->n_vms; i-- > 0;)
		if (h->vms[i]->proc == p)
			helper_drop_vm(h, h->vms[i]);
	for (size_t i = 0; i < h->n_procs; i++)
		if (h->procs[i] == p) {
			h->procs[i] = h->procs[--h->n_procs];
			break;
		}
	close(p->pidfd);
	free(p);
}

void helper_forget_all(struct helper *h)
{
	while (h->n_procs)
		helper_forget_proc(h, h->procs[0]);
	free(h->procs);
	free(h->retiring);
	free(h->vms);
}
