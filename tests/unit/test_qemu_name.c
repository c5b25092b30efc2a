/* SPDX-License-Identifier: MIT */
/*
 * test_qemu_name - the VM name from a QEMU command line (util/qemu_name.c):
 * every -name spelling QEMU 7.2 accepts, QemuOpts comma escaping, last one
 * wins, what QEMU does not accept, and names kvmstatd would refuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmstat_proto.h"
#include "escape.h"
#include "qemu_name.h"

#define MAX_ARGS 16

/*
 * Parse argv (NULL-terminated, program first) both ways: as an argv array
 * and as the NUL-separated bytes of /proc/<pid>/cmdline. Both must agree.
 */
static void assert_name_sized(const char *const *argv, size_t out_size, const char *expect)
{
	char out[KVMSTAT_NAME_MAX * 2], out2[KVMSTAT_NAME_MAX * 2], cmdline[4096];
	size_t len = 0, n, n2;
	int argc = 0;

	assert_true(out_size <= sizeof(out));
	while (argv[argc]) {
		size_t l = strlen(argv[argc]) + 1;

		assert_true(len + l <= sizeof(cmdline));
		memcpy(cmdline + len, argv[argc], l);
		len += l;
		argc++;
	}
	memset(out, 'X', sizeof(out));
	memset(out2, 'X', sizeof(out2));
	n = qemu_name_from_argv(argc, argv, out, out_size);
	n2 = qemu_name_from_cmdline(cmdline, len, out2, out_size);
	assert_string_equal(out, expect);
	assert_int_equal(n, strlen(expect));
	assert_string_equal(out2, expect);
	assert_int_equal(n2, strlen(expect));
	/* nothing written past out_size */
	assert_int_equal(out[out_size], 'X');
	assert_int_equal(out2[out_size], 'X');
}

static void assert_name(const char *const *argv, const char *expect)
{
	assert_name_sized(argv, KVMSTAT_NAME_MAX, expect);
}

#define ARGV(...) ((const char *const[]){ "qemu-system-x86_64", __VA_ARGS__, NULL })

static void test_plain_and_guest_forms(void **state)
{
	(void)state;
	assert_name(ARGV("-name", "foo"), "foo");
	assert_name(ARGV("--name", "foo"), "foo");
	assert_name(ARGV("-name", "guest=foo"), "foo");
	assert_name(ARGV("-name", "guest=shimtest,debug-threads=on"), "shimtest");
	assert_name(ARGV("-name", "foo,debug-threads=on"), "foo");
	assert_name(ARGV("-name", "debug-threads=on,guest=bar"), "bar");
	assert_name(ARGV("-name", "foo,process=qemu-foo,debug-threads=off"), "foo");
	assert_name(ARGV("-accel", "kvm", "-m", "64", "-name", "vm1", "-nodefaults"), "vm1");
}

static void test_double_comma_is_a_literal_comma(void **state)
{
	(void)state;
	assert_name(ARGV("-name", "a,,b"), "a,b");
	assert_name(ARGV("-name", "guest=a,,b,debug-threads=on"), "a,b");
	assert_name(ARGV("-name", "guest=a,,b,,,debug-threads=on"), "a,b,");
	assert_name(ARGV("-name", ",,,,"), ",,");
	assert_name(ARGV("-name", "guest=,,x"), ",x");
	/* after ",," an '=' is part of the implied value, as in QEMU */
	assert_name(ARGV("-name", "foo,,bar=baz"), "foo,bar=baz");
	assert_name(ARGV("-name", "guest=a=b"), "a=b");
}

