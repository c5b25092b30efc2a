/* SPDX-License-Identifier: MIT */
/*
 * test_slowlane - the bounded queue of slow jobs: one per client, capacity
 * in all, jobs left at a stop run cancelled, the chore runs meanwhile.
 *
 * A gate job holds the lane's thread until the test opens it, so that
 * what is queued behind it is known.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "slowlane.h"

struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool entered, open;
	unsigned chores;
};

struct job {
	struct slowlane_job j; /* first */
	struct gate *gate;     /* NULL: not a gate */
	int ran;	       /* 0, 1 ran, -1 cancelled */
};

static void run(struct slowlane_job *sj, bool cancelled)
{
	struct job *j = (struct job *)sj;
	struct gate *g = j->gate;

	j->ran = cancelled ? -1 : 1;
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->entered = true;
	pthread_cond_broadcast(&g->cond);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void chore(void *arg, uint64_t now_ns)
{
	struct gate *g = arg;

	(void)now_ns;
	pthread_mutex_lock(&g->lock);
	g->chores++;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void client(struct job *j, uint8_t id)
{
	memset(&j->j.client, 0, sizeof(j->j.client));
	j->j.client.b[15] = id;
	j->j.run = run;
}

static void wait_for(struct gate *g, bool *flag)
{
	pthread_mutex_lock(&g->lock);
	while (!*flag)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

static void test_one_job_per_client_capacity_in_all_every_job_ends_at_stop(void **state)
{
	struct gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, 0 };
	struct slowlane_config cfg = { .capacity = 2, .every_ms = 10, .every = chore, .arg = &g };
	struct job gate = { .gate = &g }, g2 = { 0 }, a = { 0 }, a2 = { 0 }, b = { 0 }, c = { 0 };
	struct slowlane *s = NULL;

	(void)state;
	client(&gate, 1);
	client(&g2, 1);
	client(&a, 2);
	client(&a2, 2);
	client(&b, 3);
	client(&c, 4);
	assert_int_equal(slowlane_start(&s, &cfg), 0);
	assert_int_equal(slowlane_push(s, &gate.j), 0);
	wait_for(&g, &g.entered); /* the thread is held in the gate */
	assert_int_equal(slowlane_push(s, &a.j), 0);
	assert_int_equal(slowlane_push(s, &a2.j), -EBUSY); /* client 2 has one queued */
	assert_int_equal(slowlane_push(s, &g2.j), 0);	   /* client 1's runs, none queued */
	assert_int_equal(slowlane_push(s, &b.j), -EBUSY);  /* full */
	assert_int_equal(slowlane_push(s, &c.j), -EBUSY);
	/* stop: the gate's job ends; the two queued run or are cancelled, none is lost */
	pthread_mutex_lock(&g.lock);
	g.open = true;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
	slowlane_stop(s);
	assert_int_equal(slowlane_push(s, &c.j), -ESHUTDOWN);
	slowlane_free(s);
	assert_int_equal(gate.ran, 1);
	assert_true(a.ran != 0 && g2.ran != 0);
	assert_int_equal(b.ran, 0);
	assert_int_equal(c.ran, 0);
}

static void test_the_chore_runs_while_the_lane_is_idle(void **state)
{
	struct gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, 0 };
	struct slowlane_config cfg = { .capacity = 1, .every_ms = 5, .every = chore, .arg = &g };
	struct slowlane *s = NULL;

	(void)state;
	assert_int_equal(slowlane_start(&s, &cfg), 0);
	pthread_mutex_lock(&g.lock);
	while (g.chores < 3)
		pthread_cond_wait(&g.cond, &g.lock);
	pthread_mutex_unlock(&g.lock);
	slowlane_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_job_per_client_capacity_in_all_every_job_ends_at_stop),
		cmocka_unit_test(test_the_chore_runs_while_the_lane_is_idle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
