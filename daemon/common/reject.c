/* SPDX-License-Identifier: MIT */
/* reject - see reject.h. */
#include "reject.h"

static const char *const reason_names[REJ__COUNT] = {
	"bad_message", "bad_fd",    "fd_count",	   "not_owner", "limit",
	"unknown_vm",  "duplicate", "not_allowed", "rate",
};

const char *reject_reason_name(enum reject_reason r)
{
	return (unsigned)r < REJ__COUNT ? reason_names[r] : "unknown";
}
