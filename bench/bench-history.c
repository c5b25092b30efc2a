/* SPDX-License-Identifier: MIT */
/*
 * bench-history - what [poll] history_s costs, in process, on the real
 * captured stats layouts (tests/data): N VMs x M vCPUs of sources with
 * histories sized as the worker sizes them, filled to the brim.
 *
 *   bench-history [VMS [VCPUS [HISTORY_S [INTERVAL_MS [ROUNDS [DATA_DIR]]]]]]
 *                 (defaults 500 4 60 1000 30 tests/data)
 *
 * Memory: the histories' bytes (ring_bytes, what kvmstatd_history_bytes
 * reports) and the resident memory they add once every slot was written.
 * CPU: the poller's per-tick work without the preads (a memcpy of each
 * data block into its ring stands in for the pread), with and without the
 * history's copy of the counters and gauges; the difference is the
 * history's cost per tick. API: the median time of the live page's query
 * and of two heavier ones. Prints JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "poller.h"
#include "snapshot.h"

#include "captured.h"

static long rss_kib(void)
{
	long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

struct world {
	size_t n;
	struct source **src;
	const uint64_t *data; /* a vCPU's captured block, stands in for every pread */
	size_t data_words;
	uint64_t t;
};

/* One tick: every data block into its ring (and its history when asked). */
static void tick(struct world *w, int history)
{
	w->t += 1000000000ull;
	for (size_t i = 0; i < w->n; i++) {
		struct source *s = w->src[i];
		uint64_t *slot = ring_begin_write(s->ring);
		size_t words = s->schema->data_words;

		memcpy(slot, w->data, (words < w->data_words ? words : w->data_words) * 8);
		slot[0] += w->t / 1000000; /* counters move */
		ring_commit(s->ring, w->t);
		if (history && s->hist)
			poller_keep_history(s->hist, s->schema->scalar_index, s->schema->n_scalar,
					    slot, w->t);
	}
}

static uint64_t median_tick(struct world *w, int history, int rounds)
{
	uint64_t *t = calloc((size_t)rounds, sizeof(*t)), m;

	for (int r = 0; r < rounds; r++) {
		uint64_t t0 = captured_now_ns();

		tick(w, history);
		t[r] = captured_now_ns() - t0;
	}
	qsort(t, (size_t)rounds, sizeof(*t), cmp_u64);
	m = t[rounds / 2];
	free(t);
	return m;
}

static uint64_t median_query(const struct snapshot *snap, const char *const *kv, size_t n_kv,
			     int rounds, size_t *bytes)
{
	const struct api_env env = { 1, 1000, 60, false, NULL };
	uint64_t *t = calloc((size_t)rounds, sizeof(*t)), m;
	struct api_query q;
	char why[160];

	api_query_init(&q, API_STATS);
	for (size_t i = 0; i + 1 < n_kv; i += 2)
		if (api_query_set(&q, kv[i], kv[i + 1], why, sizeof(why)) < 0)
			exit(1);
	for (int r = 0; r < rounds; r++) {
		struct buf b = { 0 };
		uint64_t t0 = captured_now_ns();

		if (api_render(snap, &q, &env, &b) != 200)
			exit(1);
		t[r] = captured_now_ns() - t0;
		*bytes = b.len;
		buf_free(&b);
	}
	qsort(t, (size_t)rounds, sizeof(*t), cmp_u64);
	m = t[rounds / 2];
	free(t);
	return m;
}

