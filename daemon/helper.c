/* SPDX-License-Identifier: MIT */
/* helper - see helper.h. Requests: helper_request.c; this file: sockets,
 * peers, processes and the event loop. */
#include "helper.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "closer.h"
#include "fdpass.h"
#include "helper_state.h"
#include "log.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

#define HELPER_MAX_CONNS 256

static int stale_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? -EADDRINUSE : 0;
	close(fd);
	return rc;
}

static int socket_owner(const struct config *cfg)
{
	struct group gr, *res = NULL;
	char buf[4096];

	if (chmod(cfg->socket_path, cfg->socket_mode) < 0)
		return -errno;
	if (cfg->socket_group[0] == '\0')
		return 0;
	if (getgrnam_r(cfg->socket_group, &gr, buf, sizeof(buf), &res) != 0 || !res)
		return -ENOENT;
	return chown(cfg->socket_path, (uid_t)-1, gr.gr_gid) < 0 ? -errno : 0;
}

/*
 * Root chmods and chowns the socket by path: in a directory someone else
 * may write to, that path could be swapped for a link to any file. Only a
 * real directory of ours that nobody else can write is accepted.
 */
static int check_socket_dir(const char *dir)
{
	struct stat st;

	if (lstat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0022))
		return -EPERM;
	return 0;
}

int helper_open_socket(const struct config *cfg, int *out_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(sa.sun_path)], *slash;
	struct stat st;
	int fd = -1, rc;

	if (strlen(cfg->socket_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", cfg->socket_path);
	snprintf(dir, sizeof(dir), "%s", cfg->socket_path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return -errno;
		if ((rc = check_socket_dir(dir)) < 0)
			return rc;
	}
	if (lstat(cfg->socket_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST; /* never unlink something that is not ours */
		if ((rc = stale_socket(cfg->socket_path)) < 0)
			return rc;
		unlink(cfg->socket_path);
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = socket_owner(cfg)) < 0) {
		unlink(cfg->socket_path);
		goto fail;
	}
	*out_fd = fd;
	return 0;
fail:
	close(fd);
	return rc;
}

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

static void on_accept(struct helper *h)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct conn *c;
	int fd = accept4(h->reg_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
		/* level-triggered: stop listening until a connection closes, or we spin */
		log_warn("out of file descriptors: not accepting registrations for now");
		epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, h->reg_fd, NULL);
		h->accept_paused = true;
	}
	if (fd < 0)
		return;
	if (h->n_conns >= HELPER_MAX_CONNS ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_warn("registration connection refused: %s", h->n_conns >= HELPER_MAX_CONNS
								    ? "too many connections"
								    : "no peer credentials");
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->tag = TAG_CONN;
	c->fd = fd;
	c->pid = cred.pid;
	c->uid = cred.uid;
	c->gid = cred.gid;
	c->pidfd = peer_pidfd(fd, cred.pid);
	if (c->pidfd < 0 || epoll_add(h, fd, c) < 0) {
		log_warn("registration connection from pid %d refused: no pidfd", (int)cred.pid);
		if (c->pidfd >= 0)
			close(c->pidfd);
		close(fd);
		free(c);
		return;
	}
	h->conns[h->n_conns++] = c;
}

static void on_conn(struct helper *h, struct conn *c)
{
	if (helper_serve_request(h, c) < 0)
		close_conn(h, c);
}

static void on_proc_exit(struct helper *h, struct hproc *p)
{
	log_info("VMM pid %d exited: %u VMs released", (int)p->pid, p->n_vms);
	epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, p->pidfd, NULL);
	helper_forget_proc(h, p);
}

int helper_watch_proc(struct helper *h, struct hproc *p)
{
	return epoll_add(h, p->pidfd, p);
}

/* The worker ended without being asked: stop, and say so in the exit status. */
static bool worker_lost(struct helper *h, const char *how)
{
	log_err("the worker %s; stopping", how);
	h->worker_died = true;
	return true;
}

