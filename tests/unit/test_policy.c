/* SPDX-License-Identifier: MIT */
/*
 * test_policy - who may register (allow lists), how fast (per-uid token
 * bucket over simulated time) and how much (per-uid charges), and that the
 * per-uid table stays bounded and correct under many uids.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "policy.h"

#define MS 1000000ull
#define SEC 1000000000ull

static char why[128];

static struct config base_config(void)
{
	struct config c;

	config_defaults(&c);
	return c;
}

static struct policy *new_policy(const struct config *c)
{
	struct policy *p = NULL;

	assert_int_equal(policy_new(&p, c), 0);
	assert_non_null(p);
	return p;
}

static int take(struct policy *p, uid_t uid, uint64_t now)
{
	why[0] = '\0';
	return policy_take_token(p, uid, now, why, sizeof(why));
}

static int charge(struct policy *p, uid_t uid, unsigned n)
{
	why[0] = '\0';
	return policy_charge(p, uid, n, why, sizeof(why));
}

static int admit(const struct policy *p, uid_t uid, gid_t gid, const gid_t *groups, size_t n)
{
	why[0] = '\0';
	return policy_admit(p, uid, gid, groups, n, why, sizeof(why));
}

static void assert_why_has(const char *part)
{
	if (!strstr(why, part))
		fail_msg("\"%s\" lacks \"%s\"", why, part);
}

/* ---- admission --------------------------------------------------------------- */

static void test_empty_lists_allow_everyone(void **state)
{
	struct config c = base_config();
	struct policy *p = new_policy(&c);
	gid_t groups[] = { 5, 6 };

	(void)state;
	assert_int_equal(admit(p, 0, 0, NULL, 0), 0);
	assert_int_equal(admit(p, 1000, 1000, groups, 2), 0);
	assert_int_equal(admit(p, 4294967294u, 4294967294u, NULL, 0), 0);
	policy_free(p);
}

static void test_admit_by_uid(void **state)
{
	struct config c = base_config();
	struct policy *p;

	(void)state;
	c.allow_uids[0] = 107;
	c.allow_uids[1] = 1000;
	c.n_allow_uids = 2;
	p = new_policy(&c);
	assert_int_equal(admit(p, 1000, 1000, NULL, 0), 0);
	assert_int_equal(admit(p, 107, 5, NULL, 0), 0);
	assert_int_equal(admit(p, 1001, 1000, NULL, 0), -EPERM);
	assert_string_equal(why, "uid 1001 is not in allow_users/allow_groups");
	/* a uid list says nothing about gids with the same number */
	assert_int_equal(admit(p, 2000, 1000, NULL, 0), -EPERM);
	policy_free(p);
}

static void test_admit_by_primary_gid(void **state)
{
	struct config c = base_config();
	struct policy *p;

	(void)state;
	c.allow_gids[0] = 36;
	c.n_allow_gids = 1;
	p = new_policy(&c);
	assert_int_equal(admit(p, 2000, 36, NULL, 0), 0);
	assert_int_equal(admit(p, 2000, 37, NULL, 0), -EPERM);
	assert_string_equal(why, "uid 2000 is not in allow_users/allow_groups");
	/* a gid list says nothing about uids with the same number */
	assert_int_equal(admit(p, 36, 37, NULL, 0), -EPERM);
	policy_free(p);
}

static void test_admit_by_supplementary_gid(void **state)
{
	struct config c = base_config();
	gid_t in[] = { 5, 7, 36 }, out[] = { 5, 7, 35 };
	struct policy *p;

	(void)state;
	c.allow_gids[0] = 999;
	c.allow_gids[1] = 36;
	c.n_allow_gids = 2;
	p = new_policy(&c);
	assert_int_equal(admit(p, 2000, 100, in, 3), 0);
	assert_int_equal(admit(p, 2000, 100, out, 3), -EPERM);
	/* only the n_groups given count */
	assert_int_equal(admit(p, 2000, 100, in, 2), -EPERM);
	policy_free(p);
}

