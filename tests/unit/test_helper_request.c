/* SPDX-License-Identifier: MIT */
/*
 * test_helper_request - helper_serve_request on a real socketpair: what
 * is a hang-up, what is a request, and that no received fd outlives the
 * call whatever the verdict (issue 14: a datagram of no bytes carrying fds
 * was taken for a hang-up and its fds were never closed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fdpass.h"
#include "fdcheck.h"
#include "helper_request.h"
#include "policy.h"
#include "sysops.h"
#include "vmtable.h"
#include "log.h"

struct fixture {
	struct config cfg;
	struct fdcheck fc;
	struct sysops ops;
	struct policy *policy;
	struct vmtable vt;
	struct registrar reg;
	uint64_t rejected[REJ__COUNT]; /* refusals, counted as the helper's loop does */
	struct conn c;
	int peer;
	int baseline;
};

static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n - 1;
}

static int setup(void **state)
{
	static struct fixture f;
	int sv[2];

	memset(&f, 0, sizeof(f));
	log_set_level(LOG_LVL_ERR);
	f.baseline = fd_count();
	config_defaults(&f.cfg);
	f.cfg.discovery_enabled = false;
	assert_int_equal(fdcheck_init(&f.fc), 0);
	sysops_init(&f.ops, &f.fc);
	assert_int_equal(policy_new(&f.policy, &f.cfg), 0);
	vmtable_init(&f.vt, &f.cfg, f.policy, &f.ops);
	registrar_init(&f.reg, &f.vt);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	f.c = (struct conn){ .tag = TAG_CONN,
			     .fd = sv[0],
			     .pid = getpid(),
			     .uid = getuid(),
			     .gid = getgid(),
			     .pidfd = -1 };
	f.peer = sv[1];
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->c.fd);
	if (f->peer >= 0)
		close(f->peer);
	vmtable_fini(&f->vt);
	policy_free(f->policy);
	assert_int_equal(fd_count(), f->baseline);
	return 0;
}

/* n eventfds sent with data (len bytes) in one datagram; ours closed after. */
static void send_with_fds(int sock, const void *data, size_t len, size_t n)
{
	int fds[FDPASS_MAX_FDS] = { 0 };

	for (size_t i = 0; i < n; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(fdpass_send(sock, data, len, fds, n), 0);
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/* One request served, its refusal counted as the helper's loop does. */
static int serve(struct fixture *f)
{
	struct verdict v;
	int rc = helper_serve_request(&f->reg, &f->c, &v);

	if (v.answered && v.status)
		f->rejected[v.reason]++;
	return rc;
}

static int32_t reply_status(int sock, uint32_t *seq)
{
	struct kvmstat_msg_reply r;

	assert_int_equal(recv(sock, &r, sizeof(r), MSG_DONTWAIT), sizeof(r));
	*seq = r.hdr.seq;
	return r.body.status;
}

static void test_empty_datagram_with_fds_is_a_refused_request(void **state)
{
	struct fixture *f = *state;
	int before = fd_count();
	uint32_t seq;

	send_with_fds(f->peer, "", 0, 64);
	assert_true(serve(f) < 0); /* a bad message: not heard twice */
	assert_int_equal(fd_count(), before);
	assert_int_equal(reply_status(f->peer, &seq), -EBADMSG);
	assert_int_equal(seq, 0);
	assert_int_equal(f->rejected[REJ_BAD_MESSAGE], 1);
}

static void test_empty_datagram_without_fds_is_a_hang_up(void **state)
{
	struct fixture *f = *state;
	char b;

	assert_int_equal(send(f->peer, "", 0, 0), 0);
	assert_true(serve(f) < 0);
	assert_int_equal(recv(f->peer, &b, 1, MSG_DONTWAIT), -1); /* no answer */
	for (int r = 0; r < REJ__COUNT; r++)
		assert_int_equal(f->rejected[r], 0);
}

static void test_peer_gone_is_a_hang_up(void **state)
{
	struct fixture *f = *state;

	close(f->peer);
	f->peer = -1;
	assert_true(serve(f) < 0);
	for (int r = 0; r < REJ__COUNT; r++)
		assert_int_equal(f->rejected[r], 0);
}

static void test_nothing_to_read_keeps_the_connection(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(serve(f), 0);
}

static void test_fds_of_a_refused_request_are_closed(void **state)
{
	struct fixture *f = *state;
	struct kvmstat_msg_register_vm m = { .hdr = { KVMSTAT_PROTO_MAGIC, KVMSTAT_PROTO_VERSION,
						      KVMSTAT_MSG_REGISTER_VM, sizeof(m), 42 } };
	int before = fd_count();
	uint32_t seq;

	send_with_fds(f->peer, &m, sizeof(m), 3); /* eventfds are no stats fds */
	assert_true(serve(f) < 0);
	assert_int_equal(fd_count(), before);
	assert_int_equal(reply_status(f->peer, &seq), -EBADF);
	assert_int_equal(seq, 42);
}

static void test_fds_beyond_a_request_and_too_long_datagrams_are_closed(void **state)
{
	struct fixture *f = *state;
	char big[4096] = { 0 };
	int before = fd_count();

	send_with_fds(f->peer, big, 10, FDPASS_MAX_FDS); /* 253 fds: more than 64 */
	assert_true(serve(f) < 0);
	assert_int_equal(fd_count(), before);
	send_with_fds(f->peer, big, sizeof(big), 5); /* cut: longer than any request */
	assert_true(serve(f) < 0);
	assert_int_equal(fd_count(), before);
	assert_int_equal(f->rejected[REJ_FD_COUNT], 1);
	assert_int_equal(f->rejected[REJ_BAD_MESSAGE], 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_empty_datagram_with_fds_is_a_refused_request,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_datagram_without_fds_is_a_hang_up, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_peer_gone_is_a_hang_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nothing_to_read_keeps_the_connection, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fds_of_a_refused_request_are_closed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
		    test_fds_beyond_a_request_and_too_long_datagrams_are_closed, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
