/* SPDX-License-Identifier: MIT */
/* regmsg - see regmsg.h. */
#include "regmsg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"
#include "reason.h"

static int refuse(struct regmsg *out, int status, enum reject_reason reason, char *why,
		  size_t why_size, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int refuse(struct regmsg *out, int status, enum reject_reason reason, char *why,
		  size_t why_size, const char *fmt, ...)
{
	va_list ap;

	out->vm_handle = 0;
	memset(out->name, 0, sizeof(out->name));
	out->reason = reason;
	va_start(ap, fmt);
	reason_vset(why, why_size, status, fmt, ap);
	va_end(ap);
	return status;
}

/* The body after the header: the same three leading fields for every request. */
struct body_head {
	uint64_t vm_handle;
	uint32_t flags;
	uint32_t reserved;
};

_Static_assert(offsetof(struct kvmstat_register_vm, flags) == offsetof(struct body_head, flags) &&
		   offsetof(struct kvmstat_add_vcpus, reserved) ==
		       offsetof(struct body_head, reserved) &&
		   offsetof(struct kvmstat_unregister_vm, reserved) ==
		       offsetof(struct body_head, reserved) &&
		   offsetof(struct kvmstat_register_vm, name) == sizeof(struct body_head),
	       "request bodies start alike");

static size_t size_of_type(uint16_t type)
{
	switch (type) {
	case KVMSTAT_MSG_REGISTER_VM:
		return sizeof(struct kvmstat_msg_register_vm);
	case KVMSTAT_MSG_ADD_VCPUS:
		return sizeof(struct kvmstat_msg_add_vcpus);
	case KVMSTAT_MSG_UNREGISTER_VM:
		return sizeof(struct kvmstat_msg_unregister_vm);
	default:
		return 0;
	}
}

int regmsg_parse(const void *buf, size_t len, size_t n_fds, struct regmsg *out, char *why,
		 size_t why_size)
{
	const unsigned char *p = buf;
	struct kvmstat_msg_hdr hdr;
	struct body_head body;
	char name[KVMSTAT_NAME_MAX];
	size_t expect, name_len;

	memset(out, 0, sizeof(*out));
	if (why && why_size)
		why[0] = '\0';
	if (n_fds > KVMSTAT_MAX_FDS_PER_MSG)
		return refuse(out, -E2BIG, REJ_FD_COUNT, why, why_size, "more than %d fds (%zu)",
			      KVMSTAT_MAX_FDS_PER_MSG, n_fds);
	if (len < sizeof(hdr))
		return refuse(out, -EBADMSG, REJ_BAD_MESSAGE, why, why_size,
			      "message of %zu bytes is shorter than a header", len);
	memcpy(&hdr, p, sizeof(hdr));
	out->has_seq = true;
	out->seq = hdr.seq;
	out->type = hdr.type;
	if (hdr.magic != KVMSTAT_PROTO_MAGIC || hdr.version != KVMSTAT_PROTO_VERSION)
		return refuse(out, -EBADMSG, REJ_BAD_MESSAGE, why, why_size,
			      "bad magic 0x%08x or version %u", hdr.magic, hdr.version);
	expect = size_of_type(hdr.type);
	if (!expect)
		return refuse(out, -EBADMSG, REJ_BAD_MESSAGE, why, why_size,
			      "unknown request type %u", hdr.type);
	if (hdr.length != len || len != expect)
		return refuse(out, -EBADMSG, REJ_BAD_MESSAGE, why, why_size,
			      "type %u: length %u, received %zu, expected %zu", hdr.type,
			      hdr.length, len, expect);
	memcpy(&body, p + sizeof(hdr), sizeof(body));
	if (body.flags || body.reserved)
		return refuse(out, -EBADMSG, REJ_BAD_MESSAGE, why, why_size,
			      "flags/reserved must be 0");
	if (hdr.type == KVMSTAT_MSG_REGISTER_VM && n_fds == 0)
		return refuse(out, -E2BIG, REJ_FD_COUNT, why, why_size,
			      "REGISTER_VM carries no fd");
	if (hdr.type == KVMSTAT_MSG_ADD_VCPUS && n_fds == 0)
		return refuse(out, -E2BIG, REJ_FD_COUNT, why, why_size, "ADD_VCPUS carries no fd");
	if (hdr.type == KVMSTAT_MSG_UNREGISTER_VM && n_fds)
		return refuse(out, -E2BIG, REJ_FD_COUNT, why, why_size,
			      "UNREGISTER_VM carries fds");
	if (hdr.type == KVMSTAT_MSG_REGISTER_VM) {
		memcpy(name, p + sizeof(hdr) + sizeof(body), sizeof(name));
		name_len = strnlen(name, sizeof(name));
		if (name_len == sizeof(name) || !escape_is_clean_utf8(name, name_len))
			return refuse(out, -EBADMSG, REJ_BAD_MESSAGE, why, why_size,
				      "name is unterminated, not UTF-8 or has control characters");
		memcpy(out->name, name, name_len); /* the rest stays zero */
	}
	out->vm_handle = body.vm_handle;
	return 0;
}

int regmsg_recv_failed(int rc, struct regmsg *out, char *why, size_t why_size)
{
	memset(out, 0, sizeof(*out));
	if (why && why_size)
		why[0] = '\0';
	if (rc == -EMSGSIZE)
		return refuse(out, -EBADMSG, REJ_BAD_MESSAGE, why, why_size,
			      "message longer than any request");
	if (rc == -E2BIG)
		return refuse(out, -E2BIG, REJ_FD_COUNT, why, why_size,
			      "more than %d fds, or ancillary data cut", KVMSTAT_MAX_FDS_PER_MSG);
	return refuse(out, -EBADMSG, REJ_BAD_MESSAGE, why, why_size, "unreadable message: %s",
		      strerror(rc < 0 ? -rc : rc));
}
