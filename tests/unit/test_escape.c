/* SPDX-License-Identifier: MIT */
/* test_escape - label and HELP escaping, UTF-8 handling, buffer limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

#define FFFD "\xef\xbf\xbd"

static void assert_escaped(const char *src, bool quote, const char *expect)
{
	char out[256];
	int n = escape_text(src, quote, out, sizeof(out));

	assert_int_equal(n, strlen(expect));
	assert_string_equal(out, expect);
}

static void test_quotes_are_escaped_only_when_asked(void **state)
{
	(void)state;
	assert_escaped("a\"b", true, "a\\\"b");
	assert_escaped("a\"b", false, "a\"b");
	assert_escaped("\"\"", true, "\\\"\\\"");
}

static void test_backslashes_and_newlines_are_always_escaped(void **state)
{
	(void)state;
	assert_escaped("a\\b", false, "a\\\\b");
	assert_escaped("a\\b", true, "a\\\\b");
	assert_escaped("line1\nline2\n", false, "line1\\nline2\\n");
	assert_escaped("\\n", true, "\\\\n"); /* a literal backslash-n stays distinguishable */
	assert_escaped("we\"ird\\name\n", true, "we\\\"ird\\\\name\\n");
}

static void test_other_bytes_pass_through(void **state)
{
	(void)state;
	assert_escaped("", true, "");
	assert_escaped("plain-vm_01", true, "plain-vm_01");
	assert_escaped("tab\there\r", true, "tab\there\r");
	assert_escaped("{a=b},'x'", true, "{a=b},'x'");
}

static void test_utf8_passes_through_unchanged(void **state)
{
	(void)state;
	assert_escaped("\xc3\xbc", true, "\xc3\xbc");					    /* ü */
	assert_escaped("M\xc3\xbcnchen-\xe2\x82\xac", true, "M\xc3\xbcnchen-\xe2\x82\xac"); /* € */
	assert_escaped("\xf0\x9f\x98\x80", true, "\xf0\x9f\x98\x80"); /* 😀 */
	assert_escaped("\xe4\xb8\xad\"\xe6\x96\x87", true, "\xe4\xb8\xad\\\"\xe6\x96\x87");
	assert_escaped("\xf4\x8f\xbf\xbf", false, "\xf4\x8f\xbf\xbf"); /* U+10FFFF */
}

static void test_invalid_utf8_becomes_replacement_characters(void **state)
{
	(void)state;
	assert_escaped("\xff", true, FFFD);
	assert_escaped("a\xfe"
		       "b",
		       true, "a" FFFD "b");
	assert_escaped("\x80", true, FFFD);			       /* lone continuation */
	assert_escaped("ab\xc3", true, "ab" FFFD);		       /* truncated at the end */
	assert_escaped("\xc3(", true, FFFD "(");		       /* bad continuation */
	assert_escaped("\xe2\x82", true, FFFD FFFD);		       /* truncated 3-byte */
	assert_escaped("\xc0\xaf", true, FFFD FFFD);		       /* overlong '/' */
	assert_escaped("\xe0\x80\xaf", true, FFFD FFFD FFFD);	       /* overlong, 3 bytes */
	assert_escaped("\xed\xa0\x80", true, FFFD FFFD FFFD);	       /* surrogate D800 */
	assert_escaped("\xf4\x90\x80\x80", true, FFFD FFFD FFFD FFFD); /* > U+10FFFF */
	assert_escaped("\xf8\x88\x80\x80\x80", false, FFFD FFFD FFFD FFFD FFFD);
	/* the escapes still apply after a replacement */
	assert_escaped("\xff\"\\\n", true, FFFD "\\\"\\\\\\n");
}

