/* SPDX-License-Identifier: MIT */
/*
 * kvmstat_client.c - register a VMM's KVM statistics fds with kvmstatd.
 *
 * One request, one reply, synchronously, over a SOCK_SEQPACKET connection
 * (wire format: kvmstat_proto.h, docs/wire-protocol.md). The reply is
 * checked field by field; anything unexpected is -EPROTO.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "kvmstat_client.h"

#define KVMSTAT_CLIENT_TIMEOUT_MS 2000u
#define KVMSTAT_CLIENT_TIMEOUT_MAX_MS 3600000u /* an hour: a bound, not a choice */

struct kvmstat_client {
	int fd;
	uint32_t seq;
	bool broken; /* a transport or protocol failure shut the socket down */
};

/* One request: header type, body bytes and the fds riding along. */
struct kvmstat_request {
	uint16_t type;
	const void *body;
	size_t body_size;
	const int *fds;
	size_t n_fds;
};

/* Map a failed socket call to our convention; a timeout says so by name. */
static int sock_errno(void)
{
	return (errno == EAGAIN || errno == EWOULDBLOCK) ? -ETIMEDOUT : -errno;
}

/*
 * SO_SNDTIMEO bounds connect() (a full backlog) and sendmsg(), SO_RCVTIMEO
 * the wait for a reply. 0 means the default, never "wait forever".
 */
static int set_timeouts(int fd, unsigned int timeout_ms)
{
	struct timeval tv;

	if (timeout_ms == 0)
		timeout_ms = KVMSTAT_CLIENT_TIMEOUT_MS;
	if (timeout_ms > KVMSTAT_CLIENT_TIMEOUT_MAX_MS)
		timeout_ms = KVMSTAT_CLIENT_TIMEOUT_MAX_MS;
	tv.tv_sec = (time_t)(timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

static int fill_addr(struct sockaddr_un *sun, const char *path)
{
	size_t len = strlen(path);

	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len + 1);
	return 0;
}

int kvmstat_client_open(struct kvmstat_client **out, const char *socket_path)
{
	return kvmstat_client_open_timeout(out, socket_path, KVMSTAT_CLIENT_TIMEOUT_MS);
}

int kvmstat_client_open_timeout(struct kvmstat_client **out, const char *socket_path,
				unsigned int timeout_ms)
{
	struct kvmstat_client *c = NULL;
	struct sockaddr_un sun;
	int fd = -1;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	rc = fill_addr(&sun, socket_path ? socket_path : KVMSTAT_DEFAULT_SOCKET);
	if (rc < 0)
		goto fail;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = set_timeouts(fd, timeout_ms);
	if (rc < 0)
		goto fail;
	/*
	 * connect() is not restarted after a signal: try again on EINTR. It
	 * waits (up to the send timeout) while the listener's backlog is full.
	 */
	do
		rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? sock_errno() : 0;
	while (rc == -EINTR);
	if (rc < 0)
		goto fail;
	c = calloc(1, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto fail;
	}
	c->fd = fd;
	*out = c;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	return rc;
}

int kvmstat_client_set_timeout_ms(struct kvmstat_client *c, unsigned int timeout_ms)
{
	if (!c)
		return -EINVAL;
	return set_timeouts(c->fd, timeout_ms);
}

bool kvmstat_client_ok(const struct kvmstat_client *c)
{
	return c && !c->broken;
}

void kvmstat_client_close(struct kvmstat_client *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c);
}

static int send_request(struct kvmstat_client *c, const struct kvmstat_request *rq, uint32_t seq)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * KVMSTAT_MAX_FDS_PER_MSG)];
	} ctl;
	unsigned char msg[sizeof(struct kvmstat_msg_register_vm)];
	struct kvmstat_msg_hdr hdr = {
		.magic = KVMSTAT_PROTO_MAGIC,
		.version = KVMSTAT_PROTO_VERSION,
		.type = rq->type,
		.length = (uint32_t)(sizeof(hdr) + rq->body_size),
		.seq = seq,
	};
	struct iovec iov = { .iov_base = msg, .iov_len = hdr.length };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	memcpy(msg, &hdr, sizeof(hdr));
	memcpy(msg + sizeof(hdr), rq->body, rq->body_size);
	if (rq->n_fds) {
		struct cmsghdr *cm;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * rq->n_fds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * rq->n_fds);
		memcpy(CMSG_DATA(cm), rq->fds, sizeof(int) * rq->n_fds);
	}
	do
		n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return sock_errno();
	return (size_t)n == hdr.length ? 0 : -EPROTO;
}

