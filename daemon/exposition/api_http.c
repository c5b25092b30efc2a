/* SPDX-License-Identifier: MIT */
/* api_http - see api_http.h. */
#include "api_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "bpfview.h"
#include "log.h"

#define API_MAX_PARAMS 16

/*
 * The page and its script and style come from this origin only; the
 * script talks to this origin only; no inline script or style, no frames,
 * no forms, no plugins. The sparklines are SVG built through the DOM.
 */
#define PAGE_CSP                                                                                   \
	"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "            \
	"img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

struct params {
	struct api_query q;
	unsigned n;
	int rc;
	char why[160];
};

static enum MHD_Result on_param(void *cls, enum MHD_ValueKind kind, const char *key,
				const char *value)
{
	struct params *p = cls;

	(void)kind;
	if (p->rc == 0 && ++p->n > API_MAX_PARAMS) {
		snprintf(p->why, sizeof(p->why), "more than %d parameters", API_MAX_PARAMS);
		p->rc = -E2BIG;
	}
	if (p->rc == 0)
		p->rc = api_query_set(&p->q, key, value, p->why, sizeof(p->why));
	return p->rc == 0 ? MHD_YES : MHD_NO;
}

static void add_common_headers(struct MHD_Response *r, const char *type)
{
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
}

/* Takes b's bytes (MHD frees them); an out-of-memory buf becomes a 500. */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, struct buf *b)
{
	static const char oom[] = "{\"status\":\"error\",\"errorType\":\"internal\","
				  "\"error\":\"out of memory\"}\n";
	struct MHD_Response *r = NULL;
	enum MHD_Result ret = MHD_NO;

	if (!b->failed && b->data)
		r = MHD_create_response_from_buffer(b->len, b->data, MHD_RESPMEM_MUST_FREE);
	if (r)
		b->data = NULL; /* MHD's now */
	else
		r = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom,
						    MHD_RESPMEM_PERSISTENT),
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	buf_free(b);
	if (r) {
		add_common_headers(r, "application/json");
		ret = MHD_queue_response(c, status, r);
		MHD_destroy_response(r);
	}
	return ret;
}

enum MHD_Result api_http_serve(struct MHD_Connection *c, const char *url,
			       const struct api_http_ctx *ctx)
{
	struct params p = { .rc = 0 };
	struct buf b = { 0 };
	enum api_endpoint ep;
	struct snapshot *snap = NULL;
	struct timespec now;
	unsigned status = MHD_HTTP_NOT_FOUND;

	clock_gettime(CLOCK_REALTIME, &now);
	if (api_endpoint_of(url, &ep) < 0) {
		api_error(&b, "not_found",
			  "no such endpoint: /api/v1/vms, /api/v1/stats, "
			  "/api/v1/exits");
		goto send;
	}
	api_query_init(&p.q, ep);
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, on_param, &p);
	status = MHD_HTTP_BAD_REQUEST;
	if (p.rc < 0) {
		api_error(&b, "bad_data", p.why);
		goto send;
	}
	snap = snapshot_acquire(ctx->snapshots);
	if (!snap) {
		status = MHD_HTTP_SERVICE_UNAVAILABLE;
		api_error(&b, "unavailable", "starting up");
		goto send;
	}
	status = api_render(snap, &p.q,
			    &(struct api_env){ (double)now.tv_sec + now.tv_nsec / 1e9,
					       ctx->cfg->interval_ms, ctx->stats->history_s,
					       bpfview_enabled(ctx->view), ctx->view },
			    &b);
	snapshot_unref(snap);
send:
	return send_json(c, status, &b);
}

enum MHD_Result api_http_page(struct MHD_Connection *c, const struct web_asset *a)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret = MHD_NO;

	if (r) {
		add_common_headers(r, a->type);
		MHD_add_response_header(r, "Content-Security-Policy", PAGE_CSP);
		MHD_add_response_header(r, "X-Frame-Options", "DENY");
		MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
		ret = MHD_queue_response(c, MHD_HTTP_OK, r);
		MHD_destroy_response(r);
	}
	return ret;
}
