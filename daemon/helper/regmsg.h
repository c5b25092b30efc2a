/* SPDX-License-Identifier: MIT */
/*
 * regmsg - decode and check one registration request as received from a
 * VMM (client/kvmstat_proto.h): everything that can be decided from the
 * datagram's bytes and its descriptor count alone. Pure (no I/O, no helper
 * state), so the fuzzer can call it on arbitrary bytes.
 *
 * Rules, in the order they are checked (the first broken one is reported):
 *   more than KVMSTAT_MAX_FDS_PER_MSG fds                   -E2BIG    fd_count
 *   shorter than a header                                   -EBADMSG  bad_message
 *   wrong magic or version                                  -EBADMSG  bad_message
 *   type not REGISTER_VM, ADD_VCPUS or UNREGISTER_VM        -EBADMSG  bad_message
 *   header length != received length != the type's size    -EBADMSG  bad_message
 *   flags or reserved not 0                                 -EBADMSG  bad_message
 *   REGISTER_VM or ADD_VCPUS without fds, UNREGISTER_VM
 *   with fds                                                -E2BIG    fd_count
 *   REGISTER_VM name unterminated, not UTF-8, or with
 *   control characters                                      -EBADMSG  bad_message
 * What needs the helper's state (handles, names in use, limits) or the fds
 * themselves (fdcheck) comes after, in the helper.
 */
#ifndef KVMSTATD_REGMSG_H
#define KVMSTATD_REGMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvmstat_proto.h"
#include "reject.h"

struct regmsg {
	/*
	 * Filled whenever the datagram holds a whole header, even if it is
	 * refused later: the reply echoes seq. has_seq is false (seq 0) for a
	 * datagram shorter than a header. type is the header's raw value.
	 */
	bool has_seq;
	uint32_t seq;
	uint16_t type;
	/* On success only (0 otherwise). */
	uint64_t vm_handle;
	char name[KVMSTAT_NAME_MAX]; /* REGISTER_VM: the name, NUL-terminated, may be "" */
	/* On refusal only: the label of kvmstatd_registrations_rejected_total. */
	enum reject_reason reason;
};

/*
 * Decode the request of len bytes in buf (any alignment) that came with
 * n_fds descriptors. Returns 0 with out filled in, or -EBADMSG / -E2BIG with
 * out->reason set and one sentence in why (NUL-terminated; why may be NULL
 * when why_size is 0). On success the fd count fits the type: REGISTER_VM
 * 1..64 (VM stats fd first), ADD_VCPUS 1..64, UNREGISTER_VM 0.
 */
int regmsg_parse(const void *buf, size_t len, size_t n_fds, struct regmsg *out, char *why,
		 size_t why_size);

/*
 * The verdict for a datagram fdpass_recv refused (rc < 0, not -EAGAIN or
 * -ECONNRESET): -EMSGSIZE (longer than any request) -> -EBADMSG,
 * -E2BIG (too many fds or ancillary data cut) -> -E2BIG, anything else ->
 * -EBADMSG. Same contract as regmsg_parse's refusals (out->has_seq false).
 */
int regmsg_recv_failed(int rc, struct regmsg *out, char *why, size_t why_size);

#endif
