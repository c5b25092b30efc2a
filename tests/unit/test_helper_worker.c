/* SPDX-License-Identifier: MIT */
/*
 * test_helper_worker - what the worker hears of the VM table
 * (helper_worker_update): each new VM once with its fds, later vCPUs as
 * they come, an unregistration it knew of, everything again for a new
 * worker, nothing while there is none. The worker's end of the channel
 * is a socketpair the test reads and checks as the worker would
 * (ipc_check).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <sys/socket.h>

#include "fakesys.h"
#include "fdpass.h"
#include "helper_state.h"
#include "ipc.h"
#include "log.h"

#define VMM 4000
#define UID 1000

struct world {
	struct fakesys f;
	struct config cfg;
	struct helper h;
	int worker_end;
};

static struct world *world_new(void)
{
	struct world *w = calloc(1, sizeof(*w));
	int sp[2];

	assert_non_null(w);
	fake_init(&w->f);
	config_defaults(&w->cfg);
	snprintf(w->cfg.bpf, sizeof(w->cfg.bpf), "off"); /* no schedstat files */
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
	w->h.cfg = &w->cfg;
	w->h.ipc_fd = sp[0];
	w->worker_end = sp[1];
	w->h.ops = w->f.ops;
	vmtable_init(&w->h.vt, &w->cfg, NULL, &w->f.ops);
	return w;
}

static void world_free(struct world *w)
{
	vmtable_fini(&w->h.vt);
	if (w->h.ipc_fd >= 0)
		close(w->h.ipc_fd);
	close(w->worker_end);
	fake_fini(&w->f);
	free(w);
}

static struct hvm *add_vm(struct world *w, const char *name, unsigned n_vcpus)
{
	int fds[4], idx[4], pidfd = fake_keep(&w->f, eventfd(0, EFD_CLOEXEC));
	struct hvm *vm = NULL;
	char why[96];

	for (unsigned i = 0; i < n_vcpus; i++) {
		idx[i] = (int)i;
		fds[i] = fake_stats_fd(&w->f, FD_VCPU_STATS, VMM + 1, (int)i);
	}
	assert_int_equal(vmtable_add_vm(&w->h.vt,
					&(struct vt_new_vm){
					    .pid = VMM,
					    .uid = UID,
					    .pidfd = pidfd,
					    .stats_fd = fake_stats_fd(&w->f, FD_VM_STATS, VMM, -1),
					    .name = name,
					    .borrowed_fd = -1,
					    .created_ns = 42,
					    .vcpus = idx,
					    .vcpu_fds = fds,
					    .n_vcpus = n_vcpus },
					&vm, why, sizeof(why)),
			 0);
	return vm;
}

/* The next message the worker gets, checked as it checks them; -1: none. */
static int next_msg(struct world *w, union ipc_msg *m, size_t *n_fds)
{
	int fds[2 + IPC_MAX_VCPU_FDS];
	char why[128];
	int n = fdpass_recv(w->worker_end, m, sizeof(*m), fds, 2 + IPC_MAX_VCPU_FDS, n_fds);

	if (n == -EAGAIN)
		return -1;
	assert_true(n > 0);
	if (ipc_check(m, (size_t)n, *n_fds, why, sizeof(why)) < 0)
		fail_msg("the worker would refuse it: %s", why);
	fdpass_close_all(fds, *n_fds);
	return (int)m->hdr.type;
}

static void test_a_new_vm_is_sent_once_with_every_fd(void **state)
{
	struct world *w = world_new();
	struct hvm *vm = add_vm(w, "web", 2);
	union ipc_msg m;
	size_t n_fds;

	(void)state;
	helper_worker_update(&w->h);
	assert_int_equal(next_msg(w, &m, &n_fds), IPC_ADD_VM);
	assert_int_equal(m.add_vm.vm_id, vm->id);
	assert_int_equal(m.add_vm.n_vcpus, 2);
	assert_int_equal(n_fds, 4); /* pidfd, VM, two vCPUs */
	assert_string_equal(m.add_vm.name, "web");
	assert_string_equal(m.add_vm.comm, "fake-vmm");
	assert_true(m.add_vm.created_ns == 42);
	assert_true(vm->told);
	helper_worker_update(&w->h);
	assert_int_equal(next_msg(w, &m, &n_fds), -1);
	world_free(w);
}

static void test_vcpus_that_join_later_are_sent_alone(void **state)
{
	struct world *w = world_new();
	struct hvm *vm = add_vm(w, "web", 1);
	int idx = 5, fd = fake_stats_fd(&w->f, FD_VCPU_STATS, VMM + 5, 5);
	union ipc_msg m;
	size_t n_fds;
	char why[96];

	(void)state;
	helper_worker_update(&w->h);
	assert_int_equal(next_msg(w, &m, &n_fds), IPC_ADD_VM);
	assert_int_equal(vmtable_add_vcpus(&w->h.vt, vm, &idx, &fd, 1, 77, why, sizeof(why)), 0);
	helper_worker_update(&w->h);
	assert_int_equal(next_msg(w, &m, &n_fds), IPC_ADD_VCPUS);
	assert_int_equal(m.add_vcpus.vm_id, vm->id);
	assert_int_equal(m.add_vcpus.n_vcpus, 1);
	assert_int_equal(n_fds, 1);
	assert_true(m.add_vcpus.created_ns == 77);
	assert_int_equal(next_msg(w, &m, &n_fds), -1);
	world_free(w);
}

static void test_an_unregistration_is_sent_only_for_a_vm_the_worker_had(void **state)
{
	struct world *w = world_new();
	struct hvm *had = add_vm(w, "had", 0), *never;
	uint32_t id = had->id;
	union ipc_msg m;
	size_t n_fds;

	(void)state;
	helper_worker_update(&w->h);
	assert_int_equal(next_msg(w, &m, &n_fds), IPC_ADD_VM);
	never = add_vm(w, "never", 0);
	vmtable_drop_vm(&w->h.vt, never, true);
	vmtable_drop_vm(&w->h.vt, had, true);
	helper_worker_update(&w->h);
	assert_int_equal(next_msg(w, &m, &n_fds), IPC_REMOVE_VM);
	assert_int_equal(m.remove_vm.vm_id, id);
	assert_int_equal(next_msg(w, &m, &n_fds), -1);
	world_free(w);
}

static void test_nothing_is_sent_without_a_worker_and_all_to_the_next(void **state)
{
	struct world *w = world_new();
	int keep = w->h.ipc_fd;
	union ipc_msg m;
	size_t n_fds;

	(void)state;
	w->h.ipc_fd = -1; /* between a crash and the restart */
	add_vm(w, "a", 1);
	helper_worker_update(&w->h);
	assert_false(w->h.vt.vms[0]->told);
	w->h.ipc_fd = keep;
	vmtable_untell_all(&w->h.vt);
	helper_worker_update(&w->h);
	assert_int_equal(next_msg(w, &m, &n_fds), IPC_ADD_VM);
	assert_int_equal(n_fds, 3);
	world_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_new_vm_is_sent_once_with_every_fd),
		cmocka_unit_test(test_vcpus_that_join_later_are_sent_alone),
		cmocka_unit_test(test_an_unregistration_is_sent_only_for_a_vm_the_worker_had),
		cmocka_unit_test(test_nothing_is_sent_without_a_worker_and_all_to_the_next),
	};

	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
