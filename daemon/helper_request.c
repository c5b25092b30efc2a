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
#include "selfstats.h"

struct verdict {
	int status; /* 0 or -errno */
	enum reject_reason reason;
	unsigned accepted;
	char why[KVMSTAT_REASON_MAX];
};

union request {
	struct kvmstat_msg_hdr hdr;
	struct kvmstat_msg_register_vm reg;
	struct kvmstat_msg_add_vcpus add;
	struct kvmstat_msg_unregister_vm unreg;
	char oversize[sizeof(struct kvmstat_msg_register_vm) + 1]; /* detects longer */
};

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
		if (h->vms[i]->proc->pid == pid && h->vms[i]->handle == handle)
			return h->vms[i];
	return NULL;
}

static bool name_taken(struct helper *h, const char *name)
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

static int check_header(const union request *r, size_t len, struct verdict *v)
{
	static const size_t body_len[] = { 0, sizeof(r->reg), sizeof(r->add), sizeof(r->unreg) };

	if (len < sizeof(r->hdr))
		return deny(v, -EBADMSG, REJ_BAD_MESSAGE,
			    "message of %zu bytes is shorter than a header", len);
	if (r->hdr.magic != KVMSTAT_PROTO_MAGIC || r->hdr.version != KVMSTAT_PROTO_VERSION)
		return deny(v, -EBADMSG, REJ_BAD_MESSAGE, "bad magic 0x%08x or version %u",
			    r->hdr.magic, r->hdr.version);
	if (r->hdr.type < KVMSTAT_MSG_REGISTER_VM || r->hdr.type > KVMSTAT_MSG_UNREGISTER_VM)
		return deny(v, -EBADMSG, REJ_BAD_MESSAGE, "unknown request type %u", r->hdr.type);
	if (r->hdr.length != len || len != body_len[r->hdr.type])
		return deny(v, -EBADMSG, REJ_BAD_MESSAGE,
			    "type %u: length %u, received %zu, expected %zu", r->hdr.type,
			    r->hdr.length, len, body_len[r->hdr.type]);
	return 0;
}

/* Check n vCPU fds for vm (NULL: a VM being registered, no vCPUs yet). */
static int check_vcpus(struct conn *c, const struct hvm *vm, const int *fds, size_t n, int *idx,
		       struct verdict *v)
{
	struct fdcheck_result res;

	for (size_t i = 0; i < n; i++) {
		if (fdcheck_stats_fd(fds[i], FD_VCPU_STATS, &res) < 0)
			return deny(v, -EBADF, REJ_BAD_FD, "fd %zu: %s", i, res.why);
		if (!fdcheck_is_thread_of(res.id_pid, c->pid))
			return deny(v, -EPERM, REJ_NOT_OWNER,
				    "fd %zu: vCPU created by tid %d, not by pid %d", i,
				    (int)res.id_pid, (int)c->pid);
		idx[i] = res.vcpu;
		for (size_t j = 0; j < i; j++)
			if (idx[j] == res.vcpu)
				return deny(v, -EEXIST, REJ_DUPLICATE, "vCPU %d sent twice",
					    res.vcpu);
		for (unsigned j = 0; vm && j < vm->n_vcpus; j++)
			if (vm->vcpus[j] == res.vcpu)
				return deny(v, -EEXIST, REJ_DUPLICATE, "vCPU %d already registered",
					    res.vcpu);
	}
	return 0;
}

static void release_retired(struct helper *h);

static int check_limits(struct helper *h, const struct hproc *p, const struct hvm *vm,
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
	return 0;
}

static int pick_name(struct helper *h, struct conn *c, const struct kvmstat_register_vm *b,
		     char *name, size_t size, struct verdict *v)
{
	size_t len = strnlen(b->name, sizeof(b->name));

	if (len == sizeof(b->name) || !escape_is_clean_utf8(b->name, len))
		return deny(v, -EBADMSG, REJ_BAD_MESSAGE,
			    "name is unterminated, not UTF-8 or has control characters");
	if (len) {
		snprintf(name, size, "%s", b->name);
		if (name_taken(h, name))
			return deny(v, -EEXIST, REJ_DUPLICATE, "name \"%s\" is in use", name);
		return 0;
	}
	snprintf(name, size, "kvm-%d", (int)c->pid);
	if (name_taken(h, name))
		snprintf(name, size, "kvm-%d-%llu", (int)c->pid, (unsigned long long)b->vm_handle);
	return name_taken(h, name) ? deny(v, -EEXIST, REJ_DUPLICATE, "default name in use") : 0;
}

