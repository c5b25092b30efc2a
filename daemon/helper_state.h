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

#include "config.h"
#include "kvmstat_proto.h"

enum helper_tag { TAG_CONN = 1, TAG_PROC };

struct conn {
	enum helper_tag tag; /* first: epoll data points here */
	int fd;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int pidfd;
};

/* A VMM process with registered VMs; its pidfd tells when it is gone. */
struct hproc {
	enum helper_tag tag;
	pid_t pid;
	int pidfd;
	unsigned n_vms;
};

struct hvm {
	uint32_t id;
	struct hproc *proc;
	uint64_t handle;
	char name[KVMSTAT_NAME_MAX + 16];
	unsigned n_vcpus;
	int *vcpus;   /* indices registered so far */
	int stats_fd; /* our copy of its VM stats fd: recognises it if sent again */
};

struct helper {
	const struct config *cfg;
	int reg_fd, ipc_fd, signal_fd, epoll_fd;
	pid_t worker; /* 0 once reaped */
	bool worker_died;
	bool accept_paused; /* out of fds: the listening socket is out of epoll */
	char tag_reg, tag_signal, tag_ipc;
	struct conn *conns[256];
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
	} * retiring;
	size_t n_retiring;
};

/* Read and answer one request; < 0 means: close this connection. */
int helper_serve_request(struct helper *h, struct conn *c);

int helper_watch_proc(struct helper *h, struct hproc *p);
void helper_forget_proc(struct helper *h, struct hproc *p);
void helper_forget_all(struct helper *h);

#endif
