/* SPDX-License-Identifier: MIT */
/* api - see api.h and docs/api.md. */
#include "api.h"

#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_impl.h"
#include "json.h"
#include "pattern.h"
#include "statsid.h"

int api_endpoint_of(const char *path, enum api_endpoint *ep)
{
	static const struct {
		const char *path;
		enum api_endpoint ep;
	} paths[] = { { "/api/v1/vms", API_VMS },
		      { "/api/v1/stats", API_STATS },
		      { "/api/v1/exits", API_EXITS } };

	int rc = -ENOENT;

	for (size_t i = 0; rc < 0 && i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (!strcmp(path, paths[i].path)) {
			*ep = paths[i].ep;
			rc = 0;
		}
	}
	return rc;
}

void api_query_init(struct api_query *q, enum api_endpoint ep)
{
	memset(q, 0, sizeof(*q));
	q->ep = ep;
	q->vcpu = -1;
	q->limit = API_LIMIT_DEFAULT;
	q->group = API_GROUP_VCPU;
	q->sort = API_SORT_RATE;
}

/* A decimal in lo..hi, digits only. */
static int parse_uint(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	unsigned long n = 0;
	size_t i = 0;
	bool ok;

	for (; v[i] >= '0' && v[i] <= '9' && i < 10; i++)
		n = n * 10 + (unsigned long)(v[i] - '0');
	ok = i > 0 && v[i] == '\0' && n >= lo && n <= hi;
	if (ok)
		*out = (unsigned)n;
	return ok ? 0 : -EINVAL;
}

static int parse_word(const char *v, const char *const *words, size_t n, unsigned *out)
{
	int rc = -EINVAL;

	for (size_t i = 0; rc < 0 && i < n; i++) {
		if (!strcmp(v, words[i])) {
			*out = (unsigned)i;
			rc = 0;
		}
	}
	return rc;
}

/*
 * A regex from the network must not cost the worker more than a regex
 * should: glibc's regcomp copies the tree once per repetition operator,
 * so "a++++..." grows exponentially (the fuzzer found 2 GiB) and "{m,n}"
 * copies it n times, and a back-reference makes matching backtrack. So:
 * no back-references, no bounded repetition, at most API_PATTERN_REPEATS
 * of '*', '+', '?' and never two in a row.
 */
#define API_PATTERN_REPEATS 8

static bool pattern_is_cheap(const char *v)
{
	unsigned repeats = 0;
	bool ok = true, prev_repeat = false;

	for (const char *p = v; ok && *p; p++) {
		bool rep = *p == '*' || *p == '+' || *p == '?';

		if (*p == '\\') {
			ok = !(p[1] >= '1' && p[1] <= '9');
			p += p[1] != '\0'; /* the escaped character is no operator */
		} else if (*p == '{') {
			ok = false;
		} else if (rep) {
			ok = !prev_repeat && ++repeats <= API_PATTERN_REPEATS;
		}
		prev_repeat = rep;
	}
	return ok;
}

static int set_pattern(char *dst, const char *v)
{
	char why[128];

	bool ok = strlen(v) <= API_PATTERN_MAX && pattern_is_cheap(v) && !pattern_check(v, why);

	if (ok)
		snprintf(dst, API_PATTERN_MAX + 1, "%s", v);
	return ok ? 0 : -EINVAL;
}

/* On a copy of the query (api_query_set): a field set by a refused value is dropped. */
static int set_one(struct api_query *q, const char *key, const char *v)
{
	static const char *const groups[] = { "vcpu", "vm", "host" };
	static const char *const sorts[] = { "rate", "value", "name" };
	unsigned u = 0;
	int rc = -EINVAL;

	if (!strcmp(key, "vm")) {
		rc = set_pattern(q->vm, v);
	} else if (!strcmp(key, "match")) {
		rc = set_pattern(q->match, v);
	} else if (!strcmp(key, "vcpu")) {
		rc = parse_uint(v, 0, 65535, &u);
		q->vcpu = (int)u;
	} else if (!strcmp(key, "window")) {
		rc = parse_uint(v, 0, API_WINDOW_MAX, &q->window_s);
	} else if (!strcmp(key, "limit")) {
		rc = parse_uint(v, 1, API_LIMIT_MAX, &q->limit);
	} else if (!strcmp(key, "spark")) {
		rc = parse_uint(v, 0, API_SPARK_MAX, &q->spark);
	} else if (!strcmp(key, "nonzero")) {
		rc = parse_uint(v, 0, 1, &u);
		q->nonzero = u;
	} else if (!strcmp(key, "group")) {
		rc = parse_word(v, groups, 3, &u);
		q->group = (enum api_group)u;
	} else if (!strcmp(key, "sort")) {
		rc = parse_word(v, sorts, 3, &u);
		q->sort = (enum api_sort)u;
	}
	return rc;
}

