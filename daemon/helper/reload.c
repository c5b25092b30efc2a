/* SPDX-License-Identifier: MIT */
/* reload - see reload.h. */
#include "reload.h"

#include <stddef.h>
#include <string.h>

/* A key may span several fields (a list and its count): same key, in a row. */
#define KEEP(key, field)                                                                           \
	{                                                                                          \
		key, offsetof(struct config, field), sizeof(((struct config *)0)->field)           \
	}

static const struct {
	const char *key;
	size_t offset, size;
} restart_only[] = {
	KEEP("[daemon] user", user),
	KEEP("[daemon] sandbox", sandbox),
	KEEP("[daemon] bpf", bpf),
	KEEP("[daemon] bpf_slots", bpf_slots),
	KEEP("[registration] socket", socket_path),
	KEEP("[registration] socket_mode", socket_mode),
	KEEP("[registration] socket_group", socket_group),
	KEEP("[registration] max_sources", max_sources),
	KEEP("[registration] allow_users", allow_uids),
	KEEP("[registration] allow_users", n_allow_uids),
	KEEP("[registration] allow_groups", allow_gids),
	KEEP("[registration] allow_groups", n_allow_gids),
	KEEP("[registration] max_sources_per_uid", max_sources_per_uid),
	KEEP("[registration] rate_limit", rate_limit),
	KEEP("[registration] rate_burst", rate_burst),
	KEEP("[registration] max_connections_per_uid", max_connections_per_uid),
	KEEP("[discovery] enabled", discovery_enabled),
	KEEP("[discovery] borrow", discovery_borrow),
	KEEP("[http] listen", listen),
	KEEP("[web] tls_cert_file", tls_cert_file),
	KEEP("[web] tls_key_file", tls_key_file),
	KEEP("[web] tls_client_ca_file", tls_client_ca_file),
	KEEP("[web] tls_min_version", tls_min_version),
	KEEP("[web] tls_client_auth_type", tls_client_auth_type),
	KEEP("[web] tls_client_auth_type", client_auth),
};

unsigned reload_merge(const struct config *cur, struct config *next,
		      void (*kept)(const char *key, void *ctx), void *ctx)
{
	const char *last = NULL;
	unsigned n = 0;

	for (size_t i = 0; i < sizeof(restart_only) / sizeof(restart_only[0]); i++) {
		const char *a = (const char *)cur + restart_only[i].offset;
		char *b = (char *)next + restart_only[i].offset;

		/* both came from config_defaults(): bytes past a string's NUL are 0 */
		if (!memcmp(a, b, restart_only[i].size))
			continue;
		memcpy(b, a, restart_only[i].size);
		if (last != restart_only[i].key) {
			n++;
			if (kept)
				kept(restart_only[i].key, ctx);
		}
		last = restart_only[i].key;
	}
	/* not a key: the fd limit measured at start-up, which the helper's
	 * registration check needs (0 would switch that check off) */
	next->fd_limit = cur->fd_limit;
	return n;
}
