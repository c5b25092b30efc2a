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

static int push(struct slowlane *s, struct job *j)
{
	struct slowlane_job *bumped = NULL;
	int rc = slowlane_push(s, &j->j, &bumped);

	assert_null(bumped);
	return rc;
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
	assert_int_equal(push(s, &gate), 0);
	wait_for(&g, &g.entered); /* the thread is held in the gate */
	assert_int_equal(push(s, &a), 0);
	assert_int_equal(push(s, &a2), -EBUSY); /* client 2 has one queued */
	assert_int_equal(push(s, &g2), 0);	/* client 1's runs, none queued */
	assert_int_equal(push(s, &b), -EBUSY);	/* full */
	assert_int_equal(push(s, &c), -EBUSY);
	/* stop: the gate's job ends; the two queued run or are cancelled, none is lost */
	pthread_mutex_lock(&g.lock);
	g.open = true;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
	slowlane_stop(s);
	assert_int_equal(push(s, &c), -ESHUTDOWN);
	slowlane_free(s);
	assert_int_equal(gate.ran, 1);
	assert_true(a.ran != 0 && g2.ran != 0);
	assert_int_equal(b.ran, 0);
	assert_int_equal(c.ran, 0);
}

/* Order of runs, recorded by the jobs below. */
struct order {
	struct job j; /* first */
	int *log, *n;
	int id;
};

static void run_logged(struct slowlane_job *sj, bool cancelled)
{
	struct order *o = (struct order *)sj;

	o->log[(*o->n)++] = cancelled ? -o->id : o->id;
}

/*
 * Clean clients (no failed check) run first; one that finds the queue
 * full takes the place of the newest job of a client that failed, which
 * the caller cancels. A client that failed finds no room.
 */
static void test_clean_clients_go_first_and_take_the_place_of_failed_ones(void **state)
{
	struct gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, false, 0 };
	struct slowlane_config cfg = { .capacity = 3, .every_ms = 1000, .every = chore, .arg = &g };
	struct job gate = { .gate = &g };
	struct order o[6];
	struct slowlane_job *bumped = NULL;
	struct slowlane *s = NULL;
	int log[8], n = 0;

	(void)state;
	client(&gate, 1);
	for (int i = 0; i < 6; i++) {
		o[i] = (struct order){ .log = log, .n = &n, .id = i + 1 };
		client(&o[i].j, (uint8_t)(10 + i));
		o[i].j.j.run = run_logged;
		o[i].j.j.clean = i >= 3; /* 1..3 failed before, 4..6 clean */
	}
	assert_int_equal(slowlane_start(&s, &cfg), 0);
	assert_int_equal(push(s, &gate), 0);
	wait_for(&g, &g.entered);
	for (int i = 0; i < 3; i++)
		assert_int_equal(push(s, &o[i].j), 0);
	assert_int_equal(slowlane_push(s, &o[3].j.j, &bumped), 0); /* clean: takes 3's place */
	assert_ptr_equal(bumped, &o[2].j.j);
	bumped->run(bumped, true);
	assert_int_equal(slowlane_push(s, &o[4].j.j, &bumped), 0); /* and 2's */
	assert_ptr_equal(bumped, &o[1].j.j);
	bumped->run(bumped, true);
	/* full of clean and one failed: a failed client finds no room */
	assert_int_equal(slowlane_push(s, &o[5].j.j, &bumped), 0);
	assert_ptr_equal(bumped, &o[0].j.j);
	bumped->run(bumped, true);
	o[0].j.j.clean = false;
	assert_int_equal(slowlane_push(s, &o[0].j.j, &bumped), -EBUSY);
	assert_null(bumped);
	pthread_mutex_lock(&g.lock);
	g.open = true;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
	slowlane_free(s);
	/* cancelled 3, 2, 1 in turn; then the clean ones in arrival order */
	assert_int_equal(n, 6);
	assert_int_equal(log[0], -3);
	assert_int_equal(log[1], -2);
	assert_int_equal(log[2], -1);
	for (int i = 3; i < 6; i++)
		assert_int_equal(log[i] < 0 ? -log[i] : log[i], i + 1);
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
		cmocka_unit_test(test_clean_clients_go_first_and_take_the_place_of_failed_ones),
		cmocka_unit_test(test_the_chore_runs_while_the_lane_is_idle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
