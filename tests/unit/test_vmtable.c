/* SPDX-License-Identifier: MIT */
/*
 * test_vmtable - the helper's decisions about registrations, as an
 * ordinary user without KVM: the VM table (vmtable.c) and the registrar
 * (helper_request.c) behind a fake system (fakesys.h). Requests go in as
 * the bytes a VMM sends; what comes out is the verdict, the table, the
 * per-uid charges and what the worker is still to be told.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>

#include "config.h"
#include "fakesys.h"
#include "helper_request.h"
#include "log.h"
#include "policy.h"
#include "vmtable.h"

#define VMM 4000 /* a VMM's pid; its threads are 4000..4099 */
#define OTHER 5000
#define UID 1000
#define MS 1000000ull

struct world {
	struct fakesys f;
	struct config cfg;
	struct policy *policy;
	struct vmtable vt;
	struct registrar reg;
	struct conn conn; /* the VMM's connection */
	uint32_t seq;
};

static struct world *world_new(void (*tune)(struct config *))
{
	struct world *w = calloc(1, sizeof(*w));

	assert_non_null(w);
	fake_init(&w->f);
	config_defaults(&w->cfg);
	w->cfg.fd_limit = 0;
	if (tune)
		tune(&w->cfg);
	assert_int_equal(policy_new(&w->policy, &w->cfg), 0);
	vmtable_init(&w->vt, &w->cfg, w->policy, &w->f.ops);
	registrar_init(&w->reg, &w->vt);
	w->conn = (struct conn){ .tag = TAG_CONN, .fd = -1, .pid = VMM, .uid = UID, .gid = UID };
	w->conn.pidfd = fake_keep(&w->f, eventfd(0, EFD_CLOEXEC));
	return w;
}

static void world_free(struct world *w)
{
	vmtable_fini(&w->vt);
	policy_free(w->policy);
	fake_fini(&w->f);
	free(w);
}

static int vm_fd(struct world *w, pid_t tid)
{
	return fake_stats_fd(&w->f, FD_VM_STATS, tid, -1);
}

static int vcpu_fd(struct world *w, pid_t tid, int index)
{
	return fake_stats_fd(&w->f, FD_VCPU_STATS, tid, index);
}

static struct kvmstat_msg_hdr hdr(struct world *w, uint16_t type, uint32_t len)
{
	return (struct kvmstat_msg_hdr){ KVMSTAT_PROTO_MAGIC, KVMSTAT_PROTO_VERSION, type, len,
					 ++w->seq };
}

static int reg(struct world *w, uint64_t handle, const char *name, const int *fds, size_t n,
	       struct verdict *v)
{
	struct kvmstat_msg_register_vm m = { .hdr = hdr(w, KVMSTAT_MSG_REGISTER_VM, sizeof(m)) };
	struct regmsg msg;

	m.body.vm_handle = handle;
	snprintf(m.body.name, sizeof(m.body.name), "%s", name);
	registration_decide(&w->reg, &w->conn, &m, sizeof(m), fds, n, &msg, v);
	return v->status;
}

static int add_vcpus(struct world *w, uint64_t handle, const int *fds, size_t n, struct verdict *v)
{
	struct kvmstat_msg_add_vcpus m = { .hdr = hdr(w, KVMSTAT_MSG_ADD_VCPUS, sizeof(m)) };
	struct regmsg msg;

	m.body.vm_handle = handle;
	registration_decide(&w->reg, &w->conn, &m, sizeof(m), fds, n, &msg, v);
	return v->status;
}

static int unreg(struct world *w, uint64_t handle, struct verdict *v)
{
	struct kvmstat_msg_unregister_vm m = { .hdr =
						   hdr(w, KVMSTAT_MSG_UNREGISTER_VM, sizeof(m)) };
	struct regmsg msg;

	m.body.vm_handle = handle;
	registration_decide(&w->reg, &w->conn, &m, sizeof(m), NULL, 0, &msg, v);
	return v->status;
}

/* A VM of the VMM (created by its main thread) with n vCPUs 0..n-1, registered. */
static struct hvm *register_vm(struct world *w, uint64_t handle, const char *name, unsigned n)
{
	int fds[KVMSTAT_MAX_FDS_PER_MSG];
	struct verdict v = { 0 };