static void test_users_or_groups_either_admits(void **state)
{
	struct config c = base_config();
	gid_t groups[] = { 36 };
	struct policy *p;

	(void)state;
	c.allow_uids[0] = 1000;
	c.n_allow_uids = 1;
	c.allow_gids[0] = 36;
	c.n_allow_gids = 1;
	p = new_policy(&c);
	assert_int_equal(admit(p, 1000, 1000, NULL, 0), 0);
	assert_int_equal(admit(p, 3000, 3000, groups, 1), 0);
	assert_int_equal(admit(p, 3000, 3000, NULL, 0), -EPERM);
	policy_free(p);
}

static void test_root_is_not_implied_once_a_list_is_set(void **state)
{
	struct config c = base_config();
	struct policy *p;

	(void)state;
	c.allow_gids[0] = 36;
	c.n_allow_gids = 1;
	p = new_policy(&c);
	assert_int_equal(admit(p, 0, 0, NULL, 0), -EPERM);
	assert_string_equal(why, "uid 0 is not in allow_users/allow_groups");
	policy_free(p);
	c.allow_uids[0] = 0;
	c.n_allow_uids = 1;
	p = new_policy(&c);
	assert_int_equal(admit(p, 0, 0, NULL, 0), 0);
	policy_free(p);
}

/* The lists are the loaded configuration's: names resolved by config.c. */
static void test_admit_uses_the_loaded_configuration(void **state)
{
	struct config c;
	struct policy *p;
	char err[256];

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_load_string(&c,
					    "[registration]\nallow_users = root 1000\n"
					    "allow_groups = 36\n",
					    "t.ini", err, sizeof(err)),
			 0);
	p = new_policy(&c);
	assert_int_equal(admit(p, 0, 0, NULL, 0), 0);
	assert_int_equal(admit(p, 1000, 1000, NULL, 0), 0);
	assert_int_equal(admit(p, 1001, 36, NULL, 0), 0);
	assert_int_equal(admit(p, 1001, 1001, NULL, 0), -EPERM);
	policy_free(p);
}

/* ---- rate ------------------------------------------------------------------------ */

static void test_burst_then_refusal_then_refill(void **state)
{
	struct config c = base_config(); /* 100/s, burst 1000 */
	const uint64_t t0 = 5 * SEC;
	struct policy *p = new_policy(&c);

	(void)state;
	/* a 256-vCPU VMM registering one vCPU per request, four times over, fits */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(take(p, 1000, t0), 0);
	assert_int_equal(take(p, 1000, t0), -EAGAIN);
	assert_string_equal(why, "uid 1000 over rate_limit 100/s (burst 1000)");
	assert_int_equal(take(p, 1000, t0 + 9 * MS), -EAGAIN);
	/* one token per 10 ms */
	assert_int_equal(take(p, 1000, t0 + 10 * MS), 0);
	assert_int_equal(take(p, 1000, t0 + 10 * MS), -EAGAIN);
	assert_int_equal(take(p, 1000, t0 + 20 * MS - 1), -EAGAIN);
	assert_int_equal(take(p, 1000, t0 + 20 * MS), 0);
	/* 1 s: 100 tokens */
	for (int i = 0; i < 100; i++)
		assert_int_equal(take(p, 1000, t0 + 1020 * MS), 0);
	assert_int_equal(take(p, 1000, t0 + 1020 * MS), -EAGAIN);
	/* an hour: the bucket holds the burst, no more */
	for (int i = 0; i < 1000; i++)
		assert_int_equal(take(p, 1000, t0 + 3600 * SEC), 0);
	assert_int_equal(take(p, 1000, t0 + 3600 * SEC), -EAGAIN);
	policy_free(p);
}

static void test_buckets_are_per_uid(void **state)
{
	struct config c = base_config();
	struct policy *p;

	(void)state;
	c.rate_limit = 1;
	c.rate_burst = 2;
	p = new_policy(&c);
	assert_int_equal(take(p, 1, 0), 0);
	assert_int_equal(take(p, 1, 0), 0);
	assert_int_equal(take(p, 1, 0), -EAGAIN);
	assert_string_equal(why, "uid 1 over rate_limit 1/s (burst 2)");
	assert_int_equal(take(p, 2, 0), 0);
	assert_int_equal(take(p, 2, 0), 0);
	assert_int_equal(take(p, 2, 0), -EAGAIN);
	assert_int_equal(take(p, 3, 0), 0);
	policy_free(p);
}

