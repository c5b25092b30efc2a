/* SPDX-License-Identifier: MIT */
/*
 * reject - why the helper refused a registration: the vocabulary that the
 * helper counts, sends to the worker (channel/ipc.h) and the worker
 * exports as kvmstatd_registrations_rejected_total{reason}. It lives here,
 * not with the renderer, so that the helper can name a reason without
 * reaching the exposition code.
 */
#ifndef KVMSTATD_REJECT_H
#define KVMSTATD_REJECT_H

enum reject_reason {
	REJ_BAD_MESSAGE,
	REJ_BAD_FD,
	REJ_FD_COUNT,
	REJ_NOT_OWNER,
	REJ_LIMIT,
	REJ_UNKNOWN_VM,
	REJ_DUPLICATE,
	REJ_NOT_ALLOWED, /* uid/gid not in the policy's allow lists */
	REJ_RATE,	 /* the peer's uid exceeded its request rate */
	REJ__COUNT
};

/* The label value of r ("bad_fd", ...); "unknown" when out of range. */
const char *reject_reason_name(enum reject_reason r);

#endif