static void test_last_guest_wins(void **state)
{
	(void)state;
	assert_name(ARGV("-name", "foo", "-name", "bar"), "bar");
	assert_name(ARGV("-name", "guest=foo,guest=bar"), "bar");
	/* later -name options without a guest keep the earlier one */
	assert_name(ARGV("-name", "foo", "-name", "debug-threads=on"), "foo");
	assert_name(ARGV("-name", "foo", "-name", ""), "foo");
	/* the last one decides even when it is unusable */
	assert_name(ARGV("-name", "foo", "-name", "guest="), "");
	assert_name(ARGV("-name", "foo", "-name", "bad\tname"), "");
	/* a flag "guest" is guest=on, "noguest" guest=off (QemuOpts) */
	assert_name(ARGV("-name", "foo,guest"), "on");
	assert_name(ARGV("-name", "foo,noguest"), "off");
}

static void test_forms_qemu_does_not_read(void **state)
{
	(void)state;
	assert_name(ARGV("-name=foo"), "");
	assert_name(ARGV("--name=foo"), "");
	assert_name(ARGV("---name", "foo"), "");
	assert_name(ARGV("-Name", "foo"), "");
	assert_name(ARGV("-names", "foo"), "");
	assert_name(ARGV("name", "foo"), "");
	assert_name(ARGV("-name"), "");
	assert_name(ARGV("-name", ""), "");
	assert_name(ARGV("-name", "guest="), "");
	assert_name(ARGV("-name", ",debug-threads=on"), "");
	/* "key=value" first: no implied guest */
	assert_name(ARGV("-name", "a=b"), "");
	assert_name(ARGV("-m", "64"), "");
	/* argv[0] is the program, never an option */
	assert_name((const char *const[]){ "-name", "foo", NULL }, "");
	/* an argument that is not an option (a disk image) is skipped */
	assert_name(ARGV("disk.img", "-name", "x"), "x");
}

static void test_length_limit(void **state)
{
	char n63[64], n64[65], arg[128];

	(void)state;
	memset(n63, 'a', 63);
	n63[63] = '\0';
	memset(n64, 'a', 64);
	n64[64] = '\0';
	assert_name(ARGV("-name", n63), n63);
	assert_name(ARGV("-name", n64), "");
	snprintf(arg, sizeof(arg), "guest=%s,debug-threads=on", n63);
	assert_name(ARGV("-name", arg), n63);
	snprintf(arg, sizeof(arg), "guest=%s,debug-threads=on", n64);
	assert_name(ARGV("-name", arg), "");
	/* ",," counts once: 62 'a' plus one ',' fit */
	memset(arg, 'a', 62);
	memcpy(arg + 62, ",,", 3);
	n63[62] = ',';
	assert_name(ARGV("-name", arg), n63);
	/* smaller buffers */
	assert_name_sized(ARGV("-name", "abcd"), 5, "abcd");
	assert_name_sized(ARGV("-name", "abcde"), 5, "");
	assert_name_sized(ARGV("-name", "a"), 1, "");
	/* a long name followed by a short one: the short one, intact */
	assert_name(ARGV("-name", n64, "-name", "ok"), "ok");
}

static void test_utf8_and_control_characters(void **state)
{
	(void)state;
	assert_name(ARGV("-name", "caf\xc3\xa9"), "caf\xc3\xa9");
	assert_name(ARGV("-name", "\xe6\x97\xa5\xe6\x9c\xac"), "\xe6\x97\xa5\xe6\x9c\xac");
	assert_name(ARGV("-name", "\xf0\x9f\x90\xa7-vm"), "\xf0\x9f\x90\xa7-vm");
	assert_name(ARGV("-name", "with space"), "with space");
	assert_name(ARGV("-name", "nbsp\xc2\xa0ok"), "nbsp\xc2\xa0ok");
	assert_name(ARGV("-name", "tab\there"), "");
	assert_name(ARGV("-name", "nl\n"), "");
	assert_name(ARGV("-name", "del\x7f"), "");
	assert_name(ARGV("-name", "c1\xc2\x85"), "");
	assert_name(ARGV("-name", "c1\xc2\x9f"), "");
	assert_name(ARGV("-name", "latin1\xe9"), "");
	assert_name(ARGV("-name", "overlong\xc0\xaf"), "");
	assert_name(ARGV("-name", "overlong\xe0\x80\xaf"), "");
	assert_name(ARGV("-name", "surrogate\xed\xa0\x80"), "");
	assert_name(ARGV("-name", "big\xf4\x90\x80\x80"), "");
	assert_name(ARGV("-name", "cut\xe6\x97"), "");
	assert_name(ARGV("-name", "\x80"), "");
	assert_true(escape_is_clean_utf8("", 0));
	assert_false(escape_is_clean_utf8("a\0b", 3));
}

