/* SPDX-License-Identifier: MIT */
/*
 * fuzz_schema - libFuzzer target: an arbitrary stats block (header, id,
 * descriptors) through everything the worker does with one: schema_parse
 * for both scopes, schema_parse_id, interning, and - when the block is
 * accepted - a source with a sample rendered in both formats.
 *
 * Build and run: see tests/fuzz/README.md. Seeds: tests/fuzz/corpus/schema.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "schema.h"
#include "snapshot.h"
#include "source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Render one accepted schema with a sample of awkward values. */
static void render_with(struct schema *s, uint64_t seed)
{
	struct vm_meta *vm = NULL;
	struct source *src = NULL;
	struct snapshot *snap = NULL;
	struct buf out = { 0 };
	uint64_t *slot;

	if (vm_meta_new(&vm, 1, 1, 0, "fuzz\"vm\\\n", "kvm-1", "fuzz", "registered") < 0)
		return;
	if (source_new(&src, vm, schema_ref(s), -1, s->scope == SCOPE_VCPU ? 0 : -1, 2) < 0) {
		schema_unref(s);
		goto out;
	}
	slot = ring_begin_write(src->ring);
	for (uint32_t i = 0; i < s->data_words; i++)
		slot[i] = (seed & (UINT64_C(1) << (i % 64))) ? UINT64_MAX - i : i;
	ring_commit(src->ring, 1);
	if (snapshot_build(&snap, &vm, 1, &src, 1, NULL) == 0) {
		/* per vCPU and plain, then summed per VM, capped, without _created */
		struct render_config rc = { .opts = { .vcpu_sum = seed & 1,
						      .no_created = seed & 2,
						      .max_series = (size_t)(seed >> 8) % 64 } };

		render_metrics(snap, NULL, FMT_TEXT_004, NULL, &out, NULL);
		buf_free(&out);
		render_metrics(snap, NULL, FMT_OPENMETRICS_100, NULL, &out, NULL);
		buf_free(&out);
		render_metrics(snap, NULL, FMT_OPENMETRICS_100, &rc, &out, NULL);
		buf_free(&out);
		snapshot_unref(snap);
	}
out:
	source_unref(src);
	vm_meta_unref(vm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy, so the sanitizer sees reads past the end */
	uint8_t *buf = malloc(size ? size : 1);
	struct schema_cache cache = { 0 };
	struct schema_error err;
	char id[SCHEMA_ID_MAX];
	uint64_t seed = size;

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	for (size_t i = 0; i < size && i < 8; i++)
		seed = seed * 131 + data[i];
	schema_parse_id(buf, size, id, &err);
	for (int scope = SCOPE_VM; scope <= SCOPE_VCPU; scope++) {
		struct schema *s = NULL, *again = NULL;
		bool created = false;

		if (schema_cache_get(&cache, buf, size, (enum stat_scope)scope, &s, &created,
				     &err) < 0)
			continue;
		if (schema_cache_get(&cache, buf, size, (enum stat_scope)scope, &again, &created,
				     &err) == 0) {
			if (again != s || created)
				abort(); /* the same block must intern to the same schema */
			schema_unref(again);
		}
		render_with(s, seed);
		schema_unref(s);
	}
	schema_cache_fini(&cache);
	free(buf);
	return 0;
}
