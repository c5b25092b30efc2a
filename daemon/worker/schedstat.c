/* SPDX-License-Identifier: MIT */
/* schedstat - see schedstat.h. */
#include "schedstat.h"

#include <errno.h>
#include <unistd.h>

static const char *number(const char *p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	const char *start = p;

	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return NULL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (p == start)
		return NULL;
	*out = v;
	return p;
}

int schedstat_parse(const char *text, size_t len, uint64_t *run_ns, uint64_t *delay_ns)
{
	const char *p = text, *end = text + len;
	uint64_t run, delay;

	p = number(p, end, &run);
	if (!p || p == end || *p++ != ' ')
		return -EINVAL;
	p = number(p, end, &delay);
	if (!p || p == end || *p != ' ')
		return -EINVAL;
	*run_ns = run;
	*delay_ns = delay;
	return 0;
}

void schedstat_sample(struct source *s)
{
	char buf[128];
	uint64_t run, delay;
	ssize_t n;

	if (s->sched_fd < 0)
		return;
	n = pread(s->sched_fd, buf, sizeof(buf), 0);
	if (n <= 0 || schedstat_parse(buf, (size_t)n, &run, &delay) < 0) {
		/* the thread is gone (ESRCH) or this is not schedstat: keep the last */
		close(s->sched_fd);
		s->sched_fd = -1;
		return;
	}
	atomic_store_explicit(&s->sched_run_ns, run, memory_order_relaxed);
	atomic_store_explicit(&s->sched_delay_ns, delay, memory_order_relaxed);
	atomic_store_explicit(&s->sched_ok, true, memory_order_release);
}
