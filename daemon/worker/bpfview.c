/* SPDX-License-Identifier: MIT */
/* bpfview - see bpfview.h. */
#include "bpfview.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bpf_layout.h"

struct bpfview {
	const struct kx_slot *slots;
	const struct kx_meta *meta;
	uint32_t n;
	size_t slots_len, meta_len;
	uint64_t claims_seen; /* the poller's: claims when it last scanned */
	atomic_bool on;	      /* set last when mapped: the fields above are valid */
};

int bpfview_new(struct bpfview **out)
{
	struct bpfview *v = calloc(1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	atomic_init(&v->on, false);
	*out = v;
	return 0;
}

void bpfview_free(struct bpfview *v)
{
	if (!v)
		return;
	bpfview_unmap(v);
	free(v);
}

static size_t page_round(size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return (len + page - 1) / page * page;
}

int bpfview_map(struct bpfview *v, int slots_fd, int meta_fd, uint32_t n_slots, uint32_t slot_size)
{
	void *s, *m;

	if (atomic_load(&v->on))
		return -EEXIST;
	if (slot_size != sizeof(struct kx_slot) || n_slots == 0)
		return -EPROTO; /* a helper of another build: its layout is not ours */
	v->slots_len = page_round((size_t)n_slots * sizeof(struct kx_slot));
	v->meta_len = page_round(sizeof(struct kx_meta));
	/* the kernel refuses a length past the map: a wrong n_slots fails here */
	s = mmap(NULL, v->slots_len, PROT_READ, MAP_SHARED, slots_fd, 0);
	if (s == MAP_FAILED)
		return -errno;
	m = mmap(NULL, v->meta_len, PROT_READ, MAP_SHARED, meta_fd, 0);
	if (m == MAP_FAILED) {
		int rc = -errno;

		munmap(s, v->slots_len);
		return rc;
	}
	v->slots = s;
	v->meta = m;
	v->n = n_slots;
	v->claims_seen = ~0ull;
	atomic_store_explicit(&v->on, true, memory_order_release);
	return 0;
}

bool bpfview_enabled(const struct bpfview *v)
{
	return v && atomic_load_explicit(&v->on, memory_order_acquire);
}

void bpfview_unmap(struct bpfview *v)
{
	if (!atomic_exchange(&v->on, false))
		return;
	munmap((void *)v->slots, v->slots_len);
	munmap((void *)v->meta, v->meta_len);
	v->slots = NULL;
	v->meta = NULL;
}

static uint32_t load_seq(const struct kx_slot *s)
{
	return __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
}

bool bpfview_slot_matches(const void *slot, const char *vm_id, const char *vcpu_id)
{
	const struct kx_slot *s = slot;

	/* strings from the map end inside their arrays, or match nothing */
	return memchr(s->vm_id, '\0', KX_ID_LEN) && memchr(s->vcpu_id, '\0', KX_ID_LEN) &&
	       !strcmp(s->vm_id, vm_id) && !strcmp(s->vcpu_id, vcpu_id);
}

static uint64_t fnv(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n && p[i]; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
	return h;
}

/* Open addressing over the unjoined sources, keyed by their vCPU ids. */
struct table {
	struct source **e;
	size_t mask;
};

static int table_fill(struct table *t, struct source *const *src, size_t n, size_t unjoined)
{
	size_t cap = 16;

	while (cap < unjoined * 2)
		cap *= 2;
	t->e = calloc(cap, sizeof(*t->e));
	if (!t->e)
		return -ENOMEM;
	t->mask = cap - 1;
	for (size_t i = 0; i < n; i++) {
		size_t h;

		if (atomic_load_explicit(&src[i]->bpf_join, memory_order_relaxed))
			continue;
		h = fnv(src[i]->id, sizeof(src[i]->id)) & t->mask;
		while (t->e[h])
			h = (h + 1) & t->mask;
		t->e[h] = src[i];
	}
	return 0;
}

static void scan(const struct bpfview *v, struct source *const *src, size_t n, size_t unjoined)
{
	struct table t;

	if (table_fill(&t, src, n, unjoined) < 0)
		return; /* next tick */
	for (uint32_t i = 0; i < v->n; i++) {
		const struct kx_slot *s = &v->slots[i];
		uint32_t seq = load_seq(s);
		size_t h;

		if ((seq & 1) || !s->owner_tid || !memchr(s->vcpu_id, '\0', KX_ID_LEN))
			continue;
		h = fnv(s->vcpu_id, KX_ID_LEN) & t.mask;
		for (; t.e[h]; h = (h + 1) & t.mask) {
			struct source *so = t.e[h];

			if (!bpfview_slot_matches(s, so->vm->kernel_id, so->id))
				continue;
			atomic_thread_fence(memory_order_acquire);
			if (load_seq(s) == seq)
				atomic_store_explicit(&so->bpf_join, (uint64_t)seq << 32 | (i + 1u),
						      memory_order_release);
			break;
		}
	}
	free(t.e);
}

void bpfview_join(struct bpfview *v, struct source *const *src, size_t n, bool added)
{
	size_t unjoined = 0;
	uint64_t claims;

	if (!bpfview_enabled(v))
		return;
	for (size_t i = 0; i < n; i++) {
		uint64_t j = atomic_load_explicit(&src[i]->bpf_join, memory_order_relaxed);

		if (j && load_seq(&v->slots[(uint32_t)j - 1]) != (uint32_t)(j >> 32)) {
			atomic_store_explicit(&src[i]->bpf_join, 0, memory_order_release);
			j = 0;
		}
		unjoined += !j;
	}
	claims = __atomic_load_n(&v->meta->claims, __ATOMIC_ACQUIRE);
	if (unjoined && (added || claims != v->claims_seen)) {
		v->claims_seen = claims;
		scan(v, src, n, unjoined);
	}
}

int bpfview_read(const struct bpfview *v, const struct source *s, size_t off, size_t len, void *out)
{
	uint64_t j = atomic_load_explicit(&s->bpf_join, memory_order_acquire);
	const struct kx_slot *last;

	if (off > sizeof(struct kx_counts) || len > sizeof(struct kx_counts) - off)
		return -EINVAL;
	if (j && bpfview_enabled(v)) {
		uint32_t idx = (uint32_t)j - 1, seq = (uint32_t)(j >> 32);
		const struct kx_slot *sl;

		if (idx >= v->n)
			return -ENOENT;
		sl = &v->slots[idx];
		if (load_seq(sl) != seq)
			return -ENOENT;
		memcpy(out, (const char *)&sl->c + off, len);
		atomic_thread_fence(memory_order_acquire);
		return load_seq(sl) == seq ? 0 : -ENOENT;
	}
	last = atomic_load_explicit(&s->bpf_last, memory_order_acquire);
	if (!last)
		return -ENOENT;
	memcpy(out, (const char *)&last->c + off, len);
	return 0;
}

void bpfview_retire(const struct bpfview *v, struct source *s)
{
	struct kx_slot *copy;

	if (!atomic_load_explicit(&s->bpf_join, memory_order_relaxed) ||
	    atomic_load_explicit(&s->bpf_last, memory_order_relaxed))
		return;
	copy = calloc(1, sizeof(*copy));
	if (copy && bpfview_read(v, s, 0, sizeof(copy->c), &copy->c) == 0)
		atomic_store_explicit(&s->bpf_last, copy, memory_order_release);
	else
		free(copy);
	atomic_store_explicit(&s->bpf_join, 0, memory_order_release);
}

int bpfview_meta(const struct bpfview *v, struct bpfview_meta *m)
{
	if (!bpfview_enabled(v))
		return -ENOENT;
	m->claims = __atomic_load_n(&v->meta->claims, __ATOMIC_RELAXED);
	m->slots_full = __atomic_load_n(&v->meta->slots_full, __ATOMIC_RELAXED);
	m->no_vcpu = __atomic_load_n(&v->meta->no_vcpu, __ATOMIC_RELAXED);
	return 0;
}
