/* SPDX-License-Identifier: MIT */
/*
 * api_math - the arithmetic of the query interface: rates between two
 * samples and quantiles of a histogram (declared in api.h). Below every
 * endpoint, so that they use it without calling back into api.c.
 */
#include "api.h"

#include <math.h>
#include <stdbool.h>

double api_rate(uint64_t v_new, uint64_t t_new_ns, uint64_t v_old, uint64_t t_old_ns, double factor)
{
	bool known = t_new_ns > t_old_ns && v_new >= v_old;

	return known ? (double)(v_new - v_old) * factor / ((double)(t_new_ns - t_old_ns) / 1e9)
		     : NAN;
}

double api_quantile(const uint64_t *bucket, const double *bound, size_t n, double q)
{
	double total = 0, rank, seen = 0, lo = 0;
	double ans = NAN;

	for (size_t b = 0; b < n; b++)
		total += (double)bucket[b];
	rank = q * total;
	for (size_t b = 0; total > 0 && b < n; b++) {
		double c = (double)bucket[b];

		if (c > 0 && seen + c >= rank) {
			ans = b + 1 == n ? lo : lo + (bound[b] - lo) * ((rank - seen) / c);
			break;
		}
		seen += c;
		if (b + 1 < n)
			lo = bound[b];
	}
	return ans;
}
