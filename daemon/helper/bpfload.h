/* SPDX-License-Identifier: MIT */
/*
 * bpfload - the privileged half of exit telemetry: load the CO-RE BPF
 * object (bpf/kvmexit.bpf.c), attach its tracepoint programs, and freeze
 * the two maps the worker reads.
 *
 * Called once at start-up while the process still has CAP_BPF and
 * CAP_PERFMON; afterwards the programs stay attached through the links
 * this process holds, so the helper drops both capabilities like every
 * other. Freezing makes the maps read-only to every system call (the BPF
 * programs still write them), which is what lets the unprivileged worker
 * mmap them read-only: it can read the counts and change nothing.
 */
#ifndef KVMSTATD_BPFLOAD_H
#define KVMSTATD_BPFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct bpf_telemetry {
	bool enabled;
	int slots_fd, meta_fd; /* frozen maps, handed (as copies) to each worker */
	uint32_t n_slots;
	void *skel; /* struct kvmexit: its links keep the programs attached */
};

/*
 * [daemon] bpf = off: nothing. Otherwise load, attach and freeze; on
 * failure returns -errno with a sentence in why (the caller decides:
 * "on" stops, "auto" logs it once and goes on without).
 */
int bpfload_start(struct bpf_telemetry *t, const struct config *cfg, char *why, size_t why_size);
void bpfload_stop(struct bpf_telemetry *t);

/*
 * The kernel's sentence in a verifier log (the last line before its
 * "processed N insns" summary), for the one line the helper logs when the
 * verifier refuses the object.
 */
void bpfload_verifier_reason(const char *log, char *out, size_t size);

#endif
