/* SPDX-License-Identifier: MIT */
/*
 * webtls - the exporter's TLS identity: certificate, key, client CAs and
 * the protocol versions on offer ([web] tls_*).
 *
 * The privileged process reads the files at start-up, before it drops its
 * privileges (so the key may be readable by root alone), and checks them
 * with GnuTLS: each must parse, and the key must be the certificate's. The
 * PEM text then stays in memory, in a struct webtls the helper owns and
 * hands to each worker it starts (forked, it inherits the memory); the
 * worker passes it to its HTTP server, which hands it to libmicrohttpd
 * (MHD_OPTION_HTTPS_MEM_*). The worker could not read the files itself:
 * its sandbox refuses every open().
 *
 * libmicrohttpd 0.9.75 has no hook into the handshake, so client
 * certificates are asked for there (MHD_OPTION_HTTPS_MEM_TRUST) and
 * verified before the first request of a connection is answered
 * (webtls_check_client).
 */
#ifndef KVMSTATD_WEBTLS_H
#define KVMSTATD_WEBTLS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

#define WEBTLS_FILE_MAX (1u << 20) /* a PEM file larger than this is refused */

struct webtls {
	char *cert_pem; /* the certificate (chain), NUL-terminated */
	char *key_pem;
	char *ca_pem;		/* client CAs; NULL when client certificates are not asked for */
	const char *priorities; /* GnuTLS priority string for tls_min_version */
	enum config_client_auth client_auth;
};

/*
 * Read and check the files cfg names into t; 0 (TLS off when there are
 * none), or -errno with a sentence naming the key and the file in err
 * (t is then off and holds nothing).
 */
int webtls_load(struct webtls *t, const struct config *cfg, char *err, size_t err_size);

/* Whether t holds an identity to serve HTTPS with (t may be NULL). */
bool webtls_on(const struct webtls *t);

/* Wipe and free what t holds; t is then off. */
void webtls_free(struct webtls *t);

/*
 * May the peer of a TLS session (a gnutls_session_t) be served? With
 * RequireAndVerifyClientCert only when it sent a certificate that chains
 * to a client CA, is valid now and, if it names key purposes, is meant
 * for TLS clients; with VerifyClientCertIfGiven also when it sent none.
 * 0 or -EACCES.
 */
int webtls_check_client(const struct webtls *t, void *session);

#endif