	fds[0] = vm_fd(w, w->conn.pid);
	for (unsigned i = 0; i < n; i++)
		fds[1 + i] = vcpu_fd(w, w->conn.pid + 1 + (pid_t)i, (int)i);
	if (reg(w, handle, name, fds, 1 + n, &v) != 0)
		fail_msg("registration refused: %s", v.why);
	return vmtable_by_handle(&w->vt, w->conn.pid, handle);
}

static void assert_why_has(const struct verdict *v, const char *part)
{
	if (!strstr(v->why, part))
		fail_msg("\"%s\" lacks \"%s\"", v->why, part);
}

/* ---- registration ---------------------------------------------------------- */

static void test_registered_vm_is_held_charged_and_news_for_the_worker(void **state)
{
	struct world *w = world_new(NULL);
	struct hvm *vm;

	(void)state;
	vm = register_vm(w, 7, "web-1", 2);
	assert_non_null(vm);
	assert_string_equal(vm->name, "web-1");
	assert_int_equal(vm->origin, ORIGIN_REGISTERED);
	assert_int_equal(vm->n_vcpus, 2);
	assert_int_equal(vm->vcpus[0], 0);
	assert_int_equal(vm->vcpus[1], 1);
	assert_int_equal(w->vt.n_sources, 3);
	assert_int_equal(policy_charged(w->policy, UID), 3);
	assert_false(vm->told); /* the loop tells the worker */
	assert_true(vm->proc->registers);
	assert_false(vm->proc->watched); /* and watches the VMM */
	assert_string_equal(vm->proc->comm, "fake-vmm");
	world_free(w);
}

static void test_request_accepted_counts_every_fd_sent(void **state)
{
	struct world *w = world_new(NULL);
	int fds[3];
	struct verdict v = { 0 };

	(void)state;
	fds[0] = vm_fd(w, VMM);
	fds[1] = vcpu_fd(w, VMM + 1, 0);
	fds[2] = vcpu_fd(w, VMM + 2, 1);
	assert_int_equal(reg(w, 1, "", fds, 3, &v), 0);
	assert_int_equal(v.accepted, 3);
	assert_true(v.scan_soon); /* the VMM may hold other VMs */
	world_free(w);
}

/*
 * The bug this table fixed: when some vCPUs of ADD_VCPUS could not be
 * taken (out of fds), the others stayed in the VM and charged to the uid,
 * but the request was refused and the worker never heard of them.
 */
static void test_vcpus_that_cannot_all_be_taken_leave_no_trace(void **state)
{
	struct world *w = world_new(NULL);
	struct hvm *vm = register_vm(w, 1, "db", 1);
	int fds[3];
	struct verdict v = { 0 };

	(void)state;
	vm->told = true; /* as after the loop's update */
	vm->n_told = 1;
	fds[0] = vcpu_fd(w, VMM + 2, 1);
	fds[1] = vcpu_fd(w, VMM + 3, 2);
	fds[2] = vcpu_fd(w, VMM + 4, 3);
	w->f.copies_left = 2; /* the third copy fails: out of descriptors */
	assert_int_equal(add_vcpus(w, 1, fds, 3, &v), -ENOMEM);
	assert_int_equal(v.reason, REJ_LIMIT);
	assert_int_equal(v.accepted, 0);
	assert_int_equal(vm->n_vcpus, 1);
	assert_int_equal(vm->n_told, vm->n_vcpus); /* nothing held back from the worker */
	assert_int_equal(w->vt.n_sources, 2);
	assert_int_equal(policy_charged(w->policy, UID), 2);
	/* the same request goes through once there are fds again */
	w->f.copies_left = -1;
	assert_int_equal(add_vcpus(w, 1, fds, 3, &v), 0);
	assert_int_equal(vm->n_vcpus, 4);
	assert_int_equal(policy_charged(w->policy, UID), 5);
	world_free(w);
}

static void test_vm_that_cannot_be_copied_whole_is_refused_without_a_trace(void **state)
{
	struct world *w = world_new(NULL);
	int fds[3];
	struct verdict v = { 0 };

	(void)state;
	fds[0] = vm_fd(w, VMM);
	fds[1] = vcpu_fd(w, VMM + 1, 0);
	fds[2] = vcpu_fd(w, VMM + 2, 1);
	w->f.copies_left = 3; /* the pidfd, the VM, one vCPU: the last vCPU fails */
	assert_int_equal(reg(w, 1, "x", fds, 3, &v), -ENOMEM);
	assert_int_equal(v.accepted, 0);
	assert_int_equal(w->vt.n_vms, 0);
	assert_int_equal(w->vt.n_procs, 0);
	assert_int_equal(w->vt.n_sources, 0);
	assert_int_equal(policy_charged(w->policy, UID), 0);
	world_free(w);
}