/* A reply never carries fds; close any that came so none leak into us. */
static bool drop_fds(struct msghdr *mh)
{
	bool had = false;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			close(fd);
		}
		had = true;
	}
	return had;
}

static int recv_reply(struct kvmstat_client *c, struct kvmstat_msg_reply *rep)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 8)];
	} ctl;
	/* One byte more than a reply, so an oversized datagram shows. */
	unsigned char buf[sizeof(*rep) + 1];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf),
	};
	ssize_t n;

	do
		n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return sock_errno();
	if (n == 0)
		return -ECONNRESET;
	if (drop_fds(&mh) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n != sizeof(*rep))
		return -EPROTO;
	memcpy(rep, buf, sizeof(*rep));
	return 0;
}

/*
 * Everything but status and reason must be exactly what we expect. A
 * refusal with seq 0 is the helper's answer to the connection itself (a
 * uid it turns away when it connects, before any request): taken as the
 * answer to whatever we asked.
 */
static int check_reply(const struct kvmstat_msg_reply *rep, uint32_t seq, size_t n_fds)
{
	const struct kvmstat_msg_hdr *h = &rep->hdr;
	int32_t status = rep->body.status;

	if (h->magic != KVMSTAT_PROTO_MAGIC || h->version != KVMSTAT_PROTO_VERSION ||
	    h->type != KVMSTAT_MSG_REPLY || h->length != sizeof(*rep) ||
	    (h->seq != seq && !(h->seq == 0 && status < 0)))
		return -EPROTO;
	if (status > 0 || status < -4095)
		return -EPROTO;
	/* Requests are all or nothing: every fd taken, or none. */
	if (rep->body.accepted != (status == 0 ? n_fds : 0))
		return -EPROTO;
	return 0;
}

