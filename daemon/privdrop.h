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

/* 0 or -errno; on error the caller must exit, never continue. */
int privdrop_to(uid_t uid, gid_t gid);

#endif
