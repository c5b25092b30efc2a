/* SPDX-License-Identifier: MIT */
/*
 * fuzz_regsock - libFuzzer target: the helper's request path from the
 * socket on, recvmsg to the close of every received fd
 * (helper_serve_request over a real SOCK_SEQPACKET socketpair).
 *
 * The parser fuzzers never see the socket layer, where a datagram of no
 * bytes carrying fds once leaked them all. Here the input decides the
 * payload and the ancillary data: how many fds (0..253, the kernel's
 * maximum) of which kinds (pipe ends, eventfds, a memfd, sockets, a
 * socket connected to the helper itself, /dev/null, a directory, an
 * unlinked file, a FIFO, an epoll fd, a pidfd), split over how many
 * SCM_RIGHTS messages, with SCM_CREDENTIALS beside them, with the
 * receiver asking for credentials (SO_PASSCRED: then the control data no
 * longer fits and comes cut, MSG_CTRUNC), several datagrams on one
 * connection, a peer that hangs up first, a uid outside allow_users.
 *
 * The one assertion beyond memory safety: once the input is served and
 * the helper's tables are freed (vmtable_fini, as at exit), the process
 * holds exactly the fds it held before. A leak on any path aborts.
 *
 * Without KVM no fd passes the real fdcheck_stats_fd, so the helper's
 * seam (struct sysops) stands in for the kernel: an eventfd whose count is N is
 * taken for a VM stats fd (N = 0) or the stats fd of vCPU N - 1 of this
 * process, after the real check has run (and refused it). That lets
 * registrations, additions, duplicates, limits and unregistrations run
 * and keep their copies of fds, which must all go at the end too.
 *
 * Input: byte 0 flags, byte 1 fd count, byte 2 how many SCM_RIGHTS
 * messages, byte 3 limits, then one byte per fd (its kind), then the
 * payload of each datagram (split at 0xff 0xff 0xff when several).
 * Seeds: tests/fuzz/corpus/regsock (make_seeds.py).
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fdpass.h"
#include "helper_request.h"
#include "policy.h"
#include "sysops.h"
#include "vmtable.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
	F_PASSCRED = 1 << 0,	/* the receiver asks for credentials */
	F_SEND_CREDS = 1 << 1,	/* the sender adds SCM_CREDENTIALS */
	F_NOT_ALLOWED = 1 << 2, /* allow_users leaves our uid out */
	F_HANG_UP = 1 << 3,	/* the sender closes before the helper reads */
	F_FAKE_KVM = 1 << 4,	/* eventfds pass for stats fds */
	F_FIX_HEADER = 1 << 5,	/* magic, version and length made right */
	F_WATCH_FAILS = 1 << 6, /* the loop cannot watch a new VMM (out of epoll room) */
};

#define MAX_DATAGRAMS 4
#define N_KINDS 16

/* ---- the rest of the helper: what its loop does after each request -------- */

/* Watch the new VMMs (or, out of epoll room, forget them) and tell the worker. */
static void as_the_loop(struct vmtable *t, bool watch_fails)
{
	for (size_t i = t->n_procs; i-- > 0;) {
		if (t->procs[i]->watched)
			continue;
		if (watch_fails)
			vmtable_forget_proc(t, t->procs[i]);
		else
			t->procs[i]->watched = true;
	}
	for (size_t i = 0; i < t->n_vms; i++) {
		t->vms[i]->told = true;
		t->vms[i]->n_told = t->vms[i]->n_vcpus;
	}
}

/* ---- the kernel's part, when there is no KVM --------------------------------- */

/* The count of eventfd fd (from fdinfo), or -1 when fd is no eventfd. */
static long eventfd_count(int fd)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -1;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "eventfd-count:");
	return p ? strtol(p + 14, NULL, 16) : -1;
}

static int fake_check(void *ctx, int fd, enum fd_kind kind, struct fdcheck_result *res)
{
	long count;

	if (fdcheck_stats_fd(ctx, fd, kind, res) == 0) /* the real one first, on every fd */
		return 0;
	count = eventfd_count(fd);
	if (count < 0 || (kind == FD_VM_STATS) != (count == 0))
		return -EBADF;
	res->id_pid = getpid();
	res->vcpu = kind == FD_VM_STATS ? -1 : (int)count - 1;
	res->why[0] = '\0';
	return 0;
}

/* ---- fds of every kind, made once ------------------------------------------ */

static int kinds[N_KINDS];

