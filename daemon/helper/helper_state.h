/* SPDX-License-Identifier: MIT */
/*
 * helper_state - what the helper remembers: connections, VMM processes
 * and the VMs they registered (for limits, duplicates and handles). Shared
 * by helper.c (event loop) and helper_request.c (one request each).
 */
#ifndef KVMSTATD_HELPER_STATE_H
#define KVMSTATD_HELPER_STATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bpfload.h"
#include "config.h"
#include "fdcheck.h"
#include "ipc.h"
#include "logbudget.h"
#include "policy.h"
#include "reject.h"
#include "workerexec.h"
#include "kvmstat_proto.h"

enum helper_tag { TAG_CONN = 1, TAG_PROC };

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

/* A VMM process with VMs; its pidfd tells when it is gone. */
struct hproc {
	enum helper_tag tag;
	pid_t pid;
	uid_t uid;
	int pidfd;
	unsigned n_vms;
	char comm[32];
	bool registers; /* it registered a VM once: discovery leaves it alone */
};

/*
 * A VM the helper accepted. The helper keeps its own copy of every stats
 * fd: to recognise a VM sent again (kcmp), and to hand everything to a
 * new worker if the worker dies.
 */
struct hvm {
	uint32_t id;
	struct hproc *proc;
	uint64_t handle; /* the VMM's handle; 0 and unused for discovered VMs */
	bool has_handle; /* registered (or adopted by a registration) */
	enum ipc_origin origin;
	char name[KVMSTAT_NAME_MAX + 16];
	unsigned n_vcpus;
	int *vcpus;	     /* vCPU indices */
	int *vcpu_fds;	     /* our copies, parallel to vcpus */
	int stats_fd;	     /* our copy of its VM stats fd */
	int borrowed_fd;     /* ORIGIN_BORROWED: the VMM's VM fd number it came from */
	uint64_t created_ns; /* unix ns: registration, or the VMM's start if discovered */
};

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
	bool borrow;		       /* the kernel gives stats fds to observers (borrow.h) */
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
	/* fdcheck_stats_fd: what a registered fd must pass (a fuzzer may
	 * stand in for the kernel here) */
	int (*check_fd)(int fd, enum fd_kind kind, struct fdcheck_result *res);
	struct logbudget refusal_log; /* refusals' log lines (a peer may make many) */
	bool accept_paused;	      /* out of fds: the listening socket is out of epoll */
	char tag_reg, tag_signal, tag_ipc, tag_restart, tag_discover;
	struct conn *conns[POLICY_MAX_CONNS];
	size_t n_conns;
	struct hproc **procs;
	size_t n_procs;
	struct hvm **vms;
	size_t n_vms;
	unsigned n_sources; /* fds the worker holds: live VMs + those in grace */
	uint32_t next_vm_id;
	/* released VMs whose fds the worker still holds until their grace ends */
	struct retiring {
		uint64_t until_ns;
		unsigned n_fds;
		uid_t uid; /* whose budget they are charged to */
	} * retiring;
	size_t n_retiring;
};

/* helper_worker.c: start a worker, hand it every VM, replace it when it dies.
 * planned: a reload's replacement, not counted as a restart. */
int helper_start_worker(struct helper *h, bool planned);
void helper_stop_worker(struct helper *h);
/* Ask the worker to answer once it has handled everything sent so far. */
void helper_sync(struct helper *h);
/* The worker's channel is readable: handle its messages; 0 when it has
 * reached its end (the caller decides), 1 otherwise. */
int helper_on_worker_channel(struct helper *h);

/* helper_service.c: the service manager (systemd) and SIGHUP */
void helper_worker_status(struct helper *h, const struct ipc_status *m);
void helper_reload(struct helper *h);
void helper_worker_gone(struct helper *h, const char *how);
void helper_worker_reaped(struct helper *h, int status); /* waitpid told us */
void helper_on_restart_timer(struct helper *h);
/* Tell the worker about vm (all its fds); a no-op without a worker. */
int helper_send_vm(struct helper *h, const struct hvm *vm);
/* vCPUs [first..) of vm; created_ns: when they started (unix ns). */
int helper_send_vcpus(struct helper *h, const struct hvm *vm, unsigned first, uint64_t created_ns);
void helper_send_rejected(struct helper *h, enum reject_reason reason);
int helper_send_totals(struct helper *h); /* IPC_HELLO: restarts, refusals, discoveries */
int helper_send_bpf(struct helper *h);	  /* IPC_BPF_MAPS, when exit telemetry is on */
/* helper_sched.c: IPC_SCHEDSTAT for vCPUs [first, end) of vm */
void helper_send_schedstat(struct helper *h, const struct hvm *vm, unsigned first, unsigned end);

/* helper_request.c: the VM table, shared with discovery */
struct hproc *helper_get_proc(struct helper *h, pid_t pid, uid_t uid, int pidfd);
struct hvm *helper_new_vm(struct helper *h, struct hproc *p, int stats_fd);
int helper_add_vcpu(struct hvm *vm, int vcpu, int fd);
/* Where vm keeps vCPU index vcpu (its vcpus[] slot), or -1. */
int helper_vcpu_slot(const struct hvm *vm, int vcpu);
void helper_drop_vm(struct helper *h, struct hvm *vm);
struct hvm *helper_vm_by_file(struct helper *h, int stats_fd);
bool helper_name_taken(struct helper *h, const char *name);
/* Limits (max_vms_per_peer, max_vcpus_per_vm, max_sources) and the uid's
 * budget, charged on success: 0, or -ENOSPC with why. */
int helper_room(struct helper *h, const struct hproc *p, const struct hvm *vm, size_t n_new_vcpus,
		size_t n_fds, uid_t uid, char *why, size_t why_size);
void helper_refund(struct helper *h, uid_t uid, size_t n_fds);

/* discover.c: scan /proc (all processes, or one pid) for unregistered VMs */
void helper_discover(struct helper *h);
void helper_schedule_discovery(struct helper *h, unsigned delay_ms);

/*
 * Read and answer one request; < 0 means: close this connection. Every fd
 * the datagram carried is closed before it returns, whatever the verdict
 * (a datagram of no bytes with fds is a refused request, not a hang-up).
 */
int helper_serve_request(struct helper *h, struct conn *c);

/* One reply (kvmstat_proto.h) on fd, without blocking; why: a refusal's. */
void helper_send_reply(int fd, uint32_t seq, int status, unsigned accepted, const char *why);

/* Log a refusal of peer pid/uid, at most as often as h->refusal_log lets. */
void helper_log_refusal(struct helper *h, pid_t pid, uid_t uid, enum reject_reason reason,
			const char *why);

int helper_watch_proc(struct helper *h, struct hproc *p);
void helper_forget_proc(struct helper *h, struct hproc *p);
void helper_forget_all(struct helper *h);

#endif