/* Integer arithmetic: a third of a second is a third of a token at 1/s, exactly. */
static void test_refill_is_exact_in_nanoseconds(void **state)
{
	struct config c = base_config();
	struct policy *p;

	(void)state;
	c.rate_limit = 3;
	c.rate_burst = 2; /* 1 would cap the bucket at 1 token and lose the 2e-9 */
	p = new_policy(&c);
	assert_int_equal(take(p, 42, 10 * SEC), 0);
	assert_int_equal(take(p, 42, 10 * SEC), 0);
	assert_int_equal(take(p, 42, 10 * SEC + 333333333), -EAGAIN); /* 0.999999999 tokens */
	assert_int_equal(take(p, 42, 10 * SEC + 333333334), 0);	      /* 1.000000002 */
	/* the 2e-9 left over is kept: 0.999999996 more make 0.999999998 */
	assert_int_equal(take(p, 42, 10 * SEC + 666666666), -EAGAIN);
	assert_int_equal(take(p, 42, 10 * SEC + 666666667), 0);
	policy_free(p);
}

/* Taking greedily every millisecond for 100 s grants burst + rate * 100, not one less. */
static void test_no_drift_over_a_long_run(void **state)
{
	static const unsigned rates[] = { 7, 3, 100, 999 };
	struct config c = base_config();

	(void)state;
	for (size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
		struct policy *p;
		uint64_t granted = 0;

		c.rate_limit = rates[r];
		c.rate_burst = 2; /* > 1 + what 1 ms brings: the bucket never caps */
		p = new_policy(&c);
		for (uint64_t t = 0; t <= 100000; t++)
			while (take(p, 7, 1 * SEC + t * MS) == 0)
				granted++;
		assert_int_equal(granted, 2 + 100 * (uint64_t)rates[r]);
		policy_free(p);
	}
}

static void test_rate_limit_zero_means_no_limit(void **state)
{
	struct config c = base_config();
	struct policy *p;

	(void)state;
	c.rate_limit = 0;
	c.rate_burst = 1;
	p = new_policy(&c);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(take(p, 1000, 0), 0);
	policy_free(p);
}

static void test_time_going_back_refills_nothing(void **state)
{
	struct config c = base_config();
	struct policy *p;

	(void)state;
	c.rate_limit = 1;
	c.rate_burst = 1;
	p = new_policy(&c);
	assert_int_equal(take(p, 9, 100 * SEC), 0);
	assert_int_equal(take(p, 9, 50 * SEC), -EAGAIN);
	assert_int_equal(take(p, 9, 100 * SEC + SEC - 1), -EAGAIN);
	assert_int_equal(take(p, 9, 101 * SEC), 0);
	policy_free(p);
}

/* ---- charges ---------------------------------------------------------------------- */

static void test_charge_up_to_max_sources_per_uid(void **state)
{
	struct config c = base_config();
	struct policy *p;

	(void)state;
	c.max_sources_per_uid = 10;
	p = new_policy(&c);
	assert_int_equal(policy_charged(p, 1000), 0);
	assert_int_equal(charge(p, 1000, 4), 0);
	assert_int_equal(charge(p, 1000, 6), 0);
	assert_int_equal(policy_charged(p, 1000), 10);
	assert_int_equal(charge(p, 1000, 1), -ENOSPC);
	assert_why_has("uid 1000 holds 10 stats fds");
	assert_why_has("max_sources_per_uid 10");
	assert_true(strlen(why) < 96);		       /* fits the reply's reason */
	assert_int_equal(policy_charged(p, 1000), 10); /* nothing charged */
	/* another uid has its own count */
	assert_int_equal(charge(p, 1001, 10), 0);
	assert_int_equal(charge(p, 1002, 11), -ENOSPC);
	assert_why_has("uid 1002 holds 0 stats fds, 11 more");
	assert_int_equal(policy_charged(p, 1002), 0);
	/* no wrap-around */
	assert_int_equal(charge(p, 1000, UINT_MAX), -ENOSPC);
	assert_int_equal(charge(p, 1003, UINT_MAX), -ENOSPC);
	policy_free(p);
}

