/* SPDX-License-Identifier: MIT */
/*
 * test_config - defaults, the INI file as the linked inih reads it, and the
 * error messages ("FILE:LINE: [section] key: what is wrong").
 *
 * inih's limits are compile-time settings of the system library (Debian:
 * 200-byte lines, inline ';' comments after whitespace, parsing on after an
 * error); these tests pin the behaviour we get with it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define SHIPPED_CONFIG "../../config/kvmstatd.ini"

static char err[512];

static int load(struct config *c, const char *text)
{
	config_defaults(c);
	memset(err, 0, sizeof(err));
	return config_load_string(c, text, "t.ini", err, sizeof(err));
}

static void assert_ok(const char *text, struct config *c)
{
	int rc = load(c, text);

	if (rc != 0)
		fail_msg("refused (%d): %s", rc, err);
}

/* Refused, and the message contains every one of the NULL-terminated parts. */
static void assert_refused(const char *text, ...)
{
	struct config c;
	const char *part;
	va_list ap;

	assert_int_equal(load(&c, text), -EINVAL);
	va_start(ap, text);
	while ((part = va_arg(ap, const char *)))
		if (!strstr(err, part)) {
			va_end(ap);
			fail_msg("message \"%s\" lacks \"%s\"", err, part);
		}
	va_end(ap);
}

static void test_defaults_are_the_documented_values(void **state)
{
	struct config c;

	(void)state;
	memset(&c, 0xa5, sizeof(c));
	config_defaults(&c);
	assert_string_equal(c.user, "kvmstatd");
	assert_string_equal(c.socket_path, "/run/kvmstatd/register.sock");
	assert_int_equal(c.socket_mode, 0660);
	assert_string_equal(c.socket_group, "");
	assert_int_equal(c.max_vms_per_peer, 256);
	assert_int_equal(c.max_vcpus_per_vm, 1024);
	assert_int_equal(c.max_sources, 16384);
	assert_int_equal(c.interval_ms, 1000);
	assert_int_equal(c.ring_slots, 4);
	assert_int_equal(c.exit_grace_ms, 30000);
	assert_string_equal(c.listen, ":9735");
	assert_int_equal(c.max_connections, 64);
	assert_int_equal(c.connection_timeout_s, 10);
}

static void assert_same_config(const struct config *a, const struct config *b)
{
	assert_string_equal(a->user, b->user);
	assert_string_equal(a->socket_path, b->socket_path);
	assert_int_equal(a->socket_mode, b->socket_mode);
	assert_string_equal(a->socket_group, b->socket_group);
	assert_int_equal(a->max_vms_per_peer, b->max_vms_per_peer);
	assert_int_equal(a->max_vcpus_per_vm, b->max_vcpus_per_vm);
	assert_int_equal(a->max_sources, b->max_sources);
	assert_int_equal(a->interval_ms, b->interval_ms);
	assert_int_equal(a->ring_slots, b->ring_slots);
	assert_int_equal(a->exit_grace_ms, b->exit_grace_ms);
	assert_string_equal(a->listen, b->listen);
	assert_int_equal(a->max_connections, b->max_connections);
	assert_int_equal(a->connection_timeout_s, b->connection_timeout_s);
}

