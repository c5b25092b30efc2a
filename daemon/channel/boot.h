/* SPDX-License-Identifier: MIT */
/*
 * boot - the first message on a new worker's channel: everything the
 * worker program needs to start, since it is exec'd with nothing but its
 * channel (fd BOOT_CHANNEL_FD) and may not open a file.
 *
 * The parsed configuration (struct config: flat, no pointers) and the
 * [web] PEM texts the helper read as root travel in one sealed memfd:
 * the certificate and key may be up to 1 MiB each, more than a datagram
 * holds, and sealed, neither side can change them once sent. The message
 * says how the memfd is laid out (the config, then each PEM text) and
 * carries the HTTP listener and the journal socket as fds. The worker
 * refuses a message from another build (version string and
 * sizeof(struct config) must match its own), a memfd that is not sealed
 * or not exactly that long, a string of the config without its NUL, a PEM
 * text with one.
 */
#ifndef KVMSTATD_BOOT_H
#define KVMSTATD_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ipc.h"

#define BOOT_CHANNEL_FD 3	/* where the exec'd worker finds its channel */
#define BOOT_TYPE 0x200		/* outside enum ipc_type: never valid after the first */
#define BOOT_PEM_MAX (1u << 20) /* a [web] file larger than this is refused */
#define BOOT_VERSION_MAX 16

enum boot_flag {
	BOOT_HTTP = 1u << 0,	 /* fd: the HTTP listener (absent in check mode) */
	BOOT_JOURNAL = 1u << 1,	 /* fd: the connected journal socket */
	BOOT_SELFTEST = 1u << 2, /* --sandbox-selftest */
	BOOT__FLAGS = (1u << 3) - 1
};

/* The [web] files, in this order in the memfd after the config. */
enum boot_pem_index { BOOT_CERT, BOOT_KEY, BOOT_CA, BOOT__PEMS };

struct boot_msg {
	struct ipc_hdr hdr; /* BOOT_TYPE */
	char version[BOOT_VERSION_MAX];
	uint32_t config_size;	      /* sizeof(struct config) of the sender */
	uint32_t pem_len[BOOT__PEMS]; /* 0: that file is not configured */
	uint32_t flags;		      /* enum boot_flag */
	uint32_t log_level;	      /* enum log_level */
};

/* PEM texts, NUL-terminated; NULL where not configured. */
struct boot_pem {
	char *text[BOOT__PEMS];
};

/* What a worker starts with (boot_recv). */
struct boot {
	struct config cfg;
	struct boot_pem pem;
	int http_fd;	/* -1 without BOOT_HTTP */
	int journal_fd; /* -1 without BOOT_JOURNAL */
	uint32_t flags;
	uint32_t log_level;
};

/*
 * Helper: send the boot message on sock. http_fd and journal_fd may be -1
 * (not sent); the flags for them are set here. 0 or -errno.
 */
int boot_send(int sock, const struct config *cfg, const struct boot_pem *pem, int http_fd,
	      int journal_fd, uint32_t flags, uint32_t log_level);

/*
 * Worker: receive and check it (blocking). 0, or -errno with a sentence
 * in why; on error nothing is left open or allocated.
 */
int boot_recv(int sock, struct boot *b, char *why, size_t why_size);

/* Wipe and free the PEM texts (the key is among them). */
void boot_pem_free(struct boot_pem *pem);

#endif