static void test_small_buffers_get_enospc_and_an_empty_string(void **state)
{
	char out[16];

	(void)state;
	/* "a\"b" escapes to 4 bytes + NUL */
	assert_int_equal(escape_text("a\"b", true, out, 5), 4);
	assert_string_equal(out, "a\\\"b");
	memset(out, 'x', sizeof(out));
	assert_int_equal(escape_text("a\"b", true, out, 4), -ENOSPC);
	assert_string_equal(out, "");
	memset(out, 'x', sizeof(out));
	assert_int_equal(escape_text("a\"b", true, out, 2), -ENOSPC);
	assert_string_equal(out, "");
	/* a replacement character needs its three bytes */
	assert_int_equal(escape_text("\xff", true, out, 4), 3);
	assert_int_equal(escape_text("\xff", true, out, 3), -ENOSPC);
	assert_int_equal(escape_text("\xf0\x9f\x98\x80", true, out, 4), -ENOSPC);
	assert_int_equal(escape_text("", true, out, 1), 0);
	assert_string_equal(out, "");
}

static void test_every_buffer_size_either_fits_or_fails_cleanly(void **state)
{
	static const char src[] = "we\"ird\\name\n\xc3\xbc\xff\xf0\x9f\x98\x80";
	char full[128];
	int need = escape_text(src, true, full, sizeof(full));

	(void)state;
	assert_true(need > 0);
	for (size_t size = 1; size <= (size_t)need + 1; size++) {
		char *out = malloc(size); /* exact size: ASan sees any overrun */
		int n;

		assert_non_null(out);
		n = escape_text(src, true, out, size);
		if (size > (size_t)need) {
			assert_int_equal(n, need);
			assert_string_equal(out, full);
		} else {
			assert_int_equal(n, -ENOSPC);
			assert_string_equal(out, "");
		}
		free(out);
	}
}

/*
 * escape.h: "-ENOSPC when out is too small". With out_size 0 nothing may be
 * written at all; an empty source still needs one byte for its NUL.
 */
static void test_zero_sized_buffer_is_never_written(void **state)
{
	char guard[2] = { 'G', 'G' };

	(void)state;
	assert_int_equal(escape_text("x", true, guard, 0), -ENOSPC);
	assert_int_equal(guard[0], 'G');
	assert_int_equal(escape_text("", true, guard, 0), -ENOSPC);
	assert_int_equal(guard[0], 'G');
}

static void test_clean_utf8_accepts_printable_text(void **state)
{
	static const char *const ok[] = { "vm-1",	    "web server 01",
					  "M\xc3\xbcnchen", "\xf0\x9f\x98\x80",
					  "a\"b\\c",	    "" };

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		assert_true(escape_is_clean_utf8(ok[i], strlen(ok[i])));
}

