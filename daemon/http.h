/* SPDX-License-Identifier: MIT */
/*
 * http - the exporter: libmicrohttpd on a listening socket it is given.
 *
 * GET/HEAD only (405 otherwise, with Allow), /metrics, / and /-/healthy
 * (404 otherwise). Bounded: connection count, idle timeout, memory per
 * connection (which bounds request headers). One polling thread of its own (scrapes run one at a time); a scrape
 * renders the current snapshot and never waits for the poller.
 */
#ifndef KVMSTATD_HTTP_H
#define KVMSTATD_HTTP_H

#include <stdbool.h>

#include "render.h"
#include "selfstats.h"

struct http_server;

struct http_config {
	int listen_fd;
	unsigned max_connections;
	unsigned connection_timeout_s;
	struct selfstats *stats;
	struct render_opts render; /* [metrics]: how pages are shaped */
};

int http_start(struct http_server **out, const struct http_config *cfg);
void http_stop(struct http_server *srv);

/* True when the Accept header prefers OpenMetrics over the text format. */
bool http_wants_openmetrics(const char *accept);

#endif
