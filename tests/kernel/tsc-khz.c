// SPDX-License-Identifier: GPL-2.0
/*
 * tsc-khz: print this machine's TSC frequency in kHz, measured against
 * CLOCK_MONOTONIC_RAW over 200 ms.
 *
 * QEMU TCG gives its guest the host's TSC. The kernel-check guest is told
 * this value (tsc_early_khz=) instead of calibrating against the PIT, which
 * fails when the host is busy (the guest then has no TSC frequency, and
 * KVM_RUN in the guest never returns).
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <x86intrin.h>

static uint64_t ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

int main(void)
{
	struct timespec nap = { .tv_nsec = 200 * 1000 * 1000 };
	uint64_t t0 = ns(), c0 = __rdtsc(), t1, c1;

	nanosleep(&nap, NULL);
	t1 = ns();
	c1 = __rdtsc();
	if (t1 <= t0 || c1 <= c0)
		return 1;
	printf("%llu\n", (unsigned long long)((c1 - c0) * 1000000 / (t1 - t0)));
	return 0;
}
