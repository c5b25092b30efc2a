/* SPDX-License-Identifier: MIT */
/* loglimit - see loglimit.h. */
#include "loglimit.h"

#define TOKEN_NS (1000000000ull / LOGLIMIT_PER_S)

void loglimit_init(struct loglimit *l)
{
	*l = (struct loglimit){ .tokens = LOGLIMIT_BURST };
}

bool loglimit_take(struct loglimit *l, uint64_t now_ns, unsigned *left_out)
{
	uint64_t add = now_ns > l->last_ns ? (now_ns - l->last_ns) / TOKEN_NS : 0;
	bool take;

	if (add) {
		l->tokens = (uint64_t)l->tokens + add > LOGLIMIT_BURST ? LOGLIMIT_BURST
								       : l->tokens + (unsigned)add;
		l->last_ns += add * TOKEN_NS; /* the part of a token under way is kept */
	}
	take = l->tokens > 0;
	*left_out = 0;
	if (take) {
		l->tokens--;
		*left_out = l->quiet;
		l->quiet = 0;
	} else {
		l->quiet++;
	}
	return take;
}
