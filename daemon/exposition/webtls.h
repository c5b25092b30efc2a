/* SPDX-License-Identifier: MIT */
/*
 * webtls - the exporter's TLS identity: certificate, key, client CAs and
 * the protocol versions on offer ([web] tls_*).
 *
 * The privileged helper reads the files at start-up, before it drops its
 * privileges (so the key may be readable by root alone), and sends their
 * bytes to every worker in its boot message; it links no GnuTLS. The
 * worker program checks them here, under its sandbox: each must parse, and
 * the key must be the certificate's (the helper's start-up and
 * --check-config run the same check in the worker program's check mode).
 * The PEM text then stays in a struct webtls the worker owns; it passes it
 * to its HTTP server, which hands it to libmicrohttpd
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

struct webtls {
	char *cert_pem; /* the certificate (chain), NUL-terminated */
	char *key_pem;
	char *ca_pem;		/* client CAs; NULL when client certificates are not asked for */
	const char *priorities; /* GnuTLS priority string for tls_min_version */
	enum config_client_auth client_auth;
};

/*
 * Check the PEM texts of the files cfg names (cert, key, client CA;
 * malloc'd, NULL where not configured) and keep them in t: they are t's
 * from now on (webtls_free wipes them; on error, or with no certificate
 * configured, that is done here). 0 (TLS off when cfg names no
 * certificate), or -errno with a sentence naming the key and the file in
 * err (t is then off and holds nothing).
 */
int webtls_load(struct webtls *t, const struct config *cfg, char *cert_pem, char *key_pem,
		char *ca_pem, char *err, size_t err_size);

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
