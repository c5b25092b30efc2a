/* SPDX-License-Identifier: MIT */
/* helper_request - see helper_request.h. */
#include "helper_request.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "fdpass.h"
#include "log.h"
#include "reason.h"

/* the longest request and one byte more: fdpass_recv reports longer ones */
#define REQUEST_BUF (sizeof(struct kvmstat_msg_register_vm) + 1)
#define REFUSAL_BURST 20  /* refusal lines logged at once ... */
#define REFUSALS_PER_S 10 /* ... and a second after that */

static int deny(struct verdict *v, int status, enum reject_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int deny(struct verdict *v, int status, enum reject_reason reason, const char *fmt, ...)
{
	va_list ap;

	v->reason = reason;
	va_start(ap, fmt);
	v->status = reason_vset(v->why, sizeof(v->why), status, fmt, ap);
	va_end(ap);
	return status;
}

void registrar_init(struct registrar *r, struct vmtable *vt)
{
	*r = (struct registrar){ .vt = vt };
	logbudget_init(&r->log, REFUSAL_BURST, REFUSALS_PER_S, vt->ops->mono_ns(vt->ops->ctx));
}

/*
 * A lower bound of when thread tid made a stats fd: *created (the time of
 * the request), or the thread's start if that is earlier. A VMM may
 * register long after it created a VM; the kernel counted all along, and
 * _created must never be later than that start.
 */
static void bound_by_thread(const struct sysops *ops, pid_t tid, uint64_t *created)
{
	uint64_t start;

	if (ops->start_time_ns(ops->ctx, tid, &start) == 0 && start < *created)
		*created = start;
}

static int check_vm_fd(const struct sysops *ops, const struct conn *c, int fd, uint64_t *created,
		       struct verdict *v)
{
	struct fdcheck_result res;
	int rc = sysops_check_owned(ops, fd, FD_VM_STATS, c->pid, &res);

	if (rc < 0)
		return deny(v, rc, rc == -EBADF ? REJ_BAD_FD : REJ_NOT_OWNER, "%s%s",
			    rc == -EBADF ? "fd 0: " : "VM ", res.why);
	bound_by_thread(ops, res.id_pid, created);
	return 0;
}

/* The vCPUs of a request that are new to their VM: indices and fds. */
struct new_vcpus {
	int idx[KVMSTAT_MAX_FDS_PER_MSG];
	int fds[KVMSTAT_MAX_FDS_PER_MSG];
	size_t n;
};

/*
 * Check n vCPU fds for vm (NULL: a VM being registered) into *out. A vCPU
 * that discovery found first in this VM, from the very same file, is
 * accepted but not new; any other vCPU sent twice is an error.
 */
static int check_vcpus(struct registrar *r, const struct conn *c, const struct hvm *vm,
		       const int *fds, size_t n, struct new_vcpus *out, uint64_t *created,
		       struct verdict *v)
{
	const struct sysops *ops = r->vt->ops;
	int seen[KVMSTAT_MAX_FDS_PER_MSG];
	struct fdcheck_result res;

	out->n = 0;
	for (size_t i = 0; i < n; i++) {
		int rc = sysops_check_owned(ops, fds[i], FD_VCPU_STATS, c->pid, &res);
		bool known;

		if (rc < 0)
			return deny(v, rc, rc == -EBADF ? REJ_BAD_FD : REJ_NOT_OWNER,
				    "fd %zu: %s%s", i, rc == -EBADF ? "" : "vCPU ", res.why);
		seen[i] = res.vcpu;
		bound_by_thread(ops, res.id_pid, created);
		for (size_t j = 0; j < i; j++)
			if (seen[j] == res.vcpu)
				return deny(v, -EEXIST, REJ_DUPLICATE, "vCPU %d sent twice",
					    res.vcpu);
		known = vm && vmtable_vcpu_slot(vm, res.vcpu) >= 0;
		if (known && !(vm->origin == ORIGIN_DISCOVERED &&
			       vmtable_has_vcpu_file(r->vt, vm, 0, fds[i])))
			return deny(v, -EEXIST, REJ_DUPLICATE, "vCPU %d already registered",
				    res.vcpu);
		if (!known) {
			out->idx[out->n] = res.vcpu;
			out->fds[out->n++] = fds[i];
		}
	}
	return 0;
}

/* Its vCPUs new to vm join it, all or none. */
static int take_vcpus(struct registrar *r, struct hvm *vm, const struct new_vcpus *nv,
		      uint64_t created, struct verdict *v)
{
	char why[sizeof(v->why)];
	int rc = vmtable_add_vcpus(r->vt, vm, nv->idx, nv->fds, nv->n, created, why, sizeof(why));

	return rc < 0 ? deny(v, rc, REJ_LIMIT, "%s", why) : 0;
}

/*
 * A registration of a VM that discovery found first: the VMM's handle now
 * names it, and its new vCPUs join it. Its name stays (its series must not
 * change identity), which the log says.
 */
static int adopt(struct registrar *r, const struct conn *c, struct hvm *vm, const struct regmsg *m,
		 const int *fds, size_t n, struct verdict *v)
{
	uint64_t created = r->vt->ops->real_ns(r->vt->ops->ctx);
	struct new_vcpus nv;

	if (vm->has_handle || vm->proc->pid != c->pid)
		return deny(v, -EEXIST, REJ_DUPLICATE, "this VM stats fd is registered as \"%s\"",
			    vm->name);
	if (check_vcpus(r, c, vm, fds + 1, n - 1, &nv, &created, v) < 0 ||
	    take_vcpus(r, vm, &nv, created, v) < 0)
		return v->status;
	vm->handle = m->vm_handle;
	vm->has_handle = true;
	vm->proc->registers = true;
	log_event(LOG_LVL_INFO, &(struct log_fields){ vm->name, c->pid, "registered" },
		  "pid %d (uid %u) registered VM \"%s\", found by discovery before: same source",
		  (int)c->pid, (unsigned)c->uid, vm->name);
	v->accepted = (unsigned)n;
	return 0;
}

/*
 * A VMM that registers names its own VMs: those discovery made from its VM
 * fds (no file to match a registration against) give way to its own.
 */
static void drop_borrowed(struct vmtable *t, pid_t pid)
{
	for (size_t i = t->n_vms; i-- > 0;) {
		struct hvm *vm = t->vms[i];

		if (vm->proc->pid == pid && vm->origin == ORIGIN_BORROWED) {
			log_event(LOG_LVL_INFO, &(struct log_fields){ vm->name, pid, "replaced" },
				  "pid %d registers: VM \"%s\" made from its VM fd is replaced",
				  (int)pid, vm->name);
			vmtable_drop_vm(t, vm, true);
		}
	}
}

/* The VM of fds[0] with the new vCPUs nv, named name, joins the table. */
static int add_registered(struct registrar *r, const struct conn *c, const struct regmsg *m,
			  const char *name, int vm_fd, const struct new_vcpus *nv, uint64_t created,
			  struct verdict *v)
{
	struct vt_new_vm n = { .pid = c->pid,
			       .uid = c->uid,
			       .pidfd = c->pidfd,
			       .stats_fd = vm_fd,
			       .origin = ORIGIN_REGISTERED,
			       .name = name,
			       .has_handle = true,
			       .handle = m->vm_handle,
			       .borrowed_fd = -1,
			       .created_ns = created,
			       .vcpus = nv->idx,
			       .vcpu_fds = nv->fds,
			       .n_vcpus = nv->n };
	char why[sizeof(v->why)];
	struct hvm *vm;
	int rc = vmtable_add_vm(r->vt, &n, &vm, why, sizeof(why));

	if (rc < 0)
		return deny(v, rc, REJ_LIMIT, "%s", why);
	vm->proc->registers = true;
	log_event(LOG_LVL_INFO, &(struct log_fields){ name, c->pid, "registered" },
		  "pid %d (uid %u) registered VM \"%s\" with %u vCPUs", (int)c->pid,
		  (unsigned)c->uid, name, vm->n_vcpus);
	return 0;
}

static int do_register(struct registrar *r, const struct conn *c, const struct regmsg *m,
		       const int *fds, size_t n, struct verdict *v)
{
	struct vmtable *t = r->vt;
	uint64_t created = t->ops->real_ns(t->ops->ctx);
	char name[sizeof(((struct hvm *)0)->name)], why[sizeof(v->why)];
	struct new_vcpus nv;
	struct hvm *vm;

	if (vmtable_by_handle(t, c->pid, m->vm_handle))
		return deny(v, -EEXIST, REJ_DUPLICATE, "handle %llu is registered already",
			    (unsigned long long)m->vm_handle);
	drop_borrowed(t, c->pid);
	if (vmtable_has_discovered(t, c->pid)) { /* maybe one of those: look first */
		if (check_vm_fd(t->ops, c, fds[0], &created, v) < 0)
			return v->status;
		if ((vm = vmtable_by_file(t, 0, fds[0], 0)))
			return adopt(r, c, vm, m, fds, n, v);
	}
	/* the cheap checks first: no pread for a request refused anyway */
	if (vmtable_name(t, m->name, true, c->pid, m->vm_handle, name, sizeof(name), why,
			 sizeof(why)) < 0)
		return deny(v, -EEXIST, REJ_DUPLICATE, "%s", why);
	if (vmtable_room(t, vmtable_proc(t, c->pid), NULL, n - 1, n, why, sizeof(why)) < 0)
		return deny(v, -ENOSPC, REJ_LIMIT, "%s", why);
	if (check_vm_fd(t->ops, c, fds[0], &created, v) < 0 ||
	    check_vcpus(r, c, NULL, fds + 1, n - 1, &nv, &created, v) < 0)
		return v->status;
	if ((vm = vmtable_by_file(t, 0, fds[0], 0)))
		return deny(v, -EEXIST, REJ_DUPLICATE, "this VM stats fd is registered as \"%s\"",
			    vm->name);
	if (add_registered(r, c, m, name, fds[0], &nv, created, v) < 0)
		return v->status;
	v->accepted = (unsigned)n;
	return 0;
}

static int do_add_vcpus(struct registrar *r, const struct conn *c, const struct regmsg *m,
			const int *fds, size_t n, struct verdict *v)
{
	struct hvm *vm = vmtable_by_handle(r->vt, c->pid, m->vm_handle);
	uint64_t created = r->vt->ops->real_ns(r->vt->ops->ctx);
	char why[sizeof(v->why)];
	struct new_vcpus nv;

	if (!vm)
		return deny(v, -ENOENT, REJ_UNKNOWN_VM, "no VM with handle %llu",
			    (unsigned long long)m->vm_handle);
	/* cheap, before any pread */
	if (vmtable_room(r->vt, vm->proc, vm, n, n, why, sizeof(why)) < 0)
		return deny(v, -ENOSPC, REJ_LIMIT, "%s", why);
	if (check_vcpus(r, c, vm, fds, n, &nv, &created, v) < 0 ||
	    take_vcpus(r, vm, &nv, created, v) < 0)
		return v->status;
	v->accepted = (unsigned)n;
	return 0;
}

static int do_unregister(struct registrar *r, const struct conn *c, const struct regmsg *m,
			 struct verdict *v)
{
	struct hvm *vm = vmtable_by_handle(r->vt, c->pid, m->vm_handle);

	if (!vm)
		return deny(v, -ENOENT, REJ_UNKNOWN_VM, "no VM with handle %llu",
			    (unsigned long long)m->vm_handle);
	log_event(LOG_LVL_INFO, &(struct log_fields){ vm->name, c->pid, "unregistered" },
		  "pid %d unregistered VM \"%s\"", (int)c->pid, vm->name);
	vmtable_drop_vm(r->vt, vm, true);
	return 0;
}

/*
 * Every refusal is logged, but a hostile peer must not flood the journal:
 * r->log lets a burst through, then a few a second, with a count of those
 * left out. Every refusal is counted regardless.
 */
void helper_log_refusal(struct registrar *r, pid_t pid, uid_t uid, enum reject_reason reason,
			const char *why)
{
	uint64_t left_out;

	if (!logbudget_take(&r->log, r->vt->ops->mono_ns(r->vt->ops->ctx), &left_out))
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

static void answer(struct registrar *r, const struct conn *c, uint32_t seq, struct verdict *v)
{
	if (v->status)
		helper_log_refusal(r, c->pid, c->uid, v->reason, v->why);
	v->answered = true;
	helper_send_reply(c->fd, seq, v->status, v->accepted, v->why);
}

/* Who may ask, and how often: before anything the request carries is read. */
static int check_policy(struct registrar *r, const struct conn *c, struct verdict *v)
{
	struct policy *pol = r->vt->policy;
	char why[sizeof(v->why)];

	if (!pol)
		return 0;
	if (policy_admit(pol, c->uid, c->gid, c->groups, c->n_groups, why, sizeof(why)) < 0)
		return deny(v, -EPERM, REJ_NOT_ALLOWED, "%s", why);
	if (policy_take_token(pol, c->uid, r->vt->ops->mono_ns(r->vt->ops->ctx), why, sizeof(why)) <
	    0)
		return deny(v, -EAGAIN, REJ_RATE, "%s", why);
	return 0;
}

void registration_decide(struct registrar *r, const struct conn *c, const void *buf, int len,
			 const int *fds, size_t n, struct regmsg *m, struct verdict *v)
{
	char why[sizeof(v->why)];
	int rc;

	memset(m, 0, sizeof(*m));
	*v = (struct verdict){ 0 };
	/* parsing is pure and cheap: first, so that a policy refusal echoes seq */
	rc = len < 0 ? regmsg_recv_failed(len, m, why, sizeof(why))
		     : regmsg_parse(buf, (size_t)len, n, m, why, sizeof(why));
	if (rc < 0)
		deny(v, rc, m->reason, "%s", why);
	else if (check_policy(r, c, v) < 0)
		return;
	else if (m->type == KVMSTAT_MSG_REGISTER_VM)
		do_register(r, c, m, fds, n, v);
	else if (m->type == KVMSTAT_MSG_ADD_VCPUS)
		do_add_vcpus(r, c, m, fds, n, v);
	else
		do_unregister(r, c, m, v);
	v->scan_soon = v->status == 0 && m->type == KVMSTAT_MSG_REGISTER_VM;
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

int helper_serve_request(struct registrar *r, struct conn *c, struct verdict *v)
{
	int fds[KVMSTAT_MAX_FDS_PER_MSG];
	char buf[REQUEST_BUF];
	struct regmsg m;
	size_t n = 0;
	int len;

	*v = (struct verdict){ 0 };
	len = fdpass_recv(c->fd, buf, sizeof(buf), fds, KVMSTAT_MAX_FDS_PER_MSG, &n);
	if (len == -EAGAIN)
		return 0;
	if (hung_up(len, n))
		return -1;
	registration_decide(r, c, buf, len, fds, n, &m, v);
	/* we keep copies of what we accepted: the received fds go either way */
	fdpass_close_all(fds, n);
	answer(r, c, m.has_seq ? m.seq : 0, v);
	/* a peer that speaks garbage, sends foreign fds or may not register at
	 * all is not heard twice */
	if (v->status && (v->reason == REJ_BAD_MESSAGE || v->reason == REJ_BAD_FD ||
			  v->reason == REJ_FD_COUNT || v->reason == REJ_NOT_ALLOWED))
		return -1;
	return 0;
}
