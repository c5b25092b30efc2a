/* SPDX-License-Identifier: MIT */
/* test_ipc - the worker's exact check of every helper -> worker message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"

static struct ipc_add_vm add_vm(uint32_t n_vcpus)
{
	struct ipc_add_vm m;

	memset(&m, 0, sizeof(m));
	m.hdr.type = IPC_ADD_VM;
	m.hdr.len = sizeof(m);
	m.vm_id = 7;
	m.pid = 4242;
	m.uid = 1000;
	m.n_vcpus = n_vcpus;
	m.origin = ORIGIN_REGISTERED;
	strcpy(m.name, "web-1");
	strcpy(m.comm, "qemu-system-x86");
	return m;
}

static struct ipc_add_vcpus add_vcpus(uint32_t n_vcpus)
{
	struct ipc_add_vcpus m = { .hdr = { IPC_ADD_VCPUS, sizeof(m) }, .vm_id = 7 };

	m.n_vcpus = n_vcpus;
	return m;
}

static struct ipc_remove_vm remove_vm(void)
{
	struct ipc_remove_vm m = { .hdr = { IPC_REMOVE_VM, sizeof(m) }, .vm_id = 7 };

	return m;
}

static struct ipc_rejected rejected(uint32_t reason)
{
	struct ipc_rejected m = { .hdr = { IPC_REJECTED, sizeof(m) }, .reason = reason };

	return m;
}

static struct ipc_hello hello(void)
{
	struct ipc_hello m;

	memset(&m, 0, sizeof(m));
	m.hdr.type = IPC_HELLO;
	m.hdr.len = sizeof(m);
	m.worker_starts = 1;
	m.rejected[REJ_BAD_FD] = 3;
	m.discovered = 2;
	return m;
}

/* Check an exact-size heap copy (ASan sees reads past the end); why is always a string. */
static int check(const void *msg, size_t len, size_t n_fds, char *why, size_t why_size)
{
	unsigned char *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	if (len)
		memcpy(copy, msg, len);
	memset(why, 'x', why_size);
	rc = ipc_check(copy, len, n_fds, why, why_size);
	assert_non_null(memchr(why, '\0', why_size));
	free(copy);
	return rc;
}

static void ok(const void *msg, size_t len, size_t n_fds)
{
	char why[128];

	assert_int_equal(check(msg, len, n_fds, why, sizeof(why)), 0);
	assert_string_equal(why, "");
}

static void bad(const void *msg, size_t len, size_t n_fds, const char *sentence)
{
	char why[128];

	assert_int_equal(check(msg, len, n_fds, why, sizeof(why)), -EBADMSG);
	assert_string_equal(why, sentence);
}

/* ------------------------------------------------------------ accepted */

static void test_every_valid_message_is_accepted(void **state)
{
	struct ipc_add_vm a = add_vm(4);
	struct ipc_add_vcpus v = add_vcpus(3);
	struct ipc_remove_vm r = remove_vm();
	struct ipc_rejected j = rejected(REJ_DUPLICATE);
	struct ipc_hello h = hello();

	(void)state;
	ok(&a, sizeof(a), 6);
	ok(&v, sizeof(v), 3);
	ok(&r, sizeof(r), 0);
	ok(&j, sizeof(j), 0);
	ok(&h, sizeof(h), 0);
}

static void test_add_vm_takes_0_to_64_vcpus(void **state)
{
	struct ipc_add_vm a = add_vm(0);

	(void)state;
	ok(&a, sizeof(a), 2);
	a.n_vcpus = IPC_MAX_VCPU_FDS;
	ok(&a, sizeof(a), 2 + IPC_MAX_VCPU_FDS);
}

static void test_add_vm_with_discovered_origin_and_empty_strings_is_accepted(void **state)
{
	struct ipc_add_vm a = add_vm(1);

	(void)state;
	a.origin = ORIGIN_DISCOVERED;
	memset(a.name, 0, sizeof(a.name));
	memset(a.comm, 0, sizeof(a.comm));
	ok(&a, sizeof(a), 3);
}

static void test_add_vm_string_terminated_in_its_last_byte_is_accepted(void **state)
{
	struct ipc_add_vm a = add_vm(0);

	(void)state;
	memset(a.name, 'n', sizeof(a.name) - 1);
	a.name[sizeof(a.name) - 1] = '\0';
	memset(a.comm, 'c', sizeof(a.comm) - 1);
	a.comm[sizeof(a.comm) - 1] = '\0';
	ok(&a, sizeof(a), 2);
}

static void test_add_vcpus_takes_1_to_64(void **state)
{
	struct ipc_add_vcpus v = add_vcpus(1);

	(void)state;
	ok(&v, sizeof(v), 1);
	v.n_vcpus = IPC_MAX_VCPU_FDS;
	ok(&v, sizeof(v), IPC_MAX_VCPU_FDS);
}

