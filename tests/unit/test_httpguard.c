/* SPDX-License-Identifier: MIT */
/*
 * test_httpguard - who is served, turned away or cut: clients by address
 * and /64, the per-client bound, the whole-request deadline, the choice
 * of the connection cut for a newcomer, and the budget of failed checks.
 *
 * Connections are socketpairs: the guard shuts one end down, and the test
 * sees it as the end of the stream at the other.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpguard.h"

#define S 1000000000ull
#define MAXC 8

struct pair {
	int ours, theirs; /* the guard's end, the client's */
};

struct fixture {
	struct httpguard *g;
	struct pair p[MAXC + 8];
	unsigned slot[MAXC + 8];
	unsigned n;
};

static struct sockaddr_in v4(const char *a)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };

	assert_int_equal(inet_pton(AF_INET, a, &sa.sin_addr), 1);
	return sa;
}

static struct sockaddr_in6 v6(const char *a)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6 };

	assert_int_equal(inet_pton(AF_INET6, a, &sa.sin6_addr), 1);
	return sa;
}

static void setup_limits(struct fixture *f, unsigned per_client)
{
	struct httpguard_limits l = { .max_conns = 4,
				      .slots = 4 + 4,
				      .per_client = per_client,
				      .request_ns = 10 * S,
				      .fail_limit = 5,
				      .fail_window_ns = 60 * S };

	memset(f, 0, sizeof(*f));
	assert_int_equal(httpguard_new(&f->g, &l), 0);
}

/* Open a connection from address a at time t; returns its verdict. */
static enum httpguard_verdict open_from(struct fixture *f, const char *a, uint64_t t)
{
	struct sockaddr_in sa = v4(a);
	int sv[2];
	enum httpguard_verdict v;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	f->p[f->n] = (struct pair){ sv[0], sv[1] };
	assert_int_equal(
	    httpguard_open(f->g, sv[0], (struct sockaddr *)&sa, sizeof(sa), t, &f->slot[f->n], &v),
	    0);
	f->n++;
	return v;
}

/* Did the guard shut connection i down? */
static bool is_cut(const struct fixture *f, unsigned i)
{
	char c;

	return recv(f->p[i].theirs, &c, 1, MSG_DONTWAIT) == 0;
}

static void teardown_all(struct fixture *f)
{
	for (unsigned i = 0; i < f->n; i++) {
		close(f->p[i].ours);
		close(f->p[i].theirs);
	}
	httpguard_free(f->g);
}

static void test_ipv4_is_one_client_per_address_ipv6_per_64(void **state)
{
	struct sockaddr_in a = v4("192.0.2.1"), b = v4("192.0.2.2");
	struct sockaddr_in6 c = v6("2001:db8:1:2::1"), d = v6("2001:db8:1:2:ffff:1:2:3"),
			    e = v6("2001:db8:1:3::1"), m = v6("::ffff:192.0.2.1");
	struct httpguard_client ca, cb, cc, cd, ce, cm;
	char text[64];

	(void)state;
	httpguard_client_of((struct sockaddr *)&a, sizeof(a), &ca);
	httpguard_client_of((struct sockaddr *)&b, sizeof(b), &cb);
	httpguard_client_of((struct sockaddr *)&c, sizeof(c), &cc);
	httpguard_client_of((struct sockaddr *)&d, sizeof(d), &cd);
	httpguard_client_of((struct sockaddr *)&e, sizeof(e), &ce);
	httpguard_client_of((struct sockaddr *)&m, sizeof(m), &cm);
	assert_memory_not_equal(&ca, &cb, sizeof(ca));
	assert_memory_equal(&cc, &cd, sizeof(cc)); /* one /64 */
	assert_memory_not_equal(&cc, &ce, sizeof(cc));
	assert_memory_equal(&ca, &cm, sizeof(ca)); /* v4-mapped: the IPv4 address */
	httpguard_client_str(&ca, text, sizeof(text));
	assert_string_equal(text, "192.0.2.1");
	httpguard_client_str(&cd, text, sizeof(text));
	assert_string_equal(text, "2001:db8:1:2::/64");
}

