/* SPDX-License-Identifier: MIT */
/* test_regmsg - decoding and checking one registration request from a VMM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "regmsg.h"

#define SEQ 0x11223344u
#define HANDLE 0x0102030405060708ull

static struct kvmstat_msg_hdr hdr_of(uint16_t type, uint32_t length)
{
	struct kvmstat_msg_hdr h = { KVMSTAT_PROTO_MAGIC, KVMSTAT_PROTO_VERSION, type, length,
				     SEQ };

	return h;
}

static struct kvmstat_msg_register_vm reg_msg(const char *name)
{
	struct kvmstat_msg_register_vm m;

	memset(&m, 0, sizeof(m));
	m.hdr = hdr_of(KVMSTAT_MSG_REGISTER_VM, sizeof(m));
	m.body.vm_handle = HANDLE;
	memcpy(m.body.name, name, strnlen(name, sizeof(m.body.name)));
	return m;
}

static struct kvmstat_msg_add_vcpus add_msg(void)
{
	struct kvmstat_msg_add_vcpus m;

	memset(&m, 0, sizeof(m));
	m.hdr = hdr_of(KVMSTAT_MSG_ADD_VCPUS, sizeof(m));
	m.body.vm_handle = HANDLE;
	return m;
}

static struct kvmstat_msg_unregister_vm unreg_msg(void)
{
	struct kvmstat_msg_unregister_vm m;

	memset(&m, 0, sizeof(m));
	m.hdr = hdr_of(KVMSTAT_MSG_UNREGISTER_VM, sizeof(m));
	m.body.vm_handle = HANDLE;
	return m;
}

/*
 * Parse an exact-size heap copy of msg (ASan sees any read past the end)
 * and check the status, the reason and - if given - the sentence.
 */
static int parse(const void *msg, size_t len, size_t n_fds, struct regmsg *out)
{
	unsigned char *copy = malloc(len ? len : 1);
	char why[KVMSTAT_REASON_MAX];
	int rc;

	assert_non_null(copy);
	if (len)
		memcpy(copy, msg, len);
	memset(why, 'x', sizeof(why));
	rc = regmsg_parse(copy, len, n_fds, out, why, sizeof(why));
	assert_non_null(memchr(why, '\0', sizeof(why)));
	if (rc == 0)
		assert_string_equal(why, "");
	else
		assert_true(strlen(why) > 0);
	free(copy);
	return rc;
}

static void assert_refused(const void *msg, size_t len, size_t n_fds, int status,
			   enum reject_reason reason, const char *sentence)
{
	unsigned char *copy = malloc(len ? len : 1);
	struct regmsg out;
	char why[KVMSTAT_REASON_MAX];

	assert_non_null(copy);
	if (len)
		memcpy(copy, msg, len);
	assert_int_equal(regmsg_parse(copy, len, n_fds, &out, why, sizeof(why)), status);
	assert_int_equal(out.reason, reason);
	assert_int_equal(out.vm_handle, 0); /* nothing decoded is handed out */
	assert_string_equal(out.name, "");
	if (sentence)
		assert_string_equal(why, sentence);
	free(copy);
}

static void bad_message(const void *msg, size_t len, size_t n_fds, const char *sentence)
{
	assert_refused(msg, len, n_fds, -EBADMSG, REJ_BAD_MESSAGE, sentence);
}

static void fd_count(const void *msg, size_t len, size_t n_fds, const char *sentence)
{
	assert_refused(msg, len, n_fds, -E2BIG, REJ_FD_COUNT, sentence);
}

/* ------------------------------------------------------------ accepted */

static void test_register_vm_decodes_type_seq_handle_and_name(void **state)
{
	struct kvmstat_msg_register_vm m = reg_msg("web-1");
	struct regmsg out;

	(void)state;
	assert_int_equal(parse(&m, sizeof(m), 3, &out), 0);
	assert_true(out.has_seq);
	assert_int_equal(out.seq, SEQ);
	assert_int_equal(out.type, KVMSTAT_MSG_REGISTER_VM);
	assert_int_equal(out.vm_handle, HANDLE);
	assert_string_equal(out.name, "web-1");
}