static void test_clean_utf8_refuses_controls_and_bad_sequences(void **state)
{
	static const char *const bad[] = {
		"a\nb", "tab\t",  "\r",	      "\x1b[31m",     "\x7f",
		"\xff", "ab\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(escape_is_clean_utf8(bad[i], strlen(bad[i])));
	/* an embedded NUL counts when it is inside len */
	assert_false(escape_is_clean_utf8("ab\0c", 4));
	assert_true(escape_is_clean_utf8("ab\0c", 2));
}

/* ---- escape_log ------------------------------------------------------------------- */

static void assert_log(const char *src, size_t len, const char *expect)
{
	char out[256];
	size_t n = escape_log(src, len, out, sizeof(out));

	assert_int_equal(n, strlen(expect));
	assert_string_equal(out, expect);
}

static void test_log_escapes_newlines_and_controls(void **state)
{
	(void)state;
	assert_log("a\nkvmstatd[helper]: info: forged", 32, "a\\nkvmstatd[helper]: info: forged");
	assert_log("\r\t\x01\x7f", 4, "\\r\\t\\x01\\x7f");
	assert_log("\x1b[31mred\x1b[0m", 12, "\\e[31mred\\e[0m");
	assert_log("a\0b", 3, "a\\x00b"); /* a NUL inside the bytes given is shown, not an end */
}

static void test_log_escapes_backslash_so_escapes_cannot_be_faked(void **state)
{
	(void)state;
	assert_log("\\n", 2, "\\\\n");
	assert_log("C:\\x", 4, "C:\\\\x");
}

static void test_log_shows_bad_utf8_and_c1_controls_as_bytes(void **state)
{
	(void)state;
	assert_log("\xff\xfe", 2, "\\xff\\xfe");
	assert_log("\xc3", 1, "\\xc3");		 /* cut sequence */
	assert_log("\xc0\xaf", 2, "\\xc0\\xaf"); /* overlong '/' */
	assert_log("\xc2\x9b"
		   "31m",
		   5, "\\xc2\\x9b31m");		 /* CSI, the one-character ESC [ */
	assert_log("\xc2\x85", 2, "\\xc2\\x85"); /* NEL */
}

static void test_log_escapes_line_separators_and_direction_marks(void **state)
{
	(void)state;
	assert_log("a\xe2\x80\xa8"
		   "b",
		   5, "a\\u{2028}b");
	assert_log("\xe2\x80\xae"
		   "evil",
		   7, "\\u{202e}evil");
	assert_log("\xe2\x81\xa6", 3, "\\u{2066}");
}

static void test_log_passes_printable_utf8(void **state)
{
	(void)state;
	assert_log("vm \"M\xc3\xbcnchen-\xe2\x82\xac\" \xf0\x9f\x98\x80", 22,
		   "vm \"M\xc3\xbcnchen-\xe2\x82\xac\" \xf0\x9f\x98\x80");
	assert_log("", 0, "");
}

static void test_log_cuts_at_a_whole_escape(void **state)
{
	char out[8];

	(void)state;
	memset(out, 'x', sizeof(out));
	assert_int_equal(escape_log("abc\n", 4, out, 5), 3); /* "\n" needs two more */
	assert_string_equal(out, "abc");
	assert_int_equal(escape_log("\xe2\x82\xac\xe2\x82\xac", 6, out, 6), 3);
	assert_string_equal(out, "\xe2\x82\xac");
	assert_int_equal(escape_log("abc", 3, out, 0), 0);
	assert_int_equal(out[0], '\xe2'); /* size 0: untouched */
	assert_int_equal(escape_log("abc", 3, out, 1), 0);
	assert_string_equal(out, "");
}

static void test_log_output_is_always_one_clean_line(void **state)
{
	unsigned char src[4];
	char out[64];

	(void)state;
	/* every 1- and 2-byte input, and 3-byte ones through 0xe2: never a
	 * control byte or bad UTF-8 out */
	for (unsigned a = 0; a < 256; a++)
		for (unsigned b = 0; b < 256; b++) {
			size_t n;

			src[0] = (unsigned char)a;
			src[1] = (unsigned char)b;
			src[2] = 0x80 | (b & 0x3f);
			n = escape_log((const char *)src, a == 0xe2 ? 3 : 2, out, sizeof(out));
			assert_true(escape_is_clean_utf8(out, n));
			assert_null(strchr(out, '\n'));
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quotes_are_escaped_only_when_asked),
		cmocka_unit_test(test_backslashes_and_newlines_are_always_escaped),
		cmocka_unit_test(test_other_bytes_pass_through),
		cmocka_unit_test(test_utf8_passes_through_unchanged),
		cmocka_unit_test(test_invalid_utf8_becomes_replacement_characters),
		cmocka_unit_test(test_small_buffers_get_enospc_and_an_empty_string),
		cmocka_unit_test(test_every_buffer_size_either_fits_or_fails_cleanly),
		cmocka_unit_test(test_clean_utf8_accepts_printable_text),
		cmocka_unit_test(test_clean_utf8_refuses_controls_and_bad_sequences),
		cmocka_unit_test(test_zero_sized_buffer_is_never_written),
		cmocka_unit_test(test_log_escapes_newlines_and_controls),
		cmocka_unit_test(test_log_escapes_backslash_so_escapes_cannot_be_faked),
		cmocka_unit_test(test_log_shows_bad_utf8_and_c1_controls_as_bytes),
		cmocka_unit_test(test_log_escapes_line_separators_and_direction_marks),
		cmocka_unit_test(test_log_passes_printable_utf8),
		cmocka_unit_test(test_log_cuts_at_a_whole_escape),
		cmocka_unit_test(test_log_output_is_always_one_clean_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
