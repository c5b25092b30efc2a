/* SPDX-License-Identifier: MIT */
/*
 * bench-pread - the physical limit of polling: one pread of every data
 * block, nothing else. Takes copies of a VMM's stats fds with pidfd_getfd,
 * reads each header once, then times rounds of preads and prints
 * JSON: {"fds": N, "values": V, "round_ns": [..]}.
 *
 *   bench-pread [-k] ROUNDS PAUSE_MS PID FD[,FD...]|all ...
 *
 * -k: every fd's data lands in a place of its own (one arena, fd after fd)
 * instead of one buffer all preads share. A poller keeps what it read, so
 * its reads cannot all hit one cache-hot buffer: at thousands of fds the
 * values kept are megabytes, and the kernel's copy writes to memory that
 * is not in the caches. That is the limit for a poller that keeps one
 * sample per fd; without -k, the system calls alone.
 *
 * "all" takes every KVM stats fd the process holds (found by the link names
 * in /proc/PID/fd): a daemon holding 20,000 fds would not fit their numbers
 * in one argument (the kernel caps one at 128 KiB).
 * PAUSE_MS > 0 sleeps between rounds, as a poller with that interval does
 * (caches and CPU frequency then start cold each round, like a real tick).
 */
#include <dirent.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

struct target {
	int fd;
	uint32_t offset, size;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Data block extent from the header and descriptors. */
static int describe(int fd, struct target *t)
{
	struct kvm_stats_header h;
	size_t stride;
	char *d;
	uint64_t end = 0;

	if (pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) || h.num_desc > 4096 ||
	    h.name_size > 256)
		return -1;
	stride = sizeof(struct kvm_stats_desc) + h.name_size;
	d = malloc(stride * h.num_desc);
	if (!d ||
	    pread(fd, d, stride * h.num_desc, h.desc_offset) != (ssize_t)(stride * h.num_desc)) {
		free(d);
		return -1;
	}
	for (uint32_t i = 0; i < h.num_desc; i++) {
		struct kvm_stats_desc *k = (struct kvm_stats_desc *)(void *)(d + i * stride);
		uint64_t e = k->offset + (uint64_t)k->size * 8;

		if (e > end)
			end = e;
	}
	free(d);
	t->fd = fd;
	t->offset = h.data_offset;
	t->size = (uint32_t)end;
	return 0;
}

/* Copy fd number s of the process behind pidfd; 1 when it was taken. */
static int take(int pidfd, int fd_no, struct target *t)
{
	int fd = (int)syscall(SYS_pidfd_getfd, pidfd, fd_no, 0);

	if (fd < 0)
		return 0;
	if (describe(fd, t) == 0)
		return 1;
	close(fd);
	return 0;
}

static int is_stats_link(int pid, const char *fd_name)
{
	char path[320], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, fd_name);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return 0;
	link[n] = '\0';
	return !strcmp(link, "anon_inode:kvm-vm-stats") ||
	       !strncmp(link, "anon_inode:kvm-vcpu-stats", 25);
}

/* Every stats fd of pid, in /proc's order; returns how many were taken. */
static size_t take_all(int pid, int pidfd, struct target *t, size_t room)
{
	char path[32];
	struct dirent *e;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	while (d && n < room && (e = readdir(d)))
		if (e->d_name[0] != '.' && is_stats_link(pid, e->d_name))
			n += (size_t)take(pidfd, atoi(e->d_name), &t[n]);
	if (d)
		closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	struct target *t = calloc(65536, sizeof(*t));
	uint64_t values = 0;
	size_t n = 0;
	int rounds;
	long pause_ms;
	char *buf = malloc(1 << 20), *arena = NULL;
	size_t bytes = 0;
	bool keep = argc > 1 && !strcmp(argv[1], "-k");

	if (keep)
		argc--, argv++;
	if (argc < 5 || !t || !buf) {
		fprintf(stderr,
			"usage: bench-pread [-k] ROUNDS PAUSE_MS PID FD[,FD...] [PID FD,...]...\n");
		return 2;
	}
	rounds = atoi(argv[1]);
	pause_ms = atol(argv[2]);
	for (int a = 3; a + 1 < argc; a += 2) {
		int pid = atoi(argv[a]), pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		size_t first = n;

		if (pidfd >= 0 && !strcmp(argv[a + 1], "all"))
			n += take_all(pid, pidfd, t + n, 65536 - n);
		for (char *s = strtok(argv[a + 1], ",");
		     s && pidfd >= 0 && n < 65536 && strcmp(s, "all"); s = strtok(NULL, ","))
			n += (size_t)take(pidfd, atoi(s), &t[n]);
		for (size_t i = first; i < n; i++)
			values += t[i].size / 8;
		if (pidfd >= 0)
			close(pidfd);
	}
	for (size_t i = 0; i < n; i++)
		bytes += t[i].size;
	if (keep && !(arena = malloc(bytes ? bytes : 1)))
		return 2;
	if (keep)
		memset(arena, 0, bytes); /* faulted in now, not in the first round */
	printf("{\"fds\": %zu, \"values\": %llu, \"round_ns\": [", n, (unsigned long long)values);
	for (int r = 0; r < rounds; r++) {
		struct timespec pause = { pause_ms / 1000, (pause_ms % 1000) * 1000000L };
		char *to = keep ? arena : buf; /* with -k: fd after fd */
		uint64_t t0;

		if (pause_ms > 0)
			nanosleep(&pause, NULL);
		t0 = now_ns();
		for (size_t i = 0; i < n; to += keep ? t[i].size : 0, i++)
			if (pread(t[i].fd, to, t[i].size, t[i].offset) != (ssize_t)t[i].size)
				return 1;
		printf("%s%llu", r ? ", " : "", (unsigned long long)(now_ns() - t0));
	}
	printf("]}\n");
	return 0;
}
