/* SPDX-License-Identifier: MIT */
/* http - see http.h. */
#include "http.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "gzip.h"
#include "accept.h"
#include "clock.h"
#include "log.h"
#include "pagecache.h"
#include "render.h"
#include "webauth.h"
#include "webtls.h"

struct http_server {
	struct MHD_Daemon *mhd;
	struct selfstats *stats;
	struct pagecache *pages;
	struct webauth *auth;	  /* NULL: no basic auth */
	const struct webtls *tls; /* NULL: plain HTTP */
	unsigned max_headers;
};

/* What the first look at a request (its headers) decided. */
enum verdict { ADMIT, TOO_MANY_HEADERS, BAD_CLIENT_CERT, UNAUTHORIZED, AUTH_FAILED };

static const char landing[] =
    "<!DOCTYPE html>\n<html><head><title>kvmstatd</title></head><body>\n"
    "<h1>kvmstatd</h1>\n<p>KVM VM and vCPU statistics from the kernel's binary stats fds.</p>\n"
    "<ul><li><a href=\"/metrics\">/metrics</a> (Prometheus text; OpenMetrics on request)</li>\n"
    "<li><a href=\"/-/healthy\">/-/healthy</a></li></ul>\n</body></html>\n";

bool http_wants_openmetrics(const char *accept)
{
	double om = accept_q(accept, "application/openmetrics-text", NULL);
	double text = accept_q(accept, "text/plain", "*/*");

	return om > 0 && om >= text;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype,
			     const char *body, size_t len)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Basic realm=\"kvmstatd\", charset=\"UTF-8\"");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text)
{
	return reply(c, status, "text/plain; charset=utf-8", text, strlen(text));
}

static void page_release(void *p)
{
	page_unref(p);
}

/* Send a page; MHD holds our reference until the last byte is out. */
static enum MHD_Result reply_page(struct MHD_Connection *c, const char *ctype, struct page *p,
				  bool gz)
{
	struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback_cls(
	    page_len(p), (void *)page_data(p), page_release, p); /* MHD only reads it */
	enum MHD_Result ret;

	if (!r) {
		page_unref(p);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	if (gz)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	/* the page depends on Accept (format) and Accept-Encoding (gzip) */
	MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept, Accept-Encoding");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/*
 * ?format=prometheus|openmetrics overrides Accept: a scraper that cannot
 * choose its Accept header (Prometheus before 2.49) can still pick the
 * format with its scrape config's params. Any other value is an error.
 */
static int choose_format(struct MHD_Connection *c, enum render_format *fmt)
{
	const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format");
	const char *accept;

	if (q) {
		if (!strcmp(q, "prometheus") || !strcmp(q, "text"))
			*fmt = FMT_TEXT_004;
		else if (!strcmp(q, "openmetrics"))
			*fmt = FMT_OPENMETRICS_100;
		else
			return -EINVAL;
		return 0;
	}
	accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	*fmt = http_wants_openmetrics(accept) ? FMT_OPENMETRICS_100 : FMT_TEXT_004;
	return 0;
}

static enum MHD_Result serve_metrics(struct http_server *srv, struct MHD_Connection *c)
{
	const char *ae =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
	bool gz = gzip_accepted(ae);
	enum render_format fmt;
	struct page *page = NULL;
	uint64_t t0 = clock_mono_ns();
	int rc;

	if (choose_format(c, &fmt) < 0)
		return reply_text(c, MHD_HTTP_BAD_REQUEST,
				  "format must be prometheus, text or openmetrics\n");
	rc = pagecache_get(srv->pages, fmt, gz, &page);
	stat_add(&srv->stats->scrapes, 1);
	stat_add(&srv->stats->scrape_ns_sum, clock_mono_ns() - t0);
	if (rc < 0) {
		log_err("rendering /metrics: %s", strerror(-rc));
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "render failed\n");
	}
	return reply_page(c, fmt == FMT_OPENMETRICS_100 ? CONTENT_TYPE_OM : CONTENT_TYPE_TEXT, page,
			  gz);
}

void http_tick(struct http_server *srv)
{
	if (srv)
		pagecache_drop_stale(srv->pages);
}

static bool client_cert_ok(const struct http_server *srv, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);

	return webtls_check_client(srv->tls, ci ? ci->tls_session : NULL) == 0;
}

/* Cheapest first: a bcrypt check is the last thing a stranger can make us do. */
static enum verdict admit(struct http_server *srv, struct MHD_Connection *c)
{
	const char *authorization;
	int rc;

