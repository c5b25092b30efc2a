/* SPDX-License-Identifier: MIT */
/* closer - see closer.h. */
#include "closer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
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

static int is_anon_inode(int fd)
{
	char path[64], link[32];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link));
	return n >= 11 && !memcmp(link, "anon_inode:", 11);
}

void closer_close(int fd)
{
	if (fd < 0)
		return;
	if (queue[1] < 0 || is_anon_inode(fd)) {
		close(fd);
		return;
	}
	if (write(queue[1], &fd, sizeof(fd)) != sizeof(fd))
		/* the thread is stuck and its queue full: keep the fd rather than block */
		log_warn("fd %d left open: the closing thread is stalled", fd);
}
