/* SPDX-License-Identifier: MIT */
/*
 * helper_request - one registration request: decode, check, decide,
 * answer. Every refusal carries an errno for the VMM, a reason label for
 * the metric and a sentence for the log; a refused request keeps no fd
 * and changes nothing in the VM table (vmtable.h).
 *
 * It decides and answers the VMM; it does not tell the worker or schedule
 * anything: the VM table marks what the worker must learn, and the verdict
 * says what the helper's loop should do next (count a refusal, scan soon,
 * hang up).
 */
#ifndef KVMSTATD_HELPER_REQUEST_H
#define KVMSTATD_HELPER_REQUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "kvmstat_proto.h"
#include "logbudget.h"
#include "regmsg.h"
#include "reject.h"
#include "vmtable.h"

/* A registration connection: the peer as the kernel told it at accept. */
struct conn {
	enum helper_tag tag; /* first: epoll data points here */
	int fd;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t groups[64]; /* supplementary groups (SO_PEERGROUPS), for the policy */
	size_t n_groups;
	int pidfd;
	uint64_t last_ns; /* last request (or the accept): idle ones are closed */
};

struct registrar {
	struct vmtable *vt;   /* its policy says who may register, and how often */
	struct logbudget log; /* refusals' log lines (a peer may make many) */
};

struct verdict {
	int status; /* 0 or -errno */
	enum reject_reason reason;
	unsigned accepted;
	bool answered;	/* a reply went out (count a refusal) */
	bool scan_soon; /* a VMM registered: discovery may find its other VMs */
	char why[KVMSTAT_REASON_MAX];
};

void registrar_init(struct registrar *r, struct vmtable *vt);

/*
 * Decide the request of len bytes (a negative len: fdpass_recv's error)
 * with fds[0..n) from peer c: the VM table changes, or v says why not.
 * m is the decoded request (its seq echoed in the reply). The fds stay the
 * caller's: the table keeps copies of what it took.
 */
void registration_decide(struct registrar *r, const struct conn *c, const void *buf, int len,
			 const int *fds, size_t n, struct regmsg *m, struct verdict *v);

/*
 * Read one request from c, decide it and answer it. < 0: close the
 * connection (the peer hung up, or is not heard twice); v says what was
 * decided when v->answered. Every fd the datagram carried is closed before
 * it returns, whatever the verdict (a datagram of no bytes with fds is a
 * refused request, not a hang-up).
 */
int helper_serve_request(struct registrar *r, struct conn *c, struct verdict *v);

/* One reply (kvmstat_proto.h) on fd, without blocking; why: a refusal's. */
void helper_send_reply(int fd, uint32_t seq, int status, unsigned accepted, const char *why);

/* Log a refusal of peer pid/uid, at most as often as r->log lets. */
void helper_log_refusal(struct registrar *r, pid_t pid, uid_t uid, enum reject_reason reason,
			const char *why);

#endif