static void test_register_vm_with_empty_name_is_accepted(void **state)
{
	struct kvmstat_msg_register_vm m = reg_msg("");
	struct regmsg out;

	(void)state;
	assert_int_equal(parse(&m, sizeof(m), 1, &out), 0);
	assert_string_equal(out.name, "");
}

static void test_register_vm_name_of_63_bytes_is_accepted(void **state)
{
	char name[KVMSTAT_NAME_MAX];
	struct kvmstat_msg_register_vm m;
	struct regmsg out;

	(void)state;
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	m = reg_msg(name);
	assert_int_equal(parse(&m, sizeof(m), 1, &out), 0);
	assert_int_equal(strlen(out.name), KVMSTAT_NAME_MAX - 1);
	assert_string_equal(out.name, name);
}

static void test_register_vm_name_may_be_utf8(void **state)
{
	struct kvmstat_msg_register_vm m = reg_msg("M\xc3\xbcnchen-\xe2\x82\xac-\xf0\x9f\x98\x80");
	struct regmsg out;

	(void)state;
	assert_int_equal(parse(&m, sizeof(m), 1, &out), 0);
	assert_string_equal(out.name, "M\xc3\xbcnchen-\xe2\x82\xac-\xf0\x9f\x98\x80");
}

static void test_register_vm_bytes_after_the_name_terminator_are_ignored(void **state)
{
	struct kvmstat_msg_register_vm m = reg_msg("vm");
	struct regmsg out;

	(void)state;
	memset(m.body.name + 3, 0xff, sizeof(m.body.name) - 3); /* padding that is not zeros */
	assert_int_equal(parse(&m, sizeof(m), 1, &out), 0);
	assert_string_equal(out.name, "vm");
	for (size_t i = 2; i < sizeof(out.name); i++)
		assert_int_equal(out.name[i], 0); /* not copied over */
}

static void test_register_vm_takes_1_to_64_fds(void **state)
{
	struct kvmstat_msg_register_vm m = reg_msg("vm");
	struct regmsg out;

	(void)state;
	assert_int_equal(parse(&m, sizeof(m), 1, &out), 0);
	assert_int_equal(parse(&m, sizeof(m), KVMSTAT_MAX_FDS_PER_MSG, &out), 0);
}

static void test_add_vcpus_takes_1_to_64_fds(void **state)
{
	struct kvmstat_msg_add_vcpus m = add_msg();
	struct regmsg out;

	(void)state;
	assert_int_equal(parse(&m, sizeof(m), 1, &out), 0);
	assert_int_equal(out.type, KVMSTAT_MSG_ADD_VCPUS);
	assert_int_equal(out.seq, SEQ);
	assert_int_equal(out.vm_handle, HANDLE);
	assert_string_equal(out.name, "");
	assert_int_equal(parse(&m, sizeof(m), KVMSTAT_MAX_FDS_PER_MSG, &out), 0);
}

static void test_unregister_vm_without_fds_is_accepted(void **state)
{
	struct kvmstat_msg_unregister_vm m = unreg_msg();
	struct regmsg out;

	(void)state;
	assert_int_equal(parse(&m, sizeof(m), 0, &out), 0);
	assert_int_equal(out.type, KVMSTAT_MSG_UNREGISTER_VM);
	assert_int_equal(out.seq, SEQ);
	assert_int_equal(out.vm_handle, HANDLE);
}

static void test_a_message_at_any_alignment_is_decoded(void **state)
{
	struct kvmstat_msg_register_vm m = reg_msg("odd");
	unsigned char *raw = malloc(sizeof(m) + 1);
	struct regmsg out;

	(void)state;
	assert_non_null(raw);
	memcpy(raw + 1, &m, sizeof(m));
	assert_int_equal(regmsg_parse(raw + 1, sizeof(m), 1, &out, NULL, 0), 0);
	assert_int_equal(out.vm_handle, HANDLE);
	assert_string_equal(out.name, "odd");
	free(raw);
}

/* ------------------------------------------------------------ refused */

static void test_more_than_64_fds_is_fd_count_before_anything_else(void **state)
{
	struct kvmstat_msg_register_vm m = reg_msg("vm");
	struct regmsg out;

	(void)state;
	fd_count(&m, sizeof(m), KVMSTAT_MAX_FDS_PER_MSG + 1, "more than 64 fds (65)");
	fd_count("", 0, 70, "more than 64 fds (70)"); /* even for an empty datagram */
	assert_int_equal(regmsg_parse("", 0, 65, &out, NULL, 0), -E2BIG);
	assert_false(out.has_seq);
}

