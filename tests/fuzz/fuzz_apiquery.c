/* SPDX-License-Identifier: MIT */
/*
 * fuzz_apiquery - libFuzzer target: arbitrary bytes as the query string of
 * a JSON API request, split on '&' and the first '=' as libmicrohttpd
 * hands them over (a pair without '=' has no value), then answered from
 * an empty snapshot.
 *
 * Beyond memory safety it checks the contract: a refused parameter leaves
 * the query as it was and says why naming the parameter; an accepted
 * query stays inside its bounds; the answer is 200 or 400 and one JSON
 * object ending in a newline.
 *
 * Build and run: see tests/fuzz/README.md. Seeds: tests/fuzz/corpus/apiquery.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_bounds(const struct api_query *q)
{
	if (q->limit < 1 || q->limit > API_LIMIT_MAX || q->spark > API_SPARK_MAX ||
	    q->window_s > API_WINDOW_MAX || q->vcpu < -1 || q->vcpu > 65535 ||
	    strnlen(q->vm, sizeof(q->vm)) > API_PATTERN_MAX ||
	    strnlen(q->match, sizeof(q->match)) > API_PATTERN_MAX || q->group > API_GROUP_HOST ||
	    q->sort > API_SORT_NAME)
		abort();
}

static void set(struct api_query *q, char *kv)
{
	char *eq = strchr(kv, '='), why[160] = "";
	struct api_query before = *q;

	if (eq)
		*eq++ = '\0';
	if (api_query_set(q, kv, eq, why, sizeof(why)) < 0) {
		if (memcmp(q, &before, sizeof(*q)) || !why[0])
			abort();
	}
	check_bounds(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct api_env env = { 1, 1000, 60, false, NULL };
	char *text = malloc(size + 1), *save = NULL;
	struct snapshot *snap = NULL;
	struct api_query q;
	struct buf b = { 0 };
	unsigned status;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	api_query_init(&q, (enum api_endpoint)(size % 3));
	for (char *kv = strtok_r(text, "&", &save); kv; kv = strtok_r(NULL, "&", &save))
		set(&q, kv);
	if (snapshot_build(&snap, NULL, 0, NULL, 0, NULL) == 0) {
		status = api_render(snap, &q, &env, &b);
		if ((status != 200 && status != 400) || b.failed || b.len < 2 || b.data[0] != '{' ||
		    b.data[b.len - 1] != '\n')
			abort();
		snapshot_unref(snap);
	}
	buf_free(&b);
	free(text);
	return 0;
}
