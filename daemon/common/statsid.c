/* SPDX-License-Identifier: MIT */
/* statsid - see statsid.h. */
#include "statsid.h"

#include <errno.h>
#include <stdio.h>

int statsid_parse(const char *id, unsigned *tid, int *vcpu)
{
	unsigned n;
	int end = 0;

	*vcpu = -1;
	if (sscanf(id, "kvm-%u%n", tid, &end) == 1 && id[end] == '\0')
		return 0;
	end = 0;
	if (sscanf(id, "kvm-%u/vcpu-%u%n", tid, &n, &end) != 2 || id[end] != '\0' || n > 65535)
		return -EINVAL;
	*vcpu = (int)n;
	return 0;
}
