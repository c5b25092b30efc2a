/* SPDX-License-Identifier: MIT */
/* webtls - see webtls.h. */
#include "webtls.h"

#include <errno.h>
#include <stdint.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "reason.h"

static gnutls_datum_t datum(const char *pem)
{
	return (gnutls_datum_t){ (unsigned char *)(uintptr_t)pem, (unsigned)strlen(pem) };
}

/* At least one PEM certificate; warns when the first has expired. 0 or a GnuTLS error. */
static int parse_certs(const char *pem, const char *path)
{
	gnutls_datum_t d = datum(pem);
	gnutls_x509_crt_t *crts = NULL;
	unsigned n = 0;
	int rc = gnutls_x509_crt_list_import2(&crts, &n, &d, GNUTLS_X509_FMT_PEM, 0);

	if (rc >= 0 && n == 0)
		rc = GNUTLS_E_NO_CERTIFICATE_FOUND;
	if (rc >= 0 && gnutls_x509_crt_get_expiration_time(crts[0]) < time(NULL))
		log_warn("the certificate in %s has expired: clients will refuse it", path);
	for (unsigned i = 0; i < n; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	return rc < 0 ? rc : 0;
}

/* The key parses (unencrypted PEM) and belongs to the certificate. */
static int parse_key(const struct webtls *t)
{
	gnutls_certificate_credentials_t cred;
	gnutls_datum_t cert = datum(t->cert_pem), key = datum(t->key_pem);
	gnutls_x509_privkey_t pk;
	int rc = gnutls_x509_privkey_init(&pk);

	if (rc < 0)
		return rc;
	rc = gnutls_x509_privkey_import2(pk, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
	gnutls_x509_privkey_deinit(pk);
	if (rc < 0)
		return rc;
	if ((rc = gnutls_certificate_allocate_credentials(&cred)) < 0)
		return rc;
	rc = gnutls_certificate_set_x509_key_mem2(cred, &cert, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
	gnutls_certificate_free_credentials(cred);
	return rc < 0 ? rc : 0;
}

static int check_all(const struct webtls *loaded, const struct config *cfg, char *err, size_t size)
{
	int rc = parse_certs(loaded->cert_pem, cfg->tls_cert_file);

	if (rc < 0)
		return reason_set(err, size, -EINVAL,
				  "[web] tls_cert_file %s: no PEM certificate: %s",
				  cfg->tls_cert_file, gnutls_strerror(rc));
	rc = parse_key(loaded);
	if (rc == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
		return reason_set(err, size, -EINVAL,
				  "[web] tls_key_file %s: not the key of the certificate in %s",
				  cfg->tls_key_file, cfg->tls_cert_file);
	if (rc < 0)
		return reason_set(err, size, -EINVAL,
				  "[web] tls_key_file %s: no unencrypted PEM private key: %s",
				  cfg->tls_key_file, gnutls_strerror(rc));
	if (loaded->ca_pem && (rc = parse_certs(loaded->ca_pem, cfg->tls_client_ca_file)) < 0)
		return reason_set(err, size, -EINVAL,
				  "[web] tls_client_ca_file %s: no PEM certificate: %s",
				  cfg->tls_client_ca_file, gnutls_strerror(rc));
	return 0;
}

int webtls_load(struct webtls *t, const struct config *cfg, char *cert_pem, char *key_pem,
		char *ca_pem, char *err, size_t err_size)
{
	int rc = 0;

	*t = (struct webtls){ .cert_pem = cert_pem,
			      .key_pem = key_pem,
			      .ca_pem = ca_pem,
			      .client_auth = CLIENT_AUTH_NONE };
	if (cfg->tls_cert_file[0]) {
		/* exporter-toolkit's TLS12 also offers 1.3; the minimum is what matters */
		t->priorities = !strcmp(cfg->tls_min_version, "TLS13")
				    ? "NORMAL:-VERS-ALL:+VERS-TLS1.3"
				    : "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
		t->client_auth = cfg->client_auth;
		if (!cert_pem || !key_pem || (cfg->tls_client_ca_file[0] && !ca_pem))
			rc = reason_set(err, err_size, -EINVAL,
					"[web] the helper sent no PEM text for a configured file");
		if (rc == 0)
			rc = check_all(t, cfg, err, err_size);
	}
	/* nothing kept without a certificate: webtls_on() tells by cert_pem */
	if (rc < 0 || !cfg->tls_cert_file[0])
		webtls_free(t);
	return rc;
}

bool webtls_on(const struct webtls *t)
{
	/* webtls_load keeps a certificate only when all of it checked out */
	return t && t->cert_pem;
}

static void wipe(char **pem)
{
	if (*pem) {
		explicit_bzero(*pem, strlen(*pem));
		free(*pem);
		*pem = NULL;
	}
}

void webtls_free(struct webtls *t)
{
	wipe(&t->cert_pem);
	wipe(&t->key_pem);
	wipe(&t->ca_pem);
}

int webtls_check_client(const struct webtls *t, void *session)
{
	gnutls_typed_vdata_st purpose = { .type = GNUTLS_DT_KEY_PURPOSE_OID,
					  .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT };
	unsigned n = 0, status = 1;

	if (t->client_auth == CLIENT_AUTH_NONE)
		status = 0;
	else if (session && (!gnutls_certificate_get_peers(session, &n) || n == 0))
		status = t->client_auth == CLIENT_AUTH_VERIFY_IF_GIVEN ? 0 : 1;
	else if (session && gnutls_certificate_verify_peers(session, &purpose, 1, &status) < 0)
		status = 1; /* the status is only set on success */
	return status == 0 ? 0 : -EACCES;
}
