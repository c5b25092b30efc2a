/* SPDX-License-Identifier: MIT */
/*
 * bench-render - the renderer alone, in process: N VMs x M vCPUs of the
 * real captured stats layouts (tests/data) with the captured vCPU values,
 * rendered ROUNDS times into one reused buffer, as the page cache does.
 * No VMs, no HTTP, no other process: the figure to tune the formatter by
 * (the daemon's own render_ns self-metric is the one the benchmark reports).
 *
 *   bench-render [VMS [VCPUS [ROUNDS [DATA_DIR [OUT]]]]]   (defaults 50 4 50 tests/data)
 *
 * OUT: also write the last text page to OUT.txt and the OpenMetrics one to
 * OUT.om (to check that a faster renderer still writes the same bytes).
 * Prints JSON: {"lines": L, "bytes": B, "text_ns": median, "om_ns": median}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "render.h"
#include "snapshot.h"

#include "captured.h"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* Sample value of word w of source i: the captured data, varied per source. */
static void fill(struct source *s, const uint64_t *captured, size_t n_captured, size_t i)
{
	uint64_t *slot = ring_begin_write(s->ring);
	uint32_t words = ring_words(s->ring);

	for (uint32_t w = 0; w < words; w++)
		slot[w] = (w < n_captured ? captured[w] : w) * (i % 7 + 1);
	ring_commit(s->ring, 1000);
}

static void dump(const char *out, const char *ext, const struct buf *b)
{
	char path[512];
	FILE *f;

	if (!out)
		return;
	snprintf(path, sizeof(path), "%s.%s", out, ext);
	f = fopen(path, "wb");
	if (!f || fwrite(b->data, 1, b->len, f) != b->len)
		exit(1);
	fclose(f);
}

static uint64_t median_render(struct snapshot *snap, struct selfstats *st, enum render_format f,
			      int rounds, struct buf *b, size_t *lines)
{
	uint64_t *t = calloc((size_t)rounds, sizeof(*t)), m;
	struct render_result res = { 0 };

	for (int r = 0; r < rounds; r++) {
		uint64_t t0 = captured_now_ns();

		b->len = 0;
		if (render_metrics(snap, st, f, NULL, b, &res) != 0)
			exit(1);
		t[r] = captured_now_ns() - t0;
	}
	qsort(t, (size_t)rounds, sizeof(*t), cmp_u64);
	m = t[rounds / 2];
	free(t);
	*lines = res.series;
	return m;
}

int main(int argc, char **argv)
{
	size_t vms = argc > 1 ? strtoul(argv[1], NULL, 10) : 50;
	size_t vcpus = argc > 2 ? strtoul(argv[2], NULL, 10) : 4;
	int rounds = argc > 3 ? atoi(argv[3]) : 50;
	const char *dir = argc > 4 ? argv[4] : "tests/data";
	struct schema *vm_sc = captured_schema(dir, "vm-stats-layout.bin", SCOPE_VM);
	struct schema *vcpu_sc = captured_schema(dir, "vcpu-stats-layout.bin", SCOPE_VCPU);
	size_t n_src = vms * (vcpus + 1), k = 0, data_len, lines, om_lines;
	struct vm_meta **metas = calloc(vms, sizeof(*metas));
	struct source **src = calloc(n_src, sizeof(*src));
	uint64_t *data = (uint64_t *)(void *)captured_read(dir, "vcpu-stats-data.bin", &data_len);
	struct selfstats st = { .start_time = 1700000000 };
	struct snapshot *snap = NULL;
	struct buf b = { 0 };
	uint64_t text_ns, om_ns;

	if (!metas || !src || rounds < 1)
		return 2;
	for (size_t v = 0; v < vms; v++) {
		char name[32];

		snprintf(name, sizeof(name), "b0-%zu", v);
		if (vm_meta_new(&metas[v], (uint32_t)v + 1, 1000, 0, name, "kvm-1000", "vmm",
				"registered") != 0)
			return 1;
		vm_meta_set_created(metas[v], 1700000000123456789ull);
		for (size_t c = 0; c <= vcpus; c++, k++) {
			struct schema *sc = c == 0 ? vm_sc : vcpu_sc;

			if (source_new(&src[k], metas[v], schema_ref(sc), -1,
				       c == 0 ? -1 : (int)c - 1, 4) != 0)
				return 1;
			fill(src[k], data, data_len / 8, k);
		}
	}
	if (snapshot_build(&snap, metas, vms, src, n_src, NULL) != 0)
		return 1;
	text_ns = median_render(snap, &st, FMT_TEXT_004, rounds, &b, &lines);
	dump(argc > 5 ? argv[5] : NULL, "txt", &b);
	om_ns = median_render(snap, &st, FMT_OPENMETRICS_100, rounds, &b, &om_lines);
	dump(argc > 5 ? argv[5] : NULL, "om", &b);
	printf(
	    "{\"vms\": %zu, \"vcpus\": %zu, \"lines\": %zu, \"om_lines\": %zu, \"om_bytes\": %zu, "
	    "\"text_ns\": %llu, \"om_ns\": %llu, \"text_ns_per_line\": %.1f, "
	    "\"om_ns_per_line\": %.1f}\n",
	    vms, vcpus, lines, om_lines, b.len, (unsigned long long)text_ns,
	    (unsigned long long)om_ns, (double)text_ns / (double)(lines ? lines : 1),
	    (double)om_ns / (double)(om_lines ? om_lines : 1));
	return 0;
}
