/* SPDX-License-Identifier: MIT */
/* statfilter - see statfilter.h. */
#include "statfilter.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"
#include "schema.h"

int stat_filter_init(struct stat_filter *f, const char *include, const char *exclude,
		     bool histograms, char *err, size_t err_size)
{
	char why[128];

	memset(f, 0, sizeof(*f));
	f->no_histograms = !histograms;
	if (include[0] && pattern_compile(&f->include, include, why, sizeof(why)) < 0) {
		snprintf(err, err_size, "include: %s", why);
		return -EINVAL;
	}
	f->has_include = include[0];
	if (exclude[0] && pattern_compile(&f->exclude, exclude, why, sizeof(why)) < 0) {
		snprintf(err, err_size, "exclude: %s", why);
		stat_filter_free(f);
		return -EINVAL;
	}
	f->has_exclude = exclude[0];
	return 0;
}

void stat_filter_free(struct stat_filter *f)
{
	if (f->has_include)
		regfree(&f->include);
	if (f->has_exclude)
		regfree(&f->exclude);
	f->has_include = f->has_exclude = false;
}

static bool matches(const regex_t *re, const struct schema_stat *st)
{
	char total[METRIC_NAME_MAX + 8];

	if (!regexec(re, st->family, 0, NULL, 0))
		return true;
	if (st->type != MT_COUNTER)
		return false;
	snprintf(total, sizeof(total), "%s_total", st->family);
	return !regexec(re, total, 0, NULL, 0);
}

bool stat_filter_keeps(const struct stat_filter *f, const struct schema_stat *st)
{
	if (!f)
		return true;
	if (f->no_histograms && st->type == MT_HISTOGRAM)
		return false;
	if (f->has_include && !matches(&f->include, st))
		return false;
	return !(f->has_exclude && matches(&f->exclude, st));
}

static bool name_matches(const regex_t *re, const char *family, bool counter)
{
	char total[METRIC_NAME_MAX + 8];

	if (!regexec(re, family, 0, NULL, 0))
		return true;
	if (!counter)
		return false;
	snprintf(total, sizeof(total), "%s_total", family);
	return !regexec(re, total, 0, NULL, 0);
}

bool stat_filter_keeps_family(const struct stat_filter *f, const char *family, bool counter,
			      bool histogram)
{
	if (!f)
		return true;
	if (f->no_histograms && histogram)
		return false;
	if (f->has_include && !name_matches(&f->include, family, counter))
		return false;
	return !(f->has_exclude && name_matches(&f->exclude, family, counter));
}
