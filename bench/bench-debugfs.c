/* SPDX-License-Identifier: MIT */
/*
 * bench-debugfs - what a debugfs reader (kvm_stat, PCP's pmdakvm) pays per
 * statistic: one open, read and close per file, in C so that the figure is
 * the kernel's cost and not an interpreter's.
 *
 *   bench-debugfs ROUNDS PAUSE_MS < paths
 *
 * Reads one path a line from stdin, then times ROUNDS rounds over all of
 * them, PAUSE_MS apart (a reader polling once per interval finds caches
 * cold, as kvmstatd's tick does) and prints JSON: {"files": N, "readable": R, "ok_ns": [..],
 * "refused_ns": [..]}: per round, the mean ns per file that opened and per
 * file whose open was refused (lockdown refuses most KVM stat files).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILES 400000

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	char **paths = calloc(MAX_FILES, sizeof(*paths)), line[4096], data[4096];
	size_t n = 0, readable = 0;
	int rounds = argc > 2 ? atoi(argv[1]) : 0;
	long pause_ms = argc > 2 ? atol(argv[2]) : 0;

	if (!paths || rounds < 1) {
		fprintf(stderr, "usage: bench-debugfs ROUNDS PAUSE_MS < paths\n");
		return 2;
	}
	while (n < MAX_FILES && fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] && !(paths[n++] = strdup(line)))
			return 1;
	}
	printf("{\"files\": %zu, \"rounds\": [", n);
	for (int r = 0; r < rounds; r++) {
		struct timespec pause = { pause_ms / 1000, (pause_ms % 1000) * 1000000L };
		uint64_t ok_ns = 0, bad_ns = 0;
		size_t ok = 0;

		if (pause_ms > 0)
			nanosleep(&pause, NULL);
		for (size_t i = 0; i < n; i++) {
			uint64_t t0 = now_ns();
			int fd = open(paths[i], O_RDONLY | O_CLOEXEC);

			if (fd >= 0) {
				if (read(fd, data, sizeof(data)) >= 0)
					ok++;
				close(fd);
				ok_ns += now_ns() - t0;
			} else {
				bad_ns += now_ns() - t0;
			}
		}
		readable = ok;
		printf("%s{\"ok_ns\": %llu, \"refused_ns\": %llu}", r ? ", " : "",
		       (unsigned long long)(ok ? ok_ns / ok : 0),
		       (unsigned long long)(n > ok ? bad_ns / (n - ok) : 0));
	}
	printf("], \"readable\": %zu}\n", readable);
	return 0;
}
