/* SPDX-License-Identifier: MIT */
/*
 * slowlane - one thread beside the HTTP threads for the work they must
 * not do themselves: slow jobs (a bcrypt check, 50-100 ms at cost 10)
 * and a periodic chore (the request deadlines).
 *
 * An HTTP thread serves many connections one step at a time: a bcrypt on
 * it would stall every other connection it holds. So it hands the check
 * here and goes on; the job ends by waking its connection. The queue is
 * bounded (capacity jobs) and holds at most one job per client, so
 * strangers cannot queue up more work than capacity checks, and a client
 * cannot fill the queue alone. A job that finds no room is refused at
 * once (-EBUSY): the caller answers "busy, retry" instead of waiting.
 * Jobs of clean clients (no failed check on record) run first, and one
 * that finds the queue full takes the place of the newest job of a client
 * that has failed, which is cancelled: strangers who keep guessing cannot
 * keep a scraper with the right password out of the queue.
 * The thread runs at nice SLOWLANE_NICE: on a busy host the checks wait
 * for the CPU, the HTTP threads do not.
 */
#ifndef KVMSTATD_SLOWLANE_H
#define KVMSTATD_SLOWLANE_H

#include <stdbool.h>
#include <stdint.h>

#include "httpguard.h"

/* The lane's thread runs at this nice: a stranger's bcrypt yields the CPU. */
#define SLOWLANE_NICE 10

struct slowlane;

struct slowlane_job {
	/* Run on the slow lane's thread; cancelled: the lane is stopping, the
	 * job is to finish without doing its work. */
	void (*run)(struct slowlane_job *j, bool cancelled);
	struct httpguard_client client;
	bool clean;		   /* its client has no failed check on record */
	struct slowlane_job *next; /* the lane's */
};

struct slowlane_config {
	unsigned capacity; /* jobs queued at once, >= 1 */
	unsigned every_ms; /* period of the chore */
	void (*every)(void *arg, uint64_t now_ns);
	void *arg;
};

int slowlane_start(struct slowlane **out, const struct slowlane_config *cfg);

/*
 * Queue j: 0, -EBUSY when the queue is full or holds a job of j's client
 * already, -ESHUTDOWN when the lane is stopping. A clean j may take the
 * place of a queued job that is not: *bumped is then that job, out of the
 * queue, for the caller to run with cancelled = true (else NULL).
 */
int slowlane_push(struct slowlane *s, struct slowlane_job *j, struct slowlane_job **bumped);

/*
 * Stop the thread after its job, run the jobs left with cancelled = true;
 * pushes fail from then on (NULL-safe). slowlane_free when nobody can
 * push any more.
 */
void slowlane_stop(struct slowlane *s);
void slowlane_free(struct slowlane *s);

#endif
