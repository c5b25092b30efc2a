/* SPDX-License-Identifier: MIT */
/* bpfload - see bpfload.h. */
#include "bpfload.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

/*
 * A refusal for want of privilege (EPERM) and one by the verifier (EACCES,
 * or ENOSPC when its log overflowed) look alike in strerror; the log says
 * which. The kernel's own sentence is the last line before the summary
 * ("processed N insns ..."): copy that one.
 */
void bpfload_verifier_reason(const char *log, char *out, size_t size)
{
	const char *end = log + strlen(log), *line = NULL, *p = log;

	snprintf(out, size, "no verifier log");
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (!strncmp(p, "processed ", 10))
			break;
		if (len)
			line = p;
		p += len + 1;
	}
	if (line)
		snprintf(out, size, "%.*s", (int)strcspn(line, "\n"), line);
}

#ifdef KVMSTATD_BPF
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdarg.h>
#include <stdlib.h>

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
		return " (needs CAP_BPF and CAP_PERFMON at start, and CAP_SYS_ADMIN where KVM is a "
		       "module: libbpf reads the module's BTF)";
	case -ENOENT:
	case -ESRCH:
		return " (no KVM tracepoints or BTF in this kernel?)";
	default:
		return "";
	}
}

/* The verifier's log of a failed load: enough for the programs' size. */
#define VERIFIER_LOG_SIZE (1u << 20)

int bpfload_start(struct bpf_telemetry *t, const struct config *cfg, char *why, size_t why_size)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	struct kvmexit *skel = NULL;
	const char *step = "open";
	char *log = NULL, reason[160];
	int rc;

	memset(t, 0, sizeof(*t));
	t->slots_fd = t->meta_fd = -1;
	if (!strcmp(cfg->bpf, "off"))
		return 0;
	libbpf_set_print(libbpf_log);
	/* level 0 with a buffer: libbpf fills it only when a load fails */
	log = calloc(1, VERIFIER_LOG_SIZE);
	opts.kernel_log_buf = log;
	opts.kernel_log_size = log ? VERIFIER_LOG_SIZE : 0;
	skel = kvmexit__open_opts(&opts);
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
	free(log);
	return 0;
fail:
	if (log && log[0] && (rc == -EACCES || rc == -EINVAL || rc == -ENOSPC)) {
		bpfload_verifier_reason(log, reason, sizeof(reason));
		snprintf(why, why_size,
			 "the kernel's verifier refused the exit telemetry BPF program: %s",
			 reason);
	} else {
		snprintf(why, why_size, "cannot %s the exit telemetry BPF program: %s%s", step,
			 strerror(-rc), hint(rc));
	}
	kvmexit__destroy(skel);
	free(log);
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