static void test_refund_gives_room_back(void **state)
{
	struct config c = base_config();
	struct policy *p;

	(void)state;
	c.max_sources_per_uid = 10;
	p = new_policy(&c);
	assert_int_equal(charge(p, 5, 10), 0);
	policy_refund(p, 5, 3);
	assert_int_equal(policy_charged(p, 5), 7);
	assert_int_equal(charge(p, 5, 3), 0);
	assert_int_equal(charge(p, 5, 1), -ENOSPC);
	policy_refund(p, 5, 10);
	assert_int_equal(policy_charged(p, 5), 0);
	/* more than charged, or for a uid never charged: nothing goes below 0 */
	policy_refund(p, 5, 1);
	policy_refund(p, 6, 1);
	assert_int_equal(policy_charged(p, 5), 0);
	assert_int_equal(policy_charged(p, 6), 0);
	assert_int_equal(charge(p, 5, 10), 0);
	policy_refund(p, 5, 11);
	assert_int_equal(policy_charged(p, 5), 0);
	/* zero is a no-op */
	assert_int_equal(charge(p, 5, 0), 0);
	assert_int_equal(policy_charged(p, 5), 0);
	policy_free(p);
}

/* Each charged uid holds >= 1 fd: no more of them than max_sources. */
static void test_charged_uids_are_at_most_max_sources(void **state)
{
	struct config c = base_config();
	struct policy *p;

	(void)state;
	c.max_sources = 3;
	c.max_sources_per_uid = 3;
	p = new_policy(&c);
	for (uid_t u = 1; u <= 3; u++)
		assert_int_equal(charge(p, u, 1), 0);
	assert_int_equal(charge(p, 4, 1), -ENOSPC);
	assert_why_has("uid 4: 3 uids hold stats fds already (max_sources)");
	assert_int_equal(charge(p, 1, 2), 0); /* a uid that holds some may take more */
	policy_refund(p, 2, 1);
	assert_int_equal(charge(p, 4, 1), 0);
	assert_int_equal(policy_charged(p, 4), 1);
	policy_free(p);
}

/* ---- the bounded table -------------------------------------------------------------- */

static void test_many_uids_do_not_grow_memory(void **state)
{
	struct config c = base_config();
	struct policy *p = new_policy(&c);
	struct mallinfo2 before, after;

	(void)state;
	before = mallinfo2();
	for (uid_t u = 0; u < 200000; u++) {
		assert_int_equal(take(p, u, SEC + u), 0);
		assert_int_equal(charge(p, u, 1), u < c.max_sources ? 0 : -ENOSPC);
	}
	for (uid_t u = 0; u < 200000; u++)
		policy_refund(p, u, 1);
	for (uid_t u = 300000; u < 400000; u++)
		assert_int_equal(take(p, u, 2 * SEC), 0);
	after = mallinfo2();
	assert_int_equal(after.uordblks, before.uordblks);
	assert_int_equal(after.hblkhd, before.hblkhd);
	policy_free(p);
}

/* A drained bucket is state: fuller ones are forgotten before it, full ones first. */
static void test_fullest_idle_bucket_is_forgotten_first(void **state)
{
	struct config c = base_config();
	struct policy *p;

	(void)state;
	c.rate_limit = 1;
	c.rate_burst = 10;
	p = new_policy(&c);
	for (int i = 0; i < 10; i++)
		assert_int_equal(take(p, 77, SEC), 0);
	assert_int_equal(take(p, 77, SEC), -EAGAIN);
	/* 20000 more uids, each one token down (9 left): 77 is the emptiest */
	for (uid_t u = 1000; u < 21000; u++)
		assert_int_equal(take(p, u, SEC), 0);
	assert_int_equal(take(p, 77, SEC), -EAGAIN);
	/* a second on, they are full again and 77 has 1 token: still known */
	for (uid_t u = 30000; u < 50000; u++)
		assert_int_equal(take(p, u, 2 * SEC), 0);
	assert_int_equal(take(p, 77, 2 * SEC), 0);
	assert_int_equal(take(p, 77, 2 * SEC), -EAGAIN); /* forgotten, it would have had 10 */
	policy_free(p);
}