static void test_vcpus_added_later_are_news_for_the_worker(void **state)
{
	struct world *w = world_new(NULL);
	struct hvm *vm = register_vm(w, 1, "a", 1);
	int fds[1];
	struct verdict v = { 0 };

	(void)state;
	vm->told = true;
	vm->n_told = 1;
	w->f.real_ns += 5000 * MS;
	fds[0] = vcpu_fd(w, VMM + 9, 8);
	assert_int_equal(add_vcpus(w, 1, fds, 1, &v), 0);
	assert_int_equal(v.accepted, 1);
	assert_int_equal(vm->n_vcpus, 2);
	assert_int_equal(vm->n_told, 1); /* vCPU 8 is news, started when it was sent */
	assert_true(vm->news_created_ns == w->f.real_ns);
	world_free(w);
}

static void test_handle_in_use_is_a_duplicate(void **state)
{
	struct world *w = world_new(NULL);
	int fds[1];
	struct verdict v = { 0 };

	(void)state;
	register_vm(w, 3, "one", 0);
	fds[0] = vm_fd(w, VMM);
	assert_int_equal(reg(w, 3, "two", fds, 1, &v), -EEXIST);
	assert_int_equal(v.reason, REJ_DUPLICATE);
	assert_why_has(&v, "handle 3");
	assert_int_equal(w->vt.n_vms, 1);
	world_free(w);
}

static void test_same_vm_sent_again_is_a_duplicate_and_charges_nothing(void **state)
{
	struct world *w = world_new(NULL);
	struct hvm *vm = register_vm(w, 1, "one", 0);
	int again = fake_keep(&w->f, fcntl(vm->stats_fd, F_DUPFD_CLOEXEC, 3));
	struct verdict v = { 0 };

	(void)state;
	assert_int_equal(reg(w, 2, "", &again, 1, &v), -EEXIST);
	assert_int_equal(v.reason, REJ_DUPLICATE);
	assert_why_has(&v, "registered as \"one\"");
	assert_int_equal(policy_charged(w->policy, UID), 1);
	assert_int_equal(w->vt.n_sources, 1);
	world_free(w);
}

static void test_vcpu_sent_twice_in_one_request_is_a_duplicate(void **state)
{
	struct world *w = world_new(NULL);
	int fds[3];
	struct verdict v = { 0 };

	(void)state;
	fds[0] = vm_fd(w, VMM);
	fds[1] = vcpu_fd(w, VMM + 1, 0);
	fds[2] = vcpu_fd(w, VMM + 1, 0);
	assert_int_equal(reg(w, 1, "", fds, 3, &v), -EEXIST);
	assert_why_has(&v, "vCPU 0 sent twice");
	assert_int_equal(w->vt.n_vms, 0);
	world_free(w);
}

static void test_vcpu_registered_already_is_a_duplicate(void **state)
{
	struct world *w = world_new(NULL);
	int fd;
	struct verdict v = { 0 };

	(void)state;
	register_vm(w, 1, "", 1);
	fd = vcpu_fd(w, VMM + 1, 0);
	assert_int_equal(add_vcpus(w, 1, &fd, 1, &v), -EEXIST);
	assert_why_has(&v, "vCPU 0 already registered");
	world_free(w);
}

static void test_fd_that_is_no_stats_fd_closes_the_conversation(void **state)
{
	struct world *w = world_new(NULL);
	int fds[2];
	struct verdict v = { 0 };

	(void)state;
	fds[0] = vm_fd(w, VMM);
	fds[1] = fake_other_fd(&w->f);
	assert_int_equal(reg(w, 1, "", fds, 2, &v), -EBADF);
	assert_int_equal(v.reason, REJ_BAD_FD);
	assert_why_has(&v, "not a KVM vCPU stats fd");
	assert_int_equal(w->vt.n_vms, 0);
	assert_int_equal(policy_charged(w->policy, UID), 0);
	world_free(w);
}

