/* SPDX-License-Identifier: MIT */
/*
 * fuzz_ipc - libFuzzer target: arbitrary bytes as one helper -> worker
 * message (ipc_check). The first byte is the number of fds that came with
 * it (modulo 71: 0..70), the rest the message.
 *
 * Beyond memory safety it compares ipc_check's verdict with a second,
 * plainly written statement of the rules in daemon/channel/ipc.h, both ways: every
 * accepted message is one the worker may act on, and every such message is
 * accepted.
 *
 * Build and run: see tests/fuzz/README.md. Seeds: tests/fuzz/corpus/ipc.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool terminated(const char *s, size_t size)
{
	for (size_t i = 0; i < size; i++)
		if (s[i] == '\0')
			return true;
	return false;
}

/* The rules again, one type at a time. */
static bool valid(const uint8_t *msg, size_t len, size_t n_fds)
{
	union ipc_msg m;

	if (len < sizeof(m.hdr) || len > sizeof(m))
		return false;
	memset(&m, 0, sizeof(m));
	memcpy(&m, msg, len);
	if (m.hdr.len != len)
		return false;
	switch (m.hdr.type) {
	case IPC_ADD_VM:
		return len == sizeof(m.add_vm) && m.add_vm.n_vcpus <= IPC_MAX_VCPU_FDS &&
		       n_fds == 2 + m.add_vm.n_vcpus &&
		       terminated(m.add_vm.name, sizeof(m.add_vm.name)) &&
		       terminated(m.add_vm.comm, sizeof(m.add_vm.comm)) &&
		       m.add_vm.origin < ORIGIN__COUNT;
	case IPC_ADD_VCPUS:
		return len == sizeof(m.add_vcpus) && m.add_vcpus.n_vcpus >= 1 &&
		       m.add_vcpus.n_vcpus <= IPC_MAX_VCPU_FDS && n_fds == m.add_vcpus.n_vcpus;
	case IPC_REMOVE_VM:
		return len == sizeof(m.remove_vm) && n_fds == 0;
	case IPC_REJECTED:
		return len == sizeof(m.rejected) && n_fds == 0 && m.rejected.reason < REJ__COUNT;
	case IPC_HELLO:
		return len == sizeof(m.hello) && n_fds == 0 &&
		       m.hello.heartbeat_ms <= IPC_HEARTBEAT_MAX_MS;
	case IPC_SYNC:
		return len == sizeof(m.sync) && n_fds == 0;
	case IPC_BPF_MAPS:
		return len == sizeof(m.bpf_maps) && n_fds == 2 && m.bpf_maps.n_slots >= 1 &&
		       m.bpf_maps.n_slots <= IPC_MAX_BPF_SLOTS;
	case IPC_SCHEDSTAT:
		if (len != sizeof(m.schedstat) || m.schedstat.n < 1 ||
		    m.schedstat.n > IPC_MAX_VCPU_FDS || n_fds != m.schedstat.n)
			return false;
		for (uint32_t i = 0; i < m.schedstat.n; i++)
			if (m.schedstat.vcpu[i] < 0)
				return false;
		return true;
	default:
		return false;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n_fds = size ? data[0] % 71 : 0, len = size ? size - 1 : 0;
	/* an exact-size copy, so the sanitizer sees reads past the end */
	uint8_t *msg = malloc(len ? len : 1);
	char why[128], small[5];
	int rc;

	if (!msg)
		return 0;
	if (len)
		memcpy(msg, data + 1, len);
	memset(why, 'x', sizeof(why));
	rc = ipc_check(msg, len, n_fds, why, sizeof(why));
	if ((rc != 0 && rc != -EBADMSG) || !memchr(why, '\0', sizeof(why)) ||
	    (rc == 0) != (why[0] == '\0'))
		abort();
	if ((rc == 0) != valid(msg, len, n_fds))
		abort();
	memset(small, 'x', sizeof(small));
	if (ipc_check(msg, len, n_fds, small, sizeof(small)) != rc ||
	    !memchr(small, '\0', sizeof(small)) || strncmp(small, why, sizeof(small) - 1))
		abort();
	if (ipc_check(msg, len, n_fds, NULL, 0) != rc)
		abort();
	free(msg);
	return 0;
}
