/* SPDX-License-Identifier: MIT */
/* render_page - see render_page.h. */
#include "render_page.h"

#include <string.h>

struct render_labels render_source_labels(const struct source *s)
{
	return (struct render_labels){ s->labels, s->labels_len, &s->created };
}

struct render_labels render_vm_labels(const struct vm_meta *vm)
{
	return (struct render_labels){ vm->label, strlen(vm->label), &vm->created };
}

bool render_next_vcpu_run(const struct snapshot *snap, size_t *start, size_t *end)
{
	size_t i = *start, j;

	while (i < snap->n_sources && snap->sources[i]->vcpu < 0)
		i++;
	j = i;
	while (j < snap->n_sources && snap->sources[j]->vcpu >= 0 &&
	       snap->sources[j]->vm == snap->sources[i]->vm)
		j++;
	*start = i;
	*end = j;
	return j > i;
}