static void copy_reason(char *dst, size_t dst_size, const char *src, size_t src_size)
{
	size_t len = strnlen(src, src_size);

	if (!dst || !dst_size)
		return;
	if (len >= dst_size)
		len = dst_size - 1;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/*
 * Send one request and wait for its reply; return the helper's status. A
 * transport or protocol failure shuts the socket down, because a late or
 * foreign reply would pair with the wrong request: later calls fail fast
 * with -EPIPE and the caller reconnects. A refusal keeps the connection,
 * but one of the connection itself (seq 0: a uid the helper turns away when
 * it connects), whose status is returned all the same.
 */
static int transact(struct kvmstat_client *c, const struct kvmstat_request *rq, char *reason,
		    size_t reason_size)
{
	struct kvmstat_msg_reply rep = { 0 };
	uint32_t seq = ++c->seq;
	int rc, status = 0;

	copy_reason(reason, reason_size, "", 0);
	rc = c->broken ? -EPIPE : send_request(c, rq, seq);
	/* turned away at connect: the helper's answer may wait in our queue */
	if (rc == 0 || (rc == -EPIPE && !c->broken))
		rc = recv_reply(c, &rep);
	if (rc == 0)
		rc = check_reply(&rep, seq, rq->n_fds);
	if (rc == 0) {
		copy_reason(reason, reason_size, rep.body.reason, sizeof(rep.body.reason));
		status = rep.body.status;
	}
	/* a transport or protocol failure, or the helper refused the connection */
	if (rc < 0 || (status < 0 && rep.hdr.seq == 0)) {
		shutdown(c->fd, SHUT_RDWR);
		c->broken = true;
	}
	return rc < 0 ? rc : status;
}

static int check_fds(const int *fds, size_t n)
{
	if (n && !fds)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (fds[i] < 0)
			return -EBADF;
	return 0;
}

static int send_add_vcpus(struct kvmstat_client *c, uint64_t vm_handle, const int *fds, size_t n,
			  char *reason, size_t reason_size)
{
	struct kvmstat_add_vcpus body = { .vm_handle = vm_handle };
	struct kvmstat_request rq = {
		.type = KVMSTAT_MSG_ADD_VCPUS,
		.body = &body,
		.body_size = sizeof(body),
		.fds = fds,
		.n_fds = n,
	};

	return transact(c, &rq, reason, reason_size);
}

/* ADD_VCPUS in batches of at most KVMSTAT_MAX_FDS_PER_MSG. */
static int add_vcpus_batched(struct kvmstat_client *c, uint64_t vm_handle, const int *fds, size_t n,
			     char *reason, size_t reason_size)
{
	int rc = 0;

	for (size_t off = 0; off < n && rc == 0; off += KVMSTAT_MAX_FDS_PER_MSG) {
		size_t batch = n - off;

		if (batch > KVMSTAT_MAX_FDS_PER_MSG)
			batch = KVMSTAT_MAX_FDS_PER_MSG;
		rc = send_add_vcpus(c, vm_handle, fds + off, batch, reason, reason_size);
	}
	return rc;
}

static int send_register(struct kvmstat_client *c, uint64_t vm_handle, const char *name,
			 int vm_stats_fd, const int *vcpu_fds, size_t n_vcpus, char *reason,
			 size_t reason_size)
{
	struct kvmstat_register_vm body = { .vm_handle = vm_handle };
	int fds[KVMSTAT_MAX_FDS_PER_MSG];
	struct kvmstat_request rq = {
		.type = KVMSTAT_MSG_REGISTER_VM,
		.body = &body,
		.body_size = sizeof(body),
		.fds = fds,
		.n_fds = 1 + n_vcpus,
	};

	memcpy(body.name, name, strlen(name) + 1); /* length checked by the caller */
	fds[0] = vm_stats_fd;
	if (n_vcpus)
		memcpy(fds + 1, vcpu_fds, n_vcpus * sizeof(int));
	return transact(c, &rq, reason, reason_size);
}

int kvmstat_client_register_vm(struct kvmstat_client *c, uint64_t vm_handle, const char *name,
			       int vm_stats_fd, const int *vcpu_stats_fds, size_t n_vcpus,
			       char *reason, size_t reason_size)
{
	size_t first = n_vcpus;
	int rc;

	if (!name)
		name = "";
	if (!c)
		return -EINVAL;
	if (strlen(name) > KVMSTAT_NAME_MAX - 1)
		return -ENAMETOOLONG;
	rc = vm_stats_fd < 0 ? -EBADF : check_fds(vcpu_stats_fds, n_vcpus);
	if (rc < 0)
		return rc;
	if (first > KVMSTAT_MAX_FDS_PER_MSG - 1)
		first = KVMSTAT_MAX_FDS_PER_MSG - 1;
	rc = send_register(c, vm_handle, name, vm_stats_fd, vcpu_stats_fds, first, reason,
			   reason_size);
	if (rc == 0 && first < n_vcpus) {
		rc = add_vcpus_batched(c, vm_handle, vcpu_stats_fds + first, n_vcpus - first,
				       reason, reason_size);
		/* All or nothing for the caller too: drop the half-registered VM. */
		if (rc < 0)
			kvmstat_client_unregister_vm(c, vm_handle, NULL, 0);
	}
	return rc;
}

int kvmstat_client_add_vcpus(struct kvmstat_client *c, uint64_t vm_handle,
			     const int *vcpu_stats_fds, size_t n_vcpus, char *reason,
			     size_t reason_size)
{
	int rc;

	if (!c || n_vcpus == 0)
		return -EINVAL;
	rc = check_fds(vcpu_stats_fds, n_vcpus);
	if (rc == 0)
		rc = add_vcpus_batched(c, vm_handle, vcpu_stats_fds, n_vcpus, reason, reason_size);
	return rc;
}

int kvmstat_client_unregister_vm(struct kvmstat_client *c, uint64_t vm_handle, char *reason,
				 size_t reason_size)
{
	struct kvmstat_unregister_vm body = { .vm_handle = vm_handle };
	struct kvmstat_request rq = {
		.type = KVMSTAT_MSG_UNREGISTER_VM,
		.body = &body,
		.body_size = sizeof(body),
	};

	if (!c)
		return -EINVAL;
	return transact(c, &rq, reason, reason_size);
}

/*
 * The system call itself, not libc's ioctl(): linked into the preload
 * shim, a call to ioctl() would bind to the shim's own interposer and come
 * back into the shim (tests/unit/test_client_ioctl.c interposes one).
 */
int kvmstat_get_stats_fd(int kvm_obj_fd)
{
	int fd = (int)syscall(SYS_ioctl, kvm_obj_fd, KVM_GET_STATS_FD, NULL);

	return fd < 0 ? -errno : fd;
}
