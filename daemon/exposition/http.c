/* SPDX-License-Identifier: MIT */
/* http - see http.h. */
#include "http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gzip.h"
#include "accept.h"
#include "api_http.h"
#include "clock.h"
#include "httpguard.h"
#include "log.h"
#include "logbudget.h"
#include "pagecache.h"
#include "render.h"
#include "slowlane.h"
#include "webauth.h"
#include "webtls.h"

/* Connections libmicrohttpd may hold beyond max_connections: room for a
 * newcomer while the one cut for it is still being closed. */
#define SLOT_HEADROOM 16
/* bcrypt checks queued for the slow lane at once (at most one per client). */
#define CHECK_QUEUE 16
/* The slow lane's chore: deadlines, and the count of warnings left out. */
#define CHORE_MS 250
/* Warnings of HTTP: 20 at once, then 1 a second. */
#define WARN_BURST 20
#define WARN_PER_S 1

/* Where a request is. */
enum phase {
	PH_NEW,	     /* its headers are in: not looked at yet */
	PH_CHECKING, /* suspended, its password on the slow lane */
	PH_ADMITTED, /* to be answered */
	PH_REFUSED,  /* answered already */
};

/* One per connection slot of the guard: what we know of its request. */
struct hconn {
	struct slowlane_job job; /* first: the job is the hconn */
	struct http_server *srv;
	struct MHD_Connection *c;
	unsigned slot;
	enum phase phase;
	bool too_many_args;
	int check_rc; /* webauth_finish's, -EAGAIN when cancelled */
	struct webauth_attempt at;
};

struct http_server {
	struct MHD_Daemon *mhd;
	struct selfstats *stats;
	struct pagecache *pages;
	struct webauth *auth;	  /* NULL: no basic auth */
	const struct webtls *tls; /* NULL: plain HTTP */
	unsigned max_headers;
	unsigned max_query_args;
	struct httpguard *guard;
	struct slowlane *lane;
	struct hconn *conns; /* one per guard slot */
	pthread_mutex_t warn_lock;
	struct logbudget warns;
	struct api_http_ctx api; /* what the JSON API reads */
};

/* What the first look at a request (its headers) decided. */
enum verdict {
	ADMIT,
	TOO_MANY_HEADERS,
	TOO_MANY_ARGS,
	BAD_CLIENT_CERT,
	UNAUTHORIZED,
	AUTH_FAILED,
	CHECK_LATER, /* a bcrypt on the slow lane */
};

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

/*
 * A warning of the HTTP side, within the budget (20 at once, 1 a second):
 * strangers choose how many there are. The first one after a quiet spell
 * says how many were left out.
 */
__attribute__((format(printf, 2, 0))) static void vwarn(struct http_server *srv, const char *fmt,
							va_list ap)
{
	char line[512];
	uint64_t left_out = 0;
	bool ok;

	pthread_mutex_lock(&srv->warn_lock);
	ok = logbudget_take(&srv->warns, clock_mono_ns(), &left_out);
	pthread_mutex_unlock(&srv->warn_lock);
	if (!ok)
		return;
	if (left_out)
		log_warn("http: %llu warnings left out (too many)", (unsigned long long)left_out);
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_warn("http: %s", line);
}

__attribute__((format(printf, 2, 3))) static void warn(struct http_server *srv, const char *fmt,
						       ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwarn(srv, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	vwarn(cls, fmt, ap);
}

static bool client_cert_ok(const struct http_server *srv, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);

	return webtls_check_client(srv->tls, ci ? ci->tls_session : NULL) == 0;
}

/* Cheapest first: a bcrypt check is the last thing a stranger can make us do. */
static enum verdict admit(struct http_server *srv, struct hconn *hc, struct MHD_Connection *c)
{
	const char *authorization;
	int rc;

