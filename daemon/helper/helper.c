/* SPDX-License-Identifier: MIT */
/*
 * helper - see helper.h. This file: the registration socket, peers, and
 * the event loop. The loop owns the effects: registration
 * (helper_request.c) and discovery (discover.c) decide and change the VM
 * table (vmtable.c); the loop then watches the new processes, tells the
 * worker (helper_worker_update), counts refusals and schedules scans.
 */
#include "helper.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "closer.h"
#include "fdpass.h"
#include "helper_state.h"
#include "log.h"
#include "notify.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

#define HELPER_IDLE_NS (60ull * 1000000000ull) /* a silent connection is closed */
#define HELPER_DRAIN_MAX 64 /* datagrams a refused peer queued, dropped before the close */

static int epoll_add(struct helper *h, int fd, void *ptr)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = ptr };

	return epoll_ctl(h->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static int peer_pidfd(int fd, pid_t pid)
{
	socklen_t len = sizeof(int);
	int pidfd = -1;

	/* race-free: the process that connected, even if its pid is reused */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 && pidfd >= 0)
		return pidfd;
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static void close_conn(struct helper *h, struct conn *c)
{
	epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->pidfd >= 0)
		close(c->pidfd);
	for (size_t i = 0; i < h->n_conns; i++)
		if (h->conns[i] == c) {
			h->conns[i] = h->conns[--h->n_conns];
			break;
		}
	free(c);
	if (h->accept_paused && epoll_add(h, h->reg_fd, &h->tag_reg) == 0)
		h->accept_paused = false;
}

static unsigned conns_of(const struct helper *h, uid_t uid)
{
	unsigned n = 0;

	for (size_t i = 0; i < h->n_conns; i++)
		n += h->conns[i]->uid == uid;
	return n;
}

/* Close connections silent for HELPER_IDLE_NS; retry a paused accept. */
static void sweep(struct helper *h)
{
	uint64_t now = clock_mono_ns();

	for (size_t i = h->n_conns; i-- > 0;)
		if (now - h->conns[i]->last_ns > HELPER_IDLE_NS) {
			log_info("registration connection of pid %d closed: idle",
				 (int)h->conns[i]->pid);
			close_conn(h, h->conns[i]);
		}
	if (h->accept_paused && epoll_add(h, h->reg_fd, &h->tag_reg) == 0)
		h->accept_paused = false;
}

/* Drop what a refused peer queued, closing the fds it sent. */
static void drain(int fd)
{
	int fds[KVMSTAT_MAX_FDS_PER_MSG];
	char buf[16];
	size_t n;

	for (int i = 0; i < HELPER_DRAIN_MAX; i++) {
		/* any datagram, too long or carrying too much, is taken and dropped */
		int len = fdpass_recv(fd, buf, sizeof(buf), fds, KVMSTAT_MAX_FDS_PER_MSG, &n);

		fdpass_close_all(fds, n);
		if (len == 0 && n == 0) /* read side shut: nothing more */
			break;
		if (len < 0 && len != -EMSGSIZE && len != -E2BIG && len != -EBADMSG)
			break;
	}
}

/*
 * A peer turned away at accept: counted, logged (limited), told why and
 * closed at once. Reading is shut first, so that nothing more can arrive,
 * and what came already is dropped (its fds closed): closing a socket with
 * unread data would reset the peer before it reads the answer. The answer
 * has seq 0: the peer may not have asked anything yet.
 */
static void refuse_peer(struct helper *h, int fd, const struct ucred *cred,
			enum reject_reason reason, int status, const char *why)
{
	shutdown(fd, SHUT_RD);
	drain(fd);
	helper_send_reply(fd, 0, status, 0, why);
	close(fd);
	helper_send_rejected(h, reason);
	helper_log_refusal(&h->reg, cred->pid, cred->uid, reason, why);
}

/*
 * Who may hold a connection is decided here, before the peer can send a
 * byte: a uid outside allow_users/allow_groups never holds one, and the
 * policy bounds the connections per uid (with a reserve for root's), so
 * that a few uids cannot take every connection.
 */