static void test_every_reject_reason_is_accepted(void **state)
{
	(void)state;
	for (uint32_t r = 0; r < REJ__COUNT; r++) {
		struct ipc_rejected j = rejected(r);

		ok(&j, sizeof(j), 0);
	}
}

static void test_a_message_at_any_alignment_is_checked(void **state)
{
	struct ipc_hello h = hello();
	unsigned char *raw = malloc(sizeof(h) + 3);

	(void)state;
	assert_non_null(raw);
	memcpy(raw + 3, &h, sizeof(h));
	assert_int_equal(ipc_check(raw + 3, sizeof(h), 0, NULL, 0), 0);
	h.heartbeat_ms = IPC_HEARTBEAT_MAX_MS + 1;
	memcpy(raw + 3, &h, sizeof(h));
	assert_int_equal(ipc_check(raw + 3, sizeof(h), 0, NULL, 0), -EBADMSG);
	free(raw);
}

/* ------------------------------------------------------------ header */

static void test_shorter_than_a_header_is_refused(void **state)
{
	struct ipc_remove_vm r = remove_vm();

	(void)state;
	bad("", 0, 0, "message of 0 bytes is shorter than a header");
	bad(&r, sizeof(r.hdr) - 1, 0, "message of 7 bytes is shorter than a header");
}

static void test_header_length_must_equal_received_length(void **state)
{
	struct ipc_remove_vm r = remove_vm();
	struct ipc_add_vm a = add_vm(0);
	char want[64];

	(void)state;
	r.hdr.len = sizeof(r) + 1;
	bad(&r, sizeof(r), 0, "header says 13 bytes, received 12");
	a.hdr.len = 0;
	snprintf(want, sizeof(want), "header says 0 bytes, received %zu", sizeof(a));
	bad(&a, sizeof(a), 2, want);
}

static void test_type_out_of_range_is_refused(void **state)
{
	struct ipc_hdr h = { 0, sizeof(h) };

	(void)state;
	bad(&h, sizeof(h), 0, "unknown message type 0");
	h.type = IPC__END;
	bad(&h, sizeof(h), 0, "unknown message type 9");
	h.type = UINT32_MAX;
	bad(&h, sizeof(h), 0, "unknown message type 4294967295");
}

static void test_length_must_be_the_size_of_the_types_struct(void **state)
{
	static const struct {
		uint32_t type;
		const char *name;
		size_t size;
	} types[] = {
		{ IPC_ADD_VM, "ADD_VM", sizeof(struct ipc_add_vm) },
		{ IPC_ADD_VCPUS, "ADD_VCPUS", sizeof(struct ipc_add_vcpus) },
		{ IPC_REMOVE_VM, "REMOVE_VM", sizeof(struct ipc_remove_vm) },
		{ IPC_REJECTED, "REJECTED", sizeof(struct ipc_rejected) },
		{ IPC_HELLO, "HELLO", sizeof(struct ipc_hello) },
		{ IPC_SYNC, "SYNC", sizeof(struct ipc_sync) },
		{ IPC_BPF_MAPS, "BPF_MAPS", sizeof(struct ipc_bpf_maps) },
		{ IPC_SCHEDSTAT, "SCHEDSTAT", sizeof(struct ipc_schedstat) },
	};

	(void)state;
	assert_int_equal(sizeof(types) / sizeof(types[0]), IPC__END - 1); /* every type */
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		/* a bare header, one byte short, one byte long */
		const size_t lens[] = { sizeof(struct ipc_hdr), types[i].size - 1,
					types[i].size + 1 };

		for (size_t k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
			unsigned char raw[sizeof(union ipc_msg) + 1] = { 0 };
			struct ipc_hdr h = { types[i].type, (uint32_t)lens[k] };
			char sentence[128];

			memcpy(raw, &h, sizeof(h));
			snprintf(sentence, sizeof(sentence), "%s: %zu bytes, expected %zu",
				 types[i].name, lens[k], types[i].size);
			bad(raw, lens[k], 0, sentence);
		}
	}
}

/* ------------------------------------------------------------ per type */

static void test_add_vm_fd_count_must_be_2_plus_n_vcpus(void **state)
{
	struct ipc_add_vm a = add_vm(3);

	(void)state;
	bad(&a, sizeof(a), 4, "ADD_VM: 4 fds, expected 2 + n_vcpus 3");
	bad(&a, sizeof(a), 6, "ADD_VM: 6 fds, expected 2 + n_vcpus 3");
	bad(&a, sizeof(a), 0, "ADD_VM: 0 fds, expected 2 + n_vcpus 3");
}

