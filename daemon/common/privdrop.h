/* SPDX-License-Identifier: MIT */
/*
 * privdrop - become an unprivileged user for good, in one checked step.
 *
 * Order matters and is fixed: supplementary groups, gid, uid (all three of
 * real/effective/saved), then every capability (libcap-ng clears the
 * bounding and ambient sets too), then no_new_privs. It is verified
 * afterwards: regaining uid 0 must fail.
 */
#ifndef KVMSTATD_PRIVDROP_H
#define KVMSTATD_PRIVDROP_H

#include <sys/types.h>

/* Look up user; -ENOENT if missing. */
int privdrop_lookup(const char *user, uid_t *uid, gid_t *gid);

/* The worker: no capabilities at all. 0 or -errno; on error the caller
 * must exit, never continue. */
int privdrop_to(uid_t uid, gid_t gid);

/*
 * The helper: the same uid/gid as the worker, an empty bounding set,
 * no_new_privs, and of all capabilities only what discovery needs (when
 * keep_ptrace): CAP_SYS_PTRACE for pidfd_getfd and the fd links of other
 * users' VMMs, CAP_DAC_READ_SEARCH to list their /proc/<pid>/fd (mode
 * 0500, owned by the VMM's uid). Sharing the worker's uid lets the helper start and
 * stop workers without CAP_SETUID or CAP_KILL; the worker still cannot
 * touch the helper: it has fewer capabilities (ptrace is refused), the
 * helper is not dumpable, and the worker's seccomp filter allows neither
 * ptrace nor kill. Not root at start: only the capabilities are reduced.
 */
int privdrop_helper(uid_t uid, gid_t gid, int keep_ptrace);

#endif
