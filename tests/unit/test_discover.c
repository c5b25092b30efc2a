/* SPDX-License-Identifier: MIT */
/*
 * test_discover - discovery's decisions about one process (discover_pid),
 * as an ordinary user without KVM: a fake /proc (fakesys.h) lists the
 * process's fds by link name and "pidfd_getfd" copies ours. What comes
 * out is the VM table: which VMs and vCPUs, under which names, charged to
 * whom, and what the worker is still to be told.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>

#include "config.h"
#include "discover.h"
#include "fakesys.h"
#include "log.h"
#include "policy.h"
#include "vmtable.h"

#define VMM 4000 /* its threads are 4000..4099 */
#define UID 1000

struct world {
	struct fakesys f;
	struct config cfg;
	struct policy *policy;
	struct vmtable vt;
	struct discovery d;
	struct scan_counts n;
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
	assert_int_equal(discovery_init(&w->d, &w->vt, false), 0);
	fake_creds(&w->f, VMM, UID, UID);
	return w;
}

static void world_free(struct world *w)
{
	discovery_fini(&w->d);
	vmtable_fini(&w->vt);
	policy_free(w->policy);
	fake_fini(&w->f);
	free(w);
}

/* The VMM holds a VM stats fd made by tid; returns it (our fd, "theirs"). */
static int holds_vm(struct world *w, pid_t pid, pid_t tid)
{
	int fd = fake_stats_fd(&w->f, FD_VM_STATS, tid, -1);

	fake_holds(&w->f, pid, fd, "anon_inode:kvm-vm-stats");
	return fd;
}

static int holds_vcpu(struct world *w, pid_t pid, pid_t tid, int index)
{
	char link[64];
	int fd = fake_stats_fd(&w->f, FD_VCPU_STATS, tid, index);

	snprintf(link, sizeof(link), "anon_inode:kvm-vcpu-stats:%d", index);
	fake_holds(&w->f, pid, fd, link);
	return fd;
}

static void scan(struct world *w, pid_t pid)
{
	w->n = (struct scan_counts){ 0 };
	discover_pid(&w->d, pid, &w->n);
}

static void test_a_vmm_with_one_vm_is_found_with_its_vcpus(void **state)
{
	struct world *w = world_new(NULL);
	struct hvm *vm;

	(void)state;
	holds_vm(w, VMM, VMM);
	holds_vcpu(w, VMM, VMM + 1, 0);
	holds_vcpu(w, VMM, VMM + 2, 1);
	scan(w, VMM);
	assert_int_equal(w->n.vms, 1);
	assert_int_equal(w->n.vcpus, 2);
	vm = w->vt.vms[0];
	assert_string_equal(vm->name, "kvm-4000");
	assert_int_equal(vm->origin, ORIGIN_DISCOVERED);
	assert_false(vm->has_handle);
	assert_int_equal(vm->n_vcpus, 2);
	assert_false(vm->told); /* the loop sends it whole */
	assert_int_equal(policy_charged(w->policy, UID), 3);
	assert_int_equal(w->vt.n_sources, 3);
	world_free(w);
}

static void test_a_known_vm_is_found_once_and_its_new_vcpus_are_news(void **state)
{
	struct world *w = world_new(NULL);
	struct hvm *vm;

	(void)state;
	holds_vm(w, VMM, VMM);
	holds_vcpu(w, VMM, VMM + 1, 0);
	scan(w, VMM);
	vm = w->vt.vms[0];
	vm->told = true;
	vm->n_told = 1;
	holds_vcpu(w, VMM, VMM + 2, 1); /* hot-plugged */
	scan(w, VMM);
	assert_int_equal(w->n.vms, 0);
	assert_int_equal(w->n.vcpus, 1);
	assert_int_equal(w->vt.n_vms, 1);
	assert_int_equal(vm->n_vcpus, 2);
	assert_int_equal(vm->n_told, 1);
	assert_true(vm->news_created_ns == vm->created_ns);
	scan(w, VMM);
	assert_int_equal(w->n.vms + w->n.vcpus, 0);
	world_free(w);
}

static void test_vcpus_of_a_vmm_with_two_vms_are_left_out(void **state)
{
	struct world *w = world_new(NULL);
	char want[32];
	int second;

	(void)state;
	holds_vm(w, VMM, VMM);
	second = holds_vm(w, VMM, VMM);
	holds_vcpu(w, VMM, VMM + 1, 0);
	scan(w, VMM);
	assert_int_equal(w->n.vms, 2);
	assert_int_equal(w->n.vcpus, 0);
	assert_int_equal(w->vt.vms[0]->n_vcpus + w->vt.vms[1]->n_vcpus, 0);
	/* the second is named by the fd the VMM holds it by */
	snprintf(want, sizeof(want), "kvm-4000-%d", second);
	assert_string_equal(w->vt.vms[0]->name, "kvm-4000");
	assert_string_equal(w->vt.vms[1]->name, want);
	world_free(w);
}