static void test_add_vm_more_than_64_vcpus_is_refused(void **state)
{
	struct ipc_add_vm a = add_vm(IPC_MAX_VCPU_FDS + 1);

	(void)state;
	bad(&a, sizeof(a), 2 + IPC_MAX_VCPU_FDS + 1, "ADD_VM: n_vcpus 65 is more than 64");
	a.n_vcpus = UINT32_MAX; /* 2 + n_vcpus must not wrap into a match */
	bad(&a, sizeof(a), 1, "ADD_VM: n_vcpus 4294967295 is more than 64");
}

static void test_add_vm_unterminated_name_is_refused(void **state)
{
	struct ipc_add_vm a = add_vm(0);

	(void)state;
	memset(a.name, 'n', sizeof(a.name));
	bad(&a, sizeof(a), 2, "ADD_VM: name is not NUL-terminated");
}

static void test_add_vm_unterminated_comm_is_refused(void **state)
{
	struct ipc_add_vm a = add_vm(0);

	(void)state;
	memset(a.comm, 'c', sizeof(a.comm));
	bad(&a, sizeof(a), 2, "ADD_VM: comm is not NUL-terminated");
}

static void test_add_vm_origin_out_of_range_is_refused(void **state)
{
	struct ipc_add_vm a = add_vm(0);

	(void)state;
	a.origin = ORIGIN__COUNT;
	bad(&a, sizeof(a), 2, "ADD_VM: origin 3 out of range");
	a.origin = UINT32_MAX;
	bad(&a, sizeof(a), 2, "ADD_VM: origin 4294967295 out of range");
}

static void test_add_vcpus_n_vcpus_must_be_1_to_64(void **state)
{
	struct ipc_add_vcpus v = add_vcpus(0);

	(void)state;
	bad(&v, sizeof(v), 0, "ADD_VCPUS: n_vcpus 0 is not 1..64");
	v.n_vcpus = IPC_MAX_VCPU_FDS + 1;
	bad(&v, sizeof(v), IPC_MAX_VCPU_FDS + 1, "ADD_VCPUS: n_vcpus 65 is not 1..64");
}

static void test_add_vcpus_fd_count_must_equal_n_vcpus(void **state)
{
	struct ipc_add_vcpus v = add_vcpus(2);

	(void)state;
	bad(&v, sizeof(v), 1, "ADD_VCPUS: 1 fds, expected n_vcpus 2");
	bad(&v, sizeof(v), 3, "ADD_VCPUS: 3 fds, expected n_vcpus 2");
	bad(&v, sizeof(v), 0, "ADD_VCPUS: 0 fds, expected n_vcpus 2");
}

static void test_messages_without_fds_refuse_fds(void **state)
{
	struct ipc_remove_vm r = remove_vm();
	struct ipc_rejected j = rejected(REJ_LIMIT);
	struct ipc_hello h = hello();

	(void)state;
	bad(&r, sizeof(r), 1, "REMOVE_VM: 1 fds, expected none");
	bad(&j, sizeof(j), 2, "REJECTED: 2 fds, expected none");
	bad(&h, sizeof(h), 66, "HELLO: 66 fds, expected none");
}

static void test_rejected_reason_out_of_range_is_refused(void **state)
{
	struct ipc_rejected j = rejected(REJ__COUNT);

	(void)state;
	bad(&j, sizeof(j), 0, "REJECTED: reason 9 out of range");
	j.reason = UINT32_MAX;
	bad(&j, sizeof(j), 0, "REJECTED: reason 4294967295 out of range");
}

static void test_hello_heartbeat_is_bounded(void **state)
{
	struct ipc_hello h = hello();

	(void)state;
	h.heartbeat_ms = IPC_HEARTBEAT_MAX_MS;
	assert_int_equal(ipc_check(&h, sizeof(h), 0, NULL, 0), 0);
	h.heartbeat_ms = IPC_HEARTBEAT_MAX_MS + 1;
	bad(&h, sizeof(h), 0, "HELLO: heartbeat_ms 3600001 is more than 3600000");
}

static void test_sync_is_accepted_without_fds_only(void **state)
{
	struct ipc_sync m = { .hdr = { IPC_SYNC, sizeof(m) }, .seq = 7 };

	(void)state;
	assert_int_equal(ipc_check(&m, sizeof(m), 0, NULL, 0), 0);
	bad(&m, sizeof(m), 1, "SYNC: 1 fds, expected none");
}

