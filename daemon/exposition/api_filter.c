/* SPDX-License-Identifier: MIT */
/*
 * api_filter - whether a VM, a vCPU or a stat passes one request's
 * filters (api_impl.h). Below every endpoint, so that they use it without
 * calling back into api.c.
 */
#include "api_impl.h"

#include <regex.h>
#include <stddef.h>

#include "source.h"

bool api_filter_vm(const struct api_filter *f, const struct vm_meta *vm)
{
	return !f->has_vm || !regexec(&f->vm, vm->name, 0, NULL, 0);
}

bool api_filter_name(const struct api_filter *f, const char *name)
{
	return !f->has_match || !regexec(&f->match, name, 0, NULL, 0);
}

bool api_filter_source(const struct api_filter *f, const struct source *s)
{
	return api_filter_vm(f, s->vm) && (f->vcpu < 0 || s->vcpu == f->vcpu);
}

/* The VMs: who they are, how many vCPUs, since when. */