	if (hc->too_many_args)
		return TOO_MANY_ARGS;
	if (MHD_get_connection_values(c, MHD_HEADER_KIND, NULL, NULL) > (int)srv->max_headers)
		return TOO_MANY_HEADERS;
	if (srv->tls && !client_cert_ok(srv, c))
		return BAD_CLIENT_CERT;
	if (!srv->auth)
		return ADMIT;
	authorization =
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	rc = webauth_begin(srv->auth, authorization, clock_mono_ns(), &hc->at);
	if (rc == 0)
		stat_add(&srv->stats->http_checks[HCHK_REMEMBERED], 1);
	if (rc == -EINPROGRESS)
		return CHECK_LATER;
	if (rc == -EACCES)
		return UNAUTHORIZED;
	return rc < 0 ? AUTH_FAILED : ADMIT;
}

/* A refusal that asks the client to come back after retry_s. */
static enum MHD_Result reply_retry(struct MHD_Connection *c, unsigned status, unsigned retry_s,
				   const char *text)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	char after[16];
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	snprintf(after, sizeof(after), "%u", retry_s);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, after);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Answered at once, on the first call: a refused request's body is never read. */
static enum MHD_Result refuse(struct hconn *hc, struct MHD_Connection *c, enum verdict v)
{
	hc->phase = PH_REFUSED;
	switch (v) {
	case TOO_MANY_ARGS:
		stat_add(&hc->srv->stats->http_refused[HREF_QUERY_ARGS], 1);
		return reply_text(c, MHD_HTTP_URI_TOO_LONG, "too many query arguments\n");
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

/* On the slow lane: the bcrypt, then the connection is woken to answer. */
static void run_check(struct slowlane_job *j, bool cancelled)
{
	struct hconn *hc = (struct hconn *)j;
	struct http_server *srv = hc->srv;
	uint64_t now = clock_mono_ns();

	if (cancelled) { /* the lane stops, or a clean client took the place */
		webauth_attempt_clear(&hc->at);
		hc->check_rc = -EAGAIN;
	} else {
		hc->check_rc = webauth_finish(srv->auth, &hc->at, now);
	}
	if (hc->check_rc == -EACCES)
		httpguard_check_failed(srv->guard, &hc->job.client, now);
	if (hc->check_rc == 0 || hc->check_rc == -EACCES)
		stat_add(&srv->stats->http_checks[hc->check_rc ? HCHK_FAILED : HCHK_PASSED], 1);
	httpguard_set_waiting(srv->guard, hc->slot, false);
	MHD_resume_connection(hc->c);
}

/*
 * The password needs a bcrypt: unless the client has spent its budget of
 * failures (429) or the slow lane is full (503), suspend the connection
 * and let the slow lane check it; the HTTP thread goes on with others.
 */
static enum MHD_Result check_later(struct http_server *srv, struct hconn *hc,
				   struct MHD_Connection *c)
{
	struct slowlane_job *bumped = NULL;
	char who[64];
	unsigned retry_s = 1;
	int rc;

	httpguard_client_of_slot(srv->guard, hc->slot, &hc->job.client);
	rc = httpguard_may_check(srv->guard, &hc->job.client, clock_mono_ns(), &retry_s);
	if (rc < 0) {
		webauth_attempt_clear(&hc->at);
		httpguard_client_str(&hc->job.client, who, sizeof(who));
		warn(srv, "%s failed too many password checks: refused without one", who);
		stat_add(&srv->stats->http_refused[HREF_FAILED_CHECKS], 1);
		hc->phase = PH_REFUSED;
		return reply_retry(c, MHD_HTTP_TOO_MANY_REQUESTS, retry_s,
				   "too many failed password checks\n");
	}
	hc->job.run = run_check;
	hc->job.clean = !httpguard_has_failed(srv->guard, &hc->job.client, clock_mono_ns());
	hc->phase = PH_CHECKING;
	httpguard_set_waiting(srv->guard, hc->slot, true);
	/* suspended before it is queued: the lane may resume it at once */
	MHD_suspend_connection(c);
	rc = slowlane_push(srv->lane, &hc->job, &bumped);
	if (bumped) /* its place is ours: it is answered 503 */
		bumped->run(bumped, true);
	if (rc < 0) {
		MHD_resume_connection(c);
		httpguard_set_waiting(srv->guard, hc->slot, false);
		webauth_attempt_clear(&hc->at);
		hc->phase = PH_REFUSED;
		stat_add(&srv->stats->http_refused[HREF_BUSY], 1);
		return reply_retry(c, MHD_HTTP_SERVICE_UNAVAILABLE, 1,
				   "busy checking passwords, retry\n");
	}
	return MHD_YES;
}

/* Headers in: refuse, check the password later, or go on to the answer. */
static enum MHD_Result first_call(struct http_server *srv, struct hconn *hc,
				  struct MHD_Connection *c)
{
	enum verdict v;

	httpguard_answering(srv->guard, hc->slot);
	v = admit(srv, hc, c);
	if (v == CHECK_LATER)
		return check_later(srv, hc, c);
	if (v != ADMIT)
		return refuse(hc, c, v);
	hc->phase = PH_ADMITTED;
	return MHD_YES;
}

static enum MHD_Result after_check(struct hconn *hc, struct MHD_Connection *c)
{
	if (hc->check_rc == 0) {
		hc->phase = PH_ADMITTED;
		return MHD_YES;
	}
	hc->phase = PH_REFUSED;
	if (hc->check_rc == -EAGAIN) {
		stat_add(&hc->srv->stats->http_refused[HREF_BUSY], 1);
		return reply_retry(c, MHD_HTTP_SERVICE_UNAVAILABLE, 1,
				   "busy checking passwords, retry\n");
	}
	return refuse(hc, c, hc->check_rc == -EACCES ? UNAUTHORIZED : AUTH_FAILED);
}

static enum MHD_Result answer(struct http_server *srv, struct MHD_Connection *c, const char *url,
			      const char *method, size_t *upload_size)
{
	const struct web_asset *page;

	if (*upload_size) { /* a body we do not want: drop it, answer below */
		*upload_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
	if (!strcmp(url, "/metrics"))
		return serve_metrics(srv, c);
	if (!strncmp(url, "/api/", 5)) /* the JSON API and the live page: api_http.h */
		return api_http_serve(c, url, &srv->api);
	page = web_asset_find(url); /* /, /kvmstat.js, /kvmstat.css */
	if (page)
		return api_http_page(c, page);
	if (!strcmp(url, "/-/healthy"))
		return reply_text(c, MHD_HTTP_OK, "OK\n");
	return reply_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* Back from the slow lane: refuse, or answer now, whichever call this is. */
static enum MHD_Result resumed(struct http_server *srv, struct hconn *hc, struct MHD_Connection *c,
			       const char *url, const char *method, size_t *upload_size)
{
	enum MHD_Result ret = after_check(hc, c);

	if (ret == MHD_YES && hc->phase == PH_ADMITTED)
		ret = answer(srv, c, url, method, upload_size);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **req_ctx)
{
	struct http_server *srv = cls;
	struct hconn *hc = *req_ctx; /* on_uri's */
	enum MHD_Result ret = MHD_YES;

	(void)version;
	(void)upload;
	if (!hc) /* no slot: the guard has turned it away already */
		ret = MHD_NO;
	else if (hc->phase == PH_NEW) /* first call: headers only; answer on the next */
		ret = first_call(srv, hc, c);
	else if (hc->phase == PH_CHECKING)
		ret = resumed(srv, hc, c, url, method, upload_size);
	else if (hc->phase == PH_ADMITTED)
		ret = answer(srv, c, url, method, upload_size);
	else
		*upload_size = 0; /* refused: the rest of the body is dropped */
	return ret;
}

/* Query arguments of a URI as received: one more than its '&'s after the '?'. */
static unsigned query_args(const char *uri)
{
	const char *q = strchr(uri, '?');
	unsigned n = q && q[1];

	for (; q && *q; q++)
		n += *q == '&';
	return n;
}

/*
 * A request line is in: a new request on the connection. Its query is
 * counted before libmicrohttpd stores the arguments: 0.9.75 runs out of
 * its per-connection memory on a few hundred and then answers nothing,
 * holding the connection. Too many, and the query is cut off in
 * libmicrohttpd's own buffer (which it parses next, and which it passes
 * us const only to say "read it") so that the request can get its 414.
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct http_server *srv = cls;
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct hconn *hc = ci ? ci->socket_context : NULL;
	char *q;

	if (!hc)
		return NULL;
	hc->phase = PH_NEW;
	hc->c = c;
	hc->too_many_args = query_args(uri) > srv->max_query_args;
	if (hc->too_many_args && (q = strchr(uri, '?')))
		q[1] = '\0';
	return hc;
}

/* The answer is out (or the request failed): its deadline starts again. */
static void on_completed(void *cls, struct MHD_Connection *c, void **req_ctx,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *srv = cls;
	struct hconn *hc = *req_ctx;

	(void)c;
	(void)toe;
	if (hc) {
		webauth_attempt_clear(&hc->at);
		httpguard_answered(srv->guard, hc->slot, clock_mono_ns());
	}
}

static void say_verdict(struct http_server *srv, enum httpguard_verdict v,
			const struct sockaddr *sa, socklen_t len)
{
	struct httpguard_client who;
	char name[64];

	static const enum http_refusal why[] = {
		[GUARD_SERVE_EVICTED] = HREF_ROOM,
		[GUARD_PER_CLIENT] = HREF_PER_CLIENT,
		[GUARD_FULL] = HREF_FULL,
	};

	if (v == GUARD_SERVE)
		return;
	stat_add(&srv->stats->http_refused[why[v]], 1);
	httpguard_client_of(sa, len, &who);
	httpguard_client_str(&who, name, sizeof(name));
	if (v == GUARD_PER_CLIENT)
		warn(srv, "%s holds its share of connections: one more turned away", name);
	else if (v == GUARD_FULL)
		warn(srv, "every connection busy answering: one from %s turned away", name);
	else
		warn(srv,
		     "every connection in use: the oldest of the client holding most cut "
		     "for one from %s",
		     name);
}

static void open_conn(struct http_server *srv, struct MHD_Connection *c, void **socket_ctx)
{
	const union MHD_ConnectionInfo *fi =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	const union MHD_ConnectionInfo *ai =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ai ? ai->client_addr : NULL;
	socklen_t len = sa && sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							: sizeof(struct sockaddr_in);
	enum httpguard_verdict v = GUARD_SERVE;
	unsigned slot = 0;
	int rc =
	    fi ? httpguard_open(srv->guard, fi->connect_fd, sa, len, clock_mono_ns(), &slot, &v)
	       : -EBADF;

	if (rc == 0) {
		srv->conns[slot] = (struct hconn){ .srv = srv, .c = c, .slot = slot };
		*socket_ctx = &srv->conns[slot];
		say_verdict(srv, v, sa, len);
	} else if (fi) {
		(void)shutdown(fi->connect_fd, SHUT_RDWR); /* no slot: cannot be guarded */
	}
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
			  enum MHD_ConnectionNotificationCode what)
{
	struct http_server *srv = cls;
	struct hconn *hc = *socket_ctx;

	if (what == MHD_CONNECTION_NOTIFY_STARTED) {
		open_conn(srv, c, socket_ctx);
	} else if (hc) { /* before libmicrohttpd closes the fd: see httpguard.h */
		httpguard_close(srv->guard, hc->slot);
		*socket_ctx = NULL;
	}
}

/* The slow lane's chore: cut what is past its deadline; report warnings left out. */
static void chore(void *arg, uint64_t now_ns)
{
	struct http_server *srv = arg;
	unsigned cut = httpguard_sweep(srv->guard, now_ns);
	uint64_t left_out = 0;
	bool report;

	if (cut) {
		stat_add(&srv->stats->http_refused[HREF_DEADLINE], cut);
		warn(srv, "%u connection(s) cut at the request deadline", cut);
	}
	pthread_mutex_lock(&srv->warn_lock);
	report = logbudget_flush(&srv->warns, now_ns, &left_out);
	pthread_mutex_unlock(&srv->warn_lock);
	if (report)
		log_warn("http: %llu warnings left out (too many)", (unsigned long long)left_out);
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

/*
 * The connection limits are the guard's (per client, the pool, who is cut
 * for a newcomer): libmicrohttpd's own limit is higher by SLOT_HEADROOM so
 * that a newcomer reaches the guard while the pool is full.
 */
static int start_mhd(struct http_server *srv, const struct http_config *hc)
{
	const struct config *cfg = hc->cfg;
	/* ITC: threads are woken through an eventfd, never by shutdown() of
	 * the listening socket, which the helper and the next worker share */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
			 MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
	struct MHD_OptionItem more[6];

	if (srv->tls)
		flags |= MHD_USE_TLS;
	optional_options(srv, cfg, more);
	srv->mhd = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
	    MHD_OPTION_LISTEN_SOCKET, hc->listen_fd, MHD_OPTION_CONNECTION_LIMIT,
	    cfg->max_connections + SLOT_HEADROOM, MHD_OPTION_CONNECTION_TIMEOUT,
	    cfg->connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)cfg->max_request_bytes, MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
	    MHD_OPTION_URI_LOG_CALLBACK, on_uri, srv, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
	    srv, MHD_OPTION_ARRAY, more, MHD_OPTION_END);
	return srv->mhd ? 0 : -EIO;
}

static int start_guard(struct http_server *srv, const struct config *cfg)
{
	struct httpguard_limits lim = {
		.max_conns = cfg->max_connections,
		.slots = cfg->max_connections + SLOT_HEADROOM,
		.per_client = cfg->max_connections_per_ip,
		.request_ns = (uint64_t)cfg->request_timeout_s * 1000000000u,
		.fail_limit = cfg->auth_fail_limit,
		.fail_window_ns = (uint64_t)cfg->auth_fail_window_s * 1000000000u,
	};
	struct slowlane_config lane = {
		.capacity = CHECK_QUEUE, .every_ms = CHORE_MS, .every = chore, .arg = srv
	};
	int rc = httpguard_new(&srv->guard, &lim);

	if (rc == 0 && !(srv->conns = calloc(lim.slots, sizeof(*srv->conns))))
		rc = -ENOMEM;
	if (rc == 0)
		rc = slowlane_start(&srv->lane, &lane);
	return rc;
}

static void free_server(struct http_server *srv)
{
	slowlane_free(srv->lane);
	httpguard_free(srv->guard);
	free(srv->conns);
	pagecache_free(srv->pages);
	webauth_free(srv->auth);
	pthread_mutex_destroy(&srv->warn_lock);
	free(srv);
}

int http_start(struct http_server **out, const struct http_config *cfg)
{
	struct http_server *srv = calloc(1, sizeof(*srv));
	const struct config *c = cfg->cfg;
	int rc = 0;

	if (!srv)
		return -ENOMEM;
	srv->stats = cfg->stats;
	srv->tls = webtls_on(cfg->tls) ? cfg->tls : NULL;
	srv->max_headers = c->max_headers;
	srv->max_query_args = c->max_query_args;
	srv->api = (struct api_http_ctx){ c, cfg->stats, cfg->snapshots,
					  cfg->render ? cfg->render->view : NULL };
	pthread_mutex_init(&srv->warn_lock, NULL);
	logbudget_init(&srv->warns, WARN_BURST, WARN_PER_S, clock_mono_ns());
	rc = pagecache_new(&srv->pages, cfg->snapshots, cfg->stats, cfg->render);
	if (rc == 0 && c->n_auth_users)
		rc = webauth_new(&srv->auth, c->auth_users, c->n_auth_users,
				 (uint64_t)c->auth_cache_s * 1000000000u);
	if (rc == 0)
		rc = start_guard(srv, c);
	if (rc == 0)
		rc = start_mhd(srv, cfg);
	if (rc < 0)
		free_server(srv);
	else
		*out = srv;
	return rc;
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
	/* every connection waiting for a check is resumed (503) before
	 * libmicrohttpd stops: it must not stop with one suspended */
	slowlane_stop(srv->lane);
	MHD_stop_daemon(srv->mhd);
	if (listen_fd != MHD_INVALID_SOCKET)
		close(listen_fd);
	free_server(srv);
}
