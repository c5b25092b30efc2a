/* SPDX-License-Identifier: MIT */
/*
 * test_boot - the first message to an exec'd worker: what the helper sends
 * arrives whole (config, PEM texts, fds), and the worker refuses a message
 * from another build, an unsealed or wrongly sized memfd, a config string
 * without its NUL, a PEM text with one, or a wrong fd count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "boot.h"
#include "fdpass.h"

static void pair(int sp[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
}

static void some_config(struct config *cfg)
{
	config_defaults(cfg);
	snprintf(cfg->listen, sizeof(cfg->listen), "127.0.0.1:9999");
	snprintf(cfg->tls_cert_file, sizeof(cfg->tls_cert_file), "/etc/k/cert.pem");
	cfg->n_auth_users = 1;
	snprintf(cfg->auth_users[0].name, sizeof(cfg->auth_users[0].name), "alice");
	cfg->interval_ms = 1234;
}

static void test_what_is_sent_arrives_whole(void **state)
{
	struct config cfg;
	struct boot_pem pem = { { "CERT\n", "KEY\n", NULL } };
	struct boot *b = malloc(sizeof(*b));
	char why[256] = "";
	int sp[2], http[2];

	(void)state;
	some_config(&cfg);
	pair(sp);
	pair(http);
	assert_int_equal(boot_send(sp[0], &cfg, &pem, http[0], -1, BOOT_SELFTEST | BOOT_JOURNAL, 3),
			 0);
	assert_int_equal(boot_recv(sp[1], b, why, sizeof(why)), 0);
	assert_memory_equal(&b->cfg, &cfg, sizeof(cfg));
	assert_string_equal(b->pem.text[BOOT_CERT], "CERT\n");
	assert_string_equal(b->pem.text[BOOT_KEY], "KEY\n");
	assert_null(b->pem.text[BOOT_CA]);
	assert_true(b->http_fd > 2);
	/* the journal flag follows the fd, not the caller's word */
	assert_int_equal(b->journal_fd, -1);
	assert_int_equal(b->flags, BOOT_SELFTEST | BOOT_HTTP);
	assert_int_equal(b->log_level, 3);
	assert_true(fcntl(b->http_fd, F_GETFD) & FD_CLOEXEC);
	close(b->http_fd);
	boot_pem_free(&b->pem);
	assert_null(b->pem.text[BOOT_CERT]);
	free(b);
	close(sp[0]);
	close(sp[1]);
	close(http[0]);
	close(http[1]);
}

/* A hand-made boot message over a memfd holding body (sealed or not). */
static int recv_forged(const struct boot_msg *m, const void *body, size_t len, int seals,
		       size_t n_fds, char *why, size_t why_size)
{
	struct boot *b = malloc(sizeof(*b));
	int sp[2], fds[2], rc;

	pair(sp);
	fds[0] = memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	fds[1] = fds[0];
	assert_true(fds[0] >= 0);
	assert_int_equal(write(fds[0], body, len), (ssize_t)len);
	if (seals)
		assert_int_equal(fcntl(fds[0], F_ADD_SEALS, seals), 0);
	assert_int_equal(fdpass_send(sp[0], m, sizeof(*m), fds, n_fds), 0);
	rc = boot_recv(sp[1], b, why, why_size);
	if (rc == 0)
		boot_pem_free(&b->pem);
	free(b);
	close(fds[0]);
	close(sp[0]);
	close(sp[1]);
	return rc;
}

#define ALL_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

static struct boot_msg good_msg(uint32_t pem_len)
{
	struct boot_msg m = { .hdr = { BOOT_TYPE, sizeof(m) },
			      .config_size = sizeof(struct config),
			      .pem_len = { pem_len } };

	snprintf(m.version, sizeof(m.version), "%s", KVMSTATD_VERSION);
	return m;
}

struct body {
	struct config cfg;
	char pem[8];
};

static void test_forged_but_correct_is_accepted(void **state)
{
	struct boot_msg m = good_msg(8);
	struct body *x = calloc(1, sizeof(*x));
	char why[256] = "";

	(void)state;
	some_config(&x->cfg);
	memcpy(x->pem, "ABCDEFGH", 8);
	assert_int_equal(recv_forged(&m, x, sizeof(*x), ALL_SEALS, 1, why, sizeof(why)), 0);
	free(x);
}

static void test_another_build_is_refused(void **state)
{
	struct boot_msg m = good_msg(0);
	struct body *x = calloc(1, sizeof(*x));
	char why[256] = "";

	(void)state;
	some_config(&x->cfg);
	snprintf(m.version, sizeof(m.version), "9.9.9");
	assert_int_equal(recv_forged(&m, x, sizeof(x->cfg), ALL_SEALS, 1, why, sizeof(why)),
			 -EPROTO);
	assert_non_null(strstr(why, "another build"));
	m = good_msg(0);
	m.config_size = sizeof(struct config) - 8;
	assert_int_equal(recv_forged(&m, x, sizeof(x->cfg), ALL_SEALS, 1, why, sizeof(why)),
			 -EPROTO);
	free(x);
}

