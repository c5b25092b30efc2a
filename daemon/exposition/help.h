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

#include <stdio.h>

#include "metric.h"

struct schema_stat;

/* The table's text for a descriptor name, or NULL. */
const char *help_lookup(enum stat_scope scope, const char *desc_name);

/*
 * The metrics reference: a Markdown table of every stat the table knows,
 * with the family name, type and unit the naming contract gives it (the
 * README's "Metrics reference" is this output; `kvmstatd
 * --metrics-reference` prints it). 0, or -EIO/-EINVAL.
 */
int help_write_reference(FILE *out);

/* Fill st->head_text and st->head_om. -ENOMEM on failure. */
int help_build_heads(enum stat_scope scope, struct schema_stat *st);

#endif
