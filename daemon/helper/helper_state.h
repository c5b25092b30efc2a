/* SPDX-License-Identifier: MIT */
/*
 * helper_state - the helper's context: its sockets and timers, the
 * registration connections, the VM table (vmtable.h) with the registrar
 * and discovery that decide about it, the worker's state and what systemd
 * was told. The loop (helper.c) owns it; the worker's life
 * (helper_worker.c) and the service manager's side (helper_service.c)
 * work on it for the loop.
 */
#ifndef KVMSTATD_HELPER_STATE_H
#define KVMSTATD_HELPER_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bpfload.h"
#include "config.h"
#include "discover.h"
#include "fdcheck.h"
#include "helper_request.h"
#include "ipc.h"
#include "policy.h"
#include "reject.h"
#include "sysops.h"
#include "vmtable.h"
#include "workerexec.h"

struct helper {
	struct config *cfg; /* replaced in place by a reload (SIGHUP) */
	const char *config_path;
	const char *listen_override;	 /* --listen, or NULL */
	const struct bpf_telemetry *bpf; /* exit telemetry maps, handed to each worker */
	int reg_fd, ipc_fd, signal_fd, epoll_fd;
	int http_fd;	 /* kept for the next worker; never read here */
	int restart_fd;	 /* timerfd: start a worker again */
	int discover_fd; /* timerfd: next /proc scan */
	uid_t uid;	 /* the service user: the worker's (and our) uid */
	gid_t gid;
	const struct workerexec *prog; /* the worker program, its [web] files (workerexec.h) */
	pid_t worker;		       /* 0 once reaped */
	bool worker_died;	       /* gave up restarting: exit status 1 */
	uint32_t worker_starts;
	uint64_t start_ns[5]; /* the last worker starts: a crash loop stops us */
	uint64_t rejected[REJ__COUNT], discovered; /* totals, told to each new worker */
	uint64_t start_unix_ns;			   /* when those totals started */
	/* systemd: READY=1 once a worker answered a sync sent after the
	 * start-up scan (HTTP served, every VM loaded); WATCHDOG=1 on each of
	 * the worker's beats; STATUS= when its counts change */
	uint32_t sync_seq;     /* the last IPC_SYNC sent */
	bool scanned;	       /* the first discovery scan is done (or discovery is off) */
	bool ready_pending;    /* READY=1 not sent since start or reload */
	char reload_note[160]; /* said with READY=1 after a reload */
	unsigned heartbeat_ms;
	uint32_t status_vms, status_vcpus; /* as systemd last heard */
	struct policy *policy;
	bool accept_paused; /* out of fds: the listening socket is out of epoll */
	char tag_reg, tag_signal, tag_ipc, tag_restart, tag_discover;
	struct conn *conns[POLICY_MAX_CONNS];
	size_t n_conns;
	struct fdcheck fdcheck; /* behind ops, which unit tests and fuzzers replace */
	struct sysops ops;
	struct vmtable vt;     /* processes, VMs, vCPUs, charges, grace */
	struct registrar reg;  /* decides registration requests */
	struct discovery disc; /* decides what a /proc scan found */
};

/* helper_worker.c: start a worker, hand it every VM, replace it when it dies.
 * planned: a reload's replacement, not counted as a restart. */
int helper_start_worker(struct helper *h, bool planned);
void helper_stop_worker(struct helper *h);
/* Tell the worker what the VM table has that it does not know yet. */
void helper_worker_update(struct helper *h);
/* Ask the worker to answer once it has handled everything sent so far. */
void helper_sync(struct helper *h);
/* One message from the worker's channel into *m: 1, or 0 at its end (the
 * caller decides), or -EAGAIN when there is none (or it was malformed:
 * the worker is then replaced). */
int helper_worker_recv(struct helper *h, struct ipc_status *m);
void helper_worker_gone(struct helper *h, const char *how);
void helper_worker_reaped(struct helper *h, int status); /* waitpid told us */
void helper_on_restart_timer(struct helper *h);
void helper_send_rejected(struct helper *h, enum reject_reason reason);
int helper_send_totals(struct helper *h); /* IPC_HELLO: restarts, refusals, discoveries */

/* helper_service.c: the service manager (systemd) and SIGHUP */
void helper_worker_status(struct helper *h, const struct ipc_status *m);
void helper_reload(struct helper *h);

/* Each beat wakes the worker and the helper and sends a datagram to
 * systemd: 20 a second is the most a watchdog may cost us. */
#define HELPER_BEAT_MIN_MS 50u

/*
 * Pure: how often the worker beats for a watchdog period of usec (0: no
 * watchdog, no beats): four times a period, so that one late beat is no
 * restart, but never more often than every HELPER_BEAT_MIN_MS nor less
 * often than IPC_HEARTBEAT_MAX_MS.
 */
unsigned helper_beat_ms(uint64_t usec);

/* h->heartbeat_ms for systemd's watchdog; warns when systemd will likely
 * restart us anyway, the period being too short for our beats. */
void helper_watchdog_setup(struct helper *h);

/* helper_sched.c: IPC_SCHEDSTAT for vCPUs [first, end) of vm */
void helper_send_schedstat(struct helper *h, const struct hvm *vm, unsigned first, unsigned end);

#endif