int api_query_set(struct api_query *q, const char *key, const char *value, char *why,
		  size_t why_size)
{
	static const char *const accepts[][2] = {
		{ "vm", "an extended regular expression on VM names (at most 256 bytes, 8 of "
			"*+?, no {} or back-references)" },
		{ "match", "an extended regular expression on names (at most 256 bytes, 8 of "
			   "*+?, no {} or back-references)" },
		{ "vcpu", "a vCPU index 0..65535" },
		{ "window", "seconds 0..3600" },
		{ "limit", "rows 1..1000" },
		{ "spark", "points 0..120" },
		{ "nonzero", "0 or 1" },
		{ "group", "vcpu, vm or host" },
		{ "sort", "rate, value or name" },
	};
	struct api_query next = *q;
	const char *what = NULL;
	int rc;

	for (size_t i = 0; i < sizeof(accepts) / sizeof(accepts[0]); i++)
		if (!strcmp(key, accepts[i][0]))
			what = accepts[i][1];
	rc = what && value ? set_one(&next, key, value) : -EINVAL;
	if (!what)
		snprintf(why, why_size, "unknown parameter \"%.32s\"", key);
	else if (rc < 0)
		snprintf(why, why_size, "%s: expected %s", key, what);
	else
		*q = next; /* a refused value leaves the query as it was */
	return rc;
}

void api_error(struct buf *out, const char *type, const char *why)
{
	buf_puts(out, "{\"status\":\"error\",\"errorType\":");
	json_str(out, type);
	buf_puts(out, ",\"error\":");
	json_str(out, why);
	buf_puts(out, "}\n");
}

/* The compiled filters of one request. */
static int compile_filters(const struct api_query *q, struct api_filter *f, struct buf *out)
{
	char err[160];
	int rc = 0;

	memset(f, 0, sizeof(*f));
	f->vcpu = q->vcpu;
	if (q->vm[0]) {
		rc = pattern_compile(&f->vm, q->vm, err, sizeof(err));
		f->has_vm = rc == 0;
	}
	if (rc == 0 && q->match[0]) {
		rc = pattern_compile(&f->match, q->match, err, sizeof(err));
		f->has_match = rc == 0;
	}
	if (rc < 0)
		api_error(out, "bad_data", err);
	return rc;
}

static void free_filters(struct api_filter *f)
{
	if (f->has_vm)
		regfree(&f->vm);
	if (f->has_match)
		regfree(&f->match);
}

/*
 * Each vCPU's thread: the tid in its stats fd's id "kvm-<tid>/vcpu-<n>",
 * the thread that created the vCPU, which runs it in QEMU and in the demo
 * VMM (kvmstat profile samples these). A source whose id does not parse
 * is left out.
 */
static void render_vcpu_threads(const struct snapshot *snap, const struct vm_meta *vm,
				struct buf *b)
{
	bool first = true;

	buf_puts(b, ",\"vcpu_threads\":[");
	for (size_t j = 0; j < snap->n_sources; j++) {
		const struct source *s = snap->sources[j];
		unsigned tid;
		int vcpu;

		if (s->vm != vm || s->vcpu < 0 || statsid_parse(s->id, &tid, &vcpu) < 0 ||
		    vcpu != s->vcpu)
			continue;
		buf_printf(b, "%s{\"vcpu\":%d,\"tid\":%u}", first ? "" : ",", vcpu, tid);
		first = false;
	}
	buf_putc(b, ']');
}

static void render_vms(const struct snapshot *snap, const struct api_query *q,
		       const struct api_filter *f, struct buf *b)
{
	size_t shown = 0;
	bool first = true;

	buf_puts(b, "\"vms\":[");
	for (size_t i = 0; i < snap->n_vms; i++) {
		const struct vm_meta *vm = snap->vms[i];
		unsigned vcpus = 0;

		if (!api_filter_vm(f, vm))
			continue;
		if (shown++ >= q->limit)
			continue;
		for (size_t j = 0; j < snap->n_sources; j++)
			vcpus += snap->sources[j]->vm == vm && snap->sources[j]->vcpu >= 0;
		buf_puts(b, first ? "{\"vm\":" : ",{\"vm\":");
		first = false;
		json_str(b, vm->name);
		json_key_str(b, "kernel_id", vm->kernel_id);
		buf_printf(b, ",\"vmm_pid\":%d", (int)vm->pid);
		json_key_str(b, "vmm_comm", vm->comm);
		json_key_str(b, "source", vm->how);
		buf_printf(b, ",\"vcpus\":%u,\"created\":", vcpus);
		buf_put(b, vm->created.text + 1, strcspn(vm->created.text + 1, "\n"));
		render_vcpu_threads(snap, vm, b);
		buf_putc(b, '}');
	}
	buf_printf(b, "],\"total\":%zu,\"truncated\":%s", shown,
		   shown > q->limit ? "true" : "false");
}

unsigned api_render(const struct snapshot *snap, const struct api_query *q,
		    const struct api_env *env, struct buf *out)
{
	struct api_filter f;
	unsigned status = 400;

	if (compile_filters(q, &f, out) < 0)
		goto out;
	status = 200;
	buf_printf(out, "{\"status\":\"success\",\"version\":1,\"data\":{\"time\":%.3f,",
		   env->now_unix);
	buf_printf(out, "\"interval_s\":%.3f,\"history_s\":%g,", env->interval_ms / 1e3,
		   env->history_s);
	if (q->ep == API_VMS)
		render_vms(snap, q, &f, out);
	else if (q->ep == API_STATS)
		api_render_stats(snap, q, &f, env, out);
	else
		api_render_exits(snap, q, &f, env, out);
	buf_puts(out, "}}\n");
	free_filters(&f);
out:
	return status;
}
