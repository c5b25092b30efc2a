/* SPDX-License-Identifier: MIT */
/*
 * http - the exporter: libmicrohttpd on a listening socket it is given.
 *
 * GET/HEAD only (405 otherwise, with Allow), /metrics, /-/healthy, and
 * the JSON API (/api/) and the live page (/) through api_http.h (404
 * otherwise). Bounded: connections in all and per client address,
 * idle timeout, memory per connection (which bounds the request line and
 * headers) and the number of headers (431). A small pool of threads
 * ([http] threads), so that one slow client or one bcrypt check does not
 * hold up every scrape; a scrape renders the current snapshot and never
 * waits for the poller.
 *
 * With [web] TLS (webtls.h) it speaks HTTPS only; with [basic_auth_users]
 * (webauth.h) every path, /-/healthy included, needs a user and password
 * (401 with WWW-Authenticate otherwise), as with the exporter-toolkit.
 */
#ifndef KVMSTATD_HTTP_H
#define KVMSTATD_HTTP_H

#include <stdbool.h>

#include "render.h"
#include "config.h"
#include "selfstats.h"
#include "webtls.h"

struct http_server;

/* Everything here is borrowed and must outlive the server. */
struct http_config {
	int listen_fd;
	const struct config *cfg; /* [http], [basic_auth_users] */
	struct selfstats *stats;
	struct snapshot_pub *snapshots;	    /* what the poller publishes */
	const struct render_config *render; /* [metrics]: how pages are shaped */
	const struct webtls *tls;	    /* [web] TLS identity; NULL or off: plain HTTP */
};

int http_start(struct http_server **out, const struct http_config *cfg);
void http_stop(struct http_server *srv);

/* A poll tick happened: free the pages it made stale (NULL-safe). */
void http_tick(struct http_server *srv);

/* True when the Accept header prefers OpenMetrics over the text format. */
bool http_wants_openmetrics(const char *accept);

#endif
