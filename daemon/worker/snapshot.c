/* SPDX-License-Identifier: MIT */
/* snapshot - see snapshot.h. */
#include "snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int cmp_source(const void *a, const void *b)
{
	const struct source *x = *(struct source *const *)a, *y = *(struct source *const *)b;

	if (x->schema->scope != y->schema->scope)
		return x->schema->scope == SCOPE_VM ? -1 : 1;
	if (x->schema != y->schema)
		return x->schema < y->schema ? -1 : 1;
	if (x->vm->id != y->vm->id)
		return x->vm->id < y->vm->id ? -1 : 1;
	return (x->vcpu > y->vcpu) - (x->vcpu < y->vcpu);
}

static struct plan_family *find_family(struct snapshot *s, const char *name)
{
	for (size_t i = 0; i < s->n_families; i++)
		if (!strcmp(s->families[i].head->family, name))
			return &s->families[i];
	return NULL;
}

static int add_part(struct snapshot *s, const struct schema *sc, size_t stat, size_t first,
		    size_t count)
{
	const struct schema_stat *st = &sc->stats[stat];
	struct plan_family *f = find_family(s, st->family);
	struct plan_part *p;

	if (!f) {
		f = &s->families[s->n_families++];
		f->head = st;
	} else if (f->head->type != st->type || f->head->flags.unit != st->flags.unit) {
		s->type_conflicts++;
		return 0;
	}
	p = realloc(f->parts, (f->n_parts + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	f->parts = p;
	f->parts[f->n_parts++] = (struct plan_part){ sc, stat, first, count };
	return 0;
}

/* Walk the runs of sources sharing a schema; each stat joins its family. */
static int build_plan(struct snapshot *s, const struct stat_filter *filter)
{
	size_t total = 0;

	for (size_t i = 0; i < s->n_sources;) {
		size_t j = i;

		while (j < s->n_sources && s->sources[j]->schema == s->sources[i]->schema)
			j++;
		total += s->sources[i]->schema->n_stats;
		i = j;
	}
	s->families = calloc(total ? total : 1, sizeof(*s->families));
	if (!s->families)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_sources;) {
		const struct schema *sc = s->sources[i]->schema;
		size_t j = i;

		while (j < s->n_sources && s->sources[j]->schema == sc)
			j++;
		for (size_t k = 0; k < sc->n_stats; k++)
			if (stat_filter_keeps(filter, &sc->stats[k]) &&
			    add_part(s, sc, k, i, j - i) < 0)
				return -ENOMEM;
		i = j;
	}
	return 0;
}

int snapshot_build(struct snapshot **out, struct vm_meta *const *vms, size_t n_vms,
		   struct source *const *sources, size_t n_sources,
		   const struct stat_filter *filter)
{
	struct snapshot *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	atomic_init(&s->refs, 1);
	s->vms = calloc(n_vms ? n_vms : 1, sizeof(*s->vms));
	s->sources = calloc(n_sources ? n_sources : 1, sizeof(*s->sources));
	if (!s->vms || !s->sources)
		goto fail;
	for (; s->n_vms < n_vms; s->n_vms++)
		s->vms[s->n_vms] = vm_meta_ref(vms[s->n_vms]);
	for (; s->n_sources < n_sources; s->n_sources++) {
		s->sources[s->n_sources] = source_ref(sources[s->n_sources]);
		s->n_vcpus += sources[s->n_sources]->vcpu >= 0;
	}
	qsort(s->sources, s->n_sources, sizeof(*s->sources), cmp_source);
	if (build_plan(s, filter) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	snapshot_unref(s);
	return -ENOMEM;
}

void snapshot_unref(struct snapshot *s)
{
	if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < s->n_vms; i++)
		vm_meta_unref(s->vms[i]);
	for (size_t i = 0; i < s->n_sources; i++)
		source_unref(s->sources[i]);
	for (size_t i = 0; s->families && i < s->n_families; i++)
		free(s->families[i].parts);
	free(s->families);
	free(s->vms);
	free(s->sources);
	free(s);
}

void snapshot_pub_init(struct snapshot_pub *p)
{
	pthread_mutex_init(&p->lock, NULL);
	p->current = NULL;
	atomic_init(&p->generation, 1);
}

void snapshot_pub_fini(struct snapshot_pub *p)
{
	snapshot_publish(p, NULL);
	pthread_mutex_destroy(&p->lock);
}

void snapshot_tick(struct snapshot_pub *p)
{
	atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
}

uint64_t snapshot_generation(struct snapshot_pub *p)
{
	return atomic_load_explicit(&p->generation, memory_order_acquire);
}

void snapshot_publish(struct snapshot_pub *p, struct snapshot *s)
{
	struct snapshot *old;

	pthread_mutex_lock(&p->lock);
	old = p->current;
	p->current = s;
	pthread_mutex_unlock(&p->lock);
	snapshot_tick(p);
	snapshot_unref(old);
}

struct snapshot *snapshot_acquire(struct snapshot_pub *p)
{
	struct snapshot *s;

	pthread_mutex_lock(&p->lock);
	s = p->current;
	if (s)
		atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&p->lock);
	return s;
}