static void test_a_vm_is_named_after_qemus_name_argument(void **state)
{
	struct world *w = world_new(NULL);
	static const char cmdline[] = "qemu-system-x86_64\0-name\0guest=db-7,debug-threads=on";

	(void)state;
	holds_vm(w, VMM, VMM);
	holds_vm(w, 4200, 4200);
	fake_proc_bytes(&w->f, VMM, "cmdline", cmdline, sizeof(cmdline));
	fake_proc_bytes(&w->f, 4200, "cmdline", cmdline, sizeof(cmdline));
	fake_creds(&w->f, 4200, UID, UID);
	scan(w, VMM);
	assert_int_equal(w->n.vms, 1);
	assert_string_equal(w->vt.vms[0]->name, "db-7");
	/* a second VMM with the same -name: the default rule, not a duplicate */
	scan(w, 4200);
	assert_int_equal(w->n.vms, 1);
	assert_string_equal(w->vt.vms[1]->name, "kvm-4200");
	world_free(w);
}

static void test_stats_fds_of_another_process_are_not_taken(void **state)
{
	struct world *w = world_new(NULL);

	(void)state;
	holds_vm(w, VMM, 5000); /* a tool that borrowed another VMM's fd */
	scan(w, VMM);
	assert_int_equal(w->n.vms, 0);
	assert_int_equal(w->vt.n_vms, 0);
	world_free(w);
}

static void test_a_vmm_that_registered_is_left_alone(void **state)
{
	struct world *w = world_new(NULL);
	struct hvm *vm;
	int theirs = holds_vm(w, VMM, VMM), pidfd = fake_keep(&w->f, eventfd(0, EFD_CLOEXEC));
	char why[96];

	(void)state;
	assert_int_equal(vmtable_add_vm(&w->vt,
					&(struct vt_new_vm){ .pid = VMM,
							     .uid = UID,
							     .pidfd = pidfd,
							     .stats_fd = theirs,
							     .name = "mine",
							     .has_handle = true,
							     .borrowed_fd = -1 },
					&vm, why, sizeof(why)),
			 0);
	vm->proc->registers = true;
	holds_vm(w, VMM, VMM); /* a second VM it has not registered (yet) */
	scan(w, VMM);
	assert_int_equal(w->n.vms, 0);
	assert_int_equal(w->vt.n_vms, 1);
	world_free(w);
}

static void only_uid_42(struct config *c)
{
	c->allow_uids[0] = 42;
	c->n_allow_uids = 1;
}

static void test_discovery_applies_the_uid_policy(void **state)
{
	struct world *w = world_new(only_uid_42);

	(void)state;
	holds_vm(w, VMM, VMM);
	scan(w, VMM);
	assert_int_equal(w->n.vms, 0);
	fake_creds(&w->f, 4200, 42, 42);
	holds_vm(w, 4200, 4200);
	scan(w, 4200);
	assert_int_equal(w->n.vms, 1);
	assert_int_equal(policy_charged(w->policy, 42), 1);
	world_free(w);
}

static void two_per_uid(struct config *c)
{
	c->max_sources_per_uid = 2;
}

static void test_vcpus_beyond_the_uid_budget_are_left_out_one_by_one(void **state)
{
	struct world *w = world_new(two_per_uid);

	(void)state;
	holds_vm(w, VMM, VMM);
	holds_vcpu(w, VMM, VMM + 1, 0);
	holds_vcpu(w, VMM, VMM + 2, 1);
	scan(w, VMM);
	assert_int_equal(w->n.vms, 1);
	assert_int_equal(w->n.vcpus, 1);
	assert_int_equal(w->vt.vms[0]->n_vcpus, 1);
	assert_int_equal(policy_charged(w->policy, UID), 2);
	world_free(w);
}

static void test_a_vm_that_cannot_be_copied_is_left_out_without_a_charge(void **state)
{
	struct world *w = world_new(NULL);

	(void)state;
	holds_vm(w, VMM, VMM);
	w->f.copies_left = 1; /* pidfd_getfd works; the table's own copy fails */
	scan(w, VMM);
	assert_int_equal(w->n.vms, 0);
	assert_int_equal(w->vt.n_vms, 0);
	assert_int_equal(w->vt.n_procs, 0);
	assert_int_equal(policy_charged(w->policy, UID), 0);
	world_free(w);
}

static void test_a_process_without_kvm_fds_is_not_asked_anything(void **state)
{
	struct world *w = world_new(NULL);

	(void)state;
	fake_holds(&w->f, VMM, 0, "/dev/null");
	scan(w, VMM);
	assert_int_equal(w->n.procs, 1);
	assert_int_equal(w->vt.n_procs, 0);
	world_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_vmm_with_one_vm_is_found_with_its_vcpus),
		cmocka_unit_test(test_a_known_vm_is_found_once_and_its_new_vcpus_are_news),
		cmocka_unit_test(test_vcpus_of_a_vmm_with_two_vms_are_left_out),
		cmocka_unit_test(test_a_vm_is_named_after_qemus_name_argument),
		cmocka_unit_test(test_stats_fds_of_another_process_are_not_taken),
		cmocka_unit_test(test_a_vmm_that_registered_is_left_alone),
		cmocka_unit_test(test_discovery_applies_the_uid_policy),
		cmocka_unit_test(test_vcpus_beyond_the_uid_budget_are_left_out_one_by_one),
		cmocka_unit_test(test_a_vm_that_cannot_be_copied_is_left_out_without_a_charge),
		cmocka_unit_test(test_a_process_without_kvm_fds_is_not_asked_anything),
	};

	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