static void test_vm_of_another_process_is_not_owned(void **state)
{
	struct world *w = world_new(NULL);
	int fd;
	struct verdict v = { 0 };

	(void)state;
	fd = vm_fd(w, OTHER);
	assert_int_equal(reg(w, 1, "", &fd, 1, &v), -EPERM);
	assert_int_equal(v.reason, REJ_NOT_OWNER);
	assert_why_has(&v, "tid 5000, not by pid 4000");
	world_free(w);
}

static void test_unknown_handle_is_enoent(void **state)
{
	struct world *w = world_new(NULL);
	int fd;
	struct verdict v = { 0 };

	(void)state;
	fd = vcpu_fd(w, VMM + 1, 0);
	assert_int_equal(add_vcpus(w, 9, &fd, 1, &v), -ENOENT);
	assert_int_equal(v.reason, REJ_UNKNOWN_VM);
	assert_int_equal(unreg(w, 9, &v), -ENOENT);
	world_free(w);
}

static void test_malformed_request_is_refused_before_the_policy(void **state)
{
	struct world *w = world_new(NULL);
	struct kvmstat_msg_register_vm m = { .hdr = hdr(w, KVMSTAT_MSG_REGISTER_VM, sizeof(m)) };
	int fd = vm_fd(w, VMM);
	struct verdict v = { 0 };
	struct regmsg msg;

	(void)state;
	m.body.flags = 1;
	registration_decide(&w->reg, &w->conn, &m, sizeof(m), &fd, 1, &msg, &v);
	assert_int_equal(v.status, -EBADMSG);
	assert_int_equal(v.reason, REJ_BAD_MESSAGE);
	assert_true(msg.has_seq);
	assert_int_equal(msg.seq, w->seq);
	assert_false(v.scan_soon);
	world_free(w);
}

/* ---- names ----------------------------------------------------------------- */

static void test_unnamed_vms_are_kvm_pid_then_kvm_pid_handle(void **state)
{
	struct world *w = world_new(NULL);

	(void)state;
	assert_string_equal(register_vm(w, 11, "", 0)->name, "kvm-4000");
	assert_string_equal(register_vm(w, 12, "", 0)->name, "kvm-4000-12");
	world_free(w);
}

static void test_name_in_use_is_refused_not_replaced(void **state)
{
	struct world *w = world_new(NULL);
	int fd;
	struct verdict v = { 0 };

	(void)state;
	register_vm(w, 1, "web-1", 0);
	fd = vm_fd(w, VMM);
	assert_int_equal(reg(w, 2, "web-1", &fd, 1, &v), -EEXIST);
	assert_int_equal(v.reason, REJ_DUPLICATE);
	assert_why_has(&v, "name \"web-1\" is in use");
	world_free(w);
}

static void test_wanted_name_falls_back_when_not_strict(void **state)
{
	struct world *w = world_new(NULL);
	char name[80], why[96];

	(void)state;
	register_vm(w, 1, "guest", 0);
	assert_int_equal(
	    vmtable_name(&w->vt, "guest", false, OTHER, 6, name, sizeof(name), why, sizeof(why)),
	    0);
	assert_string_equal(name, "kvm-5000");
	assert_int_equal(
	    vmtable_name(&w->vt, "guest", true, OTHER, 6, name, sizeof(name), why, sizeof(why)),
	    -EEXIST);
	world_free(w);
}

/* ---- limits, charges, grace ------------------------------------------------- */

static void two_vms_per_peer(struct config *c)
{
	c->max_vms_per_peer = 2;
}

static void test_max_vms_per_peer_refuses_and_charges_nothing(void **state)
{
	struct world *w = world_new(two_vms_per_peer);
	int fd;
	struct verdict v = { 0 };

	(void)state;
	register_vm(w, 1, "", 0);
	register_vm(w, 2, "", 0);
	fd = vm_fd(w, VMM);
	assert_int_equal(reg(w, 3, "", &fd, 1, &v), -ENOSPC);
	assert_int_equal(v.reason, REJ_LIMIT);
	assert_why_has(&v, "max_vms_per_peer");
	assert_int_equal(policy_charged(w->policy, UID), 2);
	world_free(w);
}

static void two_vcpus_per_vm(struct config *c)
{
	c->max_vcpus_per_vm = 2;
}

