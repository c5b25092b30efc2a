/* SPDX-License-Identifier: MIT */
/*
 * exit_reasons - label values for KVM exit reasons: KVM_EXIT_* (exits to
 * userspace) and the hardware reasons of VMX and SVM.
 *
 * Exit-reason names are not in the kernel's BTF, and Debian 12's uapi
 * headers (Linux 6.1) lack reasons that newer kernels report, so the
 * tables are ours, current to Linux 6.18 (the kernel's own kvm_exit and
 * kvm_userspace_exit trace formats). A number no table knows becomes
 * "reason_<n>", never an error. Names are lower-case [a-z0-9_].
 */
#ifndef KVMSTATD_EXIT_REASONS_H
#define KVMSTATD_EXIT_REASONS_H

#include <stddef.h>
#include <stdint.h>

#define EXIT_REASON_NAME_MAX 32 /* longest name or "reason_<u32>", NUL included */

/* Name of KVM_EXIT_<reason>, e.g. "io" for KVM_EXIT_IO; NULL if unknown. */
const char *exit_reason_user(uint32_t reason);
/* isa 1: VMX basic exit reason, 2: SVM exit code; NULL if unknown. */
const char *exit_reason_hw(uint32_t isa, uint32_t reason);

/* The known name, else "reason_<n>", into out; returns out. */
const char *exit_reason_label(const char *known, uint32_t reason, char *out, size_t size);

#endif