static void test_shorter_than_a_header_is_bad_message_without_seq(void **state)
{
	struct kvmstat_msg_register_vm m = reg_msg("vm");
	struct regmsg out;

	(void)state;
	bad_message("", 0, 0, "message of 0 bytes is shorter than a header");
	bad_message(&m, sizeof(m.hdr) - 1, 1, "message of 15 bytes is shorter than a header");
	assert_int_equal(regmsg_parse(&m, sizeof(m.hdr) - 1, 1, &out, NULL, 0), -EBADMSG);
	assert_false(out.has_seq);
	assert_int_equal(out.seq, 0);
}

static void test_a_refused_whole_header_still_reports_seq_and_type(void **state)
{
	struct kvmstat_msg_register_vm m = reg_msg("vm");
	struct regmsg out;

	(void)state;
	m.body.flags = 1;
	assert_int_equal(regmsg_parse(&m, sizeof(m), 1, &out, NULL, 0), -EBADMSG);
	assert_true(out.has_seq);
	assert_int_equal(out.seq, SEQ);
	assert_int_equal(out.type, KVMSTAT_MSG_REGISTER_VM);
	m.hdr.magic = 0;
	assert_int_equal(regmsg_parse(&m, sizeof(m), 1, &out, NULL, 0), -EBADMSG);
	assert_true(out.has_seq);
	assert_int_equal(out.seq, SEQ);
}

static void test_wrong_magic_is_bad_message(void **state)
{
	struct kvmstat_msg_register_vm m = reg_msg("vm");

	(void)state;
	m.hdr.magic = 0x4b565354; /* the bytes in the other order */
	bad_message(&m, sizeof(m), 1, "bad magic 0x4b565354 or version 1");
}

static void test_wrong_version_is_bad_message(void **state)
{
	struct kvmstat_msg_add_vcpus m = add_msg();

	(void)state;
	m.hdr.version = 2;
	bad_message(&m, sizeof(m), 1, "bad magic 0x5453564b or version 2");
	m.hdr.version = 0;
	bad_message(&m, sizeof(m), 1, "bad magic 0x5453564b or version 0");
}

static void test_unknown_type_is_bad_message(void **state)
{
	struct kvmstat_msg_unregister_vm m = unreg_msg();

	(void)state;
	m.hdr.type = 0;
	bad_message(&m, sizeof(m), 0, "unknown request type 0");
	m.hdr.type = 4;
	bad_message(&m, sizeof(m), 0, "unknown request type 4");
	m.hdr.type = 0xffff;
	bad_message(&m, sizeof(m), 0, "unknown request type 65535");
}

static void test_a_reply_is_not_a_request(void **state)
{
	struct kvmstat_msg_reply m;

	(void)state;
	memset(&m, 0, sizeof(m));
	m.hdr = hdr_of(KVMSTAT_MSG_REPLY, sizeof(m));
	bad_message(&m, sizeof(m), 0, "unknown request type 32768");
}

static void test_header_length_must_equal_received_length(void **state)
{
	struct kvmstat_msg_register_vm m = reg_msg("vm");

	(void)state;
	m.hdr.length = sizeof(m) - 1;
	bad_message(&m, sizeof(m), 1, "type 1: length 95, received 96, expected 96");
	m.hdr.length = 0;
	bad_message(&m, sizeof(m), 1, "type 1: length 0, received 96, expected 96");
}

static void test_one_byte_short_or_long_is_bad_message(void **state)
{
	unsigned char raw[sizeof(struct kvmstat_msg_register_vm) + 1] = { 0 };
	struct kvmstat_msg_add_vcpus a = add_msg();
	struct kvmstat_msg_register_vm r = reg_msg("vm");

	(void)state;
	a.hdr.length = sizeof(a) - 1;
	bad_message(&a, sizeof(a) - 1, 1, "type 2: length 31, received 31, expected 32");
	r.hdr.length = sizeof(r) + 1;
	memcpy(raw, &r, sizeof(r));
	bad_message(raw, sizeof(raw), 1, "type 1: length 97, received 97, expected 96");
}

