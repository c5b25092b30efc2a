/* SPDX-License-Identifier: MIT */
/*
 * helper - the privileged process, and the only one. It owns the
 * registration socket, checks each peer (SO_PEERCRED, SO_PEERPIDFD) and
 * each fd it is sent (fdcheck), enforces the limits, and forwards what it
 * accepts to the worker. It never parses stats data beyond a header check,
 * never talks HTTP and never renders. It knows a closed set of requests
 * (client/kvmstat_proto.h); anything else is refused with a reason.
 */
#ifndef KVMSTATD_HELPER_H
#define KVMSTATD_HELPER_H

#include <sys/types.h>

#include "config.h"

/* Create the registration socket (directory, stale socket, mode, group). */
int helper_open_socket(const struct config *cfg, int *out_fd);

/*
 * Serve until SIGTERM/SIGINT or the worker's death. Takes ownership of
 * reg_fd and ipc_fd; unlinks the socket on the way out. Exit status back.
 */
int helper_run(const struct config *cfg, int reg_fd, int ipc_fd, pid_t worker);

#endif
