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

#include <stdbool.h>
#include <sys/types.h>

#include "bpfload.h"
#include "config.h"
#include "workerexec.h"

struct helper_args {
	struct config *cfg;	     /* a reload (SIGHUP) replaces it in place */
	const char *config_path;     /* read again on SIGHUP */
	const char *listen_override; /* --listen, which a reload keeps */
	int reg_fd, http_fd;	     /* listening sockets */
	int socket_dir_fd;	     /* the registration socket's directory; -1: systemd's socket */
	const char *socket_name;     /* its name in there */
	uid_t uid;		     /* the service user, the worker's */
	gid_t gid;
	const struct workerexec *prog;	 /* the worker program and what each worker gets */
	bool borrow;			 /* discovery may borrow VM and vCPU fds (borrow.h) */
	const struct bpf_telemetry *bpf; /* loaded before the privilege drop, or not enabled */
};

/*
 * Start the worker, and again whenever it dies; serve until SIGTERM/SIGINT
 * or a worker crash loop. Takes ownership of every fd in a; removes the
 * socket on the way out. Exit status back.
 */
int helper_run(const struct helper_args *a);

#endif
