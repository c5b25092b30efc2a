/* SPDX-License-Identifier: MIT */
/*
 * webfiles - the [web] tls_* files, read by the helper at start-up while
 * it is root (so the key may be readable by root alone) and kept for
 * every worker, which gets them in its boot message (boot.h) and parses
 * them with GnuTLS itself: the helper only reads bytes. Read once: a
 * reload does not read them again (the helper is no longer root then).
 */
#ifndef KVMSTATD_WEBFILES_H
#define KVMSTATD_WEBFILES_H

#include <stddef.h>

#include "boot.h"
#include "config.h"

/*
 * Read the files cfg names into pem (nothing when TLS is off). 0, or
 * -errno with a sentence naming the key and the file in err (pem then
 * holds nothing).
 */
int webfiles_read(const struct config *cfg, struct boot_pem *pem, char *err, size_t err_size);

#endif
