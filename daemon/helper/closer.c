/* SPDX-License-Identifier: MIT */
/* closer - see closer.h. */
#include "closer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

static int queue[2] = { -1, -1 }; /* pipe: fd numbers to close */

static void *closer_thread(void *arg)
{
	int fd;

	(void)arg;
	while (read(queue[0], &fd, sizeof(fd)) == sizeof(fd))
		close(fd); /* may block on a stalled FUSE server: only this thread waits */
	return NULL;
}

int closer_init(void)
{
	sigset_t all, old;
	pthread_t t;
	int rc;

	if (pipe2(queue, O_CLOEXEC) < 0)
		return -errno;
	fcntl(queue[1], F_SETFL, O_NONBLOCK);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old); /* signals stay with the event loop */
	rc = -pthread_create(&t, NULL, closer_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		pthread_detach(t);
	return rc;
}

/*
 * Closes that cannot block are done at once: anonymous inodes, pipes, and
 * sockets (with SO_LINGER 0 first: a socket whose peer never reads would
 * otherwise linger in close() for as long as the sender asked). Only files
 * on a file system (FUSE!) go to the thread.
 */
static int closes_at_once(int fd)
{
	struct linger lg = { 1, 0 };
	char path[64], link[32];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link));
	if (n >= 7 && !memcmp(link, "socket:", 7)) {
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		return 1;
	}
	return (n >= 11 && !memcmp(link, "anon_inode:", 11)) ||
	       (n >= 5 && !memcmp(link, "pipe:", 5));
}

void closer_close(int fd)
{
	if (fd < 0)
		return;
	if (queue[1] < 0 || closes_at_once(fd)) {
		close(fd);
		return;
	}
	if (write(queue[1], &fd, sizeof(fd)) != sizeof(fd))
		/* the thread is stuck and its queue full: keep the fd rather than block */
		log_warn("fd %d left open: the closing thread is stalled", fd);
}