static void test_length_of_another_type_is_bad_message(void **state)
{
	struct kvmstat_msg_register_vm m = reg_msg("");

	(void)state;
	/* an ADD_VCPUS header on a REGISTER_VM-sized datagram */
	m.hdr.type = KVMSTAT_MSG_ADD_VCPUS;
	bad_message(&m, sizeof(m), 1, "type 2: length 96, received 96, expected 32");
	/* a REGISTER_VM header on an UNREGISTER_VM-sized datagram */
	m.hdr.type = KVMSTAT_MSG_REGISTER_VM;
	m.hdr.length = sizeof(struct kvmstat_msg_unregister_vm);
	bad_message(&m, sizeof(struct kvmstat_msg_unregister_vm), 1,
		    "type 1: length 32, received 32, expected 96");
}

static void test_nonzero_flags_or_reserved_is_bad_message_for_every_type(void **state)
{
	struct kvmstat_msg_register_vm r = reg_msg("vm");
	struct kvmstat_msg_add_vcpus a = add_msg();
	struct kvmstat_msg_unregister_vm u = unreg_msg();

	(void)state;
	r.body.flags = 0x80000000u;
	bad_message(&r, sizeof(r), 1, "flags/reserved must be 0");
	r.body.flags = 0;
	r.body.reserved = 1;
	bad_message(&r, sizeof(r), 1, "flags/reserved must be 0");
	a.body.flags = 1;
	bad_message(&a, sizeof(a), 1, "flags/reserved must be 0");
	a.body.flags = 0;
	a.body.reserved = 1;
	bad_message(&a, sizeof(a), 1, "flags/reserved must be 0");
	u.body.flags = 2;
	bad_message(&u, sizeof(u), 0, "flags/reserved must be 0");
	u.body.flags = 0;
	u.body.reserved = 3;
	bad_message(&u, sizeof(u), 0, "flags/reserved must be 0");
}

static void test_flags_are_checked_before_the_fd_count(void **state)
{
	struct kvmstat_msg_unregister_vm u = unreg_msg();

	(void)state;
	u.body.flags = 1;
	bad_message(&u, sizeof(u), 5, "flags/reserved must be 0");
}

static void test_register_vm_without_fds_is_fd_count(void **state)
{
	struct kvmstat_msg_register_vm m = reg_msg("vm");

	(void)state;
	fd_count(&m, sizeof(m), 0, "REGISTER_VM carries no fd");
}

static void test_add_vcpus_without_fds_is_fd_count(void **state)
{
	struct kvmstat_msg_add_vcpus m = add_msg();

	(void)state;
	fd_count(&m, sizeof(m), 0, "ADD_VCPUS carries no fd");
}

static void test_unregister_vm_with_fds_is_fd_count(void **state)
{
	struct kvmstat_msg_unregister_vm m = unreg_msg();

	(void)state;
	fd_count(&m, sizeof(m), 1, "UNREGISTER_VM carries fds");
	fd_count(&m, sizeof(m), KVMSTAT_MAX_FDS_PER_MSG, "UNREGISTER_VM carries fds");
}

static void test_the_fd_count_is_checked_before_the_name(void **state)
{
	struct kvmstat_msg_register_vm m = reg_msg("a\nb");

	(void)state;
	fd_count(&m, sizeof(m), 0, "REGISTER_VM carries no fd");
}

#define BAD_NAME "name is unterminated, not UTF-8 or has control characters"

static void test_unterminated_name_is_bad_message(void **state)
{
	struct kvmstat_msg_register_vm m = reg_msg("");

	(void)state;
	memset(m.body.name, 'a', sizeof(m.body.name));
	bad_message(&m, sizeof(m), 1, BAD_NAME);
}

static void test_name_with_control_characters_is_bad_message(void **state)
{
	static const char *const names[] = {
		"a\nb", "tab\there", "\x1b[31m", "del\x7f", "c1-\xc2\x85", "\x01",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct kvmstat_msg_register_vm m = reg_msg(names[i]);

		bad_message(&m, sizeof(m), 1, BAD_NAME);
	}
}