static void test_max_vcpus_per_vm_counts_those_held(void **state)
{
	struct world *w = world_new(two_vcpus_per_vm);
	int fd;
	struct verdict v = { 0 };

	(void)state;
	register_vm(w, 1, "", 2);
	fd = vcpu_fd(w, VMM + 5, 2);
	assert_int_equal(add_vcpus(w, 1, &fd, 1, &v), -ENOSPC);
	assert_why_has(&v, "max_vcpus_per_vm");
	world_free(w);
}

static void four_per_uid(struct config *c)
{
	c->max_sources_per_uid = 4;
}

static void test_uid_budget_is_taken_after_the_checks_and_refunded_after_the_grace(void **state)
{
	struct world *w = world_new(four_per_uid);
	int fds[2];
	struct verdict v = { 0 };

	(void)state;
	register_vm(w, 1, "", 2); /* 3 of 4 */
	fds[0] = vm_fd(w, VMM);
	fds[1] = vcpu_fd(w, VMM + 7, 0);
	assert_int_equal(reg(w, 2, "", fds, 2, &v), -ENOSPC);
	assert_why_has(&v, "uid 1000");
	assert_int_equal(policy_charged(w->policy, UID), 3);
	/* unregistered: the worker keeps its fds for the grace, so do the charges */
	assert_int_equal(unreg(w, 1, &v), 0);
	assert_int_equal(w->vt.n_vms, 0);
	assert_int_equal(policy_charged(w->policy, UID), 3);
	assert_int_equal(reg(w, 2, "", fds, 2, &v), -ENOSPC);
	w->f.mono_ns += (w->cfg.exit_grace_ms + 2ull * w->cfg.interval_ms + 1000) * MS;
	assert_int_equal(reg(w, 2, "", fds, 2, &v), 0);
	assert_int_equal(policy_charged(w->policy, UID), 2);
	assert_int_equal(w->vt.n_sources, 2);
	world_free(w);
}

static void three_sources(struct config *c)
{
	c->max_sources = 3;
}

static void test_vms_of_an_exited_vmm_hold_max_sources_until_their_grace_ends(void **state)
{
	struct world *w = world_new(three_sources);
	struct hvm *vm = register_vm(w, 1, "", 2);
	int fd;
	struct verdict v = { 0 };

	(void)state;
	vmtable_forget_proc(&w->vt, vm->proc); /* the VMM exited */
	assert_int_equal(w->vt.n_procs, 0);
	assert_int_equal(w->vt.n_sources, 3);
	assert_int_equal(w->vt.n_retiring, 1);
	assert_int_equal(w->vt.retiring[0].tell_id, 0); /* the worker sees the exit itself */
	w->conn.pid = OTHER;
	fd = vm_fd(w, OTHER);
	assert_int_equal(reg(w, 1, "", &fd, 1, &v), -ENOSPC);
	assert_why_has(&v, "exit grace");
	w->f.mono_ns += (w->cfg.exit_grace_ms + 2ull * w->cfg.interval_ms + 1000) * MS - 1;
	assert_int_equal(reg(w, 1, "", &fd, 1, &v), -ENOSPC);
	w->f.mono_ns += 1;
	assert_int_equal(reg(w, 1, "", &fd, 1, &v), 0);
	assert_int_equal(w->vt.n_sources, 1);
	assert_int_equal(w->vt.n_retiring, 0);
	world_free(w);
}

static void test_unregistration_is_told_to_a_worker_that_knew_the_vm(void **state)
{
	struct world *w = world_new(NULL);
	struct hvm *known = register_vm(w, 1, "known", 0), *fresh;
	uint32_t id = known->id;
	struct verdict v = { 0 };

	(void)state;
	known->told = true;
	fresh = register_vm(w, 2, "fresh", 0);
	assert_non_null(fresh);
	assert_int_equal(unreg(w, 1, &v), 0);
	assert_int_equal(unreg(w, 2, &v), 0);
	assert_int_equal(w->vt.n_retiring, 2);
	assert_int_equal(w->vt.retiring[0].tell_id, id);
	assert_int_equal(w->vt.retiring[1].tell_id, 0); /* never heard of it */
	world_free(w);
}