static void test_status_is_checked_exactly(void **state)
{
	struct ipc_status m = { .hdr = { IPC_STATUS, sizeof(m) }, .n_vms = 3, .n_vcpus = 12 };
	char why[128];

	(void)state;
	assert_int_equal(ipc_check_status(&m, sizeof(m), 0, why, sizeof(why)), 0);
	assert_int_equal(ipc_check_status(&m, sizeof(m) - 1, 0, why, sizeof(why)), -EBADMSG);
	assert_int_equal(ipc_check_status(&m, sizeof(m), 1, why, sizeof(why)), -EBADMSG);
	assert_string_equal(why, "status: 1 fds, expected none");
	m.reserved = 2;
	assert_int_equal(ipc_check_status(&m, sizeof(m), 0, why, sizeof(why)), -EBADMSG);
	m.reserved = 0;
	m.hdr.type = IPC_HELLO;
	assert_int_equal(ipc_check_status(&m, sizeof(m), 0, why, sizeof(why)), -EBADMSG);
	/* and the worker never takes a status for a message of its own */
	m.hdr.type = IPC_STATUS;
	assert_int_equal(ipc_check(&m, sizeof(m), 0, NULL, 0), -EBADMSG);
}

static void test_bpf_maps_needs_two_fds_and_a_bounded_slot_count(void **state)
{
	struct ipc_bpf_maps m = { { IPC_BPF_MAPS, sizeof(m) }, 4096, 2328 };

	(void)state;
	ok(&m, sizeof(m), 2);
	bad(&m, sizeof(m), 1, "BPF_MAPS: 1 fds, expected 2");
	m.n_slots = 0;
	bad(&m, sizeof(m), 2, "BPF_MAPS: n_slots 0 is not 1..65536");
	m.n_slots = IPC_MAX_BPF_SLOTS + 1;
	bad(&m, sizeof(m), 2, "BPF_MAPS: n_slots 65537 is not 1..65536");
}

static void test_schedstat_fds_match_its_vcpus(void **state)
{
	struct ipc_schedstat m = { .hdr = { IPC_SCHEDSTAT, sizeof(m) }, .vm_id = 1, .n = 2 };

	(void)state;
	m.vcpu[0] = 0;
	m.vcpu[1] = 3;
	ok(&m, sizeof(m), 2);
	bad(&m, sizeof(m), 3, "SCHEDSTAT: 3 fds, expected n 2");
	m.vcpu[1] = -1;
	bad(&m, sizeof(m), 2, "SCHEDSTAT: vcpu -1 is negative");
	m.n = IPC_MAX_VCPU_FDS + 1;
	bad(&m, sizeof(m), 65, "SCHEDSTAT: n 65 is not 1..64");
	m.n = 0;
	bad(&m, sizeof(m), 0, "SCHEDSTAT: n 0 is not 1..64");
}

static void test_why_is_cut_to_its_buffer_and_may_be_absent(void **state)
{
	struct ipc_rejected j = rejected(REJ__COUNT);
	char why[6];

	(void)state;
	assert_int_equal(check(&j, sizeof(j), 0, why, sizeof(why)), -EBADMSG);
	assert_string_equal(why, "REJEC");
	assert_int_equal(ipc_check(&j, sizeof(j), 0, NULL, 0), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_valid_message_is_accepted),
		cmocka_unit_test(test_add_vm_takes_0_to_64_vcpus),
		cmocka_unit_test(test_add_vm_with_discovered_origin_and_empty_strings_is_accepted),
		cmocka_unit_test(test_add_vm_string_terminated_in_its_last_byte_is_accepted),
		cmocka_unit_test(test_add_vcpus_takes_1_to_64),
		cmocka_unit_test(test_every_reject_reason_is_accepted),
		cmocka_unit_test(test_a_message_at_any_alignment_is_checked),
		cmocka_unit_test(test_shorter_than_a_header_is_refused),
		cmocka_unit_test(test_header_length_must_equal_received_length),
		cmocka_unit_test(test_type_out_of_range_is_refused),
		cmocka_unit_test(test_length_must_be_the_size_of_the_types_struct),
		cmocka_unit_test(test_add_vm_fd_count_must_be_2_plus_n_vcpus),
		cmocka_unit_test(test_add_vm_more_than_64_vcpus_is_refused),
		cmocka_unit_test(test_add_vm_unterminated_name_is_refused),
		cmocka_unit_test(test_add_vm_unterminated_comm_is_refused),
		cmocka_unit_test(test_add_vm_origin_out_of_range_is_refused),
		cmocka_unit_test(test_add_vcpus_n_vcpus_must_be_1_to_64),
		cmocka_unit_test(test_add_vcpus_fd_count_must_equal_n_vcpus),
		cmocka_unit_test(test_messages_without_fds_refuse_fds),
		cmocka_unit_test(test_rejected_reason_out_of_range_is_refused),
		cmocka_unit_test(test_hello_heartbeat_is_bounded),
		cmocka_unit_test(test_sync_is_accepted_without_fds_only),
		cmocka_unit_test(test_status_is_checked_exactly),
		cmocka_unit_test(test_bpf_maps_needs_two_fds_and_a_bounded_slot_count),
		cmocka_unit_test(test_schedstat_fds_match_its_vcpus),
		cmocka_unit_test(test_why_is_cut_to_its_buffer_and_may_be_absent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
