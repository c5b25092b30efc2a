/* SPDX-License-Identifier: MIT */
/* fdpass - see fdpass.h. */
#include "fdpass.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int fdpass_send(int sock, const void *msg, size_t len, const int *fds, size_t n_fds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX_FDS)];
		struct cmsghdr align;
	} cmsg;
	struct iovec iov = { (void *)msg, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t n;

	if (n_fds > FDPASS_MAX_FDS)
		return -E2BIG;
	if (n_fds) {
		memset(&cmsg, 0, sizeof(cmsg));
		mh.msg_control = cmsg.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static void plain_close(int fd)
{
	close(fd);
}

static void (*closer)(int fd) = plain_close;

void fdpass_set_closer(void (*close_fn)(int fd))
{
	closer = close_fn ? close_fn : plain_close;
}

void fdpass_close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0) {
			closer(fds[i]);
			fds[i] = -1;
		}
}

/* Collect every SCM_RIGHTS fd (even beyond max) so all can be closed. */
static int take_fds(struct msghdr *mh, int *fds, size_t max_fds, size_t *n_fds)
{
	int rc = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;
		int *p;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			rc = -EBADMSG; /* e.g. SCM_CREDENTIALS: carries no fd */
			continue;
		}
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		p = (int *)(void *)CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, p + i, sizeof(fd));
			if (*n_fds < max_fds)
				fds[(*n_fds)++] = fd;
			else {
				closer(fd);
				rc = -E2BIG;
			}
		}
	}
	return rc;
}

int fdpass_recv(int sock, void *buf, size_t cap, int *fds, size_t max_fds, size_t *n_fds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX_FDS)];
		struct cmsghdr align;
	} cmsg;
	struct iovec iov = { buf, cap };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cmsg.buf,
			     .msg_controllen = sizeof(cmsg.buf) };
	ssize_t n;
	int rc;

	*n_fds = 0;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	rc = take_fds(&mh, fds, max_fds, n_fds);
	if (rc == 0 && (mh.msg_flags & MSG_CTRUNC))
		rc = -E2BIG;
	if (rc == 0 && (mh.msg_flags & MSG_TRUNC))
		rc = -EMSGSIZE;
	if (rc < 0) {
		fdpass_close_all(fds, *n_fds);
		*n_fds = 0;
		return rc;
	}
	return (int)n;
}
