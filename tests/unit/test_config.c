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
#include <pwd.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
	assert_int_equal(c.n_allow_uids, 0);
	assert_int_equal(c.n_allow_gids, 0);
	assert_int_equal(c.max_sources_per_uid, 4096);
	assert_int_equal(c.rate_limit, 100);
	assert_int_equal(c.rate_burst, 1000);
	assert_true(c.discovery_enabled);
	assert_int_equal(c.discovery_interval_s, 10);
	assert_true(c.sandbox);
	assert_int_equal(c.interval_ms, 1000);
	assert_int_equal(c.ring_slots, 4);
	assert_int_equal(c.history_s, 60);
	assert_int_equal(c.history_max_mib, 512);
	assert_int_equal(c.exit_grace_ms, 30000);
	assert_string_equal(c.listen, ":9735");
	assert_int_equal(c.max_connections, 64);
	assert_int_equal(c.connection_timeout_s, 10);
	assert_string_equal(c.metrics_include, "");
	assert_string_equal(c.metrics_exclude, "");
	assert_string_equal(c.vcpu_series, "per_vcpu");
	assert_true(c.histograms);
	assert_true(c.created);
	assert_int_equal(c.max_series, 0);
	assert_int_equal(c.max_connections_per_ip, 8);
	assert_int_equal(c.threads, 2);
	assert_int_equal(c.max_headers, 64);
	assert_int_equal(c.max_request_bytes, 32768);
	assert_string_equal(c.tls_cert_file, "");
	assert_string_equal(c.tls_key_file, "");
	assert_string_equal(c.tls_client_ca_file, "");
	assert_string_equal(c.tls_min_version, "TLS12");
	assert_string_equal(c.tls_client_auth_type, "NoClientCert");
	assert_int_equal(c.client_auth, CLIENT_AUTH_NONE);
	assert_int_equal(c.n_auth_users, 0);
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
	assert_int_equal(a->n_allow_uids, b->n_allow_uids);
	assert_memory_equal(a->allow_uids, b->allow_uids, a->n_allow_uids * sizeof(uid_t));
	assert_int_equal(a->n_allow_gids, b->n_allow_gids);
	assert_memory_equal(a->allow_gids, b->allow_gids, a->n_allow_gids * sizeof(gid_t));
	assert_int_equal(a->max_sources_per_uid, b->max_sources_per_uid);
	assert_int_equal(a->rate_limit, b->rate_limit);
	assert_int_equal(a->rate_burst, b->rate_burst);
	assert_int_equal(a->discovery_enabled, b->discovery_enabled);
	assert_int_equal(a->discovery_interval_s, b->discovery_interval_s);
	assert_int_equal(a->sandbox, b->sandbox);
	assert_int_equal(a->interval_ms, b->interval_ms);
	assert_int_equal(a->ring_slots, b->ring_slots);
	assert_int_equal(a->exit_grace_ms, b->exit_grace_ms);
	assert_string_equal(a->listen, b->listen);
	assert_int_equal(a->max_connections, b->max_connections);
	assert_int_equal(a->connection_timeout_s, b->connection_timeout_s);
	assert_string_equal(a->metrics_include, b->metrics_include);
	assert_string_equal(a->metrics_exclude, b->metrics_exclude);
	assert_string_equal(a->vcpu_series, b->vcpu_series);
	assert_int_equal(a->histograms, b->histograms);
	assert_int_equal(a->created, b->created);
	assert_int_equal(a->max_series, b->max_series);
	assert_int_equal(a->max_connections_per_ip, b->max_connections_per_ip);
	assert_int_equal(a->threads, b->threads);
	assert_int_equal(a->max_headers, b->max_headers);
	assert_int_equal(a->max_request_bytes, b->max_request_bytes);
	assert_string_equal(a->tls_cert_file, b->tls_cert_file);
	assert_string_equal(a->tls_key_file, b->tls_key_file);
	assert_string_equal(a->tls_client_ca_file, b->tls_client_ca_file);
	assert_string_equal(a->tls_min_version, b->tls_min_version);
	assert_string_equal(a->tls_client_auth_type, b->tls_client_auth_type);
	assert_int_equal(a->n_auth_users, b->n_auth_users);
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
				   "sandbox = no\n"
				   "[registration]\n"
				   "socket=/run/k/reg.sock\n"
				   "  socket_mode   =   0600  \n"
				   "socket_group = kvm ; inline comment\n"
				   "max_vms_per_peer = 1\n"
				   "max_vcpus_per_vm = 4096\n"
				   "max_sources = 20000\n"
				   "allow_users = root, 1000\n"
				   "allow_groups = 0 107\n"
				   "max_sources_per_uid = 20000\n"
				   "rate_limit = 0\n"
				   "rate_burst = 1\n"
				   "[discovery]\n"
				   "enabled = false\n"
				   "interval_s = 86400\n"
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
	assert_false(c.sandbox);
	assert_int_equal(c.n_allow_uids, 2);
	assert_int_equal(c.allow_uids[0], 0);
	assert_int_equal(c.allow_uids[1], 1000);
	assert_int_equal(c.n_allow_gids, 2);
	assert_int_equal(c.allow_gids[0], 0);
	assert_int_equal(c.allow_gids[1], 107);
	assert_int_equal(c.max_sources_per_uid, 20000);
	assert_int_equal(c.rate_limit, 0);
	assert_int_equal(c.rate_burst, 1);
	assert_false(c.discovery_enabled);
	assert_int_equal(c.discovery_interval_s, 86400);
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

