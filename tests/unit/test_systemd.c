/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of what kvmstatd parses from its service manager: the names
 * and kinds of inherited sockets (activation_match), NOTIFY_SOCKET
 * (notify_parse_address), what a reload may change (reload_merge), and
 * JOURNAL_STREAM and the journal's native protocol (journal.h).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "activation.h"
#include "journal.h"
#include "notify.h"
#include "reload.h"

static int match(const char *const *names, const enum activation_kind *kinds, size_t n, int *h,
		 int *r, char *err)
{
	return activation_match(names, kinds, n, h, r, err, 256);
}

static void test_named_sockets_find_their_jobs_in_any_order(void **state)
{
	const char *names[] = { "register", "http" };
	const enum activation_kind kinds[] = { ACT_KIND_SEQPACKET, ACT_KIND_TCP };
	char err[256];
	int h, r;

	(void)state;
	assert_int_equal(match(names, kinds, 2, &h, &r, err), 0);
	assert_int_equal(h, 1);
	assert_int_equal(r, 0);
	assert_int_equal(match(names + 1, kinds + 1, 1, &h, &r, err), 0);
	assert_int_equal(h, 0);
	assert_int_equal(r, -1);
	assert_int_equal(match(NULL, NULL, 0, &h, &r, err), 0);
	assert_int_equal(h, -1);
	assert_int_equal(r, -1);
}

static void test_unnamed_sockets_are_matched_by_kind(void **state)
{
	const char *names[] = { "unknown", "" };
	const enum activation_kind kinds[] = { ACT_KIND_TCP, ACT_KIND_SEQPACKET };
	char err[256];
	int h, r;

	(void)state;
	assert_int_equal(match(names, kinds, 2, &h, &r, err), 0);
	assert_int_equal(h, 0);
	assert_int_equal(r, 1);
	assert_int_equal(match(NULL, kinds, 2, &h, &r, err), 0); /* no names at all */
	assert_int_equal(h, 0);
	assert_int_equal(r, 1);
}

static void test_wrong_kind_unknown_name_and_doubles_are_refused(void **state)
{
	const char *named[] = { "http", "http" };
	const enum activation_kind tcp2[] = { ACT_KIND_TCP, ACT_KIND_TCP };
	const char *reg[] = { "register" };
	const enum activation_kind tcp[] = { ACT_KIND_TCP }, other[] = { ACT_KIND_OTHER };
	const char *metrics[] = { "metrics" }, *unnamed[] = { "unknown" };
	char err[256];
	int h, r;

	(void)state;
	assert_int_equal(match(named, tcp2, 2, &h, &r, err), -EINVAL);
	assert_string_equal(err, "two sockets for HTTP (fds 3 and 4)");
	assert_int_equal(match(reg, tcp, 1, &h, &r, err), -EINVAL);
	assert_string_equal(err, "socket fd 3 (\"register\") is a TCP stream socket, expected a "
				 "UNIX seqpacket socket");
	assert_int_equal(match(metrics, tcp, 1, &h, &r, err), -EINVAL);
	assert_non_null(strstr(err, "socket fd 3 (\"metrics\", a TCP stream socket): not one"));
	assert_int_equal(match(unnamed, other, 1, &h, &r, err), -EINVAL);
	assert_non_null(strstr(err, "not one of ours"));
}

