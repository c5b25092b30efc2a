/* SPDX-License-Identifier: MIT */
/*
 * statsid - the few facts about a KVM stats fd that both processes need:
 * the bounds of its header fields and the meaning of its id string. The
 * helper checks a header against them before it accepts an fd; the
 * worker's schema parser (worker/schema.h) builds on them. Pure.
 */
#ifndef KVMSTATD_STATSID_H
#define KVMSTATD_STATSID_H

/* The largest name_size and num_desc a header may declare. */
#define STATSID_MAX_NAME_SIZE 256u
#define STATSID_MAX_DESCS 4096u

/*
 * Split a stats id: "kvm-<tid>" (a VM: *vcpu = -1) or "kvm-<tid>/vcpu-<n>"
 * (n <= 65535). 0 or -EINVAL. The tid is the thread that created the VM or
 * vCPU; the kernel links a vCPU to its VM in no other way.
 */
int statsid_parse(const char *id, unsigned *tid, int *vcpu);

#endif
