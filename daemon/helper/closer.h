/* SPDX-License-Identifier: MIT */
/*
 * closer - close descriptors a VMM sent without ever blocking the caller.
 *
 * close() of a FUSE file waits for the FUSE server to answer FLUSH, for
 * ever if it never does, and a hostile VMM can send one. Descriptors whose
 * /proc link names an anonymous inode (every KVM fd) are closed at once;
 * any other goes to a thread of its own that may block without harm.
 */
#ifndef KVMSTATD_CLOSER_H
#define KVMSTATD_CLOSER_H

/* Start the closing thread (after any fork). 0 or -errno. */
int closer_init(void);

/* Close fd now if it cannot block, else hand it to the thread. */
void closer_close(int fd);

#endif
