/* SPDX-License-Identifier: MIT */
/* slowlane - see slowlane.h. */
#include "slowlane.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

#include "clock.h"

struct slowlane {
	struct slowlane_config cfg;
	pthread_t thread;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t wake;
	struct slowlane_job *head; /* clean jobs first, each kind in arrival order */
	unsigned queued;
	bool stopping;
};

static bool same_client(const struct httpguard_client *a, const struct httpguard_client *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static struct slowlane_job *pop(struct slowlane *s)
{
	struct slowlane_job *j = s->head;

	if (j) {
		s->head = j->next;
		s->queued--;
	}
	return j;
}

/* After the last clean job if j is clean, else last: clean ones run first. */
static void insert(struct slowlane *s, struct slowlane_job *j)
{
	struct slowlane_job **p = &s->head;

	while (*p && (!j->clean || (*p)->clean))
		p = &(*p)->next;
	j->next = *p;
	*p = j;
	s->queued++;
}

/* The newest queued job of a client with failures, out of the queue; or NULL. */
static struct slowlane_job *unqueue_newest_unclean(struct slowlane *s)
{
	struct slowlane_job **p, **last = NULL, *j = NULL;

	for (p = &s->head; *p; p = &(*p)->next)
		if (!(*p)->clean)
			last = p;
	if (last) {
		j = *last;
		*last = j->next;
		s->queued--;
	}
	return j;
}

static struct timespec deadline_of(uint64_t ns)
{
	return (struct timespec){ .tv_sec = (time_t)(ns / 1000000000u),
				  .tv_nsec = (long)(ns % 1000000000u) };
}

/* Jobs until asked to stop, the chore between them; then the rest, cancelled. */
static void *lane_main(void *arg)
{
	struct slowlane *s = arg;
	uint64_t period = (uint64_t)s->cfg.every_ms * 1000000u, next = clock_mono_ns() + period;
	struct slowlane_job *j;

	prctl(PR_SET_NAME, "kvmstatd-slow");
	/* this thread only (nice is per thread on Linux): its jobs yield the
	 * CPU to the HTTP threads, whose answers take microseconds */
	(void)setpriority(PRIO_PROCESS, 0, SLOWLANE_NICE);
	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		struct timespec until = deadline_of(next);
		uint64_t now;

		if (!s->head)
			pthread_cond_timedwait(&s->wake, &s->lock, &until);
		j = s->stopping ? NULL : pop(s);
		pthread_mutex_unlock(&s->lock);
		if (j)
			j->run(j, false);
		now = clock_mono_ns(); /* after the job, which may take a while */
		if (now >= next) {
			s->cfg.every(s->cfg.arg, now);
			next = now + period;
		}
		pthread_mutex_lock(&s->lock);
	}
	while ((j = pop(s))) {
		pthread_mutex_unlock(&s->lock);
		j->run(j, true);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static int init_sync(struct slowlane *s)
{
	pthread_condattr_t ca;
	int rc = pthread_condattr_init(&ca);

	if (rc == 0) {
		rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		if (rc == 0)
			rc = pthread_cond_init(&s->wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (rc == 0 && (rc = pthread_mutex_init(&s->lock, NULL)) != 0)
		pthread_cond_destroy(&s->wake);
	return -rc;
}

int slowlane_start(struct slowlane **out, const struct slowlane_config *cfg)
{
	struct slowlane *s = calloc(1, sizeof(*s));
	int rc = s ? 0 : -ENOMEM;

	if (rc == 0 && (!cfg->capacity || !cfg->every_ms || !cfg->every))
		rc = -EINVAL;
	if (rc == 0) {
		s->cfg = *cfg;
		rc = init_sync(s);
	}
	if (rc == 0 && (rc = -pthread_create(&s->thread, NULL, lane_main, s)) < 0) {
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->wake);
	}
	if (rc == 0)
		*out = s;
	else
		free(s);
	return rc;
}

/*
 * Is a job of client queued? (Not counting one running: its job wakes its
 * connection as its last step, and the client's next request may come
 * before the lane has taken the next job.)
 */
static bool has_client(const struct slowlane *s, const struct httpguard_client *c)
{
	for (const struct slowlane_job *j = s->head; j; j = j->next)
		if (same_client(&j->client, c))
			return true;
	return false;
}

int slowlane_push(struct slowlane *s, struct slowlane_job *j, struct slowlane_job **bumped)
{
	int rc = 0;

	*bumped = NULL;
	pthread_mutex_lock(&s->lock);
	if (s->stopping)
		rc = -ESHUTDOWN;
	else if (has_client(s, &j->client))
		rc = -EBUSY;
	else if (s->queued >= s->cfg.capacity &&
		 !(j->clean && (*bumped = unqueue_newest_unclean(s))))
		rc = -EBUSY;
	if (rc == 0) {
		insert(s, j);
		pthread_cond_signal(&s->wake);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

void slowlane_stop(struct slowlane *s)
{
	bool join;

	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	join = !s->stopping;
	s->stopping = true;
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->lock);
	if (join)
		pthread_join(s->thread, NULL);
}

void slowlane_free(struct slowlane *s)
{
	if (!s)
		return;
	slowlane_stop(s);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
	free(s);
}