static void make_kinds(void)
{
	int p[2], s[2];
	char fifo[64] = "/tmp/kvmstatd-fuzz-XXXXXX";

	if (pipe2(p, O_CLOEXEC) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) < 0)
		abort();
	kinds[0] = p[0];
	kinds[1] = p[1];
	kinds[2] = s[0];
	kinds[3] = s[1];
	/* counts 0..4: a VM and vCPUs 0..3 (fake_check); 1 again: another vCPU 0 */
	for (int i = 0; i < 6; i++)
		kinds[4 + i] = eventfd(i < 5 ? (unsigned)i : 1, EFD_CLOEXEC);
	kinds[10] = (int)syscall(SYS_memfd_create, "kvmstatd-fuzz", MFD_CLOEXEC);
	kinds[11] = open("/dev/null", O_RDWR | O_CLOEXEC);
	kinds[12] = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	kinds[13] = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	kinds[14] = epoll_create1(EPOLL_CLOEXEC);
	/* a FIFO with a reader and no writer: its fd must be closed, never read */
	if (!mkdtemp(fifo))
		abort();
	strcat(fifo, "/f");
	if (mkfifo(fifo, 0600) < 0)
		abort();
	kinds[15] = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	unlink(fifo);
	*strrchr(fifo, '/') = '\0';
	rmdir(fifo);
	for (int i = 0; i < N_KINDS; i++)
		if (kinds[i] < 0)
			abort();
}

static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		abort();
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static void print_fds(void)
{
	char path[64], link[256];

	for (int fd = 0; fd < 4096; fd++) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0)
			fprintf(stderr, "  fd %d: %.*s\n", fd, (int)n, link);
	}
}

/* ---- one input ------------------------------------------------------------- */

struct input {
	uint8_t flags, n_fds, n_cmsgs, limits;
	const uint8_t *kind; /* n_fds of them */
	const uint8_t *payload[MAX_DATAGRAMS];
	size_t len[MAX_DATAGRAMS];
	size_t n_datagrams;
};

static bool decode(const uint8_t *data, size_t size, struct input *in)
{
	const uint8_t *p, *end = data + size;

	if (size < 4)
		return false;
	memset(in, 0, sizeof(*in));
	in->flags = data[0];
	in->n_fds = data[1] % (FDPASS_MAX_FDS + 1);
	in->n_cmsgs = 1 + data[2] % 3;
	in->limits = data[3];
	if (size < 4u + in->n_fds)
		return false;
	in->kind = data + 4;
	p = data + 4 + in->n_fds;
	while (in->n_datagrams < MAX_DATAGRAMS) {
		const uint8_t *cut = NULL;

		for (const uint8_t *q = p; q + 3 <= end && !cut; q++)
			if (q[0] == 0xff && q[1] == 0xff && q[2] == 0xff)
				cut = q;
		in->payload[in->n_datagrams] = p;
		in->len[in->n_datagrams++] = (size_t)((cut ? cut : end) - p);
		if (!cut)
			break;
		p = cut + 3;
	}
	return true;
}

/* A request the parser takes further than its first check. */
static size_t fix_header(const uint8_t *src, size_t len, uint8_t *out, size_t cap)
{
	static const size_t sizes[] = { sizeof(struct kvmstat_msg_register_vm),
					sizeof(struct kvmstat_msg_add_vcpus),
					sizeof(struct kvmstat_msg_unregister_vm) };
	struct kvmstat_msg_hdr hdr;
	uint16_t type = (uint16_t)(1 + (len ? src[0] % 3 : 0));
	size_t want = sizes[type - 1];

	memset(out, 0, cap);
	memcpy(out, src, len < want ? len : want);
	hdr = (struct kvmstat_msg_hdr){ KVMSTAT_PROTO_MAGIC, KVMSTAT_PROTO_VERSION, type,
					(uint32_t)want, len > 4 ? src[4] : 0 };
	memcpy(out, &hdr, sizeof(hdr));
	if (len > 5 && src[5] & 1) /* a clean body: handle from the input, no flags */
		memset(out + sizeof(hdr) + 8, 0, 8);
	return want;
}