static void test_hostile_names_and_counts_are_refused(void **state)
{
	enum activation_kind kinds[ACTIVATION_MAX_FDS + 1];
	const char *names[ACTIVATION_MAX_FDS + 1];
	char long_name[ACTIVATION_NAME_MAX + 2], err[256];
	const char *ctl[] = { "ht\ntp" }, *lng[] = { long_name };
	int h, r;

	(void)state;
	for (size_t i = 0; i <= ACTIVATION_MAX_FDS; i++) {
		names[i] = "unknown";
		kinds[i] = ACT_KIND_TCP;
	}
	assert_int_equal(match(names, kinds, ACTIVATION_MAX_FDS + 1, &h, &r, err), -EINVAL);
	assert_string_equal(err, "9 sockets passed, at most 8 expected");
	assert_int_equal(match(ctl, kinds, 1, &h, &r, err), -EINVAL);
	assert_non_null(strstr(err, "not printable ASCII"));
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(match(lng, kinds, 1, &h, &r, err), -EINVAL);
	long_name[ACTIVATION_NAME_MAX] = '\0'; /* 255 bytes: fine, but not ours */
	assert_int_equal(match(lng, kinds, 1, &h, &r, err), -EINVAL);
	assert_non_null(strstr(err, "not one of ours"));
	assert_true(strlen(err) < 200); /* the name is cut in the sentence */
}

static void test_notify_socket_addresses(void **state)
{
	struct sockaddr_un sa;
	socklen_t len;
	char path[sizeof(sa.sun_path) + 1];

	(void)state;
	assert_int_equal(notify_parse_address("/run/systemd/notify", &sa, &len), 0);
	assert_string_equal(sa.sun_path, "/run/systemd/notify");
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 20);
	assert_int_equal(notify_parse_address("@abstract", &sa, &len), 0);
	assert_int_equal(sa.sun_path[0], '\0');
	assert_memory_equal(sa.sun_path + 1, "abstract", 8);
	assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + 9);
	assert_int_equal(notify_parse_address("relative", &sa, &len), -EINVAL);
	assert_int_equal(notify_parse_address("", &sa, &len), -EINVAL);
	assert_int_equal(notify_parse_address("@", &sa, &len), -EINVAL);
	assert_int_equal(notify_parse_address(NULL, &sa, &len), -EINVAL);
	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(notify_parse_address(path, &sa, &len), -EINVAL); /* 108 + NUL */
	path[sizeof(sa.sun_path) - 1] = '\0';
	assert_int_equal(notify_parse_address(path, &sa, &len), 0);
}

static char kept_keys[512];

static void note(const char *key, void *ctx)
{
	(*(unsigned *)ctx)++;
	strcat(kept_keys, key);
	strcat(kept_keys, ";");
}

static void test_reload_keeps_what_needs_a_restart(void **state)
{
	static struct config cur, next;
	unsigned calls = 0;

	(void)state;
	config_defaults(&cur);
	config_defaults(&next);
	kept_keys[0] = '\0';
	assert_int_equal(reload_merge(&cur, &next, note, &calls), 0);
	snprintf(next.listen, sizeof(next.listen), "127.0.0.1:9999");
	next.discovery_enabled = false;
	next.n_allow_uids = 1;
	next.allow_uids[0] = 1000;
	snprintf(next.tls_cert_file, sizeof(next.tls_cert_file), "/etc/x.crt");
	/* these apply at once */
	next.interval_ms = 250;
	snprintf(next.metrics_exclude, sizeof(next.metrics_exclude), "kvm_vcpu_exits");
	next.max_vcpus_per_vm = 8;
	assert_int_equal(reload_merge(&cur, &next, note, &calls), 4);
	assert_int_equal(calls, 4);
	assert_string_equal(kept_keys, "[registration] allow_users;[discovery] enabled;"
				       "[http] listen;[web] tls_cert_file;");
	assert_string_equal(next.listen, ":9735");
	assert_true(next.discovery_enabled);
	assert_int_equal(next.n_allow_uids, 0);
	assert_string_equal(next.tls_cert_file, "");
	assert_int_equal(next.interval_ms, 250);
	assert_string_equal(next.metrics_exclude, "kvm_vcpu_exits");
	assert_int_equal(next.max_vcpus_per_vm, 8);
	assert_int_equal(reload_merge(&cur, &next, NULL, NULL), 0); /* merged: nothing left */
	/* the fd limit measured at start-up is no key and stays */
	cur.fd_limit = 20000;
	assert_int_equal(reload_merge(&cur, &next, NULL, NULL), 0);
	assert_int_equal(next.fd_limit, 20000);
}