static bool on_signal(struct helper *h)
{
	struct signalfd_siginfo si;

	if (read(h->signal_fd, &si, sizeof(si)) != sizeof(si))
		return false;
	if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
		log_info("signal %u: stopping", si.ssi_signo);
		return true;
	}
	if (si.ssi_signo == SIGCHLD && h->worker > 0 &&
	    waitpid(h->worker, NULL, WNOHANG) == h->worker) {
		h->worker = 0;
		return worker_lost(h, "exited");
	}
	return false;
}

/* Reap the worker within timeout_ms; true once it is gone. */
static bool reap_worker(struct helper *h, int timeout_ms)
{
	struct timespec delay = { 0, 20 * 1000000L };

	for (int waited = 0; h->worker > 0; waited += 20) {
		if (waitpid(h->worker, NULL, WNOHANG) == h->worker || errno == ECHILD)
			h->worker = 0;
		else if (waited >= timeout_ms)
			return false;
		else
			nanosleep(&delay, NULL);
	}
	return true;
}

/*
 * Closing the channel stops the worker by itself (it exits on EOF) and
 * needs no privilege: the worker runs under another uid, and a unit
 * without CAP_KILL could not signal it. The signals only back that up.
 */
static void stop_worker(struct helper *h)
{
	if (h->ipc_fd >= 0) {
		close(h->ipc_fd);
		h->ipc_fd = -1;
	}
	if (h->worker <= 0)
		return;
	kill(h->worker, SIGTERM);
	if (reap_worker(h, 5000))
		return;
	log_warn("the worker did not stop in 5 s; killing it");
	kill(h->worker, SIGKILL);
	if (!reap_worker(h, 2000))
		log_err("the worker (pid %d) could not be stopped", (int)h->worker);
}

static int setup(struct helper *h)
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
	if (h->signal_fd < 0 || h->epoll_fd < 0)
		return -errno;
	if ((rc = closer_init()) < 0)
		return rc;
	fdpass_set_closer(closer_close);
	if ((rc = epoll_add(h, h->reg_fd, &h->tag_reg)) < 0 ||
	    (rc = epoll_add(h, h->signal_fd, &h->tag_signal)) < 0 ||
	    (rc = epoll_add(h, h->ipc_fd, &h->tag_ipc)) < 0)
		return rc;
	return 0;
}

static void dispatch(struct helper *h, void *p, bool *stop)
{
	if (p == &h->tag_reg)
		on_accept(h);
	else if (p == &h->tag_signal)
		*stop = on_signal(h);
	else if (p == &h->tag_ipc) /* the worker never writes: readable = gone */
		/* unless a Ctrl-C to the process group stopped it before us */
		*stop = on_signal(h) || worker_lost(h, "closed its channel");
	else if (*(enum helper_tag *)p == TAG_CONN)
		on_conn(h, p);
	else
		on_proc_exit(h, p);
}

int helper_run(const struct config *cfg, int reg_fd, int ipc_fd, pid_t worker)
{
	struct helper h = { .cfg = cfg,
			    .reg_fd = reg_fd,
			    .ipc_fd = ipc_fd,
			    .worker = worker,
			    .signal_fd = -1,
			    .epoll_fd = -1,
			    .next_vm_id = 1 };
	struct epoll_event ev[16];
	bool stop = false;
	int rc = setup(&h);

	if (rc < 0)
		log_err("start-up failed: %s", strerror(-rc));
	while (rc == 0 && !stop) {
		int n = epoll_wait(h.epoll_fd, ev, 16, -1);

		for (int i = 0; i < n && !stop; i++)
			dispatch(&h, ev[i].data.ptr, &stop);
	}
	stop_worker(&h);
	while (h.n_conns)
		close_conn(&h, h.conns[0]);
	helper_forget_all(&h);
	unlink(cfg->socket_path);
	close(reg_fd);
	if (h.signal_fd >= 0)
		close(h.signal_fd);
	if (h.epoll_fd >= 0)
		close(h.epoll_fd);
	return rc < 0 || h.worker_died ? 1 : 0;
}