static void test_a_new_worker_learns_every_vm_again(void **state)
{
	struct world *w = world_new(NULL);
	struct hvm *vm = register_vm(w, 1, "", 2);
	struct verdict v = { 0 };

	(void)state;
	vm->told = true;
	vm->n_told = 2;
	register_vm(w, 2, "gone", 0)->told = true;
	assert_int_equal(unreg(w, 2, &v), 0);
	vmtable_untell_all(&w->vt);
	assert_false(vm->told);
	assert_int_equal(vm->n_told, 0);
	assert_int_equal(w->vt.retiring[0].tell_id, 0); /* it never had the gone one */
	world_free(w);
}

/* ---- policy ------------------------------------------------------------------ */

static void only_uid_42(struct config *c)
{
	c->allow_uids[0] = 42;
	c->n_allow_uids = 1;
}

static void test_uid_not_allowed_is_refused_before_its_fds_are_looked_at(void **state)
{
	struct world *w = world_new(only_uid_42);
	int fd;
	struct verdict v = { 0 };

	(void)state;
	fd = fake_other_fd(&w->f); /* would be bad_fd if it were looked at */
	assert_int_equal(reg(w, 1, "", &fd, 1, &v), -EPERM);
	assert_int_equal(v.reason, REJ_NOT_ALLOWED);
	world_free(w);
}

static void one_per_second(struct config *c)
{
	c->rate_limit = 1;
	c->rate_burst = 1;
}

static void test_uid_over_its_rate_is_told_to_try_again(void **state)
{
	struct world *w = world_new(one_per_second);
	struct verdict v = { 0 };

	(void)state;
	register_vm(w, 1, "", 0);
	assert_int_equal(unreg(w, 1, &v), -EAGAIN);
	assert_int_equal(v.reason, REJ_RATE);
	w->f.mono_ns += 1000 * MS;
	assert_int_equal(unreg(w, 1, &v), 0);
	world_free(w);
}

/* ---- discovered first, registered later -------------------------------------- */

/* A VM discovery found in the VMM, with vCPU 0: copies of the VMM's fds. */
static struct hvm *discovered(struct world *w, int vm, int vcpu0)
{
	struct hvm *out = NULL;
	char why[96];
	int idx = 0;

	assert_int_equal(vmtable_add_vm(&w->vt,
					&(struct vt_new_vm){ .pid = VMM,
							     .uid = UID,
							     .pidfd = w->conn.pidfd,
							     .stats_fd = vm,
							     .origin = ORIGIN_DISCOVERED,
							     .name = "kvm-4000",
							     .borrowed_fd = -1,
							     .vcpus = &idx,
							     .vcpu_fds = &vcpu0,
							     .n_vcpus = 1 },
					&out, why, sizeof(why)),
			 0);
	out->told = true;
	out->n_told = 1;
	return out;
}

static void test_registering_a_discovered_vm_adopts_it_as_one_source(void **state)
{
	struct world *w = world_new(NULL);
	int fds[3];
	struct hvm *vm;
	struct verdict v = { 0 };

	(void)state;
	fds[0] = vm_fd(w, VMM);
	fds[1] = vcpu_fd(w, VMM + 1, 0);
	fds[2] = vcpu_fd(w, VMM + 2, 1);
	vm = discovered(w, fds[0], fds[1]);
	assert_int_equal(reg(w, 5, "late-name", fds, 3, &v), 0);
	assert_int_equal(v.accepted, 3);
	assert_int_equal(w->vt.n_vms, 1);
	assert_ptr_equal(vmtable_by_handle(&w->vt, VMM, 5), vm);
	assert_string_equal(vm->name, "kvm-4000"); /* its series keep their identity */
	assert_true(vm->proc->registers);
	assert_int_equal(vm->n_vcpus, 2); /* vCPU 0 was known: only vCPU 1 is new */
	assert_int_equal(vm->n_told, 1);
	assert_int_equal(w->vt.n_sources, 3);
	assert_int_equal(policy_charged(w->policy, UID), 3);
	world_free(w);
}

static void test_a_discovered_vm_is_adopted_only_by_its_own_vmm_once(void **state)
{
	struct world *w = world_new(NULL);
	int fds[2];
	struct verdict v = { 0 };

	(void)state;
	fds[0] = vm_fd(w, VMM);
	fds[1] = vcpu_fd(w, VMM + 1, 0);
	discovered(w, fds[0], fds[1]);
	assert_int_equal(reg(w, 5, "", fds, 1, &v), 0);
	assert_int_equal(reg(w, 6, "", fds, 1, &v), -EEXIST);
	assert_why_has(&v, "registered as \"kvm-4000\"");
	world_free(w);
}

