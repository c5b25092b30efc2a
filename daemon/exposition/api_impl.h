/* SPDX-License-Identifier: MIT */
/*
 * api_impl - what api.c shares with the endpoints it dispatches to
 * (api_stats.c, api_exits.c): one request's compiled filters.
 */
#ifndef KVMSTATD_API_IMPL_H
#define KVMSTATD_API_IMPL_H

#include <regex.h>
#include <stdbool.h>

#include "api.h"

struct api_filter {
	regex_t vm, match;
	bool has_vm, has_match;
	int vcpu; /* -1: any */
};

bool api_filter_vm(const struct api_filter *f, const struct vm_meta *vm);
bool api_filter_name(const struct api_filter *f, const char *name);
/* The source's VM passes vm=, and it is the vCPU asked for (if any). */
bool api_filter_source(const struct api_filter *f, const struct source *s);

/* The body of data (after "time" and friends) of each endpoint. */
void api_render_stats(const struct snapshot *snap, const struct api_query *q,
		      const struct api_filter *f, const struct api_env *env, struct buf *b);
void api_render_exits(const struct snapshot *snap, const struct api_query *q,
		      const struct api_filter *f, const struct api_env *env, struct buf *b);

#endif
