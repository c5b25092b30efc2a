/* SPDX-License-Identifier: MIT */
/*
 * logbudget - see logbudget.h. The bucket is kept as "time credit": a line
 * costs 1e9 / per_s ns of it and at most burst lines of credit are kept,
 * so one integer and the last time describe it and nothing overflows.
 */
#include "logbudget.h"

#define NS_PER_S 1000000000ull

static uint64_t line_cost(const struct logbudget *b)
{
	return NS_PER_S / (b->per_s ? b->per_s : 1);
}

static void refill(struct logbudget *b, uint64_t now_ns)
{
	uint64_t full = line_cost(b) * b->burst;

	if (now_ns > b->last_ns) {
		b->tokens_ns += now_ns - b->last_ns;
		b->last_ns = now_ns;
	}
	if (b->tokens_ns > full)
		b->tokens_ns = full;
}

void logbudget_init(struct logbudget *b, unsigned burst, unsigned per_s, uint64_t now_ns)
{
	*b = (struct logbudget){ .burst = burst ? burst : 1, .per_s = per_s, .last_ns = now_ns };
	b->tokens_ns = line_cost(b) * b->burst;
}

static bool take(struct logbudget *b, uint64_t now_ns, uint64_t *left_out)
{
	refill(b, now_ns);
	if (b->tokens_ns < line_cost(b))
		return false;
	b->tokens_ns -= line_cost(b);
	*left_out = b->left_out;
	b->left_out = 0;
	return true;
}

bool logbudget_take(struct logbudget *b, uint64_t now_ns, uint64_t *left_out)
{
	bool ok = take(b, now_ns, left_out);

	if (!ok)
		b->left_out++;
	return ok;
}

bool logbudget_flush(struct logbudget *b, uint64_t now_ns, uint64_t *left_out)
{
	return b->left_out && take(b, now_ns, left_out);
}