static void admit_peer(struct helper *h, int fd)
{
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t len = sizeof(cred);
	char why[KVMSTAT_REASON_MAX];
	struct conn *c = calloc(1, sizeof(*c));

	if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		refuse_peer(h, fd, &cred, REJ_LIMIT, -ENOMEM, "no memory or no peer credentials");
		goto free_conn;
	}
	len = sizeof(c->groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, c->groups, &len) == 0)
		c->n_groups = len / sizeof(gid_t);
	if (policy_admit(h->policy, cred.uid, cred.gid, c->groups, c->n_groups, why, sizeof(why)) <
	    0) {
		refuse_peer(h, fd, &cred, REJ_NOT_ALLOWED, -EPERM, why);
		goto free_conn;
	}
	if (policy_admit_conn(h->policy, cred.uid, conns_of(h, cred.uid), (unsigned)h->n_conns, why,
			      sizeof(why)) < 0) {
		refuse_peer(h, fd, &cred, REJ_LIMIT, -ENOSPC, why);
		goto free_conn;
	}
	c->tag = TAG_CONN;
	c->fd = fd;
	c->last_ns = clock_mono_ns();
	c->pid = cred.pid;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pidfd = peer_pidfd(fd, cred.pid);
	if (c->pidfd < 0 || epoll_add(h, fd, c) < 0) {
		if (c->pidfd >= 0)
			close(c->pidfd);
		refuse_peer(h, fd, &cred, REJ_LIMIT, -ENOMEM, "no pidfd for it");
		goto free_conn;
	}
	h->conns[h->n_conns++] = c;
	c = NULL;
free_conn:
	free(c);
}

static void on_accept(struct helper *h)
{
	int fd = accept4(h->reg_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
		/* level-triggered: stop listening until a connection closes, or we spin */
		log_warn("out of file descriptors: not accepting registrations for now");
		epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, h->reg_fd, NULL);
		h->accept_paused = true;
	}
	if (fd >= 0)
		admit_peer(h, fd);
}

static void schedule_discovery(struct helper *h, unsigned delay_ms)
{
	struct itimerspec its = { 0 }, cur;

	if (!h->cfg->discovery_enabled || h->discover_fd < 0)
		return;
	if (delay_ms == 0) /* soon, but after this batch of events: a burst is one scan */
		delay_ms = 100;
	if (timerfd_gettime(h->discover_fd, &cur) == 0 &&
	    (cur.it_value.tv_sec || cur.it_value.tv_nsec) &&
	    (uint64_t)cur.it_value.tv_sec * 1000u + (uint64_t)cur.it_value.tv_nsec / 1000000u <=
		delay_ms)
		return; /* a scan comes sooner anyway */
	its.it_value.tv_sec = delay_ms / 1000;
	its.it_value.tv_nsec = (long)(delay_ms % 1000) * 1000000L;
	timerfd_settime(h->discover_fd, 0, &its, NULL);
}

/*
 * Do what the VM table marked: watch the new processes' pidfds, and tell
 * the worker. A process we cannot watch would never be released: it is
 * forgotten at once, as if it had exited.
 */
static void apply(struct helper *h)
{
	for (size_t i = h->vt.n_procs; i-- > 0;) {
		struct hproc *p = h->vt.procs[i];

		if (p->watched)
			continue;
		if (epoll_add(h, p->pidfd, p) == 0) {
			p->watched = true;
			continue;
		}
		log_err("cannot watch VMM pid %d (%s): its %u VMs are released", (int)p->pid,
			strerror(errno), p->n_vms);
		vmtable_forget_proc(&h->vt, p);
	}
	helper_worker_update(h);
}

static void on_conn(struct helper *h, struct conn *c)
{
	struct verdict v;
	int rc;

	c->last_ns = clock_mono_ns();
	rc = helper_serve_request(&h->reg, c, &v);
	apply(h);
	if (v.answered && v.status)
		helper_send_rejected(h, v.reason);
	if (v.scan_soon)
		schedule_discovery(h, 0); /* its other VMs, if it holds some */
	if (rc < 0)
		close_conn(h, c);
}