static void test_a_client_past_its_share_is_turned_away(void **state)
{
	struct fixture f;

	(void)state;
	setup_limits(&f, 2);
	assert_int_equal(open_from(&f, "127.0.0.2", 0), GUARD_SERVE);
	assert_int_equal(open_from(&f, "127.0.0.2", 0), GUARD_SERVE);
	assert_int_equal(open_from(&f, "127.0.0.2", 0), GUARD_PER_CLIENT);
	assert_true(is_cut(&f, 2));
	assert_false(is_cut(&f, 0));
	assert_int_equal(open_from(&f, "127.0.0.3", 0), GUARD_SERVE);
	/* one of its own closes: the client is served again */
	httpguard_close(f.g, f.slot[0]);
	assert_int_equal(open_from(&f, "127.0.0.2", 0), GUARD_SERVE);
	assert_int_equal(httpguard_served(f.g), 3);
	teardown_all(&f);
}

static void test_the_deadline_runs_from_the_accept_or_the_last_answer(void **state)
{
	struct fixture f;

	(void)state;
	setup_limits(&f, 0);
	open_from(&f, "127.0.0.2", 0);	   /* trickles: never answered */
	open_from(&f, "127.0.0.3", 0);	   /* answered at 9 s: a new deadline */
	open_from(&f, "127.0.0.4", 5 * S); /* later */
	httpguard_answering(f.g, f.slot[1]);
	httpguard_answered(f.g, f.slot[1], 9 * S);
	/* a time read before a connection opened: it is not overdue (no wrap) */
	assert_int_equal(httpguard_sweep(f.g, 4 * S), 0);
	assert_false(is_cut(&f, 2));
	assert_int_equal(httpguard_sweep(f.g, 10 * S - 1), 0);
	assert_int_equal(httpguard_sweep(f.g, 10 * S), 1);
	assert_true(is_cut(&f, 0));
	assert_false(is_cut(&f, 1));
	assert_false(is_cut(&f, 2));
	assert_int_equal(httpguard_sweep(f.g, 15 * S), 1);
	assert_true(is_cut(&f, 2));
	assert_int_equal(httpguard_sweep(f.g, 19 * S), 1);
	assert_true(is_cut(&f, 1));
	assert_int_equal(httpguard_served(f.g), 0);
	teardown_all(&f);
}

/*
 * A full pool: the newcomer is served and one is cut: a connection without
 * a whole request before one being answered, of the client holding most,
 * the oldest; never one waiting for its password check.
 */
static void test_a_newcomer_to_a_full_pool_cuts_the_right_connection(void **state)
{
	struct fixture f;
	struct httpguard_counts n;

	(void)state;
	setup_limits(&f, 0);
	open_from(&f, "127.0.0.2", 1 * S); /* 0: answering */
	open_from(&f, "127.0.0.3", 2 * S); /* 1 */
	open_from(&f, "127.0.0.3", 3 * S); /* 2 */
	open_from(&f, "127.0.0.4", 0);	   /* 3: the oldest, alone */
	httpguard_answering(f.g, f.slot[0]);
	assert_int_equal(open_from(&f, "127.0.0.9", 4 * S), GUARD_SERVE_EVICTED);
	assert_true(is_cut(&f, 1)); /* .3 holds two: its oldest */
	assert_false(is_cut(&f, 3));
	assert_int_equal(open_from(&f, "127.0.0.9", 5 * S), GUARD_SERVE_EVICTED);
	assert_true(is_cut(&f, 3)); /* one each now: the oldest, .4's */
	/* 2 (.3) waits for its check, 4 and 5 (.9) have no request yet */
	httpguard_set_waiting(f.g, f.slot[2], true);
	assert_int_equal(open_from(&f, "127.0.0.10", 6 * S), GUARD_SERVE_EVICTED);
	assert_true(is_cut(&f, 4)); /* .9 holds most, its oldest */
	assert_false(is_cut(&f, 2));
	assert_false(is_cut(&f, 0)); /* being answered: last of all */
	httpguard_get_counts(f.g, &n);
	assert_int_equal(n.evicted, 3);
	assert_int_equal(httpguard_served(f.g), 4);
	teardown_all(&f);
}