static void test_connections_per_uid_wait_for_a_restart(void **state)
{
	struct config cur, next;
	unsigned calls = 0;

	(void)state;
	config_defaults(&cur);
	config_defaults(&next);
	kept_keys[0] = '\0';
	next.max_connections_per_uid = 2; /* the policy holds the running bound */
	assert_int_equal(reload_merge(&cur, &next, note, &calls), 1);
	assert_string_equal(kept_keys, "[registration] max_connections_per_uid;");
	assert_int_equal(next.max_connections_per_uid, 16);
}

static void test_journal_stream_must_name_stderr_exactly(void **state)
{
	(void)state;
	assert_true(journal_stream_matches("8:12345", 8, 12345));
	assert_false(journal_stream_matches("8:12345", 8, 12346));
	assert_false(journal_stream_matches("9:12345", 8, 12345));
	assert_false(journal_stream_matches(NULL, 8, 12345));
	assert_false(journal_stream_matches("", 0, 0));
	assert_false(journal_stream_matches(":", 0, 0));
	assert_false(journal_stream_matches("8:", 8, 0));
	assert_false(journal_stream_matches("8:12345x", 8, 12345));
	assert_false(journal_stream_matches(" 8:12345", 8, 12345));
	assert_false(journal_stream_matches("-8:12345", 8, 12345));
	assert_false(journal_stream_matches("8:1:2", 8, 1));
	assert_true(journal_stream_matches("0:18446744073709551615", 0, 18446744073709551615ull));
	assert_false(journal_stream_matches("0:18446744073709551616", 0, 0));  /* overflow */
	assert_false(journal_stream_matches("0:000000000000000000001", 0, 1)); /* 21 digits */
}

static void test_journal_record_has_its_fields_and_a_binary_message(void **state)
{
	const struct log_fields f = { "web-1", 4242, "not_allowed" };
	const char expect_head[] = "PRIORITY=4\nSYSLOG_IDENTIFIER=kvmstatd\nKVMSTATD_ROLE=helper\n"
				   "KVMSTATD_VM\n\x05\0\0\0\0\0\0\0web-1\n"
				   "KVMSTATD_VMM_PID=4242\nKVMSTATD_REASON=not_allowed\n"
				   "MESSAGE\n\x07\0\0\0\0\0\0\0a\nb c d\n";
	char buf[512], small[40];
	int n;

	(void)state;
	n = journal_encode(buf, sizeof(buf), 4, "helper", &f, "a\nb c d");
	assert_int_equal(n, sizeof(expect_head) - 1);
	assert_memory_equal(buf, expect_head, sizeof(expect_head) - 1);
	/* no fields: only the fixed ones and the message */
	n = journal_encode(buf, sizeof(buf), 6, "worker", NULL, "hi");
	assert_int_equal(n, 11 + 27 + 21 + 19);
	assert_memory_equal(buf + n - 19, "MESSAGE\n\x02\0\0\0\0\0\0\0hi\n", 19);
	/* a reason or role with a newline would forge a field: refused */
	assert_int_equal(journal_encode(buf, sizeof(buf), 6, "wor\nker", NULL, "x"), -EINVAL);
	assert_int_equal(journal_encode(small, sizeof(small), 4, "helper", &f, "x"), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_named_sockets_find_their_jobs_in_any_order),
		cmocka_unit_test(test_unnamed_sockets_are_matched_by_kind),
		cmocka_unit_test(test_wrong_kind_unknown_name_and_doubles_are_refused),
		cmocka_unit_test(test_hostile_names_and_counts_are_refused),
		cmocka_unit_test(test_notify_socket_addresses),
		cmocka_unit_test(test_reload_keeps_what_needs_a_restart),
		cmocka_unit_test(test_connections_per_uid_wait_for_a_restart),
		cmocka_unit_test(test_journal_stream_must_name_stderr_exactly),
		cmocka_unit_test(test_journal_record_has_its_fields_and_a_binary_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
