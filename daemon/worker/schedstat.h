/* SPDX-License-Identifier: MIT */
/*
 * schedstat - a vCPU thread's CPU time and run delay, from
 * /proc/<pid>/task/<tid>/schedstat ("<run ns> <wait ns> <timeslices>").
 *
 * The worker cannot open files; the helper opens these for it
 * (helper_sched.c) and the poller preads them each tick, as it does stats
 * fds: ~0.6 us a read.
 */
#ifndef KVMSTATD_SCHEDSTAT_H
#define KVMSTATD_SCHEDSTAT_H

#include <stddef.h>
#include <stdint.h>

#include "source.h"

/* Pure: parse the file's text. 0, or -EINVAL. */
int schedstat_parse(const char *text, size_t len, uint64_t *run_ns, uint64_t *delay_ns);

/* Poller: read s->sched_fd into s's sched_* fields; the fd is closed for
 * good once the thread is gone (ESRCH) or the text is not understood. */
void schedstat_sample(struct source *s);

#endif