/* A uid holding fds is never forgotten, its count nor its bucket. */
static void test_uid_with_charges_is_kept(void **state)
{
	struct config c = base_config();
	struct policy *p;

	(void)state;
	c.rate_limit = 1;
	c.rate_burst = 1;
	p = new_policy(&c);
	assert_int_equal(charge(p, 7, 5), 0); /* a full bucket, but charged */
	assert_int_equal(take(p, 8, SEC), 0); /* drained and charged */
	assert_int_equal(charge(p, 8, 1), 0);
	/* drained idle buckets everywhere: the forgotten ones are among them */
	for (uid_t u = 100; u < 50100; u++)
		assert_int_equal(take(p, u, SEC), 0);
	assert_int_equal(policy_charged(p, 7), 5);
	assert_int_equal(policy_charged(p, 8), 1);
	assert_int_equal(take(p, 8, SEC), -EAGAIN);
	policy_refund(p, 7, 5);
	policy_refund(p, 8, 1);
	assert_int_equal(policy_charged(p, 7), 0);
	assert_int_equal(policy_charged(p, 8), 0);
	policy_free(p);
}

/* Random charges, refunds and requests over many uids against a plain model. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void test_table_stays_consistent_under_churn(void **state)
{
	enum { N_UIDS = 30000, PER_UID = 50 };
	struct config c = base_config();
	unsigned *model = calloc(N_UIDS, sizeof(*model)), n_charged = 0;
	uint64_t now = SEC;
	struct policy *p;

	(void)state;
	assert_non_null(model);
	c.max_sources = 20000;
	c.max_sources_per_uid = PER_UID;
	c.rate_limit = 1000;
	c.rate_burst = 3;
	p = new_policy(&c);
	for (int op = 0; op < 400000; op++) {
		uid_t u = (uid_t)(rng() % N_UIDS) * 7919u; /* spread over the uid space */
		unsigned n = (unsigned)(rng() % 8) + 1, *m = &model[u / 7919u];
		int rc;

		now += rng() % (2 * MS);
		switch (rng() % 3) {
		case 0:
			rc = charge(p, u, n);
			if (rc == 0) {
				n_charged += !*m;
				*m += n;
			} else {
				assert_int_equal(rc, -ENOSPC);
				assert_true(*m + n > PER_UID || (!*m && n_charged >= 20000));
			}
			break;
		case 1:
			policy_refund(p, u, n);
			n_charged -= *m && *m <= n;
			*m -= n < *m ? n : *m;
			break;
		default:
			rc = take(p, u, now);
			assert_true(rc == 0 || rc == -EAGAIN);
		}
		if (op % 50000 == 0)
			for (unsigned i = 0; i < N_UIDS; i++)
				assert_int_equal(policy_charged(p, i * 7919u), model[i]);
	}
	for (unsigned i = 0; i < N_UIDS; i++)
		assert_int_equal(policy_charged(p, i * 7919u), model[i]);
	policy_free(p);
	free(model);
}

/* ---- registration connections --------------------------------------------------- */

static int admit_conn(const struct policy *p, uid_t uid, unsigned n_uid, unsigned n_all)
{
	why[0] = '\0';
	return policy_admit_conn(p, uid, n_uid, n_all, why, sizeof(why));
}

static void test_a_uid_holds_at_most_max_connections_per_uid(void **state)
{
	struct config c = base_config();
	struct policy *p;

	(void)state;
	c.max_connections_per_uid = 4;
	p = new_policy(&c);
	assert_int_equal(admit_conn(p, 1000, 3, 10), 0);
	assert_int_equal(admit_conn(p, 1000, 4, 10), -ENOSPC);
	assert_why_has("uid 1000 holds 4 registration connections (max_connections_per_uid)");
	assert_int_equal(admit_conn(p, 0, 4, 10), -ENOSPC); /* root too: its reserve is one share */
	policy_free(p);
}