static void test_repeated_section_is_refused_naming_both_lines(void **state)
{
	(void)state;
	assert_refused("[poll]\ninterval_ms = 20\n[http]\n[poll]\ninterval_ms = 30\n",
		       "t.ini:4: [poll]: section repeated (first at line 1)", NULL);
	assert_refused("[http]\n\n[http]\n", "t.ini:3: [http]: section repeated (first at line 1)",
		       NULL);
	assert_refused("[basic_auth_users]\n[basic_auth_users]\n", "t.ini:2: [basic_auth_users]",
		       "repeated", NULL);
}

static void test_repeated_scalar_key_is_refused_naming_both_lines(void **state)
{
	(void)state;
	assert_refused("[poll]\ninterval_ms = 20\n; later\ninterval_ms = 30\n",
		       "t.ini:4: [poll] interval_ms: set twice (first at line 2)", NULL);
	/* the same value twice is as ambiguous a file */
	assert_refused("[daemon]\nuser = a\nuser = a\n", "t.ini:3: [daemon] user: set twice", NULL);
	assert_refused("[registration]\nsocket_mode = 0660\nsocket_mode = 0600\n",
		       "t.ini:3: [registration] socket_mode: set twice (first at line 2)", NULL);
}

static void test_list_keys_add_up_when_repeated(void **state)
{
	struct config c;

	(void)state;
	assert_ok(
	    "[registration]\nallow_users = 0\nallow_users = 1\nallow_groups = 0\n"
	    "allow_groups = 1\n[metrics]\ninclude = a\ninclude = b\nexclude = c\nexclude = d\n"
	    "reasons_include = e\nreasons_include = f\nreasons_exclude = g\n"
	    "reasons_exclude = h\n",
	    &c);
	assert_int_equal(c.n_allow_uids, 2);
	assert_int_equal(c.n_allow_gids, 2);
	assert_string_equal(c.metrics_include, "a|b");
	assert_string_equal(c.reasons_exclude, "g|h");
}