static void on_proc_exit(struct helper *h, struct hproc *p)
{
	log_event(LOG_LVL_INFO, &(struct log_fields){ NULL, p->pid, "vmm_exited" },
		  "VMM pid %d exited: %u VMs released", (int)p->pid, p->n_vms);
	epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, p->pidfd, NULL);
	vmtable_forget_proc(&h->vt, p);
	schedule_discovery(h, 0);
}

/* A scan of /proc; every process but ourselves, the worker and the VMMs
 * connected to us (they register their own VMs). */
static void on_discover_timer(struct helper *h)
{
	pid_t skip[2 + POLICY_MAX_CONNS];
	struct scan_counts n = { 0 };
	uint64_t t0 = clock_mono_ns(), expirations;
	size_t n_skip = 0;

	if (read(h->discover_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		log_debug("discovery timer: %s", strerror(errno));
	skip[n_skip++] = getpid();
	skip[n_skip++] = h->worker;
	for (size_t i = 0; i < h->n_conns; i++)
		skip[n_skip++] = h->conns[i]->pid;
	discover_scan(&h->disc, skip, n_skip, &n);
	apply(h);
	if (n.vms) {
		h->discovered += n.vms;
		helper_send_totals(h);
	}
	log_debug("discovery: %u processes scanned in %.1f ms: %u new VMs, %u new vCPUs", n.procs,
		  (double)(clock_mono_ns() - t0) / 1e6, n.vms, n.vcpus);
	if (!h->scanned) { /* the start-up scan: READY=1 once the worker has its VMs */
		h->scanned = true;
		helper_sync(h);
	}
	if (h->cfg->discovery_interval_s)
		schedule_discovery(h, h->cfg->discovery_interval_s * 1000u);
}

static bool on_signal(struct helper *h)
{
	struct signalfd_siginfo si;
	int status;

	if (read(h->signal_fd, &si, sizeof(si)) != sizeof(si))
		return false;
	if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
		log_info("signal %u: stopping", si.ssi_signo);
		notify_send("STOPPING=1");
		return true;
	}
	if (si.ssi_signo == SIGHUP)
		helper_reload(h);
	if (si.ssi_signo == SIGCHLD && h->worker > 0 &&
	    waitpid(h->worker, &status, WNOHANG) == h->worker)
		helper_worker_reaped(h, status);
	return h->worker_died;
}

static int setup(struct helper *h, bool borrow)
{
	sigset_t mask;
	int rc;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	h->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	h->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	h->restart_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	h->discover_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (h->signal_fd < 0 || h->epoll_fd < 0 || h->restart_fd < 0 || h->discover_fd < 0)
		return -errno;
	if ((rc = closer_init()) < 0)
		return rc;
	fdpass_set_closer(closer_close);
	if ((rc = policy_new(&h->policy, h->cfg)) < 0)
		return rc;
	if ((rc = fdcheck_init(&h->fdcheck)) < 0) {
		log_err("cannot make an eventfd to recognise anonymous inodes: %s", strerror(-rc));
		return rc;
	}
	sysops_init(&h->ops, &h->fdcheck);
	vmtable_init(&h->vt, h->cfg, h->policy, &h->ops);
	registrar_init(&h->reg, &h->vt);
	if ((rc = discovery_init(&h->disc, &h->vt, borrow)) < 0)
		return rc;
	if ((rc = epoll_add(h, h->reg_fd, &h->tag_reg)) < 0 ||
	    (rc = epoll_add(h, h->signal_fd, &h->tag_signal)) < 0 ||
	    (rc = epoll_add(h, h->restart_fd, &h->tag_restart)) < 0 ||
	    (rc = epoll_add(h, h->discover_fd, &h->tag_discover)) < 0)
		return rc;
	if ((rc = helper_start_worker(h, false)) < 0)
		return rc;
	h->scanned = !h->cfg->discovery_enabled; /* else READY=1 waits for the first scan */
	schedule_discovery(h, 0);
	return 0;
}

static bool channel_readable(const struct helper *h)
{
	struct pollfd p = { .fd = h->ipc_fd, .events = POLLIN };

	return h->ipc_fd >= 0 && poll(&p, 1, 0) == 1;
}

/* The worker's messages: false once its channel has reached its end. */
static bool on_worker_channel(struct helper *h)
{
	struct ipc_status m = { 0 };
	int rc = -EAGAIN;

	/* a bounded batch: a worker that floods us must not starve the rest */
	for (int i = 0; i < 64 && (rc = helper_worker_recv(h, &m)) == 1; i++)
		helper_worker_status(h, &m);
	return rc != 0;
}

/*
 * The worker's channel has reached its end: the worker is gone, unless a
 * Ctrl-C to the process group stopped it before us (the signal is read
 * first then); an event left in this batch for a channel closed by
 * SIGCHLD is stale. True: stop.
 */
static bool on_worker_end(struct helper *h)
{
	bool stop = on_signal(h);

	if (!stop && channel_readable(h))
		helper_worker_gone(h, "closed its channel");
	return stop || h->worker_died;
}

static void dispatch(struct helper *h, void *p, bool *stop)
{
	if (p == &h->tag_reg)
		on_accept(h);
	else if (p == &h->tag_signal)
		*stop = on_signal(h);
	else if (p == &h->tag_ipc)
		*stop = !on_worker_channel(h) ? on_worker_end(h) : h->worker_died;
	else if (p == &h->tag_restart)
		helper_on_restart_timer(h);
	else if (p == &h->tag_discover)
		on_discover_timer(h);
	else if (*(enum helper_tag *)p == TAG_CONN)
		on_conn(h, p);
	else
		on_proc_exit(h, p);
}

static void close_if(int fd)
{
	if (fd >= 0)
		close(fd);
}

int helper_run(const struct helper_args *a)
{
	struct helper h = { .cfg = a->cfg,
			    .config_path = a->config_path,
			    .listen_override = a->listen_override,
			    .ready_pending = true,
			    .bpf = a->bpf,
			    .reg_fd = a->reg_fd,
			    .http_fd = a->http_fd,
			    .uid = a->uid,
			    .gid = a->gid,
			    .prog = a->prog,
			    .ipc_fd = -1,
			    .signal_fd = -1,
			    .epoll_fd = -1,
			    .restart_fd = -1,
			    .discover_fd = -1,
			    .start_unix_ns = clock_ns(CLOCK_REALTIME) };
	struct epoll_event ev[16];
	bool stop = false;
	int rc;

	helper_watchdog_setup(&h);
	rc = setup(&h, a->borrow);

	if (rc < 0)
		log_err("start-up failed: %s", strerror(-rc));
	while (rc == 0 && !stop) {
		/* wake now and then while connections may idle or accept is paused */
		int n = epoll_wait(h.epoll_fd, ev, 16, h.n_conns || h.accept_paused ? 1000 : -1);

		for (int i = 0; i < n && !stop; i++)
			dispatch(&h, ev[i].data.ptr, &stop);
		sweep(&h);
	}
	helper_stop_worker(&h);
	while (h.n_conns)
		close_conn(&h, h.conns[0]);
	vmtable_fini(&h.vt);
	discovery_fini(&h.disc);
	policy_free(h.policy);
	/* in a directory of root's (systemd's RuntimeDirectory=, say) the
	 * unprivileged helper cannot; the next start replaces a stale socket */
	if (a->socket_dir_fd >= 0 && unlinkat(a->socket_dir_fd, a->socket_name, 0) < 0 &&
	    errno != ENOENT)
		log_info("registration socket %s left behind (%s)", a->cfg->socket_path,
			 strerror(errno));
	close(a->reg_fd);
	close(a->http_fd);
	close_if(a->socket_dir_fd);
	close_if(h.signal_fd);
	close_if(h.epoll_fd);
	close_if(h.restart_fd);
	close_if(h.discover_fd);
	return rc < 0 || h.worker_died ? 1 : 0;
}