static int add_vcpus_to(struct hvm *vm, const int *idx, size_t n)
{
	int *nv = realloc(vm->vcpus, (vm->n_vcpus + n) * sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	vm->vcpus = nv;
	memcpy(vm->vcpus + vm->n_vcpus, idx, n * sizeof(*idx));
	vm->n_vcpus += (unsigned)n;
	return 0;
}

static struct hproc *get_proc(struct helper *h, struct conn *c)
{
	struct hproc *p = find_proc(h, c->pid), **nv;

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
	p->pid = c->pid;
	p->pidfd = fcntl(c->pidfd, F_DUPFD_CLOEXEC, 3);
	if (p->pidfd < 0 || helper_watch_proc(h, p) < 0) {
		if (p->pidfd >= 0)
			close(p->pidfd);
		free(p);
		return NULL;
	}
	h->procs[h->n_procs++] = p;
	return p;
}

static int forward_vm(struct helper *h, struct conn *c, struct hvm *vm, const int *fds, size_t n)
{
	struct ipc_add_vm m = { .hdr = { IPC_ADD_VM, sizeof(m) } };
	int all[2 + KVMSTAT_MAX_FDS_PER_MSG];
	char comm_path[64];
	ssize_t got;
	int fd;

	m.vm_id = vm->id;
	m.pid = c->pid;
	m.uid = c->uid;
	m.n_vcpus = (uint32_t)(n - 1);
	snprintf(m.name, sizeof(m.name), "%s", vm->name);
	snprintf(comm_path, sizeof(comm_path), "/proc/%d/comm", (int)c->pid);
	fd = open(comm_path, O_RDONLY | O_CLOEXEC);
	got = fd >= 0 ? read(fd, m.comm, sizeof(m.comm) - 1) : -1;
	if (fd >= 0)
		close(fd);
	m.comm[got > 0 ? strcspn(m.comm, "\n") : 0] = '\0';
	if (!escape_is_clean_utf8(m.comm, strlen(m.comm)))
		m.comm[0] = '\0';
	all[0] = vm->proc->pidfd;
	memcpy(all + 1, fds, n * sizeof(int));
	return fdpass_send(h->ipc_fd, &m, sizeof(m), all, n + 1);
}

/* The same open file (kcmp): a VM stats fd sent again under a new handle. */
static bool same_file(int a, int b)
{
	pid_t self = getpid();

	return syscall(SYS_kcmp, self, self, KCMP_FILE, a, b) == 0;
}

static void free_hvm(struct hvm *vm)
{
	if (!vm)
		return;
	if (vm->stats_fd >= 0)
		close(vm->stats_fd);
	free(vm->vcpus);
	free(vm);
}

static int check_register(struct helper *h, struct conn *c, const struct kvmstat_register_vm *b,
			  const int *fds, size_t n, int *idx, char *name, size_t name_size,
			  struct verdict *v)
{
	struct fdcheck_result res;

	if (b->flags || b->reserved)
		return deny(v, -EBADMSG, REJ_BAD_MESSAGE, "flags/reserved must be 0");
	if (n == 0)
		return deny(v, -E2BIG, REJ_FD_COUNT, "REGISTER_VM carries no fd");
	/* the cheap checks first: no pread for a request refused anyway */
	if (pick_name(h, c, b, name, name_size, v) < 0)
		return v->status;
	if (find_vm(h, c->pid, b->vm_handle))
		return deny(v, -EEXIST, REJ_DUPLICATE, "handle %llu is registered already",
			    (unsigned long long)b->vm_handle);
	if (check_limits(h, find_proc(h, c->pid), NULL, n - 1, n, v) < 0)
		return v->status;
	if (fdcheck_stats_fd(fds[0], FD_VM_STATS, &res) < 0)
		return deny(v, -EBADF, REJ_BAD_FD, "fd 0: %s", res.why);
	if (!fdcheck_is_thread_of(res.id_pid, c->pid))
		return deny(v, -EPERM, REJ_NOT_OWNER, "VM created by tid %d, not by pid %d",
			    (int)res.id_pid, (int)c->pid);
	if (check_vcpus(c, NULL, fds + 1, n - 1, idx, v) < 0)
		return v->status;
	for (size_t i = 0; i < h->n_vms; i++)
		if (h->vms[i]->proc->pid == c->pid && same_file(fds[0], h->vms[i]->stats_fd))
			return deny(v, -EEXIST, REJ_DUPLICATE,
				    "this VM stats fd is registered as \"%s\"", h->vms[i]->name);
	return 0;
}

static int do_register(struct helper *h, struct conn *c, const struct kvmstat_register_vm *b,
		       const int *fds, size_t n, struct verdict *v)
{
	int idx[KVMSTAT_MAX_FDS_PER_MSG];
	char name[sizeof(((struct hvm *)0)->name)];
	struct hproc *p = NULL;
	struct hvm *vm, **nv;

	if (check_register(h, c, b, fds, n, idx, name, sizeof(name), v) < 0)
		return v->status;
	vm = calloc(1, sizeof(*vm));
	nv = realloc(h->vms, (h->n_vms + 1) * sizeof(*nv));
	if (nv)
		h->vms = nv;
	if (vm) {
		vm->stats_fd = fcntl(fds[0], F_DUPFD_CLOEXEC, 3);
		p = vm->stats_fd >= 0 && nv ? get_proc(h, c) : NULL;
	}
	if (!p || add_vcpus_to(vm, idx, n - 1) < 0) {
		free_hvm(vm);
		return deny(v, -ENOMEM, REJ_LIMIT, "out of memory or descriptors");
	}
	vm->id = h->next_vm_id++;
	vm->proc = p;
	vm->handle = b->vm_handle;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	if (forward_vm(h, c, vm, fds, n) < 0) {
		free_hvm(vm);
		return deny(v, -EIO, REJ_LIMIT, "the worker is not reachable");
	}
	p->n_vms++;
	h->vms[h->n_vms++] = vm;
	h->n_sources += (unsigned)n;
	v->accepted = (unsigned)n;
	log_info("pid %d (uid %u) registered VM \"%s\" with %zu vCPUs", (int)c->pid,
		 (unsigned)c->uid, name, n - 1);
	return 0;
}

static int do_add_vcpus(struct helper *h, struct conn *c, const struct kvmstat_add_vcpus *b,
			const int *fds, size_t n, struct verdict *v)
{
	struct ipc_add_vcpus m = { .hdr = { IPC_ADD_VCPUS, sizeof(m) } };
	int idx[KVMSTAT_MAX_FDS_PER_MSG];
	struct hvm *vm = find_vm(h, c->pid, b->vm_handle);

	if (b->flags || b->reserved)
		return deny(v, -EBADMSG, REJ_BAD_MESSAGE, "flags/reserved must be 0");
	if (!vm)
		return deny(v, -ENOENT, REJ_UNKNOWN_VM, "no VM with handle %llu",
			    (unsigned long long)b->vm_handle);
	if (n == 0)
		return deny(v, -E2BIG, REJ_FD_COUNT, "ADD_VCPUS carries no fd");
	if (check_limits(h, vm->proc, vm, n, n, v) < 0 || check_vcpus(c, vm, fds, n, idx, v) < 0)
		return v->status;
	if (add_vcpus_to(vm, idx, n) < 0)
		return deny(v, -ENOMEM, REJ_LIMIT, "out of memory");
	m.vm_id = vm->id;
	m.n_vcpus = (uint32_t)n;
	if (fdpass_send(h->ipc_fd, &m, sizeof(m), fds, n) < 0) {
		vm->n_vcpus -= (unsigned)n;
		return deny(v, -EIO, REJ_LIMIT, "the worker is not reachable");
	}
	h->n_sources += (unsigned)n;
	v->accepted = (unsigned)n;
	return 0;
}

/* The worker keeps a released VM's fds for exit_grace_ms: so does our count. */
static void retire_fds(struct helper *h, unsigned n_fds)
{
	uint64_t slack = 2ull * h->cfg->interval_ms + 1000; /* its next tick, and then some */
	struct retiring *nv = realloc(h->retiring, (h->n_retiring + 1) * sizeof(*nv));

	if (!nv) { /* cannot remember: count them as gone now */
		h->n_sources -= n_fds;
		return;
	}
	h->retiring = nv;
	h->retiring[h->n_retiring++] =
	    (struct retiring){ clock_mono_ns() + (h->cfg->exit_grace_ms + slack) * 1000000ull,
			       n_fds };
}

static void release_retired(struct helper *h)
{
	uint64_t now = clock_mono_ns();
	size_t j = 0;

	for (size_t i = 0; i < h->n_retiring; i++) {
		if (h->retiring[i].until_ns <= now)
			h->n_sources -= h->retiring[i].n_fds;
		else
			h->retiring[j++] = h->retiring[i];
	}
	h->n_retiring = j;
}

static void drop_vm(struct helper *h, struct hvm *vm)
{
	for (size_t i = 0; i < h->n_vms; i++)
		if (h->vms[i] == vm) {
			h->vms[i] = h->vms[--h->n_vms];
			break;
		}
	retire_fds(h, 1 + vm->n_vcpus);
	vm->proc->n_vms--;
	free_hvm(vm);
}

static int do_unregister(struct helper *h, struct conn *c, const struct kvmstat_unregister_vm *b,
			 size_t n, struct verdict *v)
{
	struct ipc_remove_vm m = { .hdr = { IPC_REMOVE_VM, sizeof(m) } };
	struct hvm *vm = find_vm(h, c->pid, b->vm_handle);

	if (b->flags || b->reserved)
		return deny(v, -EBADMSG, REJ_BAD_MESSAGE, "flags/reserved must be 0");
	if (n)
		return deny(v, -E2BIG, REJ_FD_COUNT, "UNREGISTER_VM carries fds");
	if (!vm)
		return deny(v, -ENOENT, REJ_UNKNOWN_VM, "no VM with handle %llu",
			    (unsigned long long)b->vm_handle);
	m.vm_id = vm->id;
	fdpass_send(h->ipc_fd, &m, sizeof(m), NULL, 0);
	log_info("pid %d unregistered VM \"%s\"", (int)c->pid, vm->name);
	drop_vm(h, vm);
	return 0;
}

static void answer(struct helper *h, struct conn *c, uint32_t seq, const struct verdict *v)
{
	struct kvmstat_msg_reply r = { .hdr = { KVMSTAT_PROTO_MAGIC, KVMSTAT_PROTO_VERSION,
						KVMSTAT_MSG_REPLY, sizeof(r), seq } };

	r.body.status = v->status;
	r.body.accepted = v->accepted;
	snprintf(r.body.reason, sizeof(r.body.reason), "%s", v->status ? v->why : "ok");
	if (v->status) {
		struct ipc_rejected m = { .hdr = { IPC_REJECTED, sizeof(m) }, .reason = v->reason };

		log_warn("registration from pid %d (uid %u) refused (%s): %s", (int)c->pid,
			 (unsigned)c->uid, reject_reason_name(v->reason), v->why);
		fdpass_send(h->ipc_fd, &m, sizeof(m), NULL, 0);
	}
	/* a peer that left without reading its answer is no error of ours */
	send(c->fd, &r, sizeof(r), MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void decide(struct helper *h, struct conn *c, const union request *r, int len, int *fds,
		   size_t n, struct verdict *v)
{
	if (len == -EMSGSIZE)
		deny(v, -EBADMSG, REJ_BAD_MESSAGE, "message longer than any request");
	else if (len == -E2BIG)
		deny(v, -E2BIG, REJ_FD_COUNT, "more than %d fds, or ancillary data cut",
		     KVMSTAT_MAX_FDS_PER_MSG);
	else if (len < 0)
		deny(v, -EBADMSG, REJ_BAD_MESSAGE, "unreadable message: %s", strerror(-len));
	else if (check_header(r, (size_t)len, v) < 0)
		return;
	else if (r->hdr.type == KVMSTAT_MSG_REGISTER_VM)
		do_register(h, c, &r->reg.body, fds, n, v);
	else if (r->hdr.type == KVMSTAT_MSG_ADD_VCPUS)
		do_add_vcpus(h, c, &r->add.body, fds, n, v);
	else
		do_unregister(h, c, &r->unreg.body, n, v);
}

int helper_serve_request(struct helper *h, struct conn *c)
{
	int fds[KVMSTAT_MAX_FDS_PER_MSG];
	struct verdict v = { 0 };
	union request r;
	size_t n = 0;
	int len;

	memset(&r, 0, sizeof(r));
	len = fdpass_recv(c->fd, &r, sizeof(r), fds, KVMSTAT_MAX_FDS_PER_MSG, &n);
	if (len == -EAGAIN)
		return 0;
	if (len == 0 || len == -ECONNRESET)
		return -1; /* the peer hung up */
	decide(h, c, &r, len, fds, n, &v);
	/* forwarded fds were duplicated into the worker: ours go either way */
	fdpass_close_all(fds, n);
	answer(h, c, len >= (int)sizeof(r.hdr) ? r.hdr.seq : 0, &v);
	/* a peer that speaks garbage or sends foreign fds is not heard twice */
	if (v.status &&
	    (v.reason == REJ_BAD_MESSAGE || v.reason == REJ_BAD_FD || v.reason == REJ_FD_COUNT))
		return -1;
	return 0;
}

void helper_forget_proc(struct helper *h, struct hproc *p)
{
	for (size_t i = h->n_vms; i-- > 0;)
		if (h->vms[i]->proc == p)
			drop_vm(h, h->vms[i]);
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
