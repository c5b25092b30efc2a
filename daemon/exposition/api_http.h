/* SPDX-License-Identifier: MIT */
/*
 * api_http - the JSON API (api.h) and the live page (livepage.h) on
 * libmicrohttpd: query parameters in, status and headers out. http.c
 * hands over every GET below /api/ and / after its own admission checks
 * (limits, TLS client certificate, basic auth), so both get exactly what
 * /metrics gets.
 */
#ifndef KVMSTATD_API_HTTP_H
#define KVMSTATD_API_HTTP_H

#include <microhttpd.h>

#include "config.h"
#include "selfstats.h"
#include "webassets.h"

struct snapshot_pub;
struct bpfview;

/* What the API reads, all borrowed from the worker for the server's life. */
struct api_http_ctx {
	const struct config *cfg; /* [poll] interval_ms */
	const struct selfstats *stats;
	struct snapshot_pub *snapshots;
	const struct bpfview *view; /* the exit telemetry's slots; NULL: none */
};

/* The API's paths (/api/...): 200, 400, 404 or 500, always JSON. */
enum MHD_Result api_http_serve(struct MHD_Connection *c, const char *url,
			       const struct api_http_ctx *ctx);

/* One file of the live page, with its Content-Security-Policy. */
enum MHD_Result api_http_page(struct MHD_Connection *c, const struct web_asset *a);

#endif