static void test_a_different_vcpu_file_for_a_discovered_index_is_a_duplicate(void **state)
{
	struct world *w = world_new(NULL);
	int fds[2];
	struct verdict v = { 0 };

	(void)state;
	fds[0] = vm_fd(w, VMM);
	fds[1] = vcpu_fd(w, VMM + 1, 0);
	discovered(w, fds[0], fds[1]);
	fds[1] = vcpu_fd(w, VMM + 1, 0); /* index 0 again, another file */
	assert_int_equal(reg(w, 5, "", fds, 2, &v), -EEXIST);
	assert_why_has(&v, "vCPU 0 already registered");
	assert_false(vmtable_proc(&w->vt, VMM)->registers);
	world_free(w);
}

static void test_adoption_that_cannot_take_its_vcpus_changes_nothing(void **state)
{
	struct world *w = world_new(NULL);
	int fds[3];
	struct hvm *vm;
	struct verdict v = { 0 };

	(void)state;
	fds[0] = vm_fd(w, VMM);
	fds[1] = vcpu_fd(w, VMM + 1, 0);
	fds[2] = vcpu_fd(w, VMM + 2, 1);
	vm = discovered(w, fds[0], fds[1]);
	w->f.copies_left = 0;
	assert_int_equal(reg(w, 5, "", fds, 3, &v), -ENOMEM);
	assert_false(vm->has_handle); /* still discovery's */
	assert_false(vm->proc->registers);
	assert_int_equal(vm->n_vcpus, 1);
	assert_int_equal(policy_charged(w->policy, UID), 2);
	world_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registered_vm_is_held_charged_and_news_for_the_worker),
		cmocka_unit_test(test_request_accepted_counts_every_fd_sent),
		cmocka_unit_test(test_vcpus_that_cannot_all_be_taken_leave_no_trace),
		cmocka_unit_test(test_vm_that_cannot_be_copied_whole_is_refused_without_a_trace),
		cmocka_unit_test(test_vcpus_added_later_are_news_for_the_worker),
		cmocka_unit_test(test_handle_in_use_is_a_duplicate),
		cmocka_unit_test(test_same_vm_sent_again_is_a_duplicate_and_charges_nothing),
		cmocka_unit_test(test_vcpu_sent_twice_in_one_request_is_a_duplicate),
		cmocka_unit_test(test_vcpu_registered_already_is_a_duplicate),
		cmocka_unit_test(test_fd_that_is_no_stats_fd_closes_the_conversation),
		cmocka_unit_test(test_vm_of_another_process_is_not_owned),
		cmocka_unit_test(test_unknown_handle_is_enoent),
		cmocka_unit_test(test_malformed_request_is_refused_before_the_policy),
		cmocka_unit_test(test_unnamed_vms_are_kvm_pid_then_kvm_pid_handle),
		cmocka_unit_test(test_name_in_use_is_refused_not_replaced),
		cmocka_unit_test(test_wanted_name_falls_back_when_not_strict),
		cmocka_unit_test(test_max_vms_per_peer_refuses_and_charges_nothing),
		cmocka_unit_test(test_max_vcpus_per_vm_counts_those_held),
		cmocka_unit_test(
		    test_uid_budget_is_taken_after_the_checks_and_refunded_after_the_grace),
		cmocka_unit_test(test_vms_of_an_exited_vmm_hold_max_sources_until_their_grace_ends),
		cmocka_unit_test(test_unregistration_is_told_to_a_worker_that_knew_the_vm),
		cmocka_unit_test(test_a_new_worker_learns_every_vm_again),
		cmocka_unit_test(test_uid_not_allowed_is_refused_before_its_fds_are_looked_at),
		cmocka_unit_test(test_uid_over_its_rate_is_told_to_try_again),
		cmocka_unit_test(test_registering_a_discovered_vm_adopts_it_as_one_source),
		cmocka_unit_test(test_a_discovered_vm_is_adopted_only_by_its_own_vmm_once),
		cmocka_unit_test(test_a_different_vcpu_file_for_a_discovered_index_is_a_duplicate),
		cmocka_unit_test(test_adoption_that_cannot_take_its_vcpus_changes_nothing),
	};

	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
