/* SPDX-License-Identifier: MIT */
/* accept - see accept.h. */
#include "accept.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* q of one element's parameters (p .. p+len): ";q=0.5" among others. */
static double element_q(const char *p, size_t len)
{
	const char *end = p + len;

	while (p < end) {
		const char *param = p + strspn(p, "; \t");
		size_t plen = strcspn(param, ";,");

		if (param >= end)
			break;
		if (plen >= 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=')
			return strtod(param + 2, NULL);
		p = param + plen;
	}
	return 1.0;
}

double accept_q(const char *list, const char *token, const char *star)
{
	double best = -1, star_q = -1;
	size_t tlen = strlen(token);

	while (list && *list) {
		size_t len = strcspn(list, ",");
		const char *type = list + strspn(list, " \t");
		size_t ty = strcspn(type, ";, \t");
		double q = element_q(type + ty, len - (size_t)(type + ty - list));

		if (ty == tlen && !strncasecmp(type, token, tlen))
			best = q > best ? q : best;
		else if (star && ty == strlen(star) && !strncmp(type, star, ty))
			star_q = q > star_q ? q : star_q;
		list += len + (list[len] == ',');
	}
	if (best < 0)
		best = star_q;
	return best > 0 ? best : 0;
}