int main(int argc, char **argv)
{
	size_t vms = argc > 1 ? strtoul(argv[1], NULL, 10) : 500;
	size_t vcpus = argc > 2 ? strtoul(argv[2], NULL, 10) : 4;
	struct config cfg;
	int rounds = argc > 5 ? atoi(argv[5]) : 30;
	const char *dir = argc > 6 ? argv[6] : "tests/data";
	struct schema *vm_sc = captured_schema(dir, "vm-stats-layout.bin", SCOPE_VM);
	struct schema *vcpu_sc = captured_schema(dir, "vcpu-stats-layout.bin", SCOPE_VCPU);
	struct world w = { .n = vms * (vcpus + 1) };
	struct vm_meta **metas = calloc(vms, sizeof(*metas));
	struct snapshot *snap = NULL;
	size_t k = 0, data_len, hist_bytes = 0, page_bytes = 0, vcpu_bytes = 0, host_bytes = 0;
	long rss0, rss1, rss2;
	unsigned slots;
	uint64_t tick_plain, tick_hist, q_page, q_vcpu, q_host;
	static const char *const page_q[] = { "group", "vm", "limit",	"50",
					      "spark", "60", "nonzero", "1" };
	static const char *const vcpu_q[] = { "group", "vcpu", "limit", "1000", "window", "10" };
	static const char *const host_q[] = { "group",	"host", "match", "exits",
					      "window", "60",	"spark", "60" };

	config_defaults(&cfg);
	cfg.history_s = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 60;
	cfg.interval_ms = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 1000;
	slots = config_history_slots(&cfg);
	w.src = calloc(w.n, sizeof(*w.src));
	w.data = (const uint64_t *)(void *)captured_read(dir, "vcpu-stats-data.bin", &data_len);
	w.data_words = data_len / 8;
	if (!metas || !w.src || rounds < 1)
		return 2;
	for (size_t v = 0; v < vms; v++) {
		char name[32];

		snprintf(name, sizeof(name), "vm-%zu", v);
		if (vm_meta_new(&metas[v], (uint32_t)v + 1, 1000, 0, name, "kvm-1000", "vmm",
				"registered") != 0)
			return 1;
		for (size_t c = 0; c <= vcpus; c++, k++)
			if (source_new(&w.src[k], metas[v], schema_ref(c == 0 ? vm_sc : vcpu_sc),
				       -1, c == 0 ? -1 : (int)c - 1, cfg.ring_slots) != 0)
				return 1;
	}
	for (int r = 0; r < (int)cfg.ring_slots; r++)
		tick(&w, 0);
	rss0 = rss_kib();
	for (size_t i = 0; i < w.n; i++) {
		if (source_set_history(w.src[i], slots) != 0)
			return 1;
		hist_bytes += ring_bytes(w.src[i]->hist);
	}
	rss1 = rss_kib();
	for (unsigned r = 0; r < slots; r++) /* every slot written once: all resident */
		tick(&w, 1);
	rss2 = rss_kib();
	tick_plain = median_tick(&w, 0, rounds);
	tick_hist = median_tick(&w, 1, rounds);
	if (snapshot_build(&snap, metas, vms, w.src, w.n, NULL) != 0)
		return 1;
	q_page = median_query(snap, page_q, 8, rounds, &page_bytes);
	q_vcpu = median_query(snap, vcpu_q, 6, rounds, &vcpu_bytes);
	q_host = median_query(snap, host_q, 8, rounds, &host_bytes);
	printf("{\"vms\": %zu, \"vcpus\": %zu, \"history_s\": %u, \"interval_ms\": %u, "
	       "\"slots\": %u, \"vcpu_scalars\": %u, \"vm_scalars\": %u,\n"
	       " \"history_bytes\": %zu, \"history_mib\": %.1f, \"rss_kib_before\": %ld, "
	       "\"rss_kib_allocated\": %ld, \"rss_kib_filled\": %ld, \"rss_mib_added\": %.1f,\n"
	       " \"tick_ns_without_history\": %llu, \"tick_ns_with_history\": %llu, "
	       "\"history_ns_per_tick\": %lld,\n"
	       " \"api_page_ns\": %llu, \"api_page_bytes\": %zu, \"api_vcpu_1000_ns\": %llu, "
	       "\"api_vcpu_1000_bytes\": %zu, \"api_host_exits_spark_ns\": %llu}\n",
	       vms, vcpus, cfg.history_s, cfg.interval_ms, slots, vcpu_sc->n_scalar,
	       vm_sc->n_scalar, hist_bytes, (double)hist_bytes / 1048576.0, rss0, rss1, rss2,
	       (double)(rss2 - rss0) / 1024.0, (unsigned long long)tick_plain,
	       (unsigned long long)tick_hist, (long long)tick_hist - (long long)tick_plain,
	       (unsigned long long)q_page, page_bytes, (unsigned long long)q_vcpu, vcpu_bytes,
	       (unsigned long long)q_host);
	return 0;
}
