/* SPDX-License-Identifier: MIT */
/*
 * loglimit - how many lines of one kind a hostile peer may make us log.
 *
 * A token bucket: LOGLIMIT_BURST lines at once, then LOGLIMIT_PER_S a
 * second. A line refused is counted, and the next line allowed says how
 * many were left out, so nothing vanishes silently. The caller keeps the
 * state (one per kind of line) and counts every event in its metrics
 * whether it is logged or not.
 */
#ifndef KVMSTATD_LOGLIMIT_H
#define KVMSTATD_LOGLIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define LOGLIMIT_BURST 20u
#define LOGLIMIT_PER_S 10u

struct loglimit {
	uint64_t last_ns; /* when tokens were last added (CLOCK_MONOTONIC) */
	unsigned tokens;
	unsigned quiet; /* lines left out since the last one logged */
};

/* A full bucket. */
void loglimit_init(struct loglimit *l);

/*
 * May one more line be logged at now_ns? true: log it, and say that
 * *left_out lines were not (0: none; the count starts again). false: it
 * is counted as left out.
 */
bool loglimit_take(struct loglimit *l, uint64_t now_ns, unsigned *left_out);

#endif
