/* SPDX-License-Identifier: MIT */
/* privdrop - see privdrop.h. */
#include "privdrop.h"

#include <cap-ng.h>
#include <linux/capability.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

int privdrop_lookup(const char *user, uid_t *uid, gid_t *gid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int rc = getpwnam_r(user, &pw, buf, sizeof(buf), &res);

	if (rc != 0)
		return -rc;
	if (!res)
		return -ENOENT;
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

int privdrop_to(uid_t uid, gid_t gid)
{
	uid_t r, e, s;

	if (uid == 0)
		return -EPERM; /* refusing to "drop" to root */
	if (geteuid() == 0) {
		/* the bounding set needs CAP_SETPCAP: empty it while still root */
		capng_clear(CAPNG_SELECT_ALL);
		if (capng_apply(CAPNG_SELECT_BOUNDS) < 0)
			return -EPERM;
		/* leaving uid 0 clears permitted, effective and ambient caps */
		if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, uid, uid) < 0)
			return -errno;
	}
	capng_clear(CAPNG_SELECT_CAPS);
	if (capng_apply(CAPNG_SELECT_CAPS) < 0)
		return -EPERM;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (getresuid(&r, &e, &s) < 0 || r == 0 || e == 0 || s == 0 || setuid(0) == 0)
		return -EPERM;
	if (capng_have_capabilities(CAPNG_SELECT_CAPS) != CAPNG_NONE)
		return -EPERM;
	return 0;
}

int privdrop_helper(uid_t uid, gid_t gid, int keep_ptrace)
{
	capng_select_t bound = geteuid() == 0 ? CAPNG_SELECT_BOTH : CAPNG_SELECT_CAPS;
	uid_t r, e, s;
	int rc;

	if (uid == 0)
		return -EPERM;
	capng_clear(CAPNG_SELECT_BOTH);
	if (keep_ptrace)
		capng_updatev(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_SYS_PTRACE,
			      CAP_DAC_READ_SEARCH, -1);
	if (geteuid() == 0)
		/* keeps the caps above across the uid change; empties the bounding set */
		rc =
		    capng_change_id((int)uid, (int)gid, CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING);
	else
		rc = capng_apply(bound);
	if (rc < 0)
		return -EPERM;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (getresuid(&r, &e, &s) < 0 || r == 0 || e == 0 || s == 0 || setuid(0) == 0)
		return -EPERM;
	/* verify from the kernel's view: nothing but those two is left */
	if (capng_get_caps_process() < 0)
		return -EPERM;
	for (unsigned cap = 0; cap <= CAP_LAST_CAP; cap++) {
		int held = capng_have_capability(CAPNG_PERMITTED, cap) ||
			   capng_have_capability(CAPNG_EFFECTIVE, cap) ||
			   capng_have_capability(CAPNG_INHERITABLE, cap);

		if (bound == CAPNG_SELECT_BOTH && capng_have_capability(CAPNG_BOUNDING_SET, cap))
			return -EPERM;
		if (held && !(keep_ptrace && (cap == CAP_SYS_PTRACE || cap == CAP_DAC_READ_SEARCH)))
			return -EPERM;
	}
	return 0;
}