	if (MHD_get_connection_values(c, MHD_HEADER_KIND, NULL, NULL) > (int)srv->max_headers)
		return TOO_MANY_HEADERS;
	if (srv->tls && !client_cert_ok(srv, c))
		return BAD_CLIENT_CERT;
	if (!srv->auth)
		return ADMIT;
	authorization =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	rc = webauth_check(srv->auth, authorization);
	if (rc == -EACCES)
		return UNAUTHORIZED;
	return rc < 0 ? AUTH_FAILED : ADMIT;
}

/* Answered at once, on the first call: a refused request's body is never read. */
static enum MHD_Result refuse(struct MHD_Connection *c, enum verdict v)
{
	switch (v) {
	case TOO_MANY_HEADERS:
		return reply_text(c, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE,
				  "too many request headers\n");
	case BAD_CLIENT_CERT:
		return reply_text(c, MHD_HTTP_FORBIDDEN,
				  "a valid client certificate is required\n");
	case UNAUTHORIZED:
		return reply_text(c, MHD_HTTP_UNAUTHORIZED, "unauthorized\n");
	default:
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "authentication failed\n");
	}
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **req_ctx)
{
	struct http_server *srv = cls;
	enum verdict v;

	(void)version;
	(void)upload;
	if (*req_ctx == NULL) { /* first call: headers only; answer on the next */
		v = admit(srv, c);
		if (v != ADMIT)
			return refuse(c, v);
		*req_ctx = srv;
		return MHD_YES;
	}
	if (*upload_size) { /* a body we do not want: drop it, answer below */
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	if (!strcmp(url, "/metrics"))
		return serve_metrics(srv, c);
	if (!strcmp(url, "/"))
		return reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", landing,
			     sizeof(landing) - 1);
	if (!strcmp(url, "/-/healthy"))
		return reply_text(c, MHD_HTTP_OK, "OK\n");
	return reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_warn("http: %s", line);
}

/* Options that depend on the configuration, as an MHD_OPTION_ARRAY. */
static void optional_options(const struct http_server *srv, const struct config *cfg,
			     struct MHD_OptionItem *o)
{
	size_t n = 0;

	if (cfg->threads > 1) /* one thread is no pool: MHD's own polling thread */
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, cfg->threads, NULL };
	if (srv->tls) {
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls->key_pem };
		o[n++] =
		    (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls->cert_pem };
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
						  (void *)(uintptr_t)srv->tls->priorities };
	}
	/* a trust list makes libmicrohttpd ask every client for a certificate */
	if (srv->tls && srv->tls->ca_pem)
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0, srv->tls->ca_pem };
	o[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
}

static int start_mhd(struct http_server *srv, const struct http_config *hc)
{
	const struct config *cfg = hc->cfg;
	/* ITC: threads are woken through an eventfd, never by shutdown() of
	 * the listening socket, which the helper and the next worker share */
	unsigned flags =
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
	struct MHD_OptionItem more[6];

	if (srv->tls)
		flags |= MHD_USE_TLS;
	optional_options(srv, cfg, more);
	srv->mhd = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
	    MHD_OPTION_LISTEN_SOCKET, hc->listen_fd, MHD_OPTION_CONNECTION_LIMIT,
	    cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_connections_per_ip,
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout_s,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->max_request_bytes, MHD_OPTION_ARRAY,
	    more, MHD_OPTION_END);
	return srv->mhd ? 0 : -EIO;
}

int http_start(struct http_server **out, const struct http_config *cfg)
{
	struct http_server *srv = calloc(1, sizeof(*srv));
	int rc = 0;

	if (!srv)
		return -ENOMEM;
	srv->stats = cfg->stats;
	srv->tls = webtls_on(cfg->tls) ? cfg->tls : NULL;
	srv->max_headers = cfg->cfg->max_headers;
	rc = pagecache_new(&srv->pages, cfg->snapshots, cfg->stats, cfg->render);
	if (rc == 0 && cfg->cfg->n_auth_users)
		rc = webauth_new(&srv->auth, cfg->cfg->auth_users, cfg->cfg->n_auth_users);
	if (rc == 0)
		rc = start_mhd(srv, cfg);
	if (rc < 0) {
		webauth_free(srv->auth);
		pagecache_free(srv->pages);
		free(srv);
		return rc;
	}
	*out = srv;
	return 0;
}

void http_stop(struct http_server *srv)
{
	MHD_socket listen_fd = MHD_INVALID_SOCKET;

	if (!srv)
		return;
	/* stop accepting first: after a reload the next worker serves this
	 * socket; closing our copy (ours once quiesced) leaves it open there */
	if (srv->mhd)
		listen_fd = MHD_quiesce_daemon(srv->mhd);
	MHD_stop_daemon(srv->mhd);
	if (listen_fd != MHD_INVALID_SOCKET)
		close(listen_fd);
	pagecache_free(srv->pages);
	webauth_free(srv->auth);
	free(srv);
}
