/* SPDX-License-Identifier: MIT */
/*
 * kvmstat_proto.h - the registration wire format between a VMM and kvmstatd.
 *
 * A VMM connects to the helper's UNIX socket (SOCK_SEQPACKET, default
 * /run/kvmstatd/register.sock) and sends one datagram per request. Every
 * request is a fixed header followed by a fixed-size body; file descriptors
 * ride along as SCM_RIGHTS ancillary data. The helper answers every request
 * with exactly one kvmstat_reply. All integers are in host byte order (the
 * socket never leaves the host). docs/wire-protocol.md is the prose version.
 *
 * SEQPACKET keeps message boundaries, so a request can never be half-read:
 * a short datagram, a datagram longer than the body, or ancillary data that
 * did not fit (MSG_CTRUNC) is refused as a whole.
 */
#ifndef KVMSTAT_PROTO_H
#define KVMSTAT_PROTO_H

#include <stdint.h>

#define KVMSTAT_PROTO_MAGIC 0x5453564bu /* "KVST" in little endian memory */
#define KVMSTAT_PROTO_VERSION 1
#define KVMSTAT_DEFAULT_SOCKET "/run/kvmstatd/register.sock"

/* Most descriptors one request may carry (VM stats fd + vCPU stats fds). */
#define KVMSTAT_MAX_FDS_PER_MSG 64
#define KVMSTAT_NAME_MAX 64 /* VM name buffer, NUL included */
#define KVMSTAT_REASON_MAX 96

enum kvmstat_msg_type {
	/* fds: [vm stats fd, vcpu stats fd...]; body: kvmstat_register_vm */
	KVMSTAT_MSG_REGISTER_VM = 1,
	/* fds: [vcpu stats fd...] (1..64); body: kvmstat_add_vcpus */
	KVMSTAT_MSG_ADD_VCPUS = 2,
	/* no fds; body: kvmstat_unregister_vm */
	KVMSTAT_MSG_UNREGISTER_VM = 3,
	/* helper -> VMM, one per request; body: kvmstat_reply */
	KVMSTAT_MSG_REPLY = 0x8000,
};

struct kvmstat_msg_hdr {
	uint32_t magic;	  /* KVMSTAT_PROTO_MAGIC */
	uint16_t version; /* KVMSTAT_PROTO_VERSION */
	uint16_t type;	  /* enum kvmstat_msg_type */
	uint32_t length;  /* whole datagram: header + body */
	uint32_t seq;	  /* chosen by the VMM, echoed in the reply */
};

/*
 * vm_handle: any value the VMM chooses that is unique among its own live VMs
 * (a counter, the VM fd number). It names the VM in later requests on any
 * connection from the same process. The vCPU index is not sent: the helper
 * reads it from the kernel (the stats fd's own id, "kvm-<tid>/vcpu-<n>").
 */
struct kvmstat_register_vm {
	uint64_t vm_handle;
	uint32_t flags;		     /* must be 0 */
	uint32_t reserved;	     /* must be 0 */
	char name[KVMSTAT_NAME_MAX]; /* optional, NUL-terminated UTF-8, "" = none */
};

struct kvmstat_add_vcpus {
	uint64_t vm_handle;
	uint32_t flags;	   /* must be 0 */
	uint32_t reserved; /* must be 0 */
};

struct kvmstat_unregister_vm {
	uint64_t vm_handle;
	uint32_t flags;	   /* must be 0 */
	uint32_t reserved; /* must be 0 */
};

struct kvmstat_reply {
	int32_t status;			 /* 0, or a negative errno saying why it was refused */
	uint32_t accepted;		 /* descriptors taken from this request */
	char reason[KVMSTAT_REASON_MAX]; /* NUL-terminated, for the VMM's log */
};

struct kvmstat_msg_register_vm {
	struct kvmstat_msg_hdr hdr;
	struct kvmstat_register_vm body;
};

struct kvmstat_msg_add_vcpus {
	struct kvmstat_msg_hdr hdr;
	struct kvmstat_add_vcpus body;
};

struct kvmstat_msg_unregister_vm {
	struct kvmstat_msg_hdr hdr;
	struct kvmstat_unregister_vm body;
};

struct kvmstat_msg_reply {
	struct kvmstat_msg_hdr hdr;
	struct kvmstat_reply body;
};

_Static_assert(sizeof(struct kvmstat_msg_hdr) == 16, "wire header size");
_Static_assert(sizeof(struct kvmstat_msg_register_vm) == 96, "register size");
_Static_assert(sizeof(struct kvmstat_msg_add_vcpus) == 32, "add_vcpus size");
_Static_assert(sizeof(struct kvmstat_msg_unregister_vm) == 32, "unregister size");
_Static_assert(sizeof(struct kvmstat_msg_reply) == 120, "reply size");

#endif
