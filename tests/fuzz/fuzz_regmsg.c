/* SPDX-License-Identifier: MIT */
/*
 * fuzz_regmsg - libFuzzer target: arbitrary bytes as one registration
 * request (regmsg_parse). The first byte is the number of fds that came
 * with it (modulo 71: 0..70, past the limit of 64), the rest the datagram.
 *
 * Beyond memory safety it checks the contract: the status and the reason
 * agree, why is a sentence exactly when refused, and an accepted request
 * is exactly what the wire format allows, decoded faithfully. The same
 * bytes escaped for the log (escape_log) are one clean line.
 *
 * Build and run: see tests/fuzz/README.md. Seeds: tests/fuzz/corpus/regmsg.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "regmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_accepted(const uint8_t *msg, size_t len, size_t n_fds, const struct regmsg *r)
{
	struct kvmstat_msg_hdr hdr;
	struct kvmstat_register_vm body; /* its head is every body's head */
	size_t name_len;

	if (len < sizeof(hdr))
		abort();
	memcpy(&hdr, msg, sizeof(hdr));
	memset(&body, 0, sizeof(body));
	memcpy(&body, msg + sizeof(hdr),
	       len - sizeof(hdr) < sizeof(body) ? len - sizeof(hdr) : sizeof(body));
	if (hdr.magic != KVMSTAT_PROTO_MAGIC || hdr.version != KVMSTAT_PROTO_VERSION ||
	    hdr.length != len || !r->has_seq || r->seq != hdr.seq || r->type != hdr.type ||
	    r->vm_handle != body.vm_handle || body.flags || body.reserved)
		abort();
	name_len = strnlen(r->name, sizeof(r->name));
	if (name_len == sizeof(r->name) || !escape_is_clean_utf8(r->name, name_len))
		abort();
	switch (hdr.type) {
	case KVMSTAT_MSG_REGISTER_VM:
		if (len != sizeof(struct kvmstat_msg_register_vm) || n_fds < 1 ||
		    n_fds > KVMSTAT_MAX_FDS_PER_MSG)
			abort();
		if (memcmp(r->name, body.name, name_len + 1)) /* the sent name, terminator too */
			abort();
		break;
	case KVMSTAT_MSG_ADD_VCPUS:
		if (len != sizeof(struct kvmstat_msg_add_vcpus) || n_fds < 1 ||
		    n_fds > KVMSTAT_MAX_FDS_PER_MSG || name_len)
			abort();
		break;
	case KVMSTAT_MSG_UNREGISTER_VM:
		if (len != sizeof(struct kvmstat_msg_unregister_vm) || n_fds || name_len)
			abort();
		break;
	default:
		abort();
	}
}

/*
 * What a VMM sends may reach the log (a name, a refused fd's link): escaped,
 * any bytes are one line of clean UTF-8 without a control character, and a
 * smaller buffer holds a prefix of the same escape.
 */
static void check_log_escape(const uint8_t *msg, size_t len)
{
	char out[1024], small[17];
	size_t n = escape_log((const char *)msg, len, out, sizeof(out));
	size_t m = escape_log((const char *)msg, len, small, sizeof(small));

	if (n >= sizeof(out) || out[n] || !escape_is_clean_utf8(out, n) || m > n ||
	    memcmp(small, out, m) || small[m])
		abort();
	if (len <= sizeof(out) / 4 - 1 && strlen(out) != n) /* whole: no NUL inside */
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n_fds = size ? data[0] % 71 : 0, len = size ? size - 1 : 0;
	/* an exact-size copy, so the sanitizer sees reads past the end */
	uint8_t *msg = malloc(len ? len : 1);
	char why[KVMSTAT_REASON_MAX], small[7];
	struct regmsg r, again;
	int rc;

	if (!msg)
		return 0;
	if (len)
		memcpy(msg, data + 1, len);
	memset(why, 'x', sizeof(why));
	rc = regmsg_parse(msg, len, n_fds, &r, why, sizeof(why));
	if (!memchr(why, '\0', sizeof(why)))
		abort();
	if (rc == 0) {
		if (why[0])
			abort();
		check_accepted(msg, len, n_fds, &r);
	} else if (!why[0] || r.vm_handle || r.name[0] ||
		   !((rc == -EBADMSG && r.reason == REJ_BAD_MESSAGE) ||
		     (rc == -E2BIG && r.reason == REJ_FD_COUNT))) {
		abort();
	}
	if (r.has_seq !=
	    (n_fds <= KVMSTAT_MAX_FDS_PER_MSG && len >= sizeof(struct kvmstat_msg_hdr)))
		abort();
	/* the same verdict with a cut sentence, and with none */
	memset(small, 'x', sizeof(small));
	if (regmsg_parse(msg, len, n_fds, &again, small, sizeof(small)) != rc ||
	    memcmp(&again, &r, sizeof(r)) || !memchr(small, '\0', sizeof(small)) ||
	    strncmp(small, why, sizeof(small) - 1))
		abort();
	if (regmsg_parse(msg, len, n_fds, &again, NULL, 0) != rc)
		abort();
	check_log_escape(msg, len);
	free(msg);
	return 0;
}
