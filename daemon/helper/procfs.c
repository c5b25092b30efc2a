/* SPDX-License-Identifier: MIT */
/* procfs - see procfs.h. */
#include "procfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

ssize_t procfs_read(pid_t pid, const char *file, char *buf, size_t size)
{
	char path[64];
	size_t len = 0;
	ssize_t n = 0;
	int fd;

	if (size == 0)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len < size - 1 && (n = read(fd, buf + len, size - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	return n < 0 && len == 0 ? -EIO : (ssize_t)len;
}

/* starttime (field 22) follows the comm, which may hold anything but ends at the last ')'. */
static int parse_start_ticks(const char *stat, unsigned long long *ticks)
{
	const char *p = strrchr(stat, ')');

	if (!p)
		return -EINVAL;
	for (int field = 3; field <= 22; field++) { /* to the blank before field 22 */
		p = strchr(p + 1, ' ');
		if (!p)
			return -EINVAL;
	}
	return sscanf(p, " %llu", ticks) == 1 ? 0 : -EINVAL;
}

int procfs_start_time_ns(pid_t pid, uint64_t *out)
{
	char stat[1024];
	unsigned long long ticks;
	long hz = sysconf(_SC_CLK_TCK);
	ssize_t n = procfs_read(pid, "stat", stat, sizeof(stat));
	uint64_t boot;

	if (n < 0)
		return (int)n;
	if (hz <= 0 || parse_start_ticks(stat, &ticks) < 0)
		return -EINVAL;
	boot = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME);
	*out = boot + (uint64_t)ticks * (1000000000u / (uint64_t)hz);
	return 0;
}