static void test_shipped_config_file_states_the_defaults(void **state)
{
	struct config loaded, defaults;

	(void)state;
	config_defaults(&defaults);
	config_defaults(&loaded);
	if (config_load(&loaded, SHIPPED_CONFIG, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_same_config(&loaded, &defaults);
}

static void test_valid_file_sets_every_key(void **state)
{
	static const char text[] = "\xef\xbb\xbf; a comment\n"
				   "# another comment\n"
				   "\n"
				   "[daemon]\n"
				   "user = statsd\n"
				   "[registration]\n"
				   "socket=/run/k/reg.sock\n"
				   "  socket_mode   =   0600  \n"
				   "socket_group = kvm ; inline comment\n"
				   "max_vms_per_peer = 1\n"
				   "max_vcpus_per_vm = 4096\n"
				   "max_sources = 20000\n"
				   "[poll]\n"
				   "interval_ms = 10\n"
				   "ring_slots = 64\n"
				   "exit_grace_ms = 0\n"
				   "[http]\n"
				   "listen = [::1]:9100\n"
				   "max_connections = 1024\n"
				   "connection_timeout_s = 3600\n";
	struct config c;

	(void)state;
	assert_ok(text, &c);
	assert_string_equal(c.user, "statsd");
	assert_string_equal(c.socket_path, "/run/k/reg.sock");
	assert_int_equal(c.socket_mode, 0600);
	assert_string_equal(c.socket_group, "kvm");
	assert_int_equal(c.max_vms_per_peer, 1);
	assert_int_equal(c.max_vcpus_per_vm, 4096);
	assert_int_equal(c.max_sources, 20000);
	assert_int_equal(c.interval_ms, 10);
	assert_int_equal(c.ring_slots, 64);
	assert_int_equal(c.exit_grace_ms, 0);
	assert_string_equal(c.listen, "[::1]:9100");
	assert_int_equal(c.max_connections, 1024);
	assert_int_equal(c.connection_timeout_s, 3600);
}

static void test_empty_file_keeps_the_defaults(void **state)
{
	struct config c, d;

	(void)state;
	config_defaults(&d);
	assert_ok("", &c);
	assert_same_config(&c, &d);
	assert_ok("\n\n; nothing\n", &c);
	assert_same_config(&c, &d);
}

static void test_later_keys_override_earlier_ones(void **state)
{
	struct config c;

	(void)state;
	assert_ok("[poll]\ninterval_ms = 20\n[http]\n[poll]\ninterval_ms = 30\n", &c);
	assert_int_equal(c.interval_ms, 30);
}

static void test_semicolon_inside_a_value_is_kept(void **state)
{
	struct config c;

	(void)state;
	/* inline comments start at whitespace + ';' */
	assert_ok("[registration]\nsocket = /run/a;b\n[poll]\ninterval_ms = 500 ; half\n", &c);
	assert_string_equal(c.socket_path, "/run/a;b");
	assert_int_equal(c.interval_ms, 500);
}

static void test_unknown_key_names_line_and_key(void **state)
{
	(void)state;
	assert_refused("[poll]\ninterval_ms = 20\nintervall_ms = 20\n",
		       "t.ini:3:", "[poll] intervall_ms", "unknown key", NULL);
	/* a known key in the wrong section is unknown there */
	assert_refused("[http]\n\nring_slots = 4\n", "t.ini:3:", "[http] ring_slots", "unknown key",
		       NULL);
	assert_refused("user = x\n", "t.ini:1:", "user", "unknown key", NULL);
	/* section names are case-sensitive: [Poll] is an unknown section, at its own line */
	assert_refused("[Poll]\ninterval_ms = 20\n", "t.ini:1:", "[Poll]", "unknown section", NULL);
}

static void test_out_of_range_names_line_key_and_allowed_range(void **state)
{
	struct config c;

	(void)state;
	assert_refused("[poll]\n\ninterval_ms = 9\n", "t.ini:3:", "[poll] interval_ms",
		       "out of range", "\"9\"", "10..3600000", NULL);
	assert_refused("[poll]\ninterval_ms = 3600001\n", "t.ini:2:", "out of range", NULL);
	assert_refused("[poll]\nring_slots = 1\n", "t.ini:2:", "[poll] ring_slots", "2..64", NULL);
	assert_refused("[poll]\nring_slots = 65\n", "out of range", NULL);
	assert_refused("[registration]\nmax_sources = 0\n", "[registration] max_sources",
		       "1..20000", NULL);
	assert_refused("[http]\nmax_connections = 4294967296\n", "[http] max_connections",
		       "out of range", NULL);
	/* the bounds themselves are allowed */
	assert_ok("[poll]\ninterval_ms = 3600000\nring_slots = 2\nexit_grace_ms = 86400000\n", &c);
	assert_int_equal(c.interval_ms, 3600000);
	assert_int_equal(c.ring_slots, 2);
}

static void test_non_numeric_values_are_refused(void **state)
{
	static const char *const bad[] = { "abc",  "-5",    "+5", "1e3",
					   "0x10", "12abc", "",	  "99999999999999999999999",
					   "1 2",  "20ms" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[128];

		snprintf(text, sizeof(text), "[poll]\ninterval_ms = %s\n", bad[i]);
		assert_refused(text, "t.ini:2:", "[poll] interval_ms", "not a non-negative integer",
			       NULL);
	}
}

static void test_socket_mode_is_octal_up_to_0777(void **state)
{
	struct config c;

	(void)state;
	assert_ok("[registration]\nsocket_mode = 0600\n", &c);
	assert_int_equal(c.socket_mode, 0600);
	assert_ok("[registration]\nsocket_mode = 660\n", &c);
	assert_int_equal(c.socket_mode, 0660);
	assert_ok("[registration]\nsocket_mode = 0\n", &c);
	assert_int_equal(c.socket_mode, 0);
	assert_refused("[registration]\nsocket_mode = 0778\n",
		       "t.ini:2:", "[registration] socket_mode", "not an octal number", NULL);
	assert_refused("[registration]\nsocket_mode = rw-rw----\n", "not an octal number", NULL);
	assert_refused("[registration]\nsocket_mode = -0600\n", "not an octal number", NULL);
	assert_refused("[registration]\nsocket_mode = 01000\n",
		       "t.ini:2:", "[registration] socket_mode", "out of range", NULL);
	assert_refused("[registration]\nsocket_mode = 04755\n", "out of range", NULL);
}

static void test_bad_listen_names_line_and_key(void **state)
{
	static const char *const bad[] = {
		"abc", ":0", ":65536", "[::1]9735", "1.2.3.4:", "::1:80"
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[128];

		snprintf(text, sizeof(text), "[http]\n\nlisten = %s\n", bad[i]);
		assert_refused(text, "t.ini:3:", "[http] listen", NULL);
	}
}

static void test_bad_user_and_socket_name_line_and_key(void **state)
{
	(void)state;
	assert_refused("[daemon]\nuser =\n", "t.ini:2:", "[daemon] user", NULL);
	assert_refused("[registration]\nsocket = run/reg.sock\n",
		       "t.ini:2:", "[registration] socket", NULL);
}

static void test_syntax_error_names_its_line(void **state)
{
	(void)state;
	assert_refused("[poll]\n\ninterval_ms 500\n", "t.ini:3:", "syntax error", NULL);
	assert_refused("[poll\ninterval_ms = 20\n", "t.ini:1:", NULL);
	/* multi-line values are off: an indented line is not a continuation */
	assert_refused("[daemon]\nuser = a\n  b\n", "t.ini:3:", "syntax error", NULL);
}

static void test_value_too_long_names_line_key_and_limit(void **state)
{
	char text[300], v[200];
	struct config c;

	(void)state;
	memset(v, 'a', sizeof(v));
	v[0] = '/';
	v[CONFIG_STR_MAX - 1] = '\0'; /* 107 bytes: fits */
	snprintf(text, sizeof(text), "[registration]\nsocket = %s\n", v);
	assert_ok(text, &c);
	assert_string_equal(c.socket_path, v);
	v[CONFIG_STR_MAX - 1] = 'a';
	v[CONFIG_STR_MAX] = '\0'; /* 108 bytes */
	snprintf(text, sizeof(text), "[registration]\nsocket = %s\n", v);
	assert_refused(text, "t.ini:2:", "[registration] socket", "value too long", "107", NULL);
	memset(v, 'u', 64);
	v[64] = '\0';
	snprintf(text, sizeof(text), "[daemon]\nuser = %s\n", v);
	assert_refused(text, "t.ini:2:", "[daemon] user", "value too long", "63", NULL);
}

/*
 * When a syntax error comes before a bad key, the message must describe the
 * line it names. inih returns the first error's line; the handler keeps the
 * first *handler* error's text.
 */
static void test_first_error_is_reported_with_its_own_line(void **state)
{
	(void)state;
	assert_refused("[poll]\ninterval_ms 500\nfoo = 1\n", "t.ini:2: syntax error", NULL);
	assert_refused("[poll\ninterval_ms = 20\n", "t.ini:1: syntax error", NULL);
}

/* A comment is a comment, however long (inih reads 200-byte lines). */
static void test_long_comment_line_is_not_an_error(void **state)
{
	char text[1024], pad[400];
	struct config c;

	(void)state;
	memset(pad, '-', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	snprintf(text, sizeof(text), "; %s\n[poll]\ninterval_ms = 500\n", pad);
	assert_ok(text, &c);
	assert_int_equal(c.interval_ms, 500);
	snprintf(text, sizeof(text), "; %.300s see: ring_slots = 2\n[poll]\ninterval_ms = 500\n",
		 pad);
	assert_ok(text, &c);
}

/* config/kvmstatd.ini: "An unknown section or key ... is an error". */
static void test_unknown_section_is_an_error_even_when_empty(void **state)
{
	(void)state;
	assert_refused("[htpp]\n[http]\nlisten = :9100\n", "t.ini:1:", "htpp", NULL);
}

static void test_missing_file_is_reported_with_its_errno(void **state)
{
	struct config c;

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_load(&c, "/nonexistent/kvmstatd.ini", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/kvmstatd.ini"));
	assert_non_null(strstr(err, "cannot open"));
}

static void test_error_message_fits_a_small_buffer(void **state)
{
	struct config c;

	(void)state;
	for (size_t size = 1; size < 40; size++) {
		char *small = malloc(size);

		assert_non_null(small);
		config_defaults(&c);
		assert_int_equal(config_load_string(&c, "[poll]\nfoo = 1\n", "t.ini", small, size),
				 -EINVAL);
		assert_true(strlen(small) < size);
		free(small);
	}
}

/* ---- config_parse_listen -------------------------------------------------- */

static void assert_listen(const char *s, const char *host, unsigned port)
{
	char h[CONFIG_STR_MAX];
	uint16_t p = 0;

	if (config_parse_listen(s, h, sizeof(h), &p) != 0)
		fail_msg("\"%s\" refused", s);
	assert_string_equal(h, host);
	assert_int_equal(p, port);
}

static void assert_listen_refused(const char *s)
{
	char h[CONFIG_STR_MAX];
	uint16_t p = 0;

	if (config_parse_listen(s, h, sizeof(h), &p) != -EINVAL)
		fail_msg("\"%s\" accepted as host \"%s\" port %u", s, h, p);
}

static void test_listen_accepts_the_four_forms(void **state)
{
	(void)state;
	assert_listen("9735", "", 9735);
	assert_listen(":9735", "", 9735);
	assert_listen("127.0.0.1:80", "127.0.0.1", 80);
	assert_listen("[::1]:9735", "::1", 9735);
	assert_listen("[::]:1", "::", 1);
	assert_listen("localhost:65535", "localhost", 65535);
}

static void test_listen_refuses_malformed_addresses(void **state)
{
	static const char *const bad[] = {
		"",	      "abc",	 "1.2.3.4:",	":0",  ":65536", "[::1]9735", "[::1]:",
		"[]:80",      "[::1:80", "::1:9735",	":",   "0",	 "99999",     ":80x",
		"1.2.3.4:-1", ":+80",	 "[::1]:99999", "80 ", "::",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_listen_refused(bad[i]);
}

static void test_listen_refuses_hosts_longer_than_the_buffer(void **state)
{
	char s[300], h[16];
	uint16_t p;

	(void)state;
	memset(s, 'h', sizeof(s));
	snprintf(s + 200, sizeof(s) - 200, ":80");
	assert_int_equal(config_parse_listen(s, h, sizeof(h), &p), -EINVAL);
	s[0] = '[';
	snprintf(s + 200, sizeof(s) - 200, "]:80");
	assert_int_equal(config_parse_listen(s, h, sizeof(h), &p), -EINVAL);
	assert_int_equal(config_parse_listen("123456789012345:80", h, sizeof(h), &p), 0);
	assert_int_equal(config_parse_listen("1234567890123456:80", h, sizeof(h), &p), -EINVAL);
}

/*
 * A port is digits only. strtoul() skips leading whitespace and then takes a
 * sign, so " -18446744073709551615" wraps around to 1.
 */
static void test_listen_port_is_digits_only(void **state)
{
	(void)state;
	assert_listen_refused(": 80");
	assert_listen_refused("\t80");
	assert_listen_refused(": -18446744073709551615");
	assert_listen_refused("[::1]: -18446744073709541151"); /* wraps to 10465 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_are_the_documented_values),
		cmocka_unit_test(test_shipped_config_file_states_the_defaults),
		cmocka_unit_test(test_valid_file_sets_every_key),
		cmocka_unit_test(test_empty_file_keeps_the_defaults),
		cmocka_unit_test(test_later_keys_override_earlier_ones),
		cmocka_unit_test(test_semicolon_inside_a_value_is_kept),
		cmocka_unit_test(test_unknown_key_names_line_and_key),
		cmocka_unit_test(test_out_of_range_names_line_key_and_allowed_range),
		cmocka_unit_test(test_non_numeric_values_are_refused),
		cmocka_unit_test(test_socket_mode_is_octal_up_to_0777),
		cmocka_unit_test(test_bad_listen_names_line_and_key),
		cmocka_unit_test(test_bad_user_and_socket_name_line_and_key),
		cmocka_unit_test(test_syntax_error_names_its_line),
		cmocka_unit_test(test_value_too_long_names_line_key_and_limit),
		cmocka_unit_test(test_first_error_is_reported_with_its_own_line),
		cmocka_unit_test(test_long_comment_line_is_not_an_error),
		cmocka_unit_test(test_unknown_section_is_an_error_even_when_empty),
		cmocka_unit_test(test_missing_file_is_reported_with_its_errno),
		cmocka_unit_test(test_error_message_fits_a_small_buffer),
		cmocka_unit_test(test_listen_accepts_the_four_forms),
		cmocka_unit_test(test_listen_refuses_malformed_addresses),
		cmocka_unit_test(test_listen_refuses_hosts_longer_than_the_buffer),
		cmocka_unit_test(test_listen_port_is_digits_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
