/* SPDX-License-Identifier: MIT */
/* helper - see helper.h. Requests: helper_request.c; this file: sockets,
 * peers, processes and the event loop. */
#include "helper.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
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
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
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
#define HELPER_REFUSAL_BURST 20		       /* refusal lines logged at once ... */
#define HELPER_REFUSALS_PER_S 10	       /* ... and a second after that */
#define HELPER_DRAIN_MAX 64 /* datagrams a refused peer queued, dropped before the close */

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
 * real directory of root's or the service user's, that nobody else can
 * write, is accepted (the service user's processes are the helper, which
 * wrote the socket, and the sandboxed worker, which cannot touch files).
 */
static int check_socket_dir(int dir_fd, uid_t owner)
{
	struct stat st;

	if (fstat(dir_fd, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || (st.st_uid != geteuid() && st.st_uid != owner) ||
	    (st.st_mode & 0022))
		return -EPERM;
	return 0;
}

/*
 * A directory of root's that holds nothing but (a stale copy of) our socket
 * is ours, from an earlier run: give it to the service user as if we had
 * just created it, so the unprivileged helper can remove the socket when
 * it stops. A shared directory such as /run is never touched.
 */
static bool only_our_socket(int dir_fd, const char *path)
{
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	struct dirent *de;
	bool ours = true;
	struct stat st;
	DIR *d;
	int fd = dup(dir_fd);

	if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	while (ours && (de = readdir(d)))
		ours = !strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		       !strcmp(de->d_name, name);
	closedir(d);
	return ours;
}

/* *give: the directory is ours, to be given to the service user once the
 * socket is in place (never before: root still works on it by path). */
static int open_socket_dir(const char *path, uid_t owner, int *dir_fd, bool *give)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)], *slash;
	bool created = false;
	int fd, rc;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (mkdir(dir, 0755) == 0)
		created = true;
	else if (errno != EEXIST)
		return -errno;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*give = (created || only_our_socket(fd, path)) && geteuid() == 0;
	if ((rc = check_socket_dir(fd, owner)) < 0)
		goto fail;
	*dir_fd = fd;
	return 0;
fail:
	close(fd);
	return rc;
}

int helper_open_socket(const struct config *cfg, uid_t owner, int *out_fd, int *dir_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	bool give = false;
	struct stat st;
	int fd = -1, rc;

	if (strlen(cfg->socket_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", cfg->socket_path);
	if ((rc = open_socket_dir(cfg->socket_path, owner, dir_fd, &give)) < 0)
		return rc;
	if (lstat(cfg->socket_path, &st) == 0) {
		rc = -EEXIST; /* never unlink something that is not ours */
		if (!S_ISSOCK(st.st_mode) || (rc = stale_socket(cfg->socket_path)) < 0)
			goto fail;
		unlink(cfg->socket_path);
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = socket_owner(cfg)) < 0 || (give && fchown(*dir_fd, owner, (gid_t)-1) < 0)) {
		rc = rc < 0 ? rc : -errno;
		unlink(cfg->socket_path);
		goto fail;
	}
	*out_fd = fd;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	close(*dir_fd);
	*dir_fd = -1;
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
	helper_log_refusal(h, cred->pid, cred->uid, reason, why);
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

static void on_conn(struct helper *h, struct conn *c)
{
	c->last_ns = clock_mono_ns();
	if (helper_serve_request(h, c) < 0)
		close_conn(h, c);
}

static void on_proc_exit(struct helper *h, struct hproc *p)
{
	log_event(LOG_LVL_INFO, &(struct log_fields){ NULL, p->pid, "vmm_exited" },
		  "VMM pid %d exited: %u VMs released", (int)p->pid, p->n_vms);
	epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, p->pidfd, NULL);
	helper_forget_proc(h, p);
	helper_schedule_discovery(h, 0);
}

int helper_watch_proc(struct helper *h, struct hproc *p)
{
	return epoll_add(h, p->pidfd, p);
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
	h->restart_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	h->discover_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (h->signal_fd < 0 || h->epoll_fd < 0 || h->restart_fd < 0 || h->discover_fd < 0)
		return -errno;
	if ((rc = closer_init()) < 0)
		return rc;
	fdpass_set_closer(closer_close);
	if ((rc = policy_new(&h->policy, h->cfg)) < 0)
		return rc;
	logbudget_init(&h->refusal_log, HELPER_REFUSAL_BURST, HELPER_REFUSALS_PER_S,
		       clock_mono_ns());
	if ((rc = epoll_add(h, h->reg_fd, &h->tag_reg)) < 0 ||
	    (rc = epoll_add(h, h->signal_fd, &h->tag_signal)) < 0 ||
	    (rc = epoll_add(h, h->restart_fd, &h->tag_restart)) < 0 ||
	    (rc = epoll_add(h, h->discover_fd, &h->tag_discover)) < 0)
		return rc;
	if ((rc = helper_start_worker(h, false)) < 0)
		return rc;
	h->scanned = !h->cfg->discovery_enabled; /* else READY=1 waits for the first scan */
	helper_schedule_discovery(h, 0);
	return 0;
}

static bool channel_readable(const struct helper *h)
{
	struct pollfd p = { .fd = h->ipc_fd, .events = POLLIN };

	return h->ipc_fd >= 0 && poll(&p, 1, 0) == 1;
}

static void dispatch(struct helper *h, void *p, bool *stop)
{
	if (p == &h->tag_reg)
		on_accept(h);
	else if (p == &h->tag_signal)
		*stop = on_signal(h);
	else if (p == &h->tag_ipc) {
		/* the worker's messages, or its end: unless a Ctrl-C to the
		 * process group stopped it before us (the signal is read
		 * first then); an event left in this batch for a channel
		 * closed by SIGCHLD is stale */
		if (helper_on_worker_channel(h) == 0 && !(*stop = on_signal(h)) &&
		    channel_readable(h))
			helper_worker_gone(h, "closed its channel");
		*stop = *stop || h->worker_died;
	} else if (p == &h->tag_restart)
		helper_on_restart_timer(h);
	else if (p == &h->tag_discover)
		helper_discover(h);
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
			    .borrow = a->borrow,
			    .check_fd = fdcheck_stats_fd,
			    .ipc_fd = -1,
			    .signal_fd = -1,
			    .epoll_fd = -1,
			    .restart_fd = -1,
			    .discover_fd = -1,
			    .next_vm_id = 1,
			    .start_unix_ns = clock_ns(CLOCK_REALTIME) };
	struct epoll_event ev[16];
	bool stop = false;
	uint64_t wd_ms = notify_watchdog_usec() / 1000u;
	int rc;

	/* four beats per watchdog period: one late beat is no restart */
	if (wd_ms)
		h.heartbeat_ms = wd_ms / 4 < 50			    ? 50
				 : wd_ms / 4 > IPC_HEARTBEAT_MAX_MS ? IPC_HEARTBEAT_MAX_MS
								    : (unsigned)(wd_ms / 4);
	rc = setup(&h);

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
	helper_forget_all(&h);
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
