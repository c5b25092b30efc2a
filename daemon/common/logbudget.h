/* SPDX-License-Identifier: MIT */
/*
 * logbudget - how many lines a source of warnings may log: a token bucket
 * of `burst` lines that refills at `per_s` lines a second. A line that
 * finds the bucket empty is not written but counted; the next line that
 * may be written is told how many were left out, so that the log says so.
 *
 * Decisions only: no lock, no clock, no I/O. The caller keeps one in its
 * own context (never a static), passes the time and serialises calls.
 */
#ifndef KVMSTATD_LOGBUDGET_H
#define KVMSTATD_LOGBUDGET_H

#include <stdbool.h>
#include <stdint.h>

struct logbudget {
	unsigned burst, per_s;
	uint64_t tokens_ns; /* credit: a line costs 1e9 / per_s ns of it */
	uint64_t last_ns;
	uint64_t left_out; /* lines refused since the last one written */
};

void logbudget_init(struct logbudget *b, unsigned burst, unsigned per_s, uint64_t now_ns);

/*
 * May a line be written at now_ns? True takes a token and sets
 * *left_out to the lines refused since the previous one written (then
 * forgets them); false counts this line as left out.
 */
bool logbudget_take(struct logbudget *b, uint64_t now_ns, uint64_t *left_out);

/*
 * Lines left out and not yet reported, if a token is there to report them
 * (a quiet period after a burst): true takes it, sets *left_out and
 * forgets them. For a periodic check, so the count is not lost when no
 * further line comes.
 */
bool logbudget_flush(struct logbudget *b, uint64_t now_ns, uint64_t *left_out);

#endif