static void test_name_that_is_not_utf8_is_bad_message(void **state)
{
	static const char *const names[] = {
		"\xff", "ab\xc3", "\xc3(", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct kvmstat_msg_register_vm m = reg_msg(names[i]);

		bad_message(&m, sizeof(m), 1, BAD_NAME);
	}
}

static void test_why_is_cut_to_its_buffer_and_may_be_absent(void **state)
{
	struct kvmstat_msg_register_vm m = reg_msg("vm");
	struct regmsg out;
	char why[8];

	(void)state;
	m.hdr.version = 9;
	assert_int_equal(regmsg_parse(&m, sizeof(m), 1, &out, why, sizeof(why)), -EBADMSG);
	assert_string_equal(why, "bad mag");
	assert_int_equal(regmsg_parse(&m, sizeof(m), 1, &out, NULL, 0), -EBADMSG);
	assert_int_equal(out.reason, REJ_BAD_MESSAGE);
}

/* ------------------------------------------------------------ recv errors */

static void test_recv_errors_map_to_the_helpers_verdicts(void **state)
{
	struct regmsg out;
	char why[KVMSTAT_REASON_MAX];

	(void)state;
	assert_int_equal(regmsg_recv_failed(-EMSGSIZE, &out, why, sizeof(why)), -EBADMSG);
	assert_int_equal(out.reason, REJ_BAD_MESSAGE);
	assert_false(out.has_seq);
	assert_string_equal(why, "message longer than any request");
	assert_int_equal(regmsg_recv_failed(-E2BIG, &out, why, sizeof(why)), -E2BIG);
	assert_int_equal(out.reason, REJ_FD_COUNT);
	assert_string_equal(why, "more than 64 fds, or ancillary data cut");
	assert_int_equal(regmsg_recv_failed(-EBADMSG, &out, why, sizeof(why)), -EBADMSG);
	assert_int_equal(out.reason, REJ_BAD_MESSAGE);
	assert_string_equal(why, "unreadable message: Bad message");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_register_vm_decodes_type_seq_handle_and_name),
		cmocka_unit_test(test_register_vm_with_empty_name_is_accepted),
		cmocka_unit_test(test_register_vm_name_of_63_bytes_is_accepted),
		cmocka_unit_test(test_register_vm_name_may_be_utf8),
		cmocka_unit_test(test_register_vm_bytes_after_the_name_terminator_are_ignored),
		cmocka_unit_test(test_register_vm_takes_1_to_64_fds),
		cmocka_unit_test(test_add_vcpus_takes_1_to_64_fds),
		cmocka_unit_test(test_unregister_vm_without_fds_is_accepted),
		cmocka_unit_test(test_a_message_at_any_alignment_is_decoded),
		cmocka_unit_test(test_more_than_64_fds_is_fd_count_before_anything_else),
		cmocka_unit_test(test_shorter_than_a_header_is_bad_message_without_seq),
		cmocka_unit_test(test_a_refused_whole_header_still_reports_seq_and_type),
		cmocka_unit_test(test_wrong_magic_is_bad_message),
		cmocka_unit_test(test_wrong_version_is_bad_message),
		cmocka_unit_test(test_unknown_type_is_bad_message),
		cmocka_unit_test(test_a_reply_is_not_a_request),
		cmocka_unit_test(test_header_length_must_equal_received_length),
		cmocka_unit_test(test_one_byte_short_or_long_is_bad_message),
		cmocka_unit_test(test_length_of_another_type_is_bad_message),
		cmocka_unit_test(test_nonzero_flags_or_reserved_is_bad_message_for_every_type),
		cmocka_unit_test(test_flags_are_checked_before_the_fd_count),
		cmocka_unit_test(test_register_vm_without_fds_is_fd_count),
		cmocka_unit_test(test_add_vcpus_without_fds_is_fd_count),
		cmocka_unit_test(test_unregister_vm_with_fds_is_fd_count),
		cmocka_unit_test(test_the_fd_count_is_checked_before_the_name),
		cmocka_unit_test(test_unterminated_name_is_bad_message),
		cmocka_unit_test(test_name_with_control_characters_is_bad_message),
		cmocka_unit_test(test_name_that_is_not_utf8_is_bad_message),
		cmocka_unit_test(test_why_is_cut_to_its_buffer_and_may_be_absent),
		cmocka_unit_test(test_recv_errors_map_to_the_helpers_verdicts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
