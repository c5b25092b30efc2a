/* SPDX-License-Identifier: MIT */
/*
 * regsocket - the registration socket of our own (without systemd's),
 * made at start-up while the helper is still root.
 */
#ifndef KVMSTATD_REGSOCKET_H
#define KVMSTATD_REGSOCKET_H

#include <sys/types.h>

#include "config.h"

/*
 * Create the registration socket (directory, stale socket, mode, group),
 * as root, before the helper drops its privileges. A directory it creates
 * is given to owner (the service user), so that the unprivileged helper
 * can remove the socket when it stops; *dir_fd stays open for that.
 */
int regsocket_open(const struct config *cfg, uid_t owner, int *out_fd, int *dir_fd);

#endif
