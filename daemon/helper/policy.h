/* SPDX-License-Identifier: MIT */
/*
 * policy - who may register with the helper, and how much.
 *
 * Decisions only, no I/O: the helper asks before it reads any fd a peer
 * sent. The rules come from [registration] in the configuration:
 *   allow_users / allow_groups   uids and gids that may register (both
 *                                empty: whoever can connect to the socket)
 *   max_sources_per_uid          stats fds one uid may hold, over all its VMMs
 *   rate_limit, rate_burst       requests per second per uid (token bucket)
 *   max_connections_per_uid      registration connections one uid may hold
 * Every refusal returns a reject_reason for the metric and writes one
 * sentence into why that names the uid and the rule.
 */
#ifndef KVMSTATD_POLICY_H
#define KVMSTATD_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"

struct policy;

/* Registration connections the helper holds at most, from all uids. */
#define POLICY_MAX_CONNS 256u

int policy_new(struct policy **out, const struct config *cfg);
void policy_free(struct policy *p);

/*
 * May a peer with this uid, primary gid and supplementary gids register at
 * all? 0, or -EPERM (reason REJ_NOT_ALLOWED) with why filled in.
 */
int policy_admit(const struct policy *p, uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups,
		 char *why, size_t why_size);

/*
 * May uid open one more registration connection, holding n_uid of the
 * n_all open? 0, or -ENOSPC (reason REJ_LIMIT) with why when uid holds
 * max_connections_per_uid already, all POLICY_MAX_CONNS are open, or uid
 * is not root and all but root's reserve are: the other uids together
 * hold at most POLICY_MAX_CONNS - max_connections_per_uid, so however many
 * of them connect, root's VMM always gets its connections.
 */
int policy_admit_conn(const struct policy *p, uid_t uid, unsigned n_uid, unsigned n_all, char *why,
		      size_t why_size);

/*
 * Take one request token of uid's bucket at now_ns (CLOCK_MONOTONIC).
 * 0, or -EAGAIN (reason REJ_RATE) when the uid is over its rate.
 */
int policy_take_token(struct policy *p, uid_t uid, uint64_t now_ns, char *why, size_t why_size);

/*
 * Charge n_fds stats fds to uid: 0, or -ENOSPC (reason REJ_LIMIT) when
 * that would exceed max_sources_per_uid (nothing is charged then).
 * policy_refund gives them back when the helper lets the fds go.
 */
int policy_charge(struct policy *p, uid_t uid, unsigned n_fds, char *why, size_t why_size);
void policy_refund(struct policy *p, uid_t uid, unsigned n_fds);

/* Stats fds currently charged to uid (tests, logs). */
unsigned policy_charged(const struct policy *p, uid_t uid);

#endif