static void test_other_uids_never_take_roots_reserve(void **state)
{
	struct config c = base_config();
	struct policy *p = new_policy(&c); /* 16 per uid: 240 for all but root */

	(void)state;
	assert_int_equal(admit_conn(p, 1000, 0, POLICY_MAX_CONNS - 17), 0);
	assert_int_equal(admit_conn(p, 1000, 0, POLICY_MAX_CONNS - 16), -ENOSPC);
	assert_why_has("the rest are root's");
	for (unsigned held = 0; held < 16; held++) /* root gets its whole share after them */
		assert_int_equal(admit_conn(p, 0, held, POLICY_MAX_CONNS - 16 + held), 0);
	assert_int_equal(admit_conn(p, 0, 0, POLICY_MAX_CONNS), -ENOSPC);
	assert_why_has("256 registration connections are open");
	policy_free(p);
}

static void test_sixteen_uids_cannot_hold_every_connection(void **state)
{
	struct config c = base_config();
	struct policy *p = new_policy(&c);
	unsigned open = 0;

	(void)state;
	for (uid_t uid = 1000; uid < 1016; uid++)
		for (unsigned held = 0; held < 16; held++)
			open += admit_conn(p, uid, held, open) == 0;
	assert_int_equal(open, POLICY_MAX_CONNS - 16);
	assert_int_equal(admit_conn(p, 0, 0, open), 0);
	policy_free(p);
}

static void test_new_with_smallest_limits(void **state)
{
	struct config c = base_config();
	struct policy *p;

	(void)state;
	c.max_sources = 1;
	c.max_sources_per_uid = 1;
	c.rate_limit = 1000000;
	c.rate_burst = 1000000;
	p = new_policy(&c);
	assert_int_equal(charge(p, 1, 1), 0);
	assert_int_equal(charge(p, 2, 1), -ENOSPC);
	for (int i = 0; i < 1000000; i++)
		assert_int_equal(take(p, 1, 0), 0);
	assert_int_equal(take(p, 1, 0), -EAGAIN);
	assert_int_equal(take(p, 1, 1000), 0); /* 1 us at 1e6/s: one token */
	policy_free(p);
	policy_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_lists_allow_everyone),
		cmocka_unit_test(test_a_uid_holds_at_most_max_connections_per_uid),
		cmocka_unit_test(test_other_uids_never_take_roots_reserve),
		cmocka_unit_test(test_sixteen_uids_cannot_hold_every_connection),
		cmocka_unit_test(test_admit_by_uid),
		cmocka_unit_test(test_admit_by_primary_gid),
		cmocka_unit_test(test_admit_by_supplementary_gid),
		cmocka_unit_test(test_users_or_groups_either_admits),
		cmocka_unit_test(test_root_is_not_implied_once_a_list_is_set),
		cmocka_unit_test(test_admit_uses_the_loaded_configuration),
		cmocka_unit_test(test_burst_then_refusal_then_refill),
		cmocka_unit_test(test_buckets_are_per_uid),
		cmocka_unit_test(test_refill_is_exact_in_nanoseconds),
		cmocka_unit_test(test_no_drift_over_a_long_run),
		cmocka_unit_test(test_rate_limit_zero_means_no_limit),
		cmocka_unit_test(test_time_going_back_refills_nothing),
		cmocka_unit_test(test_charge_up_to_max_sources_per_uid),
		cmocka_unit_test(test_refund_gives_room_back),
		cmocka_unit_test(test_charged_uids_are_at_most_max_sources),
		cmocka_unit_test(test_many_uids_do_not_grow_memory),
		cmocka_unit_test(test_fullest_idle_bucket_is_forgotten_first),
		cmocka_unit_test(test_uid_with_charges_is_kept),
		cmocka_unit_test(test_table_stays_consistent_under_churn),
		cmocka_unit_test(test_new_with_smallest_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
