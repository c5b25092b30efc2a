/* SPDX-License-Identifier: MIT */
/*
 * worker - the unprivileged process: receives checked stats fds from the
 * helper, parses their schemas, polls them on a timerfd tick, follows each
 * VMM's life through a pidfd and serves HTTP.
 *
 * worker_run() is entered after the privilege drop and returns the exit
 * status. One event loop (epoll): helper socket, tick, signals, pidfds.
 */
#ifndef KVMSTATD_WORKER_H
#define KVMSTATD_WORKER_H

#include "config.h"

struct webtls;

/* tls: the [web] TLS identity the helper loaded (NULL: plain HTTP), read-only. */
int worker_run(const struct config *cfg, const struct webtls *tls, int ipc_fd, int http_fd);

#endif
