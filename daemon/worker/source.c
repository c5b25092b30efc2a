/* SPDX-License-Identifier: MIT */
/* source - see source.h. */
#include "source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "escape.h"
#include "metric.h"

void created_set(struct created *c, uint64_t unix_ns)
{
	char num[METRIC_NUM_MAX];
	unsigned ms = (unsigned)(unix_ns / 1000000u % 1000u);
	int n = metric_format_u64(unix_ns / 1000000000u, num);

	c->text[0] = ' ';
	memcpy(c->text + 1, num, (size_t)n);
	c->text[n + 1] = '.';
	c->text[n + 2] = (char)('0' + ms / 100);
	c->text[n + 3] = (char)('0' + ms / 10 % 10);
	c->text[n + 4] = (char)('0' + ms % 10);
	c->text[n + 5] = '\n';
	c->len = (unsigned char)(n + 6);
}

void vm_meta_set_created(struct vm_meta *vm, uint64_t unix_ns)
{
	created_set(&vm->created, unix_ns);
}

static char *make_info(const struct vm_meta *vm)
{
	char name[512], comm[128], kid[512];
	char *line = NULL;

	if (escape_text(vm->name, true, name, sizeof(name)) < 0 ||
	    escape_text(vm->comm, true, comm, sizeof(comm)) < 0 ||
	    escape_text(vm->kernel_id, true, kid, sizeof(kid)) < 0)
		return NULL;
	if (asprintf(&line,
		     "kvm_vm_info{vm=\"%s\",kernel_id=\"%s\",vmm_pid=\"%d\",vmm_comm=\"%s\",source="
		     "\"%s\"} 1\n",
		     name, kid, (int)vm->pid, comm, vm->how) < 0)
		return NULL;
	return line;
}

int vm_meta_new(struct vm_meta **out, uint32_t id, pid_t pid, uid_t uid, const char *name,
		const char *kernel_id, const char *comm, const char *how)
{
	struct vm_meta *vm = calloc(1, sizeof(*vm));
	char esc[512];

	if (!vm)
		return -ENOMEM;
	atomic_init(&vm->refs, 1);
	vm->id = id;
	vm->pid = pid;
	vm->uid = uid;
	vm->how = how;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	snprintf(vm->kernel_id, sizeof(vm->kernel_id), "%s", kernel_id);
	snprintf(vm->comm, sizeof(vm->comm), "%s", comm);
	created_set(&vm->created, clock_ns(CLOCK_REALTIME));
	/* labels are padded: the renderer copies them in BUF_PAD chunks */
	if (escape_text(vm->name, true, esc, sizeof(esc)) < 0 ||
	    !(vm->label = buf_padded_printf(NULL, "vm=\"%s\"", esc)) ||
	    !(vm->info_text = make_info(vm))) {
		vm_meta_unref(vm);
		return -ENOMEM;
	}
	*out = vm;
	return 0;
}

int vm_meta_set_kernel_id(struct vm_meta *vm, const char *kernel_id)
{
	if (kernel_id[0])
		snprintf(vm->kernel_id, sizeof(vm->kernel_id), "%s", kernel_id);
	else
		snprintf(vm->kernel_id, sizeof(vm->kernel_id), "kvm-%d", (int)vm->pid);
	free(vm->info_text);
	vm->info_text = make_info(vm);
	return vm->info_text ? 0 : -ENOMEM;
}

struct vm_meta *vm_meta_ref(struct vm_meta *vm)
{
	atomic_fetch_add_explicit(&vm->refs, 1, memory_order_relaxed);
	return vm;
}

void vm_meta_unref(struct vm_meta *vm)
{
	if (!vm || atomic_fetch_sub_explicit(&vm->refs, 1, memory_order_acq_rel) != 1)
		return;
	free(vm->label);
	free(vm->info_text);
	free(vm);
}

int source_new(struct source **out, struct vm_meta *vm, struct schema *schema, int fd, int vcpu,
	       uint32_t ring_slots)
{
	struct source *s = calloc(1, sizeof(*s));
	int rc = -ENOMEM;

	if (!s)
		goto fail;
	atomic_init(&s->refs, 1);
	s->sched_fd = -1;
	s->fd = fd;
	s->vcpu = vcpu;
	s->schema = schema;
	s->vm = vm_meta_ref(vm);
	s->created = vm->created;
	if (vcpu < 0)
		s->labels = buf_padded_printf(&s->labels_len, "%s", vm->label);
	else
		s->labels = buf_padded_printf(&s->labels_len, "%s,vcpu=\"%d\"", vm->label, vcpu);
	if (!s->labels)
		goto fail;
	rc = ring_new(&s->ring, ring_slots, schema->data_words);
	if (rc < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	if (s) {
		s->fd = -1; /* the caller still owns fd and schema on failure */
		s->schema = NULL;
		source_unref(s);
	}
	return rc;
}

int source_set_history(struct source *s, uint32_t slots)
{
	int rc = 0;

	if (slots >= 2 && !s->hist)
		rc = ring_new(&s->hist, slots, s->schema->n_scalar);
	return rc;
}

struct source *source_ref(struct source *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void source_close_fd(struct source *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (s->sched_fd >= 0)
		close(s->sched_fd);
	s->sched_fd = -1;
}

void source_unref(struct source *s)
{
	if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	source_close_fd(s);
	free(atomic_load_explicit(&s->bpf_last, memory_order_acquire));
	ring_free(s->ring);
	ring_free(s->hist);
	schema_unref(s->schema);
	vm_meta_unref(s->vm);
	free(s->labels);
	free(s);
}