static void test_schedstat_follows_the_bpf_key_and_only_off_stops_it(void **state)
{
	static const struct {
		const char *text;
		bool on;
	} cases[] = {
		{ "", true },
		{ "[daemon]\nbpf = auto\n", true },
		{ "[daemon]\nbpf = on\n", true },
		{ "[daemon]\nbpf = off\n", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config c;

		config_defaults(&c);
		assert_ok(cases[i].text, &c);
		assert_int_equal(config_schedstat(&c), cases[i].on);
	}
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

static void assert_file_refused(const char *path, int want, const char *part)
{
	struct config c;

	config_defaults(&c);
	c.interval_ms = 1234;
	memset(err, 0, sizeof(err));
	assert_int_equal(config_load(&c, path, err, sizeof(err)), want);
	if (!strstr(err, path) || !strstr(err, part) || !strstr(err, "must be a regular file"))
		fail_msg("message \"%s\" lacks the path, \"%s\" or the rule", err, part);
	assert_int_equal(c.interval_ms, 1234); /* nothing of it was applied */
}

static void test_config_that_is_not_a_regular_file_is_refused(void **state)
{
	char dir[] = "/tmp/kvmstatd-test-XXXXXX", fifo[64];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_file_refused(dir, -EINVAL, "a directory");
	assert_file_refused("/dev/zero", -EINVAL, "a character device");
	assert_file_refused("/dev/null", -EINVAL, "a character device");
	/* no writer: an open() without O_NONBLOCK would wait for ever */
	assert_file_refused(fifo, -EINVAL, "a FIFO");
	unlink(fifo);
	rmdir(dir);
}

static void test_config_larger_than_the_bound_or_with_nul_is_refused(void **state)
{
	char path[] = "/tmp/kvmstatd-test-XXXXXX";
	int fd = mkstemp(path);
	char *big = malloc(CONFIG_FILE_MAX + 1);

	(void)state;
	assert_true(fd >= 0);
	assert_non_null(big);
	memset(big, ';', CONFIG_FILE_MAX);
	big[CONFIG_FILE_MAX] = '\n'; /* comments only, one byte too many */
	assert_int_equal(write(fd, big, CONFIG_FILE_MAX + 1), CONFIG_FILE_MAX + 1);
	assert_file_refused(path, -EFBIG, "larger than 1 MiB");
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, "[poll]\n\0interval_ms = 20\n", 26, 0), 26);
	assert_file_refused(path, -EINVAL, "NUL byte");
	close(fd);
	unlink(path);
	free(big);
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

/* ---- [registration] allow_users / allow_groups ---------------------------- */

static void test_allow_lists_take_names_and_ids(void **state)
{
	struct config c;

	(void)state;
	/* commas and/or blanks separate; empty entries are no entries */
	assert_ok("[registration]\nallow_users = root, 1000 4242,,\t7 ,\n", &c);
	assert_int_equal(c.n_allow_uids, 4);
	assert_int_equal(c.allow_uids[0], 0);
	assert_int_equal(c.allow_uids[1], 1000);
	assert_int_equal(c.allow_uids[2], 4242);
	assert_int_equal(c.allow_uids[3], 7);
	assert_int_equal(c.n_allow_gids, 0);
	assert_ok("[registration]\nallow_groups = root,36,4294967294\n", &c);
	assert_int_equal(c.n_allow_gids, 3);
	assert_int_equal(c.allow_gids[0], 0);
	assert_int_equal(c.allow_gids[1], 36);
	assert_int_equal(c.allow_gids[2], 4294967294u);
	assert_int_equal(c.n_allow_uids, 0);
	/* an id needs no passwd entry (containers, unmapped uids) */
	assert_ok("[registration]\nallow_users = 3999999999\n", &c);
	assert_int_equal(c.allow_uids[0], 3999999999u);
}

static void test_allow_lists_resolve_names_through_nss(void **state)
{
	struct passwd *pw = getpwuid(getuid());
	struct group *gr;
	char text[256];
	struct config c;

	(void)state;
	if (pw) {
		snprintf(text, sizeof(text), "[registration]\nallow_users = %s\n", pw->pw_name);
		assert_ok(text, &c);
		assert_int_equal(c.n_allow_uids, 1);
		assert_int_equal(c.allow_uids[0], getuid());
	}
	gr = getgrgid(getgid());
	if (gr) {
		snprintf(text, sizeof(text), "[registration]\nallow_groups = %s\n", gr->gr_name);
		assert_ok(text, &c);
		assert_int_equal(c.n_allow_gids, 1);
		assert_int_equal(c.allow_gids[0], getgid());
	}
}

static void test_allow_lists_count_duplicates_once(void **state)
{
	struct config c;

	(void)state;
	assert_ok("[registration]\nallow_users = root 0 0,root\nallow_groups = 5 5\n", &c);
	assert_int_equal(c.n_allow_uids, 1);
	assert_int_equal(c.allow_uids[0], 0);
	assert_int_equal(c.n_allow_gids, 1);
}

/* inih reads 200-byte lines: a long list goes on several lines, which add up */
static void test_allow_list_lines_add_up(void **state)
{
	struct config c;

	(void)state;
	assert_ok("[registration]\nallow_users = 1 2 3\nallow_groups = 9\nallow_users = 4, 2\n",
		  &c);
	assert_int_equal(c.n_allow_uids, 4);
	assert_int_equal(c.allow_uids[3], 4);
	assert_int_equal(c.n_allow_gids, 1);
	assert_ok("[registration]\nallow_groups = 1 2\nallow_groups =\n", &c);
	assert_int_equal(c.n_allow_gids, 2);
	assert_ok("[registration]\nallow_users = , ,\n", &c);
	assert_int_equal(c.n_allow_uids, 0);
}

static void test_unknown_user_or_group_names_line_key_and_name(void **state)
{
	(void)state;
	assert_refused(
	    "[registration]\nmax_sources = 10\n\nallow_users = root kvmstatd-no-such-user\n",
	    "t.ini:4: [registration] allow_users: unknown user "
	    "\"kvmstatd-no-such-user\"",
	    NULL);
	assert_refused("[registration]\nallow_groups = 0, kvmstatd-no-such-group\n",
		       "t.ini:2: [registration] allow_groups: unknown group "
		       "\"kvmstatd-no-such-group\"",
		       NULL);
	/* not digits only: a name, looked up as such */
	assert_refused("[registration]\nallow_users = 1000x\n",
		       "t.ini:2:", "unknown user \"1000x\"", NULL);
	assert_refused("[registration]\nallow_users = -1\n", "unknown user \"-1\"", NULL);
}

static void test_allow_list_ids_out_of_range_are_refused(void **state)
{
	(void)state;
	/* (uid_t)-1 means "no uid" to the kernel */
	assert_refused("[registration]\nallow_users = 4294967295\n",
		       "t.ini:2: [registration] allow_users: user id \"4294967295\" out of range",
		       "0..4294967294", NULL);
	assert_refused("[registration]\nallow_groups = 1 99999999999999999999999\n",
		       "t.ini:2: [registration] allow_groups: group id", "out of range", NULL);
}

/* "[registration]" and ids 1..n as key = lines of 32 ids each (a line holds 200 bytes) */
static void id_lines(char *text, size_t size, const char *key, int n)
{
	size_t len = (size_t)snprintf(text, size, "[registration]");

	for (int i = 1; i <= n; i++)
		len +=
		    (size_t)snprintf(text + len, size - len, "%s%s%s %d", i % 32 == 1 ? "\n" : "",
				     i % 32 == 1 ? key : "", i % 32 == 1 ? " =" : "", i);
	snprintf(text + len, size - len, "\n");
}

static void test_allow_lists_hold_at_most_64_entries(void **state)
{
	char text[1024];
	struct config c;

	(void)state;
	id_lines(text, sizeof(text), "allow_users", 64);
	assert_ok(text, &c);
	assert_int_equal(c.n_allow_uids, 64);
	assert_int_equal(c.allow_uids[0], 1);
	assert_int_equal(c.allow_uids[63], 64);
	/* a duplicate is no 65th entry */
	strcat(text, "allow_users = 64 1\n");
	assert_ok(text, &c);
	assert_int_equal(c.n_allow_uids, 64);
	strcat(text, "allow_users = 1, 65\n");
	assert_refused(text, "t.ini:5: [registration] allow_users: more than 64 users", NULL);
	id_lines(text, sizeof(text), "allow_groups", 64);
	assert_ok(text, &c);
	assert_int_equal(c.n_allow_gids, 64);
	id_lines(text, sizeof(text), "allow_groups", 65);
	assert_refused(text, "t.ini:4: [registration] allow_groups: more than 64 groups", NULL);
}

/* ---- [registration] limits and rates --------------------------------------- */

static void test_max_sources_per_uid_range_and_clamp(void **state)
{
	struct config c;

	(void)state;
	assert_refused("[registration]\nmax_sources_per_uid = 0\n",
		       "t.ini:2: [registration] max_sources_per_uid: out of range", "1..20000",
		       NULL);
	assert_refused("[registration]\nmax_sources_per_uid = 20001\n", "out of range", NULL);
	assert_ok("[registration]\nmax_sources_per_uid = 1\n", &c);
	assert_int_equal(c.max_sources_per_uid, 1);
	/* above max_sources: lowered to it, whichever key comes first */
	assert_ok("[registration]\nmax_sources = 1000\n", &c);
	assert_int_equal(c.max_sources_per_uid, 1000);
	assert_ok("[registration]\nmax_sources_per_uid = 5000\nmax_sources = 2000\n", &c);
	assert_int_equal(c.max_sources_per_uid, 2000);
	assert_ok("[registration]\nmax_sources = 2000\nmax_sources_per_uid = 1999\n", &c);
	assert_int_equal(c.max_sources_per_uid, 1999);
}

static void test_rate_limit_and_burst_ranges(void **state)
{
	struct config c;

	(void)state;
	assert_ok("[registration]\nrate_limit = 1000000\nrate_burst = 1000000\n", &c);
	assert_int_equal(c.rate_limit, 1000000);
	assert_int_equal(c.rate_burst, 1000000);
	assert_ok("[registration]\nrate_limit = 0\n", &c);
	assert_int_equal(c.rate_limit, 0);
	assert_int_equal(c.rate_burst, 1000);
	assert_refused("[registration]\nrate_limit = 1000001\n",
		       "t.ini:2: [registration] rate_limit: out of range", "0..1000000", NULL);
	assert_refused("[registration]\nrate_limit = -1\n", "[registration] rate_limit",
		       "not a non-negative integer", NULL);
	assert_refused("[registration]\n\nrate_burst = 0\n",
		       "t.ini:3: [registration] rate_burst: out of range", "1..1000000", NULL);
	assert_refused("[registration]\nrate_burst = 1000001\n", "out of range", NULL);
}

/* ---- [discovery], [daemon] sandbox ------------------------------------------ */

static void test_discovery_keys(void **state)
{
	struct config c;

	(void)state;
	assert_ok("[discovery]\nenabled = no\ninterval_s = 0\n", &c);
	assert_false(c.discovery_enabled);
	assert_int_equal(c.discovery_interval_s, 0);
	assert_ok("[discovery]\nenabled = yes\ninterval_s = 86400\n", &c);
	assert_true(c.discovery_enabled);
	assert_int_equal(c.discovery_interval_s, 86400);
	assert_refused("[discovery]\ninterval_s = 86401\n",
		       "t.ini:2: [discovery] interval_s: out of range", "0..86400", NULL);
	assert_refused("[discovery]\nenabled = sometimes\n",
		       "t.ini:2: [discovery] enabled: not a boolean", "\"sometimes\"",
		       "yes/no, true/false or 1/0", NULL);
	assert_refused("[discovery]\ninterval = 5\n", "t.ini:2:", "[discovery] interval",
		       "unknown key", NULL);
	/* the keys belong to [discovery] only */
	assert_refused("[poll]\ninterval_s = 5\n", "[poll] interval_s", "unknown key", NULL);
	assert_refused("[registration]\nenabled = yes\n", "unknown key", NULL);
}

static void test_booleans_take_yes_no_true_false_1_0(void **state)
{
	static const char *const yes[] = { "yes", "true", "1", "Yes", "TRUE" };
	static const char *const no[] = { "no", "false", "0", "NO", "False" };
	static const char *const bad[] = { "", "2", "on", "off", "y", "n", "yess", "01", "-1" };
	char text[128];
	struct config c;

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(text, sizeof(text), "[daemon]\nsandbox = %s\n", yes[i]);
		assert_ok(text, &c);
		assert_true(c.sandbox);
		snprintf(text, sizeof(text), "[daemon]\nsandbox = %s\n", no[i]);
		assert_ok(text, &c);
		assert_false(c.sandbox);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[daemon]\nsandbox = %s\n", bad[i]);
		assert_refused(text, "t.ini:2: [daemon] sandbox: not a boolean",
			       "(yes/no, true/false or 1/0)", NULL);
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

/* ---- [metrics] ---------------------------------------------------------------- */

static void test_metrics_keys_are_set(void **state)
{
	struct config c;

	(void)state;
	assert_ok("[metrics]\n"
		  "include = kvm_vcpu_(exits|halt_.*)|kvm_vm_pages_4k\n"
		  "exclude = kvm_vcpu_halt_wait_seconds\n"
		  "vcpu_series = per_vm\n"
		  "histograms = no\n"
		  "created = false\n"
		  "max_series = 5000\n",
		  &c);
	assert_string_equal(c.metrics_include, "kvm_vcpu_(exits|halt_.*)|kvm_vm_pages_4k");
	assert_string_equal(c.metrics_exclude, "kvm_vcpu_halt_wait_seconds");
	assert_string_equal(c.vcpu_series, "per_vm");
	assert_false(c.histograms);
	assert_false(c.created);
	assert_int_equal(c.max_series, 5000);
	assert_ok("[metrics]\nvcpu_series = per_vcpu\nhistograms = 1\ncreated = yes\n", &c);
	assert_string_equal(c.vcpu_series, "per_vcpu");
	assert_true(c.histograms);
	assert_true(c.created);
	/* an empty pattern is "not set" */
	assert_ok("[metrics]\ninclude =\nexclude =\n", &c);
	assert_string_equal(c.metrics_include, "");
	assert_string_equal(c.metrics_exclude, "");
}

static void test_bad_metrics_regex_names_key_line_and_value(void **state)
{
	(void)state;
	assert_refused("[metrics]\n\ninclude = kvm_(vcpu\n",
		       "t.ini:3:", "[metrics] include:", "\"kvm_(vcpu\"", NULL);
	assert_refused("[metrics]\ninclude = kvm_.*\nexclude = [a-\n",
		       "t.ini:3:", "[metrics] exclude:", "\"[a-\"", NULL);
	assert_refused("[metrics]\nexclude = a{2,1}\n", "t.ini:2:", "[metrics] exclude:", NULL);
	/* the message says why: the regex library's sentence, not a generic one */
	{
		struct config c;

		assert_int_equal(load(&c, "[metrics]\ninclude = (\n"), -EINVAL);
		assert_null(strstr(err, "value too long"));
		assert_true(strlen(err) > strlen("t.ini:2: [metrics] include: : \"(\""));
	}
}

static void test_vcpu_series_takes_per_vcpu_or_per_vm_only(void **state)
{
	static const char *const bad[] = { "per_VM", "pervm",	"per-vm",    "vm",
					   "vcpu",   "per_vm2", "per_vcpus", "1" };
	char text[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[metrics]\nvcpu_series = %s\n", bad[i]);
		assert_refused(text, "t.ini:2:", "[metrics] vcpu_series", "per_vcpu or per_vm",
			       bad[i], NULL);
	}
	assert_refused("[metrics]\nvcpu_series =\n", "t.ini:2:", "[metrics] vcpu_series", NULL);
	/* longer than the field: refused, not cut to "per_vm..." */
	assert_refused("[metrics]\nvcpu_series = per_vm_per_vm_per_vm\n",
		       "t.ini:2:", "[metrics] vcpu_series", NULL);
}

static void test_max_series_range(void **state)
{
	struct config c;

	(void)state;
	assert_ok("[metrics]\nmax_series = 0\n", &c);
	assert_int_equal(c.max_series, 0);
	assert_ok("[metrics]\nmax_series = 1\n", &c);
	assert_int_equal(c.max_series, 1);
	assert_ok("[metrics]\nmax_series = 100000000\n", &c);
	assert_int_equal(c.max_series, 100000000);
	assert_refused("[metrics]\nmax_series = 100000001\n", "t.ini:2:", "[metrics] max_series",
		       "out of range", "0..100000000", NULL);
	assert_refused("[metrics]\nmax_series = -1\n", "[metrics] max_series",
		       "not a non-negative integer", NULL);
	assert_refused("[metrics]\nmax_series = 10k\n", "[metrics] max_series", NULL);
	assert_refused("[metrics]\nmax_series = 18446744073709551616\n", "[metrics] max_series",
		       NULL);
}

static void test_histograms_and_created_are_booleans(void **state)
{
	(void)state;
	assert_refused("[metrics]\nhistograms = maybe\n", "t.ini:2:", "[metrics] histograms",
		       "not a boolean", NULL);
	assert_refused("[metrics]\ncreated = on\n", "t.ini:2:", "[metrics] created",
		       "not a boolean", NULL);
}

static void test_metrics_pattern_as_long_as_a_line_allows_is_kept_whole(void **state)
{
	char text[256], pat[200];
	struct config c;
	size_t n = 180;

	(void)state;
	/* "include = " + pattern + "\n" within inih's 200-byte line */
	for (size_t i = 0; i < n; i++)
		pat[i] = "kvm_(a|b)."[i % 10];
	pat[n] = '\0';
	snprintf(text, sizeof(text), "[metrics]\ninclude = %s\n", pat);
	assert_ok(text, &c);
	assert_string_equal(c.metrics_include, pat);
}

static void test_repeated_include_and_exclude_add_alternatives(void **state)
{
	char text[4096], line[256];
	struct config c;
	size_t n = 0;

	(void)state;
	assert_ok("[metrics]\ninclude = kvm_vcpu_exits_total\ninclude = kvm_vm_pages_.*\n"
		  "exclude = a\nexclude =\nexclude = b\n",
		  &c);
	assert_string_equal(c.metrics_include, "kvm_vcpu_exits_total|kvm_vm_pages_.*");
	assert_string_equal(c.metrics_exclude, "a|b");
	/* each line must compile on its own: the bad one is named */
	assert_refused("[metrics]\ninclude = a\ninclude = (b\n", "t.ini:3:", "[metrics] include",
		       "\"(b\"", NULL);
	/* past 1024 bytes in all: refused at the line that passes it */
	memset(line, 'x', 150);
	line[150] = '\0';
	n += (size_t)snprintf(text + n, sizeof(text) - n, "[metrics]\n");
	for (int i = 0; i < 7; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "include = %s\n", line);
	assert_refused(text, "t.ini:8:", "[metrics] include", "1024", NULL);
	text[n - strlen(line) - strlen("include = \n")] = '\0'; /* six lines: 905 bytes */
	assert_ok(text, &c);
	assert_int_equal(strlen(c.metrics_include), 6 * 150 + 5);
}

static void test_unknown_metrics_key_is_refused(void **state)
{
	(void)state;
	assert_refused("[metrics]\nhistogram = no\n", "t.ini:2:", "[metrics] histogram",
		       "unknown key", NULL);
}

#define HASH_A "$2b$04$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"
#define HASH_Y "$2y$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"

static void test_http_hardening_keys(void **state)
{
	struct config c;

	(void)state;
	assert_ok("[http]\nmax_connections_per_ip = 0\nthreads = 16\nmax_headers = 1\n"
		  "max_request_bytes = 1048576\n",
		  &c);
	assert_int_equal(c.max_connections_per_ip, 0);
	assert_int_equal(c.threads, 16);
	assert_int_equal(c.max_headers, 1);
	assert_int_equal(c.max_request_bytes, 1048576);
	assert_refused("[http]\nthreads = 0\n", "t.ini:2: [http] threads", "1..16", NULL);
	assert_refused("[http]\nthreads = 17\n", "[http] threads", NULL);
	assert_refused("[http]\nmax_connections_per_ip = 1025\n", "0..1024", NULL);
	assert_refused("[http]\nmax_headers = 0\n", "[http] max_headers", NULL);
	assert_refused("[http]\nmax_request_bytes = 4095\n", "4096..1048576", NULL);
	assert_refused("[http]\nmax_connections = 2\nthreads = 3\n",
		       "t.ini: [http] threads: more than max_connections", NULL);
}

static void test_web_tls_keys(void **state)
{
	struct config c;

	(void)state;
	assert_ok("[web]\ntls_cert_file = /etc/k/cert.pem\ntls_key_file = /etc/k/key.pem\n"
		  "tls_min_version = TLS13\ntls_client_auth_type = RequireAndVerifyClientCert\n"
		  "tls_client_ca_file = /etc/k/ca.pem\n",
		  &c);
	assert_string_equal(c.tls_cert_file, "/etc/k/cert.pem");
	assert_string_equal(c.tls_key_file, "/etc/k/key.pem");
	assert_string_equal(c.tls_client_ca_file, "/etc/k/ca.pem");
	assert_string_equal(c.tls_min_version, "TLS13");
	assert_int_equal(c.client_auth, CLIENT_AUTH_REQUIRE_VERIFY);
	assert_ok("[web]\ntls_cert_file = /c\ntls_key_file = /k\n"
		  "tls_client_auth_type = VerifyClientCertIfGiven\ntls_client_ca_file = /ca\n",
		  &c);
	assert_int_equal(c.client_auth, CLIENT_AUTH_VERIFY_IF_GIVEN);
}

static void test_web_tls_errors(void **state)
{
	(void)state;
	assert_refused("[web]\ntls_cert_file = cert.pem\n", "t.ini:2: [web] tls_cert_file",
		       "absolute path", NULL);
	assert_refused("[web]\ntls_cert_file = /c\n",
		       "t.ini: [web] tls_cert_file and tls_key_file: set both or neither", NULL);
	assert_refused("[web]\ntls_key_file = /k\n", "set both or neither", NULL);
	assert_refused("[web]\ntls_min_version = TLS11\n", "t.ini:2: [web] tls_min_version",
		       "TLS12 or TLS13", NULL);
	assert_refused("[web]\ntls_min_version = tls12\n", "must be TLS12 or TLS13", NULL);
	assert_refused("[web]\ntls_client_auth_type = RequireAnyClientCert\n",
		       "[web] tls_client_auth_type", "not supported", NULL);
	assert_refused("[web]\ntls_client_auth_type = RequestClientCert\n", "not supported", NULL);
	assert_refused("[web]\ntls_client_auth_type = Sometimes\n", "must be NoClientCert", NULL);
	assert_refused("[web]\ntls_cert_file = /c\ntls_key_file = /k\n"
		       "tls_client_auth_type = RequireAndVerifyClientCert\n",
		       "needs tls_client_ca_file", NULL);
	assert_refused("[web]\ntls_cert_file = /c\ntls_key_file = /k\ntls_client_ca_file = /ca\n",
		       "tls_client_auth_type is NoClientCert", NULL);
	assert_refused("[web]\ntls_client_auth_type = RequireAndVerifyClientCert\n"
		       "tls_client_ca_file = /ca\n",
		       "client certificates need TLS", NULL);
	assert_refused("[web]\nkey_file = /k\n", "t.ini:2: [web] key_file: unknown key", NULL);
}

static void test_basic_auth_users(void **state)
{
	struct config c;

	(void)state;
	assert_ok("[basic_auth_users]\n", &c);
	assert_int_equal(c.n_auth_users, 0);
	assert_ok("[basic_auth_users]\nalice = " HASH_A "\nBob.Smith@example = " HASH_Y "\n", &c);
	assert_int_equal(c.n_auth_users, 2);
	assert_string_equal(c.auth_users[0].name, "alice");
	assert_string_equal(c.auth_users[0].hash, HASH_A);
	assert_string_equal(c.auth_users[1].name, "Bob.Smith@example");
	assert_string_equal(c.auth_users[1].hash, HASH_Y);
}

static void test_basic_auth_users_errors(void **state)
{
	char text[8192];
	size_t n;

	(void)state;
	assert_refused("[basic_auth_users]\nalice = $6$salt$abc\n",
		       "t.ini:2: [basic_auth_users] alice: not a bcrypt hash", NULL);
	assert_refused("[basic_auth_users]\nalice = plaintext\n", "not a bcrypt hash", NULL);
	assert_refused("[basic_auth_users]\nalice = $2b$03$abcdefghijklmnopqrstuuABCDEFGHIJKL"
		       "MNOPQRSTUVWXYZ01234\n",
		       "not a bcrypt hash", NULL);
	assert_refused("[basic_auth_users]\nalice = " HASH_A "\nalice = " HASH_Y "\n",
		       "t.ini:3: [basic_auth_users] alice: user listed twice", NULL);
	assert_refused("[basic_auth_users]\n"
		       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa = " HASH_A
		       "\n",
		       "a user name is 1..63 bytes", NULL);
	/* the message never shows the hash */
	assert_refused("[basic_auth_users]\nalice = $1$secrethash\n", "alice", NULL);
	assert_null(strstr(err, "secrethash"));
	n = (size_t)snprintf(text, sizeof(text), "[basic_auth_users]\n");
	for (int i = 0; i <= CONFIG_AUTH_USERS_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "u%d = %s\n", i, HASH_A);
	assert_refused(text, "t.ini:66: [basic_auth_users] u64: more than 64 users", NULL);
}

static void test_history_slots_follow_history_s_over_interval_with_a_cap(void **state)
{
	struct config c;

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_history_slots(&c), 62); /* 60 s at 1 s, newest, writer's */
	c.interval_ms = 300;				/* 200 samples, rounded up */
	assert_int_equal(config_history_slots(&c), 202);
	c.history_s = 0;
	assert_int_equal(config_history_slots(&c), 0);
	c.history_s = 3600;
	c.interval_ms = 10;
	assert_int_equal(config_history_slots(&c), CONFIG_HISTORY_SLOTS_MAX);
	assert_ok("[poll]\nhistory_s = 3600\n", &c);
	assert_int_equal(c.history_s, 3600);
	assert_refused("[poll]\nhistory_s = 3601\n", "t.ini:2:", "[poll] history_s", "0..3600",
		       NULL);
	assert_ok("[poll]\nhistory_max_mib = 1\n", &c);
	assert_int_equal(c.history_max_mib, 1);
	assert_refused("[poll]\nhistory_max_mib = 0\n", "[poll] history_max_mib", "1..1048576",
		       NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_are_the_documented_values),
		cmocka_unit_test(test_shipped_config_file_states_the_defaults),
		cmocka_unit_test(test_valid_file_sets_every_key),
		cmocka_unit_test(test_empty_file_keeps_the_defaults),
		cmocka_unit_test(test_repeated_section_is_refused_naming_both_lines),
		cmocka_unit_test(test_repeated_scalar_key_is_refused_naming_both_lines),
		cmocka_unit_test(test_list_keys_add_up_when_repeated),
		cmocka_unit_test(test_config_that_is_not_a_regular_file_is_refused),
		cmocka_unit_test(test_config_larger_than_the_bound_or_with_nul_is_refused),
		cmocka_unit_test(test_schedstat_follows_the_bpf_key_and_only_off_stops_it),
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
		cmocka_unit_test(test_allow_lists_take_names_and_ids),
		cmocka_unit_test(test_allow_lists_resolve_names_through_nss),
		cmocka_unit_test(test_allow_lists_count_duplicates_once),
		cmocka_unit_test(test_allow_list_lines_add_up),
		cmocka_unit_test(test_unknown_user_or_group_names_line_key_and_name),
		cmocka_unit_test(test_allow_list_ids_out_of_range_are_refused),
		cmocka_unit_test(test_allow_lists_hold_at_most_64_entries),
		cmocka_unit_test(test_max_sources_per_uid_range_and_clamp),
		cmocka_unit_test(test_rate_limit_and_burst_ranges),
		cmocka_unit_test(test_discovery_keys),
		cmocka_unit_test(test_booleans_take_yes_no_true_false_1_0),
		cmocka_unit_test(test_listen_accepts_the_four_forms),
		cmocka_unit_test(test_listen_refuses_malformed_addresses),
		cmocka_unit_test(test_listen_refuses_hosts_longer_than_the_buffer),
		cmocka_unit_test(test_listen_port_is_digits_only),
		cmocka_unit_test(test_metrics_keys_are_set),
		cmocka_unit_test(test_bad_metrics_regex_names_key_line_and_value),
		cmocka_unit_test(test_vcpu_series_takes_per_vcpu_or_per_vm_only),
		cmocka_unit_test(test_max_series_range),
		cmocka_unit_test(test_histograms_and_created_are_booleans),
		cmocka_unit_test(test_metrics_pattern_as_long_as_a_line_allows_is_kept_whole),
		cmocka_unit_test(test_repeated_include_and_exclude_add_alternatives),
		cmocka_unit_test(test_unknown_metrics_key_is_refused),
		cmocka_unit_test(test_http_hardening_keys),
		cmocka_unit_test(test_web_tls_keys),
		cmocka_unit_test(test_web_tls_errors),
		cmocka_unit_test(test_basic_auth_users),
		cmocka_unit_test(test_basic_auth_users_errors),
		cmocka_unit_test(test_history_slots_follow_history_s_over_interval_with_a_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