static void test_a_full_pool_of_checks_turns_a_newcomer_away(void **state)
{
	struct fixture f;

	(void)state;
	setup_limits(&f, 0);
	for (unsigned i = 0; i < 4; i++) {
		open_from(&f, "127.0.0.2", 0);
		httpguard_set_waiting(f.g, f.slot[i], true);
	}
	assert_int_equal(open_from(&f, "127.0.0.3", S), GUARD_FULL);
	assert_true(is_cut(&f, 4));
	for (unsigned i = 0; i < 4; i++)
		assert_false(is_cut(&f, i));
	teardown_all(&f);
}

static void test_failed_checks_spend_a_budget_that_comes_back(void **state)
{
	struct fixture f;
	struct sockaddr_in a = v4("127.0.0.2"), b = v4("127.0.0.3");
	struct httpguard_client ca, cb;
	unsigned retry = 0;

	(void)state;
	setup_limits(&f, 0); /* 5 per 60 s: one back every 12 s */
	httpguard_client_of((struct sockaddr *)&a, sizeof(a), &ca);
	httpguard_client_of((struct sockaddr *)&b, sizeof(b), &cb);
	assert_false(httpguard_has_failed(f.g, &ca, 100 * S));
	for (int i = 0; i < 5; i++) {
		assert_int_equal(httpguard_may_check(f.g, &ca, 100 * S, &retry), 0);
		httpguard_check_failed(f.g, &ca, 100 * S);
	}
	assert_true(httpguard_has_failed(f.g, &ca, 100 * S));
	assert_false(httpguard_has_failed(f.g, &cb, 100 * S));
	assert_int_equal(httpguard_may_check(f.g, &ca, 100 * S, &retry), -EAGAIN);
	assert_int_equal(retry, 12);
	assert_int_equal(httpguard_may_check(f.g, &cb, 100 * S, &retry), 0); /* its own */
	assert_int_equal(httpguard_may_check(f.g, &ca, 112 * S - 1, &retry), -EAGAIN);
	assert_int_equal(retry, 1);
	assert_int_equal(httpguard_may_check(f.g, &ca, 112 * S, &retry), 0);
	httpguard_check_failed(f.g, &ca, 112 * S);
	assert_int_equal(httpguard_may_check(f.g, &ca, 112 * S, &retry), -EAGAIN);
	/* a whole window later: the whole budget, and a clean record */
	assert_false(httpguard_has_failed(f.g, &ca, 200 * S));
	for (int i = 0; i < 5; i++) {
		assert_int_equal(httpguard_may_check(f.g, &ca, 200 * S, &retry), 0);
		httpguard_check_failed(f.g, &ca, 200 * S);
	}
	teardown_all(&f);
}

/* Many clients that failed: the table forgets those that owe least first. */
static void test_the_failure_table_is_bounded_and_forgets_the_least_indebted(void **state)
{
	struct fixture f;
	struct sockaddr_in6 sa = v6("2001:db8::1");
	struct httpguard_client c, worst;
	unsigned retry;

	(void)state;
	setup_limits(&f, 0);
	/* the worst client: its budget spent */
	httpguard_client_of((struct sockaddr *)&sa, sizeof(sa), &worst);
	for (int i = 0; i < 5; i++)
		httpguard_check_failed(f.g, &worst, 0);
	/* then many /64s that fail once each */
	for (unsigned i = 1; i <= 3 * HTTPGUARD_FAIL_CLIENTS; i++) {
		sa.sin6_addr.s6_addr[6] = (uint8_t)(i >> 8);
		sa.sin6_addr.s6_addr[7] = (uint8_t)i;
		httpguard_client_of((struct sockaddr *)&sa, sizeof(sa), &c);
		httpguard_check_failed(f.g, &c, S);
	}
	assert_int_equal(httpguard_may_check(f.g, &worst, S, &retry), -EAGAIN);
	teardown_all(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_is_one_client_per_address_ipv6_per_64),
		cmocka_unit_test(test_a_client_past_its_share_is_turned_away),
		cmocka_unit_test(test_the_deadline_runs_from_the_accept_or_the_last_answer),
		cmocka_unit_test(test_a_newcomer_to_a_full_pool_cuts_the_right_connection),
		cmocka_unit_test(test_a_full_pool_of_checks_turns_a_newcomer_away),
		cmocka_unit_test(test_failed_checks_spend_a_budget_that_comes_back),
		cmocka_unit_test(test_the_failure_table_is_bounded_and_forgets_the_least_indebted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
