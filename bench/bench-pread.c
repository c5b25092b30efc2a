/* SPDX-License-Identifier: MIT */
/*
 * bench-pread - the physical limit of polling: one pread of every data
 * block, nothing else. Takes copies of a VMM's stats fds with pidfd_getfd,
 * reads each header once, then times rounds of preads and prints
 * JSON: {"fds": N, "values": V, "round_ns": [..]}.
 *
 *   bench-pread ROUNDS PAUSE_MS PID FD[,FD...] ...
 *
 * PAUSE_MS > 0 sleeps between rounds, as a poller with that interval does
 * (caches and CPU frequency then start cold each round, like a real tick).
 */
#include <errno.h>
#include <linux/kvm.h>
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

int main(int argc, char **argv)
{
	struct target *t = calloc(65536, sizeof(*t));
	uint64_t values = 0;
	size_t n = 0;
	int rounds;
	long pause_ms;
	char *buf = malloc(1 << 20);

	if (argc < 5 || !t || !buf) {
		fprintf(stderr,
			"usage: bench-pread ROUNDS PAUSE_MS PID FD[,FD...] [PID FD,...]...\n");
		return 2;
	}
	rounds = atoi(argv[1]);
	pause_ms = atol(argv[2]);
	for (int a = 3; a + 1 < argc; a += 2) {
		int pidfd = (int)syscall(SYS_pidfd_open, atoi(argv[a]), 0);

		for (char *s = strtok(argv[a + 1], ","); s && pidfd >= 0 && n < 65536;
		     s = strtok(NULL, ",")) {
			int fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(s), 0);

			if (fd >= 0 && describe(fd, &t[n]) == 0) {
				values += t[n].size / 8;
				n++;
			}
		}
	}
	printf("{\"fds\": %zu, \"values\": %llu, \"round_ns\": [", n, (unsigned long long)values);
	for (int r = 0; r < rounds; r++) {
		struct timespec pause = { pause_ms / 1000, (pause_ms % 1000) * 1000000L };
		uint64_t t0;

		if (pause_ms > 0)
			nanosleep(&pause, NULL);
		t0 = now_ns();

		for (size_t i = 0; i < n; i++)
			if (pread(t[i].fd, buf, t[i].size, t[i].offset) != (ssize_t)t[i].size)
				return 1;
		printf("%s%llu", r ? ", " : "", (unsigned long long)(now_ns() - t0));
	}
	printf("]}\n");
	return 0;
}
