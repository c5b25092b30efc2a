/* SPDX-License-Identifier: MIT */
/* bpfload - see bpfload.h. */
#include "bpfload.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

#ifdef KVMSTATD_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdarg.h>

#include "bpf_layout.h"
#include "kvmexit.skel.h"

/* libbpf explains a failure at length; only -v shows it, we log one line. */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[512];

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_debug("libbpf: %s", line);
	return 0;
}

static const char *hint(int rc)
{
	switch (rc) {
	case -EPERM:
	case -EACCES:
		return " (needs CAP_BPF and CAP_PERFMON at start)";
	case -ENOENT:
	case -ESRCH:
		return " (no KVM tracepoints or BTF in this kernel?)";
	default:
		return "";
	}
}

int bpfload_start(struct bpf_telemetry *t, const struct config *cfg, char *why, size_t why_size)
{
	struct kvmexit *skel = NULL;
	const char *step = "open";
	int rc;

	memset(t, 0, sizeof(*t));
	t->slots_fd = t->meta_fd = -1;
	if (!strcmp(cfg->bpf, "off"))
		return 0;
	libbpf_set_print(libbpf_log);
	skel = kvmexit__open();
	if (!skel) {
		rc = -errno;
		goto fail;
	}
	skel->rodata->n_slots = cfg->bpf_slots;
	step = "size the slot map";
	if ((rc = bpf_map__set_max_entries(skel->maps.slots, cfg->bpf_slots)) < 0)
		goto fail;
	step = "load";
	if ((rc = kvmexit__load(skel)) < 0)
		goto fail;
	step = "attach";
	if ((rc = kvmexit__attach(skel)) < 0)
		goto fail;
	step = "freeze the maps";
	t->slots_fd = bpf_map__fd(skel->maps.slots);
	t->meta_fd = bpf_map__fd(skel->maps.meta);
	if (bpf_map_freeze(t->slots_fd) < 0 || bpf_map_freeze(t->meta_fd) < 0) {
		rc = -errno;
		goto fail;
	}
	t->n_slots = cfg->bpf_slots;
	t->skel = skel;
	t->enabled = true;
	return 0;
fail:
	snprintf(why, why_size, "cannot %s the exit telemetry BPF program: %s%s", step,
		 strerror(-rc), hint(rc));
	kvmexit__destroy(skel);
	t->slots_fd = t->meta_fd = -1;
	return rc;
}

void bpfload_stop(struct bpf_telemetry *t)
{
	if (t->skel)
		kvmexit__destroy(t->skel);
	memset(t, 0, sizeof(*t));
	t->slots_fd = t->meta_fd = -1;
}

#else /* built with BPF=0 */

int bpfload_start(struct bpf_telemetry *t, const struct config *cfg, char *why, size_t why_size)
{
	memset(t, 0, sizeof(*t));
	t->slots_fd = t->meta_fd = -1;
	if (!strcmp(cfg->bpf, "off"))
		return 0;
	snprintf(why, why_size, "this kvmstatd was built without exit telemetry (make BPF=0)");
	return -EOPNOTSUPP;
}

void bpfload_stop(struct bpf_telemetry *t)
{
	memset(t, 0, sizeof(*t));
	t->slots_fd = t->meta_fd = -1;
}

#endif