static void send_datagram(int sock, const struct input *in, size_t i)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX_FDS) + 3 * CMSG_SPACE(0) +
			 CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} cmsg;
	uint8_t fixed[512];
	struct iovec iov = { (void *)in->payload[i], in->len[i] };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	size_t at = 0, per, done = 0;

	if ((in->flags & F_FIX_HEADER) && in->len[i] <= sizeof(fixed)) {
		iov.iov_base = fixed;
		iov.iov_len = fix_header(in->payload[i], in->len[i], fixed, sizeof(fixed));
	}
	memset(&cmsg, 0, sizeof(cmsg));
	mh.msg_control = cmsg.buf;
	per = in->n_fds / in->n_cmsgs + 1;
	for (unsigned m = 0; m < in->n_cmsgs && done < in->n_fds; m++) {
		size_t k = in->n_fds - done < per ? in->n_fds - done : per;

		c = (struct cmsghdr *)(void *)(cmsg.buf + at);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * k);
		for (size_t j = 0; j < k; j++) {
			int fd = in->kind[done + j] % (N_KINDS + 1) == N_KINDS
				     ? sock /* the helper's own connection, sent over itself */
				     : kinds[in->kind[done + j] % (N_KINDS + 1)];

			memcpy(CMSG_DATA(c) + j * sizeof(int), &fd, sizeof(int));
		}
		at += CMSG_SPACE(sizeof(int) * k);
		done += k;
	}
	if (in->flags & F_SEND_CREDS) {
		struct ucred uc = { getpid(), getuid(), getgid() };

		c = (struct cmsghdr *)(void *)(cmsg.buf + at);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_CREDENTIALS;
		c->cmsg_len = CMSG_LEN(sizeof(uc));
		memcpy(CMSG_DATA(c), &uc, sizeof(uc));
		at += CMSG_SPACE(sizeof(uc));
	}
	mh.msg_controllen = at;
	if (!at)
		mh.msg_control = NULL;
	/* refused (too long, say) or not: the helper's side is what is checked */
	(void)!sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void set_limits(struct config *cfg, uint8_t limits)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_vms_per_peer = 1 + (limits & 3);
	cfg->max_vcpus_per_vm = 1 + ((limits >> 2) & 7);
	cfg->max_sources = 2 + ((limits >> 5) & 7) * 3;
	cfg->max_sources_per_uid = cfg->max_sources;
	cfg->rate_limit = limits & 0x80 ? 5 : 0;
	cfg->rate_burst = 3;
	cfg->max_connections_per_uid = 16;
	cfg->interval_ms = 1000;
	cfg->exit_grace_ms = 0;
}

static void serve(const struct input *in, struct config *cfg, struct fdcheck *fc)
{
	struct conn c = { .tag = TAG_CONN, .pid = getpid(), .uid = getuid(), .gid = getgid() };
	struct registrar reg;
	struct policy *policy;
	struct vmtable vt;
	struct sysops ops;
	struct verdict v;
	int sv[2];

	if (in->flags & F_NOT_ALLOWED) {
		cfg->allow_uids[0] = getuid() + 1;
		cfg->n_allow_uids = 1;
	}
	sysops_init(&ops, fc);
	if (in->flags & F_FAKE_KVM)
		ops.check_fd = fake_check;
	if (policy_new(&policy, cfg) < 0)
		abort();
	vmtable_init(&vt, cfg, policy, &ops);
	registrar_init(&reg, &vt);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	c.fd = sv[0];
	c.pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (c.pidfd < 0)
		abort();
	if (in->flags & F_PASSCRED)
		setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &(int){ 1 }, sizeof(int));
	for (size_t i = 0; i < in->n_datagrams; i++)
		send_datagram(sv[1], in, i);
	if (in->flags & F_HANG_UP) {
		close(sv[1]);
		sv[1] = -1;
	}
	/* as the event loop does: until the helper closes the connection or
	 * nothing is left to read (one more call sees the hang-up, if any) */
	for (size_t i = 0; i <= in->n_datagrams; i++) {
		int rc = helper_serve_request(&reg, &c, &v);

		as_the_loop(&vt, in->flags & F_WATCH_FAILS);
		if (rc < 0)
			break;
	}
	close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	close(c.pidfd);
	vmtable_fini(&vt);
	policy_free(policy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int baseline = -1;
	static struct fdcheck fc;
	struct config cfg;
	struct input in;
	int now;

	if (baseline < 0) {
		log_set_level(LOG_LVL_ERR); /* every refusal is a warning: keep the run quiet */
		if (fdcheck_init(&fc) < 0)
			abort();
		make_kinds();
		baseline = fd_count();
	}
	if (!decode(data, size, &in))
		return 0;
	set_limits(&cfg, in.limits);
	serve(&in, &cfg, &fc);
	now = fd_count();
	if (now != baseline) {
		fprintf(stderr, "fuzz_regsock: %d fds open after the input, %d before:\n", now,
			baseline);
		print_fds();
		abort();
	}
	return 0;
}
