/* SPDX-License-Identifier: MIT */
/*
 * help - HELP text for KVM stats and the pre-rendered family headers.
 *
 * A table describes the stats known from recent kernels; any other stat
 * gets a sentence built from its descriptor (scope, kind, unit), so every
 * family has a meaningful HELP.
 */
#ifndef KVMSTATD_HELP_H
#define KVMSTATD_HELP_H

#include <stdbool.h>
#include <stdio.h>

#include "metric.h"

/* The table's text for a descriptor name, or NULL. */
const char *help_lookup(enum stat_scope scope, const char *desc_name);

/*
 * The metrics reference: a Markdown table of every stat the table knows,
 * with the family name, type and unit the naming contract gives it (the
 * README's "Metrics reference" is this output; `kvmstatd
 * --metrics-reference` prints it). 0, or -EIO/-EINVAL.
 */
int help_write_reference(FILE *out);

/* What a family's headers say about it (a schema's stat, described without the schema). */
struct help_family {
	enum stat_scope scope;
	const char *desc_name; /* the kernel's descriptor name */
	const char *family;    /* the exported family name */
	struct stat_flags flags;
	enum metric_type type;
	bool has_sum; /* a histogram whose _sum comes from a cumulative twin */
};

/*
 * The family's headers, malloc'd: *text in Prometheus text 0.0.4 ("# HELP
 * ...\n# TYPE ...\n"), *om in OpenMetrics. -ENOMEM (both NULL) on failure.
 */
int help_build_heads(const struct help_family *f, char **text, char **om);

#endif