static void test_memfd_must_be_sealed_and_exactly_as_long(void **state)
{
	struct boot_msg m = good_msg(8);
	struct body *x = calloc(1, sizeof(*x));
	char why[256] = "";

	(void)state;
	some_config(&x->cfg);
	memcpy(x->pem, "ABCDEFGH", 8);
	assert_int_equal(recv_forged(&m, x, sizeof(*x), 0, 1, why, sizeof(why)), -EBADMSG);
	assert_non_null(strstr(why, "not sealed"));
	assert_int_equal(
	    recv_forged(&m, x, sizeof(*x), F_SEAL_SHRINK | F_SEAL_GROW, 1, why, sizeof(why)),
	    -EBADMSG);
	assert_int_equal(recv_forged(&m, x, sizeof(*x) - 1, ALL_SEALS, 1, why, sizeof(why)),
			 -EBADMSG);
	assert_non_null(strstr(why, "bytes long"));
	free(x);
}

static void test_strings_and_pem_texts_are_checked(void **state)
{
	struct boot_msg m = good_msg(8);
	struct body *x = calloc(1, sizeof(*x));
	char why[256] = "";

	(void)state;
	some_config(&x->cfg);
	memcpy(x->pem, "ABC\0EFGH", 8);
	assert_int_equal(recv_forged(&m, x, sizeof(*x), ALL_SEALS, 1, why, sizeof(why)), -EILSEQ);
	memcpy(x->pem, "ABCDEFGH", 8);
	memset(x->cfg.listen, 'x', sizeof(x->cfg.listen));
	assert_int_equal(recv_forged(&m, x, sizeof(*x), ALL_SEALS, 1, why, sizeof(why)), -EBADMSG);
	assert_non_null(strstr(why, "listen"));
	some_config(&x->cfg);
	memset(x->cfg.auth_users[0].hash, 'h', sizeof(x->cfg.auth_users[0].hash));
	assert_int_equal(recv_forged(&m, x, sizeof(*x), ALL_SEALS, 1, why, sizeof(why)), -EBADMSG);
	some_config(&x->cfg);
	x->cfg.n_auth_users = CONFIG_AUTH_USERS_MAX + 1;
	assert_int_equal(recv_forged(&m, x, sizeof(*x), ALL_SEALS, 1, why, sizeof(why)), -EBADMSG);
	free(x);
}

static void test_fd_count_and_flags_must_agree(void **state)
{
	struct boot_msg m = good_msg(0);
	struct body *x = calloc(1, sizeof(*x));
	char why[256] = "";

	(void)state;
	some_config(&x->cfg);
	m.flags = BOOT_HTTP; /* says two fds, sends one */
	assert_int_equal(recv_forged(&m, x, sizeof(x->cfg), ALL_SEALS, 1, why, sizeof(why)),
			 -EBADMSG);
	m.flags = 0; /* says one, sends two */
	assert_int_equal(recv_forged(&m, x, sizeof(x->cfg), ALL_SEALS, 2, why, sizeof(why)),
			 -EBADMSG);
	m.flags = 1u << 7; /* unknown */
	assert_int_equal(recv_forged(&m, x, sizeof(x->cfg), ALL_SEALS, 1, why, sizeof(why)),
			 -EBADMSG);
	m = good_msg(BOOT_PEM_MAX + 1);
	assert_int_equal(recv_forged(&m, x, sizeof(x->cfg), ALL_SEALS, 1, why, sizeof(why)),
			 -EBADMSG);
	free(x);
}

static void test_a_closed_channel_is_no_boot(void **state)
{
	struct boot *b = malloc(sizeof(*b));
	char why[256] = "";
	int sp[2];

	(void)state;
	pair(sp);
	close(sp[0]);
	assert_true(boot_recv(sp[1], b, why, sizeof(why)) < 0);
	assert_non_null(strstr(why, "no boot message"));
	close(sp[1]);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_what_is_sent_arrives_whole),
		cmocka_unit_test(test_forged_but_correct_is_accepted),
		cmocka_unit_test(test_another_build_is_refused),
		cmocka_unit_test(test_memfd_must_be_sealed_and_exactly_as_long),
		cmocka_unit_test(test_strings_and_pem_texts_are_checked),
		cmocka_unit_test(test_fd_count_and_flags_must_agree),
		cmocka_unit_test(test_a_closed_channel_is_no_boot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