/* A read of /proc/<pid>/cmdline cut short: the unterminated tail is not an argument. */
static void test_cmdline_cut_short(void **state)
{
	static const char cut[] = "qemu\0-name\0guest=x,debug-thr";
	static const char value_cut[] = "qemu\0-name\0abc";
	static const char later_cut[] = "qemu\0-name\0abc\0-m\0064\0-name\0de";
	char out[KVMSTAT_NAME_MAX];

	(void)state;
	assert_int_equal(qemu_name_from_cmdline(cut, sizeof(cut) - 1, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(qemu_name_from_cmdline(value_cut, sizeof(value_cut) - 1, out, sizeof(out)),
			 0);
	assert_string_equal(out, "");
	/* an earlier, whole -name stands */
	assert_int_equal(qemu_name_from_cmdline(later_cut, sizeof(later_cut) - 1, out, sizeof(out)),
			 3);
	assert_string_equal(out, "abc");
	/* with its NUL (sizeof counts the literal's own) the last argument is whole */
	assert_int_equal(qemu_name_from_cmdline(value_cut, sizeof(value_cut), out, sizeof(out)), 3);
	assert_string_equal(out, "abc");
}

static void test_cmdline_edge_cases(void **state)
{
	static const char empty_args[] = "qemu\0\0-name\0\0";
	static const char value_cut[] = "qemu\0-name\0abc";
	char out[KVMSTAT_NAME_MAX];

	(void)state;
	assert_int_equal(
	    qemu_name_from_cmdline(empty_args, sizeof(empty_args) - 1, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(qemu_name_from_cmdline("", 0, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(qemu_name_from_cmdline(NULL, 0, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(qemu_name_from_argv(0, NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	/* no room at all: nothing written, nothing found */
	assert_int_equal(qemu_name_from_cmdline(value_cut, sizeof(value_cut), out, 0), 0);
}

/* Every prefix of a command line: never a read past it, and a result each time. */
static void test_every_prefix_of_a_cmdline(void **state)
{
	static const char line[] = "qemu-system-x86_64\0-accel\0kvm\0-name\0"
				   "guest=a,,b,debug-threads=on\0--name\0x,,\0";
	char out[KVMSTAT_NAME_MAX];

	(void)state;
	for (size_t len = 0; len <= sizeof(line) - 1; len++) {
		char *copy = malloc(len ? len : 1);

		assert_non_null(copy);
		memcpy(copy, line, len);
		qemu_name_from_cmdline(copy, len, out, sizeof(out));
		assert_true(strlen(out) < sizeof(out));
		free(copy);
	}
	qemu_name_from_cmdline(line, sizeof(line) - 1, out, sizeof(out));
	assert_string_equal(out, "x,");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_and_guest_forms),
		cmocka_unit_test(test_double_comma_is_a_literal_comma),
		cmocka_unit_test(test_last_guest_wins),
		cmocka_unit_test(test_forms_qemu_does_not_read),
		cmocka_unit_test(test_length_limit),
		cmocka_unit_test(test_utf8_and_control_characters),
		cmocka_unit_test(test_cmdline_cut_short),
		cmocka_unit_test(test_cmdline_edge_cases),
		cmocka_unit_test(test_every_prefix_of_a_cmdline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
